"""Connecting a Google Workspace company grant: one service account with domain-wide
delegation for every person of the domain (or of one org unit or group).

The key file is checked before anything is stored (a JSON service-account key, its private
key readable), then the grant itself: one directory call as the admin, and a token for the
calendar scopes, so a client id the Admin console has not authorised for every scope is
refused now, not at the first sync. The key is stored encrypted like every grant
(`save_grant`); the people come from the directory sync.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from connectors.google.auth import (
    CALENDAR_SCOPES,
    DIRECTORY_MEMBERS_SCOPE,
    DIRECTORY_USERS_SCOPE,
    delegated_credentials,
)
from connectors.google.client import fetch_token
from service.accounts.crypto import Vault
from service.accounts.models import DirectoryGrant
from service.accounts.service import save_grant
from service.calendars.connectors import google_directory
from service.calendars.onboarding import CredentialsFileError, read_credentials_file
from service.settings import Settings
from service.tls import outgoing_ca_bundle

log = logging.getLogger(__name__)

KEY_FIELDS = ("type", "client_email", "private_key", "token_uri")


class WorkspaceScopeError(ValueError):
    """The grant's narrowing options do not fit together (named in the message)."""


@dataclass(frozen=True)
class WorkspaceGrant:
    """What was granted: the stored grant, and the scopes the admin authorised."""

    grant: DirectoryGrant
    client_id: str
    scopes: tuple[str, ...]


def workspace_scopes(*, group: bool) -> tuple[str, ...]:
    """Every scope the Admin console entry must list: calendars, directory (and groups)."""
    directory = (DIRECTORY_USERS_SCOPE,) + ((DIRECTORY_MEMBERS_SCOPE,) if group else ())
    return CALENDAR_SCOPES + directory


def read_service_account_key(path: Path) -> dict[str, Any]:
    """Load a service-account key file; anything else is a one-line `CredentialsFileError`.

    The shape is the JSON key Google Cloud console downloads
    (https://cloud.google.com/iam/docs/keys-create-delete): ``"type": "service_account"``,
    ``client_email``, ``private_key`` (PEM) and ``token_uri``.
    """
    data = read_credentials_file(path, required=())
    if data.get("type") != "service_account":
        kind = f"its type is {str(data['type'])[:40]!r}" if data.get("type") else "no type"
        raise CredentialsFileError(
            f"{path}: not a service-account key ({kind}); "
            "download a JSON key of the service account in Google Cloud console, "
            "IAM > Service accounts > Keys")
    missing = [f for f in KEY_FIELDS if not data.get(f)]
    if missing:
        raise CredentialsFileError(f"{path}: the service-account key lacks {', '.join(missing)}")
    try:
        delegated_credentials(data, "check@example.invalid", CALENDAR_SCOPES)
    except (ValueError, TypeError) as err:
        raise CredentialsFileError(
            f"{path}: its private_key is not a readable PEM private key") from err
    return data


def grant_scope(*, admin: str, domain: str | None, org_unit: str | None,
                group: str | None) -> dict[str, str]:
    """What narrows the directory, as stored on the grant (only the options given)."""
    if org_unit and group:
        raise WorkspaceScopeError("give --org-unit or --group, not both")
    if "@" not in admin:
        raise WorkspaceScopeError(f"--admin {admin!r} is not an email address")
    if org_unit is not None and not org_unit.startswith("/"):
        raise WorkspaceScopeError(f"--org-unit {org_unit!r} must be a full path such as /Sales")
    scope = {"admin": admin.lower()}
    for name, value in (("domain", domain), ("org_unit", org_unit), ("group", group)):
        if value:
            scope[name] = value.lower() if name != "org_unit" else value
    return scope


def connect_google_workspace(session: Session, *, settings: Settings, vault: Vault,
                             key: dict[str, Any], scope: dict[str, str]) -> WorkspaceGrant:
    """Check the grant works (one directory call, one calendar token, as the admin), then
    store it under the domain's name; raises `ConnectorError`s when Google refuses."""
    google_directory(settings, key, scope, page_size=1).list_people()
    fetch_token(delegated_credentials(key, scope["admin"], CALENDAR_SCOPES),
                ca_bundle=outgoing_ca_bundle(settings))
    name = scope.get("domain") or scope["admin"].split("@", 1)[1]
    grant = save_grant(session, vault=vault, provider="google", name=name, scope=scope,
                       credentials=key)
    return WorkspaceGrant(grant, str(key.get("client_id", "")),
                          workspace_scopes(group="group" in scope))
