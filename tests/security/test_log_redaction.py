"""No cursor and no calendar address reaches a log record, at DEBUG, from the provider
client libraries or a 5xx traceback: a real sync against both sandboxes with every library
logger opened up, and every record read back (message, arguments, exception text, JSON)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.accounts.models import Account
from service.calendars.models import Calendar
from service.logging_setup import configure_logging, redact
from tests.e2e.conftest import Harness, harness  # noqa: F401

LIBRARY_LOGGERS = ("googleapiclient", "googleapiclient.discovery", "googleapiclient.http",
                   "httplib2", "urllib3", "httpx", "httpcore", "msal")
PEOPLE = ("maya@acme.test", "sam@acme.test", "dana@acme.test", "lee@acme.test")


def _everything_logged(caplog: pytest.LogCaptureFixture, running: Harness) -> list[str]:
    """Every way a record can be read: raw message, exception text, both our formatters."""
    configure_logging(running.settings.model_copy(update={"log_json": True}))
    [json_handler] = [h for h in logging.getLogger().handlers if getattr(h, "_rapport", False)]
    texts = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), record.exc_text or "", record.stack_info or "",
                  json_handler.format(record)]
    return texts


def test_a_debug_sync_logs_no_cursor_and_no_calendar_address(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    harness.runtime.settings = harness.settings.model_copy(update={"log_level": "DEBUG"})
    configure_logging(harness.settings)
    caplog.set_level(logging.DEBUG)
    for name in LIBRARY_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    for email in PEOPLE:
        harness.connect(email)
    harness.sync()  # full syncs: the providers hand out cursors
    harness.clock.now += timedelta(minutes=10)
    harness.sync()  # incremental: the cursors travel in request URLs
    with harness.session() as session:
        calendars = session.scalars(select(Calendar)).all()
        providers = dict(session.execute(select(Calendar.id, Account.provider)
                                         .join(Account, Account.id == Calendar.account_id)).all())
        cursors = [c.cursor for c in calendars if c.cursor]
        addresses = {a for c in calendars for a in (c.provider_calendar_id, c.owner_email)
                     if a and "@" in a}
    for calendar in calendars:  # a 5xx on the incremental list, its traceback at ERROR
        sandbox = harness.sandbox(providers[calendar.id])
        owner = calendar.owner_email or calendar.provider_calendar_id
        sandbox.fail_listing(owner, status=503)
        connector = harness.runtime.connectors.for_calendar(calendar.id)
        try:
            for _page in connector.list_changes(
                    calendar.provider_calendar_id, calendar.cursor,
                    window_start=harness.clock.now - timedelta(days=7),
                    window_end=harness.clock.now + timedelta(days=7)):
                pass
        except Exception:
            logging.getLogger("tests.security").exception("listing %s failed",
                                                          calendar.provider_calendar_id)
        finally:
            sandbox.fail_listing(owner, status=None)
    assert len(cursors) == len(calendars) >= 4 and addresses
    failures = [r for r in caplog.records if r.name == "tests.security"]
    assert len(failures) == len(calendars) and all(r.exc_text for r in failures)
    assert any("syncToken=" in r.getMessage() or "deltatoken" in r.getMessage().lower()
               for r in caplog.records), "the library loggers were not heard"
    secrets = [*cursors, *(c.split("token=")[-1] for c in cursors if "token=" in c)]
    secrets += [a.replace("@", "%40") for a in addresses]
    leaks = [(secret, text[:200]) for text in _everything_logged(caplog, harness)
             for secret in secrets if secret in text]
    assert leaks == []
    in_urls = [t for t in _everything_logged(caplog, harness)
               for a in addresses if f"/{a}" in t or f"='{a}" in t]
    assert in_urls == []


def test_redaction_keeps_our_own_lines_readable() -> None:
    line = "sync_calendar for calendar 3 (maya@example.com) failed, will retry"
    assert redact(line) == line
    assert redact("GET https://x/users/maya@example.com/events?$skiptoken=abc&top=5") == \
        "GET https://x/users/***@example.com/events?$skiptoken=***&top=5"
