"""Calendars of an account: the primary one is remembered, with its owner and time zone."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import CalendarInfo
from service.accounts.models import Account
from service.calendars.models import Calendar
from service.people.service import ensure_person


def save_calendars(session: Session, *, account: Account,
                   calendars: list[CalendarInfo]) -> list[Calendar]:
    """Remember the account's primary calendar (the one that holds its 1:1s)."""
    saved = []
    for info in calendars:
        if not info.is_primary:
            continue
        calendar = session.scalar(select(Calendar).where(
            Calendar.account_id == account.id, Calendar.provider_calendar_id == info.id))
        if calendar is None:
            calendar = Calendar(account_id=account.id, provider_calendar_id=info.id)
            session.add(calendar)
        calendar.name = info.name
        calendar.time_zone = info.time_zone
        calendar.owner_email = (info.owner_email or account.email).lower()
        if info.time_zone:
            # the owner's own calendar (Google) or mailbox (Graph) says where they are
            person = ensure_person(session, email=calendar.owner_email)
            person.time_zone = info.time_zone
        saved.append(calendar)
    session.flush()
    return saved
