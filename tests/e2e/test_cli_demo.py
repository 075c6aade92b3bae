"""`rapport demo` as a new user runs it: a readable report, and data the other commands see."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from application.demo.company import COMPANY_SIZE, LEADS_PER_HEAD
from sandbox.google.company import build_company
from sandbox.microsoft.company import DISABLED
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.metrics.coverage import manager_coverage
from service.pairs.models import Pair, Series
from service.people.models import Person
from service.settings import Settings

from .test_cli import _env, rapport

# What a log line looks like (service/logging_setup.py): "2026-12-01T11:02:41 INFO    name: ..."
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\s+(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
NEXT_COMMANDS = ("rapport pairs", "rapport metrics", "rapport digest",
                 "rapport metrics link --manager", "rapport run")


@dataclass(frozen=True)
class DemoRun:
    data_dir: Path
    env: dict[str, str]
    process: subprocess.CompletedProcess[str]
    started: datetime


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One demo run in a fresh data folder, shared by the tests below (it takes seconds)."""
    data_dir = tmp_path_factory.mktemp("demo") / "rapport-data"
    env = _env(data_dir)
    started = datetime.now(UTC)
    process = rapport("demo", env=env)
    assert process.returncode == 0, process.stderr[-2000:]
    return DemoRun(data_dir, env, process, started)


def test_demo_prints_a_report_without_log_lines_and_names_its_data_folder(
        demo: DemoRun) -> None:
    out, err = demo.process.stdout, demo.process.stderr

    assert "Traceback" not in out + err
    log_lines = [line for line in (out + err).splitlines() if LOG_LINE.match(line)]
    assert log_lines == []
    assert str(demo.data_dir.resolve()) in out.splitlines()[0]
    log_file = demo.data_dir / "demo.log"
    assert "demo.log" in out
    assert any(LOG_LINE.match(line) for line in log_file.read_text().splitlines())
    tail = out.strip().splitlines()[-len(NEXT_COMMANDS):]
    assert [line.split()[:2] for line in tail] == [c.split()[:2] for c in NEXT_COMMANDS]
    assert all(line.strip().startswith(c) for line, c in zip(tail, NEXT_COMMANDS, strict=True))


def test_demo_shows_cancellations_with_the_pair_and_the_date(demo: DemoRun) -> None:
    lines = demo.process.stdout.splitlines()
    section = lines[next(i for i, line in enumerate(lines) if line.startswith("Cancellations")):]
    decided = section[1:3]

    assert not any("occurrence " in line for line in decided)
    assert any("maya@acme.test" in line and "sam@acme.test" in line for line in decided)
    assert any("dana@acme.test" in line and "lee@acme.test" in line for line in decided)
    date = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                      r"Sep|Oct|Nov|Dec) \d\d:\d\d UTC\b")
    assert all(date.search(line) for line in decided)


def test_demo_emails_carry_the_real_time_of_writing(demo: DemoRun) -> None:
    emails = sorted((demo.data_dir / "outbox").glob("*.eml"))
    assert any("alert" in path.name for path in emails)
    assert any("digest" in path.name for path in emails)
    for path in emails:
        sent = parsedate_to_datetime(message_from_bytes(path.read_bytes())["Date"])
        assert demo.started - timedelta(minutes=1) <= sent <= datetime.now(UTC), path.name


def test_after_the_demo_the_other_commands_show_its_data(demo: DemoRun) -> None:
    pairs = rapport("pairs", "--json", env=demo.env)
    assert pairs.returncode == 0, pairs.stderr
    rows = json.loads(pairs.stdout)
    assert ("dana@acme.test", "lee@acme.test") in {(r["manager"], r["report"]) for r in rows}

    metrics = rapport("metrics", "--json", env=demo.env)
    assert metrics.returncode == 0, metrics.stderr
    managers = {m["manager"]["email"] for m in json.loads(metrics.stdout)["managers"]}
    assert {"maya@acme.test", "dana@acme.test"} <= managers

    digest = rapport("digest", "--manager", "maya@acme.test", env=demo.env)
    assert digest.returncode == 0, digest.stderr
    assert "Sam Rivera" in digest.stdout  # the report, by the name the calendar gives

    link = rapport("metrics", "link", "--manager", "maya@acme.test", env=demo.env)
    assert link.returncode == 0 and "sig=" in link.stdout


def test_after_the_demo_a_sync_does_not_chase_the_stopped_sandboxes(demo: DemoRun) -> None:
    process = rapport("sync", "--once", env=demo.env)

    assert process.returncode != 0
    assert "Traceback" not in process.stdout + process.stderr
    assert len(process.stderr.strip().splitlines()) == 1


