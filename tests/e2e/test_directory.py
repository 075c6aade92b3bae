"""The org chart decides, end to end: calendars through the real clients to both sandboxes,
the company directory from the in-memory directory (`sandbox.memory.MemoryDirectory`, in each
provider's shape), the real `sync_directory` actor on the broker, a real database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from application.cli.main import app
from connectors.base import CalendarConnector, DirectoryPerson
from connectors.microsoft.connector import GraphConnector
from sandbox.memory import MemoryDirectory
from sandbox.team import SERIES, people_on, person
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.accounts.service import save_grant
from service.calendars.connectors import (
    AccountConnectors,
    ca_verify,
    google_connector,
    msal_provider,
)
from service.calendars.models import Calendar
from service.directory.people import JSON_KEYS, PersonRow
from service.email.models import OutboxMessage, OutboxStatus
from service.email.outbox import enqueue
from service.email.render import RenderedEmail
from service.metrics import definitions as d
from service.metrics.coverage import manager_coverage
from service.metrics.digest import digest_due, enqueue_digest
from service.pairs.models import Occurrence, Pair, Series, SeriesStatus
from service.pairs.service import list_series, set_manager_override
from service.people.models import Person
from service.people.zones import zone_of
from workers import actors
from workers.scheduler import build_scheduler

from .conftest import CLIENT_ID, Harness, ProviderCase
from .helpers import upcoming
from .test_cli import _env, rapport

# the org chart of each provider's people; a manager on the other provider is outside the
# grant's scope (known to Rapport only once their calendar is connected)
ORG = {
    "google": {"maya@acme.test": None, "sam@acme.test": "maya@acme.test",
               "alex@acme.test": "maya@acme.test", "kim@acme.test": "dana@acme.test"},
    "microsoft": {"dana@acme.test": None, "lee@acme.test": "dana@acme.test",
                  "jordan@acme.test": "maya@acme.test", "priya@acme.test": "maya@acme.test"},
}
NEW_MANAGER = {"google": "alex@acme.test", "microsoft": "jordan@acme.test"}


def _entry(email: str, manager: str | None, provider: str) -> DirectoryPerson:
    """Google names the manager by address, Graph by id and mail."""
    return DirectoryPerson(id=f"u-{email}", email=email, name=person(email).name,
                           manager_id=f"u-{manager}" if manager and provider == "microsoft"
                           else None, manager_email=manager,
                           time_zone=person(email).time_zone if provider == "microsoft"
                           else None)


@pytest.fixture
def directory(harness: Harness, case: ProviderCase,
              monkeypatch: pytest.MonkeyPatch) -> tuple[int, MemoryDirectory]:
    """The company grant of the case's provider, its directory served from memory."""
    entries = [_entry(e, m, case.provider) for e, m in ORG[case.provider].items()]
    listing = MemoryDirectory(entries, provider=case.provider, page_size=3)
    with harness.runtime.factory.begin() as session:
        grant = save_grant(session, vault=Vault.from_settings(harness.settings),
                           provider=case.provider, name="acme.test", scope={},
                           credentials={"key": "test"})
        grant_id = grant.id
    monkeypatch.setattr(harness.runtime.connectors, "directory_for",
                        lambda gid: listing if gid == grant_id else None)
    return grant_id, listing


def _title(case: ProviderCase) -> str:
    """The title of the case's seeded 1:1."""
    return next(s.title for s in SERIES if s.key == case.series_key)


def _connect(harness: Harness, provider: str) -> None:
    """Everyone on the provider connects their own calendar (the grant then adds none)."""
    for who in people_on(provider):
        harness.connect(who.email)
    harness.sync()


def _directory_sync(harness: Harness, grant_id: int) -> None:
    actors.sync_directory.send(grant_id)
    harness.run()


def _report_organized(harness: Harness, case: ProviderCase, manager: str) -> str:
    """A weekly 1:1 the report organizes with `manager`, starting tomorrow."""
    start = (harness.clock() + timedelta(days=1)).replace(hour=15, minute=0, second=0,
                                                            microsecond=0)
    return harness.sandbox(case.provider).create_series(
        organizer=case.report, attendees=[manager], title="1:1 check-in",
        first_start=start, time_zone="UTC")


def _row(harness: Harness, title: str) -> tuple[str | None, str | None, int | None]:
    with harness.session() as session:
        rows = [r for r in list_series(session, now=harness.clock(), include_all=True)
                if r.title == title and r.status == "active"]
    assert len(rows) == 1, rows
    return rows[0].manager, rows[0].report, rows[0].pair_id


