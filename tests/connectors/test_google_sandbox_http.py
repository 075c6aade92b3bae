"""The Google sandbox answers with the documented HTTP shapes (what the real client relies on)."""

from __future__ import annotations

import json
import threading

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


def test_edge_faults_slow_refuse_and_truncate_then_heal(google_sandbox: GoogleSandbox) -> None:
    """What the process-level fault suite relies on: a slowed listing is counted in flight,
    an injected write failure answers Google's 410 ``deleted``, a truncated listing is not
    JSON; healed, each answers normally again."""
    url = f"{google_sandbox.base_url}calendars/{MAYA}/events"
    headers = bearer(google_sandbox, MAYA)
    items = httpx.get(url, headers=headers, params={"maxResults": 2500}).json()["items"]
    event_url = f"{url}/{items[0]['id']}"

    google_sandbox.slow_down("list", 0.5)
    slow = threading.Thread(target=lambda: httpx.get(url, headers=headers, timeout=10))
    slow.start()
    seen = 0
    while slow.is_alive() and not seen:
        seen = google_sandbox.serving("list", MAYA)
    slow.join()
    google_sandbox.slow_down("list", None)
    google_sandbox.fail_writes(MAYA, status=410)
    refused = httpx.patch(event_url, headers=headers, json={"description": "x"})
    google_sandbox.truncate_listing(MAYA)
    cut = httpx.get(url, headers=headers)

    assert seen == 1 and google_sandbox.serving("list") == 0
    assert refused.status_code == 410
    assert refused.json()["error"]["errors"][0]["reason"] == "deleted"
    assert cut.status_code == 200
    try:
        json.loads(cut.content)
        parsed = True
    except ValueError:
        parsed = False
    assert not parsed
    google_sandbox.fail_writes(MAYA, status=None)
    google_sandbox.truncate_listing(MAYA, truncated=False)
    assert httpx.patch(event_url, headers=headers, json={"description": "x"}).status_code == 200
    assert "items" in httpx.get(url, headers=headers).json()


def test_a_latency_on_every_request_holds_listings_in_flight_together(
    google_sandbox: GoogleSandbox,
) -> None:
    """bench_scaleout's remote-provider model: kind "any" delays requests no kind delay
    covers (a listing here), and the wait does not block the server, so two listings are in
    flight at once; healed, none is."""
    url = f"{google_sandbox.base_url}calendars/{MAYA}/events"
    headers = bearer(google_sandbox, MAYA)
    google_sandbox.slow_down("any", 1.0)
    slow = [threading.Thread(target=lambda: httpx.get(url, headers=headers, timeout=10))
            for _ in range(2)]
    for thread in slow:
        thread.start()
    seen = 0
    while any(t.is_alive() for t in slow) and seen < 2:
        seen = max(seen, google_sandbox.serving("list", MAYA))
    for thread in slow:
        thread.join()
    google_sandbox.slow_down("any", None)

    assert seen == 2 and google_sandbox.serving("list") == 0
