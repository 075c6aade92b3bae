"""`rapport status [--json]`: what is failing and needs an operator, from the database alone
(failing calendars and their next try, accounts waiting for re-consent, agenda writes that
failed), and the accounts waiting out a rate limit, which resume by themselves."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from application.cli.command import cli_of
from application.context import EXIT_FAILED
from service.sync.health import StatusReport, status_report


def _when(moment: datetime | None, unknown: str = "unknown") -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else unknown


def _next_try(moment: datetime | None) -> str:
    return f", next try {_when(moment)}" if moment else ""


def _lines(report: StatusReport) -> list[str]:
    lines = []
    if report.healthy:
        lines.append("All well: every calendar syncs, every account is signed in, and every "
                     "agenda is written.")
    if report.failing_calendars:
        lines.append(f"Calendars whose sync fails ({len(report.failing_calendars)}):")
        lines += [f"  {c.address} ({c.provider}, calendar {c.calendar_id}): failing since "
                  f"{_when(c.failed_at)}, last worked {_when(c.last_sync_at, 'never')}"
                  f"{_next_try(c.next_try)}: {c.reason}"
                  for c in report.failing_calendars]
    if report.accounts_needing_consent:
        lines.append("Accounts that need their owner to sign in again "
                     f"({len(report.accounts_needing_consent)}):")
        lines += [f"  {a.email} ({a.provider}, account {a.account_id}): since "
                  f"{_when(a.since)}: {a.reason}" for a in report.accounts_needing_consent]
    if report.failed_writes:
        lines.append(f"Agendas not written into their invite ({len(report.failed_writes)}):")
        lines += [f"  {w.title} on {_when(w.occurrence_start)} (agenda {w.agenda_id}): "
                  f"{w.reason}" for w in report.failed_writes]
    if report.throttled_accounts:
        lines.append("Accounts waiting out their provider's rate limit (they resume by "
                     f"themselves; {len(report.throttled_accounts)}):")
        lines += [f"  {a.email} ({a.provider}, account {a.account_id}): no call before "
                  f"{_when(a.until)}: {a.reason}" for a in report.throttled_accounts]
    return lines


def status_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see README).")] = False,
) -> None:
    """What needs attention: failing calendars, accounts to re-consent, failed agenda writes.

    Exits 1 when anything is listed, so a monitor can run it."""
    with cli_of(ctx).session() as session:
        report = status_report(session)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in _lines(report):
            typer.echo(line)
    if not report.healthy:
        raise typer.Exit(EXIT_FAILED)
