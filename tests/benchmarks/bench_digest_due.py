"""digest_due before (every manager of every zone read each pass) and after (per-zone marks
in `digest_zones`), on a database `bench_reconcile.py` left behind, in CPU time.

    python tests/benchmarks/bench_digest_due.py DB_FILE [--passes 50] [--before-ref 71fc93d]

Not collected by pytest. The database is migrated to head first (the after side needs
`digest_zones`). Three cases, each `--passes` passes one minute apart, the two sides
alternating pass by pass: no send window open (the bench's digest weekday), and every
zone's window open with every digest already sent (outbox rows for this week inserted
first, removed after). Figures are CPU
milliseconds of this process per pass (`time.process_time`, far less load-sensitive than
wall time on a shared machine) and SQL statements per pass.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import delete, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `tests.`
import service.models  # noqa: E402,F401  (every table)
from service.db import make_engine, migrate, read_session, session_factory  # noqa: E402
from service.email.models import OutboxMessage, OutboxStatus  # noqa: E402
from service.metrics import definitions as d  # noqa: E402
from service.metrics import digest  # noqa: E402
from service.metrics.models import DigestZone  # noqa: E402
from service.pairs.models import Pair  # noqa: E402
from service.people.zones import zone_of  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.benchmarks.seed_series import NOW  # noqa: E402
from tests.statements import statements  # noqa: E402

BEFORE_REF = "71fc93d"  # main before the per-zone marks


def old_digest_due(repo: Path, ref: str) -> Callable[..., Any]:
    """The old `digest_due(session, ...)`, loaded from `git show REF:...` as its own module."""
    source = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:service/metrics/digest.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("old_digest")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{ref}:service/metrics/digest.py", "exec"),  # noqa: S102
         module.__dict__)
    return module.digest_due  # type: ignore[no-any-return]


def measure(factory: Any, settings: Settings, start: datetime, passes: int,
            old: Callable[..., Any]) -> dict[str, tuple[float, float, int]]:
    """side -> (CPU ms per pass, median, statements per pass) over `passes` passes."""
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    sent: dict[str, int] = {"before": 0, "after": 0}
    for k in range(passes):
        now = start + timedelta(minutes=k)
        for side in ("before", "after") if k % 2 else ("after", "before"):
            with statements(factory) as seen:
                t0 = time.process_time()
                if side == "before":
                    with read_session(factory) as session:
                        due = old(session, settings=settings, now=now)
                else:
                    due = digest.digest_due(factory, settings=settings, now=now)
                cpu[side].append(1000 * (time.process_time() - t0))
            assert due == [], due
            sent[side] += len(seen)
    return {side: (sum(v) / len(v), sorted(v)[len(v) // 2], sent[side] // passes)
            for side, v in cpu.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--passes", type=int, default=50)
    parser.add_argument("--before-ref", default=BEFORE_REF)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[2]
    engine = make_engine(f"sqlite:///{args.db}")
    migrate(engine)
    factory = session_factory(engine)
    old = old_digest_due(repo, args.before_ref)
    secret = SecretStr(Fernet.generate_key().decode())
    closed = Settings(data_dir=Path(args.db).parent, secret_key=secret,
                      digest_weekday=(NOW.weekday() + 2) % 7)  # no window open
    open_ = Settings(data_dir=Path(args.db).parent, secret_key=secret,
                     digest_weekday=NOW.weekday())  # every zone's window open
    with factory() as session:
        managers = session.scalar(select(text("count(DISTINCT manager_id)")).select_from(Pair))
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}; "
          f"{managers} managers; {args.passes} passes per case")

    def report(case: str, figures: dict[str, tuple[float, float, int]]) -> None:
        for side, (mean, median, sent) in figures.items():
            print(f"  {case:<34} {side:<6} CPU {mean:8.2f} ms/pass (median {median:8.2f}),"
                  f" {sent} statements/pass")

    with factory.begin() as session:
        session.execute(delete(DigestZone))
    digest.digest_due(factory, settings=closed, now=NOW)  # the after side reads its zones
    report("no window open", measure(factory, closed, NOW + timedelta(minutes=1),
                                     args.passes, old))
    weeks = {}
    with factory.begin() as session:  # every digest of this week already sent
        for manager_id, zone in session.execute(text(
                "SELECT DISTINCT p.id, p.time_zone FROM people p JOIN pairs ON"
                " pairs.manager_id = p.id")):
            weeks[manager_id] = d.iso_week_of(NOW, zone_of(zone))
        session.execute(insert(OutboxMessage), [
            {"kind": digest.KIND, "dedupe_key": digest.dedupe_key(m, w), "recipient": "x",
             "subject": "s", "body_text": "t", "body_html": "h", "message_id": f"<{m}@b>",
             "status": OutboxStatus.SENT.value, "attempts": 1, "sent_at": NOW}
            for m, w in weeks.items()])
    digest.digest_due(factory, settings=open_, now=NOW + timedelta(hours=1))  # the mark
    report("window open, every digest sent", measure(
        factory, open_, NOW + timedelta(hours=1, minutes=1), args.passes, old))
    with factory.begin() as session:
        session.execute(delete(OutboxMessage).where(OutboxMessage.kind == digest.KIND,
                                                    OutboxMessage.sent_at == NOW))
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")
    engine.dispose()


if __name__ == "__main__":
    main()
