"""Thin dramatiq actors: they take ids, call service functions and map errors to dramatiq.

Rate limited → `Retry(delay=Retry-After)`; auth revoked → the account is flagged and the
message is done (no retry storm); anything else transient → dramatiq's backoff. Every actor
is idempotent, so a redelivered or duplicated message changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import or_, select

from connectors.errors import (
    AuthRevoked,
    BadRequest,
    Forbidden,
    MalformedEvent,
    NotFound,
    RateLimited,
)
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus
from service.accounts.service import mark_needs_reconsent
from service.agenda.planner import plan_due_agendas
from service.agenda.writer import write_agenda as write_agenda_into_invite
from service.agenda.writer import writing_account
from service.calendars.calls import CallRecorder
from service.calendars.models import Calendar
from service.calendars.push import calendars_needing_channels
from service.calendars.push import renew_channel as open_channel
from service.calendars.service import save_calendars
from service.email.models import OutboxMessage
from service.email.outbox import deliver as deliver_outbox
from service.email.outbox import due_messages
from service.email.transport import transport_from_settings
from service.outcomes import service as outcomes
from service.people.models import Person
from service.sync.calendar_sync import sync_calendar as sync_one_calendar
from workers.runtime import current

log = logging.getLogger(__name__)

# Actors are declared on a placeholder and bound to the real broker by `install_broker`.
_PLACEHOLDER = StubBroker()


class AccountUnavailable(Exception):
    """The account cannot be used now (needs re-consent); the message is dropped."""


class Refused(Exception):
    """The provider refused for good (403, 404, 400): retrying would not help."""


@contextmanager
def provider_errors(account_id: int | None) -> Iterator[None]:
    """Map connector errors onto dramatiq control flow for one message.

    A refusal or a malformed event ends the message without retry (`Refused` is in every
    provider actor's `throws`); `workers.observability.FailureLog` logs it in one line with
    the calendar and the reason (for a malformed event, its id), so nothing is logged here.
    """
    try:
        yield
    except RateLimited as err:
        delay_ms = int(max(err.retry_after or 30.0, 1.0) * 1000)
        log.info("account %s throttled; retrying in %d ms", account_id, delay_ms)
        raise dramatiq.Retry(str(err), delay=delay_ms) from err
    except AuthRevoked as err:
        if account_id is not None:
            with current().factory.begin() as session:
                mark_needs_reconsent(session, account_id=account_id, reason=str(err))
        raise AccountUnavailable(str(err)) from err
    except (Forbidden, NotFound, BadRequest) as err:
        raise Refused(f"account {account_id}: provider refused: {err}") from err
    except MalformedEvent as err:  # the same broken event again on a retry: abandon the write
        raise Refused(f"event {err.event_id} is malformed; skipped: {err}") from err


def _active_account_of(calendar_id: int) -> int | None:
    """The account that owns the calendar, when both exist and the account is active."""
    with current().factory() as session:
        calendar = session.get(Calendar, calendar_id)
        account = session.get(Account, calendar.account_id) if calendar else None
        if account is None or account.status != AccountStatus.ACTIVE:
            return None
        return account.id


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="sync", throws=(AccountUnavailable, Refused))
def sync_account(account_id: int) -> None:
    """Discover the account's calendars (first time, or while its owner's zone is unknown)
    and sync each one."""
    rt = current()
    with rt.factory() as session:
        account = session.get(Account, account_id)
        if account is None or account.status != AccountStatus.ACTIVE:
            return
        calendar_ids = list(session.scalars(select(Calendar.id).where(
            Calendar.account_id == account_id)))
        owner = session.get(Person, account.person_id) if account.person_id else None
        zone_unknown = owner is not None and not owner.time_zone
    if not calendar_ids or zone_unknown:  # first time, or the owner's zone is still unknown
        recorder = CallRecorder(account_id)
        with provider_errors(account_id):
            infos = rt.connectors.for_account(account_id, recorder).list_calendars()
        with rt.factory.begin() as session:
            account = session.get(Account, account_id)
            assert account is not None
            calendar_ids = [c.id for c in save_calendars(session, account=account,
                                                         calendars=infos)]
            recorder.flush_into(session)
    for calendar_id in calendar_ids:
        sync_calendar.send(calendar_id)


def sync_all_accounts() -> list[int]:
    """Send a sync for every active account; returns their ids."""
    with current().factory() as session:
        ids = list(session.scalars(select(Account.id).where(
            Account.status == AccountStatus.ACTIVE).order_by(Account.id)))
    for account_id in ids:
        sync_account.send(account_id)
    return ids


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="sync", throws=(AccountUnavailable, Refused))
def sync_calendar(calendar_id: int) -> None:
    """Sync one calendar, then plan the agendas it touched and enqueue the writes."""
    rt = current()
    account_id = _active_account_of(calendar_id)
    if account_id is None:
        return
    recorder = CallRecorder(account_id)
    with provider_errors(account_id):
        connector = rt.connectors.for_calendar(calendar_id, recorder)
        outcome = sync_one_calendar(rt.factory, calendar_id=calendar_id, connector=connector,
                                    settings=rt.settings, now=rt.clock(), recorder=recorder)
    if not outcome.ran:
        return
    log.info("calendar %s synced: %d events, %d skipped, full=%s", calendar_id,
             outcome.events, outcome.skipped, outcome.full_sync)
    with rt.factory.begin() as session:
        due = plan_due_agendas(session, settings=rt.settings, now=rt.clock(),
                               series_ids=outcome.series_touched)
    for agenda_id in due:
        write_agenda.send(agenda_id)
    follow_up_drops(outcome.occurrences_changed)


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="agenda", throws=(AccountUnavailable, Refused))
def write_agenda(agenda_id: int) -> None:
    """Write one planned agenda into its invite (no write when it is already there)."""
    rt = current()
    with rt.factory() as session:
        account_id = writing_account(session, agenda_id=agenda_id)
    recorder = CallRecorder(account_id)
    try:
        with provider_errors(account_id):
            write_agenda_into_invite(
                rt.factory, agenda_id=agenda_id,
                connector_for=lambda calendar_id: rt.connectors.for_calendar(calendar_id,
                                                                             recorder),
                settings=rt.settings, now=rt.clock(), request_sync=sync_calendar.send)
    finally:
        with rt.factory.begin() as session:
            recorder.flush_into(session)


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="sync", throws=(AccountUnavailable, Refused))
def renew_channel(calendar_id: int) -> None:
    """Open or renew the push channel of one calendar (only with RAPPORT_PUBLIC_URL)."""
    rt = current()
    account_id = _active_account_of(calendar_id)
    if account_id is None:
        return
    recorder = CallRecorder(account_id)
    with provider_errors(account_id):
        connector = rt.connectors.for_calendar(calendar_id, recorder)
        open_channel(rt.factory, calendar_id=calendar_id, connector=connector,
                     settings=rt.settings, vault=Vault.from_settings(rt.settings),
                     now=rt.clock())
    with rt.factory.begin() as session:
        recorder.flush_into(session)


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="default")
def reconcile() -> None:
    """Enqueue every piece of work the database says is due; a lost message loses nothing."""
    rt = current()
    now = rt.clock()
    poll_before = now - timedelta(seconds=rt.settings.poll_interval_seconds)
    with rt.factory.begin() as session:
        stale = list(session.scalars(
            select(Calendar.id).join(Account, Account.id == Calendar.account_id)
            .where(Account.status == AccountStatus.ACTIVE,
                   or_(Calendar.last_sync_at.is_(None), Calendar.last_sync_at < poll_before,
                       Calendar.sync_requested_at.is_not(None)))))
        accounts_without_calendars = list(session.scalars(
            select(Account.id).where(Account.status == AccountStatus.ACTIVE,
                                     ~Account.id.in_(select(Calendar.account_id)))))
        due = plan_due_agendas(session, settings=rt.settings, now=now)
        channels = (calendars_needing_channels(session, now=now)
                    if rt.settings.public_url else [])
    for calendar_id in channels:
        renew_channel.send(calendar_id)
    for account_id in accounts_without_calendars:
        sync_account.send(account_id)
    for calendar_id in stale:
        sync_calendar.send(calendar_id)
    for agenda_id in due:
        write_agenda.send(agenda_id)
    if stale or due or accounts_without_calendars:
        log.info("reconcile: %d calendars to sync, %d agendas to write, %d new accounts",
                 len(stale), len(due), len(accounts_without_calendars))
    reconcile_outcomes()
    reconcile_digests()


# -- cancellations: grace period, check, alert ------------------------------------------


def _send_later(actor: dramatiq.Actor[Any, Any], arg: int, *, at: datetime,
                now: datetime) -> None:
    """Send `actor(arg)` now when due, delayed otherwise. On the in-process broker a delayed
    message would only live in this process's memory, so it is left to the reconciler."""
    delay_ms = int((at - now).total_seconds() * 1000)
    if delay_ms <= 0:
        actor.send(arg)
    elif not isinstance(actor.broker, StubBroker):
        actor.send_with_options(args=(arg,), delay=delay_ms)


