"""Rapport's log handler writes to the stderr in use when a line is logged, so a stream that
was stderr when logging was configured (a test runner's capture, since closed) loses nothing."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from service.logging_setup import configure_logging
from service.settings import Settings


def test_a_line_goes_to_the_current_stderr_after_the_first_one_was_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    kept = list(root.handlers), root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        configure_logging(Settings(data_dir=tmp_path))
        first.close()  # the capture it was configured under has ended
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("rapport.test").warning("calendar 7 synced")
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_rapport", False)]:
            root.removeHandler(handler)
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
    assert "calendar 7 synced" in second.getvalue()
    assert "Logging error" not in second.getvalue()
