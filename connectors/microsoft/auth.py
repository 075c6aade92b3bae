"""MSAL-backed token provider for Graph (delegated, public client).

- Migration of an existing grant: ``acquire_token_by_refresh_token``
  (https://learn.microsoft.com/en-us/entra/msal/python/advanced/migrate-rt-to-msal).
- New consent without a browser: device code flow
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code).
- New consent on the web: the authorization-code flow with PKCE
  (``initiate_auth_code_flow`` / ``acquire_token_by_auth_code_flow``), a public client whose
  redirect URI is Rapport's `/connect/microsoft/callback`.
- Every call: ``acquire_token_silent`` from the `SerializableTokenCache`, which refreshes
  through the refresh token when the access token is near expiry.

The service owns storage: it loads the cache with `deserialize` and saves `serialize()`
(encrypted) whenever `has_state_changed` is True. Tokens are never logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import msal
import requests

from connectors.errors import AuthRevoked, ConnectorError, Transient

log = logging.getLogger(__name__)

# MSAL adds openid, profile, offline_access; MailboxSettings.Read gives the mailbox time zone
SCOPES = ["Calendars.ReadWrite", "MailboxSettings.Read", "User.Read"]
MICROSOFT_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
REVOKED_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "invalid_client", "unauthorized_client"}
)


def error_description(result: dict[str, Any], limit: int = 200) -> str:
    """The first line of an MSAL error result's description (Entra appends trace ids), cut
    after its last whole sentence within `limit` characters."""
    lines = str(result.get("error_description") or "").splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) <= limit:
        return text
    end = text.rfind(". ", 0, limit)
    return text[:end + 1] if end > 0 else text[:limit]


def is_microsoft_authority(authority: str) -> bool:
    """True for Microsoft's own Entra hosts (where discovery and validation stay on)."""
    return (urlparse(authority).hostname or "").lower() in MICROSOFT_HOSTS


