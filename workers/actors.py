"""Thin dramatiq actors: they take ids, call one service function and send what follows.

What every provider actor shares (its account, the recording of its provider calls, the
mapping of connector errors onto dramatiq) is declared once, by `provider_actor` and the
`MessageContexts` middleware. Every actor is idempotent, so a redelivered or duplicated
message changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from connectors.errors import AuthRevoked, Transient
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.accounts.service import mark_grant_needs_reconsent
from service.agenda.planner import plan_due_agendas, plan_touched_pairs
from service.agenda.writer import write_agenda as write_agenda_into_invite
from service.agenda.writer import writing_account
from service.calendars.push import calendars_needing_channels, calendars_of_stopped_accounts
from service.calendars.push import renew_channel as open_channel
from service.calendars.push import stop_channel as close_channel
from service.calendars.queries import (
    accounts_without_calendars,
    active_account,
    active_account_ids,
    active_account_of_calendar,
    calendars_due_for_sync,
    known_calendars,
)
from service.calendars.service import save_calendars
from service.db import read_session
from service.directory.sync import active_grant_ids
from service.directory.sync import sync_directory as sync_one_directory
from service.email.models import OutboxMessage
from service.email.outbox import deliver as deliver_outbox
from service.email.outbox import due_messages
from service.email.reconsent import queue_reconsent_emails
from service.email.transport import transport_from_settings
from service.metrics.digest import digest_due, enqueue_digest
from service.metrics.snapshots import refresh_snapshots
from service.outcomes import service as outcomes
from service.prep.nudge import queue_prep_nudges
from service.sync.calendar_sync import sync_calendar as sync_one_calendar
from workers.context import message_context
from workers.pending import send_unless_pending
from workers.provider import BackedOff, Refused, placeholder_broker, provider_actor
from workers.runtime import current

log = logging.getLogger(__name__)

# Actors are declared on a placeholder and bound to the real broker by `install_broker`.
_PLACEHOLDER = placeholder_broker()


@provider_actor(broker=_PLACEHOLDER, queue_name="sync", account_of=active_account)
def sync_account(account_id: int) -> None:
    """Discover the account's calendars (first time, or while its owner's zone is unknown)
    and sync each one."""
    rt = current()
    if message_context().account_id is None:
        return
    with read_session(rt.factory) as session:
        known = known_calendars(session, account_id=account_id)
    calendar_ids = known.calendar_ids
    if known.discover:
        infos = rt.connectors.for_account(account_id).list_calendars()
        with rt.factory.begin() as session:
            account = session.get(Account, account_id)
            assert account is not None
            calendar_ids = [c.id for c in save_calendars(session, account=account,
                                                         calendars=infos)]
    for calendar_id in calendar_ids:
        sync_calendar.send(calendar_id)


def sync_all_accounts() -> list[int]:
    """Send a sync for every active account; returns their ids."""
    with read_session(current().factory) as session:
        ids = active_account_ids(session)
    for account_id in ids:
        sync_account.send(account_id)
    return ids


@provider_actor(broker=_PLACEHOLDER, queue_name="sync", account_of=active_account_of_calendar)
def sync_calendar(calendar_id: int) -> None:
    """Sync one calendar, then plan the agendas it touched and enqueue the writes."""
    rt, context = current(), message_context()
    if context.account_id is None:
        return
    try:
        outcome = sync_one_calendar(rt.factory, calendar_id=calendar_id,
                                    connector=rt.connectors.for_calendar(calendar_id),
                                    settings=rt.settings, now=rt.clock())
    except Transient as err:  # the connector retried already; the calendar's backoff paces
        raise BackedOff(f"calendar {calendar_id} failing; tried again after its backoff") \
            from err
    if not outcome.ran:
        return
    log.info("calendar %s synced: %d events, %d skipped, full=%s", calendar_id,
             outcome.events, outcome.skipped, outcome.full_sync)
    due = plan_touched_pairs(rt.factory, series_ids=outcome.series_touched,
                             settings=rt.settings, now=rt.clock())
    send_unless_pending(write_agenda, due)  # a reconcile pass sends no second copy
    follow_up_drops(outcome.occurrences_changed)


@provider_actor(broker=_PLACEHOLDER, queue_name="agenda", account_of=writing_account)
def write_agenda(agenda_id: int) -> None:
    """Write one planned agenda into its invite (no write when it is already there); none
    while the organizer's account needs re-consent (it is written once they sign in)."""
    rt = current()
    if message_context().account_id is None:
        return
    write_agenda_into_invite(rt.factory, agenda_id=agenda_id,
                             connector_for=rt.connectors.for_calendar, settings=rt.settings,
                             now=rt.clock(), request_sync=sync_calendar.send)


