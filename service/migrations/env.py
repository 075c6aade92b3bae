"""Alembic environment: runs on the engine Rapport hands in (or the configured URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import service.models  # noqa: F401  (registers every table)
from service.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Run migrations online; SQLite needs batch mode for ALTERs."""
    engine = config.attributes.get("connection_engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run()
