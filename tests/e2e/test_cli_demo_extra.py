"""`rapport demo` without its optional extra: one line saying what to install, exit 3."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from application.cli.main import app


def test_the_demo_without_its_extra_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    for name in [m for m in sys.modules if m == "application.demo.run"
                 or m.startswith("sandbox")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "trustme", None)  # as if the extra were not installed

    result = CliRunner().invoke(app, ["demo"])

    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "trustme" in lines[0] and '".[demo]"' in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
