"""The `rapport` command as people run it: a real process, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from application.cli.main import app
from sandbox.team import EXPECTED_PAIRS
from service.pairs.service import SeriesRow

from .conftest import CASES, Harness
from .helpers import block_count, series_of, upcoming

_SCRIPT = Path(sys.executable).parent / "rapport"
RAPPORT = [str(_SCRIPT)] if _SCRIPT.exists() else \
    [sys.executable, "-c", "from application.cli.main import main; main()"]

# The keys `rapport pairs --json` documents (README), in order.
DOCUMENTED_KEYS = ["series_id", "pair_id", "manager", "report", "title", "is_one_on_one",
                   "confidence", "reason", "override", "cadence_days", "status",
                   "next_occurrence", "provider_ids"]


def _env(data_dir: Path, harness: Harness | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(data_dir)
    if harness is not None:
        settings = harness.settings
        assert settings.secret_key is not None
        env.update({
            "RAPPORT_DATABASE_URL": settings.resolved_database_url,
            "RAPPORT_SECRET_KEY": settings.secret_key.get_secret_value(),
            "RAPPORT_GOOGLE_API_URL": settings.google_api_url,
            "RAPPORT_GOOGLE_TOKEN_URL": settings.google_token_url,
            "RAPPORT_GRAPH_API_URL": settings.graph_api_url,
            "RAPPORT_MICROSOFT_AUTHORITY": settings.microsoft_authority,
            "RAPPORT_CA_BUNDLE": str(settings.ca_bundle),
        })
    return env


def rapport(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real command line in its own process."""
    return subprocess.run([*RAPPORT, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the click tree typer builds, as argument prefixes."""
    paths = [prefix]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


def test_every_command_has_help_that_exits_zero(tmp_path: Path) -> None:
    paths = _command_paths(typer.main.get_command(app))
    assert {("connect", "google"), ("connect", "microsoft"), ("sync",), ("pairs",),
            ("series", "include"), ("series", "exclude"), ("demo",)} <= set(paths)
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
    process = rapport("--help", env=_env(tmp_path))  # and the installed script itself
    assert process.returncode == 0
    assert "Usage" in process.stdout


@pytest.mark.parametrize("provider", ["google", "microsoft"])
@pytest.mark.parametrize("problem", ["missing", "malformed"])
def test_connect_with_a_bad_credentials_file_is_a_one_line_error_and_exit_3(
        tmp_path: Path, provider: str, problem: str) -> None:
    path = tmp_path / "credentials.json"
    if problem == "malformed":
        path.write_text('{"client_id": "abc", "refresh_token": ', encoding="utf-8")

    process = rapport("connect", provider, "--credentials", str(path), env=_env(tmp_path))

    assert process.returncode == 3
    output = process.stdout + process.stderr
    assert "Traceback" not in output
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "credentials.json" in lines[0]


def test_pairs_json_is_stable_and_series_overrides_change_what_is_detected(
        harness: Harness) -> None:
    harness.connect("maya@acme.test")  # organizes the Google 1:1s
    harness.connect("dana@acme.test")  # organizes the Microsoft ones
    harness.sync()
    env = _env(harness.settings.data_dir, harness)

    listed = rapport("pairs", "--json", env=env)

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)  # stdout is the JSON alone; progress goes to stderr
    assert all(list(row) == DOCUMENTED_KEYS for row in rows)
    order = [(r["manager"], r["report"], r["series_id"]) for r in rows]
    assert order == sorted(order)  # a stable order, not the database's whim
    assert list(SeriesRow.__dataclass_fields__) == DOCUMENTED_KEYS
    assert {(r["manager"], r["report"]) for r in rows} == set(EXPECTED_PAIRS)
    assert all(r["is_one_on_one"] and r["status"] == "active" and r["provider_ids"]
               for r in rows)

    excluded = [series_of(harness, manager=c.manager, report=c.report).id
                for c in CASES.values()]
    for series_id in excluded:
        done = rapport("series", "exclude", str(series_id), env=env)
        assert done.returncode == 0, done.stderr
    team = series_of(harness, manager="maya@acme.test", title="Team sync")
    refused = rapport("series", "include", str(team.id), env=env)

    assert refused.returncode != 0
    assert "3 people" in refused.stderr and "Traceback" not in refused.stderr
    after = json.loads(rapport("pairs", "--json", env=env).stdout)
    assert {r["series_id"] for r in after} == {r["series_id"] for r in rows} - set(excluded)


def test_sync_once_names_a_revoked_account_and_exits_non_zero(harness: Harness) -> None:
    for email in ("sam@acme.test", "dana@acme.test", "lee@acme.test"):
        harness.connect(email)
    harness.google.revoke("sam@acme.test")
    harness.graph.revoke("lee@acme.test")
    case = CASES["microsoft"]

    process = rapport("sync", "--once", env=_env(harness.settings.data_dir, harness))

    assert process.returncode != 0
    assert "Traceback" not in process.stdout + process.stderr
    flagged = [line for line in process.stdout.splitlines() if "needs attention" in line]
    assert len(flagged) == 2
    assert any("sam@acme.test" in line for line in flagged)
    assert any("lee@acme.test" in line for line in flagged)
    assert all("rapport connect" in line for line in flagged)
    start = upcoming(harness, case)[0]  # dana's calendar still synced and got its agenda
    assert block_count(harness.graph.description_of(case.manager, case.series_key, start)) == 1
