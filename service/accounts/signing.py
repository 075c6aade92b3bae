"""Signed links to a manager's page: HMAC-SHA256 until the web app has real sign-in.

Here, beside the installation's key, so that the digest (metrics) and the web app (above
it) share one link builder; `service.accounts.signing` re-exports it for the web layer.

The key is `RAPPORT_WEB_SECRET` when set, otherwise derived from the installation's secret
key (HMAC with a fixed label), so rotating the secret key also revokes every link.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from service.accounts.crypto import load_or_create_key
from service.settings import Settings

_LABEL = b"rapport web links v1"


def link_key(settings: Settings) -> bytes:
    """The signing key for web links."""
    if settings.web_secret is not None and settings.web_secret.get_secret_value():
        return settings.web_secret.get_secret_value().encode()
    return hmac.new(load_or_create_key(settings), _LABEL, hashlib.sha256).digest()


def sign_manager(settings: Settings, manager_id: int, *, key: bytes | None = None) -> str:
    """The signature that opens `/managers/{manager_id}`."""
    message = f"manager:{manager_id}".encode()
    return hmac.new(key or link_key(settings), message, hashlib.sha256).hexdigest()


def verify_manager(settings: Settings, manager_id: int, signature: str | None, *,
                   key: bytes | None = None) -> bool:
    """True when `signature` opens the manager's page (constant-time comparison)."""
    if not signature:
        return False
    expected = sign_manager(settings, manager_id, key=key)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def manager_url(settings: Settings, manager_id: int, *, base_url: str | None = None,
                last_week: str | None = None) -> str:
    """The full signed URL of a manager's page (base: RAPPORT_PUBLIC_URL, else the web
    server's own http://HTTP_HOST:HTTP_PORT); `last_week` pins the weeks shown (a digest's
    link shows the digest's weeks). The signature covers the manager only."""
    base = (base_url or settings.public_url
            or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")
    url = f"{base}/managers/{manager_id}?sig={quote(sign_manager(settings, manager_id))}"
    return f"{url}&week={quote(last_week)}" if last_week else url
