"""The sandbox's Entra tenants: directory users, app registrations and app-only tokens.

What an administrator sets up in the Entra admin center and Exchange Online, reduced to
what an app-only client meets:

- an app registration with client secrets and/or certificates, and application
  permissions granted with admin consent (they become the token's ``roles`` claim);
- the client credentials grant
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
  ``scope=<resource>/.default``, and either ``client_secret`` or a ``client_assertion`` of
  type ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` signed with the
  certificate's key (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials):
  RS256 with ``x5t`` (SHA-1 thumbprint) or PS256 with ``x5t#S256``, ``aud`` the token
  endpoint, ``iss`` = ``sub`` = the client id; the signature is checked here with
  cryptography against the registered certificate's public key;
- refusals in Entra's shapes: an unknown tenant is 400 ``invalid_tenant`` AADSTS90002 (also
  on its OpenID configuration, which is where MSAL meets it first; see the answers quoted in
  Azure/azure-cli#22145), a wrong secret 401 ``invalid_client`` AADSTS7000215, an unknown
  app 400 ``unauthorized_client`` AADSTS700016, a bad assertion 401 AADSTS700027;
- an application access policy (``New-ApplicationAccessPolicy -AccessRight RestrictAccess``,
  or its successor RBAC for Applications) that limits the mailboxes the app reaches.

The issued access token is app-only: its claims carry ``roles`` and ``idtyp=app`` and no
user (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sandbox.microsoft.model import ACCESS_TOKEN_SECONDS, object_id

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's own app id
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CALENDARS = "Calendars.ReadWrite"
USERS = "User.Read.All"
MAILBOX_SETTINGS = "MailboxSettings.Read"
APP_PERMISSIONS = (CALENDARS, USERS, MAILBOX_SETTINGS)  # what Rapport's README asks for
COMPANY_TENANT_ID = "6f1c8e52-3b7a-4d0e-9a41-2c5d7e8f9a10"
POLICY_BLOCKED = ("Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
                  "AccessPolicy settings.")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OAuthRefusal(Exception):
    """A token request Entra refuses: the OAuth ``error``, its AADSTS description, status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def unknown_tenant(name: str) -> OAuthRefusal:
    """Entra's answer about a tenant it does not know (AADSTS90002)."""
    return OAuthRefusal(
        "invalid_tenant",
        f"AADSTS90002: Tenant '{name}' not found. Check to make sure you have the correct "
        "tenant ID and are signing into the correct cloud. Check with your subscription "
        "administrator, this may happen if there are no active subscriptions for the tenant.")


@dataclass
class DirectoryUser:
    """One Entra user: what ``GET /users`` lists, and whose mailbox time zone it has."""

    email: str
    name: str
    time_zone: str = "UTC"  # IANA; mailboxSettings reports the Windows name
    manager: str | None = None  # the manager's email
    enabled: bool = True  # accountEnabled

    @property
    def id(self) -> str:
        """The immutable object id (the same the delegated sandbox uses for this email)."""
        return object_id(self.email)


@dataclass
class AppRegistration:
    """An app registration and its service principal in one tenant."""

    client_id: str
    secrets: set[str] = field(default_factory=set)
    certificates: list[x509.Certificate] = field(default_factory=list)
    roles: frozenset[str] = frozenset(APP_PERMISSIONS)  # application permissions consented
    mailboxes: frozenset[str] | None = None  # access policy: None = every mailbox

    def reaches(self, email: str) -> bool:
        """Whether the access policy lets the app into this mailbox."""
        return self.mailboxes is None or email.lower() in self.mailboxes


@dataclass
class Tenant:
    """One organisation: its id, primary domain, users (in listing order) and apps."""

    id: str
    domain: str
    users: dict[str, DirectoryUser] = field(default_factory=dict)  # by email
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # object id -> email

    def add(self, user: DirectoryUser) -> None:
        """Create (or replace) a user."""
        self.users[user.email.lower()] = user
        self.ids[user.id] = user.email.lower()

    def user(self, key: str) -> DirectoryUser | None:
        """A user by object id, mail or user principal name."""
        key = key.lower()
        return self.users.get(self.ids.get(key, key))


@dataclass(frozen=True)
class AppToken:
    """What an app-only access token stands for."""

    tenant: str
    client_id: str
    roles: frozenset[str]
    expires: datetime


