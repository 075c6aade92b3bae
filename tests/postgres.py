"""A throwaway PostgreSQL database for tests that need the real server's behaviour."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text


@contextmanager
def postgres_database(prefix: str = "rapport_test") -> Iterator[str]:
    """A new database on RAPPORT_TEST_POSTGRES_URL's server, dropped afterwards; the test
    is skipped without that variable (and fails under CI, where it must be set)."""
    admin_url = os.environ.get("RAPPORT_TEST_POSTGRES_URL")
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail("RAPPORT_TEST_POSTGRES_URL must be set under CI")
        pytest.skip("set RAPPORT_TEST_POSTGRES_URL to run against PostgreSQL")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