def _pair_id(harness: Harness, manager: str, report: str) -> int | None:
    with harness.session() as session:
        ids = {p.email: p.id for p in session.scalars(select(Person))}
        return session.scalar(select(Pair.id).where(Pair.manager_id == ids[manager],
                                                    Pair.report_id == ids[report]))


def test_the_org_chart_names_the_manager_when_the_report_organizes_the_series(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    _connect(harness, case.provider)
    key = _report_organized(harness, case, case.manager)
    harness.sync()
    # no directory yet: the organizer rule takes the report for the manager
    assert _row(harness, "1:1 check-in")[:2] == (case.report, case.manager)

    _directory_sync(harness, directory[0])

    manager, report, pair_id = _row(harness, "1:1 check-in")
    assert (manager, report) == (case.manager, case.report)
    assert pair_id == _pair_id(harness, case.manager, case.report)  # the seeded 1:1's pair
    harness.sync()  # the next calendar sync keeps what the org chart says
    assert _row(harness, "1:1 check-in")[:2] == (case.manager, case.report)
    # the manager (an attendee here) declines: recorded as the manager's, not the report's
    first = upcoming(harness, case, key)[0]
    harness.sandbox(case.provider).decline_occurrence(key, first, case.manager)
    harness.sync()
    with harness.session() as session:
        occurrence = session.scalars(select(Occurrence).join(Series).where(
            Series.title == "1:1 check-in", Occurrence.original_start == first)).one()
        assert (occurrence.manager_response, occurrence.report_response) == (
            "declined", "accepted")
    with harness.session() as session:
        grant = session.get(DirectoryGrant, directory[0])
        assert grant is not None and grant.last_directory_sync_at is not None
        # everyone had connected their own calendar: the grant adds no second account
        assert session.scalar(select(func.count()).select_from(Account).where(
            Account.grant_id.is_not(None))) == 0


def test_a_manual_manager_beats_the_org_chart_and_clearing_it_hands_back(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    _connect(harness, case.provider)
    _report_organized(harness, case, case.manager)
    harness.sync()
    _directory_sync(harness, directory[0])
    with harness.session() as session:
        series_id = session.scalars(select(Series.id).where(
            Series.title == "1:1 check-in")).one()
    env = _env(harness.settings.data_dir, harness)

    done = rapport("series", "manager", str(series_id), case.report, env=env)

    assert done.returncode == 0, done.stderr
    assert f"{case.report} -> {case.manager}" in done.stdout
    assert _row(harness, "1:1 check-in")[:2] == (case.report, case.manager)
    with harness.runtime.factory.begin() as session:  # the org chart does not undo it
        refused = None
        try:
            set_manager_override(session, series_id=series_id, email="nobody@acme.test")
        except ValueError as err:
            refused = str(err)
    assert refused and "not in series" in refused
    _directory_sync(harness, directory[0])
    assert _row(harness, "1:1 check-in")[:2] == (case.report, case.manager)

    listed = rapport("people", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    people = json.loads(listed.stdout)
    assert people["version"] == 1
    assert all(list(p) == list(JSON_KEYS) for p in people["people"])
    assert list(PersonRow.__dataclass_fields__) == list(JSON_KEYS)
    report = next(p for p in people["people"] if p["email"] == case.report)
    assert report["manager"] == case.manager and report["watched"] is True
    assert report["provider"] == case.provider and report["suspended"] is False
    assert case.manager in report["manages"]  # the override made the report manage here

    cleared = rapport("series", "manager", str(series_id), "--clear", env=env)
    assert cleared.returncode == 0, cleared.stderr
    assert _row(harness, "1:1 check-in")[:2] == (case.manager, case.report)


def test_a_new_manager_starts_a_fresh_pair_and_the_old_pair_keeps_its_history(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    grant_id, listing = directory
    new_manager = NEW_MANAGER[case.provider]
    _connect(harness, case.provider)
    _report_organized(harness, case, new_manager)  # a peer 1:1 while they are peers
    harness.sync()
    _directory_sync(harness, grant_id)
    old_pair = _pair_id(harness, case.manager, case.report)
    assert old_pair is not None
    assert _row(harness, "1:1 check-in")[2] is None  # peers: no managed 1:1
    with harness.session() as session:
        history = session.scalar(select(func.count()).select_from(Occurrence).join(Series)
                                 .where(Series.pair_id == old_pair,
                                        Occurrence.original_start < harness.clock()))
    assert history and history >= 2

    listing.set_manager(f"u-{case.report}", _entry(new_manager, None, case.provider))
    _directory_sync(harness, grant_id)
    harness.sync()

    new_pair = _pair_id(harness, new_manager, case.report)
    assert new_pair is not None and new_pair != old_pair
    assert _row(harness, "1:1 check-in") == (new_manager, case.report, new_pair)
    with harness.session() as session:
        kept = session.scalars(select(Series).where(Series.pair_id == old_pair)).all()
        assert [s.status for s in kept] == [SeriesStatus.ENDED]
        past = session.scalar(select(func.count()).select_from(Occurrence)
                              .where(Occurrence.series_id == kept[0].id))
        assert past == history  # all of the old pair's history, and nothing new
        # the old 1:1 carries on in the calendar, but it is no longer a managed 1:1
        follower = session.scalars(select(Series).where(
            Series.title == _title(case), Series.status == SeriesStatus.ACTIVE)).one()
        assert follower.pair_id is None and follower.id != kept[0].id
        assert session.scalar(select(func.count()).select_from(Occurrence).join(Series)
                              .where(Series.pair_id == new_pair,
                                     Occurrence.original_start < harness.clock())) == 0
        report = session.scalars(select(Person).where(Person.email == case.report)).one()
        manager = session.scalars(select(Person).where(Person.email == new_manager)).one()
        assert report.manager_id == manager.id


@pytest.mark.parametrize("change", ["suspended", "removed"])
def test_a_suspended_or_removed_person_is_no_longer_watched_or_mailed(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory],
        change: str) -> None:
    grant_id, listing = directory
    _connect(harness, case.provider)
    _directory_sync(harness, grant_id)
    assert _row(harness, _title(case))[2]

    if change == "suspended":
        listing.suspend(f"u-{case.report}")
    else:
        listing.remove(f"u-{case.report}")
    _directory_sync(harness, grant_id)
    harness.sync()  # the manager's calendar still syncs: the series stays ended

    with harness.session() as session:
        report = session.scalars(select(Person).where(Person.email == case.report)).one()
        assert report.suspended is (change == "suspended")
        assert (report.left_at is not None) is (change == "removed")
        accounts = session.scalars(select(Account).where(
            Account.person_id == report.id)).all()
        assert accounts and {a.status for a in accounts} == {AccountStatus.DISABLED}
        series = session.scalars(select(Series).where(Series.title == _title(case))).one()
        assert series.status == SeriesStatus.ENDED
    with harness.runtime.factory.begin() as session:
        row = enqueue(session, kind="alert", dedupe_key=f"test:{change}",
                      recipient=case.report,
                      rendered=RenderedEmail(subject="s", text="t", html="<p>t</p>"))
        assert row.status == OutboxStatus.SUPPRESSED.value
    harness.run()
    assert not [p for p in harness.settings.resolved_outbox_dir.glob("*.eml")
                if case.report in p.read_text(errors="replace")]


@pytest.mark.parametrize("change", ["suspended", "removed"])
def test_a_leavers_push_channel_is_stopped_by_the_directory_sync(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory],
        public_url: str, change: str) -> None:
    grant_id, listing = directory
    _connect(harness, case.provider)
    _directory_sync(harness, grant_id)
    actors.reconcile.send()
    harness.run()

    def channel_of(email: str) -> str | None:
        with harness.session() as session:
            return session.scalars(select(Calendar.subscription_id).join(
                Account, Account.id == Calendar.account_id).where(
                Account.email == email)).first()

    leaver, stayer = channel_of(case.report), channel_of(case.manager)
    assert leaver and stayer
    (listing.suspend if change == "suspended" else listing.remove)(f"u-{case.report}")
    _directory_sync(harness, grant_id)
    actors.reconcile.send()
    harness.run()

    open_ids = ({c["id"] for c in harness.google.channels()} if case.provider == "google"
                else set(harness.graph.state.subscriptions))
    assert leaver not in open_ids and stayer in open_ids
    assert channel_of(case.report) is None and channel_of(case.manager) == stayer


def test_a_suspended_manager_gets_no_digest(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    grant_id, listing = directory
    _connect(harness, case.provider)
    _directory_sync(harness, grant_id)
    later = harness.clock() + timedelta(days=14)
    with harness.session() as session:
        managers = {d.manager_id for d in digest_due(harness.runtime.factory,
                                                     settings=harness.settings, now=later)}
        manager = session.scalars(select(Person).where(Person.email == case.manager)).one()
    assert manager.id in managers
    listing.suspend(f"u-{case.manager}")
    _directory_sync(harness, grant_id)
    assert manager.id not in {d.manager_id for d in digest_due(
        harness.runtime.factory, settings=harness.settings, now=later)}



# who reports to the case's manager for the coverage test: one report of theirs has no 1:1
COVERAGE_ORG = {
    "google": {"maya@acme.test": None, "sam@acme.test": "maya@acme.test",
               "alex@acme.test": "maya@acme.test", "kim@acme.test": "maya@acme.test"},
    "microsoft": {"dana@acme.test": None, "lee@acme.test": "dana@acme.test",
                  "priya@acme.test": "dana@acme.test", "jordan@acme.test": "dana@acme.test"},
}
COVERAGE_SENTENCE = {
    "google": "Maya Chen has 3 direct reports; 2 have a weekly 1:1; Kim Tanaka has none.",
    "microsoft": "Dana Okafor has 3 direct reports; 1 has a weekly 1:1; Jordan Lee and "
                 "Priya Nair have none.",
}
NEW_EVENT_LINK = {
    "google": "https://calendar.google.com/calendar/render?action=TEMPLATE&text=Maya%20%2F%20"
              "Kim%201%3A1&add=kim%40acme.test&details=",
    "microsoft": "https://outlook.office.com/calendar/deeplink/compose?subject=Dana%20%2F%20"
                 "Jordan%201%3A1&to=jordan%40acme.test&body=",
}


def test_coverage_names_reports_without_a_1on1_and_the_digest_says_it_once(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    grant_id, listing = directory
    for email, manager in COVERAGE_ORG[case.provider].items():
        listing.add(_entry(email, manager, case.provider))
    _connect(harness, case.provider)
    _directory_sync(harness, grant_id)
    with harness.session() as session:
        manager = session.scalars(select(Person).where(Person.email == case.manager)).one()
        coverage = manager_coverage(session, manager_id=manager.id, cadence_days=14)
    assert coverage is not None
    assert coverage.sentence() == COVERAGE_SENTENCE[case.provider]
    links = [g.create_link for g in coverage.gaps]
    assert all(link for link in links)
    assert any(link.startswith(NEW_EVENT_LINK[case.provider]) for link in links if link)
    if case.provider == "google":
        assert all("recur=RRULE%3AFREQ%3DWEEKLY" in link for link in links if link)

    week = d.iso_week_of(harness.clock(), zone_of(manager.time_zone))
    first = enqueue_digest(harness.runtime.factory, settings=harness.settings,
                           manager_id=manager.id, iso_week=week, now=harness.clock())
    later = harness.clock() + timedelta(days=7)
    second = enqueue_digest(harness.runtime.factory, settings=harness.settings,
                            manager_id=manager.id, iso_week=d.shift_week(week, 1), now=later)
    with harness.session() as session:
        mail = {row.id: row for row in session.scalars(select(OutboxMessage))}
    assert COVERAGE_SENTENCE[case.provider] in mail[first].body_text
    assert NEW_EVENT_LINK[case.provider] in mail[first].body_text
    html_link = NEW_EVENT_LINK[case.provider].replace("&", "&amp;")
    assert f'href="{html_link}' in (mail[first].body_html or "")
    assert "From the org chart" not in mail[second].body_text  # said once, not every week
    assert "From the org chart" not in (mail[second].body_html or "")

    env = _env(harness.settings.data_dir, harness)
    listed = rapport("metrics", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    found = [c for c in json.loads(listed.stdout)["coverage"] if c["manager"] == case.manager]
    assert [c["sentence"] for c in found] == [COVERAGE_SENTENCE[case.provider]]
    assert found[0]["direct_reports"] == 3
    text = rapport("metrics", env=env)
    assert COVERAGE_SENTENCE[case.provider] in text.stdout


def test_directory_sync_on_the_command_line_says_one_line_per_failure_then_resumes(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory],
        monkeypatch: pytest.MonkeyPatch) -> None:
    grant_id, listing = directory
    monkeypatch.setattr(AccountConnectors, "directory_for", lambda self, gid: listing)
    env = _env(harness.settings.data_dir, harness)
    runner = CliRunner()
    listing.fail_page(1)

    failed = runner.invoke(app, ["directory", "sync"], env=env)

    assert failed.exit_code == 1
    assert "Traceback" not in failed.output
    lines = [line for line in failed.stdout.splitlines() if line.strip()]
    assert lines == [f"grant {grant_id}: directory sync failed: memory users.list: HTTP 503"]
    shown = runner.invoke(app, ["directory", "list"], env=env)
    assert shown.exit_code == 0
    assert "never (a pass is under way)" in shown.output and "HTTP 503" in shown.output

    done = runner.invoke(app, ["directory", "sync", "--grant", str(grant_id)], env=env)

    assert done.exit_code == 0, done.output
    assert f"grant {grant_id}: 1 pages, 1 people seen" in done.output  # the rest of the pass
    assert "pass complete" in done.output
    outside = "dana@acme.test" if case.provider == "google" else "maya@acme.test"
    assert f"managers outside the directory's scope: {outside}" in done.stdout
    shown = runner.invoke(app, ["directory", "list"], env=env)
    assert "under way" not in shown.output and " 4  " in shown.output
    unknown = runner.invoke(app, ["directory", "sync", "--grant", "999"], env=env)
    assert unknown.exit_code == 1 and "no company grant with id 999" in unknown.output


def test_the_scheduler_reads_every_active_directory_at_its_interval(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    grant_id, _ = directory
    _connect(harness, case.provider)
    harness.runtime.settings.directory_sync_interval_seconds = 3600
    scheduler = build_scheduler(harness.settings, blocking=False)
    job = scheduler.get_job("directory-sync")
    assert job is not None and job.trigger.interval == timedelta(hours=1)

    job.func()  # what the scheduler runs every hour
    harness.run()

    with harness.session() as session:
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None and grant.last_directory_sync_at == harness.clock()
        assert session.scalar(select(func.count()).select_from(Person).where(
            Person.directory_grant_id == grant_id)) == len(ORG[case.provider])


def _act_as_people(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for the company grant's delegation (domain-wide delegation, app-only access,
    built by the Workspace and tenant connectors): an account reached through a grant reads
    its person's calendar with that person's own sandbox grant, through the real clients."""
    original = AccountConnectors.for_account

    def for_account(self: AccountConnectors, account_id: int) -> CalendarConnector:
        with self.factory() as session:
            account = session.get(Account, account_id)
            assert account is not None
            grant_id, email, provider = account.grant_id, account.email, account.provider
        if grant_id is None:
            return original(self, account_id)
        token = person(email).refresh_token
        if provider == "google":
            return google_connector(self.settings, {
                "client_id": CLIENT_ID, "client_secret": "test-secret", "refresh_token": token})
        tokens = msal_provider(self.settings, {"client_id": CLIENT_ID})
        tokens.import_refresh_token(token)
        return GraphConnector(token_provider=tokens, api_url=self.settings.graph_api_url,
                              verify=ca_verify(self.settings), owner_email=email)

    monkeypatch.setattr(AccountConnectors, "for_account", for_account)


def test_people_of_a_grant_get_their_calendars_watched_and_the_org_chart_pairs_them(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory],
        monkeypatch: pytest.MonkeyPatch) -> None:
    grant_id, _ = directory
    _act_as_people(harness, monkeypatch)

    _directory_sync(harness, grant_id)  # adds accounts, discovers and syncs their calendars

    with harness.session() as session:
        accounts = session.scalars(select(Account).where(Account.grant_id == grant_id)).all()
        assert {a.email for a in accounts} == set(ORG[case.provider])
        watched = session.scalars(select(Calendar.owner_email).join(
            Account, Account.id == Calendar.account_id).where(
            Account.grant_id == grant_id)).all()
        assert set(watched) == set(ORG[case.provider])
    assert _row(harness, _title(case))[:2] == (case.manager, case.report)


def test_the_directory_actor_retries_a_failed_page_and_flags_a_revoked_grant(
        harness: Harness, case: ProviderCase, directory: tuple[int, MemoryDirectory]) -> None:
    grant_id, listing = directory
    _connect(harness, case.provider)
    listing.fail_page(1)  # the second page answers 503 once
    listing.requested.clear()

    _directory_sync(harness, grant_id)

    assert listing.requested == [None, "dir:3", "dir:3"]  # retried where it failed
    with harness.session() as session:
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None and grant.last_directory_sync_at is not None
        assert grant.last_error is None

    listing.fail_page(0, status=401)
    listing.requested.clear()
    _directory_sync(harness, grant_id)

    assert listing.requested == [None]  # not retried: the grant must be connected again
    with harness.session() as session:
        grant = session.get(DirectoryGrant, grant_id)
        assert grant is not None and grant.status == AccountStatus.NEEDS_RECONSENT
        assert grant.status_reason and "connect it again" in grant.status_reason
    actors.sync_directory.send(grant_id)  # an inactive grant is not read at all
    harness.run()
    assert listing.requested == [None]
