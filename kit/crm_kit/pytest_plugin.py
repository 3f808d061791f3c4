"""pytest fixtures for every test suite of the project (``-p crm_kit.pytest_plugin``).

Each test session gets its own RabbitMQ virtual host (``crm-test-<pid>``), removed at the end,
so tests never see the messages of a running system or of another run; and PostgreSQL
databases are created per test and dropped after.
"""
import os
import subprocess
import uuid

import pytest

from crm_kit.testing import BrokerLink, ServiceProcess

BROKER_HOST = os.environ.get("CRM_TEST_BROKER_HOST", "127.0.0.1")
POSTGRES_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


def _rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="session")
def vhost():
    name = f"crm-test-{os.getpid()}"
    made = _rabbitmqctl("add_vhost", name)
    if made.returncode != 0:
        pytest.fail(f"cannot create RabbitMQ vhost {name}: {made.stderr.strip()}")
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def amqp_uri(vhost):
    return f"amqp://guest:guest@{BROKER_HOST}:5672/{vhost}"


@pytest.fixture
def broker_link():
    link = BrokerLink(BROKER_HOST, 5672)
    yield link
    link.close()


def _psql(database, sql):
    import psycopg2

    connection = psycopg2.connect(f"{POSTGRES_URL}/{database}")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture
def postgres_database():
    """A factory of fresh PostgreSQL databases (URLs), dropped after the test."""
    made = []

    def make(label="db"):
        name = f"crm_test_{label}_{uuid.uuid4().hex[:10]}"
        _psql("postgres", f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{POSTGRES_URL}/{name}"

    yield make
    for name in made:
        _psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_kind(request):
    return request.param


@pytest.fixture
def database_url(database_kind, tmp_path, postgres_database):
    """One database URL per run of the test: SQLite file, then PostgreSQL."""
    if database_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return postgres_database("svc")


@pytest.fixture
def start_service(amqp_uri, tmp_path):
    """``start_service(spec, database_url, **env)`` → a running ServiceProcess, stopped after."""
    started = []

    def start(spec, database_url, amqp=None, env=None, name=None):
        service = ServiceProcess(spec, amqp or amqp_uri, database_url, tmp_path / "data",
                                 env=env, name=name)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()
