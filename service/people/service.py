"""People as Rapport keeps them: created on first sight, names filled in, email choices obeyed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.bulk import insert_returning
from service.db import chunks
from service.people.models import Person
from service.people.names import better_name, clean_name


def ensure_person(session: Session, *, email: str, display_name: str | None = None,
                  time_zone: str | None = None) -> Person:
    """The person with this email, created on first sight; fills in missing details."""
    email = email.lower()
    person = ensure_people(session, {email: display_name})[email]
    if time_zone and not person.time_zone:
        person.time_zone = time_zone
    return person


def ensure_people(session: Session, names: Mapping[str, str | None], *,
                  known: Mapping[str, Person] | None = None) -> dict[str, Person]:
    """The people with these emails (by lower-cased email), set-wise: one SELECT of those
    not in `known` (people the caller just read), one multi-row INSERT of the missing,
    created with the name given; a known person's missing name is filled in (`better_name`)."""
    wanted: dict[str, str | None] = {}
    for email, name in names.items():
        wanted[email.lower()] = better_name(wanted.get(email.lower()), name)
    people = {e: known[e] for e in wanted if known and e in known}
    people.update(people_by_email(session, wanted.keys() - people.keys()))
    for email, person in people.items():
        name = better_name(person.display_name, wanted[email])
        if name != person.display_name:
            person.display_name = name
    missing = [{"email": email, "display_name": clean_name(name)}
               for email, name in wanted.items() if email not in people]
    people.update((p.email, p) for p in insert_returning(session, Person, missing))
    return people


def people_by_email(session: Session, emails: Iterable[str]) -> dict[str, Person]:
    """The known people among these (lower-cased) emails, one query per 500."""
    wanted = sorted(set(emails))
    people: dict[str, Person] = {}
    for chunk in chunks(wanted):
        people.update((p.email, p) for p in session.scalars(
            select(Person).where(Person.email.in_(chunk))))
    return people


def remember_names(session: Session, names: Mapping[str, str | None], *,
                   known: Iterable[object] = ()) -> None:
    """Fill in the names providers sent for people Rapport already knows (by email).

    Only people who exist are touched: attendees of meetings that are not 1:1s do not
    become people. A stored name is kept (see `better_name`). `known`: people (among other
    rows) the caller holds; when they are all the names name, they are not read again.
    """
    wanted = {e.lower(): n for e, n in names.items() if clean_name(n)}
    if not wanted:
        return
    held = {p.email: p for p in known if isinstance(p, Person) and p.email in wanted}
    found = held.values() if held.keys() == wanted.keys() else \
        session.scalars(select(Person).where(Person.email.in_(list(wanted))))
    for person in found:
        name = better_name(person.display_name, wanted[person.email])
        if name != person.display_name:
            person.display_name = name


def set_opted_out(session: Session, *, email: str, opted_out: bool) -> Person:
    """Record that a person wants no Rapport email (or wants it again); every email obeys."""
    person = ensure_person(session, email=email)
    person.opted_out = opted_out
    return person
