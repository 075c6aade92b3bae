"""What `rapport alerts` lists and the per-pair mute: beside the alert workflow, not in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.email.models import OutboxMessage, OutboxStatus
from service.outcomes.service import ALERT_KIND, occurrence_context
from service.pairs.models import Occurrence, Pair
from service.pairs.service import PairNotFound


@dataclass(frozen=True)
class AlertRow:
    """One alert, sent or pending, for `rapport alerts`."""

    occurrence_id: int
    manager: str
    report: str
    title: str
    original_start: datetime
    state: str  # "check due <when>" | pending | sending | sent | suppressed | failed
    outcome: str | None
    at: datetime | None  # sent at, not before, or check due at

    def as_json(self) -> dict[str, Any]:
        """The row as plain JSON values."""
        return {"occurrence_id": self.occurrence_id, "manager": self.manager,
                "report": self.report, "title": self.title,
                "original_start": self.original_start.isoformat(), "state": self.state,
                "outcome": self.outcome, "at": self.at.isoformat() if self.at else None}


def list_alerts(session: Session) -> list[AlertRow]:
    """Alerts queued or sent, and checks still waiting out their grace period."""
    rows: list[AlertRow] = []
    messages = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == ALERT_KIND)
                               .order_by(OutboxMessage.id)).all()
    for message in messages:
        occurrence_id = int(message.dedupe_key.rsplit(":", 1)[-1])
        ctx = occurrence_context(session, occurrence_id)
        if ctx is None:
            continue
        status = OutboxStatus(message.status)
        at = message.sent_at if status is OutboxStatus.SENT else message.not_before
        rows.append(AlertRow(occurrence_id, ctx.manager.email, ctx.report.email,
                             ctx.series.title, ctx.occurrence.original_start, status.value,
                             ctx.occurrence.outcome, at))
    waiting = session.scalars(select(Occurrence.id).where(
        Occurrence.check_due_at.is_not(None), Occurrence.outcome.is_(None))
        .order_by(Occurrence.check_due_at)).all()
    for occurrence_id in waiting:
        ctx = occurrence_context(session, occurrence_id)
        if ctx is None:
            continue
        rows.append(AlertRow(occurrence_id, ctx.manager.email, ctx.report.email,
                             ctx.series.title, ctx.occurrence.original_start, "check due",
                             None, ctx.occurrence.check_due_at))
    return rows


def set_pair_muted(session: Session, *, pair_id: int, muted: bool) -> Pair:
    """Mute (or unmute) alerts for one pair; outcomes are still recorded."""
    pair = session.get(Pair, pair_id)
    if pair is None:
        raise PairNotFound(f"no pair with id {pair_id} (see `rapport pairs`)")
    pair.muted = muted
    return pair
