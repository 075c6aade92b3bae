"""The sandbox's Google Workspace: a domain directory and service accounts with domain-wide
delegation, as an admin sets them up in the Admin console.

The token endpoint's JWT-bearer grant follows RFC 7523 and Google's "Using OAuth 2.0 for
Server to Server Applications"
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest): the
assertion is an RS256 JWT signed with the service account's private key, with ``iss`` (the
service account's address), ``scope`` (space separated), ``aud`` (the token endpoint),
``iat`` and ``exp`` (at most one hour apart) and, for domain-wide delegation, ``sub`` (the
user to act as). A scope the admin did not authorise for the client id in "Security > Access
and data control > API controls > Manage Domain Wide Delegation" answers
``unauthorized_client``; a bad signature or a stale assertion answers ``invalid_grant``, as
that page's error table says.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# What google-auth always puts in ``aud`` (its _GOOGLE_OAUTH2_TOKEN_ENDPOINT), whatever
# ``token_uri`` the key file names; Google's page documents the same value.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
MAX_ASSERTION_LIFETIME = 3600  # seconds between iat and exp
CLOCK_SKEW = 300  # seconds an assertion's iat may lie in the future

CALENDAR_SCOPE_PREFIX = "https://www.googleapis.com/auth/calendar"
USERS_READ_SCOPES = frozenset({
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.user",
})
MEMBERS_READ_SCOPES = frozenset({
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group",
})


class GrantRefused(Exception):
    """The token endpoint's answer to a refused assertion: OAuth ``error`` and description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class DirectoryUser:
    """One user of the sandbox domain, as the Admin SDK ``users`` resource describes it."""

    id: str
    email: str
    given_name: str
    family_name: str
    org_unit: str = "/"
    suspended: bool = False
    manager: str | None = None  # relations[type=manager].value: the manager's address
    is_admin: bool = False

    def resource(self, customer_id: str) -> dict[str, Any]:
        """The documented JSON of a user (https://developers.google.com/workspace/admin/directory/reference/rest/v1/users)."""
        body: dict[str, Any] = {
            "kind": "admin#directory#user",
            "id": self.id,
            "etag": f'"{self.id}/{int(self.suspended)}/{self.manager or ""}"',
            "primaryEmail": self.email,
            "name": {"givenName": self.given_name, "familyName": self.family_name,
                     "fullName": f"{self.given_name} {self.family_name}".strip()},
            "isAdmin": self.is_admin,
            "isDelegatedAdmin": False,
            "suspended": self.suspended,
            "orgUnitPath": self.org_unit,
            "customerId": customer_id,
            "isMailboxSetup": True,
        }
        if self.manager:
            body["relations"] = [{"value": self.manager, "type": "manager"}]
        return body