@provider_actor(broker=_PLACEHOLDER, queue_name="sync", account_of=active_account_of_calendar)
def renew_channel(calendar_id: int) -> None:
    """Open or renew the push channel of one calendar (only with RAPPORT_PUBLIC_URL)."""
    rt = current()
    if message_context().account_id is None:
        return
    open_channel(rt.factory, calendar_id=calendar_id,
                 connector=rt.connectors.for_calendar(calendar_id), settings=rt.settings,
                 vault=Vault.from_settings(rt.settings), now=rt.clock())


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="sync")
def stop_channel(calendar_id: int) -> None:
    """Stop the push channel of a calendar whose account is disabled (the person left)."""
    rt = current()
    close_channel(rt.factory, calendar_id=calendar_id, connector_for=rt.connectors.for_calendar)


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="default")
def reconcile() -> None:
    """Enqueue every piece of work the database says is due; a lost message loses nothing."""
    rt = current()
    now = rt.clock()
    with rt.factory.begin() as session:
        stale = calendars_due_for_sync(
            session, now=now, poll_interval=timedelta(seconds=rt.settings.poll_interval_seconds),
            push_fallback=(timedelta(seconds=rt.settings.push_poll_fallback_seconds)
                           if rt.settings.public_url else None))
        new_accounts = accounts_without_calendars(session)
        due = plan_due_agendas(session, settings=rt.settings, now=now)
        channels = (calendars_needing_channels(session, now=now)
                    if rt.settings.public_url else [])
        leavers = calendars_of_stopped_accounts(session)
    for calendar_id in channels:
        renew_channel.send(calendar_id)
    for calendar_id in leavers:
        stop_channel.send(calendar_id)
    for account_id in new_accounts:
        sync_account.send(account_id)
    syncs = send_unless_pending(sync_calendar, stale)  # a copy still queued is not sent
    writes = send_unless_pending(write_agenda, due)
    if stale or due or new_accounts:
        log.info("reconcile: %d calendars to sync, %d agendas to write (%d, %d already "
                 "queued), %d new accounts", len(stale), len(due), len(stale) - syncs,
                 len(due) - writes, len(new_accounts))
    reconcile_outcomes()
    reconcile_digests()
    reconcile_snapshots()
    reconcile_prep()


# -- company directories ----------------------------------------------------------------

DIRECTORY_RETRIES = 3  # a directory that keeps failing waits for the next scheduled pass


def _no_account(session: Any, **_arguments: Any) -> None:
    """A directory is read with the company grant's own credentials, for no one account."""
    return None


@provider_actor(broker=_PLACEHOLDER, queue_name="sync", account_of=_no_account,
                paced=False, max_retries=DIRECTORY_RETRIES)
def sync_directory(grant_id: int) -> None:
    """Read one company grant's directory (resuming an unfinished pass), then discover the
    calendars of the people it added. Idempotent: a second run reads the same people.
    Throttling retries after the provider's Retry-After, a refusal is not retried, a revoked
    grant is flagged (`rapport directory list` says so) and not retried."""
    rt = current()
    with rt.factory() as session:
        grant = session.get(DirectoryGrant, grant_id)
        if grant is None or grant.status != AccountStatus.ACTIVE:
            return
    try:
        sync_one_directory(rt.factory, grant_id=grant_id,
                           connector=rt.connectors.directory_for(grant_id),
                           vault=Vault.from_settings(rt.settings), now=rt.clock())
    except AuthRevoked as err:
        with rt.factory.begin() as session:
            mark_grant_needs_reconsent(session, grant_id=grant_id, reason=str(err))
        raise Refused(f"company grant {grant_id}: {err}") from err
    with rt.factory() as session:
        new_accounts = accounts_without_calendars(session)
    for account_id in new_accounts:
        sync_account.send(account_id)


