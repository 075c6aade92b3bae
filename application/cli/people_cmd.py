"""`rapport people [--json]`: everyone Rapport knows; `rapport people opt-out|opt-in|
revoke-links EMAIL`: a person's choice about Rapport email, and withdrawing the page links
sent to them."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from application.cli.command import cli_of
from application.context import fail
from service.accounts.signing import revoke_links
from service.directory.people import list_people
from service.people.service import set_opted_out

people_app = typer.Typer(help="People: who they are, their manager and pairs; opt out of (or "
                         "back into) Rapport email; revoke links.",
                         invoke_without_command=True)


@people_app.callback()
def people(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON, version 1 (README: "
                                          "`rapport people --json`).")] = False,
) -> None:
    """Everyone Rapport knows: manager, provider, time zone, watched or not, pairs."""
    if ctx.invoked_subcommand is not None:
        return
    with cli_of(ctx).session() as session:
        rows = list_people(session)
    if as_json:
        typer.echo(json.dumps({"version": 1, "people": [r.as_json() for r in rows]}, indent=2))
        return
    if not rows:
        typer.echo("No one yet. Connect an account or a company directory first.")
        return
    typer.echo(f"{'person':<34} {'manager':<30} {'provider':<10} {'time zone':<20} "
               f"{'watched':<8} {'state':<10} pairs")
    for row in rows:
        state = "left" if row.left_at else "suspended" if row.suspended else "-"
        pairs = [f"manages {e}" for e in row.manages] + [f"reports to {e}"
                                                          for e in row.reports_to]
        typer.echo(f"{row.email[:34]:<34} {(row.manager or '-')[:30]:<30} "
                   f"{row.provider or '-':<10} {(row.time_zone or '-')[:20]:<20} "
                   f"{'yes' if row.watched else 'no':<8} {state:<10} "
                   f"{'; '.join(pairs) or '-'}")

# One address, no display name: something@domain.tld, no spaces, one "@".
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;.]+(\.[^@\s<>,;.]+)+")


def _address(email: str) -> str:
    """The address as given, or a one-line refusal when it is not one."""
    if not _EMAIL.fullmatch(email.strip()):
        fail(f"{email!r} is not an email address (expected e.g. sam@example.com)")
    return email.strip()


def _opt(ctx: typer.Context, email: str, opted_out: bool) -> None:
    email = _address(email)
    with cli_of(ctx).session(write=True) as session:
        set_opted_out(session, email=email, opted_out=opted_out)
    typer.echo(f"{email}: {'no Rapport email from now on' if opted_out else 'email again'}.")


@people_app.command("opt-out")
def opt_out(ctx: typer.Context, email: str) -> None:
    """This person gets no Rapport email at all (queued ones are dropped too)."""
    _opt(ctx, email, True)


@people_app.command("opt-in")
def opt_in(ctx: typer.Context, email: str) -> None:
    """This person gets Rapport email again."""
    _opt(ctx, email, False)


@people_app.command("revoke-links")
def revoke_links_cmd(ctx: typer.Context, email: str) -> None:
    """Withdraw every page link sent to this person so far (new links work as before)."""
    email = _address(email)
    with cli_of(ctx).session(write=True) as session:
        version = revoke_links(session, email=email)
    if version is None:
        fail(f"no one with the email {email} is known to Rapport")
    typer.echo(f"{email}: every link sent so far no longer opens; new links work.")
