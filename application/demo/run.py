"""`rapport demo`: the whole product on embedded defaults against the local sandboxes.

It starts both sandboxes (Google over HTTP, Microsoft Graph over HTTPS with its own test CA),
connects the seeded team through the same import paths an operator uses, runs the real
workers in-process, and prints what Rapport found and wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy import select

from application.context import (
    EXIT_CONFIG,
    EXIT_WORK_LEFT,
    Started,
    counts_since,
    echo_err,
    fail,
    start,
)
from application.demo.alerts import DROPPED, show_cancellations
from application.demo.company import (
    DemoCompany,
    build_demo_company,
    change_manager,
    connect_company,
    print_grants,
    print_org_chart,
    sync_directories,
)
from application.demo.data import (
    DEMO_LOG,
    DemoRefused,
    check_folder,
    clear_previous,
    pause_demo_accounts,
)
from application.demo.digest import render_demo_digest
from application.once import echo_work_left, sync_once
from connectors.text import looks_like_html
from sandbox.google.sandbox import GoogleSandbox
from sandbox.microsoft.sandbox import GraphSandbox
from service.agenda.block import extract_block
from service.agenda.htmltext import visible_text
from service.agenda.models import AgendaRecord
from service.calendars.models import Calendar
from service.logging_setup import log_to_file
from service.pairs.models import Occurrence, OccurrenceCopy, Series
from service.pairs.service import list_series
from service.settings import Settings

DEFAULT_DATA_DIR: Path = Settings.model_fields["data_dir"].default


@dataclass
class Sandboxes:
    google: GoogleSandbox
    graph: GraphSandbox
    company: DemoCompany

    def stop(self) -> None:
        self.google.stop()
        self.graph.stop()


def start_sandboxes() -> Sandboxes:
    """Both provider sandboxes, seeded with the demo team inside a company, on free ports."""
    company, population, directory, users = build_demo_company()
    google = GoogleSandbox(population=population, directory=directory).start()
    graph = GraphSandbox().start()
    graph.seed_company(users)
    return Sandboxes(google, graph, company)


def sandbox_settings(base: Settings, boxes: Sandboxes, data_dir: Path) -> Settings:
    """The settings that point every provider endpoint at the sandboxes."""
    return base.model_copy(update={
        "data_dir": data_dir,
        "database_url": None,
        "broker_url": None,
        "google_api_url": boxes.google.base_url,
        "google_token_url": boxes.google.token_url,
        "google_directory_url": boxes.google.base_url.removesuffix("calendar/v3/"),
        "graph_api_url": boxes.graph.base_url,
        "microsoft_authority": boxes.graph.token_url,
        "ca_bundle": Path(boxes.graph.ca_file),
        "smtp_url": None,
        "outbox_dir": None,
    })


def sync_everything(started: Started) -> None:
    """Sync every account in one bounded run; work that keeps failing ends the demo."""
    report = sync_once(started, reconcile=False)
    if report.work_left:
        echo_work_left(report)
        raise typer.Exit(EXIT_WORK_LEFT)


def run_demo(base: Settings, *, keep: bool, verbose: bool = False) -> None:
    """The demo, start to finish, printing a report as it goes.

    Its data lands in the normal data folder, so the commands it suggests at the end show
    what it found; log lines go to a file there (and to stderr too with `verbose`)."""
    try:
        check_folder(base)
    except DemoRefused as err:
        fail(str(err), EXIT_CONFIG)
    data_dir = base.data_dir
    if not keep:
        clear_previous(base)
    log_to_file(data_dir / DEMO_LOG, also_stderr=verbose)
    typer.echo(f"Demo data folder: {data_dir.resolve()} "
               f"({'kept from the last demo' if keep else 'a fresh start'})")
    typer.echo(f"  database rapport.db, emails in outbox/, log lines in {DEMO_LOG}")
    echo_err("Starting the Google Calendar and Microsoft Graph sandboxes ...")
    boxes = start_sandboxes()
    try:
        settings = sandbox_settings(base, boxes, data_dir)
        started = start(settings)
        typer.echo(f"Google sandbox:    {boxes.google.base_url}")
        typer.echo(f"Microsoft sandbox: {boxes.graph.base_url}")
        echo_err("Connecting the company (one grant per provider) and reading its directory ...")
        grants = connect_company(started, boxes.google, boxes.graph, boxes.company)
        sync_directories(started, grants)
        print_grants(started)
        t0 = datetime.now(UTC)
        echo_err("First sync (full) and agenda writing ...")
        sync_everything(started)
        first = counts_since(started.runtime, t0)
        _print_series(started)
        _print_agendas(started, since=t0)
        typer.echo(f"\nFirst pass: {first.provider_calls} provider calls, "
                   f"{first.agendas_written} agendas written.")
        t1 = datetime.now(UTC)
        sync_everything(started)
        again = counts_since(started.runtime, t1)
        typer.echo(f"Second pass (nothing changed): {again.provider_calls} provider calls, "
                   f"{again.writes} writes.")
        _print_invite(started)
        typer.echo("\nThe org chart:")
        print_org_chart(started, boxes.company)
        change_manager(started, boxes.google, grants, boxes.company)
        show_cancellations(started, boxes, sync=sync_everything)
        render_demo_digest(started)
        pause_demo_accounts(started.runtime.factory)
        started.runtime.engine.dispose()  # every connection closed: SQLite folds its WAL in
    finally:
        boxes.stop()
    _print_next_steps(base)


def _print_next_steps(base: Settings) -> None:
    """The commands that show the demo's data now that it is in the data folder."""
    manager = DROPPED[1]
    same_dir = "" if base.data_dir.resolve() == DEFAULT_DATA_DIR.resolve() else \
        f" (with RAPPORT_DATA_DIR={base.data_dir} set, as now)"
    typer.echo(f"\nThe demo's data stays in {base.data_dir}. Try next{same_dir}:")
    for command, what in (
            ("rapport pairs", "the 1:1s found, with the pair ids `topic add` takes"),
            ("rapport metrics", "how consistently each pair meets"),
            ("rapport digest", "this week's digest for each manager"),
            (f"rapport metrics link --manager {manager}", "the signed link to a manager's page"),
            ("rapport run", "the service with the manager pages (the demo accounts are "
                            "paused: their sandboxes stopped with the demo)")):
        typer.echo(f"  {command:<46} {what}")


