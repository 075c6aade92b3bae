"""Parsers for the values the settings hold, one per kind of value.

`Settings` runs them when the process starts, so a bad value is refused there with the
variable's name; the code that uses a value (slot search, quiet hours, SMTP) calls the same
parser or receives its result, so what was checked is exactly what is used. Messages never
repeat the value itself: an SMTP URL may carry a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SMTP_TIMEOUT = 30.0
_SPAN = re.compile(r"(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})")

TimeSpan = tuple[time, time]


def parse_span(value: str, *, may_wrap: bool = True) -> TimeSpan:
    """`"09:00-17:00"` -> (09:00, 17:00); with `may_wrap`, `"20:00-07:00"` spans midnight."""
    match = _SPAN.fullmatch(value.strip())
    if match is None:
        raise ValueError("must be a span like 09:00-17:00 (HH:MM-HH:MM, 24-hour clock)")
    hour1, minute1, hour2, minute2 = (int(part) for part in match.groups())
    try:
        begin, end = time(hour1, minute1), time(hour2, minute2)
    except ValueError as err:
        raise ValueError("must use times from 00:00 to 23:59, like 09:00-17:00") from err
    if not may_wrap and begin >= end:
        raise ValueError("must start before it ends on the same day, like 09:00-17:00")
    return begin, end


@dataclass(frozen=True)
class SmtpConfig:
    """What an `smtp://` / `smtps://` URL says; the password never reaches `repr`."""

    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "auto" | "require" | "never"
    username: str | None
    password: str | None
    timeout: float

    def __repr__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"smtp{'s' if self.implicit_tls else ''}://{user}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse `smtp[s]://user:pass@host:port?starttls=auto|require|never&timeout=30`."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must look like smtp://user:pass@host:587 or smtps://host:465")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError("has a port that is not a number from 1 to 65535") from err
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    starttls = query.get("starttls", "auto").lower()
    if starttls not in ("auto", "require", "never"):
        raise ValueError("starttls must be auto, require or never")
    try:
        timeout = float(query.get("timeout", DEFAULT_SMTP_TIMEOUT))
    except ValueError as err:
        raise ValueError("timeout must be a number of seconds") from err
    if timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    implicit = parts.scheme == "smtps"
    return SmtpConfig(
        host=parts.hostname,
        port=port or (465 if implicit else 587),
        implicit_tls=implicit,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )
