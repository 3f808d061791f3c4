"""The migrate-only commands, run as the Kubernetes Jobs run them (real processes, real databases):
``python -m crm_kit.run --migrate-only <module>:<Class>`` for a service (here the kit's sample
service) and ``python -m crm_gateway.migrate`` for the gateway.

Each brings an empty database to the newest migration and says so in one line; a second run
applies nothing; an unreachable database or a failing migration exits 1 with one line on stderr
and no password; and each waits for the locks the process takes at start (the kit's PostgreSQL
advisory lock, both; the gateway also its start-up file lock), so a Job and starting pods do not race.
"""
import fcntl
import importlib.util
import os
import subprocess
import sys
import zlib
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine, inspect, pool, text

from crm_kit.pytest_plugin import POSTGRES_URL
from crm_kit.testing import free_port, wait_until

SAMPLE = "sample.services:Producer"  # name kit_producer; migrations in kit/tests/sample
SAMPLE_TABLES = {"notes", "effects", "switches", "outbox_events", "processed_events",
                 "dead_letters", "alembic_version"}
GATEWAY_TABLES = {"staff", "login_failures", "audit_entries", "alembic_version"}
MIGRATIONS_LOCK = zlib.crc32(b"crm-migrations")  # crm_kit.migrations.migration_lock
HAS_GATEWAY = importlib.util.find_spec("crm_gateway") is not None


def command(app):
    if app == "gateway":
        return [sys.executable, "-m", "crm_gateway.migrate"]
    return [sys.executable, "-m", "crm_kit.run", "--migrate-only", SAMPLE]


def environment(app, database_url, data_dir):
    variable = "CRM_GATEWAY_DATABASE_URL" if app == "gateway" else "CRM_DATABASE_URL"
    env = dict(os.environ, CRM_DATA_DIR=str(data_dir), **{variable: database_url})
    env.pop("CRM_JWT_SECRET", None)  # the gateway's command must not need one
    return env


def migrate(app, database_url, data_dir):
    return subprocess.run(command(app), env=environment(app, database_url, data_dir),
                          cwd=data_dir, capture_output=True, text=True, timeout=300)