@dataclass(frozen=True)
class AppCredentials:
    """What the administrator hands the operator after registering the app."""

    tenant: str
    client_id: str
    secret: str | None
    certificate_pem: str | None  # private key and certificate, one PEM file


def new_certificate(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed certificate as `New-SelfSignedCertificate` or openssl would make."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return key, cert


def certificate_pem(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> str:
    """The private key (PKCS#8, unencrypted) followed by the certificate, as one PEM."""
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
            + cert.public_bytes(serialization.Encoding.PEM).decode())


def _thumbprints(cert: x509.Certificate) -> set[tuple[str, str]]:
    return {("x5t", _b64(cert.fingerprint(hashes.SHA1()))),  # noqa: S303 - Entra's legacy x5t
            ("x5t#S256", _b64(cert.fingerprint(hashes.SHA256())))}


def verify_assertion(assertion: str, *, app: AppRegistration, audience: str,
                     now: datetime) -> None:
    """Check a client assertion the way Entra does; raises `OAuthRefusal` when it fails."""
    try:
        head, body, signature = assertion.split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
        raw_signature = _unb64(signature)
    except (ValueError, TypeError) as err:
        raise OAuthRefusal("invalid_client", "AADSTS50027: JWT token is invalid or malformed.",
                           401) from err
    cert = next((c for c in app.certificates
                 if any(str(header.get(k, "")).rstrip("=") == v  # MSAL keeps the padding
                        for k, v in _thumbprints(c))), None)
    if cert is None:
        raise OAuthRefusal("invalid_client", "AADSTS700027: The certificate with identifier "
                           "used to sign the client assertion is not registered on application.",
                           401)
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    signed = f"{head}.{body}".encode()
    alg = header.get("alg")
    try:
        if alg == "RS256":
            public.verify(raw_signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            public.verify(raw_signature, signed, padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                hashes.SHA256())
        else:
            raise InvalidSignature(alg)
    except InvalidSignature as err:
        raise OAuthRefusal("invalid_client", "AADSTS700027: Client assertion failed signature "
                           "validation.", 401) from err
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise OAuthRefusal("invalid_client", "AADSTS700021: Client assertion application "
                           "identifier doesn't match 'client_id' parameter.", 401)
    if claims.get("aud") != audience:
        raise OAuthRefusal("invalid_client", "AADSTS50027: JWT token is invalid or malformed: "
                           "its audience is not this token endpoint.", 401)
    stamp = now.timestamp()
    if not (claims.get("nbf", claims.get("iat", 0)) - 300 <= stamp < claims.get("exp", 0)):
        raise OAuthRefusal("invalid_client", "AADSTS700024: Client assertion is not within its "
                           "valid time range.", 401)


@dataclass
class Tenants:
    """Every tenant the sandbox authority knows, and the app-only tokens it issued."""

    now: Callable[[], datetime]
    lock: threading.RLock = field(default_factory=threading.RLock)
    tenants: dict[str, Tenant] = field(default_factory=dict)  # by tenant id
    tokens: dict[str, AppToken] = field(default_factory=dict)

    def reset(self) -> None:
        """No company tenant, no app, no app token."""
        with self.lock:
            self.tenants.clear()
            self.tokens.clear()

    def find(self, name: str) -> Tenant | None:
        """A tenant by id or primary domain (case-insensitive)."""
        name = name.lower()
        with self.lock:
            return next((t for t in self.tenants.values() if name in (t.id, t.domain)), None)

    def tenant(self, tenant_id: str, domain: str) -> Tenant:
        """The tenant with this id, created (with this domain) on first use."""
        with self.lock:
            return self.tenants.setdefault(tenant_id, Tenant(tenant_id.lower(), domain.lower()))

    def user_by_email(self, email: str) -> DirectoryUser | None:
        """A directory user of any tenant, by address."""
        with self.lock:
            for tenant in self.tenants.values():
                if (found := tenant.users.get(email.lower())) is not None:
                    return found
        return None

    def register(self, tenant: Tenant, *, client_id: str | None, secret: bool, certificate: bool,
                 permissions: Iterable[str]) -> AppCredentials:
        """Register an app, consent to `permissions`, and mint its secret / certificate."""
        client = client_id or str(uuid.uuid4())
        app = AppRegistration(client_id=client, roles=frozenset(permissions))
        value = pem = None
        if secret:
            value = "sbx~" + secrets.token_urlsafe(30)
            app.secrets.add(value)
        if certificate:
            key, cert = new_certificate(f"rapport-{client}")
            app.certificates.append(cert)
            pem = certificate_pem(key, cert)
        with self.lock:
            tenant.apps[client] = app
        return AppCredentials(tenant=tenant.id, client_id=client, secret=value,
                              certificate_pem=pem)

    def app(self, client_id: str) -> AppRegistration:
        """A registered app of any tenant (KeyError when none)."""
        with self.lock:
            for tenant in self.tenants.values():
                if client_id in tenant.apps:
                    return tenant.apps[client_id]
        raise KeyError(client_id)

    def client_credentials(self, tenant_name: str, form: dict[str, str], *,
                           token_endpoint: str) -> dict[str, object]:
        """Serve the client credentials grant; raises `OAuthRefusal` as Entra refuses."""
        tenant = self.find(tenant_name)
        if tenant is None:
            raise unknown_tenant(tenant_name)
        client_id = form.get("client_id", "")
        app = tenant.apps.get(client_id)
        if app is None:
            raise OAuthRefusal(
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant.domain}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant.")
        scope = form.get("scope", "")
        resource = scope.split()[0].removesuffix("/.default") if scope else ""
        if not scope.split() or not scope.split()[0].endswith("/.default"):
            raise OAuthRefusal(
                "invalid_scope",
                f"AADSTS1002012: The provided value for scope {scope} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).")
        if resource not in (GRAPH_RESOURCE, GRAPH_APP_ID):
            raise OAuthRefusal(
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource} was not found in the "
                f"tenant named {tenant.domain}.")
        if form.get("client_assertion"):
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise OAuthRefusal("invalid_request", "AADSTS50027: JWT token is invalid or "
                                   "malformed: client_assertion_type must be jwt-bearer.")
            verify_assertion(form["client_assertion"], app=app, audience=token_endpoint,
                             now=self.now())
        elif "client_secret" in form:
            if not any(secrets.compare_digest(form["client_secret"], s) for s in app.secrets):
                raise OAuthRefusal(
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                    "sent in the request is the client secret value, not the client secret ID, "
                    f"for a secret added to app '{client_id}'.", 401)
        else:
            raise OAuthRefusal("invalid_client", "AADSTS7000216: 'client_assertion', "
                               "'client_secret' or 'request' is required for the "
                               "'client_credentials' grant type.")
        return self._issue(tenant, app)

    def _issue(self, tenant: Tenant, app: AppRegistration) -> dict[str, object]:
        now = self.now().astimezone(UTC)
        expires = now + timedelta(seconds=ACCESS_TOKEN_SECONDS)
        principal = object_id(f"service-principal:{app.client_id}")
        claims = {
            "aud": GRAPH_RESOURCE, "iss": f"https://sts.windows.net/{tenant.id}/",
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()), "appid": app.client_id, "idtyp": "app",
            "oid": principal, "sub": principal, "roles": sorted(app.roles), "tid": tenant.id,
            "uti": secrets.token_urlsafe(16), "ver": "1.0",
        }
        token = ".".join([_b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
                          _b64(json.dumps(claims).encode()), _b64(secrets.token_bytes(16))])
        with self.lock:
            self.tokens[token] = AppToken(tenant.id, app.client_id, app.roles, expires)
        return {"token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS,
                "ext_expires_in": ACCESS_TOKEN_SECONDS, "access_token": token}

    def app_of(self, token: str) -> tuple[AppToken | None, str]:
        """(app token, problem): what an app-only bearer token stands for, or why not."""
        with self.lock:
            found = self.tokens.get(token)
        if found is None:
            return None, "Access token validation failure. Invalid audience."
        if found.expires <= self.now():
            return None, "Lifetime validation failed, the token is expired."
        return found, ""

    def reach(self, app: AppToken, uid: str) -> tuple[DirectoryUser | None, AppRegistration]:
        """The user `uid` names in the app's tenant (None when unknown), and the app."""
        with self.lock:
            tenant = self.tenants[app.tenant]
            return tenant.user(uid), tenant.apps[app.client_id]

