"""Build a provider connector for a stored account: decrypt, hand auth in, save rotations.

Connectors never see the database; this is where stored credentials become a Google
`Credentials` object or an MSAL token provider, and where a rotated MSAL cache is saved
back (encrypted) as soon as it changes.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CalendarConnector
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.accounts.service import read_credentials, store_credentials
from service.calendars.calls import CallRecorder
from service.calendars.models import Calendar
from service.settings import Settings
from service.tls import outgoing_ca_bundle

log = logging.getLogger(__name__)


class UnknownProvider(ValueError):
    """An account row names a provider this build does not know."""


class AccountConnectors:
    """The production `ConnectorFactory`: one connector per account, from its credentials."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session],
                 vault: Vault | None = None) -> None:
        self.settings = settings
        self.factory = factory
        self.vault = vault or Vault.from_settings(settings)

    def for_calendar(self, calendar_id: int, recorder: CallRecorder | None = None
                     ) -> CalendarConnector:
        """The connector of the account that owns `calendar_id`."""
        with self.factory() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is None:
                raise LookupError(f"calendar {calendar_id} does not exist")
            account_id = calendar.account_id
        return self.for_account(account_id, recorder)

    def for_account(self, account_id: int, recorder: CallRecorder | None = None
                    ) -> CalendarConnector:
        """A connector for the stored account, authenticated with its own grant."""
        with self.factory() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise LookupError(f"account {account_id} does not exist")
            provider, email = account.provider, account.email
            credentials = read_credentials(account, vault=self.vault)
        if provider == "google":
            return google_connector(self.settings, credentials, recorder=recorder)
        if provider == "microsoft":
            return self._microsoft(account_id, email, credentials, recorder)
        raise UnknownProvider(f"account {account_id} has unknown provider {provider!r}")

    def _microsoft(self, account_id: int, email: str, credentials: dict[str, Any],
                   recorder: CallRecorder | None) -> CalendarConnector:
        from connectors.microsoft.connector import GraphConnector

        tokens = msal_provider(self.settings, credentials)

        def token() -> str:
            value = tokens()
            if tokens.has_state_changed:
                credentials["cache"] = tokens.serialize()
                with self.factory.begin() as session:
                    account = session.get(Account, account_id)
                    if account is not None:
                        store_credentials(account, vault=self.vault, credentials=credentials)
                tokens.cache.has_state_changed = False
            return value

        return GraphConnector(token_provider=token, api_url=self.settings.graph_api_url,
                              verify=ca_verify(self.settings), observer=recorder,
                              owner_email=email)


def ca_verify(settings: Settings) -> str | bool:
    """What httpx verifies against (see `service.tls`); True is httpx's own default."""
    return outgoing_ca_bundle(settings) or True


def google_connector(settings: Settings, credentials: dict[str, Any],
                     recorder: CallRecorder | None = None) -> CalendarConnector:
    """A Google connector from an "authorized_user" credentials dict."""
    from connectors.google.auth import google_credentials
    from connectors.google.provider import GoogleConnector

    creds = google_credentials(
        credentials["refresh_token"], credentials["client_id"], credentials["client_secret"],
        credentials.get("token_uri") or settings.google_token_url)
    return GoogleConnector(creds, api_url=settings.google_api_url, observer=recorder,
                           ca_bundle=outgoing_ca_bundle(settings), max_attempts=3,
                           max_sleep=5.0)


def msal_provider(settings: Settings, credentials: dict[str, Any]) -> Any:
    """An MSAL token provider from a stored (client id, authority, cache) triple."""
    from connectors.microsoft.auth import MsalTokenProvider

    return MsalTokenProvider(client_id=credentials["client_id"],
                             authority=credentials.get("authority") or settings.microsoft_authority,
                             cache_state=credentials.get("cache"),
                             ca_file=outgoing_ca_bundle(settings),
                             username=credentials.get("username"))
