"""The staff database: engine, sessions, and migrations at start-up."""
import contextlib
import fcntl
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL: readers (every authenticated request) never wait for a writer
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessionmaker(engine):
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def startup_lock(data_dir):
    """Serialise start-up work (migrations, first admin) between gunicorn workers of one host."""
    with open(Path(data_dir) / "gateway-startup.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(database_url):
    """``alembic upgrade head`` for the gateway's own migrations."""
    try:
        from crm_kit.migrations import upgrade as kit_upgrade
    except ImportError:  # an older kit: the same thing, locally
        kit_upgrade = _upgrade
    kit_upgrade(MIGRATIONS_DIR, database_url)


def _upgrade(script_location, database_url, revision="head"):
    from alembic import command
    from alembic.config import Config

    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def session():
    """The current request's database session (closed when the request ends)."""
    from flask import current_app, g

    if "db_session" not in g:
        g.db_session = current_app.extensions["crm_gateway"]["sessions"]()
    return g.db_session


def close_session(_exc=None):
    from flask import g

    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