def follow_up_drops(occurrence_ids: set[int]) -> None:
    """After a sync: start grace periods for new drops, record late reschedules."""
    if not occurrence_ids:
        return
    rt = current()
    now = rt.clock()
    with rt.factory.begin() as session:
        armed = outcomes.arm_checks(session, settings=rt.settings, now=now,
                                    occurrence_ids=occurrence_ids)
        outcomes.revisit_drops(session, settings=rt.settings, now=now,
                               occurrence_ids=occurrence_ids)
    for occurrence_id, due_at in armed:
        _send_later(check_occurrence, occurrence_id, at=due_at, now=now)


def reconcile_outcomes() -> None:
    """The reconciler's share: due checks, missed drops, ended meetings, unsent email."""
    rt = current()
    now = rt.clock()
    with rt.factory.begin() as session:
        outcomes.arm_checks(session, settings=rt.settings, now=now)
        outcomes.settle_ended(session, settings=rt.settings, now=now)
        outcomes.revisit_drops(session, settings=rt.settings, now=now)
        checks = outcomes.due_checks(session, now=now)
        mail = due_messages(session, now=now)
    for occurrence_id in checks:
        check_occurrence.send(occurrence_id)
    for outbox_id in mail:
        deliver_email.send(outbox_id)
    if checks or mail:
        log.info("reconcile: %d cancellation checks, %d emails to send", len(checks), len(mail))


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="default", throws=(AccountUnavailable, Refused))
def check_occurrence(occurrence_id: int) -> None:
    """Decide a dropped occurrence once its grace period is over; queue and send the alert."""
    rt = current()
    with rt.factory() as session:
        account_id = outcomes.alert_account(session, occurrence_id=occurrence_id)
    recorder = CallRecorder(account_id)
    with provider_errors(account_id):
        free_busy = (rt.connectors.for_account(account_id, recorder).free_busy
                     if account_id is not None else None)
        result = outcomes.check_occurrence(rt.factory, occurrence_id=occurrence_id,
                                           settings=rt.settings, now=rt.clock(),
                                           free_busy=free_busy)
    with rt.factory.begin() as session:
        recorder.flush_into(session)
    if result.outbox_id is None:
        return
    with rt.factory() as session:
        row = session.get(OutboxMessage, result.outbox_id)
        not_before = row.not_before if row is not None else None
    _send_later(deliver_email, result.outbox_id, at=not_before or rt.clock(), now=rt.clock())


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="email")
def deliver_email(outbox_id: int) -> None:
    """Send one outbox row (exactly once; a retry after a transport error comes later)."""
    rt = current()
    result = deliver_outbox(rt.factory, message_id=outbox_id,
                            transport=transport_from_settings(rt.settings), now=rt.clock(),
                            sender=rt.settings.mail_from)
    if result.retry_at is not None:
        _send_later(deliver_email, outbox_id, at=result.retry_at, now=rt.clock())


# -- weekly digest -----------------------------------------------------------------------


def reconcile_digests() -> None:
    """The reconciler's share for digests: every manager whose local send time has come."""
    from service.metrics.digest import digest_due

    rt = current()
    with rt.factory() as session:
        due = digest_due(session, settings=rt.settings, now=rt.clock())
    for item in due:
        send_digest.send(item.manager_id, item.iso_week)
    if due:
        log.info("reconcile: %d weekly digests to send", len(due))


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="email")
def send_digest(manager_id: int, iso_week: str) -> None:
    """Queue one manager's digest for one ISO week (once: dedupe key) and deliver it."""
    from service.metrics.digest import enqueue_digest

    rt = current()
    outbox_id = enqueue_digest(rt.factory, settings=rt.settings, manager_id=manager_id,
                               iso_week=iso_week, now=rt.clock())
    deliver_email.send(outbox_id)  # the outbox's own actor: claim, send, retry with backoff



ALL: list[dramatiq.Actor[Any, Any]] = [
    sync_account, sync_calendar, write_agenda, renew_channel, reconcile,
    check_occurrence, deliver_email, send_digest,
]
