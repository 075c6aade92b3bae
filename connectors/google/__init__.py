"""Google Calendar API v3 connector: client (HTTP edge), raw types, pure parsing, provider."""

from connectors.google.auth import CALENDAR_SCOPES, google_credentials
from connectors.google.provider import GoogleConnector

__all__ = ["CALENDAR_SCOPES", "GoogleConnector", "google_credentials"]
