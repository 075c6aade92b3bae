"""`rapport alerts [--json]` and `rapport alerts mute|unmute PAIR_ID`: seeing and steering the
alerts about dropped 1:1s."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from application.cli.command import cli_of
from service.outcomes.listing import list_alerts, set_pair_muted

alerts_app = typer.Typer(help="Alerts about dropped 1:1s: list, mute a pair.",
                         invoke_without_command=True)


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, one object per alert.")] = False,
) -> None:
    """Alerts sent and pending, and checks still inside their grace period."""
    if ctx.invoked_subcommand is not None:
        return
    with cli_of(ctx).session() as session:
        rows = list_alerts(session)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("No alerts: nothing dropped without a reschedule.")
        return
    for row in rows:
        at = row.at.strftime("%Y-%m-%d %H:%M UTC") if row.at else "-"
        typer.echo(f"  occ {row.occurrence_id:>5}  {row.original_start:%a %d %b %H:%M} UTC  "
                   f"{row.title[:28]:<28} {row.manager} -> {row.report}  {row.state:<10} {at}"
                   f"  {row.outcome or ''}")


def _mute(ctx: typer.Context, pair_id: int, muted: bool) -> None:
    with cli_of(ctx).session(write=True) as session:
        set_pair_muted(session, pair_id=pair_id, muted=muted)
    typer.echo(f"Pair {pair_id}: alerts {'muted' if muted else 'on'}.")


@alerts_app.command("mute")
def mute(ctx: typer.Context, pair_id: int) -> None:
    """No alerts for this pair (outcomes are still recorded)."""
    _mute(ctx, pair_id, True)


@alerts_app.command("unmute")
def unmute(ctx: typer.Context, pair_id: int) -> None:
    """Alerts for this pair again."""
    _mute(ctx, pair_id, False)
