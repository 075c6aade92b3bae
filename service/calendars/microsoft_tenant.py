"""Connecting a Microsoft 365 tenant once for the whole company (application access).

The administrator registers an app with the application permissions Calendars.ReadWrite,
User.Read.All and MailboxSettings.Read and consents for the organisation; Rapport gets the
tenant id, the client id and a client secret or a certificate (one PEM holding the private
key and the certificate). The grant is checked with one directory read before it is stored,
encrypted like every grant; the people it reaches come from the directory sync.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy.orm import Session

from connectors.errors import Forbidden
from connectors.microsoft.directory import GraphDirectory
from service.accounts.crypto import Vault
from service.accounts.models import DirectoryGrant
from service.accounts.service import save_grant
from service.calendars.connectors import ca_verify, tenant_token_provider
from service.calendars.onboarding import CredentialsFileError
from service.settings import Settings

# A tenant id (GUID) or one of the tenant's domains (contoso.onmicrosoft.com, contoso.com).
_TENANT = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|"
                     r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_MULTI_TENANT = frozenset({"common", "organizations", "consumers"})
_PEM_KEY = re.compile(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?"
                      r"PRIVATE KEY-----", re.S)
_PEM_ENCRYPTED = "-----BEGIN ENCRYPTED PRIVATE KEY-----"


def checked_tenant(tenant: str) -> str:
    """The tenant as given, or a one-line refusal saying what is expected."""
    value = tenant.strip()
    if value.lower() in _MULTI_TENANT:
        raise CredentialsFileError(f"--tenant {value!r} names no organisation: give your "
                                   "tenant's own id (Directory (tenant) ID on the app's overview)")
    if not _TENANT.fullmatch(value):
        raise CredentialsFileError(f"--tenant {value!r} is neither a tenant id (a GUID) nor a "
                                   "domain such as contoso.onmicrosoft.com")
    return value.lower()


def _text(path: Path, what: str) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError as err:
        raise CredentialsFileError(f"{path}: no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise CredentialsFileError(f"{path}: cannot be read as {what} "
                                   f"({err.__class__.__name__})") from err


def read_client_secret(path: Path) -> dict[str, str]:
    """The client secret in a file (its Value, as the admin center shows it once)."""
    secret = _text(path, "a client secret")
    if not secret or "\n" in secret:
        raise CredentialsFileError(f"{path}: expected the client secret's value alone on "
                                   "one line")
    return {"client_secret": secret}


def read_certificate(path: Path) -> dict[str, str]:
    """The private key and certificate in one PEM file, checked to belong together."""
    text = _text(path, "a PEM file")
    if _PEM_ENCRYPTED in text:
        raise CredentialsFileError(f"{path}: the private key is encrypted; export it without "
                                   "a passphrase (openssl pkcs8 -nocrypt)")
    key_block = _PEM_KEY.search(text)
    if key_block is None:
        raise CredentialsFileError(f"{path}: holds no private key (expected the key and the "
                                   "certificate in one PEM file)")
    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError as err:
        raise CredentialsFileError(f"{path}: holds no certificate (expected the key and the "
                                   "certificate in one PEM file)") from err
    try:
        key = serialization.load_pem_private_key(key_block.group(0).encode(), password=None)
    except (ValueError, TypeError) as err:
        raise CredentialsFileError(f"{path}: the private key cannot be read") from err
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            cert.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise CredentialsFileError(f"{path}: the private key does not belong to the "
                                   "certificate")
    return {"private_key": key_block.group(0),
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper()}  # noqa: S303


def connect_microsoft_tenant(session: Session, *, settings: Settings, vault: Vault,
                             tenant: str, client_id: str,
                             credentials: dict[str, Any]) -> DirectoryGrant:
    """Check the app's grant with one directory read, then store it (encrypted)."""
    scope = {"tenant": tenant, "client_id": client_id}
    tokens = tenant_token_provider(settings, scope=scope, credentials=credentials)
    directory = GraphDirectory(token_provider=tokens, api_url=settings.graph_api_url,
                               verify=ca_verify(settings))
    try:
        directory.check_access()
    except Forbidden as err:
        raise Forbidden(f"the app may not read the directory: grant it the application "
                        f"permission User.Read.All with admin consent ({err})") from err
    finally:
        directory.close()
    return save_grant(session, vault=vault, provider="microsoft", name=tenant, scope=scope,
                      credentials=credentials)
