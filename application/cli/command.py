"""What every `rapport` command gets from the top-level callback: one context, no scaffolding.

The callback checks the settings once, when the process starts (a bad value is one line and
exit 3 before anything runs); the runtime (migrated database, broker, connectors) starts on
first use, so commands that only read settings never touch the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import typer
from sqlalchemy.orm import Session

from application.context import Started, fail, friendly_errors, start
from service.agenda.items import ItemError
from service.pairs.service import OverrideRefused, PairNotFound, SeriesNotFound
from service.settings import Settings

# Refusals a person can act on: one line, exit 1, nothing written.
REFUSALS: tuple[type[Exception], ...] = (ItemError, PairNotFound, SeriesNotFound,
                                         OverrideRefused)


class Cli:
    """The checked settings and, on first use, the started runtime of this `rapport` process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def started(self) -> Started:
        """The runtime and broker, started once for this process."""
        with friendly_errors():
            return start(self.settings)

    def close(self) -> None:
        """Close the database connections at the end of the command (SQLite then folds its
        write-ahead log into the database file, so a copy of the file is complete)."""
        if "started" in self.__dict__:
            self.started.runtime.engine.dispose()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A database session (a transaction committed at the end with `write`); the errors
        people can act on become one line and an exit code."""
        with friendly_errors():
            factory = self.started.runtime.factory
            try:
                with factory.begin() if write else factory() as session:
                    yield session
            except REFUSALS as err:
                fail(str(err))


def cli_of(ctx: typer.Context) -> Cli:
    """The context the `rapport` callback put on the click context."""
    obj = ctx.find_object(Cli)
    if obj is None:  # a sub-app invoked on its own (tests); the top callback did not run
        raise RuntimeError("run commands through the `rapport` app")
    return obj
