"""What tests and the demo do to a sandbox "as a person would", for both providers alike.

Each sandbox (Google, Microsoft) implements `SandboxAdmin` on its in-memory store, so the
behaviour tests run as one suite parametrised over both providers. Occurrences are named by
(series key, original start in UTC); series keys are those of `team.SERIES` or returned by
`create_series`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the sandbox served: what tests assert call counts on."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    user: str | None  # the email the access token belongs to


class SandboxAdmin(Protocol):
    provider: str
    base_url: str  # what RAPPORT_GOOGLE_API_URL / RAPPORT_GRAPH_API_URL is set to
    token_url: str  # Google token endpoint / Microsoft authority URL

    def reset(self) -> None:
        """Back to the seeded team, no recorded requests, no injected faults."""

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
        """Create a (recurring) event in the organizer's calendar and copies for attendees on
        this provider; returns its series key."""

    def series_keys(self) -> list[str]:
        """Keys of every series the sandbox knows."""

    def occurrence_starts(self, series_key: str, *, until: datetime) -> list[datetime]:
        """Original starts (UTC) of the series' occurrences up to `until`."""

    def cancel_occurrence(self, series_key: str, original_start: datetime) -> None:
        """The organizer deletes one occurrence (Google: instance status cancelled; Graph:
        occurrence removed for the organizer, isCancelled for attendees)."""

    def move_occurrence(self, series_key: str, original_start: datetime,
                        new_start: datetime) -> None:
        """The organizer moves one occurrence to another time (an exception)."""

    def decline_occurrence(self, series_key: str, original_start: datetime, attendee: str) -> None:
        """An attendee declines one occurrence."""

    def delete_series(self, series_key: str) -> None:
        """The organizer deletes the whole series."""

    def end_series(self, series_key: str, until: datetime) -> None:
        """The organizer cuts the recurrence short (no occurrence after `until`)."""

    def human_edit_description(
        self, owner: str, series_key: str, original_start: datetime, new_description: str
    ) -> None:
        """A person edits the occurrence's description in the provider's UI (bumps the etag;
        the provider may store HTML)."""

    def description_of(self, owner: str, series_key: str, original_start: datetime) -> str:
        """The occurrence's description as stored in `owner`'s calendar."""

    def add_malformed_event(self, owner: str, kind: str) -> str:
        """Insert a broken item into `owner`'s calendar; kind is "malformed", "bad_timezone"
        or "huge_description". Returns its event id."""

    def expire_cursors(self) -> None:
        """Make every issued sync token / delta link invalid (Google 410, Graph 410 resync)."""

    def inject_throttle(self, count: int, *, retry_after: float = 1.0) -> None:
        """The next `count` API requests answer 429 with Retry-After."""

    def throttle_free_busy(self, retry_after: float | None = 1.0) -> None:
        """Every free/busy request (Google freeBusy, Graph getSchedule) answers 429 with
        Retry-After until reset or `retry_after=None`; other requests work."""

    def fail_listing(self, owner: str, *, status: int | None = 500) -> None:
        """Every change listing of `owner`'s calendar (Google events.list, Graph calendarView
        delta) answers `status` until reset or `status=None`; other requests work."""

    def truncate_listing(self, owner: str, *, truncated: bool = True) -> None:
        """Every change listing of `owner`'s calendar answers 200 with its JSON body cut off
        half-way (a proxy or a connection that dropped mid-body) until reset or
        `truncated=False`; other requests work."""

    def inject_malformed_reads(self, owner: str, series_key: str,
                               original_start: datetime) -> str:
        """From now on, reading or patching `owner`'s copy of this occurrence answers an event
        without a readable start (the list stays intact). Returns the copy's event id."""

    def slow_down(self, kind: str, delay: float | None) -> None:
        """Every change listing (kind "list") or event write ("write") waits `delay` seconds
        before it is served, so a test can act while one is in flight; kind "any": every
        request, token endpoint included (a remote provider's latency). None: heal."""

    def serving(self, kind: str, owner: str | None = None) -> int:
        """How many listings ("list") or writes ("write") of `owner`'s calendar (or anyone's)
        are being served right now."""

    def fail_writes(self, owner: str, *, status: int | None = 410) -> None:
        """Every write of an event in `owner`'s calendar answers `status` (410: the event is
        gone) until reset or `status=None`; other requests work."""

    def revoke(self, email: str) -> None:
        """Revoke the person's grant: refresh answers invalid_grant, access tokens 401."""

    def requests(self) -> list[RecordedRequest]:
        """Requests served since the last reset (or `clear_requests`)."""

    def clear_requests(self) -> None:
        """Forget recorded requests (to count the calls of one step)."""
