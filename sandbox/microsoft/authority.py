"""A fake Entra ID (v2.0) authority that MSAL accepts with instance_discovery=False.

The client credentials grant of company apps is served by `sandbox.microsoft.tenants`.

MSAL reads ``/<tenant>/v2.0/.well-known/openid-configuration`` (OpenID Connect discovery,
https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc), then posts to the
token endpoint (refresh_token grant:
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token;
device code grant: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code;
authorization code grant with PKCE: `sandbox.microsoft.consent`).
Responses carry ``client_info`` (base64url ``{"uid", "utid"}``) and an unsigned id_token,
which is how MSAL builds the cached account. Refresh tokens rotate; a revoked grant answers
400 ``invalid_grant`` (AADSTS50173-like).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox import team
from sandbox.consent import Codes
from sandbox.microsoft.model import ACCESS_TOKEN_SECONDS, object_id
from sandbox.microsoft.tenants import OAuthRefusal, Tenants, unknown_tenant

TENANT = "rapport-sandbox"
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# where delegated sign-in works: the sandbox's own tenant and Entra's multi-tenant aliases
DELEGATED_TENANTS = frozenset({TENANT, TENANT_ID, "organizations", "common", "consumers"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Grants:
    """Issued tokens, revocations and pending device codes."""

    now: Callable[[], datetime]
    population: team.Population = team.TEAM  # whose refresh tokens are valid after reset()
    lock: threading.RLock = field(default_factory=threading.RLock)
    access: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    devices: dict[str, dict[str, object]] = field(default_factory=dict)
    codes: Codes = field(init=False)  # registered clients, outstanding authorization codes

    def __post_init__(self) -> None:
        self.codes = Codes(now=self.now)

    def reset(self) -> None:
        """Seeded refresh tokens only, nothing revoked (issued access tokens stay valid)."""
        with self.lock:
            self.refresh = {
                p.refresh_token: p.email for p in self.population.people_on("microsoft")
            }
            self.revoked.clear()
            self.devices.clear()
            self.codes.reset()

    def user_of(self, access_token: str) -> tuple[str | None, str]:
        """(email, problem): the owner of a bearer token, or None and why it is refused."""
        entry = self.access.get(access_token)
        if entry is None:
            return None, "Access token validation failure. Invalid audience."
        email, expires = entry
        if email in self.revoked:
            return None, "Access token has been revoked."
        if expires <= self.now():
            return None, "Lifetime validation failed, the token is expired."
        return email, ""

    def issue(self, email: str, client_id: str, scope: str, issuer: str,
              nonce: str | None = None) -> dict[str, object]:
        """A token response the way Entra answers a successful grant; `nonce` (from the
        authorization request) goes into the id_token, where MSAL checks it."""
        now = self.now().astimezone(UTC)
        access = "sandbox-at-" + secrets.token_urlsafe(24)
        refresh = "sandbox-rt-" + secrets.token_urlsafe(24)
        self.access[access] = (email, now + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        self.refresh[refresh] = email
        oid = object_id(email)
        person = self.population.person(email)
        claims = {
            "aud": client_id,
            "iss": issuer,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + ACCESS_TOKEN_SECONDS,
            "name": person.name,
            "oid": oid,
            "preferred_username": email,
            "sub": oid,
            "tid": TENANT_ID,
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        id_token = ".".join(
            [
                _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
                _b64(json.dumps(claims).encode()),
                "",
            ]
        )
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "ext_expires_in": ACCESS_TOKEN_SECONDS,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": _b64(json.dumps({"uid": oid, "utid": TENANT_ID}).encode()),
        }

    def approve_device(self, user_code: str, email: str) -> None:
        """The person signs in at the verification page and enters `user_code`."""
        with self.lock:
            for flow in self.devices.values():
                if flow["user_code"] == user_code:
                    flow["email"] = email
                    return
        raise KeyError(user_code)


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(code) for code in re.findall(r"AADSTS(\d+)", description)[:1]],
            "timestamp": datetime.now(UTC).isoformat(),
            "trace_id": "sandbox",
        },
        status_code=status,
    )


TokenGrant = Callable[[str, dict[str, str]], JSONResponse]  # (tenant, form) -> answer


def authority_router(grants: Grants, root: Callable[[], str], tenants: Tenants,
                     delegated: frozenset[str] = DELEGATED_TENANTS,
                     more_grants: Mapping[str, TokenGrant] | None = None) -> APIRouter:
    """Routes of the fake authority under ``/<tenant>``; `root` gives the https origin;
    `more_grants` answers further grant types at the token endpoint, by grant_type.

    A tenant is known when delegated sign-in works there (`delegated`) or an administrator
    created it (`tenants`); any other answers 400 ``invalid_tenant`` (AADSTS90002), on its
    OpenID configuration as on its token endpoint.
    """
    router = APIRouter()

    def issuer(tenant: str) -> str:
        return f"{root()}/{tenant}/v2.0"

    def known(tenant: str) -> bool:
        return tenant.lower() in delegated or tenants.find(tenant) is not None

    def refused(refusal: OAuthRefusal) -> JSONResponse:
        return _oauth_error(refusal.error, refusal.description, refusal.status)

    @router.get("/{tenant}/v2.0/.well-known/openid-configuration", response_model=None)
    def openid_configuration(tenant: str) -> dict[str, object] | JSONResponse:
        if not known(tenant):
            return refused(unknown_tenant(tenant))
        base = f"{root()}/{tenant}"
        return {
            "issuer": issuer(tenant),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
        }

    @router.get("/{tenant}/discovery/v2.0/keys")
    def keys(tenant: str) -> dict[str, object]:
        return {"keys": []}

    @router.post("/{tenant}/oauth2/v2.0/devicecode")
    async def devicecode(tenant: str, request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        device_code = secrets.token_urlsafe(24)
        user_code = secrets.token_hex(4).upper()
        with grants.lock:
            grants.devices[device_code] = {
                "user_code": user_code,
                "email": None,
                "client_id": form.get("client_id", ""),
                "scope": form.get("scope", ""),
            }
        verify = f"{root()}/{tenant}/devicelogin"
        return JSONResponse(
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": verify,
                "expires_in": 900,
                "interval": 1,
                "message": f"To sign in, open {verify} and enter the code {user_code}.",
            }
        )

    @router.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        client_id = form.get("client_id", "")
        scope = form.get("scope", "")
        if not known(tenant):
            return refused(unknown_tenant(tenant))
        answer = (more_grants or {}).get(grant or "")
        if answer is not None:
            return answer(tenant, form)
        if grant == "client_credentials":
            try:
                return JSONResponse(tenants.client_credentials(
                    tenant, form, token_endpoint=f"{root()}/{tenant}/oauth2/v2.0/token"))
            except OAuthRefusal as refusal:
                return refused(refusal)
        with grants.lock:
            if grant == "refresh_token":
                email = grants.refresh.get(form.get("refresh_token", ""))
                if email is None or email in grants.revoked:
                    return _oauth_error(
                        "invalid_grant",
                        "AADSTS50173: The provided grant has expired due to it being revoked, "
                        "a fresh auth token is needed.",
                    )
                return JSONResponse(grants.issue(email, client_id, scope, issuer(tenant)))
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                flow = grants.devices.get(form.get("device_code", ""))
                if flow is None:
                    return _oauth_error(
                        "expired_token",
                        "AADSTS70020: The provided value for the input parameter 'device_code' "
                        "is not valid.",
                    )
                if flow["email"] is None:
                    return _oauth_error(
                        "authorization_pending",
                        "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.",
                    )
                del grants.devices[form["device_code"]]
                return JSONResponse(
                    grants.issue(str(flow["email"]), client_id, scope, issuer(tenant))
                )
        return _oauth_error(
            "unsupported_grant_type", f"AADSTS70003: grant type {grant!r} is not supported here."
        )

    return router
