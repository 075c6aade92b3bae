"""One bounded sync of every account, shared by `rapport sync --once` and `rapport demo`.

The run retries failing work a few times with a short backoff and then stops; what failed
stays due in the database (the calendar keeps `last_error` and its sync stays requested) for
the long-running worker and the reconciler. The caller gets one line per failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import typer
from sqlalchemy import select

from application.context import Started
from service.accounts.models import Account
from service.calendars.models import Calendar
from workers import actors
from workers.inprocess import run_bounded


@dataclass
class OnceReport:
    """What a bounded run left undone, in words for people."""

    accounts: int
    failed_calendars: list[tuple[str, str]] = field(default_factory=list)  # address, reason
    other_failures: list[str] = field(default_factory=list)
    timed_out: bool = False

    @property
    def work_left(self) -> bool:
        """True when some work failed or did not finish and is left due."""
        return bool(self.failed_calendars or self.other_failures or self.timed_out)


def sync_once(started: Started, *, reconcile: bool = True, timeout: float = 300.0,
              progress: Callable[[int], None] | None = None,
              announce: Callable[[int], None] | None = None) -> OnceReport:
    """Sync every active account (and, with `reconcile`, all other due work), in bounded time;
    `announce` hears how many accounts there are before the work starts."""
    rt = started.runtime
    began = rt.clock()
    ids = actors.sync_all_accounts()
    if not ids:
        return OnceReport(accounts=0)
    if announce is not None:
        announce(len(ids))
    if reconcile:
        actors.reconcile.send()
    run = run_bounded(started.broker, timeout=timeout, progress=progress)
    report = OnceReport(accounts=len(ids), timed_out=run.timed_out)
    with rt.factory() as session:
        for calendar in session.scalars(select(Calendar).where(
                Calendar.last_error.is_not(None), Calendar.last_error_at >= began)
                .order_by(Calendar.id)):
            address = calendar.owner_email or calendar.provider_calendar_id
            report.failed_calendars.append((address, calendar.last_error or "unknown error"))
        for failure in run.failures:
            if failure.actor_name == actors.sync_calendar.actor_name:
                continue  # reported from the calendar row, which says it better
            if failure.actor_name == actors.sync_account.actor_name and failure.args:
                account = session.get(Account, failure.args[0])
                what = f"account {account.email}" if account else f"account {failure.args[0]}"
            else:
                what = f"{failure.actor_name} {', '.join(map(str, failure.args))}".strip()
            report.other_failures.append(f"{what}: {failure.reason}")
    return report


def echo_work_left(report: OnceReport) -> None:
    """One line per failed calendar or piece of work, then what happens to it."""
    for address, reason in report.failed_calendars:
        typer.secho(f"  calendar {address} failed: {reason}", fg=typer.colors.YELLOW)
    for line in report.other_failures:
        typer.secho(f"  {line}", fg=typer.colors.YELLOW)
    if report.timed_out:
        typer.secho("  some work did not finish in time", fg=typer.colors.YELLOW)
    if report.work_left:
        typer.echo("The failed work is left due: `rapport run` or `rapport worker` with "
                   "`rapport scheduler` retries it, or run `rapport sync --once` again.")
