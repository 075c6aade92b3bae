"""What each process of a running deployment costs, read from Linux's /proc: CPU seconds
(`/proc/PID/stat` utime + stime, in clock ticks) and peak resident memory (`VmHWM` in
`/proc/PID/status`), sampled in a thread so a process that exits keeps its last figures.

Used by `bench_scaleout.py`; PostgreSQL backends of one database are found through
`pg_stat_activity` (one backend per pooled connection, alive while the pool holds it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY = 0.5  # seconds


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` so far (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float | None:
    """The process's resident-memory high-water mark (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def find_pids(name: str, *, argument: str | None = None) -> list[int]:
    """Processes whose command is `name` (and whose command line holds `argument`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if argument is None or argument in cmdline:
            found.append(int(entry.name))
    return found


@dataclass
class Usage:
    """CPU seconds used since sampling began and the peak RSS seen, for one role."""

    cpu: dict[int, float] = field(default_factory=dict)  # pid -> seconds since the start
    peak_mb: dict[int, float] = field(default_factory=dict)

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


class Sampler:
    """Samples the processes of each role (name -> pids, asked again on every sample, so
    database backends that come and go are seen) until `stop`."""

    def __init__(self, roles: dict[str, Callable[[], list[int]]]) -> None:
        self.roles = roles
        self.usage = {name: Usage() for name in roles}
        self._base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def start(self) -> Sampler:
        for pids in self.roles.values():
            for pid in pids():
                self._base.setdefault(pid, cpu_seconds(pid) or 0.0)
        self._thread.start()
        return self

    def sample(self) -> None:
        for name, pids in self.roles.items():
            usage = self.usage[name]
            for pid in pids():
                cpu = cpu_seconds(pid)
                if cpu is None:
                    continue
                usage.cpu[pid] = cpu - self._base.setdefault(pid, 0.0)  # new: from its start
                peak = peak_rss_mb(pid)
                if peak is not None:
                    usage.peak_mb[pid] = max(peak, usage.peak_mb.get(pid, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.sample()

    def stop(self) -> dict[str, Usage]:
        self.sample()
        self._stop.set()
        self._thread.join()
        return self.usage
