"""Logging for operators: one line per event, JSON on request, and never a secret.

Library loggers (googleapiclient, msal, urllib3, httpx) can print URLs and headers; a filter
masks anything that looks like a token before any handler sees it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import structlog

from service.files import create_private_file
from service.settings import Settings

_SECRET = re.compile(
    r"(?i)(bearer\s+|access_token[\"'=:\s]+|refresh_token[\"'=:\s]+|client_secret[\"'=:\s]+|"
    r"id_token[\"'=:\s]+|password[\"'=:\s]+|clientstate[\"'=:\s]+|x-goog-channel-token[\"'=:\s]+)"
    r"[^\s\"'&,;]+"
)


def redact(text: str) -> str:
    """Mask token-like values in a log line."""
    return _SECRET.sub(lambda m: m.group(1) + "***", text)


class RedactingFilter(logging.Filter):
    """Renders the message early and masks secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(settings: Settings) -> None:
    """Install one handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_rapport", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._rapport = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if settings.log_json:
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[structlog.processors.TimeStamper(fmt="iso"),
                               structlog.stdlib.add_log_level,
                               structlog.stdlib.add_logger_name]))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for noisy in ("googleapiclient.discovery_cache", "urllib3", "httpx", "httpcore", "msal",
                  "apscheduler.executors", "dramatiq.worker", "uvicorn.access",
                  "alembic"):  # migrations run on every start; their INFO lines are noise
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_to_file(path: Path, *, also_stderr: bool = False) -> None:
    """Send Rapport's log lines to `path` (same format and redaction) instead of stderr.

    For commands whose output is a report for people (`rapport demo`): the log stays
    available in a file, and `also_stderr` (`-v`) keeps the stderr handler as well."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_rapport", False)]
    create_private_file(path)  # 0600 in a 0700 folder: the log names people and calendars
    path.write_text("", encoding="utf-8")  # a fresh log per run ...
    # ... appended to, because a closed handler in "a" mode reopens on the next line: uvicorn's
    # dictConfig (the demo's sandboxes) closes every handler once, and "w" would stay closed.
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler._rapport = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if ours:
        handler.setFormatter(ours[0].formatter)
    if not also_stderr:
        for old in ours:
            root.removeHandler(old)
    root.addHandler(handler)