def start(app, database_url, data_dir):
    return subprocess.Popen(command(app), env=environment(app, database_url, data_dir),
                            cwd=data_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def tables(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://"),
                           poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def name_of(app):
    return "gateway" if app == "gateway" else "kit_producer"


@pytest.fixture
def scratch_database(database_kind, tmp_path, postgres_database):
    """An empty database: an SQLite file not yet created, or a PostgreSQL database (dropped
    after; the test is skipped only when PostgreSQL does not answer)."""
    if database_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'app.db'}"
    try:
        psycopg2.connect(f"{POSTGRES_URL}/postgres", connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} does not answer: {exc}")
    return postgres_database("migrate")


APPS = ["service", pytest.param("gateway", marks=pytest.mark.skipif(
    not HAS_GATEWAY, reason="crm_gateway is not installed in this venv"))]


@pytest.mark.parametrize("app", APPS)
def test_creates_the_schema_then_applies_nothing(app, scratch_database, tmp_path):
    first = migrate(app, scratch_database, tmp_path)
    assert first.returncode == 0, first.stderr
    [line] = first.stdout.splitlines()
    assert line.startswith(f"{name_of(app)}: migrated ") and " from <none> to " in line, line
    assert "(applied " in line
    expected = GATEWAY_TABLES if app == "gateway" else SAMPLE_TABLES
    assert expected <= tables(scratch_database)
    head = line.split(" to ", 1)[1].split(" ", 1)[0]
    assert line.endswith(f"{head})"), "the last migration applied is the head it reports"

    second = migrate(app, scratch_database, tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f"{name_of(app)}: {line.split(' migrated ', 1)[1].split(' from ', 1)[0]} "
        f"already at {head}, nothing to apply"]
    assert not (tmp_path / "jwt-secret").exists(), "migrating needs no signing key"


@pytest.mark.parametrize("app", APPS)
def test_an_unreachable_database_exits_1_with_one_line(app, tmp_path):
    url = f"postgresql://crm:s3cret-pw@127.0.0.1:{free_port()}/crm"  # nothing listens there
    run = migrate(app, url, tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""
    [message] = run.stderr.splitlines()  # nothing else: it never got to log anything
    assert message.startswith(f"{name_of(app)}: cannot reach the database at postgresql"), message
    assert "refused" in message.lower()
    assert "s3cret-pw" not in run.stderr and ":***@" in message


def test_a_failing_migration_exits_1_with_one_line(database_kind, scratch_database, tmp_path):
    engine = create_engine(scratch_database.replace("postgresql://", "postgresql+psycopg2://"),
                           poolclass=pool.NullPool)
    if database_kind == "sqlite":
        Path(scratch_database[len("sqlite:///"):]).parent.mkdir(parents=True)
    with engine.begin() as connection:  # in the way of the sample's first migration
        connection.execute(text("CREATE TABLE notes (x INTEGER)"))
    engine.dispose()
    run = migrate("service", scratch_database, tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""
    message = run.stderr.splitlines()[-1]  # after alembic's own log lines
    assert message.startswith("kit_producer: migrating the database at "), message
    assert " failed (" in message and "notes" in message and "already exists" in message
    assert "Traceback" not in run.stderr


def test_a_database_newer_than_the_code_is_a_failure(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert migrate("service", url, tmp_path).returncode == 0
    engine = create_engine(url)
    with engine.begin() as connection:  # as after a rollback to an older image
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    run = migrate("service", url, tmp_path)
    assert run.returncode == 1
    assert "failed (" in run.stderr.splitlines()[-1] and "9999_future" in run.stderr


def test_the_usage_is_checked():
    for argv in (["--migrate-only"], ["--migrate-nothing", SAMPLE], ["--migrate-only", "x"]):
        run = subprocess.run([sys.executable, "-m", "crm_kit.run", *argv], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 2, argv
        assert "usage: python -m crm_kit.run [--migrate-only]" in run.stderr


# ---------------------------------------------------------------- serialised with starting pods

@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("database_kind", ["postgresql"])
def test_the_command_waits_for_the_advisory_lock_starting_pods_take(app, scratch_database,
                                                                     tmp_path):
    holder = psycopg2.connect(scratch_database)  # a replica migrating at start, say
    holder.autocommit = True
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (MIGRATIONS_LOCK,))
        process = start(app, scratch_database, tmp_path)

        def waiting_for_the_lock():
            with holder.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d "
                               "ON d.oid = l.database WHERE l.locktype = 'advisory' "
                               "AND NOT l.granted AND d.datname = current_database()")
                return cursor.fetchone()[0] == 1

        wait_until(waiting_for_the_lock, timeout=60, message="the command to wait for the lock")
        assert process.poll() is None
        assert "alembic_version" not in tables(scratch_database)
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (MIGRATIONS_LOCK,))
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert " from <none> to " in out
    finally:
        holder.close()


@pytest.mark.skipif(not HAS_GATEWAY, reason="crm_gateway is not installed in this venv")
@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_the_gateway_waits_for_the_start_up_lock_its_workers_take(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    with open(tmp_path / "gateway-startup.lock", "w") as lock:  # crm_gateway.db.startup_lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        process = start("gateway", url, tmp_path)
        inode = os.fstat(lock.fileno()).st_ino

        def blocked_on_the_lock():  # "<n>: -> FLOCK ADVISORY WRITE <pid> <dev>:<inode> ..."
            waiting = [line.split() for line in Path("/proc/locks").read_text().splitlines()
                       if " -> " in line]
            return any(parts[5] == str(process.pid) and parts[6].endswith(f":{inode}")
                       for parts in waiting)

        wait_until(blocked_on_the_lock, timeout=60, message="the command to wait for the lock")
        assert process.poll() is None
        assert not (tmp_path / "gateway.db").exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.startswith("gateway: migrated ")
