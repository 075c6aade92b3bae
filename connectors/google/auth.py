"""Credentials for the Google connector: auth is handed in, refreshed by google-auth.

Refresh follows https://developers.google.com/identity/protocols/oauth2/web-server#offline;
a revoked grant makes the refresh fail with ``invalid_grant``, which the connector turns
into `AuthRevoked` at the HTTP edge (`connectors.google.client`).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.oauth2.credentials import Credentials

# The smallest scopes that do the job: events read/write (agenda block, watch), the calendar
# list, and free/busy. For the consent flow in service/.
CALENDAR_SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.freebusy",
)


def google_credentials(
    refresh_token: str,
    client_id: str,
    client_secret: str,
    token_uri: str,
    *,
    scopes: Sequence[str] | None = None,
    access_token: str | None = None,
) -> Credentials:
    """User credentials that refresh themselves at `token_uri` (Google's or the sandbox's)."""
    return Credentials(
        token=access_token,
        refresh_token=refresh_token,
        client_id=client_id,
        client_secret=client_secret,
        token_uri=token_uri,
        scopes=list(scopes) if scopes is not None else None,
    )
