"""Engine creation and migrations. SQLite for the embedded default, PostgreSQL for replicas."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.errors import ConfigError, TransientError
from bot.store.write_turns import take_turns

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x626F745F6D6967  # pg_advisory_xact_lock key: "bot_mig"


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, durable commits, a busy timeout and write turns
    (:mod:`bot.store.write_turns`)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        take_turns(engine)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    raise ConfigError(
        f"BOT_DATABASE_URL: unsupported database {url.split(':', 1)[0]!r}; "
        "use sqlite:///path or postgresql+psycopg://user@host/db"
    )


def check_connection(engine: Engine) -> None:
    """Raise TransientError with a readable reason when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TransientError(f"database unreachable: {reason}") from exc


class SchemaTooNew(ConfigError):
    """The database was migrated by a newer build than this one."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def schema_head() -> str:
    """The newest schema revision this build knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def check_schema(conn: Connection) -> str | None:
    """The database's schema revision (None: not migrated yet); raises :class:`SchemaTooNew`
    when this build does not know it."""
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        return None
    script = ScriptDirectory.from_config(_config())
    try:
        known = script.get_revision(current) is not None
    except AlembicError:
        known = False
    if not known:
        raise SchemaTooNew(
            f"database schema {current} is newer than this build's {schema_head()}: "
            "deploy the newer image or roll the database back"
        )
    return current


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration up to head (idempotent).

    On PostgreSQL the upgrade runs under a transaction-scoped advisory lock, so replicas
    starting together migrate one after the other (the later ones find nothing to do). A build
    older than the database's schema refuses with :class:`SchemaTooNew`.
    """
    config = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        check_schema(conn)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back on error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
