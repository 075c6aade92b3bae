"""A malformed event answered to an agenda write is logged with its id once and not retried."""

from __future__ import annotations

import logging
from urllib.parse import unquote

import pytest

from workers import actors

from .conftest import Harness, ProviderCase
from .helpers import add_topic, agenda_for_next, calls, connect_pair


@pytest.mark.parametrize("broken_on", ["patch", "get_event"])
def test_a_malformed_event_on_write_is_logged_with_its_id_and_not_retried(
        harness: Harness, case: ProviderCase, caplog: pytest.LogCaptureFixture,
        broken_on: str) -> None:
    connect_pair(harness, case)
    harness.sync()
    agenda_id, start = agenda_for_next(harness, case)
    sandbox = harness.sandbox(case.provider)
    add_topic(harness, case, "How do we split the launch work?")  # the agenda changes: a write
    if broken_on == "get_event":  # a person's edit: the patch meets 412 and we read it again
        sandbox.human_edit_description(case.manager, case.series_key, start, "Maya's notes")
    event_id = sandbox.inject_malformed_reads(case.manager, case.series_key, start)
    sandbox.clear_requests()
    caplog.clear()
    caplog.set_level(logging.INFO)

    actors.write_agenda.send(agenda_id)
    harness.run()

    on_event = [r for r in calls(sandbox).api if unquote(r.path).endswith(f"/events/{event_id}")]
    assert len([r for r in on_event if r.method == "PATCH"]) == 1  # one attempt, no retry
    assert len([r for r in on_event if r.method == "GET"]) == (broken_on == "get_event")
    lines = [r.getMessage() for r in caplog.records
             if r.levelno >= logging.WARNING and event_id in r.getMessage()]
    assert len(lines) == 1, lines  # one line for the failure (the 412 re-read is INFO)
    assert "MalformedEvent" in lines[0] and "not retried" in lines[0]
    assert f"agenda {agenda_id}" in lines[0]
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text
