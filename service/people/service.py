"""People as Rapport keeps them: created on first sight, names filled in, email choices obeyed."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.people.models import Person
from service.people.names import better_name, clean_name


def ensure_person(session: Session, *, email: str, display_name: str | None = None,
                  time_zone: str | None = None) -> Person:
    """The person with this email, created on first sight; fills in missing details."""
    email = email.lower()
    person = session.scalar(select(Person).where(Person.email == email))
    if person is None:
        person = Person(email=email, display_name=clean_name(display_name),
                        time_zone=time_zone)
        session.add(person)
        session.flush()
    else:
        name = better_name(person.display_name, display_name)
        if name != person.display_name:
            person.display_name = name
        if time_zone and not person.time_zone:
            person.time_zone = time_zone
    return person


def remember_names(session: Session, names: Mapping[str, str | None]) -> None:
    """Fill in the names providers sent for people Rapport already knows (by email).

    Only people who exist are touched: attendees of meetings that are not 1:1s do not
    become people. A stored name is kept (see `better_name`).
    """
    wanted = {e.lower(): n for e, n in names.items() if clean_name(n)}
    if not wanted:
        return
    for person in session.scalars(select(Person).where(Person.email.in_(list(wanted)))):
        name = better_name(person.display_name, wanted[person.email])
        if name != person.display_name:
            person.display_name = name


def set_opted_out(session: Session, *, email: str, opted_out: bool) -> Person:
    """Record that a person wants no Rapport email (or wants it again); every email obeys."""
    person = ensure_person(session, email=email)
    person.opted_out = opted_out
    return person
