"""`rapport alerts [--json]`, `rapport alerts mute|unmute PAIR_ID` and
`rapport people opt-out|opt-in|revoke-links EMAIL`: seeing and steering the alerts, and
withdrawing a person's page links."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from application.context import fail, friendly_errors, load_settings, start
from service.accounts.signing import revoke_links
from service.outcomes.listing import list_alerts, set_pair_muted
from service.pairs.service import PairNotFound
from service.people.service import set_opted_out

alerts_app = typer.Typer(help="Alerts about dropped 1:1s: list, mute a pair.",
                         invoke_without_command=True)
people_app = typer.Typer(help="People: opt out of (or back into) Rapport email.",
                         no_args_is_help=True)


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, one object per alert.")] = False,
) -> None:
    """Alerts sent and pending, and checks still inside their grace period."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    with friendly_errors():
        started = start(settings)
        with started.runtime.factory() as session:
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


def _mute(pair_id: int, muted: bool) -> None:
    settings = load_settings()
    with friendly_errors():
        started = start(settings)
        try:
            with started.runtime.factory.begin() as session:
                set_pair_muted(session, pair_id=pair_id, muted=muted)
        except PairNotFound as err:
            fail(str(err))
    typer.echo(f"Pair {pair_id}: alerts {'muted' if muted else 'on'}.")


@alerts_app.command("mute")
def mute(pair_id: int) -> None:
    """No alerts for this pair (outcomes are still recorded)."""
    _mute(pair_id, True)


@alerts_app.command("unmute")
def unmute(pair_id: int) -> None:
    """Alerts for this pair again."""
    _mute(pair_id, False)


# One address, no display name: something@domain.tld, no spaces, one "@".
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;.]+(\.[^@\s<>,;.]+)+")


def _opt(email: str, opted_out: bool) -> None:
    settings = load_settings()
    if not _EMAIL.fullmatch(email.strip()):
        fail(f"{email!r} is not an email address (expected e.g. sam@example.com)")
    email = email.strip()
    with friendly_errors():
        started = start(settings)
        with started.runtime.factory.begin() as session:
            set_opted_out(session, email=email, opted_out=opted_out)
    typer.echo(f"{email}: {'no Rapport email from now on' if opted_out else 'email again'}.")


@people_app.command("opt-out")
def opt_out(email: str) -> None:
    """This person gets no Rapport email at all (queued ones are dropped too)."""
    _opt(email, True)


@people_app.command("opt-in")
def opt_in(email: str) -> None:
    """This person gets Rapport email again."""
    _opt(email, False)


@people_app.command("revoke-links")
def revoke_links_cmd(email: str) -> None:
    """Withdraw every page link sent to this person so far (new links work as before)."""
    settings = load_settings()
    if not _EMAIL.fullmatch(email.strip()):
        fail(f"{email!r} is not an email address (expected e.g. sam@example.com)")
    email = email.strip()
    with friendly_errors():
        started = start(settings)
        with started.runtime.factory.begin() as session:
            version = revoke_links(session, email=email)
    if version is None:
        fail(f"no one with the email {email} is known to Rapport")
    typer.echo(f"{email}: every link sent so far no longer opens; new links work.")
