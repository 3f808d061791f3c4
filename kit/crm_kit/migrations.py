"""Alembic migrations, run by each service at start (and by ``alembic`` for authors).

A service's ``migrations/env.py`` is two lines::

    from crm_kit.migrations import run_env
    from customer_service.models import Base
    run_env(Base.metadata)

Its database then holds the service's tables and the kit's (outbox, inbox, dead letters).
On PostgreSQL an advisory lock makes two instances starting at once migrate one after the other.
"""
import contextlib
import zlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import engine_from_config, pool, text

from crm_kit.config import normalize_database_url
from crm_kit.models import kit_metadata


def alembic_config(script_location, database_url):
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    database_url = normalize_database_url(database_url)
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(script_location, database_url, revision="head"):
    """Bring the database at ``database_url`` up to ``revision``."""
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(script_location, database_url), revision)


def run_env(metadata, *more):
    """The body of every service's ``env.py``; ``more``: other metadata the service's
    database holds (``crm_kit.audit.audit_metadata`` for a service keeping an audit trail)."""
    targets = [metadata, kit_metadata, *more]
    cfg = context.config
    if context.is_offline_mode():
        context.configure(url=cfg.get_main_option("sqlalchemy.url"), target_metadata=targets,
                          literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    engine = engine_from_config(cfg.get_section(cfg.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection, migration_lock(connection):
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead
        context.configure(connection=connection, target_metadata=targets,
                          render_as_batch=connection.dialect.name != "postgresql",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


@contextlib.contextmanager
def migration_lock(connection):
    """On PostgreSQL, one migration run at a time per database (a session advisory lock):
    replicas starting together and the migrate-only Job wait for each other. SQLite needs
    none (one process per file)."""
    is_postgres = connection.dialect.name == "postgresql"
    lock_key = zlib.crc32(b"crm-migrations")
    if is_postgres:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
        connection.commit()
    try:
        yield
    finally:
        if is_postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
            connection.commit()
