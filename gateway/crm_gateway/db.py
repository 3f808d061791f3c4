"""The staff database: engine, sessions, and migrations at start-up."""
import contextlib
import fcntl
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from crm_kit.db import make_engine as kit_make_engine
from crm_kit.migrations import upgrade as kit_upgrade

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url):
    """The kit's engine (WAL and busy timeout on SQLite, psycopg2 on PostgreSQL), with a pool
    sized for gunicorn's threads rather than for one eventlet process."""
    return kit_make_engine(url, pool_size=10, max_overflow=20)


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
    kit_upgrade(MIGRATIONS_DIR, database_url)


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
