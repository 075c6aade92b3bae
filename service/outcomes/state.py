"""The outcome state machine of one occurrence, as pure functions over plain facts.

Nothing here touches the database or the clock: `service.py` gathers `Facts`, asks
`decide`, and stores what it answers. That keeps every edge below testable on its own.

States (what `Occurrence.outcome` and `Occurrence.check_due_at` say together)::

    SCHEDULED   outcome NULL, check_due_at NULL   confirmed, nobody declined
    IN_GRACE    outcome NULL, check_due_at set    cancelled or declined; waiting
    decided     outcome set                       one of `Outcome`

Edges::

    SCHEDULED --cancelled / declined noticed------------> IN_GRACE  (due = noticed + grace)
    SCHEDULED --ended, at its original time-------------> HELD
    SCHEDULED --ended, at another time------------------> MOVED
    SCHEDULED --ended, nothing known of the people------> UNKNOWN
    IN_GRACE  --confirmed again, nobody declining-------> SCHEDULED  (check_due_at cleared)
    IN_GRACE  --the series ended------------------------> SERIES_ENDED            no alert
    IN_GRACE  --a replacement exists--------------------> RESCHEDULED             no alert
    IN_GRACE  --grace over, cancelled-------------------> CANCELLED_NO_RESCHEDULE alert
    IN_GRACE  --grace over, the manager declined--------> DECLINED_BY_MANAGER     alert
    IN_GRACE  --grace over, the report declined---------> DECLINED_BY_REPORT      alert
    CANCELLED_NO_RESCHEDULE / DECLINED_BY_* --replacement found or put back--> RESCHEDULED
                                                          (recorded; never a second alert)

An alert goes out only on the IN_GRACE -> drop edge, and only when the pair is not muted and
the drop is fresh: an occurrence that was already over long before we noticed it (history
read on a first sync) gets its outcome recorded without an email. HELD, MOVED, RESCHEDULED,
SERIES_ENDED and UNKNOWN are final; a series that is deleted or cut short therefore yields the
one "ended" mark on its `Series` row and a quiet SERIES_ENDED on each dropped occurrence,
never an alert per occurrence.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.pairs.models import Outcome


class Phase(enum.StrEnum):
    """Where an occurrence stands before (or after) its outcome is decided."""

    SCHEDULED = "scheduled"
    IN_GRACE = "in_grace"
    DECIDED = "decided"


DROPS = frozenset({Outcome.CANCELLED_NO_RESCHEDULE, Outcome.DECLINED_BY_MANAGER,
                   Outcome.DECLINED_BY_REPORT})

DECLINED = "declined"


@dataclass(frozen=True)
class Facts:
    """Everything the decision needs about one occurrence, read at one moment."""

    original_start: datetime
    scheduled_start: datetime
    scheduled_end: datetime
    cancelled: bool
    manager_response: str | None
    report_response: str | None
    outcome: Outcome | None = None
    check_due_at: datetime | None = None
    series_ended: bool = False
    replacement: bool = False  # a separate meeting of the two within the window
    muted: bool = False

    @property
    def phase(self) -> Phase:
        """SCHEDULED, IN_GRACE or DECIDED, from the stored columns."""
        if self.outcome is not None:
            return Phase.DECIDED
        return Phase.SCHEDULED if self.check_due_at is None else Phase.IN_GRACE

    @property
    def drop(self) -> Outcome | None:
        """The kind of drop the calendar shows right now, if any (cancel beats decline)."""
        if self.cancelled:
            return Outcome.CANCELLED_NO_RESCHEDULE
        if self.manager_response == DECLINED:
            return Outcome.DECLINED_BY_MANAGER
        if self.report_response == DECLINED:
            return Outcome.DECLINED_BY_REPORT
        return None


@dataclass(frozen=True)
class Decision:
    """What to store: a new outcome, a new check time (or clearing it), and whether to alert."""

    outcome: Outcome | None = None
    check_due_at: datetime | None = None
    clear_check: bool = False
    alert: bool = False
    reason: str = ""

    @property
    def changes_anything(self) -> bool:
        """False when the occurrence stays exactly as it is."""
        return self.outcome is not None or self.check_due_at is not None or self.clear_check


NOTHING = Decision(reason="nothing to do")


def arm(facts: Facts, *, noticed_at: datetime, grace: timedelta) -> Decision:
    """SCHEDULED -> IN_GRACE when a drop shows; IN_GRACE -> SCHEDULED when it went away."""
    if facts.phase is Phase.SCHEDULED and facts.drop is not None:
        return Decision(check_due_at=noticed_at + grace, reason=f"{facts.drop} noticed")
    if facts.phase is Phase.IN_GRACE and facts.drop is None:
        return Decision(clear_check=True, reason="confirmed again during the grace period")
    return NOTHING


def is_stale(facts: Facts, *, grace: timedelta) -> bool:
    """True when the occurrence was long over before the drop was noticed (history)."""
    if facts.check_due_at is None:
        return False
    noticed_at = facts.check_due_at - grace
    return facts.original_start + grace < noticed_at


def decide(facts: Facts, *, now: datetime, grace: timedelta) -> Decision:
    """The next step for one occurrence at `now`; calling it again gives nothing new."""
    phase = facts.phase
    if phase is Phase.DECIDED:
        if facts.outcome in DROPS and (facts.replacement or facts.drop is None):
            return Decision(outcome=Outcome.RESCHEDULED, reason="put back after the alert")
        return NOTHING
    if phase is Phase.SCHEDULED:
        if facts.drop is not None:
            return arm(facts, noticed_at=now, grace=grace)
        if now < facts.scheduled_end:
            return NOTHING
        if facts.manager_response is None and facts.report_response is None:
            return Decision(outcome=Outcome.UNKNOWN, reason="over; responses never seen")
        if facts.scheduled_start != facts.original_start:
            return Decision(outcome=Outcome.MOVED, reason="took place at another time")
        return Decision(outcome=Outcome.HELD, reason="took place")
    # IN_GRACE
    drop = facts.drop
    if drop is None:
        return arm(facts, noticed_at=now, grace=grace)
    if facts.series_ended and facts.cancelled:
        return Decision(outcome=Outcome.SERIES_ENDED, clear_check=True,
                        reason="the series ended")
    if facts.replacement:
        return Decision(outcome=Outcome.RESCHEDULED, clear_check=True,
                        reason="a replacement exists")
    assert facts.check_due_at is not None
    if now < facts.check_due_at:
        return NOTHING
    alert = not facts.muted and not is_stale(facts, grace=grace)
    why = "muted pair" if facts.muted else ("noticed long after" if not alert else "alert")
    return Decision(outcome=drop, clear_check=True, alert=alert, reason=f"grace over; {why}")
