"""What every benchmark here needs the same way: scratch databases and the run's context
(CPU model, git revision, database version) for its results table."""
import platform
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_database(kind, postgres, label):
    """``(url, drop)``: an empty SQLite file in a temp folder, or a scratch PostgreSQL database
    on the server ``postgres`` (``postgresql://user@host:port``); ``drop()`` removes it."""
    if kind == "sqlite":
        directory = tempfile.mkdtemp(prefix=f"crm-bench-{label}-")
        return (f"sqlite:///{directory}/{label}.db",
                lambda: shutil.rmtree(directory, ignore_errors=True))
    import psycopg2

    name = f"crm_bench_{label}_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(f"{postgres}/postgres")
    connection.autocommit = True
    connection.cursor().execute(f'CREATE DATABASE "{name}"')
    connection.close()

    def drop():
        connection = psycopg2.connect(f"{postgres}/postgres")
        connection.autocommit = True
        connection.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()
    return f"{postgres}/{name}", drop


def reset_peak(pid):
    """Set the process's VmHWM back to its current VmRSS (``5`` into ``/proc/<pid>/clear_refs``,
    Linux ≥ 4.0), so a peak measured next is the peak of what follows; False if not permitted."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def git_revision():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except Exception:
        return "?"


def database_version(url):
    from sqlalchemy import text

    from crm_kit.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                return "PostgreSQL " + connection.execute(
                    text("SHOW server_version")).scalar().split()[0]
            return "SQLite " + connection.execute(text("select sqlite_version()")).scalar()
    finally:
        engine.dispose()
