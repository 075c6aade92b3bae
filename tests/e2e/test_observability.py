"""What operators see of `rapport run`: one log line per failure, /healthz and /metrics.

The web app is served by uvicorn on a free port, as `rapport run` serves it; the provider
is made unreachable by pointing Rapport at a port nobody listens on.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dramatiq
import httpx
import pytest
import uvicorn
from dramatiq.brokers.redis import RedisBroker
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from application.web.app import create_app
from application.web.server import serve_in_thread
from service.accounts.models import Account, AccountStatus
from service.calendars.connectors import AccountConnectors
from service.calendars.models import Calendar
from service.db import make_engine, session_factory
from service.email.outbox import enqueue
from service.email.render import RenderedEmail
from workers import actors
from workers.observability import broker_reachable
from workers.runtime import Runtime

from .conftest import Harness, ProviderCase
from .helpers import connect_pair

LIST_OPERATIONS = {"google": "events.list", "microsoft": "calendarView.delta"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(runtime: Runtime) -> Iterator[str]:
    """`rapport run`'s HTTP side on a free port; yields its base URL."""
    port = _free_port()
    served = replace(runtime, settings=runtime.settings.model_copy(
        update={"http_host": "127.0.0.1", "http_port": port}))
    server = serve_in_thread(served)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True


@contextmanager
def _uvicorn(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free port for the block; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def web(harness: Harness) -> Iterator[str]:
    yield from _serve(harness.runtime)


def _make_unreachable(harness: Harness, case: ProviderCase) -> None:
    """The provider's API stops answering (its sign-in still works)."""
    field = "google_api_url" if case.provider == "google" else "graph_api_url"
    parts = urlsplit(getattr(harness.settings, field))
    dead = urlunsplit(parts._replace(netloc=f"127.0.0.1:{_free_port()}"))
    settings = harness.settings.model_copy(update={field: dead})
    harness.runtime.settings = settings
    harness.runtime.connectors = AccountConnectors(settings, harness.runtime.factory)


def _manager_calendar(harness: Harness, case: ProviderCase) -> Calendar:
    with harness.session() as session:
        calendar = session.scalars(select(Calendar).join(Account).where(
            Account.email == case.manager)).one()
        session.expunge(calendar)
        return calendar


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return sum(value for (sample, have), value in samples.items()
               if sample == name and set(labels.items()) <= set(have))


def test_an_unreachable_provider_is_one_line_per_failure_with_the_calendar_and_reason(
        harness: Harness, case: ProviderCase, caplog: pytest.LogCaptureFixture) -> None:
    harness.connect(case.manager)
    harness.sync()
    calendar = _manager_calendar(harness, case)
    _make_unreachable(harness, case)
    caplog.clear()
    caplog.set_level(logging.INFO)

    actors.sync_calendar.send_with_options(args=(calendar.id,), max_retries=1,
                                           min_backoff=10, max_backoff=20)
    harness.run()

    # (the connector's own retry lines inside one attempt belong to the client, not here)
    failures = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and not r.name.startswith("connectors.")]
    # one line: the connector retried already, and the calendar's backoff (not dramatiq's
    # retries) says when it is tried again (issue 11, item 8)
    assert len(failures) == 1, failures
    line = failures[0]
    assert f"calendar {calendar.id} ({calendar.owner_email})" in line
    assert "Transient" in line and "connect" in line.lower()  # refused connection
    assert "tried again after its backoff" in line
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("dramatiq.middleware.retries")]


def test_a_bug_still_logs_its_traceback(harness: Harness,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    def broken_actor() -> None:
        raise ZeroDivisionError("a bug, not the provider")

    actor = dramatiq.actor(broker=harness.broker, max_retries=0)(broken_actor)
    actor.send()
    harness.run()

    bugs = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert [r.exc_info[1].__class__ for r in bugs if r.exc_info] == [ZeroDivisionError]


def test_healthz_counts_failing_calendars_and_accounts_needing_reconsent(
        harness: Harness, case: ProviderCase, web: str) -> None:
    connect_pair(harness, case)
    harness.sync()
    health = httpx.get(f"{web}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "broker": "ok",
                             "calendars_failing": 0, "accounts_needing_reconsent": 0}

    harness.sandbox(case.provider).revoke(case.report)
    harness.sync()  # the report's account is flagged for re-consent
    failing = _manager_calendar(harness, case)
    with harness.runtime.factory.begin() as session:  # what the sync records on a failure
        session.execute(update(Calendar).where(Calendar.id == failing.id)
                        .values(last_error="Transient: events.list answered HTTP 500"))

    body = httpx.get(f"{web}/healthz").json()
    assert body["calendars_failing"] == 1
    assert body["accounts_needing_reconsent"] == 1
    with harness.session() as session:
        assert session.scalars(select(Account.status).where(
            Account.email == case.report)).one() == AccountStatus.NEEDS_RECONSENT


def test_healthz_is_503_when_the_broker_or_the_database_cannot_be_reached(
        harness: Harness, tmp_path: Path) -> None:
    dead_broker = RedisBroker(url=f"redis://127.0.0.1:{_free_port()}/0", middleware=[])
    without_broker = create_app(harness.settings, harness.runtime.factory,
                                broker_reachable=lambda: broker_reachable(dead_broker))
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'rapport.db'}")
    without_database = create_app(harness.settings, session_factory(engine))

    for app, down in ((without_broker, "broker"), (without_database, "database")):
        with _uvicorn(app) as url:
            health = httpx.get(f"{url}/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()[down] == "unreachable"
    engine.dispose()


def test_metrics_count_syncs_provider_calls_writes_emails_and_queue_depth(
        harness: Harness, case: ProviderCase, web: str) -> None:
    before = _samples(httpx.get(f"{web}/metrics").text)
    connect_pair(harness, case)
    harness.sync()
    with harness.runtime.factory.begin() as session:
        outbox_id = enqueue(session, kind="test", dedupe_key=f"metrics-{case.provider}",
                            recipient=case.manager,
                            rendered=RenderedEmail(subject="Hello", text="Hello",
                                                   html="<p>Hello</p>")).id
    actors.deliver_email.send(outbox_id)
    harness.run()
    actors.reconcile.send()  # queued, no worker running: the queue is one deep

    page = httpx.get(f"{web}/metrics")
    after = _samples(page.text)

    assert page.headers["content-type"].startswith("text/plain")
    grew = {name: _total(after, name, **labels) - _total(before, name, **labels)
            for name, labels in [("rapport_syncs_total", {"result": "ok"}),
                                 ("rapport_provider_calls_total",
                                  {"operation": LIST_OPERATIONS[case.provider],
                                   "status": "200"}),
                                 ("rapport_agenda_writes_total", {}),
                                 ("rapport_emails_total", {"result": "sent"})]}
    assert all(v > 0 for v in grew.values()), grew
    assert _total(after, "rapport_queue_depth", queue="default") == 1
    assert {f.name for f in text_string_to_metric_families(page.text)} >= {
        "rapport_syncs", "rapport_provider_calls", "rapport_emails", "rapport_agenda_writes",
        "rapport_queue_depth"}
