"""Graph series masters' iCalUIds kept in the database, for the Graph connector.

Graph's calendarView delta lists occurrences with their master's id, never the master, and
an occurrence's own iCalUId is not the series'; the connector lists a calendar's masters
once, or reads one, to learn it (`connectors.microsoft.connector`). Kept here, per account
(master ids are the mailbox's event ids), no process lists or reads a master again once any
process has: a restarted worker, a second worker and a full resync all find it. The
connector never sees the database; it gets this store (its `SeriesUidStore`) from
`AccountConnectors`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.calendars.models import GraphSeriesUid
from service.db import chunks, dialect_insert, read_session


class StoredSeriesUids:
    """The `SeriesUidStore` of one account, in its own short transactions.

    Called while a page is being fetched, when the sync holds no transaction
    (`service.sync.calendar_sync` commits before every provider call), so the write never
    waits on the sync's own lock."""

    def __init__(self, factory: sessionmaker[Session], account_id: int) -> None:
        self.factory = factory
        self.account_id = account_id

    def load(self, master_ids: Collection[str]) -> dict[str, str]:
        """The iCalUIds known for those masters (one query per `chunks()` of ids)."""
        ids = sorted(set(master_ids))
        found: dict[str, str] = {}
        with read_session(self.factory) as session:
            for chunk in chunks(ids):
                rows = session.execute(
                    select(GraphSeriesUid.master_id, GraphSeriesUid.ical_uid).where(
                        GraphSeriesUid.account_id == self.account_id,
                        GraphSeriesUid.master_id.in_(chunk)))
                found.update((master, uid) for master, uid in rows)
        return found

    def save(self, uids: Mapping[str, str]) -> None:
        """Keep newly learnt iCalUIds (on a first sync, every master the calendar's list
        gave); one another worker saved first stays (same fact)."""
        if not uids:
            return
        with self.factory.begin() as session:
            session.execute(
                dialect_insert(session, GraphSeriesUid)
                .values([{"account_id": self.account_id, "master_id": master, "ical_uid": uid}
                         for master, uid in sorted(uids.items())])
                .on_conflict_do_nothing(index_elements=["account_id", "master_id"]))
