"""`GoogleSandbox`: a local Google Calendar v3 server plus the admin actions of `SandboxAdmin`.

The real client (google-api-python-client with ``client_options={"api_endpoint": base_url}``
and google-auth with ``token_uri=token_url``) talks to it unchanged. Admin actions act as
the organizer would in Google's UI: an occurrence is cancelled, moved, declined or edited as
an exception of its series; a deleted series makes all its instances cancelled.
"""

from __future__ import annotations

import html
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sandbox.admin import RecordedRequest
from sandbox.google import recurrence, seed
from sandbox.google.app import SandboxApp
from sandbox.google.company import DirectoryEntry, team_directory
from sandbox.google.consent import AUTHORIZE_PATH, GoogleConsent
from sandbox.google.directory_api import DirectoryApi
from sandbox.google.runtime import Runtime
from sandbox.google.server import ServerThread
from sandbox.google.store import CalendarState, EventRecord, GoogleStore
from sandbox.google.workspace import DirectoryUser
from sandbox.https import HttpsServer
from sandbox.team import TEAM, Population

log = logging.getLogger(__name__)

_MALFORMED_KINDS = ("malformed", "bad_timezone", "huge_description")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GoogleSandbox:
    """In-memory Google Calendar served over HTTP; a `SandboxAdmin`."""

    provider = "google"

    def __init__(
        self,
        now: Callable[[], datetime] = _utc_now,
        *,
        html_edits: bool = True,
        population: Population = TEAM,
        directory: tuple[DirectoryEntry, ...] | None = None,
        tls: bool = False,
    ) -> None:
        self.now = now
        self.html_edits = html_edits  # human edits are stored as HTML, like Google's editor
        self.population = population  # who is seeded (the demo team unless told otherwise)
        # the Workspace directory (default: the population's Google people and an IT admin)
        self.directory = directory if directory is not None else team_directory(population)
        self.store = GoogleStore()
        self.runtime = Runtime(now=now, population=population)
        self._keys: dict[str, str] = {}  # series key -> event id
        self._counter = itertools.count(1)
        self.tls = tls  # HTTPS with a throwaway CA (`ca_file`): what google-auth-oauthlib needs
        self._server: ServerThread | HttpsServer | None = None
        self.base_url = ""  # API root for ``api_endpoint`` (ends in /calendar/v3/); set by start()
        self.token_url = ""  # OAuth token endpoint for google-auth's ``token_uri``; set by start()
        self.auth_url = ""  # the consent screen (RAPPORT_GOOGLE_AUTH_URL); set by start()
        self.consent = GoogleConsent(self.runtime)
        self._app = SandboxApp(self.store, self.runtime, lambda: self.base_url, self.consent)
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> GoogleSandbox:
        """Serve on 127.0.0.1 and a free port; returns self once ready."""
        if self._server is None:
            app = self._app.build()
            app.router.routes.extend(DirectoryApi(self._app, self.runtime).routes())
            if self.tls:
                self._server = HttpsServer(app, name="google-sandbox")
            else:
                self._server = ServerThread(app)
            self._server.start()
            scheme = "https" if self.tls else "http"
            origin = f"{scheme}://127.0.0.1:{self._server.port}"
            self.base_url = f"{origin}/calendar/v3/"
            self.token_url = f"{origin}/token"
            self.auth_url = f"{origin}{AUTHORIZE_PATH}"
            log.info("google sandbox listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            self.base_url = self.token_url = self.auth_url = ""

    @property
    def ca_file(self) -> str | None:
        """PEM of the CA that signed the HTTPS certificate (None when serving plain HTTP)."""
        return self._server.ca_file if isinstance(self._server, HttpsServer) else None

    def register_client(self, client_id: str, *, client_secret: str,
                        redirect_uris: list[str]) -> None:
        """Register an OAuth web client and its redirect URIs, as in Google Cloud Console."""
        self.consent.codes.register(client_id, client_secret=client_secret,
                                    redirect_uris=redirect_uris)

    def __enter__(self) -> GoogleSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- SandboxAdmin ---------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seeded population, no recorded requests, no injected faults."""
        with self.store.lock:
            self.store.events.clear()
            self.store.calendars.clear()
            self._keys = seed.seed(self.store, self.now(), self.population)
        self.runtime.reset()
        for entry in self.directory:
            self.add_directory_user(entry.email, entry.name, org_unit=entry.org_unit,
                                    manager=entry.manager, suspended=entry.suspended,
                                    is_admin=entry.is_admin, time_zone=entry.time_zone)
        self.consent.codes.reset()

    def create_series(
        self,
        *,
        organizer: str,
        attendees: list[str],
        title: str,
        first_start: datetime,
        minutes: int = 30,
        rrule: str | None = "RRULE:FREQ=WEEKLY",
        time_zone: str = "UTC",
        description: str = "",
    ) -> str:
        """Create an event for the organizer and Google attendees; returns its key."""
        key = f"created-{next(self._counter)}"
        with self.store.lock:
            rec = seed.add_series(
                self.store,
                key=key,
                organizer=organizer,
                attendees=attendees,
                title=title,
                start=first_start,
                minutes=minutes,
                rrule=rrule,
                time_zone=time_zone,
                description=description,
                now=self.now(),
                population=self.population,
            )
            if rec is None:
                raise ValueError("nobody of this series has a Google calendar")
            rec.created = rec.updated = self.now()  # booked now (seeded ones are older)
            self._keys[key] = rec.id
        return key

    def series_keys(self) -> list[str]:
        """Keys of every series the sandbox knows."""
        return list(self._keys)

    def event_id(self, series_key: str) -> str:
        """The Google event id of a series (the master's id)."""
        return self._keys[series_key]

    def _rec(self, series_key: str) -> EventRecord:
        try:
            return self.store.events[self._keys[series_key]]
        except KeyError as err:
            raise KeyError(f"unknown series {series_key!r}") from err

    def _original(self, rec: EventRecord, original_start: datetime) -> datetime:
        original = original_start.astimezone(UTC)
        if not rec.recurrence:
            raise ValueError(f"{rec.series_key} is not recurring")
        if original not in self.store.instance_starts(rec, max(self._horizon(), original)):
            raise ValueError(f"{rec.series_key} has no occurrence at {original.isoformat()}")
        return original

    def _horizon(self) -> datetime:
        return self.now().astimezone(UTC) + recurrence.HORIZON

    def occurrence_starts(self, series_key: str, *, until: datetime) -> list[datetime]:
        """Original starts (UTC) of the series' occurrences up to `until`."""
        with self.store.lock:
            rec = self._rec(series_key)
            if not rec.recurrence:
                start = rec.start.astimezone(UTC)
                return [start] if start <= until else []
            return self.store.live_starts(rec, until.astimezone(UTC))

    def cancel_occurrence(self, series_key: str, original_start: datetime) -> None:
        """The organizer deletes one occurrence: the instance becomes status cancelled."""
        with self.store.lock:
            rec = self._rec(series_key)
            original = self._original(rec, original_start)
            self.store.touch_instance(rec, original, self.now()).status = "cancelled"

    def move_occurrence(
        self, series_key: str, original_start: datetime, new_start: datetime
    ) -> None:
        """The organizer moves one occurrence (an exception; originalStartTime kept)."""
        with self.store.lock:
            rec = self._rec(series_key)
            original = self._original(rec, original_start)
            override = self.store.touch_instance(rec, original, self.now())
            override.start = new_start.astimezone(UTC)
            override.end = override.start + rec.duration

    def decline_occurrence(self, series_key: str, original_start: datetime, attendee: str) -> None:
        """An attendee declines one occurrence (visible in every copy)."""
        with self.store.lock:
            rec = self._rec(series_key)
            original = self._original(rec, original_start)
            self.store.touch_instance(rec, original, self.now()).responses[attendee.lower()] = (
                "declined"
            )

    def delete_series(self, series_key: str) -> None:
        """The organizer deletes the series: master and every instance cancelled."""
        with self.store.lock:
            rec = self._rec(series_key)
            rec.status = "cancelled"
            self.store.touch(rec, self.now())

    def end_series(self, series_key: str, until: datetime) -> None:
        """The organizer cuts the series short (UNTIL); later instances become cancelled."""
        with self.store.lock:
            rec = self._rec(series_key)
            if not rec.recurrence:
                raise ValueError(f"{series_key} is not recurring")
            horizon = self._horizon()
            before = set(self.store.live_starts(rec, horizon))
            rec.recurrence = recurrence.with_until(rec.recurrence, until)
            after = set(self.store.live_starts(rec, horizon))
            rec.removed |= before - after
            self.store.touch(rec, self.now())

    def human_edit_description(
        self, owner: str, series_key: str, original_start: datetime, new_description: str
    ) -> None:
        """A person edits one occurrence's description in Google's UI (stored as simple HTML)."""
        text = new_description
        if self.html_edits and "\n" in text and "<" not in text:
            text = "<br>".join(html.escape(line, quote=False) for line in text.split("\n"))
        with self.store.lock:
            rec = self._rec(series_key)
            self._require_copy(owner, rec)
            if rec.recurrence:
                original = self._original(rec, original_start)
                self.store.touch_instance(rec, original, self.now()).description = text
            else:
                rec.description = text
                self.store.touch(rec, self.now())

    def description_of(self, owner: str, series_key: str, original_start: datetime) -> str:
        """The occurrence's description as stored in `owner`'s calendar."""
        with self.store.lock:
            rec = self._rec(series_key)
            self._require_copy(owner, rec)
            if not rec.recurrence:
                return rec.description
            return self.store.instance_description(rec, self._original(rec, original_start))

    def _require_copy(self, owner: str, rec: EventRecord) -> None:
        if owner.lower() not in rec.calendars:
            raise KeyError(f"{owner} holds no copy of {rec.series_key}")

    def add_malformed_event(self, owner: str, kind: str) -> str:
        """Insert a broken item ("malformed", "bad_timezone", "huge_description")."""
        if kind not in _MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {_MALFORMED_KINDS}")
        owner = owner.lower()
        now = self.now()
        event_id = f"broken{next(self._counter)}{kind.replace('_', '')}"
        start = (now + timedelta(days=2)).replace(microsecond=0)
        raw: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "summary": f"Broken ({kind})",
            "iCalUID": f"{event_id}@rapport-sandbox",
            "organizer": {"email": owner, "self": True},
            "updated": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat(), "timeZone": "UTC"},
        }
        if kind == "malformed":
            del raw["start"]
        elif kind == "bad_timezone":
            raw["start"]["timeZone"] = raw["end"]["timeZone"] = "Mars/Olympus_Mons"
        else:
            raw["description"] = "x" * (2 * 1024 * 1024)
        with self.store.lock:
            rec = EventRecord(
                id=event_id,
                ical_uid=raw["iCalUID"],
                summary=raw["summary"],
                description="",
                organizer=owner,
                organizer_name=None,
                participants=[],
                time_zone="UTC",
                start=start,
                duration=timedelta(minutes=30),
                etag="",
                created=now,
                updated=now,
                calendars={owner},
                raw=raw,
            )
            self.store.add(rec)
            raw["etag"] = rec.etag
        return event_id

    def expire_cursors(self) -> None:
        """Make every issued sync token invalid (410 fullSyncRequired)."""
        with self.runtime.lock:
            self.runtime.epoch += 1

    def inject_throttle(self, count: int, *, retry_after: float = 1.0) -> None:
        """The next `count` API requests answer 429 with Retry-After."""
        with self.runtime.lock:
            self.runtime.throttle_left = count
            self.runtime.throttle_retry_after = retry_after

    def throttle_free_busy(self, retry_after: float | None = 1.0) -> None:
        """Every freeBusy query answers 429 with Retry-After until reset (None: heal)."""
        with self.runtime.lock:
            self.runtime.free_busy_retry_after = retry_after

    def fail_listing(self, owner: str, *, status: int | None = 500) -> None:
        """Every events.list of `owner`'s calendar answers `status` until reset (None: heal)."""
        self.runtime.edge.fail_listing(owner, status)

    def truncate_listing(self, owner: str, *, truncated: bool = True) -> None:
        """Every events.list of `owner`'s calendar answers 200 with half its body."""
        self.runtime.edge.truncate_listing(owner, truncated)

    def inject_malformed_reads(self, owner: str, series_key: str,
                               original_start: datetime) -> str:
        """events.get and events.patch of this occurrence answer it without ``start``."""
        with self.store.lock:
            rec = self._rec(series_key)
            self._require_copy(owner, rec)
            event_id = rec.id if not rec.recurrence else recurrence.instance_id(
                rec.id, self._original(rec, original_start), all_day=rec.all_day)
        with self.runtime.lock:
            self.runtime.malformed_reads.add(event_id)
        return event_id

    def slow_down(self, kind: str, delay: float | None) -> None:
        """Listings ("list"), event writes ("write") or every request ("any") wait `delay` s
        first (None: heal)."""
        self.runtime.edge.slow_down(kind, delay)

    def serving(self, kind: str, owner: str | None = None) -> int:
        """Listings or writes (of `owner`'s calendar) being served right now."""
        return self.runtime.edge.serving(kind, owner)

    def fail_writes(self, owner: str, *, status: int | None = 410) -> None:
        """events.patch on `owner`'s calendar answers `status` until reset (None: heal)."""
        self.runtime.edge.fail_writes(owner, status)

    def revoke(self, email: str) -> None:
        """Revoke the person's grant: refresh answers invalid_grant, access tokens 401."""
        self.runtime.revoke(email)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on, as an hour after it was
        issued; grants stay valid, so a refresh gets a new one."""
        with self.runtime.lock:
            self.runtime.access_tokens.clear()

    # -- Google Workspace (Admin console and directory) --------------------------------------

    def mint_service_account_key(self, name: str = "rapport") -> dict[str, Any]:
        """A new service account's key file (fresh RSA key), ``token_uri`` = this sandbox."""
        return self.runtime.workspace.mint_key(self.token_url, name=name)

    def authorise_delegation(self, client_id: str, scopes: list[str]) -> None:
        """Admin console > Security > API controls > Manage Domain Wide Delegation: the client
        id may act for the domain's users within `scopes`."""
        self.runtime.workspace.authorise(client_id, scopes)

    def add_directory_user(self, email: str, name: str, *, org_unit: str = "/",
                           manager: str | None = None, suspended: bool = False,
                           is_admin: bool = False, time_zone: str = "UTC") -> DirectoryUser:
        """Add (or update) a user of the domain, with a primary calendar if they have none."""
        user = self.runtime.workspace.add_user(email, name, org_unit=org_unit, manager=manager,
                                               suspended=suspended, is_admin=is_admin)
        with self.store.lock:
            self.store.calendars.setdefault(
                user.email, CalendarState(owner=user.email, name=name, time_zone=time_zone))
        return user

    def set_manager(self, email: str, manager: str | None) -> None:
        """The admin changes a user's manager relation (None: no manager)."""
        with self.runtime.workspace.lock:
            user = self.runtime.workspace.users[email.lower()]
            user.manager = manager.lower() if manager else None

    def suspend_user(self, email: str, suspended: bool = True) -> None:
        """The admin suspends (or restores) a user: no new delegated tokens for them."""
        with self.runtime.workspace.lock:
            self.runtime.workspace.users[email.lower()].suspended = suspended

    def add_group(self, email: str, members: list[str]) -> None:
        """A group of the domain with these user members."""
        with self.runtime.workspace.lock:
            self.runtime.workspace.groups[email.lower()] = [m.lower() for m in members]

    def fail_directory_page(self, page: int, *, status: int | None = 500) -> None:
        """users.list page number `page` (0 = first) answers `status` until healed (None)."""
        with self.runtime.workspace.lock:
            if status is None:
                self.runtime.workspace.failing_pages.pop(page, None)
            else:
                self.runtime.workspace.failing_pages[page] = status

    def requests(self) -> list[RecordedRequest]:
        """Requests served since the last reset (or `clear_requests`)."""
        with self.runtime.lock:
            return list(self.runtime.recorded)

    def clear_requests(self) -> None:
        """Forget recorded requests (to count the calls of one step)."""
        with self.runtime.lock:
            self.runtime.recorded.clear()

    # -- push -----------------------------------------------------------------------------

    def channels(self) -> list[dict[str, Any]]:
        """The open push channels (id, resourceId, calendar, address, expiration)."""
        with self.runtime.lock:
            return [
                {
                    "id": c.id,
                    "resourceId": c.resource_id,
                    "calendar": c.calendar,
                    "address": c.address,
                    "expiration": c.expiration_ms,
                }
                for c in self.runtime.channels.values()
            ]

    def notify(self, calendar: str, *, state: str = "exists", timeout: float = 5.0) -> list[int]:
        """POST a change notification to every channel on `calendar`; returns the HTTP statuses.

        Headers as in https://developers.google.com/calendar/api/guides/push#receiving-notifications.
        """
        with self.runtime.lock:
            channels = [c for c in self.runtime.channels.values() if c.calendar == calendar.lower()]
            messages = []
            for c in channels:
                c.message_number += 1
                messages.append((c, c.message_number))
        statuses: list[int] = []
        for channel, number in messages:
            uri = f"{self.base_url}calendars/{channel.calendar}/events?alt=json"
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-State": state,
                "X-Goog-Resource-URI": uri,
                "X-Goog-Message-Number": str(number),
                "X-Goog-Channel-Expiration": datetime.fromtimestamp(
                    channel.expiration_ms / 1000, UTC
                ).strftime("%a, %d %b %Y %H:%M:%S GMT"),
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            try:
                statuses.append(
                    httpx.post(channel.address, headers=headers, timeout=timeout).status_code
                )
            except httpx.HTTPError as err:
                log.warning("push to channel %s failed: %s", channel.id, err)
                statuses.append(0)
        return statuses
