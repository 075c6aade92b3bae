"""Build a provider connector for a stored account: decrypt, hand auth in, save rotations.

Connectors never see the database; this is where stored credentials become a Google
`Credentials` object or an MSAL token provider, and where a rotated MSAL cache is saved
back (encrypted) as soon as it changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CalendarConnector, CallObserver, DirectoryConnector
from connectors.google.auth import (
    CALENDAR_SCOPES,
    DIRECTORY_MEMBERS_SCOPE,
    DIRECTORY_USERS_SCOPE,
    SharedToken,
    delegated_credentials,
    google_credentials,
)
from connectors.google.directory import USERS_PAGE, GoogleDirectory
from connectors.google.provider import GoogleConnector
from connectors.google.transport import PerThreadHttp
from connectors.microsoft.app_auth import AppTokenProvider, client_credential, tenant_authority
from connectors.microsoft.auth import MsalTokenProvider
from connectors.microsoft.client import graph_http
from connectors.microsoft.connector import GraphConnector
from connectors.microsoft.directory import GraphDirectory
from connectors.retry import RetryPolicy
from service.accounts.crypto import Vault
from service.accounts.models import Account, DirectoryGrant
from service.accounts.service import (
    read_credentials,
    read_grant_credentials,
    store_credentials,
)
from service.calendars.access_tokens import StoredAccessToken
from service.calendars.calls import record_call
from service.calendars.models import Calendar
from service.calendars.series_uids import StoredSeriesUids
from service.db import read_session
from service.settings import Settings
from service.tls import outgoing_ca_bundle

log = logging.getLogger(__name__)


class UnknownProvider(ValueError):
    """An account row names a provider this build does not know."""


# Accounts whose connector (and so access token) a process keeps. A worker serves every
# account, so fewer than the accounts means a new token per sync: 1,024 cost 3,608 token
# requests for 2,000 accounts in the scale-out run (docs/benchmarks.md). Measured with
# tracemalloc: a Google connector ~3 KB (the API description is shared), a Graph one ~16 KB
# (MSAL's application and cache; its idle authority connection is closed), so 10,000 stay
# under ~160 MB.
CONNECTORS_PER_PROCESS = 10_000
CALENDARS_PER_PROCESS = 100_000  # calendar -> account ids kept (~100 bytes each)
BUILD_STRIPES = 64  # locks that keep two threads from building one account's connector

# What a held connector is kept with: the grant it was built from, and for a Graph account
# the function that hands it the MSAL cache as stored now (see `AccountConnectors._microsoft`)
StoredCache = Callable[[str | None], None]


class AccountConnectors:
    """The production `ConnectorFactory`: one connector per account per process, shared by
    every worker thread.

    A connector keeps an account's access token (Google credentials, the MSAL application and
    its token cache, with the authority metadata MSAL read when it was built) and Graph's
    series-id cache for as long as the process lives, so `rapport sync --once` and
    `run_until_idle`, which start fresh worker threads each time, do not pay for them again.
    Connectors are thread-safe: Google's send on a per-thread httplib2.Http (`PerThreadHttp`,
    one for all accounts) and refresh their token under a lock (`SerializedRefresh`);
    Graph's share one httpx connection pool and take their token one thread at a time. The
    least recently used are dropped past `capacity` accounts, so memory stays bounded; a
    dropped one is not closed (another thread may be using it; it holds no pool of its own).
    A reconnected account (other grant) gets a fresh connector. A Google access token one
    process obtained is kept in the database (`StoredAccessToken`) and adopted by the other
    processes' connectors of the same grant until it expires. A connector reports its
    calls through `record_call` to whatever records at the time of the call (in a worker,
    the recorder of the calling thread's current message).
    """

    def __init__(self, settings: Settings, factory: sessionmaker[Session],
                 vault: Vault | None = None, *, capacity: int = CONNECTORS_PER_PROCESS) -> None:
        self.settings = settings
        self.factory = factory
        self.vault = vault or Vault.from_settings(settings)
        self.capacity = capacity
        self._connectors: OrderedDict[
            int, tuple[str, CalendarConnector, StoredCache | None]] = OrderedDict()
        self._calendar_accounts: OrderedDict[int, int] = OrderedDict()  # calendar -> account
        self._lock = threading.Lock()
        self._building = [threading.Lock() for _ in range(BUILD_STRIPES)]
        self._google_http = PerThreadHttp(ca_bundle=outgoing_ca_bundle(settings))
        self._graph_pool: httpx.Client | None = None  # opened with the first Graph connector
        # one app-only token provider per company grant, shared by every thread
        self._app_tokens: dict[int, tuple[str, AppTokenProvider]] = {}
        self._app_lock = threading.Lock()

    def for_calendar(self, calendar_id: int) -> CalendarConnector:
        """The connector of the account that owns `calendar_id`."""
        return self.for_account(self._account_of(calendar_id))

    def _account_of(self, calendar_id: int) -> int:
        """The calendar's account, read once per process: a calendar never moves to another
        account (`account_id` is set when it is stored, and `save_calendars` finds it by
        account), and rows are not deleted, so the answer cannot go stale."""
        with self._lock:
            account_id = self._calendar_accounts.get(calendar_id)
        if account_id is not None:
            return account_id
        with read_session(self.factory) as session:
            account_id = session.scalar(select(Calendar.account_id)
                                        .where(Calendar.id == calendar_id))
        if account_id is None:
            raise LookupError(f"calendar {calendar_id} does not exist")
        with self._lock:
            self._calendar_accounts[calendar_id] = account_id
            self._calendar_accounts.move_to_end(calendar_id)
            while len(self._calendar_accounts) > CALENDARS_PER_PROCESS:
                self._calendar_accounts.popitem(last=False)
        return account_id

    def for_account(self, account_id: int) -> CalendarConnector:
        """A connector for the stored account, authenticated with its own grant."""
        with read_session(self.factory) as session:
            account = session.get(Account, account_id)
            if account is None:
                raise LookupError(f"account {account_id} does not exist")
            provider, email = account.provider, account.email
            credentials = read_credentials(account, vault=self.vault)
            app_tokens = None
            if account.grant_id is not None:  # reached through a company grant: act as them
                company, credentials["grant"] = self._grant(session, account.grant_id)
                if company.provider == "microsoft":  # app-only, on the grant's one token
                    app_tokens = self.app_tokens(company.id, dict(company.scope),
                                                 credentials["grant"])
        grant = json.dumps({k: v for k, v in credentials.items() if k != "cache"},
                           sort_keys=True)
        held = self._held(account_id, grant, credentials)
        if held is not None:
            return held
        with self._building[account_id % BUILD_STRIPES]:  # one build per account at a time
            held = self._held(account_id, grant, credentials)
            if held is not None:
                return held
            connector: CalendarConnector
            stored_cache: StoredCache | None = None
            if app_tokens is not None:  # a person of a Microsoft 365 tenant grant, app-only
                connector = GraphConnector(
                    token_provider=app_tokens, api_url=self.settings.graph_api_url,
                    observer=record_call, user=credentials["user_id"], owner_email=email,
                    http=self._graph_http,
                    series_uids=StoredSeriesUids(self.factory, account_id))
            elif provider == "google":
                connector = google_connector(
                    self.settings, credentials, recorder=record_call, http=self._google_http,
                    shared_token=StoredAccessToken(self.factory, self.vault, account_id, grant))
            elif provider == "microsoft":
                connector, stored_cache = self._microsoft(account_id, email, credentials,
                                                          record_call)
            else:
                raise UnknownProvider(f"account {account_id} has unknown provider {provider!r}")
            with self._lock:
                self._connectors[account_id] = (grant, connector, stored_cache)
                self._connectors.move_to_end(account_id)
                while len(self._connectors) > self.capacity:
                    self._connectors.popitem(last=False)
        return connector

    @property
    def _graph_http(self) -> httpx.Client:
        """The one httpx pool of every Graph connector of this process."""
        with self._lock:
            if self._graph_pool is None:
                self._graph_pool = graph_http(verify=ca_verify(self.settings))
            return self._graph_pool

    def _held(self, account_id: int, grant: str,
              credentials: dict[str, Any]) -> CalendarConnector | None:
        """The account's connector if it was built from this grant (marked recently used);
        a Graph one is handed the MSAL cache just read with `credentials`."""
        with self._lock:
            held = self._connectors.get(account_id)
            if held is None or held[0] != grant:
                return None
            self._connectors.move_to_end(account_id)
        _, connector, stored_cache = held
        if stored_cache is not None:
            stored_cache(credentials.get("cache"))
        return connector

    def directory_for(self, grant_id: int) -> DirectoryConnector:
        """The directory of a company grant, read with the grant's own credentials."""
        with self.factory() as session:
            grant, credentials = self._grant(session, grant_id)
            provider, scope = grant.provider, dict(grant.scope)
        if provider == "google":
            return google_directory(self.settings, credentials, scope, recorder=record_call)
        if provider == "microsoft":
            return GraphDirectory(token_provider=self.app_tokens(grant_id, scope, credentials),
                                  api_url=self.settings.graph_api_url,
                                  verify=ca_verify(self.settings), observer=record_call)
        raise UnknownProvider(f"grant {grant_id} has unknown provider {provider!r}")

    def app_tokens(self, grant_id: int, scope: dict[str, str],
                   credentials: dict[str, Any]) -> AppTokenProvider:
        """The app-only token provider of a Microsoft 365 tenant grant: one per grant in
        this process (a reconnected grant, with other credentials, gets a new one)."""
        fingerprint = hashlib.sha256(json.dumps([scope, credentials], sort_keys=True)
                                     .encode()).hexdigest()
        with self._app_lock:
            held = self._app_tokens.get(grant_id)
            if held is None or held[0] != fingerprint:
                tokens = tenant_token_provider(self.settings, scope=scope,
                                               credentials=credentials)
                held = self._app_tokens[grant_id] = (fingerprint, tokens)
            return held[1]

    def _grant(self, session: Session, grant_id: int) -> tuple[DirectoryGrant, dict[str, Any]]:
        grant = session.get(DirectoryGrant, grant_id)
        if grant is None:
            raise LookupError(f"company grant {grant_id} does not exist")
        return grant, read_grant_credentials(grant, vault=self.vault)

    def _microsoft(self, account_id: int, email: str, credentials: dict[str, Any],
                   recorder: CallObserver) -> tuple[CalendarConnector, StoredCache]:
        """A Graph connector on the account's MSAL cache, and the function `_held` hands the
        cache as stored now: one another process saved since (it refreshed the access
        token) replaces this one's, so this process uses that token instead of asking for
        its own. Entra does not revoke a refresh token when a newer one is issued
        (https://learn.microsoft.com/entra/identity-platform/refresh-tokens), so whichever
        cache is kept, its refresh token works."""

        tokens = msal_provider(self.settings, credentials)
        lock = threading.Lock()
        # digests of the caches this process loaded or saved lately: a stored one among them
        # was read before this process saved a newer one, and is not taken back
        had: deque[bytes] = deque([_digest(credentials.get("cache"))], maxlen=4)

        def token() -> str:
            # one thread at a time: MSAL's token cache locks itself, but the application's
            # requests.Session is not documented thread-safe, and a rotated cache is saved once
            with lock:
                value = tokens()
                if tokens.has_state_changed:
                    credentials["cache"] = tokens.serialize()
                    had.append(_digest(credentials["cache"]))
                    with self.factory.begin() as session:
                        account = session.get(Account, account_id)
                        if account is not None:
                            store_credentials(account, vault=self.vault,
                                              credentials=credentials)
                    tokens.cache.has_state_changed = False
                return value

        def stored_cache(cache: str | None) -> None:
            # one this process never had was saved by another process since
            with lock:
                if not cache or cache == credentials.get("cache"):
                    return
                digest = _digest(cache)
                if digest in had:
                    return
                tokens.deserialize(cache)
                tokens.cache.has_state_changed = False
                credentials["cache"] = cache
                had.append(digest)

        connector = GraphConnector(token_provider=token, api_url=self.settings.graph_api_url,
                                   observer=recorder, owner_email=email, http=self._graph_http,
                                   series_uids=StoredSeriesUids(self.factory, account_id))
        return connector, stored_cache


def _digest(cache: str | None) -> bytes:
    """What tells one stored MSAL cache from another, without keeping the cache."""
    return hashlib.sha256((cache or "").encode()).digest()


def tenant_token_provider(settings: Settings, *, scope: dict[str, str],
                          credentials: dict[str, Any]) -> AppTokenProvider:
    """The app-only token provider of a Microsoft 365 tenant grant: its authority is
    RAPPORT_MICROSOFT_AUTHORITY with the tenant in place of its last segment."""
    return AppTokenProvider(client_id=scope["client_id"],
                            authority=tenant_authority(settings.microsoft_authority,
                                                       scope["tenant"]),
                            credential=client_credential(credentials),
                            ca_file=outgoing_ca_bundle(settings))


def ca_verify(settings: Settings) -> str | bool:
    """What httpx verifies against (see `service.tls`); True is httpx's own default."""
    return outgoing_ca_bundle(settings) or True


def google_connector(settings: Settings, credentials: dict[str, Any],
                     recorder: CallObserver | None = None,
                     http: PerThreadHttp | None = None,
                     shared_token: SharedToken | None = None) -> CalendarConnector:
    """A Google connector from an "authorized_user" credentials dict, or, for a person
    reached through a company grant, from the grant's service-account key (``grant``) acting
    as them (``subject``, domain-wide delegation) with the calendar scopes only; with
    `shared_token`, its access token is shared with other processes."""

    creds: Any
    if "grant" in credentials:
        creds = delegated_credentials(credentials["grant"], credentials["subject"],
                                      CALENDAR_SCOPES)
    else:
        creds = google_credentials(
            credentials["refresh_token"], credentials["client_id"],
            credentials["client_secret"],
            credentials.get("token_uri") or settings.google_token_url)
    return GoogleConnector(creds, api_url=settings.google_api_url, observer=recorder,
                           http=http, ca_bundle=outgoing_ca_bundle(settings), max_attempts=3,
                           max_sleep=5.0, shared_token=shared_token)


def google_directory(settings: Settings, key: dict[str, Any], scope: dict[str, str], *,
                     recorder: CallObserver | None = None,
                     page_size: int | None = None) -> GoogleDirectory:
    """The Workspace directory of a grant: its key acting as the grant's admin, with the
    directory read-only scopes (group membership too when the grant names a group)."""
    scopes = [DIRECTORY_USERS_SCOPE] + ([DIRECTORY_MEMBERS_SCOPE] if scope.get("group") else [])
    creds = delegated_credentials(key, scope["admin"], scopes)
    return GoogleDirectory(creds, api_url=settings.google_directory_url,
                           domain=scope.get("domain"), org_unit=scope.get("org_unit"),
                           group=scope.get("group"), observer=recorder,
                           ca_bundle=outgoing_ca_bundle(settings),
                           retry=RetryPolicy(attempts=3, budget=5.0),
                           page_size=page_size or USERS_PAGE)


def msal_provider(settings: Settings, credentials: dict[str, Any]) -> Any:
    """An MSAL token provider from a stored (client id, authority, cache) triple."""

    return MsalTokenProvider(client_id=credentials["client_id"],
                             authority=credentials.get("authority") or settings.microsoft_authority,
                             cache_state=credentials.get("cache"),
                             ca_file=outgoing_ca_bundle(settings),
                             username=credentials.get("username"))