@dataclass
class ServiceAccount:
    """A service account key the sandbox issued, and what the admin authorised for it."""

    client_email: str
    client_id: str
    key_id: str
    public_key: rsa.RSAPublicKey
    authorised_scopes: set[str] = field(default_factory=set)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Workspace:
    """Directory, groups, service accounts and delegated tokens; guarded by `lock`."""

    domain: str
    customer_id: str = "C0sandbox"
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, DirectoryUser] = field(default_factory=dict)  # email -> user
    groups: dict[str, list[str]] = field(default_factory=dict)  # group email -> members
    accounts: dict[str, ServiceAccount] = field(default_factory=dict)  # client_email -> key
    token_scopes: dict[str, frozenset[str]] = field(default_factory=dict)  # access token ->
    failing_pages: dict[int, int] = field(default_factory=dict)  # users.list page -> status
    _ids: int = 0

    def reset(self) -> None:
        """No users, groups, keys, delegated tokens or faults."""
        with self.lock:
            self.users.clear()
            self.groups.clear()
            self.accounts.clear()
            self.token_scopes.clear()
            self.failing_pages.clear()
            self._ids = 0

    # -- the directory ---------------------------------------------------------------------

    def add_user(self, email: str, name: str, *, org_unit: str = "/",
                 manager: str | None = None, suspended: bool = False,
                 is_admin: bool = False) -> DirectoryUser:
        """Add (or replace) a user; `name` is "Given Family"."""
        given, _, family = name.partition(" ")
        with self.lock:
            existing = self.users.get(email.lower())
            if existing is None:
                self._ids += 1
                user_id = str(100_000_000_000_000_000_000 + self._ids)
            else:
                user_id = existing.id
            user = DirectoryUser(user_id, email.lower(), given, family, org_unit, suspended,
                                 manager.lower() if manager else None, is_admin)
            self.users[user.email] = user
            return user

    def find_user(self, key: str) -> DirectoryUser | None:
        """A user by primary address or id (``userKey`` accepts both)."""
        with self.lock:
            found = self.users.get(key.lower())
            return found or next((u for u in self.users.values() if u.id == key), None)

    def listed_users(self, org_unit: str | None) -> list[DirectoryUser]:
        """Users in email order; an org unit matches itself and every unit below it."""
        with self.lock:
            users = sorted(self.users.values(), key=lambda u: u.email)
        if org_unit is None or org_unit == "/":
            return users
        prefix = org_unit.rstrip("/")
        return [u for u in users if u.org_unit == prefix or u.org_unit.startswith(prefix + "/")]

    # -- service accounts ------------------------------------------------------------------

    def mint_key(self, token_uri: str, *, name: str = "rapport") -> dict[str, Any]:
        """A fresh service-account key file (the JSON Cloud Console downloads), its
        ``token_uri`` pointing at the sandbox."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        with self.lock:
            self._ids += 1
            client_id = str(110_000_000_000_000_000_000 + self._ids)
        account = ServiceAccount(
            client_email=f"{name}-{self._ids}@sandbox-project.iam.gserviceaccount.com",
            client_id=client_id, key_id=secrets.token_hex(20), public_key=private.public_key())
        with self.lock:
            self.accounts[account.client_email] = account
        return {
            "type": "service_account",
            "project_id": "sandbox-project",
            "private_key_id": account.key_id,
            "private_key": pem,
            "client_email": account.client_email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def authorise(self, client_id: str, scopes: list[str]) -> None:
        """The admin's domain-wide delegation entry for `client_id` (replaces the scopes)."""
        with self.lock:
            for account in self.accounts.values():
                if account.client_id == client_id:
                    account.authorised_scopes = set(scopes)
                    return
        raise KeyError(f"no service account with client id {client_id}")

    # -- the JWT-bearer grant --------------------------------------------------------------

    def grant(self, assertion: str, *, token_url: str, now: datetime) -> tuple[str, frozenset[str]]:
        """Check a service account's assertion; the user to act as and the granted scopes.

        Raises `GrantRefused` with the error Google's page names for each refusal.
        """
        claims = self._verified_claims(assertion)
        if claims.get("aud") not in (token_url, GOOGLE_TOKEN_AUDIENCE):
            raise GrantRefused("invalid_grant", "Invalid JWT: audience is not the token URI.")
        iat, exp = claims.get("iat"), claims.get("exp")
        stamp = now.timestamp()
        if not isinstance(iat, int) or not isinstance(exp, int) or exp <= iat \
                or exp - iat > MAX_ASSERTION_LIFETIME or exp <= stamp \
                or iat > stamp + CLOCK_SKEW:
            raise GrantRefused("invalid_grant", "Invalid JWT: Token must be a short-lived "
                               "token (60 minutes) and in a reasonable timeframe. Check your "
                               "iat and exp values in the JWT claim.")
        with self.lock:
            account = self.accounts[str(claims["iss"])]
            scopes = frozenset(str(claims.get("scope", "")).split())
            if not scopes:
                raise GrantRefused("invalid_scope", "Empty or missing scope not allowed.")
            subject = claims.get("sub")
            if subject is None:  # the service account itself: it owns no domain calendar
                raise GrantRefused("unauthorized_client", "Sandbox: a service account acts "
                                   "only for a user of the domain (sub).", 401)
            user = self.users.get(str(subject).lower())
            if user is None or user.suspended:
                raise GrantRefused("invalid_grant", "Invalid email or User ID")
            if not scopes <= account.authorised_scopes:
                raise GrantRefused(
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or "
                    "client not authorized for any of the scopes requested.", 401)
        return user.email, scopes

    def _verified_claims(self, assertion: str) -> dict[str, Any]:
        """The claims of an RS256 JWT whose signature a key we issued verifies."""
        try:
            head64, body64, sig64 = assertion.split(".")
            header = json.loads(_unb64url(head64))
            claims = json.loads(_unb64url(body64))
            signature = _unb64url(sig64)
        except (ValueError, binascii.Error, UnicodeDecodeError) as err:
            raise GrantRefused("invalid_grant", "Invalid JWT: not a signed token.") from err
        if not isinstance(header, dict) or not isinstance(claims, dict) \
                or header.get("alg") != "RS256":
            raise GrantRefused("invalid_grant", "Invalid JWT: RS256 signed tokens only.")
        with self.lock:
            account = self.accounts.get(str(claims.get("iss", "")))
        if account is None:
            raise GrantRefused("invalid_grant", "Invalid grant: account not found")
        try:
            account.public_key.verify(signature, f"{head64}.{body64}".encode(),
                                      padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as err:
            raise GrantRefused("invalid_grant", "Invalid JWT Signature.") from err
        return claims

    def remember(self, access_token: str, scopes: frozenset[str]) -> None:
        """The scopes a delegated access token carries."""
        with self.lock:
            self.token_scopes[access_token] = scopes

    def scopes_of(self, access_token: str) -> frozenset[str] | None:
        """A delegated token's scopes; None for a person's own OAuth token."""
        with self.lock:
            return self.token_scopes.get(access_token)


def sign_assertion(claims: dict[str, Any], private_key_pem: str) -> str:
    """An RS256 JWT over `claims` (tests forge assertions with it; google-auth signs its own)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64url(signature)}"