def _print_series(started: Started) -> None:
    with started.runtime.factory() as session:
        rows = list_series(session, now=started.runtime.clock(), include_all=True)
    typer.echo("\nRecurring meetings found (pair ids for `topic add`, series ids for "
               "`series include`):")
    for row in rows:
        verdict = "1:1" if row.is_one_on_one else "not a 1:1"
        when = row.next_occurrence.strftime("%a %d %b %H:%M UTC") if row.next_occurrence else "-"
        pair = f"pair {row.pair_id:>2}" if row.pair_id is not None else " " * 7
        typer.echo(f"  {pair}  series {row.series_id:>2}  {row.title[:32]:<32} {verdict:<9} "
                   f"{(row.manager or '-'):<17} -> {(row.report or '-'):<17} "
                   f"every {row.cadence_days or '?'}d  next {when}  "
                   f"(confidence {row.confidence:.2f}: {row.reason})")


def _print_agendas(started: Started, *, since: datetime) -> None:
    typer.echo("\nAgendas written into invites:")
    with started.runtime.factory() as session:
        rows = session.execute(
            select(AgendaRecord, Occurrence, Series)
            .join(Occurrence, Occurrence.id == AgendaRecord.occurrence_id)
            .join(Series, Series.id == Occurrence.series_id)
            .where(AgendaRecord.written_at >= since).order_by(Occurrence.scheduled_start)
        ).all()
    for record, occurrence, series in rows:
        typer.echo(f"  {occurrence.scheduled_start:%a %d %b %H:%M} UTC  {series.title[:30]:<30} "
                   f"{record.kind:<11} areas: {', '.join(record.areas)}")


def _print_invite(started: Started) -> None:
    with started.runtime.factory() as session:
        row = session.execute(
            select(OccurrenceCopy, Calendar)
            .join(Calendar, Calendar.id == OccurrenceCopy.calendar_id)
            .join(AgendaRecord, AgendaRecord.written_copy_id == OccurrenceCopy.id)
            .order_by(AgendaRecord.id).limit(1)
        ).first()
    if row is None:
        return
    copy, calendar = row
    connector = started.runtime.connectors.for_calendar(calendar.id)
    event = connector.get_event(calendar.provider_calendar_id, copy.provider_event_id)
    typer.echo(f"\nThe agenda block of one invite, read back from {calendar.owner_email}'s "
               f"calendar (event {event.id}):\n")
    block = extract_block(event.description) or event.description
    typer.echo(visible_text(block) if looks_like_html(block) else block)
