"""`rapport connect microsoft-tenant`: one Microsoft 365 app grant for the whole company."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from application.cli.command import cli_of
from application.cli.workspace_cmd import sync_directory_now
from application.context import EXIT_CONFIG, fail, friendly_errors
from service.accounts.crypto import Vault
from service.calendars.microsoft_tenant import (
    checked_tenant,
    connect_microsoft_tenant,
    read_certificate,
    read_client_secret,
)


def connect_microsoft_tenant_cmd(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(
        help="Directory (tenant) ID, or a domain of the tenant.")],
    client_id: Annotated[str, typer.Option(
        help="Application (client) ID of the app registration.")],
    client_secret_file: Annotated[Path | None, typer.Option(
        help="A file holding the client secret's value.")] = None,
    certificate: Annotated[Path | None, typer.Option(
        help="One PEM file with the app certificate and its private key.")] = None,
) -> None:
    """Connect a Microsoft 365 tenant with application access (admin consent once)."""
    cli = cli_of(ctx)
    if (client_secret_file is None) == (certificate is None):
        fail("give exactly one of --client-secret-file FILE or --certificate PEM", EXIT_CONFIG)
    with friendly_errors():  # bad input is reported before anything is set up
        name = checked_tenant(tenant)
        credentials = read_client_secret(client_secret_file) if client_secret_file \
            else read_certificate(certificate)  # type: ignore[arg-type]
        vault = Vault.from_settings(cli.settings)
    with cli.session(write=True) as session:
        grant = connect_microsoft_tenant(session, settings=cli.settings, vault=vault,
                                         tenant=name, client_id=client_id.strip(),
                                         credentials=credentials)
        grant_id = grant.id
        how = "a client secret" if "client_secret" in credentials else \
            f"certificate {credentials['thumbprint']}"
        typer.echo(f"Connected Microsoft 365 tenant {grant.name} (grant {grant_id}): app "
                   f"{client_id.strip()} with {how} reads the directory and each person's "
                   "calendar.")
    sync_directory_now(cli, grant_id)

