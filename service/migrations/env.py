"""Alembic environment: runs on the engine Rapport hands in (or the configured URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import service.models  # noqa: F401  (registers every table)
from service.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Run migrations online; SQLite needs batch mode for ALTERs.

    A batch ALTER on SQLite copies the table and drops the old one, which foreign keys
    pointing at it forbid while ``PRAGMA foreign_keys`` is on; SQLite's documented recipe
    for such a change (https://www.sqlite.org/lang_altertable.html, "other kinds of table
    schema changes") is: foreign keys off outside the transaction, change, check with
    ``foreign_key_check``, foreign keys back on.
    """
    engine = config.attributes.get("connection_engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.driver_connection
        assert raw is not None  # a checked-out connection always has its driver's
        if sqlite:  # before SQLAlchemy begins: the pragma is a no-op inside a transaction
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=sqlite,
                    compare_type=True,
                )
                with context.begin_transaction():
                    context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration broke {len(broken)} foreign keys")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


run()
