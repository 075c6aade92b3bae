"""`service.db.insert_returning`: many rows in one INSERT, as ORM objects, and nothing of them
left in the session when their savepoint or transaction rolls back."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.bulk import insert_returning
from service.people.models import Person
from tests.statements import statements


def test_rows_come_back_as_objects_from_one_insert(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session, statements(factory, startswith="INSERT") as inserts:
        made = insert_returning(session, Person, [{"email": f"p{i}@x.test"} for i in range(5)])
        assert len(inserts) == 1
        assert sorted(p.email for p in made) == [f"p{i}@x.test" for i in range(5)]
        assert all(session.get(Person, p.id) is p for p in made)


def test_a_rolled_back_savepoint_leaves_none_of_its_rows_in_the_session(
        factory: sessionmaker[Session]) -> None:
    """The ORM expunges on rollback only what it flushed itself: rows of a rolled-back bulk
    INSERT would stay in the identity map as if stored, and a later row given the same id
    would be confused with them."""
    with factory.begin() as session:
        kept = insert_returning(session, Person, [{"email": "kept@x.test"}])
        try:
            with session.begin_nested():
                gone = insert_returning(session, Person, [{"email": "gone@x.test"}])
                with session.begin_nested():  # released into the savepoint that rolls back
                    inner = insert_returning(session, Person, [{"email": "inner@x.test"}])
                raise LookupError
        except LookupError:
            pass
        assert gone[0] not in session and inner[0] not in session
        assert kept[0] in session
        again = insert_returning(session, Person, [{"email": "gone@x.test"}])
        assert again[0] in session and again[0] is not gone[0]
    with factory() as session:
        emails = set(session.scalars(select(Person.email)))
        assert {"kept@x.test", "gone@x.test"} <= emails and "inner@x.test" not in emails
        assert session.scalar(select(func.count()).select_from(Person)
                              .where(Person.email == "gone@x.test")) == 1
