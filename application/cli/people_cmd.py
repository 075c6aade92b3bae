"""`rapport people opt-out|opt-in|revoke-links EMAIL`: a person's choice about Rapport email,
and withdrawing the page links sent to them."""

from __future__ import annotations

import re

import typer

from application.cli.command import cli_of
from application.context import fail
from service.accounts.signing import revoke_links
from service.people.service import set_opted_out

people_app = typer.Typer(help="People: opt out of (or back into) Rapport email; revoke links.",
                         no_args_is_help=True)

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
