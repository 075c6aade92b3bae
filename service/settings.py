"""The one settings object, read from ``RAPPORT_*`` environment variables and passed down.

Embedded defaults need nothing: a SQLite file and an outbox folder under the data folder,
an in-process broker, the local calendar sandbox. Production parts come by configuration.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.config_values import TimeSpan, parse_smtp_url, parse_span

GOOGLE_API_URL = "https://www.googleapis.com/calendar/v3/"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_DIRECTORY_URL = "https://admin.googleapis.com/"  # Admin SDK Directory API root
# https://developers.google.com/identity/protocols/oauth2/web-server#httprest_1
GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GRAPH_API_URL = "https://graph.microsoft.com/v1.0"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/organizations"

DATABASE_BACKENDS = ("sqlite", "postgresql")
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _span_from_text(*, may_wrap: bool) -> BeforeValidator:
    """Read `HH:MM-HH:MM` from the environment; an already parsed span passes through."""
    def read(value: object) -> object:
        return parse_span(value, may_wrap=may_wrap) if isinstance(value, str) else value
    return BeforeValidator(read)


# NoDecode: pydantic-settings would otherwise try to read a tuple from the environment as JSON.
WorkingHours = Annotated[TimeSpan, NoDecode, _span_from_text(may_wrap=False)]
QuietHours = Annotated[TimeSpan, NoDecode, _span_from_text(may_wrap=True)]


class Settings(BaseSettings):
    """Everything an operator can set; secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", env_file=None, extra="ignore",
                                      validate_assignment=True)

    data_dir: Path = Field(default=Path("./rapport-data"))
    database_url: str | None = None  # default: sqlite file in data_dir
    broker_url: str | None = None  # unset: in-process worker; redis://... or amqp://...
    secret_key: SecretStr | None = None  # Fernet key; generated into data_dir when unset

    google_api_url: str = GOOGLE_API_URL
    google_token_url: str = GOOGLE_TOKEN_URL
    google_directory_url: str = GOOGLE_DIRECTORY_URL  # the company grant's directory
    google_auth_url: str = GOOGLE_AUTH_URL  # where the web sign-in sends people to consent
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None

    graph_api_url: str = GRAPH_API_URL
    microsoft_authority: str = MICROSOFT_AUTHORITY
    microsoft_client_id: str | None = None

    ca_bundle: Path | None = None  # one CA bundle for every outgoing HTTPS call

    public_url: str | None = None  # where webhooks can reach us; polling when unset
    http_host: str = "127.0.0.1"  # `rapport run` serves pages and webhooks here
    http_port: int = Field(default=8000, ge=1, le=65535)
    poll_interval_seconds: int = Field(default=300, ge=1)
    # A calendar with an unexpired push channel is polled only this often: its notifications
    # say when to sync, the poll is the fallback for a lost one.
    push_poll_fallback_seconds: int = Field(default=6 * 3600, ge=1)
    reconcile_interval_seconds: int = Field(default=60, ge=1)
    # Provider calls in flight at once per account: Graph allows 4 per mailbox
    # (learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits); Google
    # meters each user (developers.google.com/calendar/api/guides/quota).
    google_account_concurrency: int = Field(default=4, ge=1)
    microsoft_account_concurrency: int = Field(default=4, ge=1)
    # How often every company directory is read again (people, managers, who left).
    directory_sync_interval_seconds: int = Field(default=6 * 3600, ge=60)
    # Coverage: a direct report whose recurring 1:1 is rarer than this (or who has none).
    coverage_cadence_days: int = Field(default=14, ge=1)

    # Write agendas into occurrences starting within this many days, into this many per series.
    agenda_horizon_days: int = Field(default=7, ge=1)
    agenda_occurrences: int = Field(default=1, ge=1)
    kind_cadence: str = "regular,regular,development,regular,regular,core"  # rotation of 1:1 kinds

    # How far back and ahead a full sync (and Graph's calendar view window) reads.
    sync_lookback_days: int = Field(default=28, ge=0)
    sync_lookahead_days: int = Field(default=120, ge=1)

    cancellation_grace_hours: int = Field(default=24, ge=0)
    # A one-off meeting of the same two people counts as a reschedule when it falls before the
    # next regular occurrence; set a number of days to use a fixed window either side instead.
    reschedule_window_days: int | None = Field(default=None, ge=1)
    outbox_dir: Path | None = None  # default: data_dir / "outbox"
    smtp_url: SecretStr | None = None  # smtp://user:pass@host:587 (STARTTLS) or smtps://...
    mail_from: str = "Rapport <rapport@localhost>"
    alert_report_too: bool = False
    quiet_hours: QuietHours = (time(20, 0), time(7, 0))  # may wrap midnight
    working_hours: WorkingHours = (time(9, 0), time(17, 0))

    # The prep nudge (agenda so far and the page link) this long before each 1:1, moved into
    # the recipient's working hours; 0 sends none.
    prep_nudge_hours: int = Field(default=24, ge=0, le=24 * 14)

    digest_weekday: int = Field(default=0, ge=0, le=6)  # 0 = Monday
    digest_time: time = time(8, 0)

    web_secret: SecretStr | None = None  # signs manager links; derived from secret_key when unset
    link_ttl_days: int = Field(default=30, ge=1)  # a signed link stops working after this
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("kind_cadence")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        kinds = [k.strip().lower() for k in value.split(",") if k.strip()]
        unknown = sorted(set(kinds) - {"core", "development", "regular"})
        if not kinds or unknown:
            raise ValueError(
                "must list core, development or regular, comma separated"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        return ",".join(kinds)

    @field_validator("google_api_url", "google_token_url", "google_directory_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
        except ValueError as err:
            raise ValueError("is not a URL like https://host/") from err
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL (unset for Google's)")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError as err:
            raise ValueError("is not a database URL; use sqlite:///path/rapport.db or "
                             "postgresql+psycopg://user@host/rapport") from err
        if backend not in DATABASE_BACKENDS:
            raise ValueError(f"names the {backend!r} database; Rapport runs on sqlite or "
                             "postgresql (e.g. postgresql+psycopg://user@host/rapport)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError as err:
            raise ValueError("is not a URL like redis://host:6379/0") from err
        if parts.scheme not in BROKER_SCHEMES:
            raise ValueError("must be a redis://, rediss://, amqp:// or amqps:// URL "
                             "(unset for the in-process worker)")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_smtp_url(value.get_secret_value())  # its messages never repeat the URL
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().upper() not in LOG_LEVELS:
                raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
            return value.strip().upper()
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rapport.db').resolve()}"

    @property
    def resolved_outbox_dir(self) -> Path:
        """Where `.eml` files go when no SMTP server is configured."""
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def kinds(self) -> list[str]:
        """The configured rotation of 1:1 kinds."""
        return self.kind_cadence.split(",")