def sync_all_directories() -> list[int]:
    """Send a directory sync for every active company grant; returns their ids."""
    with current().factory() as session:
        ids = active_grant_ids(session)
    for grant_id in ids:
        sync_directory.send(grant_id)
    return ids


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
    """The reconciler's share: due checks, missed drops, ended meetings, re-consent emails,
    unsent email."""
    rt = current()
    now = rt.clock()
    with rt.factory.begin() as session:
        outcomes.arm_checks(session, settings=rt.settings, now=now)
        outcomes.settle_ended(session, settings=rt.settings, now=now)
        outcomes.revisit_drops(session, settings=rt.settings, now=now)
        checks = outcomes.due_checks(session, now=now)
        queue_reconsent_emails(session, settings=rt.settings, now=now)  # once per episode
        mail = due_messages(session, now=now)
    for occurrence_id in checks:
        check_occurrence.send(occurrence_id)
    for outbox_id in mail:
        deliver_email.send(outbox_id)
    if checks or mail:
        log.info("reconcile: %d cancellation checks, %d emails to send", len(checks), len(mail))


@provider_actor(broker=_PLACEHOLDER, queue_name="default", account_of=outcomes.alert_account,
                paced=False)
def check_occurrence(occurrence_id: int) -> None:
    """Decide a dropped occurrence once its grace period is over; queue and send the alert.

    An alert does not wait for a throttled account: it goes out on time without free/busy."""
    rt = current()
    account = message_context().account
    if account is not None and account.pace().wait is not None:
        account = None
    free_busy = rt.connectors.for_account(account.id).free_busy if account else None
    result = outcomes.check_occurrence(rt.factory, occurrence_id=occurrence_id,
                                       settings=rt.settings, now=rt.clock(), free_busy=free_busy)
    if result.outbox_id is None:
        return
    with read_session(rt.factory) as session:
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


def reconcile_prep() -> None:
    """The reconciler's share for prep nudges: queue the due ones (once each), send them."""
    rt = current()
    with rt.factory.begin() as session:
        queued = queue_prep_nudges(session, settings=rt.settings, now=rt.clock())
    for outbox_id in queued:
        deliver_email.send(outbox_id)
    if queued:
        log.info("reconcile: %d prep nudges to send", len(queued))


# -- weekly digest -----------------------------------------------------------------------


def reconcile_digests() -> None:
    """The reconciler's share for digests: every manager whose local send time has come."""
    rt = current()
    due = digest_due(rt.factory, settings=rt.settings, now=rt.clock())
    for item in due:
        send_digest.send(item.manager_id, item.iso_week)
    if due:
        log.info("reconcile: %d weekly digests to send", len(due))


def reconcile_snapshots() -> None:
    """The reconciler's share for weekly snapshots: the rows whose inputs changed, the weeks
    that ended (two reads when nothing did)."""
    rt = current()
    written = refresh_snapshots(rt.factory, now=rt.clock()).rows
    if written:
        log.info("reconcile: %d weekly snapshots recomputed", written)


@dramatiq.actor(broker=_PLACEHOLDER, queue_name="email")
def send_digest(manager_id: int, iso_week: str) -> None:
    """Queue one manager's digest for one ISO week (once: dedupe key) and deliver it."""
    rt = current()
    outbox_id = enqueue_digest(rt.factory, settings=rt.settings, manager_id=manager_id,
                               iso_week=iso_week, now=rt.clock())
    deliver_email.send(outbox_id)  # the outbox's own actor: claim, send, retry with backoff


ALL: list[dramatiq.Actor[Any, Any]] = [
    sync_account, sync_calendar, write_agenda, renew_channel, stop_channel, reconcile,
    check_occurrence, deliver_email, send_digest, sync_directory,
]
