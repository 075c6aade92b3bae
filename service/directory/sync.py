"""The directory sync: a company grant's org chart becomes people, managers and accounts.

A pass reads every page of the directory (`DirectoryConnector.list_people`). Each page is
stored in its own short transaction together with the token of the page after it, so a page
that fails half-way is read again on the next run and the pass goes on from there; the
provider's page token is opaque to us (Admin SDK ``nextPageToken``, Graph ``@odata.nextLink``).
Nothing is taken away before a pass is complete: only then are people the pass did not list
marked as gone (`left_at`), and managers resolved (a manager may be listed on a later page
than their reports). People the directory suspends stop at once: their accounts are disabled
(no sync, no writes), their series end, and the outbox sends them nothing.

After each page and at the end of the pass the series of the people whose manager changed
are linked again (`service.pairs.service.refresh_pair_link`): the org chart names the
manager, and a changed manager starts a new pair while the old pair keeps its history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import DirectoryConnector, DirectoryPerson
from connectors.errors import ConnectorError
from service.accounts.crypto import Vault
from service.accounts.models import AccountStatus, DirectoryGrant
from service.accounts.service import ensure_grant_accounts, set_accounts_status
from service.db import chunks
from service.pairs.service import end_series_of, refresh_pair_link, series_of_people
from service.people.models import Person
from service.people.names import clean_name

log = logging.getLogger(__name__)

MAX_PAGES = 5000  # one run never reads more (500 people a page: 2.5 million people)
SUSPENDED = "suspended in the company directory"
LEFT = "no longer in the company directory"


class DirectorySyncError(RuntimeError):
    """The directory could not be read (the reason is one line, stored on the grant)."""


@dataclass
class DirectorySyncResult:
    """What one run did; `complete` once a whole pass was read (only then can people leave)."""

    grant_id: int
    pages: int = 0
    seen: int = 0
    added: int = 0
    changed: int = 0
    suspended: int = 0
    left: int = 0
    managers_changed: int = 0
    accounts_added: int = 0
    series_ended: int = 0
    complete: bool = False
    unknown_managers: set[str] = field(default_factory=set)  # as the directory names them

    def summary(self) -> str:
        """One line for the CLI and the log (no addresses)."""
        state = "complete" if self.complete else "not complete yet (resumes next run)"
        text = (f"grant {self.grant_id}: {self.pages} pages, {self.seen} people seen, "
                f"{self.added} added, {self.changed} changed, {self.suspended} suspended, "
                f"{self.left} left, {self.managers_changed} managers changed, "
                f"{self.accounts_added} calendars to watch, {self.series_ended} series ended")
        if self.unknown_managers:
            text += f", {len(self.unknown_managers)} managers outside the directory's scope"
        return f"{text}; pass {state}"


Progress = Callable[[DirectorySyncResult], None]


def sync_directory(factory: sessionmaker[Session], *, grant_id: int,
                   connector: DirectoryConnector, vault: Vault, now: datetime,
                   max_pages: int = MAX_PAGES,
                   progress: Progress | None = None) -> DirectorySyncResult:
    """Read the grant's directory from where the last run stopped; see the module docstring.

    A page that cannot be read raises the connector's error (`connectors.errors`) after its
    reason is stored on the grant; what earlier pages stored stays, and the next run starts
    at the failed page.
    """
    result = DirectorySyncResult(grant_id)
    with factory.begin() as session:
        grant = _grant(session, grant_id)
        if grant.directory_page_token is None:
            grant.directory_pass += 1  # a new pass
        token = grant.directory_page_token
    while result.pages < max_pages:
        try:
            page = connector.list_people(token)
        except ConnectorError as err:
            _record_failure(factory, grant_id=grant_id, now=now,
                            reason=f"{err.__class__.__name__}: {err}")
            raise
        if page.next_page_token is not None and page.next_page_token == token:
            _record_failure(factory, grant_id=grant_id, now=now,
                            reason="the directory returned the same page token twice")
            raise DirectorySyncError(f"grant {grant_id}: the directory returned the same "
                                     "page token twice; stopped")
        with factory.begin() as session:
            grant = _grant(session, grant_id)
            _store_page(session, grant=grant, people=page.people, vault=vault, now=now,
                        result=result)
            grant.directory_page_token = page.next_page_token
            if page.next_page_token is None:
                _complete_pass(session, grant=grant, now=now, result=result)
        result.pages += 1
        token = page.next_page_token
        if progress is not None:
            progress(result)
        if token is None:
            break
    log.info("directory sync %s", result.summary())
    return result


def _grant(session: Session, grant_id: int) -> DirectoryGrant:
    grant = session.get(DirectoryGrant, grant_id)
    if grant is None:
        raise DirectorySyncError(f"no company grant with id {grant_id} "
                                 "(see `rapport directory list`)")
    return grant


def _record_failure(factory: sessionmaker[Session], *, grant_id: int, now: datetime,
                    reason: str) -> None:
    with factory.begin() as session:
        grant = _grant(session, grant_id)
        grant.last_error, grant.last_error_at = reason[:500], now
    log.warning("directory sync grant %s failed: %s", grant_id, reason[:200])


def _manager_ref(entry: DirectoryPerson) -> str | None:
    """How the directory names the manager: "<user id>|<address>" (either may be empty)."""
    if not entry.manager_id and not entry.manager_email:
        return None
    return f"{entry.manager_id or ''}|{(entry.manager_email or '').lower()}"


def _store_page(session: Session, *, grant: DirectoryGrant, people: list[DirectoryPerson],
                vault: Vault, now: datetime, result: DirectorySyncResult) -> None:
    """Upsert one page's people; suspensions take effect at once, accounts are added."""
    ids = [p.id for p in people]
    emails = [p.email.lower() for p in people]
    by_id = {p.directory_id: p for p in session.scalars(select(Person).where(
        Person.directory_grant_id == grant.id, Person.directory_id.in_(ids)))}
    by_email = {p.email: p for p in session.scalars(select(Person).where(
        Person.email.in_(emails)))}
    stopped: set[str] = set()
    listed: list[tuple[Person, DirectoryPerson, bool]] = []
    for entry in people:
        email = entry.email.lower()
        person = by_id.get(entry.id) or by_email.get(email)
        result.seen += 1
        if person is None:
            person = Person(email=email, display_name=clean_name(entry.name),
                            time_zone=entry.time_zone)
            session.add(person)
            by_email[email] = person
            result.added += 1
        else:
            before = (person.email, person.display_name, person.time_zone, person.suspended,
                      person.left_at, person.directory_grant_id)
            if person.email != email and email not in by_email:
                person.email = email  # renamed in the directory; the same person
            person.display_name = clean_name(entry.name) or person.display_name
            person.time_zone = entry.time_zone or person.time_zone
            if before != (person.email, person.display_name, person.time_zone,
                          entry.suspended, None, grant.id):
                result.changed += 1
        was_stopped = person.suspended or person.left_at is not None
        person.directory_grant_id, person.directory_id = grant.id, entry.id
        person.directory_manager_ref = _manager_ref(entry)
        person.directory_seen_pass = grant.directory_pass
        person.suspended, person.left_at = entry.suspended, None
        listed.append((person, entry, was_stopped))
    session.flush()  # one flush for the page: new people get their ids
    active: list[tuple[int, str, str]] = []
    for person, entry, was_stopped in listed:
        if entry.suspended:
            if not was_stopped:
                result.suspended += 1
                stopped.add(person.email)
                set_accounts_status(session, person_id=person.id,
                                    status=AccountStatus.DISABLED, reason=SUSPENDED)
            continue
        if was_stopped:  # back in the directory, or no longer suspended
            for reason in (SUSPENDED, LEFT):
                set_accounts_status(session, person_id=person.id, status=AccountStatus.ACTIVE,
                                    reason=None, only_reason=reason)
        active.append((person.id, person.email, entry.id))
    result.accounts_added += ensure_grant_accounts(session, vault=vault, grant=grant,
                                                   people=active)
    result.series_ended += end_series_of(session, emails=stopped, now=now)


