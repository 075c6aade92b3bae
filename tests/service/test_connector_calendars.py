"""`AccountConnectors.for_calendar` reads a calendar's account once per process: a calendar
never moves to another account, so every later message builds (or finds) its connector from
the account alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

import service.models  # noqa: F401  (every table)
from service.accounts.models import Account
from service.calendars.connectors import AccountConnectors
from service.calendars.models import Calendar
from service.db import make_engine, session_factory
from service.settings import Settings
from tests.statements import statements


def test_a_calendars_account_is_read_once_per_process(
        tmp_path: Path, migrated_database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(migrated_database, tmp_path / "rapport.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    factory = session_factory(engine)
    with factory.begin() as session:
        account = Account(provider="google", email="m@acme.test", credentials_encrypted=b"x")
        session.add(account)
        session.flush()
        calendar = Calendar(account_id=account.id, provider_calendar_id="primary")
        session.add(calendar)
        session.flush()
        account_id, calendar_id = account.id, calendar.id
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr(Fernet.generate_key().decode()))
    connectors = AccountConnectors(settings, factory)
    built: list[int] = []
    monkeypatch.setattr(connectors, "for_account", built.append)  # stands in for the build

    with statements(factory, startswith="SELECT") as seen:
        for _ in range(3):
            connectors.for_calendar(calendar_id)
        with pytest.raises(LookupError):
            connectors.for_calendar(calendar_id + 1)

    assert built == [account_id] * 3
    assert len(seen) == 2  # the calendar once, the missing one once (the old code: 4)
    engine.dispose()
