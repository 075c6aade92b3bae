"""Real `rapport worker` / `rapport scheduler` processes and a private Redis server, each in
its own process group so a finalizer can end it (and whatever it started) even when a test
fails half-way. Output goes to log files, read back when a test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_SCRIPT = Path(sys.executable).parent / "rapport"
RAPPORT = [str(_SCRIPT)] if _SCRIPT.exists() else \
    [sys.executable, "-c", "from application.cli.main import main; main()"]
STOP_GRACE = 10.0  # seconds a process gets to stop on SIGTERM before SIGKILL


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _end_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` to the process's whole group (it was started as a session leader)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, SIGKILL it when it does not stop in time, and reap it. A reaped
    process is never signalled again (its id may belong to someone else by then)."""
    if process.poll() is not None:
        return
    _end_group(process, signal.SIGTERM)
    try:
        process.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        _end_group(process, signal.SIGKILL)
        process.wait()


@dataclass
class Fleet:
    """The product's processes for one test module, started from one environment."""

    env: dict[str, str]
    logs: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _count: int = 0

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self._count += 1
        log = (self.logs / f"{self._count:02d}-{name}.log").open("wb")
        process = subprocess.Popen([*RAPPORT, *args], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()  # the child holds its own descriptor
        self.processes.append((name, process))
        return process

    def worker(self, threads: int = 3, **env: str) -> subprocess.Popen[bytes]:
        """Start `rapport worker` (extra RAPPORT_* settings may override the fleet's)."""
        return self._spawn("worker", ["worker", "--threads", str(threads)], {**self.env, **env})

    def scheduler(self, **env: str) -> subprocess.Popen[bytes]:
        """Start `rapport scheduler`."""
        return self._spawn("scheduler", ["scheduler"], {**self.env, **env})

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """kill -9, as the kernel's OOM killer or a lost machine would."""
        if process.poll() is None:
            _end_group(process, signal.SIGKILL)
            process.wait()

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """Stop one process the way an operator would (SIGTERM)."""
        stop_process(process)

    def running(self, name: str | None = None) -> list[subprocess.Popen[bytes]]:
        """Processes (named `name`) still alive."""
        return [p for n, p in self.processes if p.poll() is None and name in (None, n)]

    def stop_all(self) -> None:
        """End every process this fleet started."""
        for _, process in self.processes:
            stop_process(process)

    def tail(self, lines: int = 40) -> str:
        """The last lines of every log, for a failing test's report."""
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            out.append(f"--- {path.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


@dataclass
class PrivateRedis:
    """A throwaway `redis-server` without persistence: restarting it loses every message,
    the worst a broker restart can do (the shared Redis of the machine is never touched)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._cli("ping") == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("the private redis-server did not answer PING")

    def queued(self) -> int:
        """Messages waiting in its dramatiq queues (the `dramatiq:<queue>.msgs` hashes)."""
        keys = self._cli("--scan", "--pattern", "dramatiq:*.msgs").split()
        return sum(int(self._cli("hlen", key) or 0) for key in keys)

    def _cli(self, *args: str) -> str:
        answer = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                                capture_output=True, text=True, check=False)
        return answer.stdout.strip()

    def stop(self) -> None:
        """Stop it (nothing is saved: queued messages are gone)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None