def _complete_pass(session: Session, *, grant: DirectoryGrant, now: datetime,
                   result: DirectorySyncResult) -> None:
    """The whole directory was read: who left, who manages whom, which series relink."""
    gone = list(session.scalars(select(Person).where(
        Person.directory_grant_id == grant.id, Person.left_at.is_(None),
        Person.directory_seen_pass.is_(None)
        | (Person.directory_seen_pass < grant.directory_pass))))
    for person in gone:
        person.left_at = now
        set_accounts_status(session, person_id=person.id, status=AccountStatus.DISABLED,
                            reason=LEFT)
    result.left += len(gone)
    result.series_ended += end_series_of(session, emails={p.email for p in gone}, now=now)
    named, moved = _resolve_managers(session, grant=grant, result=result)
    relinked = 0
    for series in series_of_people(session, named - moved):  # the org chart's first word
        refresh_pair_link(session, series)
        relinked += 1
    for series in series_of_people(session, moved):  # a new manager: a new pair
        refresh_pair_link(session, series, keep_history_before=now)
        relinked += 1
    grant.last_directory_sync_at = now
    grant.last_error = grant.last_error_at = None
    result.complete = True
    if result.unknown_managers:
        log.warning("directory sync grant %s: %d managers are outside the directory's scope "
                    "(their reports keep no manager)", grant.id, len(result.unknown_managers))
    if relinked:
        log.info("directory sync grant %s: %d series linked again after manager changes",
                 grant.id, relinked)


def _resolve_managers(session: Session, *, grant: DirectoryGrant,
                      result: DirectorySyncResult) -> tuple[set[str], set[str]]:
    """Set each listed person's `manager_id` from the directory's reference: by user id
    within the grant, else by address (a manager outside the scope counts only when Rapport
    knows them). Returns the addresses of the people whose manager was set or changed, and
    of those among them who had another manager before."""
    people = list(session.scalars(select(Person).where(
        Person.directory_grant_id == grant.id, Person.left_at.is_(None))))
    by_id = {p.directory_id: p for p in people}
    by_email = {p.email: p for p in people}
    wanted = {ref.partition("|")[2] for p in people if (ref := p.directory_manager_ref)}
    missing = sorted(e for e in wanted if e and e not in by_email)
    for chunk in chunks(missing):
        for known in session.scalars(select(Person).where(Person.email.in_(chunk))):
            by_email[known.email] = known
    named: set[str] = set()
    moved: set[str] = set()
    for person in people:
        target = None
        if person.directory_manager_ref:
            user_id, _, email = person.directory_manager_ref.partition("|")
            target = by_id.get(user_id) if user_id else None
            target = target or (by_email.get(email) if email else None)
            if target is None:
                result.unknown_managers.add(email or user_id)
        new = target.id if target is not None and target.id != person.id else None
        if person.manager_id != new:
            if person.manager_id is not None:
                result.managers_changed += 1
                moved.add(person.email)
            person.manager_id = new
            named.add(person.email)
    return named, moved


def active_grant_ids(session: Session) -> list[int]:
    """Every company grant whose directory is read (active), oldest first."""
    return list(session.scalars(select(DirectoryGrant.id).where(
        DirectoryGrant.status == AccountStatus.ACTIVE).order_by(DirectoryGrant.id)))
