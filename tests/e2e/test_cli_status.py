"""`rapport status` tells the operator what is failing: a calendar whose sync fails and an
account that needs re-consent, each with the reason and since when (issue 11, item 9)."""

from __future__ import annotations

import json

from .conftest import Harness
from .test_cli import _env, rapport

# The keys `rapport status --json` documents (README), in order.
STATUS_KEYS = ["healthy", "failing_calendars", "accounts_needing_consent",
               "failed_agenda_writes"]
CALENDAR_KEYS = ["calendar_id", "address", "provider", "reason", "failed_at", "last_sync_at"]
ACCOUNT_KEYS = ["account_id", "email", "provider", "reason", "since"]


def test_status_lists_a_failing_calendar_and_a_revoked_account_with_reason_and_since(
        harness: Harness) -> None:
    for email in ("maya@acme.test", "sam@acme.test", "dana@acme.test"):
        harness.connect(email)
    harness.google.fail_listing("maya@acme.test", status=500)
    harness.graph.revoke("dana@acme.test")
    env = _env(harness.settings.data_dir, harness)
    synced = rapport("sync", "--once", env=env)
    assert synced.returncode != 0  # the failures are real: sync says so too

    shown = rapport("status", env=env)
    as_json = rapport("status", "--json", env=env)

    assert shown.returncode == 1 and as_json.returncode == 1
    assert "Traceback" not in shown.stdout + shown.stderr + as_json.stderr
    text = shown.stdout
    [calendar_line] = [line for line in text.splitlines() if "maya@acme.test" in line]
    assert "failing since 20" in calendar_line and "500" in calendar_line
    [account_line] = [line for line in text.splitlines() if "dana@acme.test" in line]
    assert "since 20" in account_line and "rapport connect microsoft" in account_line
    assert "sam@acme.test" not in text  # healthy calendars are not listed

    report = json.loads(as_json.stdout)
    assert list(report) == STATUS_KEYS and report["healthy"] is False
    [calendar] = report["failing_calendars"]
    assert list(calendar) == CALENDAR_KEYS
    assert calendar["address"] == "maya@acme.test" and calendar["provider"] == "google"
    assert calendar["failed_at"] and calendar["last_sync_at"] is None
    [account] = report["accounts_needing_consent"]
    assert list(account) == ACCOUNT_KEYS
    assert account["email"] == "dana@acme.test" and account["since"]
    assert "re-consent" in account["reason"]
    assert report["failed_agenda_writes"] == []


def test_status_says_all_is_well_and_exits_zero_when_nothing_fails(harness: Harness) -> None:
    harness.connect("sam@acme.test")
    harness.sync()

    shown = rapport("status", env=_env(harness.settings.data_dir, harness))

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("All well")
