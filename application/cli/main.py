"""The `rapport` command: demo, connect, sync, run, worker, scheduler, pairs, series."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.fernet import Fernet
from dramatiq import Worker
from sqlalchemy import select
from sqlalchemy.orm import Session

from application.cli.alerts_cmd import alerts_app
from application.cli.command import Cli, cli_of
from application.cli.directory_cmd import directory_app
from application.cli.metrics_cmd import digest_cmd, metrics_app
from application.cli.people_cmd import people_app
from application.cli.status_cmd import status_cmd
from application.cli.tenant_cmd import connect_microsoft_tenant_cmd
from application.cli.workspace_cmd import connect_google_workspace_cmd
from application.context import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_WORK_LEFT,
    counts_since,
    echo_err,
    fail,
    friendly_errors,
    load_settings,
)
from application.once import echo_work_left, sync_once
from application.web.server import serve_in_thread
from connectors.google.auth import CALENDAR_SCOPES
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus
from service.agenda.items import (
    add_action_item,
    add_topic,
    close_action_item,
    list_topics,
    open_action_items,
    remove_topic,
)
from service.calendars.onboarding import (
    GOOGLE_FIELDS,
    MICROSOFT_FIELDS,
    connect_google,
    connect_microsoft,
    import_microsoft_refresh_token,
    read_credentials_file,
)
from service.pairs.models import Override
from service.pairs.service import (
    list_series,
    pair_emails,
    resolve_pair,
    set_manager_override,
    set_override,
)
from service.settings import Settings
from workers.broker import quiet_consumer_errors, wait_for_broker
from workers.scheduler import build_scheduler

app = typer.Typer(help="Rapport keeps 1:1s steady and balanced.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
connect_app = typer.Typer(help="Connect a calendar account.", no_args_is_help=True)
series_app = typer.Typer(help="Override 1:1 detection for one series.", no_args_is_help=True)
topic_app = typer.Typer(help="Topics for a pair's next 1:1.", no_args_is_help=True)
action_app = typer.Typer(help="Action items that carry over until done.", no_args_is_help=True)
app.add_typer(connect_app, name="connect")
connect_app.command("google-workspace")(connect_google_workspace_cmd)
connect_app.command("microsoft-tenant")(connect_microsoft_tenant_cmd)
app.add_typer(series_app, name="series")
app.add_typer(metrics_app, name="metrics")
app.command("digest")(digest_cmd)
app.command("status")(status_cmd)
app.add_typer(topic_app, name="topic")
app.add_typer(action_app, name="action")
app.add_typer(alerts_app, name="alerts")
app.add_typer(people_app, name="people")
app.add_typer(directory_app, name="directory")


def _print_version(value: bool) -> None:
    """`rapport --version`: the installed package's version, read from its metadata."""
    if not value:
        return
    try:
        typer.echo(f"rapport {package_version('rapport')}")
    except PackageNotFoundError:
        fail("the rapport package is not installed (pip install -e .), so it has no version")
    raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the installed version and exit.")] = False,
) -> None:
    """Rapport keeps 1:1s steady and balanced."""
    ctx.obj = Cli(load_settings())  # settings are checked here, before any command runs
    ctx.call_on_close(ctx.obj.close)



@app.command()
def demo(ctx: typer.Context,
         keep: Annotated[bool, typer.Option(help="Keep the previous demo data.")] = False,
         verbose: Annotated[bool, typer.Option(
             "--verbose", "-v", help="Also print log lines (they always go to demo.log).")
         ] = False) -> None:
    """Run Rapport end to end against local Google and Microsoft sandboxes.

    Uses the data folder (RAPPORT_DATA_DIR, default ./rapport-data), so `rapport pairs`,
    `metrics`, `digest` and `run` show the demo's data afterwards; refuses a folder that
    holds real accounts."""
    # lazy on purpose: the demo brings the sandbox servers (trustme, their HTTP apps), an
    # optional extra that no other command needs and that would slow every `rapport` start
    try:
        from application.demo.run import run_demo
    except ModuleNotFoundError as err:
        fail(f"`rapport demo` needs its sandboxes' libraries ({err.name} is missing): "
             "python3 -m pip install -e \".[demo]\"", EXIT_CONFIG)
        return
    with friendly_errors():
        run_demo(cli_of(ctx).settings, keep=keep, verbose=verbose)


