"""Where the demo keeps its data: the normal data folder, so every other command sees it.

The demo writes into RAPPORT_DATA_DIR (default ./rapport-data) like any other command, so
`rapport pairs`, `metrics`, `digest` and `run` afterwards show what it found. It never mixes
with real data: a folder whose database holds accounts that are not the demo team's is
refused, and only a demo-only folder is cleared for a fresh start.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from sandbox.team import DOMAIN
from service.accounts.models import Account, AccountStatus, DirectoryGrant
from service.settings import Settings

DEMO_LOG = "demo.log"
PAUSED_REASON = ("a demo account: its sandbox stopped when the demo ended "
                 "(`rapport demo --keep` brings it back)")
DEMO_DOMAIN = f"@{DOMAIN}"  # everyone of the demo company, team included, is on it
_DATABASE_FILES = ("rapport.db", "rapport.db-wal", "rapport.db-shm", "rapport.db-journal")


class DemoRefused(Exception):
    """The data folder cannot hold the demo without mixing it with real data."""


def database_file(settings: Settings) -> Path:
    """The embedded SQLite file the demo uses (and every command uses by default)."""
    return settings.data_dir / "rapport.db"


def foreign_accounts(db_file: Path) -> list[str]:
    """Accounts in `db_file` that are not the demo company's ("provider:email"), sorted."""
    if not db_file.exists():
        return []
    engine = create_engine(f"sqlite:///{db_file.resolve()}")
    try:
        if not inspect(engine).has_table("accounts"):
            return []
        with engine.connect() as conn:
            rows = conn.execute(select(text("provider"), text("email"))
                                .select_from(text("accounts"))).all()
    finally:
        engine.dispose()
    return sorted(f"{provider}:{email}" for provider, email in rows
                  if not str(email).lower().endswith(DEMO_DOMAIN))


def check_folder(settings: Settings) -> None:
    """Refuse (`DemoRefused`, one line) when the demo would mix with real data."""
    if settings.database_url:
        raise DemoRefused(
            "RAPPORT_DATABASE_URL is set; the demo runs on the embedded database in "
            f"{settings.data_dir} so it never mixes with real data: unset it to run the demo")
    foreign = foreign_accounts(database_file(settings))
    if foreign:
        raise DemoRefused(
            f"{settings.data_dir} already holds {len(foreign)} accounts that are not the "
            f"demo's (e.g. {foreign[0]}): run the demo in another folder, e.g. "
            "RAPPORT_DATA_DIR=./rapport-demo rapport demo")


def clear_previous(settings: Settings) -> None:
    """Remove an earlier demo's database, emails and log, for a fresh start.

    Only called after `check_folder`, so nothing here belongs to anyone but the demo; the
    secret key stays (it is the folder's, and a kept key never hurts)."""
    for name in (*_DATABASE_FILES, DEMO_LOG):
        (settings.data_dir / name).unlink(missing_ok=True)
    outbox = settings.data_dir / "outbox"  # the demo's outbox (see demo.sandbox_settings)
    if outbox.is_dir():
        for eml in outbox.glob("*.eml"):
            eml.unlink()


def pause_demo_accounts(factory: sessionmaker[Session]) -> int:
    """Disable the demo team's accounts as the sandboxes stop; returns how many.

    Their grants point at sandbox ports that are gone, so a later `rapport run` or
    `sync --once` would only collect connection errors (or send sandbox tokens to the real
    providers). Paused, they keep their data for `pairs`, `metrics`, `digest` and the pages;
    the next demo reconnects them (`save_account` makes them active again)."""
    with factory.begin() as session:
        result = session.execute(
            update(Account)
            .where(Account.email.endswith(DEMO_DOMAIN))
            .values(status=AccountStatus.DISABLED, status_reason=PAUSED_REASON))
        session.execute(update(DirectoryGrant).values(status=AccountStatus.DISABLED,
                                                      status_reason=PAUSED_REASON))
    return int(getattr(result, "rowcount", 0) or 0)
