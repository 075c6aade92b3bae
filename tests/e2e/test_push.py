"""Push notifications: channels open where a public URL exists, notifications trigger a sync,
forged ones are refused."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus
from service.accounts.service import set_accounts_status
from service.calendars.models import Calendar
from service.calendars.push import RENEW_BEFORE
from service.pairs.models import Occurrence, OccurrenceStatus
from workers import actors

from .conftest import CASES, Harness, ProviderCase

GRAPH = CASES["microsoft"]


def _notify(harness: Harness, case: ProviderCase) -> None:
    if case.provider == "google":
        harness.google.notify(case.manager)
    else:
        harness.graph.notify(case.manager)


def test_a_notification_triggers_the_sync_that_sees_the_change(
        harness: Harness, case: ProviderCase, public_url: str) -> None:
    harness.connect(case.manager)
    harness.sync()
    actors.reconcile.send()
    harness.run()
    with harness.session() as session:
        calendars = session.scalars(select(Calendar)).all()
        assert calendars and all(c.subscription_id for c in calendars)
    sandbox = harness.sandbox(case.provider)
    start = next(s for s in sandbox.occurrence_starts(case.series_key,
                                                      until=harness.clock() + timedelta(days=30))
                 if s > harness.clock() + timedelta(days=8))
    sandbox.cancel_occurrence(case.series_key, start)
    _notify(harness, case)
    harness.run()
    with harness.session() as session:
        status = session.scalar(select(Occurrence.status).where(Occurrence.original_start == start))
    assert status == OccurrenceStatus.CANCELLED


def test_a_notification_with_a_wrong_token_is_refused_and_syncs_nothing(
        harness: Harness, public_url: str) -> None:
    harness.connect("maya@acme.test")
    harness.sync()
    actors.reconcile.send()
    harness.run()
    with harness.session() as session:
        channel = session.scalars(select(Calendar.subscription_id)).first()
    before = harness.provider_calls()
    forged = httpx.post(f"{public_url}/webhooks/google", headers={
        "X-Goog-Channel-ID": str(channel), "X-Goog-Channel-Token": "guessed",
        "X-Goog-Resource-State": "exists"})
    graph = httpx.post(f"{public_url}/webhooks/microsoft", json={"value": [
        {"subscriptionId": "nope", "clientState": "guessed"}]})
    harness.run()
    assert (forged.status_code, graph.status_code) == (403, 403)
    assert harness.provider_calls() == before


def test_graph_validation_handshake_echoes_the_token(harness: Harness, public_url: str) -> None:
    reply = httpx.post(f"{public_url}/webhooks/microsoft", params={"validationToken": "abc 123"})
    assert reply.status_code == 200 and reply.text == "abc 123"
    assert reply.headers["content-type"].startswith("text/plain")


def _open_channels(harness: Harness, email: str) -> None:
    harness.connect(email)
    harness.sync()
    actors.reconcile.send()
    harness.run()


def _graph_channel(harness: Harness) -> str:
    with harness.session() as session:
        channel = session.scalars(select(Calendar.subscription_id)).one()
    assert channel is not None
    return channel


def _next_week_start(harness: Harness, case: ProviderCase) -> object:
    sandbox = harness.sandbox(case.provider)
    return next(s for s in sandbox.occurrence_starts(case.series_key,
                                                     until=harness.clock() + timedelta(days=30))
                if s > harness.clock() + timedelta(days=8))


def test_graph_subscriptions_carry_a_validated_lifecycle_url(
        harness: Harness, public_url: str) -> None:
    _open_channels(harness, GRAPH.manager)
    sub = harness.graph.state.subscriptions[_graph_channel(harness)]
    assert sub.lifecycle_url == f"{public_url}/webhooks/microsoft/lifecycle"
    reply = httpx.post(sub.lifecycle_url, params={"validationToken": "life 1"})
    assert reply.status_code == 200 and reply.text == "life 1"


@pytest.mark.parametrize("event", ["reauthorizationRequired", "subscriptionRemoved"])
def test_a_lifecycle_event_that_ends_the_subscription_opens_a_fresh_one(
        harness: Harness, public_url: str, event: str) -> None:
    _open_channels(harness, GRAPH.manager)
    old = _graph_channel(harness)
    assert harness.graph.lifecycle(GRAPH.manager, event) == 1
    harness.run()
    new = _graph_channel(harness)
    assert new != old
    assert set(harness.graph.state.subscriptions) == {new}  # the old one closed or gone
    start = _next_week_start(harness, GRAPH)
    harness.sandbox("microsoft").cancel_occurrence(GRAPH.series_key, start)
    assert harness.graph.notify(GRAPH.manager) == 1  # the fresh one delivers changes
    harness.run()
    with harness.session() as session:
        status = session.scalar(select(Occurrence.status).where(Occurrence.original_start == start))
    assert status == OccurrenceStatus.CANCELLED


def test_a_missed_lifecycle_event_syncs_the_calendar_now(
        harness: Harness, public_url: str) -> None:
    _open_channels(harness, GRAPH.manager)
    channel = _graph_channel(harness)
    start = _next_week_start(harness, GRAPH)
    harness.sandbox("microsoft").cancel_occurrence(GRAPH.series_key, start)  # no notification
    assert harness.graph.lifecycle(GRAPH.manager, "missed") == 1
    harness.run()
    with harness.session() as session:
        status = session.scalar(select(Occurrence.status).where(Occurrence.original_start == start))
    assert status == OccurrenceStatus.CANCELLED
    assert _graph_channel(harness) == channel  # the subscription itself is fine


def test_a_lifecycle_event_with_a_wrong_client_state_is_refused(
        harness: Harness, public_url: str) -> None:
    _open_channels(harness, GRAPH.manager)
    channel = _graph_channel(harness)
    before = harness.provider_calls()
    reply = httpx.post(f"{public_url}/webhooks/microsoft/lifecycle", json={"value": [
        {"subscriptionId": channel, "clientState": "guessed",
         "lifecycleEvent": "subscriptionRemoved"}]})
    harness.run()
    assert reply.status_code == 403
    assert harness.provider_calls() == before and _graph_channel(harness) == channel


def _sandbox_channels(harness: Harness, case: ProviderCase) -> int:
    if case.provider == "google":
        return len(harness.google.channels())
    return len(harness.graph.state.subscriptions)


def test_a_leavers_channel_is_stopped_and_never_renewed(
        harness: Harness, case: ProviderCase, public_url: str) -> None:
    _open_channels(harness, case.manager)
    assert _sandbox_channels(harness, case) == 1
    with harness.runtime.factory.begin() as session:  # what directory sync does to a leaver
        person_id = session.scalars(select(Account.person_id)).one()
        set_accounts_status(session, person_id=person_id, status=AccountStatus.DISABLED,
                            reason="left")
    actors.reconcile.send()
    harness.run()
    assert _sandbox_channels(harness, case) == 0
    with harness.session() as session:
        calendars = session.scalars(select(Calendar)).all()
    assert calendars and all(c.subscription_id is None and c.subscription_expires_at is None
                             and c.subscription_token_encrypted is None for c in calendars)
    before = harness.provider_calls()
    actors.reconcile.send()  # no channel to renew for a disabled account, nothing to stop
    harness.run()
    assert harness.provider_calls() == before and _sandbox_channels(harness, case) == 0


def test_a_channel_is_renewed_before_it_expires_and_polling_falls_back_to_hours(
        harness: Harness, case: ProviderCase, public_url: str) -> None:
    _open_channels(harness, case.manager)
    with harness.runtime.factory.begin() as session:  # the channel is now close to its end
        calendar = session.scalars(select(Calendar)).one()
        old = calendar.subscription_id
        calendar.subscription_expires_at = harness.clock() + RENEW_BEFORE - timedelta(hours=1)
    actors.reconcile.send()
    harness.run()
    with harness.session() as session:
        calendar = session.scalars(select(Calendar)).one()
        assert calendar.subscription_id not in (None, old)
        assert calendar.subscription_expires_at > harness.clock() + RENEW_BEFORE
        fresh = calendar.subscription_id
    open_ids = ({c["id"] for c in harness.google.channels()} if case.provider == "google"
                else set(harness.graph.state.subscriptions))
    assert open_ids == {fresh}  # the old channel was closed

    before = harness.provider_calls()
    harness.clock.now += timedelta(seconds=harness.settings.poll_interval_seconds + 1)
    actors.reconcile.send()  # the live channel says when to sync: no poll at the poll pace
    harness.run()
    assert harness.provider_calls() == before
    harness.clock.now += timedelta(seconds=harness.settings.push_poll_fallback_seconds)
    actors.reconcile.send()  # no notification came for hours: the fallback poll reads it
    harness.run()
    assert harness.provider_calls() > before
    with harness.session() as session:
        assert session.scalars(select(Calendar.subscription_id)).one() == fresh


def test_a_lifecycle_item_on_the_change_url_is_acted_on_too(
        harness: Harness, public_url: str) -> None:
    _open_channels(harness, GRAPH.manager)
    with harness.session() as session:
        calendar = session.scalars(select(Calendar)).one()
        old, sealed = calendar.subscription_id, calendar.subscription_token_encrypted
    assert old and sealed
    state = Vault.from_settings(harness.settings).decrypt(sealed)
    reply = httpx.post(f"{public_url}/webhooks/microsoft", json={"value": [
        {"subscriptionId": old, "clientState": state,
         "lifecycleEvent": "reauthorizationRequired"}]})
    harness.run()
    assert reply.status_code == 202
    assert _graph_channel(harness) != old
    assert set(harness.graph.state.subscriptions) == {_graph_channel(harness)}
