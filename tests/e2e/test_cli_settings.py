"""Settings are checked when the process starts: a bad value is one line naming the variable,
exit code 3, never a traceback, and never the value itself (it may hold a password)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, time, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from service.calendars.models import ProviderCallLog
from service.pairs.models import Occurrence, Outcome, Series
from service.people.models import Person
from service.settings import Settings

from .conftest import CASES, Harness
from .test_cli import RAPPORT, _env, rapport

README = Path(__file__).resolve().parents[2] / "README.md"

BAD_SETTINGS = [
    ("RAPPORT_WORKING_HOURS", "9-5"),
    ("RAPPORT_WORKING_HOURS", "17:00-09:00"),  # working hours do not wrap midnight
    ("RAPPORT_QUIET_HOURS", "20:00-7"),
    ("RAPPORT_QUIET_HOURS", "25:00-07:00"),
    ("RAPPORT_DATABASE_URL", "notaurl"),
    ("RAPPORT_DATABASE_URL", "mysql://rapport:s3cret-db@db.example.com/rapport"),
    ("RAPPORT_BROKER_URL", "ftp://x"),
    ("RAPPORT_GOOGLE_DIRECTORY_URL", "admin.googleapis.com"),  # no scheme
    ("RAPPORT_LOG_LEVEL", "loud"),
    ("RAPPORT_HTTP_PORT", "99999"),
    ("RAPPORT_HTTP_PORT", "0"),
    ("RAPPORT_HTTP_PORT", "abc"),
    ("RAPPORT_AGENDA_HORIZON_DAYS", "-5"),
    ("RAPPORT_AGENDA_OCCURRENCES", "0"),
    ("RAPPORT_POLL_INTERVAL_SECONDS", "0"),
    ("RAPPORT_RECONCILE_INTERVAL_SECONDS", "-1"),
    ("RAPPORT_CANCELLATION_GRACE_HOURS", "-1"),
    ("RAPPORT_DIGEST_WEEKDAY", "7"),
    ("RAPPORT_SMTP_URL", "http://x"),
    ("RAPPORT_SMTP_URL", "smtp://mailer:s3cret-smtp@"),  # no host
    ("RAPPORT_SMTP_URL", "smtp://mailer:s3cret-smtp@mail.example.com:twentyfive"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_it_and_exit_3(tmp_path: Path, variable: str,
                                                        value: str) -> None:
    env = {**_env(tmp_path), variable: value}

    process = rapport("pairs", env=env)

    assert process.returncode == 3, process.stderr
    assert "Traceback" not in process.stdout + process.stderr
    [line] = process.stderr.strip().splitlines()
    assert variable in line
    assert "s3cret" not in process.stdout + process.stderr
    assert not (tmp_path / "rapport.db").exists()  # refused before anything was started


def test_every_command_checks_settings_before_it_starts(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "RAPPORT_LOG_LEVEL": "loud"}
    for args in (["sync", "--once"], ["run"], ["worker"], ["scheduler"], ["alerts"],
                 ["metrics"], ["people", "opt-out", "sam@example.com"]):
        process = rapport(*args, env=env)
        assert process.returncode == 3, (args, process.stderr)
        assert "RAPPORT_LOG_LEVEL" in process.stderr and "Traceback" not in process.stderr


def test_good_values_are_read_into_what_the_code_uses() -> None:
    environment = {"working_hours": "08:30-18:00", "quiet_hours": "22:00-06:30",
                   "log_level": "debug", "broker_url": "rediss://cache.example.com:6380/0",
                   "database_url": "postgresql+psycopg://rapport@db.example.com/rapport",
                   "smtp_url": "smtps://mailer:pw@mail.example.com"}
    settings = Settings.model_validate(environment)  # as text, the way the environment has it
    assert settings.working_hours == (time(8, 30), time(18, 0))
    assert settings.quiet_hours == (time(22, 0), time(6, 30))  # quiet hours may wrap midnight
    assert settings.log_level == "DEBUG"
    defaults = Settings()
    assert defaults.working_hours == (time(9, 0), time(17, 0))
    assert defaults.quiet_hours == (time(20, 0), time(7, 0))
    for broker in ("redis://h:6379/0", "amqp://u:p@h:5672/", "amqps://h/"):
        assert Settings(broker_url=broker).broker_url == broker


def test_a_span_assigned_later_is_checked_and_parsed_too() -> None:
    settings = Settings()
    settings.quiet_hours = "00:00-00:00"  # type: ignore[assignment]
    assert settings.quiet_hours == (time(0, 0), time(0, 0))
    with pytest.raises(ValidationError, match="working_hours"):
        settings.working_hours = "9-5"  # type: ignore[assignment]


def _due_cancellation(harness: Harness) -> int:
    """A cancelled occurrence whose cancellation check is due now; returns its id."""
    case = CASES["google"]
    harness.connect(case.manager)
    harness.connect(case.report)
    harness.sync()
    sandbox = harness.sandbox(case.provider)
    starts = [s for s in sandbox.occurrence_starts(
        case.series_key, until=harness.clock() + timedelta(days=60)) if s > harness.clock()]
    sandbox.cancel_occurrence(case.series_key, starts[2])
    harness.sync()
    with harness.runtime.factory.begin() as session:
        occurrence_id = session.scalars(
            select(Occurrence.id).join(Series, Series.id == Occurrence.series_id)
            .where(Series.organizer_email == case.manager, Series.pair_id.is_not(None),
                   Occurrence.original_start == starts[2])).one()
        # The grace period has passed: the next reconcile runs the check.
        session.execute(update(Occurrence).where(Occurrence.id == occurrence_id)
                        .values(check_due_at=datetime.now(UTC) - timedelta(minutes=1)))
    return occurrence_id


def _sync_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([*RAPPORT, "sync", "--once"], env=env, capture_output=True,
                              text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired as err:  # what a bad span used to cause
        pytest.fail(f"`rapport sync --once` did not end: {err}")


def test_bad_working_hours_are_refused_at_start_not_in_the_cancellation_check(
        harness: Harness) -> None:
    occurrence_id = _due_cancellation(harness)
    env = _env(harness.settings.data_dir, harness)
    with harness.session() as session:
        calls_before = session.scalar(select(func.count()).select_from(ProviderCallLog))

    refused = _sync_once({**env, "RAPPORT_WORKING_HOURS": "9-5"})

    assert refused.returncode == 3
    [line] = refused.stderr.strip().splitlines()
    assert "RAPPORT_WORKING_HOURS" in line and "Traceback" not in refused.stderr
    with harness.session() as session:
        occurrence = session.get(Occurrence, occurrence_id)
        assert occurrence is not None and occurrence.outcome is None  # the check never ran
        assert session.scalar(select(func.count()).select_from(ProviderCallLog)) == calls_before

    fixed = _sync_once({**env, "RAPPORT_WORKING_HOURS": "09:00-17:00"})

    assert fixed.returncode == 0, fixed.stderr
    with harness.session() as session:
        occurrence = session.get(Occurrence, occurrence_id)
        assert occurrence is not None
        assert occurrence.outcome == Outcome.CANCELLED_NO_RESCHEDULE


@pytest.mark.parametrize("command", ["opt-out", "opt-in"])
@pytest.mark.parametrize("address", ["not an email", "sam@", "@example.com", "sam@@example.com"])
def test_people_opt_out_and_in_refuse_what_is_not_an_address(tmp_path: Path, command: str,
                                                             address: str) -> None:
    env = _env(tmp_path)

    process = rapport("people", command, address, env=env)

    assert process.returncode != 0
    assert "Traceback" not in process.stderr
    [line] = process.stderr.strip().splitlines()
    assert "not an email address" in line
    assert not (tmp_path / "rapport.db").exists()  # refused before anything was recorded


def test_people_opt_out_records_a_real_address(harness: Harness) -> None:
    env = _env(harness.settings.data_dir, harness)

    refused = rapport("people", "opt-out", "dana at acme", env=env)
    accepted = rapport("people", "opt-out", "dana@acme.test", env=env)

    assert refused.returncode != 0 and accepted.returncode == 0, accepted.stderr
    with harness.session() as session:
        people = {p.email: p.opted_out for p in session.scalars(select(Person))}
    assert people.get("dana@acme.test") is True
    assert not any(" " in email for email in people)


def test_version_prints_the_installed_package_version(tmp_path: Path) -> None:
    process = rapport("--version", env=_env(tmp_path))

    assert process.returncode == 0
    assert process.stdout.strip() == f"rapport {version('rapport')}"


def _documented_variables() -> set[str]:
    """Every `RAPPORT_*` named in the first column of the README's configuration table."""
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    names: set[str] = set()
    for row in section.splitlines():
        if row.startswith("| `RAPPORT_"):
            names |= set(re.findall(r"`(RAPPORT_[A-Z0-9_]+)`", row.split(" | ", 1)[0]))
    return names


def test_the_readme_documents_every_setting_and_nothing_else() -> None:
    settings = {f"RAPPORT_{name.upper()}" for name in Settings.model_fields}

    documented = _documented_variables()

    assert sorted(settings - documented) == [], "settings missing from the README table"
    assert sorted(documented - settings) == [], "README names settings that do not exist"
