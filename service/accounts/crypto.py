"""Encryption of secrets at rest (OAuth tokens, MSAL caches, webhook tokens) with Fernet.

The key comes from ``RAPPORT_SECRET_KEY``; on the embedded default an unset key is generated
once into the data folder with 0600 permissions, so a new user needs nothing.
"""

from __future__ import annotations

import logging
import os

from cryptography.fernet import Fernet, InvalidToken

from service.files import ensure_private_dir
from service.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The secret key is missing, malformed, or does not open stored secrets."""


def load_or_create_key(settings: Settings) -> bytes:
    """The Fernet key: from settings, else from (or newly into) the data folder."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
        _check(key, "RAPPORT_SECRET_KEY")
        return key
    path = settings.data_dir / KEY_FILE
    if path.exists():
        key = path.read_bytes().strip()
        _check(key, str(path))
        return key
    ensure_private_dir(path.parent)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    log.info("generated a new secret key in %s (mode 0600)", path)
    return key


def _check(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except (ValueError, TypeError) as err:
        raise SecretKeyError(
            f"the secret key in {where} is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes; make one with `rapport secret-key`)"
        ) from err


class Vault:
    """Encrypts and decrypts small secrets with the configured key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """The vault for this installation's key."""
        return cls(load_or_create_key(settings))

    def encrypt(self, plaintext: str) -> bytes:
        """Ciphertext (authenticated) of `plaintext`."""
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        """Plaintext of a stored secret; a wrong key is a clear error, not a traceback."""
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as err:
            raise SecretKeyError(
                "stored credentials cannot be decrypted with the current secret key "
                "(was RAPPORT_SECRET_KEY changed?)"
            ) from err
