"""Signed links (a manager's page, a pair's agenda page): who, what for, until when.

A link token is ``EXPIRES.VERSION.MAC``: the expiry (Unix seconds), the subject's link
version (`Person.links_version`, bumped by `rapport people revoke-links`) and an HMAC-SHA256
over the purpose, the subject ids, the expiry and the version. A forwarded link therefore
stops working at its expiry, and revoking one person's links costs one counter, not the key.

The key is `RAPPORT_WEB_SECRET` when set, otherwise derived from the installation's
encryption key with HKDF (info ``rapport links v1``): never the Fernet key itself, and
rotating the encryption key also revokes every link. Here, beside that key, so that the
digest (metrics) and the web app (above it) share one link builder; `service.accounts.signing`
re-exports it for the web layer.

`seal` / `unseal` use the same key and MAC for a signed JSON payload with an expiry (the
web sign-in keeps its OAuth flow in a cookie with it), each under its own purpose.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
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
RECONNECT = "reconnect"  # the purpose of a link to /connect/{provider} for one account
SIGN_IN_FORM = "sign-in-form"  # the consent page's form token (CSRF)
SIGN_IN_FLOW = "sign-in-flow"  # the cookie that carries one OAuth flow to its callback
# The two scopes of a pair's agenda page, signed over (pair id, person id). The shared one
# goes into the invite, which both people see, so it opens only the shared agenda; the
# private one (the manager's own preparation, private topics included) goes only into the
# manager's own emails and is never made for the report.
AGENDA_SHARED = "agenda"
AGENDA_PRIVATE = "agenda-private"
AGENDA_PATHS = {AGENDA_SHARED: "agenda", AGENDA_PRIVATE: "prep"}
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


def _mac(key: bytes, *, purpose: str, subject: str, expires: int, version: int) -> str:
    message = f"{purpose}\n{subject}\n{expires}\n{version}"
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _subject(subjects: Sequence[int]) -> str:
    return ",".join(str(s) for s in subjects)


def sign_link(*, key: bytes, purpose: str, subjects: Sequence[int], expires: datetime,
              version: int) -> str:
    """A token that opens `purpose` for `subjects` until `expires`, at links `version`."""
    at = int(expires.timestamp())
    mac = _mac(key, purpose=purpose, subject=_subject(subjects), expires=at, version=version)
    return f"{at}.{version}.{mac}"


def verify_link(*, key: bytes, purpose: str, subjects: Sequence[int], token: str | None,
                version: int, now: datetime) -> LinkCheck:
    """Check a token; the MAC is compared in constant time before anything else is told."""
    parts = (token or "").strip().split(".")
    if len(parts) != 3 or not all(_CANONICAL.fullmatch(p) for p in parts[:2]):
        return LinkCheck.INVALID  # one spelling per number: "0123" is not "123"
    expires, signed_version = int(parts[0]), int(parts[1])
    expected = _mac(key, purpose=purpose, subject=_subject(subjects), expires=expires,
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


def public_base(settings: Settings, base_url: str | None = None) -> str:
    """Where people reach the web app: RAPPORT_PUBLIC_URL, else the web server's own
    http://HTTP_HOST:HTTP_PORT (no trailing slash)."""
    return (base_url or settings.public_url
            or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")


def manager_url(settings: Settings, manager_id: int, *, version: int,
                now: datetime | None = None, base_url: str | None = None,
                last_week: str | None = None) -> str:
    """The full signed URL of a manager's page (base: `public_base`); `last_week` pins the
    weeks shown (a digest's link shows the digest's weeks). The signature covers the
    manager, expiry and version."""
    base = public_base(settings, base_url)
    token = sign_manager(settings, manager_id, version=version, now=now)
    url = f"{base}/managers/{manager_id}?sig={quote(token)}"
    return f"{url}&week={quote(last_week)}" if last_week else url


def sign_agenda(key: bytes, *, scope: str, pair_id: int, person_id: int, expires: datetime,
                version: int) -> str:
    """The token that opens a pair's agenda page for one of its two people, in `scope`
    (AGENDA_SHARED or AGENDA_PRIVATE), until `expires`."""
    return sign_link(key=key, purpose=scope, subjects=(pair_id, person_id), expires=expires,
                     version=version)


def verify_agenda(key: bytes, *, scope: str, pair_id: int, person_id: int, token: str | None,
                  version: int, now: datetime) -> LinkCheck:
    """Whether `token` opens the pair's agenda page for this person in `scope`."""
    return verify_link(key=key, purpose=scope, subjects=(pair_id, person_id), token=token,
                       version=version, now=now)


def agenda_url(settings: Settings, *, scope: str, pair_id: int, person_id: int,
               expires: datetime, version: int, key: bytes | None = None,
               base_url: str | None = None) -> str:
    """The full signed URL of a pair's agenda page for one person. The expiry is the
    caller's: an invite's link must be the same at every reconcile (see
    `service.agenda.links`), or every invite would be rewritten every time."""
    token = sign_agenda(key or link_key(settings), scope=scope, pair_id=pair_id,
                        person_id=person_id, expires=expires, version=version)
    path = AGENDA_PATHS[scope]
    return f"{public_base(settings, base_url)}/{path}/{pair_id}/{person_id}?sig={quote(token)}"



def reconnect_url(settings: Settings, *, account_id: int, provider: str, version: int,
                  now: datetime | None = None, base_url: str | None = None) -> str:
    """The signed link to `/connect/{provider}` that a re-consent email carries: it names
    the account to sign in again (its address becomes the login hint) until the expiry."""
    token = sign_link(key=link_key(settings), purpose=RECONNECT, subjects=(account_id,),
                      expires=link_expiry(settings, now=now), version=version)
    return (f"{public_base(settings, base_url)}/connect/{quote(provider)}"
            f"?account={account_id}&sig={quote(token)}")


def seal(*, key: bytes, purpose: str, payload: dict[str, Any], expires: datetime) -> str:
    """`EXPIRES.PAYLOAD.MAC`: a JSON payload a browser keeps for us (a cookie, a form
    field) and cannot change. Readable by that browser: fit for what it may know (an OAuth
    flow's state and PKCE verifier), never for a stored credential."""
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    text = body.rstrip(b"=").decode()
    at = int(expires.timestamp())
    return f"{at}.{text}.{_mac(key, purpose=purpose, subject=text, expires=at, version=0)}"


def unseal(*, key: bytes, purpose: str, token: str | None, now: datetime
           ) -> tuple[LinkCheck, dict[str, Any] | None]:
    """The payload of a `seal` token when it is VALID; EXPIRED or INVALID otherwise."""
    parts = (token or "").strip().split(".")
    if len(parts) != 3 or not _CANONICAL.fullmatch(parts[0]):
        return LinkCheck.INVALID, None
    expires, text = int(parts[0]), parts[1]
    expected = _mac(key, purpose=purpose, subject=text, expires=expires, version=0)
    try:
        given = parts[2].encode("ascii")
    except UnicodeEncodeError:
        return LinkCheck.INVALID, None
    if not hmac.compare_digest(expected.encode(), given):
        return LinkCheck.INVALID, None
    if expires <= int(now.timestamp()):
        return LinkCheck.EXPIRED, None
    payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return (LinkCheck.VALID, payload) if isinstance(payload, dict) else (LinkCheck.INVALID, None)


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
