"""Shared CLI plumbing: settings, runtime, broker, logging, and errors as clear messages."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import dramatiq
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from connectors.errors import AuthRevoked, ConnectorError
from service.accounts.crypto import SecretKeyError
from service.agenda.models import AgendaRecord
from service.calendars.models import ProviderCallLog
from service.calendars.onboarding import CredentialsFileError
from service.logging_setup import configure_logging
from service.settings import Settings
from service.tls import CABundleMissing
from workers.broker import create_broker, install_broker
from workers.runtime import ConnectorFactory, Runtime, build_runtime, install

log = logging.getLogger("rapport")

EXIT_FAILED = 1
EXIT_CONFIG = 3
EXIT_AUTH = 4
EXIT_WORK_LEFT = 5  # finished, but some work failed and is left due for the worker


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value is a clear message and exit code 3."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        fail(f"invalid configuration: {configuration_problems(err)}", EXIT_CONFIG)
    except SettingsError as err:  # a value pydantic-settings could not even decode
        fail(f"invalid configuration: {_one_line(str(err))}", EXIT_CONFIG)
    configure_logging(settings)
    return settings


def configuration_problems(err: ValidationError) -> str:
    """One line naming each bad variable and what is wrong, never the value (it may be secret)."""
    problems: dict[str, str] = {}
    for error in err.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        problems.setdefault(f"RAPPORT_{field.upper()}", _one_line(message))
    return "; ".join(f"{name}: {message}" for name, message in problems.items())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, code: int = EXIT_FAILED) -> None:
    """Print an error for people (no traceback) and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn the errors people can act on into one line and an exit code."""
    try:
        yield
    except (SecretKeyError, CredentialsFileError, CABundleMissing) as err:
        fail(str(err), EXIT_CONFIG)
    except AuthRevoked as err:
        fail(f"the provider refused the credentials: {err}", EXIT_AUTH)
    except ConnectorError as err:
        fail(f"the calendar provider could not be reached or refused: {err}")
    except OperationalError as err:
        fail(f"the database cannot be used: {err.orig.__class__.__name__}: "
             f"{str(err.orig).splitlines()[0]}", EXIT_CONFIG)


@dataclass
class Started:
    """A runtime with its broker installed."""

    runtime: Runtime
    broker: dramatiq.Broker


def start(settings: Settings, connectors: ConnectorFactory | None = None,
          clock: Callable[[], datetime] | None = None) -> Started:
    """Migrate the database, install the runtime and the broker for this process."""
    runtime = build_runtime(settings, connectors)
    if clock is not None:
        runtime.clock = clock
    install(runtime)
    broker = install_broker(create_broker(settings))
    return Started(runtime, broker)


@dataclass(frozen=True)
class WorkCounts:
    """Provider calls and agenda writes since a moment: what `sync --once` reports."""

    provider_calls: int
    writes: int
    agendas_written: int


def counts_since(runtime: Runtime, since: datetime) -> WorkCounts:
    """Count provider calls, write calls and agendas written since `since`."""
    with runtime.factory() as session:
        calls = session.scalar(select(func.count()).select_from(ProviderCallLog)
                               .where(ProviderCallLog.at >= since)) or 0
        writes = session.scalar(select(func.count()).select_from(ProviderCallLog)
                                .where(ProviderCallLog.at >= since,
                                       ProviderCallLog.operation.in_(WRITE_OPERATIONS))) or 0
        agendas = session.scalar(select(func.count()).select_from(AgendaRecord)
                                 .where(AgendaRecord.written_at >= since)) or 0
    return WorkCounts(calls, writes, agendas)


WRITE_OPERATIONS = ("events.patch",)  # the only write both connectors make


def echo_err(message: str) -> None:
    """Progress for people on stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)
