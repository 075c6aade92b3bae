"""Fast service tests over the in-memory connector: real SQLAlchemy on a SQLite file, the
memory world of sandbox/memory.py instead of HTTP to a sandbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from office import Office
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from sandbox.memory import MemoryWorld
from service.db import make_engine, session_factory
from service.settings import Settings


@pytest.fixture
def factory(tmp_path: Path, migrated_database: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite file of the production schema."""
    path = tmp_path / "rapport.db"
    shutil.copyfile(migrated_database, path)
    engine = make_engine(f"sqlite:///{path}")
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with a fresh secret, data in the test's folder."""
    return Settings(data_dir=tmp_path, secret_key=SecretStr(Fernet.generate_key().decode()))


@pytest.fixture
def office(factory: sessionmaker[Session], settings: Settings) -> Office:
    """A memory world seeded with the team, its clock frozen at the start of the test."""
    now = datetime.now(UTC).replace(microsecond=0)
    return Office(factory, settings, MemoryWorld(now=now), now)
