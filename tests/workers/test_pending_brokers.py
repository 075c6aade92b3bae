"""Which brokers keep the reconciler's pending marks (workers/pending.py)."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from service.settings import Settings
from workers.broker import create_broker
from workers.pending import MemoryPendingMarks, PendingSends


def _broker_settings(tmp_path: Path, broker_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path, broker_url=broker_url,
                    secret_key=SecretStr(Fernet.generate_key().decode()))


def _pending(broker_url: str | None, tmp_path: Path) -> PendingSends | None:
    broker = create_broker(_broker_settings(tmp_path, broker_url))
    return next((m for m in broker.middleware if isinstance(m, PendingSends)), None)


def test_the_in_process_broker_keeps_its_marks_in_memory(tmp_path: Path) -> None:
    pending = _pending(None, tmp_path)
    assert pending is not None and isinstance(pending.marks, MemoryPendingMarks)


def test_a_rabbitmq_broker_keeps_no_marks_so_every_due_copy_is_sent(tmp_path: Path) -> None:
    """The reconcile message and the messages it sends may run in different worker
    processes: marks kept in one process's memory would hold a failed write's re-send back
    for the whole bound (10 minutes) instead of the next pass."""
    assert _pending("amqp://guest:guest@127.0.0.1:1/", tmp_path) is None  # not connected
