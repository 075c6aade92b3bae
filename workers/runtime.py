"""What every actor needs, built once per process from the settings and handed to actors.

Actors take ids, not objects; they look up the database, connectors and clock here. Tests
install a runtime with their own database, connector factory and clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CalendarConnector, DirectoryConnector
from service.calendars.connectors import AccountConnectors
from service.db import make_engine, migrate, session_factory, utcnow
from service.settings import Settings


class ConnectorFactory(Protocol):
    """Builds the connector of an account, or of the account that owns a calendar, or the
    directory connector of a company grant; its calls
    go to the recorder of the current message (`service.calendars.calls.record_call`)."""

    def for_calendar(self, calendar_id: int) -> CalendarConnector: ...

    def for_account(self, account_id: int) -> CalendarConnector: ...

    def directory_for(self, grant_id: int) -> DirectoryConnector: ...


@dataclass
class Runtime:
    """The process-wide context of actors."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    connectors: ConnectorFactory
    clock: Callable[[], datetime] = field(default=utcnow)


_current: Runtime | None = None


def install(runtime: Runtime) -> Runtime:
    """Make `runtime` the one actors use in this process."""
    global _current
    _current = runtime
    return runtime


def current() -> Runtime:
    """The installed runtime; a clear error when a worker was started without one."""
    if _current is None:
        raise RuntimeError("no Rapport runtime installed: start workers through `rapport`")
    return _current


def build_runtime(settings: Settings, connectors: ConnectorFactory | None = None) -> Runtime:
    """The production runtime: migrated database and provider connectors from settings."""
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    factory = session_factory(engine)
    return Runtime(settings=settings, engine=engine, factory=factory,
                   connectors=connectors or AccountConnectors(settings, factory))
