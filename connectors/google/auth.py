"""Credentials for the Google connector: auth is handed in, refreshed by google-auth.

Refresh follows https://developers.google.com/identity/protocols/oauth2/web-server#offline;
a revoked grant makes the refresh fail with ``invalid_grant``, which the connector turns
into `AuthRevoked` at the HTTP edge (`connectors.google.client`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.oauth2 import service_account
from google.oauth2.credentials import Credentials

# The smallest scopes that do the job: events read/write (agenda block, watch), the calendar
# list, and free/busy. For the consent flow in service/.
CALENDAR_SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.freebusy",
)

# Domain-wide delegation (https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority):
# the directory read-only, and group membership read-only when the grant names a group.
DIRECTORY_USERS_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
DIRECTORY_MEMBERS_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"


def delegated_credentials(key: Mapping[str, Any], subject: str,
                          scopes: Sequence[str]) -> service_account.Credentials:
    """Service-account credentials acting as `subject` (domain-wide delegation); tokens come
    from the key file's own ``token_uri`` through the JWT-bearer grant."""
    base = service_account.Credentials.from_service_account_info(dict(key), scopes=list(scopes))
    return base.with_subject(subject)


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