@connect_app.command("google")
def connect_google_cmd(
    ctx: typer.Context,
    credentials: Annotated[Path | None, typer.Option(
        help="An 'authorized_user' JSON file (client_id, client_secret, refresh_token, "
             "token_uri) for headless servers.")] = None,
    client_secrets: Annotated[Path | None, typer.Option(
        help="OAuth client file from Google Cloud Console, for the browser consent flow.")] = None,
) -> None:
    """Connect a Google account (browser consent, or import a credentials file)."""
    cli = cli_of(ctx)
    settings = cli.settings
    with friendly_errors():
        if credentials is not None:
            data = read_credentials_file(credentials, required=GOOGLE_FIELDS)
        else:
            data = _google_consent(client_secrets, settings)
    with cli.session(write=True) as session:
        account = connect_google(session, settings=settings,
                                 vault=Vault.from_settings(settings), credentials=data)
        typer.echo(f"Connected Google account {account.email} (id {account.id}).")


def _google_consent(client_secrets: Path | None, settings: Settings) -> dict[str, Any]:
    """The browser consent flow with the smallest scopes that do the job."""
    # lazy on purpose: the browser consent flow (google-auth-oauthlib) serves only this path
    from google_auth_oauthlib.flow import InstalledAppFlow

    if client_secrets is not None:
        flow = InstalledAppFlow.from_client_secrets_file(str(client_secrets), list(CALENDAR_SCOPES))
    elif settings.google_client_id and settings.google_client_secret:
        flow = InstalledAppFlow.from_client_config({"installed": {
            "client_id": settings.google_client_id,
            "client_secret": settings.google_client_secret.get_secret_value(),
            "auth_uri": settings.google_auth_url,
            "token_uri": settings.google_token_url,
        }}, list(CALENDAR_SCOPES))
    else:
        fail("for the browser flow give --client-secrets FILE (an OAuth client of type "
             "'Desktop app') or set RAPPORT_GOOGLE_CLIENT_ID and RAPPORT_GOOGLE_CLIENT_SECRET; "
             "or import a grant with --credentials FILE", EXIT_CONFIG)
        raise AssertionError("unreachable")
    creds = flow.run_local_server(port=0, open_browser=True)
    return {"client_id": creds.client_id, "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token, "token_uri": creds.token_uri}


@connect_app.command("microsoft")
def connect_microsoft_cmd(
    ctx: typer.Context,
    credentials: Annotated[Path | None, typer.Option(
        help="A JSON file with client_id, authority and refresh_token (headless servers).")
    ] = None,
    client_id: Annotated[str | None, typer.Option(
        help="Application (client) id for the device-code flow "
             "(default RAPPORT_MICROSOFT_CLIENT_ID).")] = None,
) -> None:
    """Connect a Microsoft 365 account (device code, or import a refresh token)."""
    cli = cli_of(ctx)
    settings = cli.settings
    with friendly_errors():
        # a bad file is reported before anything is set up (no key, no database)
        data = read_credentials_file(credentials, required=MICROSOFT_FIELDS) \
            if credentials is not None else None
        vault = Vault.from_settings(settings)
    with cli.session(write=True) as session:
        if data is not None:
            account = import_microsoft_refresh_token(session, settings=settings, vault=vault,
                                                     credentials=data)
        else:
            cid = client_id or settings.microsoft_client_id
            if not cid:
                fail("give --client-id or set RAPPORT_MICROSOFT_CLIENT_ID", EXIT_CONFIG)
            assert cid is not None

            def device_flow(tokens: Any) -> str:
                flow = tokens.device_flow_start()
                typer.echo(flow["message"])
                return str(tokens.device_flow_finish(flow))

            account = connect_microsoft(session, settings=settings, vault=vault,
                                        client_id=cid, authority=None, sign_in=device_flow)
        typer.echo(f"Connected Microsoft account {account.email} (id {account.id}).")


@app.command()
def sync(ctx: typer.Context,
         once: Annotated[bool, typer.Option("--once", help="Sync, finish all work, exit.")]
         = False) -> None:
    """Sync every connected account and write due agendas (`--once`: then exit)."""
    if not once:
        fail("`rapport sync` needs --once; use `rapport run` for the long-running service")
    started = cli_of(ctx).started
    with friendly_errors():
        rt = started.runtime
        since = datetime.now(UTC)
        report = sync_once(started,
                           announce=lambda n: echo_err(f"Syncing {n} accounts ..."),
                           progress=lambda n: echo_err(f"  ... {n} pieces of work still pending"))
        if not report.accounts:
            fail("no connected account: run `rapport connect google` or "
                 "`rapport connect microsoft` first (or try `rapport demo`)")
        counts = counts_since(rt, since)
        with rt.factory() as session:
            flagged = session.scalars(select(Account).where(
                Account.status != AccountStatus.ACTIVE)).all()
            pairs = list_series(session, now=rt.clock())
        typer.echo(f"Synced {report.accounts} accounts: {counts.provider_calls} provider calls, "
                   f"{counts.agendas_written} agendas written, {len(pairs)} 1:1 series known.")
        for account in flagged:
            typer.secho(f"  account {account.email} ({account.provider}) needs attention: "
                        f"{account.status_reason}", fg=typer.colors.YELLOW)
        echo_work_left(report)
        if flagged:
            raise typer.Exit(EXIT_FAILED)
        if report.work_left:
            raise typer.Exit(EXIT_WORK_LEFT)


@app.command()
def run(ctx: typer.Context,
        http: Annotated[bool, typer.Option(
        help="Serve manager pages and webhooks on RAPPORT_HTTP_HOST:RAPPORT_HTTP_PORT.")] = True
        ) -> None:
    """The all-in-one service: worker (in-process or on the broker), scheduler and HTTP."""
    cli = cli_of(ctx)
    settings, started = cli.settings, cli.started
    with friendly_errors():
        try:
            server = serve_in_thread(started.runtime) if http else None
        except OSError as err:
            fail(str(err), EXIT_CONFIG)
        worker = Worker(started.broker, worker_threads=4)
        worker.start()
        scheduler = build_scheduler(settings, blocking=False)
        scheduler.start()
        where = f" on http://{settings.http_host}:{settings.http_port}" if http else ""
        echo_err(f"Rapport is running{where}; Ctrl-C stops it.")
        _wait_for_signal()
        scheduler.shutdown(wait=False)
        worker.stop()
        if server is not None:
            server.should_exit = True


@app.command()
def worker(ctx: typer.Context, threads: Annotated[int, typer.Option(min=1, max=64)] = 4) -> None:
    """A worker process for a distributed deployment (needs RAPPORT_BROKER_URL)."""
    cli = cli_of(ctx)
    settings = cli.settings
    if not settings.broker_url:
        fail("RAPPORT_BROKER_URL is not set: without a broker the worker lives inside "
             "`rapport run`", EXIT_CONFIG)
    started = cli.started
    with friendly_errors():
        if not _until_broker_answers(settings.broker_url or ""):
            return
        quiet_consumer_errors(started.broker)
        process = Worker(started.broker, worker_threads=threads)
        process.start()
        echo_err(f"Worker running with {threads} threads; Ctrl-C stops it.")
        _wait_for_signal()
        process.stop()


@app.command()
def scheduler(ctx: typer.Context) -> None:
    """The scheduler for a distributed deployment (needs RAPPORT_BROKER_URL)."""
    cli = cli_of(ctx)
    settings = cli.settings
    if not settings.broker_url:
        fail("RAPPORT_BROKER_URL is not set: without a broker the scheduler lives inside "
             "`rapport run`", EXIT_CONFIG)
    _ = cli.started  # migrate the database and bind the actors to the broker
    with friendly_errors():
        if not _until_broker_answers(settings.broker_url or ""):
            return
        echo_err("Scheduler running; Ctrl-C stops it.")
        build_scheduler(settings, blocking=True).start()


def _until_broker_answers(url: str) -> bool:
    """Wait (backing off, one log line per attempt) until the broker answers; False when
    Ctrl-C or SIGTERM came first. The signal handlers are put back afterwards."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return wait_for_broker(url, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def pairs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see README).")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Every recurring series.")] = False,
) -> None:
    """The detected 1:1 series: manager, report, cadence, next occurrence, provider ids."""
    cli = cli_of(ctx)
    with cli.session() as session:
        rows = list_series(session, now=cli.started.runtime.clock(), include_all=show_all)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("No 1:1 series yet. Connect an account and run `rapport sync --once`.")
        return
    # `pair` is what `topic` and `action` take; `series` is what `series include` takes.
    typer.echo(f"{'pair':>4}  {'series':>6}  {'manager':<24} {'report':<24} {'every':>5}  "
               f"{'next (UTC)':<17} title")
    for r in rows:
        when = r.next_occurrence.strftime("%Y-%m-%d %H:%M") if r.next_occurrence else "-"
        flag = "" if r.is_one_on_one else "  (not a 1:1)"
        pair = str(r.pair_id) if r.pair_id is not None else "-"
        typer.echo(f"{pair:>4}  {r.series_id:>6}  {(r.manager or '-'):<24} {(r.report or '-'):<24} "
                   f"{(str(r.cadence_days) + 'd') if r.cadence_days else '?':>5}  {when:<17} "
                   f"{r.title}{flag}")


def _override(ctx: typer.Context, series_id: int, override: Override | None) -> None:
    with cli_of(ctx).session(write=True) as session:
        title = set_override(session, series_id=series_id, override=override).title
    typer.echo(f"Series {series_id} ({title}): override is now {override or 'automatic'}.")


@series_app.command("include")
def series_include(ctx: typer.Context, series_id: int) -> None:
    """Treat this series as a 1:1, whatever detection says."""
    _override(ctx, series_id, Override.INCLUDE)


@series_app.command("exclude")
def series_exclude(ctx: typer.Context, series_id: int) -> None:
    """Never treat this series as a 1:1."""
    _override(ctx, series_id, Override.EXCLUDE)


@series_app.command("auto")
def series_auto(ctx: typer.Context, series_id: int) -> None:
    """Clear the override: detection decides again."""
    _override(ctx, series_id, None)


PAIR_HELP = "A pair id (the 'pair' column of `rapport pairs`) or the report's email."


@series_app.command("manager")
def series_manager(
    ctx: typer.Context, series_id: int,
    email: Annotated[str | None, typer.Argument(help="The manager: one of the series' two "
                                                "people.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Let the org chart (or the organizer) "
                                        "decide again.")] = False,
) -> None:
    """Name the manager of a 1:1 series by hand; beats the org chart and the organizer."""
    if clear == (email is not None):
        fail("give the manager's email, or --clear (not both)")
    with cli_of(ctx).session(write=True) as session:
        series = set_manager_override(session, series_id=series_id,
                                      email=None if clear else email)
        label = _pair_label(session, series.pair_id) if series.pair_id else None
    if label is None:
        typer.echo(f"series {series_id}: not a managed 1:1 now (no pair).")
    elif clear:
        typer.echo(f"series {series_id}: the org chart or the organizer decides again: {label}.")
    else:
        typer.echo(f"series {series_id}: manager set by hand: {label}.")


def _pair_id(session: Session, ref: str) -> int:
    """The pair `ref` names, or a one-line error and a non-zero exit."""
    return resolve_pair(session, ref=ref).id  # PairNotFound: a refusal, one line


@topic_app.command("add")
def topic_add(ctx: typer.Context,
              pair: Annotated[str, typer.Argument(help=PAIR_HELP)], text: str,
              by: Annotated[str, typer.Option(help="report or manager")] = "report") -> None:
    """Queue a topic for the pair's next agenda (the report's come first)."""
    with cli_of(ctx).session(write=True) as session:
        pair_id = _pair_id(session, pair)
        topic = add_topic(session, pair_id=pair_id, text=text, added_by=by)
        topic_id, who = topic.id, _pair_label(session, pair_id)
    typer.echo(f"Topic {topic_id} queued for pair {pair_id} ({who}); "
               "it appears in the next agenda.")


@topic_app.command("list")
def topic_list(ctx: typer.Context,
               pair: Annotated[str | None, typer.Argument(help=PAIR_HELP)] = None) -> None:
    """Topics waiting for a pair's next 1:1 (all pairs without PAIR), oldest first."""
    with cli_of(ctx).session() as session:
        pair_id = _pair_id(session, pair) if pair is not None else None
        rows = list_topics(session, pair_id=pair_id)
        labels = {t.pair_id: _pair_label(session, t.pair_id) for t, _ in rows}
    if not rows:
        typer.echo("No topics waiting." if pair is None else f"No topics waiting for {pair}.")
        return
    typer.echo(f"{'topic':>5}  {'pair':>4}  {'between':<36} {'by':<8} {'planned for':<17} text")
    for topic, occurrence in rows:
        when = f"{occurrence.scheduled_start:%Y-%m-%d %H:%M}" if occurrence else "next 1:1"
        typer.echo(f"{topic.id:>5}  {topic.pair_id:>4}  {labels[topic.pair_id][:36]:<36} "
                   f"{topic.added_by:<8} {when:<17} {topic.text}")


