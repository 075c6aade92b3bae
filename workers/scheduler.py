"""The scheduler only enqueues: the reconciler finds due work in the database.

Polling fallback, agenda writes, cancellation checks and digests all come from one periodic
`reconcile` message, so a broker restart or a lost message costs at most one interval.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from service.settings import Settings
from workers import actors

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings, *, blocking: bool) -> BaseScheduler:
    """A scheduler that sends `reconcile` at once and then every interval, and a sync of
    every company directory every `directory_sync_interval_seconds`."""
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        actors.reconcile.send, "interval", seconds=settings.reconcile_interval_seconds,
        id="reconcile", max_instances=1, coalesce=True,
    )
    scheduler.add_job(
        actors.sync_all_directories, "interval",
        seconds=settings.directory_sync_interval_seconds, id="directory-sync",
        max_instances=1, coalesce=True,
    )
    actors.reconcile.send()
    log.info("scheduler: reconcile every %d s, company directories every %d s",
             settings.reconcile_interval_seconds, settings.directory_sync_interval_seconds)
    return scheduler