class MsalTokenProvider:
    """A `Callable[[], str]` giving a Graph access token for one account."""

    def __init__(
        self,
        *,
        client_id: str,
        authority: str,
        cache_state: str | None = None,
        ca_file: str | Path | None = None,
        scopes: list[str] | None = None,
        username: str | None = None,
    ) -> None:
        self.scopes = list(scopes or SCOPES)
        self.username = username
        self.cache = msal.SerializableTokenCache()
        if cache_state:
            self.cache.deserialize(cache_state)
        session = self._session = requests.Session()
        if ca_file is not None:
            session.verify = str(ca_file)  # a custom CA, never verification off
            session.trust_env = False
        own = is_microsoft_authority(authority)
        try:
            self.app = msal.PublicClientApplication(
                client_id,
                authority=authority,
                token_cache=self.cache,
                http_client=session,
                instance_discovery=None if own else False,
                validate_authority=own,
            )
        except (ValueError, requests.RequestException) as err:
            raise Transient(
                f"cannot reach the Microsoft authority {authority}: {type(err).__name__}"
            ) from err
        finally:
            self._release()

    # cache ------------------------------------------------------------------

    def serialize(self) -> str:
        """The token cache as a string, for the service to encrypt and store."""
        return self.cache.serialize()

    def deserialize(self, state: str) -> None:
        """Load a cache saved with `serialize`."""
        self.cache.deserialize(state)

    @property
    def has_state_changed(self) -> bool:
        """True when the cache changed since it was loaded (save it then)."""
        return bool(self.cache.has_state_changed)

    # grants -----------------------------------------------------------------

    def import_refresh_token(self, refresh_token: str) -> str:
        """Trade an existing refresh token for MSAL-managed tokens; returns the username."""
        result = self._call(
            self.app.acquire_token_by_refresh_token, refresh_token, scopes=self.scopes
        )
        return self._account_from(result)

    def device_flow_start(self) -> dict[str, Any]:
        """Begin device code sign-in; show ``flow["message"]`` to the person."""
        flow = self._call(self.app.initiate_device_flow, scopes=self.scopes)
        if "user_code" not in flow:
            raise ConnectorError(f"device flow could not start: {flow.get('error')}")
        return flow

    def device_flow_finish(self, flow: dict[str, Any], **kwargs: Any) -> str:
        """Wait for the person to finish signing in (blocks, polling); returns the username."""
        result = self._call(self.app.acquire_token_by_device_flow, flow, **kwargs)
        return self._account_from(result)

    def auth_code_flow_start(self, *, redirect_uri: str, login_hint: str | None = None
                             ) -> dict[str, Any]:
        """Begin the authorization-code flow with PKCE, state and nonce (MSAL builds them);
        send the person to ``flow["auth_uri"]`` and keep the rest for the callback.
        https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow

        The answer comes back in the query (MSAL's default; it warns that form_post is
        preferred): a form_post is a cross-site POST, which would not carry the SameSite=Lax
        cookie the web sign-in keeps its flow in, and PKCE already binds the code."""
        flow: dict[str, Any] = self._call(
            self.app.initiate_auth_code_flow, self.scopes, redirect_uri=redirect_uri,
            login_hint=login_hint, prompt="select_account")
        return flow

    def auth_code_flow_finish(self, flow: dict[str, Any], response: dict[str, str]) -> str:
        """Redeem the code the authority redirected back with (MSAL checks the state and the
        id_token nonce and sends the PKCE verifier); returns the username."""
        try:
            result = self._call(self.app.acquire_token_by_auth_code_flow, flow, response)
        except ValueError as err:  # MSAL's word for a state mismatch or a malformed answer
            raise ConnectorError(f"the sign-in answer does not match its flow: {err}") from err
        return self._account_from(result)

    def __call__(self) -> str:
        """A valid access token, from the cache or refreshed silently."""
        return self.access_token()

    def access_token(self, *, force_refresh: bool = False) -> str:
        """A valid access token; `force_refresh` skips the cached access token."""
        accounts = (
            self.app.get_accounts(username=self.username)
            if self.username
            else self.app.get_accounts()
        )
        if not accounts:
            raise AuthRevoked("no Microsoft account in the token cache: the user must sign in")
        result = self._call(
            self.app.acquire_token_silent_with_error,
            self.scopes,
            account=accounts[0],
            force_refresh=force_refresh,
        )
        if not result:
            raise AuthRevoked(
                "Microsoft token cache holds no usable grant: the user must sign in again"
            )
        self._check(result)
        return str(result["access_token"])

    # helpers ------------------------------------------------------------------

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except requests.RequestException as err:
            raise Transient(f"Microsoft authority unreachable: {type(err).__name__}") from err
        finally:
            self._release()

    def _release(self) -> None:
        """Close the authority connection once MSAL is done with it. An account asks the
        authority about once an hour (an access token lives 60-90 minutes:
        https://learn.microsoft.com/entra/identity-platform/access-tokens#token-lifetime),
        and a process keeps thousands of these providers (`AccountConnectors`): an idle TLS
        connection with its SSL context held ~280 KB each (measured with tracemalloc: 296 KB
        per provider kept open, 16 KB closed; docs/benchmarks.md). requests reopens the pool
        on the next request (`Session.close` only clears the adapters' pools)."""
        self._session.close()

    def _check(self, result: dict[str, Any]) -> None:
        error = result.get("error")
        if not error:
            return
        description = error_description(result)
        if error in REVOKED_ERRORS:
            raise AuthRevoked(
                f"Microsoft refused the grant ({error}): the user must sign in again. {description}"
            )
        if error in ("temporarily_unavailable", "server_error"):
            raise Transient(f"Microsoft authority error ({error}): {description}")
        raise ConnectorError(f"Microsoft authority error ({error}): {description}")

    def _account_from(self, result: dict[str, Any]) -> str:
        self._check(result)
        claims = result.get("id_token_claims") or {}
        self.username = claims.get("preferred_username") or self.username
        log.info("Microsoft grant stored for %s", self.username)
        return str(self.username or "")
