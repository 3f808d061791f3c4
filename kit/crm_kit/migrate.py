"""Migrate one database and exit: the body of the migrate-only commands.

    python -m crm_kit.run --migrate-only customer_service.service:CustomerService
    python -m crm_gateway.migrate

Each command runs the same upgrade its process runs at start (so the same serialisation: the
kit's PostgreSQL advisory lock, and for the gateway also its start-up file lock) and
reports it in one line on stdout::

    customer: migrated sqlite:////data/customer.db from <none> to 0002_b (applied 0001_a, 0002_b)
    customer: sqlite:////data/customer.db already at 0002_b, nothing to apply

or, exiting 1, one line on stderr: the database cannot be reached, or a migration failed.
The revision before is read outside the lock: a replica starting at the same moment may have
applied some of the migrations listed.
"""
import sys
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from crm_kit import migrations
from crm_kit.config import normalize_database_url, redact_uri

NONE = "<none>"


def current_heads(database_url):
    """The revisions the database is at (empty: none yet); connects, so raises if unreachable."""
    if database_url.startswith("sqlite:///") and \
            not Path(database_url[len("sqlite:///"):]).exists():
        return ()  # a new file: the upgrade creates it (and its folder)
    engine = create_engine(normalize_database_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def _applied(script_location, database_url, before, after):
    script = ScriptDirectory.from_config(migrations.alembic_config(script_location, database_url))
    revisions = script.revision_map.iterate_revisions(after, before or "base")
    return [r.revision for r in reversed(list(revisions))]


def _reason(exc):
    """The error in one line, without SQLAlchemy's SQL and links (the driver's own text)."""
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return f"{type(getattr(exc, 'orig', None) or exc).__name__}: {' '.join(text.split())}"[:500]


def migrate_only(name, script_location, database_url, upgrade=None, out=None, err=None):
    """Bring ``database_url`` to the newest migration of ``script_location`` and report it;
    ``upgrade``: what the process runs at start (default ``migrations.upgrade``). Returns the
    exit status: 0 done (or nothing to do), 1 unreachable or failed."""
    out, err = out or sys.stdout, err or sys.stderr
    where = redact_uri(database_url)
    try:
        before = current_heads(database_url)
    except Exception as exc:  # any reason the database cannot be used
        print(f"{name}: cannot reach the database at {where} ({_reason(exc)})", file=err)
        return 1
    try:
        if upgrade is None:
            migrations.upgrade(script_location, database_url)
        else:
            upgrade()
        after = current_heads(database_url)
    except Exception as exc:
        print(f"{name}: migrating the database at {where} failed ({_reason(exc)})", file=err)
        return 1
    shown = ", ".join(after) or NONE
    if after == before:
        print(f"{name}: {where} already at {shown}, nothing to apply", file=out)
    else:
        applied = _applied(script_location, database_url, before, after)
        print(f"{name}: migrated {where} from {', '.join(before) or NONE} to {shown} "
              f"(applied {', '.join(applied)})", file=out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit("usage: python -m crm_kit.run --migrate-only package.module:ServiceClass "
             "(the gateway: python -m crm_gateway.migrate)")
