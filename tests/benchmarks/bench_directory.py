"""Directory sync benchmark: a company of N people, an org chart four levels deep.

    python tests/benchmarks/bench_directory.py [--people 10000] [--page-size 500]
                                               [--database-url URL]

Not collected by pytest. The directory is the in-memory one (`sandbox.memory.MemoryDirectory`,
pages like the Admin SDK's ``maxResults=500`` and Graph's ``$top``), so the figures are
Rapport's own cost: the database writes and the bookkeeping of `sync_directory`, not HTTP.
On a fresh database (SQLite file by default, migrated like production) it times

1. the first pass: every person, their grant account (encrypted credentials) and manager;
2. a second pass over the unchanged directory (the steady state every 6 hours);
3. a pass after 1% of the people changed manager and 0.5% left.

and prints the directory calls (pages), the time, and the peak of Python allocations
(tracemalloc) of each pass.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.base import DirectoryPerson


def company(size: int) -> list[DirectoryPerson]:
    """One CEO, 10 directors, 100 managers, the rest reports: four levels."""
    def who(i: int) -> str:
        return f"person{i}@bench.test"

    people = []
    for i in range(size):
        manager = None if i == 0 else (0 if i <= 10 else (1 + (i % 10) if i <= 110
                                                             else 11 + (i % 100)))
        people.append(DirectoryPerson(id=f"u{i}", email=who(i), name=f"Person {i}",
                                      manager_email=None if manager is None else who(manager)))
    return people


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from sandbox.memory import MemoryDirectory
    from service.accounts.crypto import Vault
    from service.accounts.service import save_grant
    from service.db import make_engine, migrate, session_factory
    from service.directory.sync import sync_directory
    from service.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="bench-directory-"))
    url = args.database_url or f"sqlite:///{folder / 'rapport.db'}"
    settings = Settings(data_dir=folder, secret_key=SecretStr(Fernet.generate_key().decode()))
    engine = make_engine(url)
    migrate(engine)
    factory = session_factory(engine)
    vault = Vault.from_settings(settings)
    with factory.begin() as session:
        grant_id = save_grant(session, vault=vault, provider="google", name="bench.test",
                              scope={}, credentials={"key": "bench"}).id
    people = company(args.people)
    directory = MemoryDirectory(people, page_size=args.page_size)
    now = datetime(2026, 12, 1, 6, tzinfo=UTC)
    print(f"directory sync, {args.people} people, pages of {args.page_size}, "
          f"{url.split(':')[0]}")
    for label in ("first pass", "unchanged", "1% new managers, 0.5% left"):
        if label.startswith("1%"):
            for i in range(200, args.people, 100):
                directory.set_manager(f"u{i}", people[11 + (i + 1) % 100])
            for i in range(150, args.people, 200):
                directory.remove(f"u{i}")
        directory.requested.clear()
        tracemalloc.start()
        started = time.perf_counter()
        result = sync_directory(factory, grant_id=grant_id, connector=directory, vault=vault,
                                now=now)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {label:<28} {elapsed:7.2f} s  {len(directory.requested):4d} directory calls  "
              f"peak {peak / 2**20:6.1f} MiB  ({result.summary()})")
        now += timedelta(hours=6)
    engine.dispose()


if __name__ == "__main__":
    main()
