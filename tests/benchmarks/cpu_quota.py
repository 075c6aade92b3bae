"""A CPU limit of its own for one benchmark process: what a container's CPU limit gives a
`rapport worker` in production.

Kubernetes enforces a container's `resources.limits.cpu` (and Docker its `--cpus`) as a CFS
bandwidth quota on the container's cgroup: `quota / period` CPUs at most, however idle the rest
of the machine is (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#how-pods-with-resource-limits-are-run,
https://docs.docker.com/engine/containers/resource_constraints/#configure-the-default-cfs-scheduler,
https://www.kernel.org/doc/html/latest/scheduler/sched-bwc.html). On a 2-core machine that
also runs PostgreSQL, Redis and the sandbox, workers without a limit compete with them for the
same two cores, so adding a worker measures the machine rather than the product; with a limit
per worker, N workers get N times one worker's CPU as long as the machine has it to give.

cgroup v2 (`cpu.max`) where the cpu controller is on the unified hierarchy, else cgroup v1
(`cpu.cfs_quota_us`); root is needed to create the group. `QuotaUnavailable` carries a
one-line reason when neither can be used.
"""

from __future__ import annotations

import os
from pathlib import Path

PERIOD_US = 100_000  # the kernel's default CFS period (100 ms), as Kubernetes uses
_V2 = Path("/sys/fs/cgroup")
_V1 = Path("/sys/fs/cgroup/cpu")


class QuotaUnavailable(RuntimeError):
    """No CPU cgroup this process may create (not root, or no cpu controller mounted)."""


class CpuQuota:
    """One cgroup capped at `cpus` CPUs; the processes added to it (and their children)."""

    def __init__(self, name: str, cpus: float) -> None:
        if cpus <= 0:
            raise ValueError("a CPU quota must be more than 0 CPUs")
        self.cpus = cpus
        quota = str(round(cpus * PERIOD_US))
        controllers = _V2 / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            self.path, limit, value = _V2 / name, "cpu.max", f"{quota} {PERIOD_US}"
        elif (_V1 / "cpu.cfs_quota_us").exists():
            self.path, limit, value = _V1 / name, "cpu.cfs_quota_us", quota
        else:
            raise QuotaUnavailable("no cgroup cpu controller is mounted under /sys/fs/cgroup")
        try:
            self.path.mkdir(exist_ok=True)
            if limit == "cpu.cfs_quota_us":
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / limit).write_text(value)
        except OSError as err:
            raise QuotaUnavailable(f"cannot create cgroup {self.path}: {err.strerror}") from err

    def add(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the group; its children are born in it."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """Seconds the group's processes were held back by the quota so far."""
        stats = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines()
                     if line.strip())
        if "throttled_usec" in stats:  # v2
            return int(stats["throttled_usec"]) / 1e6
        return int(stats.get("throttled_time", 0)) / 1e9  # v1: nanoseconds

    def close(self) -> None:
        """Remove the group once its processes have ended (left in place if any remain)."""
        try:
            os.rmdir(self.path)
        except OSError:
            pass
