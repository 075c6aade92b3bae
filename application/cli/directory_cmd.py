"""`rapport directory sync|list`: read the company directories now, and show the grants."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func, select

from application.cli.command import Cli, cli_of
from application.context import EXIT_FAILED, echo_err, fail, friendly_errors
from connectors.errors import ConnectorError
from service.accounts.crypto import Vault
from service.accounts.models import DirectoryGrant
from service.directory.sync import (
    MAX_PAGES,
    DirectorySyncError,
    DirectorySyncResult,
    active_grant_ids,
    sync_directory,
)
from service.people.models import Person

directory_app = typer.Typer(help="Company directories: who works here, who manages whom.",
                            no_args_is_help=True)

PROGRESS_EVERY = 10  # pages between two progress lines on a long pass


def _progress(result: DirectorySyncResult) -> None:
    if result.pages % PROGRESS_EVERY == 0:
        echo_err(f"  grant {result.grant_id}: {result.pages} pages, {result.seen} people so far")


@directory_app.command("sync")
def directory_sync(
    ctx: typer.Context,
    grant: Annotated[int | None, typer.Option(help="Only this grant (see `rapport directory "
                                              "list`); default: every active grant.")] = None,
    max_pages: Annotated[int, typer.Option(min=1, help="Stop after this many pages per "
                                           "grant (the next run resumes).")] = MAX_PAGES,
) -> None:
    """Read the company directories now: people, managers, who was suspended or left."""
    cli = cli_of(ctx)
    rt = cli.started.runtime
    with friendly_errors():
        with rt.factory() as session:
            if grant is None:
                ids = active_grant_ids(session)
            elif session.get(DirectoryGrant, grant) is None:
                fail(f"no company grant with id {grant} (see `rapport directory list`)")
                return
            else:
                ids = [grant]
        if not ids:
            fail("no company grant: run `rapport connect google-workspace` or "
                 "`rapport connect microsoft-tenant` first")
        failed = [g for g in ids if not sync_and_tell(cli, g, max_pages=max_pages)]
    if failed:
        raise typer.Exit(EXIT_FAILED)


def sync_and_tell(cli: Cli, grant_id: int, *, max_pages: int = MAX_PAGES) -> bool:
    """Read one grant's directory now and print its summary, or one line saying why it
    failed; False when it failed (the next run resumes where it stopped)."""
    rt = cli.started.runtime
    try:
        result = sync_directory(rt.factory, grant_id=grant_id,
                                connector=rt.connectors.directory_for(grant_id),
                                vault=Vault.from_settings(cli.settings), now=rt.clock(),
                                max_pages=max_pages, progress=_progress)
    except (ConnectorError, DirectorySyncError, LookupError, ValueError) as err:
        typer.secho(f"grant {grant_id}: directory sync failed: {err}", fg=typer.colors.YELLOW)
        return False
    typer.echo(result.summary())
    if result.unknown_managers:
        outside = ", ".join(sorted(result.unknown_managers)[:10])
        more = len(result.unknown_managers) - 10
        typer.echo(f"  managers outside the directory's scope: {outside}"
                   + (f" and {more} more" if more > 0 else ""))
    return True


@directory_app.command("list")
def directory_list(ctx: typer.Context) -> None:
    """The company grants, their status, their last directory sync and how many people."""
    with cli_of(ctx).session() as session:
        grants = session.scalars(select(DirectoryGrant).order_by(DirectoryGrant.id)).all()
        counts = dict(session.execute(
            select(Person.directory_grant_id, func.count())
            .where(Person.directory_grant_id.is_not(None), Person.left_at.is_(None))
            .group_by(Person.directory_grant_id)).all())
        if not grants:
            typer.echo("No company grant yet: `rapport connect google-workspace` or "
                       "`rapport connect microsoft-tenant`.")
            return
        typer.echo(f"{'id':>4}  {'provider':<10} {'domain / tenant':<32} {'status':<16} "
                   f"{'people':>6}  last sync")
        for g in grants:
            last = f"{g.last_directory_sync_at:%Y-%m-%d %H:%M} UTC" \
                if g.last_directory_sync_at else "never"
            if g.directory_page_token:
                last += " (a pass is under way)"
            typer.echo(f"{g.id:>4}  {g.provider:<10} {g.name[:32]:<32} {g.status:<16} "
                       f"{counts.get(g.id, 0):>6}  {last}")
            if g.last_error:
                typer.secho(f"      last error: {g.last_error}", fg=typer.colors.YELLOW)
