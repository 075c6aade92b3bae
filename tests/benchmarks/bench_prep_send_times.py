"""What following zone changes costs the prep nudges: the statements of a nothing-due pass of
`queue_prep_nudges`, and of one person's zone change (the flush, with the hook's UPDATE) and
the pass after it, on `tests/service/reconcile_seed`'s company (a migrated SQLite file).

    python tests/benchmarks/bench_prep_send_times.py [SIZES...]   (default 10 200 1600)

Not collected by pytest. Prints one line per size (statement counts are deterministic; the
CPU milliseconds are the process's own, less load-sensitive than wall time) and the SQLite
query plan of the zone change's UPDATE.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

import service.models  # noqa: F401  (every table, and the flush hooks)
from service.db import make_engine, migrate, session_factory
from service.people.models import Person
from service.prep.nudge import queue_prep_nudges
from service.settings import Settings
from tests.service.reconcile_seed import NOW, seed
from tests.statements import statements

ZONE_UPDATE = (
    "UPDATE occurrences SET prep_due_for=NULL, prep_due_at=NULL WHERE prep_due_for IS NOT NULL"
    " AND series_id IN (SELECT id FROM series WHERE pair_id IN (SELECT id FROM pairs WHERE"
    " manager_id IN (1) UNION SELECT id FROM pairs WHERE report_id IN (1)))")


def run(pairs: int, *, plan: bool) -> None:
    folder = Path(tempfile.mkdtemp())
    engine = make_engine(f"sqlite:///{folder}/rapport.db")
    migrate(engine)
    factory = session_factory(engine)
    settings = Settings(data_dir=folder, secret_key=SecretStr(Fernet.generate_key().decode()),
                        public_url="https://rapport.example")
    with factory.begin() as session:
        seed(session, pairs=pairs)
    with factory.begin() as session:  # the pass that does what was due
        queue_prep_nudges(session, settings=settings, now=NOW)
    with statements(engine) as seen:
        started = time.process_time()
        with factory.begin() as session:
            queue_prep_nudges(session, settings=settings, now=NOW)
        idle, idle_ms = len(seen), (time.process_time() - started) * 1000
        seen.clear()
        started = time.process_time()
        with factory.begin() as session:
            person = session.scalars(select(Person).order_by(Person.id).limit(1)).one()
            person.time_zone = "UTC" if person.time_zone == "Pacific/Kiritimati" \
                else "Pacific/Kiritimati"
        flush, flush_ms = len(seen), (time.process_time() - started) * 1000
        seen.clear()
        started = time.process_time()
        with factory.begin() as session:
            queue_prep_nudges(session, settings=settings, now=NOW)
    print(f"{pairs:>6} pairs: nothing due {idle} statements ({idle_ms:.1f} ms CPU); zone change:"
          f" flush {flush} statements ({flush_ms:.1f} ms CPU), next pass {len(seen)} statements"
          f" ({(time.process_time() - started) * 1000:.1f} ms CPU)")
    if plan:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + ZONE_UPDATE).all()
        print("  plan of the zone change's UPDATE:", "; ".join(row[-1] for row in rows))
    engine.dispose()


if __name__ == "__main__":
    sizes = [int(size) for size in sys.argv[1:]] or [10, 200, 1600]
    for i, size in enumerate(sizes):
        run(size, plan=i == 0)
