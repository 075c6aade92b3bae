"""Sign-in on the web: the OAuth authorization-code flow with state and PKCE, per provider.

`start_*` builds the provider's consent URL and the flow state the callback needs (kept by
the web layer in a signed, short-lived cookie); `finish_*` redeems the code and stores the
account the way `rapport connect` does (`connect_google` / `connect_microsoft`).

- Google: google-auth-oauthlib `Flow` from a "web" client config
  (https://developers.google.com/identity/protocols/oauth2/web-server): offline access and
  `prompt=consent` so a refresh token comes back every time, a generated S256 code verifier,
  the smallest calendar scopes. oauthlib refuses a token answer whose scopes differ from
  those asked for (Google lets people untick scopes): that is `SignInFailed("scopes")`.
- Microsoft: MSAL `initiate_auth_code_flow` / `acquire_token_by_auth_code_flow` on the same
  public client the stored grants refresh with, so the cache it leaves is what
  `MsalTokenProvider` reads later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from connectors.google.auth import CALENDAR_SCOPES
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.calendars.connectors import msal_provider
from service.calendars.models import Calendar
from service.calendars.onboarding import CredentialsFileError, connect_google, connect_microsoft
from service.settings import Settings
from service.tls import outgoing_ca_bundle

log = logging.getLogger(__name__)

PROVIDERS = ("google", "microsoft")


class SignInFailed(Exception):
    """A sign-in that cannot finish; `reason` picks the page the person sees."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # not_configured | token | scopes | unreachable | no_refresh_token


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and what the callback needs to finish (no secret of ours)."""

    url: str
    state: str
    flow: dict[str, Any]


@dataclass(frozen=True)
class Connected:
    """The outcome shown on the result page."""

    account_id: int
    email: str
    provider: str
    calendars: int


def configured(settings: Settings, provider: str) -> bool:
    """Whether the operator set up an OAuth client for `provider`'s web sign-in."""
    if provider == "google":
        return bool(settings.google_client_id and settings.google_client_secret)
    return provider == "microsoft" and bool(settings.microsoft_client_id)


def _google_flow(settings: Settings, redirect_uri: str, **kwargs: Any) -> Any:
    # lazy on purpose, as in the CLI: google-auth-oauthlib serves only the consent paths
    from google_auth_oauthlib.flow import Flow

    if not configured(settings, "google"):
        raise SignInFailed("not_configured", "RAPPORT_GOOGLE_CLIENT_ID / _SECRET unset")
    assert settings.google_client_secret is not None
    return Flow.from_client_config({"web": {
        "client_id": settings.google_client_id,
        "client_secret": settings.google_client_secret.get_secret_value(),
        "auth_uri": settings.google_auth_url,
        "token_uri": settings.google_token_url,
    }}, list(CALENDAR_SCOPES), redirect_uri=redirect_uri, **kwargs)


def start_google(settings: Settings, *, redirect_uri: str,
                 login_hint: str | None = None) -> Started:
    """The Google consent URL (state and S256 challenge in it) and the flow to keep."""
    flow = _google_flow(settings, redirect_uri, autogenerate_code_verifier=True)
    extra = {"login_hint": login_hint} if login_hint else {}
    try:
        url, state = flow.authorization_url(access_type="offline", prompt="consent", **extra)
    except OAuth2Error as err:  # oauthlib's InsecureTransportError: an http:// consent URL
        raise SignInFailed("not_configured", "RAPPORT_GOOGLE_AUTH_URL must be https") from err
    return Started(url=url, state=state, flow={"code_verifier": flow.code_verifier})


def finish_google(session: Session, *, settings: Settings, vault: Vault, redirect_uri: str,
                  started: Started, code: str) -> Connected:
    """Redeem the code with the kept verifier, then store the grant like the CLI does."""
    flow = _google_flow(settings, redirect_uri, state=started.state,
                        code_verifier=started.flow.get("code_verifier"),
                        autogenerate_code_verifier=False)
    try:
        flow.fetch_token(code=code, verify=outgoing_ca_bundle(settings) or True)
    except OAuth2Error as err:
        raise SignInFailed("token", f"Google answered {err.error}") from err
    except Warning as err:  # oauthlib: "Scope has changed from ... to ..."
        raise SignInFailed("scopes", "not every permission was granted") from err
    except requests.RequestException as err:
        raise SignInFailed("unreachable", type(err).__name__) from err
    creds = flow.credentials
    if not creds.refresh_token:
        raise SignInFailed("no_refresh_token", "Google gave no offline access")
    try:
        account = connect_google(session, settings=settings, vault=vault, credentials={
            "client_id": creds.client_id, "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token, "token_uri": settings.google_token_url})
    except (ConnectorError, CredentialsFileError) as err:
        raise SignInFailed("token", type(err).__name__) from err
    return _connected(session, account)


def start_microsoft(settings: Settings, *, redirect_uri: str,
                    login_hint: str | None = None) -> Started:
    """The Entra consent URL MSAL builds (state, nonce, S256 challenge) and the flow."""
    if not configured(settings, "microsoft"):
        raise SignInFailed("not_configured", "RAPPORT_MICROSOFT_CLIENT_ID unset")
    try:
        tokens = msal_provider(settings, {"client_id": settings.microsoft_client_id})
        flow = tokens.auth_code_flow_start(redirect_uri=redirect_uri, login_hint=login_hint)
    except ConnectorError as err:
        raise SignInFailed("unreachable", type(err).__name__) from err
    url = flow.pop("auth_uri")  # rebuilt by nobody: the callback needs the rest only
    return Started(url=url, state=flow["state"], flow=flow)


def finish_microsoft(session: Session, *, settings: Settings, vault: Vault,
                     started: Started, response: dict[str, str]) -> Connected:
    """Redeem the code through MSAL (it checks state and nonce), then store the grant."""
    flow = dict(started.flow, state=started.state)

    def sign_in(tokens: Any) -> str:
        return str(tokens.auth_code_flow_finish(flow, response))

    try:
        account = connect_microsoft(session, settings=settings, vault=vault,
                                    client_id=str(settings.microsoft_client_id),
                                    authority=None, sign_in=sign_in)
    except ConnectorError as err:
        raise SignInFailed("token", type(err).__name__) from err
    return _connected(session, account)


def _connected(session: Session, account: Account) -> Connected:
    watched = session.scalar(select(func.count()).select_from(Calendar)
                             .where(Calendar.account_id == account.id)) or 0
    log.info("account %s connected on the web (%s)", account.id, account.provider)
    return Connected(account_id=account.id, email=account.email, provider=account.provider,
                     calendars=watched)