@topic_app.command("remove")
def topic_remove(ctx: typer.Context, topic_id: int) -> None:
    """Take a topic off the queue (ids from `rapport topic list`)."""
    with cli_of(ctx).session(write=True) as session:
        pair_id = remove_topic(session, topic_id=topic_id).pair_id
    typer.echo(f"Topic {topic_id} removed from pair {pair_id}.")


def _pair_label(session: Session, pair_id: int) -> str:
    """'manager -> report' by email, so people see which pair an id meant."""
    manager, report = pair_emails(session, pair_id=pair_id)
    return f"{manager} -> {report}"


@action_app.command("add")
def action_add(ctx: typer.Context,
               pair: Annotated[str, typer.Argument(help=PAIR_HELP)], text: str,
               owner: Annotated[str, typer.Option(help="report or manager")] = "report") -> None:
    """Record an action item; it is followed up in every agenda until done."""
    with cli_of(ctx).session(write=True) as session:
        pair_id = _pair_id(session, pair)
        item_id = add_action_item(session, pair_id=pair_id, text=text, owner=owner).id
        who = _pair_label(session, pair_id)
    typer.echo(f"Action item {item_id} recorded for pair {pair_id} ({who}).")


@action_app.command("done")
def action_done(ctx: typer.Context, item_id: int) -> None:
    """Close an action item."""
    cli = cli_of(ctx)
    with cli.session(write=True) as session:
        close_action_item(session, item_id=item_id, now=cli.started.runtime.clock())
    typer.echo(f"Action item {item_id} closed.")


@action_app.command("list")
def action_list(ctx: typer.Context,
                pair: Annotated[str | None, typer.Option("--pair", help=PAIR_HELP)] = None
                ) -> None:
    """Open action items, oldest first."""
    with cli_of(ctx).session() as session:
        pair_id = _pair_id(session, pair) if pair is not None else None
        items = open_action_items(session, pair_id=pair_id)
        for item in items:
            typer.echo(f"{item.id:>5}  pair {item.pair_id:<4} {item.owner:<8} {item.text}")
    if not items:
        typer.echo("No open action items.")


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for RAPPORT_SECRET_KEY."""
    typer.echo(Fernet.generate_key().decode())


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def main() -> None:
    """Console entry point."""
    app()
