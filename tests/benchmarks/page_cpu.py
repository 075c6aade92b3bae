"""CPU milliseconds per manager of the page read without snapshots (`compute_manager`,
12 weeks to the seed's NOW), on a database `bench_reconcile.py` left behind.

    python tests/benchmarks/page_cpu.py DB_FILE [MANAGERS] [LABEL]

Not collected by pytest. Run it from two checkouts (PYTHONPATH) on the same file to compare
commits; CPU time of the process is far less load-sensitive than wall time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `tests.`
import service.models  # noqa: E402,F401  (every table)
from service.db import make_engine, session_factory  # noqa: E402
from service.metrics.reports import compute_manager  # noqa: E402
from tests.benchmarks.seed_series import NOW, REPORTS_PER_MANAGER  # noqa: E402


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10
    label = sys.argv[3] if len(sys.argv) > 3 else ""
    factory = session_factory(make_engine(f"sqlite:///{path}"))
    managers = [1 + (REPORTS_PER_MANAGER + 1) * k for k in range(count)]  # seed_series ids
    t0 = time.process_time()
    for manager_id in managers:
        with factory() as session:
            compute_manager(session, manager_id=manager_id, now=NOW, snapshots=False)
    cpu = (time.process_time() - t0) / len(managers) * 1000
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"{label}: {len(managers)} managers, CPU {cpu:.1f} ms/manager, load {load}")


if __name__ == "__main__":
    main()
