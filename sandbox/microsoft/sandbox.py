"""`GraphSandbox`: the Microsoft 365 side of the local calendar sandbox, with admin helpers.

Admin actions act as the organizer or attendee would in Outlook. Documented behaviour
followed: deleting an occurrence removes it from the organizer's calendar (delta
``@removed``) while attendees get a cancellation that marks their copy ``isCancelled``
until they remove it (https://learn.microsoft.com/en-us/graph/api/event-cancel,
https://learn.microsoft.com/en-us/graph/api/resources/event "isCancelled"); moving or
editing one occurrence turns it into an ``exception``; an attendee declining one occurrence
removes it from their calendar (delta ``@removed``) and marks them declined in the
organizer's copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sandbox.admin import RecordedRequest
from sandbox.https import HttpsServer
from sandbox.microsoft.api import Faults, GraphState, create_app, send_lifecycle, send_notifications
from sandbox.microsoft.authority import TENANT, Grants
from sandbox.microsoft.delta import DeltaEngine
from sandbox.microsoft.model import Item, opaque_id, outlook_html
from sandbox.microsoft.store import HORIZON, SeriesState, Store
from sandbox.microsoft.tenants import (
    APP_PERMISSIONS,
    COMPANY_TENANT_ID,
    AppCredentials,
    DirectoryUser,
    Tenants,
)
from sandbox.team import TEAM, Population

log = logging.getLogger(__name__)


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


class GraphSandbox:
    """An HTTPS Graph v1.0 + Entra authority on 127.0.0.1, seeded from `team.py` (or from
    the `population` given)."""

    provider = "microsoft"

    def __init__(
        self,
        now: Callable[[], datetime] | None = None,
        tenant: str = TENANT,
        *,
        population: Population = TEAM,
    ) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.tenant = tenant
        self.population = population
        self.store = Store(self.now, population)
        self.grants = Grants(self.now, population)
        self.faults = Faults()
        self.tenants = Tenants(self.now)
        self.state = GraphState(
            self.store,
            DeltaEngine(self.store),
            self.grants,
            self.faults,
            root=lambda: self._server.origin,
            tenants=self.tenants,
            tenant=tenant,
        )
        self._server = HttpsServer(create_app(self.state), name="graph-sandbox")
        self.reset()

    # lifecycle ----------------------------------------------------------------

    def start(self) -> GraphSandbox:
        """Start serving (returns self)."""
        self._server.start()
        log.info("Graph sandbox listening on %s", self._server.origin)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    @property
    def base_url(self) -> str:
        """The Graph root, what RAPPORT_GRAPH_API_URL is set to."""
        return self._server.origin + "/v1.0"

    @property
    def token_url(self) -> str:
        """The authority URL, what RAPPORT_MICROSOFT_AUTHORITY is set to."""
        return f"{self._server.origin}/{self.tenant}"

    @property
    def ca_file(self) -> str:
        """PEM of the CA that signed the sandbox certificate (RAPPORT_CA_BUNDLE)."""
        return self._server.ca_file

    def reset(self) -> None:
        """Back to the seeded team, no recorded requests, no injected faults."""
        with self.store.lock:
            self.store.seed()
            self.state.delta.expire()
            self.state.subscriptions.clear()
        self.grants.reset()
        self.tenants.reset()
        with self.faults.lock:
            self.faults.throttle = 0
            self.faults.schedule_retry_after = None
            self.faults.malformed_reads.clear()
            self.faults.batched_throttle = 0
            self.faults.event_lists.clear()
            self.faults.edge.reset()
            self.faults.requests.clear()

    # admin: series ------------------------------------------------------------

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
        """Create a (recurring) event for the organizer and copies for attendees here."""
        key = self.store.new_key()
        self.store.add_series(
            SeriesState(
                key=key,
                organizer=organizer,
                attendees=list(attendees),
                title=title,
                time_zone=time_zone,
                first_start=first_start.astimezone(ZoneInfo(time_zone)),
                minutes=minutes,
                rrule=rrule,
                description=description,
            )
        )
        return key

    def series_keys(self) -> list[str]:
        """Keys of every series the sandbox knows."""
        return list(self.store.series)

    def occurrence_starts(self, series_key: str, *, until: datetime) -> list[datetime]:
        """Original starts (UTC) of the series' occurrences up to `until`, minus cancelled ones."""
        spec = self.store.series[series_key]
        if spec.deleted:
            return []
        return [s for s in spec.original_starts(_utc(until)) if s not in spec.cancelled]

    def _copies(self, series_key: str, original_start: datetime) -> list[Item]:
        return self.store.occurrence_copies(series_key, original_start)

    def cancel_occurrence(self, series_key: str, original_start: datetime) -> None:
        """Organizer deletes one occurrence: removed for them, isCancelled for attendees."""
        with self.store.lock:
            spec = self.store.series[series_key]
            spec.cancelled.add(_utc(original_start))
            for item in self._copies(series_key, original_start):
                if item.owner == spec.organizer:
                    item.removed = True
                else:
                    item.is_cancelled = True
                    item.subject = f"Canceled: {spec.title}"
                self.store.touch(item)

    def move_occurrence(
        self, series_key: str, original_start: datetime, new_start: datetime
    ) -> None:
        """Organizer moves one occurrence: it becomes an exception in every copy."""
        with self.store.lock:
            for item in self._copies(series_key, original_start):
                length = item.end - item.start
                item.start, item.end = _utc(new_start), _utc(new_start) + length
                if item.kind == "occurrence":
                    item.kind = "exception"
                self.store.touch(item)

    def decline_occurrence(self, series_key: str, original_start: datetime, attendee: str) -> None:
        """An attendee declines one occurrence, as Outlook does by default.

        Declining removes the meeting from the attendee's own calendar (Exchange moves it to
        Deleted Items unless the mailbox turned on "Save declined events"; see Microsoft's
        "Preserve declined meetings" for Exchange Online), so their delta reports the copy
        ``@removed``; the decline goes to the organizer, whose copy then shows the attendee's
        ``status.response`` as ``declined``
        (https://learn.microsoft.com/en-us/graph/api/event-decline). The organizer cannot
        decline their own meeting; for them only the response changes.
        """
        with self.store.lock:
            spec = self.store.series[series_key]
            for item in self._copies(series_key, original_start):
                if item.owner == attendee and attendee != spec.organizer:
                    item.response = "declined"
                    item.removed = True
                elif item.owner == spec.organizer:
                    for a in item.attendees:
                        if a.email == attendee:
                            a.response = "declined"
                    if item.owner == attendee:
                        item.response = "declined"
                else:
                    continue
                self.store.touch(item)

    def delete_series(self, series_key: str) -> None:
        """Organizer deletes the series: gone for them, cancelled for attendees."""
        with self.store.lock:
            spec = self.store.series[series_key]
            spec.deleted = True
            for item in list(self.store.items_of(series_key)):
                if item.removed:
                    continue
                if item.owner == spec.organizer:
                    item.removed = True
                else:
                    item.is_cancelled = True
                    item.subject = f"Canceled: {spec.title}"
                self.store.touch(item)

    def end_series(self, series_key: str, until: datetime) -> None:
        """Organizer ends the recurrence at `until`: later occurrences leave every calendar."""
        with self.store.lock:
            spec = self.store.series[series_key]
            spec.until = _utc(until)
            for item in list(self.store.items_of(series_key)):
                if item.kind == "seriesMaster":
                    item.recurrence = {
                        **(item.recurrence or {}),
                        "range": {
                            **dict((item.recurrence or {}).get("range", {})),  # type: ignore[call-overload]
                            "type": "endDate",
                            "endDate": spec.until.date().isoformat(),
                        },
                    }
                    self.store.touch(item)
                elif item.original_start and item.original_start > spec.until and not item.removed:
                    item.removed = True
                    self.store.touch(item)

    # admin: descriptions and faults ---------------------------------------------

    def _copy_of(self, owner: str, series_key: str, original_start: datetime) -> Item:
        for item in self._copies(series_key, original_start):
            if item.owner == owner:
                return item
        raise KeyError(f"{owner} holds no copy of {series_key} at {original_start}")

    def human_edit_description(
        self, owner: str, series_key: str, original_start: datetime, new_description: str
    ) -> None:
        """A person edits the occurrence's body in Outlook, which stores HTML: plain text is
        wrapped the way Outlook does; a whole HTML document is taken as Outlook wrote it."""
        document = new_description.lstrip().lower().startswith("<html")
        with self.store.lock:
            item = self._copy_of(owner, series_key, original_start)
            item.body = new_description if document else outlook_html(new_description)
            item.body_type = "html"
            if item.kind == "occurrence":
                item.kind = "exception"
            self.store.touch(item)

    def description_of(self, owner: str, series_key: str, original_start: datetime) -> str:
        """The occurrence's body as stored in `owner`'s calendar (HTML)."""
        return self._copy_of(owner, series_key, original_start).body

    def add_malformed_event(self, owner: str, kind: str) -> str:
        """A broken single event tomorrow: "malformed", "bad_timezone" or "huge_description"."""
        overrides: dict[str, dict[str, object]] = {
            "malformed": {"start": {"dateTime": "not-a-date", "timeZone": "UTC"}},
            "bad_timezone": {
                "start": {
                    "dateTime": "2030-01-01T10:00:00.0000000",
                    "timeZone": "Mars/Olympus_Mons",
                },
                "end": {"dateTime": "2030-01-01T11:00:00.0000000", "timeZone": "Mars/Olympus_Mons"},
            },
            "huge_description": {
                "body": {"contentType": "html", "content": "<p>" + "x" * 2_100_000 + "</p>"}
            },
        }
        if kind not in overrides:
            raise ValueError(f"unknown kind {kind!r}")
        start = _utc(self.now()).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        key = self.create_series(
            organizer=owner, attendees=[], title=f"Broken ({kind})", first_start=start, rrule=None
        )
        item = next(iter(self.store.items_of(key)))
        with self.store.lock:
            item.overrides = dict(overrides[kind])
            self.store.touch(item)
        return item.id

    def expire_cursors(self) -> None:
        """Every delta link answers 410 syncStateNotFound from now on."""
        self.state.delta.expire()

    def inject_throttle(self, count: int, *, retry_after: float = 1.0) -> None:
        """The next `count` Graph requests answer 429 TooManyRequests with Retry-After."""
        with self.faults.lock:
            self.faults.throttle, self.faults.retry_after = count, retry_after

    def throttle_batched(self, count: int) -> None:
        """The next `count` requests inside JSON batches answer 429 on their own."""
        with self.faults.lock:
            self.faults.batched_throttle = count

    def fail_event_lists(self, *statuses: int | None, retry_after: float = 1.0) -> None:
        """The next events lists (GET .../events) answer `statuses` in order (None: served;
        429 with Retry-After: `retry_after`)."""
        with self.faults.lock:
            self.faults.event_lists[:] = statuses
            self.faults.retry_after = retry_after

    def throttle_free_busy(self, retry_after: float | None = 1.0) -> None:
        """Every getSchedule answers 429 TooManyRequests with Retry-After until reset
        (None: heal)."""
        with self.faults.lock:
            self.faults.schedule_retry_after = retry_after

    def fail_listing(self, owner: str, *, status: int | None = 500) -> None:
        """Every calendarView delta of `owner`'s calendar answers `status` until reset
        (None: heal)."""
        self.faults.edge.fail_listing(owner, status)

    def truncate_listing(self, owner: str, *, truncated: bool = True) -> None:
        """Every calendarView delta of `owner`'s calendar answers 200 with half its body."""
        self.faults.edge.truncate_listing(owner, truncated)

    def inject_malformed_reads(self, owner: str, series_key: str,
                               original_start: datetime) -> str:
        """GET and PATCH of this occurrence's copy answer it with an unreadable start."""
        with self.store.lock:
            event_id = self._copy_of(owner, series_key, original_start).id
        with self.faults.lock:
            self.faults.malformed_reads.add(event_id)
        return event_id

    def slow_down(self, kind: str, delay: float | None) -> None:
        """Delta listings ("list"), event writes ("write") or every request ("any") wait
        `delay` s first (None: heal)."""
        self.faults.edge.slow_down(kind, delay)

    def serving(self, kind: str, owner: str | None = None) -> int:
        """Listings or writes (of `owner`'s calendar) being served right now."""
        return self.faults.edge.serving(kind, owner)

    def fail_writes(self, owner: str, *, status: int | None = 410) -> None:
        """PATCH of an event in `owner`'s mailbox answers `status` until reset (None: heal)."""
        self.faults.edge.fail_writes(owner, status)

    def revoke(self, email: str) -> None:
        """Refresh answers invalid_grant and access tokens 401 for this person."""
        with self.grants.lock:
            self.grants.revoked.add(email)

    def requests(self) -> list[RecordedRequest]:
        """Requests served since the last reset (or `clear_requests`)."""
        with self.faults.lock:
            return list(self.faults.requests)

    def clear_requests(self) -> None:
        """Forget recorded requests."""
        with self.faults.lock:
            self.faults.requests.clear()

    # Microsoft-only helpers -------------------------------------------------------

    def register_client(self, client_id: str, *, redirect_uris: list[str]) -> None:
        """Register a public client's web redirect URIs, as in the Entra admin center."""
        self.grants.codes.register(client_id, redirect_uris=redirect_uris)

    def approve_device_code(self, user_code: str, email: str) -> None:
        """`email` completes the device code sign-in showing `user_code`."""
        self.grants.approve_device(user_code, email)

    def seed_company(self, users: list[DirectoryUser], *, tenant: str = COMPANY_TENANT_ID,
                     domain: str = "acme.test") -> str:
        """A company in Entra: its users (listing order kept), managers, disabled accounts
        and mailbox time zones; each user gets a mailbox (people of the seeded team keep
        theirs, with their meetings). Returns the tenant id."""
        company = self.tenants.tenant(tenant, domain)
        with self.store.lock, self.tenants.lock:
            for user in users:
                company.add(user)
                self.store.mailboxes.setdefault(user.email.lower(), {})
        return company.id

    def register_app(self, *, tenant: str = COMPANY_TENANT_ID, domain: str = "acme.test",
                     client_id: str | None = None, secret: bool = True,
                     certificate: bool = False,
                     permissions: tuple[str, ...] = APP_PERMISSIONS) -> AppCredentials:
        """An administrator registers an app in the tenant, adds a client secret and/or a
        certificate, and grants `permissions` (application permissions, admin consent)."""
        return self.tenants.register(self.tenants.tenant(tenant, domain), client_id=client_id,
                                     secret=secret, certificate=certificate,
                                     permissions=permissions)

    def restrict_app(self, client_id: str, mailboxes: list[str] | None) -> None:
        """An application access policy (RestrictAccess to a group of `mailboxes`), or
        None to lift it: mailboxes outside answer 403 ErrorAccessDenied to the app."""
        app = self.tenants.app(client_id)
        with self.tenants.lock:
            app.mailboxes = None if mailboxes is None else frozenset(m.lower() for m in mailboxes)

    def revoke_app(self, client_id: str) -> None:
        """An administrator removes the app's secrets and certificates and its consent: new
        tokens are refused (invalid_client) and issued ones answer 401."""
        app = self.tenants.app(client_id)
        with self.tenants.lock:
            app.secrets.clear()
            app.certificates.clear()
            for token in [t for t, a in self.tenants.tokens.items() if a.client_id == client_id]:
                del self.tenants.tokens[token]

    def set_manager(self, email: str, manager: str | None) -> None:
        """The directory names a new manager (None: none) for a user."""
        user = self.tenants.user_by_email(email)
        if user is None:
            raise KeyError(email)
        with self.tenants.lock:
            user.manager = manager.lower() if manager else None

    def disable_user(self, email: str) -> None:
        """An administrator blocks sign-in: ``accountEnabled`` becomes false."""
        user = self.tenants.user_by_email(email)
        if user is None:
            raise KeyError(email)
        with self.tenants.lock:
            user.enabled = False

    def notify(self, email: str) -> int:
        """Post a change notification (with clientState) to the mailbox's subscriptions."""
        return send_notifications(self.state, email)

    def lifecycle(self, email: str, event: str) -> int:
        """Post a lifecycle notification (`reauthorizationRequired`, `subscriptionRemoved`,
        `missed`) to the mailbox's subscriptions that gave a lifecycleNotificationUrl."""
        return send_lifecycle(self.state, email, event)

    def calendar_id(self, email: str) -> str:
        """The id of a person's default calendar."""
        return self.store.calendar_id(email)

    def event_id(self, owner: str, series_key: str, original_start: datetime) -> str:
        """The id of an occurrence in `owner`'s mailbox."""
        return self._copy_of(owner, series_key, original_start).id


__all__ = ["GraphSandbox", "HORIZON", "opaque_id"]