def _section(out: str, title: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")),
               len(lines))
    return [line.strip() for line in lines[start:end]]


def test_demo_connects_the_company_with_one_grant_per_provider(demo: DemoRun) -> None:
    grants = _section(demo.process.stdout, "Company grants (one per provider, read from the "
                                           "company directory):")
    engine = create_engine(f"sqlite:///{demo.data_dir / 'rapport.db'}")
    with Session(engine) as session:
        stored = session.execute(select(DirectoryGrant.provider, DirectoryGrant.name,
                                        DirectoryGrant.id).order_by(DirectoryGrant.id)).all()
        reached = {grant_id: session.scalar(select(func.count()).select_from(Person).where(
            Person.directory_grant_id == grant_id)) for _, _, grant_id in stored}
        via_grant = session.scalar(select(func.count()).select_from(Account).where(
            Account.grant_id.is_not(None)))
        personal = session.scalar(select(func.count()).select_from(Account).where(
            Account.grant_id.is_(None)))
    engine.dispose()

    assert [(provider, name) for provider, name, _ in stored] == [
        ("google", "acme.test"), ("microsoft", stored[1][1])]
    assert all(n >= COMPANY_SIZE for n in reached.values())
    assert grants == [
        f"Google Workspace domain acme.test: {reached[stored[0][2]]} people reached",
        f"Microsoft 365 tenant {stored[1][1]}: {reached[stored[1][2]]} people reached"]
    assert personal == 0 and via_grant > 2 * COMPANY_SIZE - 10  # the company path only


def test_demo_shows_the_org_chart_facts_its_data_holds(demo: DemoRun) -> None:
    company = build_company(COMPANY_SIZE, leads_per_head=LEADS_PER_HEAD)
    lines = _section(demo.process.stdout, "The org chart:")
    engine = create_engine(f"sqlite:///{demo.data_dir / 'rapport.db'}")
    with Session(engine) as session:
        by_email = {p.email: p for p in session.scalars(select(Person))}
        self_organised = next(e for e in company.self_organised
                              if e in lines[0].split()[0])
        report = by_email[self_organised]
        pair = session.scalar(select(Pair).where(Pair.report_id == report.id))
        assert pair is not None
        series = session.scalar(select(Series).where(Series.pair_id == pair.id))
        manager = session.get(Person, pair.manager_id)
        assert series is not None and manager is not None
        assert series.organizer_email == report.email  # the report organises it ...
        assert manager.id == report.manager_id  # ... and the org chart names the manager
        assert manager.email in lines[0]

        for email in (company.suspended, DISABLED):
            assert by_email[email].suspended
            assert session.scalar(select(func.count()).select_from(Account).where(
                Account.email == email, Account.status == AccountStatus.ACTIVE)) == 0
            assert any(email in line and "not watched" in line for line in lines)

        coverage = manager_coverage(session, manager_id=manager.id,
                                    cadence_days=Settings().coverage_cadence_days)
        assert coverage is not None and len(coverage.reports) > 2
        assert 0 < len(coverage.gaps) < len(coverage.reports)
        assert f"Coverage: {coverage.sentence()}" in lines

        mover, new_lead = company.manager_change
        assert by_email[mover].manager_id == by_email[new_lead].id
        assert any(mover in line and line.endswith(f"names {new_lead}.") for line in lines)
    engine.dispose()


def test_demo_refuses_a_folder_that_holds_real_accounts(demo: DemoRun, tmp_path: Path) -> None:
    real = tmp_path / "rapport-data"
    real.mkdir()
    (real / "rapport.db").write_bytes((demo.data_dir / "rapport.db").read_bytes())
    (real / "secret.key").write_bytes((demo.data_dir / "secret.key").read_bytes())
    engine = create_engine(f"sqlite:///{real / 'rapport.db'}")
    with Session(engine) as session, session.begin():
        accounts = session.scalar(select(func.count()).select_from(Account))
        session.add(Account(provider="google", email="boss@example.com",
                            credentials_encrypted=b"x"))
    engine.dispose()
    before = (real / "rapport.db").read_bytes()

    process = rapport("demo", env=_env(real))

    assert process.returncode == 3
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "google:boss@example.com" in lines[0]
    assert (real / "rapport.db").read_bytes() == before  # nothing cleared, nothing mixed in
    engine = create_engine(f"sqlite:///{real / 'rapport.db'}")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == accounts + 1
    engine.dispose()
