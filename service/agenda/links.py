"""The signed links to a pair's agenda page: one per person, in the invite and in emails.

An invite's links must be the same at every reconcile, because the block's content hash
decides whether a write is due: their expiry is derived from the occurrence, never from the
clock: its original start (which a move does not change, so moving a meeting costs no
rewrite either) plus a day plus RAPPORT_LINK_TTL_DAYS. A link still changes, and the invite
is rewritten once, when the person's links are revoked (their `links_version` is signed
in), so a withdrawn link never lingers in an invite.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.accounts.signing import AGENDA_PRIVATE, AGENDA_SHARED, agenda_url, link_key
from service.pairs.models import Occurrence, Pair
from service.people.models import Person
from service.people.names import name_or_address
from service.settings import Settings


def meeting_link_expiry(settings: Settings, occurrence: Occurrence) -> datetime:
    """When the links made for a meeting stop working: RAPPORT_LINK_TTL_DAYS after the day
    it was first planned for."""
    return occurrence.original_start + timedelta(days=1 + settings.link_ttl_days)


def person_link(settings: Settings, *, pair_id: int, person: Person, expires: datetime,
                private: bool = False, key: bytes | None = None) -> str:
    """One person's link to the pair's page; `private` (the manager's own emails only)
    opens the manager's preparation too."""
    return agenda_url(settings, scope=AGENDA_PRIVATE if private else AGENDA_SHARED,
                      pair_id=pair_id, person_id=person.id, expires=expires,
                      version=person.links_version or 0, key=key)


def invite_links(session: Session, settings: Settings, *, pair_id: int,
                 occurrence: Occurrence, key: bytes | None = None
                 ) -> tuple[tuple[str, str], ...]:
    """(name, shared link) of the report and then the manager, for the invite's block."""
    pair = session.get(Pair, pair_id)
    if pair is None:
        return ()
    key = key or link_key(settings)
    expires = meeting_link_expiry(settings, occurrence)
    links = []
    for person_id in (pair.report_id, pair.manager_id):
        person = session.get(Person, person_id)
        if person is not None:
            links.append((name_or_address(person, person.email),
                          person_link(settings, pair_id=pair_id, person=person,
                                      expires=expires, key=key)))
    return tuple(links)
