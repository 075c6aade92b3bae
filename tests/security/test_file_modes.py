"""What Rapport writes on disk is readable by its own user only, under the usual umask 022:
the data folder 0700; the database, its WAL files, the generated key, `.eml` files 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from service.email.transport import transport_from_settings
from service.settings import Settings

_SCRIPT = Path(sys.executable).parent / "rapport"
RAPPORT = [str(_SCRIPT)] if _SCRIPT.exists() else \
    [sys.executable, "-c", "from application.cli.main import main; main()"]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_real_start_leaves_only_private_files(tmp_path: Path) -> None:
    data = tmp_path / "rapport-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(data)
    done = subprocess.run([*RAPPORT, "people", "opt-out", "sam@example.com"], env=env,
                          capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=lambda: os.umask(0o022))
    assert done.returncode == 0, done.stderr
    assert _mode(data) == 0o700
    database = data / "rapport.db"
    assert _mode(database) == 0o600
    assert _mode(data / "secret.key") == 0o600
    side_files = [Path(f"{database}{s}") for s in ("-wal", "-shm")]
    for side in side_files:
        if side.exists():  # SQLite may have checkpointed and removed them on close
            assert _mode(side) == 0o600, side

    old = os.umask(0o022)
    try:
        message = EmailMessage()
        message["Message-ID"] = "<digest-1@rapport>"
        message.set_content("hello")
        transport_from_settings(Settings(data_dir=data)).send(message)
    finally:
        os.umask(old)
    outbox = data / "outbox"
    assert _mode(outbox) == 0o700
    [eml] = list(outbox.glob("*.eml"))
    assert _mode(eml) == 0o600


def test_an_older_world_readable_database_is_tightened_on_start(tmp_path: Path) -> None:
    data = tmp_path / "rapport-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(data)
    run = [*RAPPORT, "people", "opt-in", "sam@example.com"]
    assert subprocess.run(run, env=env, capture_output=True, timeout=120).returncode == 0
    os.chmod(data / "rapport.db", 0o644)
    assert subprocess.run(run, env=env, capture_output=True, timeout=120).returncode == 0
    assert _mode(data / "rapport.db") == 0o600


def test_the_systemd_units_run_with_umask_0077() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert units
    for unit in units:
        assert "\nUMask=0077\n" in unit.read_text(encoding="utf-8"), unit.name
