"""Fixtures of the gateway's own tests: the Flask test client in front of the REAL customer
service, on the real broker.

- ``customer_service``: one customer service process for the whole session (started as
  ``make up`` starts it, SQLite in a temporary folder), on the gateway tests' own RabbitMQ
  vhost (``gateway_uri``, named after the session's vhost of ``crm_kit.pytest_plugin`` and
  removed with it); ``app``/``api``/``module_api`` point there. The other services (sales,
  service_desk, marketing, analytics) do not run there, except in the tests that ask for them.
- ``idle_api``: a gateway on a second vhost where no customer service was ever deployed (503).
- ``spare_customer_service`` + ``spare_api``: a second, throw-away customer service on a third
  vhost, for what must not happen to the shared one: paused (504), database broken (500),
  stopped (503); ``spare_customer_service_on_postgresql``: the same on PostgreSQL.
- ``sales_service``: the real sales service, for one test (the 360 view's sales sections);
  ``analytics_service``: the real analytics service, for one test (the 360 view's scores);
  ``other_services``: a slow or broken marketing and, on request, an analytics with odd scores
  (personal data in them, which the real one never gives; see ``other_services.py``), for one
  test.
Tests share the customer service, never data: each creates its own customers (unique mobiles,
``gateway_support.unique_mobile``) and reads back only those.
"""
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def _load_support():
    """Make ``gateway_support`` importable by the test modules without putting this folder on
    sys.path (pytest runs with --import-mode=importlib; other suites have a ``conftest`` too)."""
    if "gateway_support" not in sys.modules:
        path = Path(__file__).resolve().parent / "gateway_support.py"
        spec = importlib.util.spec_from_file_location("gateway_support", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gateway_support"] = module
        spec.loader.exec_module(module)
    return sys.modules["gateway_support"]


_support = _load_support()
Api, make_app, CUSTOMER_SPEC = _support.Api, _support.make_app, _support.CUSTOMER_SPEC

from crm_kit.rpc_client import RpcClient, ServiceTimeout, ServiceUnavailable  # noqa: E402
from crm_kit.testing import ServiceProcess, wait_until  # noqa: E402
from crm_gateway import rpc  # noqa: E402

SALES_SPEC = "sales_service.service:SalesService"
SERVICE_DESK_SPEC = "service_desk_service.service:ServiceDeskService"
ANALYTICS_SPEC = "analytics_service.service:AnalyticsService"


def _start_customer_service(amqp_uri, data_dir, database_url=None):
    database_url = database_url or f"sqlite:///{data_dir / 'customer.db'}"
    service = ServiceProcess(CUSTOMER_SPEC, amqp_uri, database_url, data_dir, name="customer")
    service.database_url = database_url
    service.start()
    try:
        _wait_for_rpc(amqp_uri, service)
    except BaseException:
        service.kill()
        raise
    return service


def _wait_for_rpc(amqp_uri, service):
    """Until the service answers ``ping``: its /readyz may say ready a moment before its RPC
    consumer is registered with the broker (nameko starts both at once)."""
    name = service.name

    def answers():
        if service.process.poll() is not None:
            raise AssertionError(f"the {name} service exited:\n{service.log()}")
        try:
            return client.call(name, "ping")["status"] == "ok"
        except (ServiceUnavailable, ServiceTimeout):
            return False

    with RpcClient(amqp_uri, timeout=1, client_name="gateway-tests-ready") as client:
        wait_until(answers, timeout=30, interval=0.05, message=f"the {name} service's RPCs")


@pytest.fixture(scope="session")
def gateway_uri(vhost):
    """The gateway tests' own vhost, next to the session's (``crm_kit.pytest_plugin``): the
    customer service below runs for the whole session, and on the session's vhost it would
    share the ``rpc-customer`` queue with the services that later suites start (the e2e
    system), each answering every other call."""
    name = f"{vhost}-gateway"
    _support.add_vhost(name)
    yield amqp_of(name)
    rpc.close_all()  # before the vhost goes: the process-wide clients would try to reconnect
    _support.delete_vhost(name)


@pytest.fixture(scope="session")
def customer_service(gateway_uri, tmp_path_factory):
    """The real customer service, one process for the whole gateway test session."""
    service = _start_customer_service(gateway_uri, tmp_path_factory.mktemp("customer-service"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def broker_uri(gateway_uri, customer_service):
    """Where the gateway apps of the tests call the customer service."""
    return gateway_uri


@pytest.fixture
def app(tmp_path, broker_uri):
    return make_app(tmp_path, broker_uri)


@pytest.fixture
def api(app):
    return Api(app)


@pytest.fixture(scope="module")
def module_api(tmp_path_factory, broker_uri):
    """One app for a module (role tokens are costly: scrypt); tests create their own data."""
    return Api(make_app(tmp_path_factory.mktemp("gateway"), broker_uri))


@pytest.fixture(scope="session")
def service_rpc(broker_uri):
    """The tests' own RPC client to the services (setup only: a stagnation scan, sales data)."""
    with RpcClient(broker_uri, timeout=10, client_name="gateway-tests") as client:
        yield client


# ---------------------------------------------------------------- other vhosts

@pytest.fixture(scope="session")
def idle_uri(vhost):
    """A vhost where no customer service was ever deployed."""
    name = f"{vhost}-idle"
    _support.add_vhost(name)
    yield amqp_of(name)
    rpc.close_all()
    _support.delete_vhost(name)


@pytest.fixture(scope="module")
def idle_api(tmp_path_factory, idle_uri):
    return Api(make_app(tmp_path_factory.mktemp("gateway-idle"), idle_uri))


@pytest.fixture(scope="session")
def spare_uri(vhost):
    """A vhost for a second customer service that tests pause, break or stop."""
    name = f"{vhost}-spare"
    _support.add_vhost(name)
    yield amqp_of(name)
    rpc.close_all()
    _support.delete_vhost(name)


def amqp_of(vhost_name):
    from crm_kit.pytest_plugin import BROKER_HOST

    return f"amqp://guest:guest@{BROKER_HOST}:5672/{vhost_name}"


@pytest.fixture
def spare_customer_service(spare_uri, tmp_path):
    """A second real customer service (own database), killed after the test."""
    service = _start_customer_service(spare_uri, tmp_path / "spare-customer")
    yield service
    if service.process.poll() is None:
        os.kill(service.process.pid, signal.SIGCONT)
    service.kill()


@pytest.fixture
def spare_customer_service_on_postgresql(spare_uri, tmp_path, postgres_database):
    """The second customer service on PostgreSQL, as deployed (docker-compose.yml)."""
    service = _start_customer_service(spare_uri, tmp_path / "spare-customer-pg",
                                      postgres_database("customer"))
    yield service
    service.kill()


@pytest.fixture
def spare_api(tmp_path, spare_uri):
    return Api(make_app(tmp_path / "gateway-spare", spare_uri))


def pause(service):
    """SIGSTOP: the process keeps its broker connection (so its queue has a consumer) but
    answers nothing, like a service stuck in a long pause."""
    os.kill(service.process.pid, signal.SIGSTOP)


@pytest.fixture
def paused_customer_service(spare_customer_service):
    pause(spare_customer_service)
    return spare_customer_service


# ---------------------------------------------------------------- the other services

@pytest.fixture
def sales_service(broker_uri, customer_service, tmp_path):
    """The real sales service on the gateway tests' vhost for one test; afterwards its RPC
    queue is deleted so that, for every other test, sales is not deployed there."""
    service = ServiceProcess(SALES_SPEC, broker_uri, f"sqlite:///{tmp_path / 'sales.db'}",
                             tmp_path / "sales", name="sales")
    try:
        service.start()
        _wait_for_rpc(broker_uri, service)
        yield service
    finally:
        service.kill()
        _support.delete_queues(broker_uri, "rpc-sales")


@pytest.fixture
def service_desk_service(broker_uri, customer_service, sales_service, tmp_path):
    """The real service desk on the gateway tests' vhost for one test; its RPC queue is deleted
    afterwards, as for sales."""
    service = ServiceProcess(SERVICE_DESK_SPEC, broker_uri,
                             f"sqlite:///{tmp_path / 'service_desk.db'}", tmp_path / "desk",
                             name="service_desk")
    try:
        service.start()
        _wait_for_rpc(broker_uri, service)
        yield service
    finally:
        service.kill()
        _support.delete_queues(broker_uri, "rpc-service_desk")


@pytest.fixture
def analytics_service(broker_uri, customer_service, tmp_path):
    """The real analytics service on the gateway tests' vhost for one test (its store fills from
    the events of the customers created after it started); afterwards its RPC queue and its
    event queues are deleted, so that for every other test analytics is not deployed there."""
    service = ServiceProcess(ANALYTICS_SPEC, broker_uri,
                             f"sqlite:///{tmp_path / 'analytics.db'}", tmp_path / "analytics",
                             name="analytics")
    try:
        service.start()
        _wait_for_rpc(broker_uri, service)
        yield service
    finally:
        service.kill()
        _support.delete_queues(broker_uri, "rpc-analytics",
                               *_event_queues_of(broker_uri, "analytics"))


def _event_queues_of(amqp_uri, service):
    """The queues of a service's event handlers on the vhost of ``amqp_uri`` (nameko names
    them ``evt-<source>-<event type>--<service>.<method>``)."""
    vhost = amqp_uri.rsplit("/", 1)[1]
    listed = _support._rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name")
    return [name for name in listed.stdout.split()
            if name.startswith("evt-") and f"--{service}." in name]


@pytest.fixture
def other_services(broker_uri, customer_service, tmp_path):
    """``start(marketing, odd_analytics=False)``: the stand-ins of ``other_services.py`` on the
    gateway tests' vhost for one test (marketing ``slow`` or ``broken``; with ``odd_analytics``
    an analytics whose scores carry personal data); afterwards their queues are deleted so
    that, for every other test, those services are not deployed."""
    processes = []
    stand_ins = ["marketing"]

    def start(marketing, odd_analytics=False):
        log_path = tmp_path / f"other-services-{len(processes)}.log"
        if odd_analytics:
            stand_ins.append("analytics")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).parent / "other_services.py"), broker_uri,
                 marketing, *(["analytics"] if odd_analytics else [])],
                stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)

        def answering():
            if process.poll() is not None:
                raise AssertionError(f"other_services.py exited:\n{log_path.read_text()}")
            try:
                return all(client.call(service, "ping") for service in stand_ins)
            except (ServiceUnavailable, ServiceTimeout):
                return False

        with RpcClient(broker_uri, timeout=2, client_name="gateway-tests-ready") as client:
            wait_until(answering, timeout=30, interval=0.05, message="the stand-in services")
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.kill()
            process.wait()
        _support.delete_queues(broker_uri, *(f"rpc-{service}" for service in set(stand_ins)))


@pytest.fixture
def customer_calls(customer_service):
    """``customer_calls()``: RPCs the shared customer service has run so far; equal before and
    after a request means the request never reached the service."""
    return lambda: _support.rpc_calls_served(customer_service)
