"""Logging for operators: one line per event, JSON on request, and never a secret.

Library loggers (googleapiclient.discovery / .http, httplib2, urllib3, httpx, msal) print
request URLs at DEBUG, and a provider's 5xx error carries its URL into tracebacks at ERROR:
those URLs hold sync / page / delta tokens (the calendar's cursor) and calendar addresses.
So every record is cleaned where it is made (a log record factory, installed once): its
message with its arguments, and the text of its exception, at every level and for every
handler, pytest's included. Tokens become ``***``; an address inside a URL keeps only its
domain. Addresses in our own lines ("calendar 3 (maya@example.com)") are meant for operators
and stay.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from service.files import create_private_file
from service.settings import Settings

_SECRET = re.compile(
    r"(?i)(bearer\s+|access_token[\"'=:\s]+|refresh_token[\"'=:\s]+|client_secret[\"'=:\s]+|"
    r"id_token[\"'=:\s]+|password[\"'=:\s]+|clientstate[\"'=:\s]+|x-goog-channel-token[\"'=:\s]+)"
    r"[^\s\"'&,;]+"
)
# Cursors: Google's syncToken / pageToken (and next... in bodies), Graph's $deltatoken /
# $skiptoken (in deltaLink / nextLink), as a query parameter, URL-encoded, or a JSON field.
_CURSOR = re.compile(
    r"(?i)((?:next)?(?:sync|page)_?token|(?:\$|%24)?(?:delta|skip)_?token)"
    r"(%3D|[\"']?\s*[=:]\s*[\"']?)"
    r"(?:(?!%26)[^\s\"'&,;)<>\]])+"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
_URLISH = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|(?<![\w.])/)[^\s\"'<>]+")
_ADDRESS = re.compile(r"[\w.+-]+(@|%40)([\w-]+(?:\.[\w-]+)+)")
_ENCODED_ADDRESS = re.compile(r"[\w.+-]+%40([\w-]+(?:\.[\w-]+)+)")


def redact(text: str) -> str:
    """Mask secrets, cursors, URL passwords and the addresses inside URLs in a log line."""
    text = _SECRET.sub(lambda m: m.group(1) + "***", text)
    text = _CURSOR.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + "***@", text)
    text = _URLISH.sub(lambda m: _ADDRESS.sub(r"***\1\2", m.group(0)), text)
    return _ENCODED_ADDRESS.sub(r"***%40\1", text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Clean a record in place: message and arguments, exception and stack text."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a broken format: logging reports it when emitting
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        rendered = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact(rendered)  # formatters print exc_text when it is set
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """The same cleaning on a handler, for records made before the factory was installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Clean every log record where it is made (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_rapport_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    factory._rapport_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _exception_as_text(_logger: Any, _name: str, event: MutableMapping[str, Any]
                       ) -> MutableMapping[str, Any]:
    """JSON lines carry the cleaned exception text, never the raw exception object."""
    record = event.get("_record")
    if event.pop("exc_info", None) is not None and record is not None and record.exc_text:
        event["exception"] = record.exc_text
    return event


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to whatever `sys.stderr` is when a line is logged, as logging's
    own last-resort handler does: a `StreamHandler()` keeps the stream it was built with, and
    a command run inside another program (a test runner's captured stream, an embedding
    tool) may close that stream, after which every line fails ("I/O operation on closed
    file") instead of reaching the stderr in use."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Set by `StreamHandler.__init__` and `setStream` only; the stream is sys.stderr's."""


def configure_logging(settings: Settings) -> None:
    """Install one handler on the root logger (idempotent)."""
    install_redaction()
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_rapport", False):
            root.removeHandler(old)
    handler = _CurrentStderr()
    handler._rapport = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if settings.log_json:
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[structlog.processors.TimeStamper(fmt="iso"),
                               structlog.stdlib.add_log_level,
                               structlog.stdlib.add_logger_name,
                               _exception_as_text]))
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
