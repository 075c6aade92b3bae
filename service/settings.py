"""The one settings object, read from ``RAPPORT_*`` environment variables and passed down.

Embedded defaults need nothing: a SQLite file and an outbox folder under the data folder,
an in-process broker, the local calendar sandbox. Production parts come by configuration.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GOOGLE_API_URL = "https://www.googleapis.com/calendar/v3/"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GRAPH_API_URL = "https://graph.microsoft.com/v1.0"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/organizations"


class Settings(BaseSettings):
    """Everything an operator can set; secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("./rapport-data"))
    database_url: str | None = None  # default: sqlite file in data_dir
    broker_url: str | None = None  # unset: in-process worker; redis://... or amqp://...
    secret_key: SecretStr | None = None  # Fernet key; generated into data_dir when unset

    google_api_url: str = GOOGLE_API_URL
    google_token_url: str = GOOGLE_TOKEN_URL
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None

    graph_api_url: str = GRAPH_API_URL
    microsoft_authority: str = MICROSOFT_AUTHORITY
    microsoft_client_id: str | None = None

    ca_bundle: Path | None = None  # one CA bundle for every outgoing HTTPS call

    public_url: str | None = None  # where webhooks can reach us; polling when unset
    http_host: str = "127.0.0.1"  # `rapport run` serves pages and webhooks here
    http_port: int = 8000
    poll_interval_seconds: int = 300
    reconcile_interval_seconds: int = 60

    agenda_horizon_days: int = 7  # write agendas into occurrences starting within this many days
    agenda_occurrences: int = 1  # how many upcoming occurrences per series get an agenda
    kind_cadence: str = "regular,regular,development,regular,regular,core"  # rotation of 1:1 kinds

    sync_lookback_days: int = 28  # how far back a full sync reads
    sync_lookahead_days: int = 120  # how far ahead a full sync (and Graph's window) reads

    cancellation_grace_hours: int = 24
    # A one-off meeting of the same two people counts as a reschedule when it falls before the
    # next regular occurrence; set a number of days to use a fixed window either side instead.
    reschedule_window_days: int | None = None
    outbox_dir: Path | None = None  # default: data_dir / "outbox"
    smtp_url: SecretStr | None = None  # smtp://user:pass@host:587 (STARTTLS) or smtps://...
    mail_from: str = "Rapport <rapport@localhost>"
    alert_report_too: bool = False
    quiet_hours: str = "20:00-07:00"
    working_hours: str = "09:00-17:00"

    digest_weekday: int = 0  # Monday
    digest_time: time = time(8, 0)

    web_secret: SecretStr | None = None  # signs manager links; derived from secret_key when unset
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("kind_cadence")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        kinds = [k.strip().lower() for k in value.split(",") if k.strip()]
        unknown = sorted(set(kinds) - {"core", "development", "regular"})
        if not kinds or unknown:
            raise ValueError(
                "kind_cadence must list core, development or regular, comma separated"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        return ",".join(kinds)

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
