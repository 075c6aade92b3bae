"""The Google sandbox answers with the documented HTTP shapes (what the real client relies on)."""

from __future__ import annotations

import httpx

from sandbox.google import GoogleSandbox
from sandbox.team import person

MAYA = "maya@acme.test"


def bearer(sandbox: GoogleSandbox, email: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "refresh_token": person(email).refresh_token}
    token = httpx.post(sandbox.token_url, data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_expired_sync_token_answers_410_full_sync_required(
    google_sandbox: GoogleSandbox,
) -> None:
    url = f"{google_sandbox.base_url}calendars/{MAYA}/events"
    headers = bearer(google_sandbox, MAYA)
    token = httpx.get(url, headers=headers, params={"maxResults": 2500}).json()["nextSyncToken"]
    google_sandbox.expire_cursors()

    answer = httpx.get(url, headers=headers, params={"syncToken": token})

    assert answer.status_code == 410
    error = answer.json()["error"]
    assert error["code"] == 410 and error["errors"][0]["reason"] == "fullSyncRequired"


def test_a_sync_token_with_time_min_is_a_bad_request(google_sandbox: GoogleSandbox) -> None:
    url = f"{google_sandbox.base_url}calendars/{MAYA}/events"
    headers = bearer(google_sandbox, MAYA)
    token = httpx.get(url, headers=headers, params={"maxResults": 2500}).json()["nextSyncToken"]

    answer = httpx.get(
        url, headers=headers, params={"syncToken": token, "timeMin": "2025-01-01T00:00:00Z"}
    )

    assert answer.status_code == 400


def test_an_unknown_refresh_token_is_an_invalid_grant(google_sandbox: GoogleSandbox) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "made-up"}

    answer = httpx.post(google_sandbox.token_url, data=form)

    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


def test_another_persons_calendar_is_not_found(google_sandbox: GoogleSandbox) -> None:
    url = f"{google_sandbox.base_url}calendars/sam@acme.test/events"

    assert httpx.get(url, headers=bearer(google_sandbox, MAYA)).status_code == 404
