"""The database: engines, the session of the bound runtime, migrations."""

import threading
import zlib
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from assist import runtime

MIGRATIONS = str(Path(__file__).with_name("migrations"))


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def sessions_for(url: str) -> sessionmaker:
    return sessionmaker(make_engine(url), expire_on_commit=False)


def engine() -> Engine:
    return runtime.current().sessions.kw["bind"]


def session() -> Session:
    """The session of the bound runtime's scope (a request, a job or a command)."""
    return runtime.session()


@contextmanager
def transaction():
    """Run a block in one transaction of the scope's session; commit or roll back."""
    s = session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


# -- one lane per contact ---------------------------------------------------------------------------------------
# Messages of one contact arriving at once (a burst of texts, a redelivery) are handled one after the other:
# each finds the case and the replies the one before it stored. On PostgreSQL a transaction takes an advisory
# lock on the contact's key (lane()); SQLite, for one process (the demo, development), holds a lock of the
# process around the whole of it (lane_of_process()).
_PROCESS_LANES = [threading.Lock() for _ in range(64)]


def lane(session: Session, key: str) -> None:
    """On PostgreSQL, wait for and hold the lane of key until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


@contextmanager
def lane_of_process(session: Session, key: str):
    """On SQLite, hold the lane of key in this process for the block (PostgreSQL: see lane())."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    with _PROCESS_LANES[zlib.crc32(key.encode()) % len(_PROCESS_LANES)]:
        yield
