"""Connecting accounts: consent flows and credential imports, for the CLI and the demo.

Both providers end the same way: we learn the account's email from the provider itself,
store the grant encrypted, and remember the primary calendar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from connectors.base import CalendarInfo
from connectors.microsoft.connector import GraphConnector
from service.accounts.crypto import Vault
from service.accounts.models import Account
from service.accounts.service import save_account
from service.calendars.connectors import ca_verify, google_connector, msal_provider
from service.calendars.service import save_calendars
from service.settings import Settings

log = logging.getLogger(__name__)

GOOGLE_FIELDS = ("client_id", "client_secret", "refresh_token")
MICROSOFT_FIELDS = ("client_id", "refresh_token")


class CredentialsFileError(ValueError):
    """The credentials file is missing, not JSON, or lacks a field (named in the message)."""


def read_credentials_file(path: Path, *, required: tuple[str, ...]) -> dict[str, Any]:
    """Load a credentials JSON file and check it has what we need (values never printed)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CredentialsFileError(f"{path}: no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise CredentialsFileError(f"{path}: cannot be read ({err.__class__.__name__})") from err
    except json.JSONDecodeError as err:
        raise CredentialsFileError(f"{path}: not valid JSON (line {err.lineno})") from err
    if not isinstance(data, dict):
        raise CredentialsFileError(f"{path}: expected a JSON object")
    missing = [f for f in required if not data.get(f)]
    if missing:
        raise CredentialsFileError(f"{path}: missing {', '.join(missing)}")
    return data


def _primary(calendars: list[CalendarInfo]) -> CalendarInfo:
    for info in calendars:
        if info.is_primary:
            return info
    raise CredentialsFileError("the account has no primary calendar Rapport can read")


def connect_google(session: Session, *, settings: Settings, vault: Vault,
                   credentials: dict[str, Any]) -> Account:
    """Store a Google "authorized_user" grant after checking it works (one cheap call)."""
    stored = {
        "type": "authorized_user",
        "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"],
        "refresh_token": credentials["refresh_token"],
        "token_uri": credentials.get("token_uri") or settings.google_token_url,
    }
    calendars = google_connector(settings, stored).list_calendars()
    primary = _primary(calendars)
    email = (primary.owner_email or primary.id).lower()
    account = save_account(session, vault=vault, provider="google", email=email,
                           credentials=stored, time_zone=primary.time_zone)
    save_calendars(session, account=account, calendars=calendars)
    return account


def connect_microsoft(session: Session, *, settings: Settings, vault: Vault,
                      client_id: str, authority: str | None,
                      sign_in: Callable[[Any], str]) -> Account:
    """Store a Microsoft grant; `sign_in(provider)` runs a flow and returns the username."""

    stored: dict[str, Any] = {"client_id": client_id,
                              "authority": authority or settings.microsoft_authority}
    tokens = msal_provider(settings, stored)
    username = sign_in(tokens)
    stored["cache"] = tokens.serialize()
    stored["username"] = username
    connector = GraphConnector(token_provider=tokens, api_url=settings.graph_api_url,
                               verify=ca_verify(settings))
    calendars = connector.list_calendars()
    email = (connector.owner_email() or username).lower()
    stored["cache"] = tokens.serialize()
    account = save_account(session, vault=vault, provider="microsoft", email=email,
                           credentials=stored)
    save_calendars(session, account=account, calendars=calendars)
    return account


def connect_with_refresh_token(session: Session, *, settings: Settings, vault: Vault,
                               provider: str, client_id: str, refresh_token: str,
                               client_secret: str | None = None) -> Account:
    """Import an existing grant for either provider (headless servers, the demo, tests)."""
    if provider == "google":
        return connect_google(session, settings=settings, vault=vault, credentials={
            "client_id": client_id, "client_secret": client_secret,
            "refresh_token": refresh_token})
    if provider == "microsoft":
        return import_microsoft_refresh_token(session, settings=settings, vault=vault,
                                              credentials={"client_id": client_id,
                                                           "refresh_token": refresh_token})
    raise ValueError(f"unknown provider {provider!r}")


def import_microsoft_refresh_token(session: Session, *, settings: Settings, vault: Vault,
                                   credentials: dict[str, Any]) -> Account:
    """Headless servers: migrate an existing refresh token into an MSAL cache."""
    return connect_microsoft(
        session, settings=settings, vault=vault, client_id=credentials["client_id"],
        authority=credentials.get("authority"),
        sign_in=lambda tokens: tokens.import_refresh_token(credentials["refresh_token"]))
