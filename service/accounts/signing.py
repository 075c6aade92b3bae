"""Signed links (a manager's page today, a shared agenda next): who, what for, until when.

A link token is ``EXPIRES.VERSION.MAC``: the expiry (Unix seconds), the subject's link
version (`Person.links_version`, bumped by `rapport people revoke-links`) and an HMAC-SHA256
over the purpose, the subject ids, the expiry and the version. A forwarded link therefore
stops working at its expiry, and revoking one person's links costs one counter, not the key.

The key is `RAPPORT_WEB_SECRET` when set, otherwise derived from the installation's
encryption key with HKDF (info ``rapport links v1``): never the Fernet key itself, and
rotating the encryption key also revokes every link. Here, beside that key, so that the
digest (metrics) and the web app (above it) share one link builder; `service.accounts.signing`
re-exports it for the web layer.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.accounts.crypto import load_or_create_key
from service.people.models import Person
from service.settings import Settings

LINK_INFO = b"rapport links v1"
MANAGER_PAGE = "manager-page"  # the purpose of a link to /managers/{id}
_CANONICAL = re.compile(r"0|[1-9][0-9]{0,17}")


class LinkCheck(enum.StrEnum):
    """What a link token is worth; only VALID opens anything."""

    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"  # signed for an older links version of the subject
    INVALID = "invalid"  # malformed, tampered, or for another purpose or subject


def link_key(settings: Settings) -> bytes:
    """The signing key for links: RAPPORT_WEB_SECRET, else HKDF of the encryption key."""
    if settings.web_secret is not None and settings.web_secret.get_secret_value():
        return settings.web_secret.get_secret_value().encode()
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LINK_INFO)
    return hkdf.derive(load_or_create_key(settings))


def _mac(key: bytes, *, purpose: str, subjects: Sequence[int], expires: int,
         version: int) -> str:
    message = f"{purpose}\n{','.join(str(s) for s in subjects)}\n{expires}\n{version}"
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_link(*, key: bytes, purpose: str, subjects: Sequence[int], expires: datetime,
              version: int) -> str:
    """A token that opens `purpose` for `subjects` until `expires`, at links `version`."""
    at = int(expires.timestamp())
    mac = _mac(key, purpose=purpose, subjects=subjects, expires=at, version=version)
    return f"{at}.{version}.{mac}"


def verify_link(*, key: bytes, purpose: str, subjects: Sequence[int], token: str | None,
                version: int, now: datetime) -> LinkCheck:
    """Check a token; the MAC is compared in constant time before anything else is told."""
    parts = (token or "").strip().split(".")
    if len(parts) != 3 or not all(_CANONICAL.fullmatch(p) for p in parts[:2]):
        return LinkCheck.INVALID  # one spelling per number: "0123" is not "123"
    expires, signed_version = int(parts[0]), int(parts[1])
    expected = _mac(key, purpose=purpose, subjects=subjects, expires=expires,
                    version=signed_version)
    try:
        given = parts[2].encode("ascii")
    except UnicodeEncodeError:
        return LinkCheck.INVALID
    if not hmac.compare_digest(expected.encode(), given):
        return LinkCheck.INVALID
    if signed_version != version:
        return LinkCheck.REVOKED
    if expires <= int(now.timestamp()):
        return LinkCheck.EXPIRED
    return LinkCheck.VALID


def link_expiry(settings: Settings, *, now: datetime | None = None) -> datetime:
    """When a link made now stops working (RAPPORT_LINK_TTL_DAYS)."""
    return (now or datetime.now(UTC)) + timedelta(days=settings.link_ttl_days)


def sign_manager(settings: Settings, manager_id: int, *, version: int,
                 now: datetime | None = None, key: bytes | None = None) -> str:
    """The token that opens `/managers/{manager_id}` until the configured expiry."""
    return sign_link(key=key or link_key(settings), purpose=MANAGER_PAGE,
                     subjects=(manager_id,), expires=link_expiry(settings, now=now),
                     version=version)


def verify_manager(settings: Settings, manager_id: int, token: str | None, *, version: int,
                   now: datetime | None = None, key: bytes | None = None) -> LinkCheck:
    """Whether `token` opens the manager's page, given their current links version."""
    return verify_link(key=key or link_key(settings), purpose=MANAGER_PAGE, subjects=(manager_id,),
                       token=token, version=version, now=now or datetime.now(UTC))


def manager_url(settings: Settings, manager_id: int, *, version: int,
                now: datetime | None = None, base_url: str | None = None,
                last_week: str | None = None) -> str:
    """The full signed URL of a manager's page (base: RAPPORT_PUBLIC_URL, else the web
    server's own http://HTTP_HOST:HTTP_PORT); `last_week` pins the weeks shown (a digest's
    link shows the digest's weeks). The signature covers the manager, expiry and version."""
    base = (base_url or settings.public_url
            or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")
    token = sign_manager(settings, manager_id, version=version, now=now)
    url = f"{base}/managers/{manager_id}?sig={quote(token)}"
    return f"{url}&week={quote(last_week)}" if last_week else url



def links_version(session: Session, *, person_id: int) -> int | None:
    """The person's current links version (None: no such person, so no link opens)."""
    return session.scalar(select(Person.links_version).where(Person.id == person_id))


def revoke_links(session: Session, *, email: str) -> int | None:
    """Refuse every link signed so far for this person (by address); the new version, or
    None when nobody has that address. Links made after this work as before."""
    person = session.scalar(select(Person).where(func.lower(Person.email) == email.lower()))
    if person is None:
        return None
    person.links_version = (person.links_version or 0) + 1
    session.flush()
    return person.links_version
