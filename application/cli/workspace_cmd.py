"""`rapport connect google-workspace`: one service account for the whole company.

Each refusal Google can give here gets one line saying what to do in the Admin console or
in Google Cloud console; nothing is stored unless the grant works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from application.cli.command import Cli, cli_of
from application.cli.directory_cmd import sync_and_tell
from application.context import EXIT_AUTH, EXIT_CONFIG, fail, friendly_errors
from connectors.errors import AuthRevoked, ConnectorError, DelegationRefused, Forbidden
from service.accounts.crypto import Vault
from service.calendars.workspace import (
    WorkspaceGrant,
    WorkspaceScopeError,
    connect_google_workspace,
    grant_scope,
    read_service_account_key,
    workspace_scopes,
)


def connect_google_workspace_cmd(
    ctx: typer.Context,
    service_account: Annotated[Path, typer.Option(
        help="The service account's JSON key (Google Cloud console > IAM > Service accounts "
             "> Keys).")],
    admin: Annotated[str, typer.Option(
        help="A Workspace admin the service account acts as to read the directory.")],
    domain: Annotated[str | None, typer.Option(
        help="Only this domain of the account (default: every domain).")] = None,
    org_unit: Annotated[str | None, typer.Option(
        help="Only people in this org unit and below, e.g. /Sales.")] = None,
    group: Annotated[str | None, typer.Option(
        help="Only the members of this group (address).")] = None,
) -> None:
    """Connect a Google Workspace domain through domain-wide delegation."""
    cli = cli_of(ctx)
    with friendly_errors():
        key = read_service_account_key(service_account)
        vault = Vault.from_settings(cli.settings)
    try:
        scope = grant_scope(admin=admin, domain=domain, org_unit=org_unit, group=group)
    except WorkspaceScopeError as err:
        fail(str(err), EXIT_CONFIG)
    with cli.session(write=True) as session:
        try:
            result = connect_google_workspace(session, settings=cli.settings, vault=vault,
                                              key=key, scope=scope)
        except ConnectorError as err:
            fail(*refusal(err, client_id=str(key.get("client_id", "")), admin=admin,
                          group=bool(group)))
            raise AssertionError("unreachable") from err
        grant_id = result.grant.id
        _print_granted(result, scope)
    sync_directory_now(cli, grant_id)


def refusal(err: ConnectorError, *, client_id: str, admin: str,
            group: bool) -> tuple[str, int]:
    """One line and an exit code for each way Google refuses the grant."""
    if isinstance(err, DelegationRefused):
        return (f"Google refused the service account (unauthorized_client): in the Admin "
                f"console open Security > Access and data control > API controls > Manage "
                f"Domain Wide Delegation and add "
                f"client id {client_id or '(see the key file)'} with the scopes "
                f"{','.join(workspace_scopes(group=group))}; then run this again"), EXIT_AUTH
    if isinstance(err, AuthRevoked):
        return (f"Google would not let the service account act as {admin} (invalid_grant): "
                "check the address is an active user of the domain and the key is not "
                "deleted or disabled"), EXIT_AUTH
    if isinstance(err, Forbidden):
        return (f"the directory refused {admin}: the address must be a Workspace admin "
                f"allowed to read users (and the domain, org unit or group must be theirs) "
                f"[{err}]"), EXIT_AUTH
    return f"Google could not be reached or refused: {err}", 1


def _print_granted(result: WorkspaceGrant, scope: dict[str, str]) -> None:
    """Say what was granted, in a few lines."""
    if "group" in scope:
        reach = f"members of {scope['group']}"
    elif "org_unit" in scope:
        reach = f"people in {scope['org_unit']} and below"
    else:
        reach = f"everyone in {scope.get('domain') or 'every domain of the account'}"
    typer.echo(f"Connected Google Workspace {result.grant.name} (grant {result.grant.id}): "
               f"{reach}, read as {scope['admin']}.")
    typer.echo(f"Calendars are read and written as each person with: "
               f"{', '.join(s.rsplit('/', 1)[-1] for s in result.scopes)}.")


def sync_directory_now(cli: Cli, grant_id: int) -> None:
    """The first directory sync of a new grant, at once (`rapport directory sync`'s own code):
    a failure is one line, and the scheduled sync resumes it."""
    sync_and_tell(cli, grant_id)
