"""Fast service tests over the in-memory connector: real SQLAlchemy on a SQLite file, the
memory world of sandbox/memory.py instead of HTTP to a sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import ProviderCall
from sandbox.memory import MemoryConnector, MemoryWorld
from service.accounts.models import Account
from service.calendars.models import Calendar
from service.calendars.sync import SyncOutcome, sync_calendar
from service.db import make_engine, migrate, session_factory
from service.settings import Settings

MAYA, SAM = "maya@acme.test", "sam@acme.test"


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite file, migrated like production."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key=SecretStr(Fernet.generate_key().decode()))


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


@pytest.fixture
def office(factory: sessionmaker[Session], settings: Settings) -> Office:
    now = datetime.now(UTC).replace(microsecond=0)
    return Office(factory, settings, MemoryWorld(now=now), now)
