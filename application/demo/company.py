"""The demo's company path: one grant per provider, the org chart, and coverage.

Both sandboxes hold a generated company (`COMPANY_SIZE` people each, three levels of
managers). Only the seeded team and one Google team lead's reports have 1:1s on their
calendars; everyone else's calendar is empty. The grants are connected
with the same service functions `rapport connect google-workspace` and `rapport connect
microsoft-tenant` use, and the directory is read with the same `sync_directory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer
from sqlalchemy import func, select

from application.context import Started
from connectors.errors import ConnectorError
from sandbox.google.company import Company, DirectoryEntry, build_company, team_directory
from sandbox.google.sandbox import GoogleSandbox
from sandbox.microsoft.company import DISABLED, company_users
from sandbox.microsoft.sandbox import GraphSandbox
from sandbox.microsoft.tenants import DirectoryUser
from sandbox.team import TEAM, Population
from service.accounts.crypto import Vault
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.calendars.microsoft_tenant import connect_microsoft_tenant
from service.calendars.workspace import connect_google_workspace, grant_scope, workspace_scopes
from service.directory.sync import DirectorySyncError, sync_directory
from service.metrics.coverage import manager_coverage
from service.pairs.models import Pair
from service.people.models import Person

# People per provider. Every person the directory lists gets a watched calendar, and each
# costs a few provider calls per sync pass, so the demo keeps its company small enough for
# its five sync passes to stay quick; the benchmarks measure the large tenants.
COMPANY_SIZE = 40
LEADS_PER_HEAD = 1  # Google: 5 heads, 5 team leads, the rest in their teams


@dataclass(frozen=True)
class DemoCompany:
    """What the sandboxes were seeded with, for the demo to point at."""

    google: Company
    lead: str  # the Google team lead whose team has 1:1s (one organised by the report)
    self_organised: str  # a report of `lead` who organises their own 1:1


def build_demo_company() -> tuple[DemoCompany, Population, tuple[DirectoryEntry, ...],
                                  list[DirectoryUser]]:
    """The Google population and directory, and the Microsoft users, of the demo company."""
    company = build_company(COMPANY_SIZE, leads_per_head=LEADS_PER_HEAD)
    managers = {e.email: e.manager for e in company.directory}
    team_size = {lead: sum(1 for m in managers.values() if m == lead) for lead in managers}
    report = max(company.self_organised, key=lambda r: team_size.get(managers[r] or "", 0))
    lead = managers[report]
    assert lead is not None
    team_series = tuple(s for s in company.population.series
                        if lead in (s.organizer, *s.attendees))
    people = TEAM.people + tuple(p for p in company.population.people
                                 if p.email not in {t.email for t in TEAM.people})
    population = Population(people, TEAM.series + team_series)
    directory = team_directory(TEAM) + tuple(e for e in company.directory if not e.is_admin)
    return (DemoCompany(company, lead, report), population, directory,
            company_users(COMPANY_SIZE))


def connect_company(started: Started, google: GoogleSandbox, graph: GraphSandbox,
                    company: DemoCompany) -> list[int]:
    """One grant per provider, as the admins would give them; returns the grant ids."""
    rt = started.runtime
    vault = Vault.from_settings(rt.settings)
    key = google.mint_service_account_key()
    google.authorise_delegation(key["client_id"], list(workspace_scopes(group=False)))
    app = graph.register_app()
    with rt.factory.begin() as session:
        workspace = connect_google_workspace(
            session, settings=rt.settings, vault=vault, key=key,
            scope=grant_scope(admin=company.google.admin, domain=None, org_unit=None,
                              group=None))
        tenant = connect_microsoft_tenant(
            session, settings=rt.settings, vault=vault, tenant=app.tenant,
            client_id=app.client_id, credentials={"client_secret": str(app.secret)})
        return [workspace.grant.id, tenant.id]


def sync_directories(started: Started, grant_ids: list[int]) -> None:
    """Read each grant's directory (a failure is one line; the demo goes on)."""
    rt = started.runtime
    vault = Vault.from_settings(rt.settings)
    for grant_id in grant_ids:
        try:
            sync_directory(rt.factory, grant_id=grant_id,
                           connector=rt.connectors.directory_for(grant_id),
                           vault=vault, now=rt.clock())
        except (ConnectorError, DirectorySyncError) as err:
            typer.secho(f"grant {grant_id}: directory sync failed: {err}",
                        fg=typer.colors.YELLOW)


def print_grants(started: Started) -> None:
    """Each grant with the people its directory reached."""
    with started.runtime.factory() as session:
        rows = session.execute(
            select(DirectoryGrant.provider, DirectoryGrant.name, func.count(Person.id))
            .join(Person, Person.directory_grant_id == DirectoryGrant.id)
            .group_by(DirectoryGrant.id).order_by(DirectoryGrant.id)).all()
    typer.echo("\nCompany grants (one per provider, read from the company directory):")
    for provider, name, people in rows:
        what = "Google Workspace domain" if provider == "google" else "Microsoft 365 tenant"
        typer.echo(f"  {what} {name}: {people} people reached")


def print_org_chart(started: Started, company: DemoCompany) -> None:
    """Who manages whom for a self-organised 1:1, who is not watched, and coverage."""
    rt = started.runtime
    with rt.factory() as session:
        report = session.scalar(select(Person).where(Person.email == company.self_organised))
        pair = session.scalar(select(Pair).where(Pair.report_id == report.id)) \
            if report else None
        if report is not None and pair is not None:
            manager = session.get(Person, pair.manager_id)
            typer.echo(f"  {report.email} organises their own 1:1; the org chart makes "
                       f"{manager.email if manager else '?'} the manager of that pair.")
        for email in (company.google.suspended, DISABLED):
            watched = session.scalar(select(func.count(Account.id)).where(
                Account.email == email, Account.status == AccountStatus.ACTIVE))
            typer.echo(f"  {email} is suspended in the directory: "
                       f"{'still watched (!)' if watched else 'not watched'}.")
        lead = session.scalar(select(Person).where(Person.email == company.lead))
        coverage = manager_coverage(session, manager_id=lead.id,
                                    cadence_days=rt.settings.coverage_cadence_days) \
            if lead else None
    if coverage is not None:
        typer.echo(f"  Coverage: {coverage.sentence()}")


def change_manager(started: Started, google: GoogleSandbox, grant_ids: list[int],
                   company: DemoCompany) -> None:
    """The admin moves one person to another lead; the next directory sync follows."""
    mover, new_lead = company.google.manager_change
    before = _manager_email(started, mover)
    google.set_manager(mover, new_lead)
    sync_directories(started, grant_ids)
    typer.echo(f"  The admin moved {mover} away from {before}; after the next directory "
               f"sync the org chart names {_manager_email(started, mover)}.")


def _manager_email(started: Started, email: str) -> str:
    """Whom the stored org chart names as `email`'s manager ("nobody" when no one)."""
    with started.runtime.factory() as session:
        manager = session.scalar(select(Person.email).where(Person.id == select(
            Person.manager_id).where(Person.email == email).scalar_subquery()))
    return manager or "nobody"
