"""`rapport status` tells the operator what is failing: a calendar whose sync fails and an
account that needs re-consent, each with the reason and since when (issue 11, item 9)."""

from __future__ import annotations

import json

from .conftest import Harness
from .test_cli import _env, rapport

# The keys `rapport status --json` documents (README), in order.
STATUS_KEYS = ["healthy", "failing_calendars", "accounts_needing_consent",
               "failed_agenda_writes", "throttled_accounts"]
CALENDAR_KEYS = ["calendar_id", "address", "provider", "reason", "failed_at", "last_sync_at",
                 "next_try"]
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
    # a failing calendar backs off: the operator sees when it is tried again
    assert calendar["next_try"] and calendar["next_try"] > calendar["failed_at"]
    assert "next try 20" in calendar_line
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


def test_status_shows_a_throttled_account_and_until_when_without_calling_it_a_failure(
        harness: Harness) -> None:
    harness.connect("sam@acme.test")
    harness.google.inject_throttle(1000, retry_after=900)  # 429, Retry-After: 15 minutes
    env = _env(harness.settings.data_dir, harness)
    rapport("sync", "--once", env=env)

    shown = rapport("status", env=env)
    report = json.loads(rapport("status", "--json", env=env).stdout)

    assert shown.returncode == 0, shown.stdout  # it resumes by itself: nothing to repair
    [line] = [line for line in shown.stdout.splitlines() if "sam@acme.test" in line]
    assert "no call before 20" in line and "429" in line
    [account] = report["throttled_accounts"]
    assert list(account) == ["account_id", "email", "provider", "reason", "until"]
    assert account["email"] == "sam@acme.test" and account["provider"] == "google"
    assert report["healthy"] is True and report["failing_calendars"] == []
