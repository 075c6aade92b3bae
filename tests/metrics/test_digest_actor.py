"""The reconcile actor finds due digests and `send_digest` delivers each exactly once."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from application.context import start
from service.email.models import OutboxMessage, OutboxStatus
from service.settings import Settings
from tests.metrics.conftest import History, utc
from workers import actors
from workers.inprocess import run_until_idle


def test_reconcile_sends_each_managers_digest_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode())
    # Monday 09:00 UTC: due in London; in Honolulu it is still Sunday, and last Monday's
    # digest is six days late, past the catch-up limit.
    now = utc(2026, 11, 23, 9)
    started = start(settings, clock=lambda: now)
    try:
        history = History(started.runtime.factory)
        london = history.person("lon@example.com", tz="Europe/London")
        honolulu = history.person("hnl@example.com", tz="Pacific/Honolulu")
        for manager, report in ((london, "a@example.com"), (honolulu, "b@example.com")):
            pair = history.pair(manager, history.person(report))
            series = history.series(pair, key=f"s{manager}")
            history.occurrences(series, utc(2026, 9, 1, 10), ["held"] * 12)
        for _ in range(2):
            actors.reconcile.send()
            run_until_idle(started.broker, threads=2, timeout=60)
        with started.runtime.factory() as session:
            rows = session.scalars(select(OutboxMessage).where(
                OutboxMessage.kind == "digest")).all()
        assert [(r.dedupe_key, r.status) for r in rows] == [
            (f"digest:{london}:2026-W48", OutboxStatus.SENT.value)]
        assert len(list(settings.resolved_outbox_dir.glob("*digest*.eml"))) == 1
    finally:
        started.runtime.engine.dispose()
