"""`Office`: Rapport's storage beside a memory world, for the fast service tests.

A plain module (not conftest.py) so tests import it by a name of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from connectors.base import ProviderCall
from sandbox.memory import MemoryConnector, MemoryWorld
from service.accounts.models import Account
from service.calendars.models import Calendar
from service.settings import Settings
from service.sync.calendar_sync import SyncOutcome, sync_calendar

MAYA, SAM = "maya@acme.test", "sam@acme.test"


@dataclass
class Office:
    """Rapport's storage beside a memory world: calendars connected, synced on demand."""

    factory: sessionmaker[Session]
    settings: Settings
    world: MemoryWorld
    now: datetime
    calls: list[ProviderCall] = field(default_factory=list)
    calendars: dict[str, int] = field(default_factory=dict)

    def connect(self, email: str) -> int:
        """An account and its primary calendar, as onboarding would store them."""
        with self.factory.begin() as session:
            account = Account(provider="memory", email=email, credentials_encrypted=b"-")
            session.add(account)
            session.flush()
            calendar = Calendar(account_id=account.id, provider_calendar_id=email,
                                owner_email=email, name=email)
            session.add(calendar)
            session.flush()
            self.calendars[email] = calendar.id
            return calendar.id

    def connector(self, email: str) -> MemoryConnector:
        return MemoryConnector(self.world, email, observer=self.calls.append)

    def sync(self, email: str, connector: MemoryConnector | None = None) -> SyncOutcome:
        return sync_calendar(self.factory, calendar_id=self.calendars[email],
                             connector=connector or self.connector(email),
                             settings=self.settings, now=self.now)

    def operations(self) -> list[str]:
        """The provider operations made so far, in order."""
        return [c.operation for c in self.calls]
