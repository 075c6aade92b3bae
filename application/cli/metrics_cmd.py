"""`rapport metrics` (table, JSON, backfill, signed link) and `rapport digest`."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from application.cli.command import cli_of
from application.context import echo_err, fail, friendly_errors
from service.accounts.signing import links_version, manager_url
from service.metrics import definitions as d
from service.metrics.coverage import all_coverage
from service.metrics.digest import build_digest, pair_row, send_digest
from service.metrics.queries import manager_ids
from service.metrics.reports import ManagerReport, current_week, iter_reports
from service.metrics.serialisers import report_json
from service.metrics.snapshots import recompute_snapshots
from service.people.models import Person
from service.people.zones import zone_of
from service.sync.backfill import backfill

metrics_app = typer.Typer(help="How consistently each pair meets (default: last 12 weeks).",
                          invoke_without_command=True)


@metrics_app.callback()
def metrics(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON, version 1 (see "
                                          "service.metrics.serialisers.report_json).")] = False,
    manager: Annotated[str | None, typer.Option(help="Only this manager (email).")] = None,
    weeks: Annotated[int, typer.Option(min=1, max=520, help="Window in ISO weeks.")] = 12,
) -> None:
    """Per manager: each report's consistency, streak, longest gap and Balance coverage."""
    if ctx.invoked_subcommand is not None:
        return
    cli = cli_of(ctx)
    rt = cli.started.runtime
    with friendly_errors():
        reports = list(iter_reports(rt.factory, now=rt.clock(), weeks=weeks,
                                    manager_email=manager))
        with rt.factory() as session:
            coverage = all_coverage(session, cadence_days=cli.settings.coverage_cadence_days,
                                    manager_email=manager)
    if manager and not reports and not coverage:
        fail(f"no manager with 1:1s has the email {manager}")
    if as_json:
        typer.echo(json.dumps({"version": 1, "managers": [report_json(r) for r in reports],
                               "coverage": [c.as_json() for c in coverage]}, indent=2))
        return
    if not reports and not coverage:
        typer.echo("No 1:1 pairs yet. Connect an account and run `rapport sync --once`.")
        return
    _print_reports(reports)
    if coverage:
        typer.echo(f"\nCoverage from the org chart (a 1:1 at least every "
                   f"{cli.settings.coverage_cadence_days} days):")
        for c in coverage:
            typer.echo(f"  {c.sentence()}")


def _print_reports(reports: list[ManagerReport]) -> None:
    """The per-manager tables of `rapport metrics`."""
    if not reports:
        return
    for report in reports:
        rate = "-" if report.consistency is None else f"{round(report.consistency * 100)}%"
        typer.echo(f"\n{report.name} <{report.email}>  {report.weeks[0]}..{report.weeks[-1]} "
                   f"({report.time_zone}): {report.counts.took_place}/{report.counts.eligible} "
                   f"took place ({rate}), {report.counts.dropped} dropped")
        typer.echo(f"  {'report':<26} {'weeks':<{len(report.weeks)}}  {'met':>7} {'rate':>5} "
                   f"{'streak':>6} {'gap':>10}  G C P M  attention")
        for pair in report.pairs:
            row = pair_row(pair)
            areas = " ".join(str(row["areas"][a]) for a in
                             ("growth", "communication", "productivity", "motivation"))
            typer.echo(f"  {row['name'][:26]:<26} {row['strip_text']}  "
                       f"{str(row['took_place']) + '/' + str(row['eligible']):>7} "
                       f"{row['consistency']:>5} {row['streak']:>6} {row['gap']:>10}  {areas}  "
                       f"{', '.join(pair.reasons) or '-'}")
    typer.echo("\nweeks: H held, R rescheduled, X dropped, - nothing planned, ? not decided; "
               "G C P M: agendas per Balance area")


@metrics_app.command("backfill")
def backfill_cmd(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Read history from this date (YYYY-MM-DD).")],
) -> None:
    """Read past occurrences from the providers (normal sync path, wider window)."""
    try:
        start_date = date.fromisoformat(since)
    except ValueError:
        fail(f"--since must be a date like 2026-01-31, not {since!r}")
        return
    rt = cli_of(ctx).started.runtime
    with friendly_errors():
        echo_err(f"Reading calendars back to {start_date} ...")
        now = rt.clock()
        result = backfill(rt.factory, connectors=rt.connectors, since=start_date, now=now)
        with rt.factory.begin() as session:
            snapshots = recompute_snapshots(session, now=now, since=start_date)
    typer.echo(f"Backfill: {result.calendars} calendars, {result.events} events read, "
               f"{result.skipped} skipped, {result.outcomes_set} past outcomes recorded, "
               f"{snapshots} weekly snapshots written.")
    if result.failed_calendars:
        typer.secho(f"  calendars that failed: {', '.join(result.failed_calendars)}",
                    fg=typer.colors.YELLOW)
        raise typer.Exit(1)


@metrics_app.command("link")
def link_cmd(ctx: typer.Context,
             manager: Annotated[str, typer.Option(help="The manager's email.")]) -> None:
    """Print the signed link to a manager's page."""
    cli = cli_of(ctx)
    with cli.session() as session:
        ids = manager_ids(session, email=manager)
        version = links_version(session, person_id=ids[0]) if ids else None
    if not ids or version is None:
        fail(f"no manager with 1:1s has the email {manager}")
        return
    typer.echo(manager_url(cli.settings, ids[0], version=version,
                           now=cli.started.runtime.clock()))


def digest_cmd(
    ctx: typer.Context,
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W48 (default: the "
                                             "manager's current week).")] = None,
    manager: Annotated[str | None, typer.Option(help="Only this manager (email).")] = None,
    send: Annotated[bool, typer.Option("--send", help="Queue in the outbox and deliver "
                                       "(once per manager and week).")] = False,
    html: Annotated[bool, typer.Option("--html", help="Print the HTML part.")] = False,
) -> None:
    """Render the weekly digest to stdout, or queue and send it with --send."""
    if week is not None:
        try:
            d.parse_iso_week(week)
        except ValueError as err:
            fail(str(err))
    cli = cli_of(ctx)
    settings, rt = cli.settings, cli.started.runtime
    with friendly_errors():
        now = rt.clock()
        with rt.factory() as session:
            ids = manager_ids(session, email=manager)
        if not ids:
            fail(f"no manager with 1:1s has the email {manager}" if manager
                 else "no 1:1 pairs yet")
        for manager_id in ids:
            with rt.factory() as session:
                person = session.get(Person, manager_id)
                assert person is not None
                iso_week = week or current_week(now, zone_of(person.time_zone))
                if not send:
                    _, rendered = build_digest(session, settings=settings,
                                               manager_id=manager_id, iso_week=iso_week,
                                               now=now)
            if send:
                result = send_digest(rt.factory, settings=settings, manager_id=manager_id,
                                     iso_week=iso_week, now=now)
                outcome = result.outcome if result is not None else "queued"
                typer.echo(f"digest {iso_week} for {person.email}: {outcome}")
                continue
            typer.echo(f"To: {person.email}\nSubject: {rendered.subject}\n")
            typer.echo(rendered.html if html else rendered.text)
