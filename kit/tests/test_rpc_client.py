"""RpcClient against the real RabbitMQ (vhost ``crm-test``) and a real nameko service.

The nameko service runs in a subprocess (``nameko run`` monkey-patches with eventlet); this
test process stays free of eventlet, as the gateway is. Every wait has a deadline.
"""
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pika
import pytest

from crm_kit.logging import reset_correlation_id, set_correlation_id  # noqa: E402
from crm_kit.testing import BrokerLink, wait_until  # noqa: E402
from crm_kit.rpc_client import (  # noqa: E402
    RemoteError, RpcClient, ServiceTimeout, ServiceUnavailable,
)


SERVICE_SOURCE = '''
import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from crm_kit.errors import EXPECTED, Conflict, InvalidInput, NotFound


class WorkerContext(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


class EchoService:
    name = "{name}"
    worker = WorkerContext()

    @rpc
    def echo(self, value, suffix=""):
        return {{"value": value, "suffix": suffix}}

    @rpc
    def context(self):
        return {{"data": dict(self.worker.data), "call_id_stack": self.worker.call_id_stack}}

    @rpc(expected_exceptions=EXPECTED)
    def fail(self, kind):
        if kind == "not_found":
            raise NotFound("Customer c-1 does not exist.", {{"id": "c-1"}})
        if kind == "conflict":
            raise Conflict("The mobile number is taken.", {{"existing_id": "c-9"}})
        if kind == "invalid":
            raise InvalidInput({{"mobile": ["Not a mainland China mobile number."]}})
        raise RuntimeError("internal detail that must stay inside")

    @rpc
    def slow(self, seconds):
        eventlet.sleep(seconds)
        return "done"

    @rpc
    def ping(self):
        return "pong"
'''


class Broker:
    """Direct pika access for the test's own checks (queue state), separate from the client."""

    def __init__(self, uri):
        self.uri = uri

    def _connect(self):
        return pika.BlockingConnection(pika.URLParameters(self.uri))

    def consumer_count(self, queue):
        with self._connect() as connection:
            try:
                return connection.channel().queue_declare(queue, passive=True).method.consumer_count
            except pika.exceptions.ChannelClosedByBroker:
                return None

    def message_count(self, queue):
        with self._connect() as connection:
            return connection.channel().queue_declare(queue, passive=True).method.message_count

    def delete_queue(self, queue):
        with self._connect() as connection:
            connection.channel().queue_delete(queue)


class NamekoService:
    """``nameko run`` of the echo service in a subprocess; ``start``/``stop`` can repeat."""

    def __init__(self, workdir, name, broker):
        self.name = name
        self.queue = f"rpc-{name}"
        self.workdir = workdir
        self.broker = broker
        (workdir / f"{name}.py").write_text(SERVICE_SOURCE.format(name=name))
        (workdir / "config.yaml").write_text(f"AMQP_URI: {broker.uri}\n")
        self.process = None
        self.log = workdir / f"{name}.log"

    def start(self):
        env = dict(os.environ, PYTHONPATH=str(self.workdir))
        nameko = Path(sys.executable).with_name("nameko")
        self.process = subprocess.Popen(
            [str(nameko), "run", "--config", "config.yaml", self.name],
            cwd=self.workdir, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        wait_until(lambda: self._check_alive() and self.broker.consumer_count(self.queue),
                   message=f"{self.name} to consume its queue")

    def _check_alive(self):
        if self.process.poll() is not None:
            raise AssertionError(f"nameko exited:\n{self.log.read_text()}")
        return True

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture(scope="module")
def broker(amqp_uri):
    return Broker(amqp_uri)


@pytest.fixture(scope="module")
def echo(broker, tmp_path_factory):
    service = NamekoService(tmp_path_factory.mktemp("echo"), f"echo_{uuid.uuid4().hex[:8]}",
                            broker)
    service.start()
    yield service
    service.stop()
    broker.delete_queue(service.queue)


@pytest.fixture
def client(broker):
    rpc = RpcClient(broker.uri, timeout=2.0, client_name="test")
    yield rpc
    rpc.close()


def test_round_trip(client, echo):
    assert client.call(echo.name, "echo", {"n": 1}, suffix="!") == {"value": {"n": 1}, "suffix": "!"}


def test_many_threads_each_get_their_own_reply(client, echo):
    errors, mismatches = [], []

    def caller(thread_no):
        for call_no in range(50):
            try:
                reply = client.call(echo.name, "echo", [thread_no, call_no])
            except Exception as exc:  # collected, asserted below
                errors.append(exc)
                return
            if reply["value"] != [thread_no, call_no]:
                mismatches.append((thread_no, call_no, reply))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == [] and mismatches == []


@pytest.mark.parametrize("kind, exc_type, message, details", [
    ("not_found", "NotFound", "Customer c-1 does not exist.", {"id": "c-1"}),
    ("conflict", "Conflict", "The mobile number is taken.", {"existing_id": "c-9"}),
    ("invalid", "InvalidInput", "Some fields are invalid.",
     {"mobile": ["Not a mainland China mobile number."]}),
])
def test_business_errors_keep_type_message_and_details(client, echo, kind, exc_type, message,
                                                        details):
    with pytest.raises(RemoteError) as caught:
        client.call(echo.name, "fail", kind)
    assert caught.value.exc_type == exc_type
    assert caught.value.message == message
    assert caught.value.details == details
    assert caught.value.exc_args == [message, details]


def test_unexpected_error_and_unknown_method_are_remote_errors(client, echo):
    with pytest.raises(RemoteError) as caught:
        client.call(echo.name, "fail", "bug")
    assert caught.value.exc_type == "RuntimeError"
    assert caught.value.details == {}
    with pytest.raises(RemoteError) as caught:
        client.call(echo.name, "no_such_method")
    assert caught.value.exc_type == "MethodNotFound"


def test_unknown_service_fails_fast(client, broker):
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        client.call(f"never_deployed_{uuid.uuid4().hex[:8]}", "ping")
    assert time.monotonic() - started < 1.0


def test_slow_method_times_out_then_client_still_works(client, echo):
    started = time.monotonic()
    with pytest.raises(ServiceTimeout):
        client.call(echo.name, "slow", 3, timeout=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.5
    # the late reply of the slow call must not be taken for the next call's
    assert client.call(echo.name, "echo", "after")["value"] == "after"


def test_stopped_service_is_unavailable_then_recovers(broker, tmp_path):
    service = NamekoService(tmp_path, f"stopped_{uuid.uuid4().hex[:8]}", broker)
    rpc = RpcClient(broker.uri, timeout=1.5, client_name="test")
    try:
        service.start()
        assert rpc.call(service.name, "ping") == "pong"
        service.stop()
        assert broker.consumer_count(service.queue) == 0  # queue left behind, nobody consuming

        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            rpc.call(service.name, "ping")
        assert time.monotonic() - started < 1.5 + 0.5

        # known down: the next calls fail at once instead of waiting the timeout again
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(ServiceUnavailable):
                rpc.call(service.name, "ping")
        assert time.monotonic() - started < 0.5

        # the expired calls were dropped, not left to run when the service comes back
        wait_until(lambda: broker.message_count(service.queue) == 0, timeout=5,
                   message="unanswered calls to expire")

        service.start()
        # the "down" finding is re-checked within about a second
        wait_until(lambda: _answers(rpc, service.name), timeout=5,
                   message="the restarted service to answer")
    finally:
        rpc.close()
        service.stop()
        broker.delete_queue(service.queue)


def _answers(rpc, service):
    try:
        return rpc.call(service, "ping") == "pong"
    except ServiceUnavailable:
        return False


def test_correlation_id_reaches_the_worker_context(client, echo):
    context = client.call(echo.name, "context", correlation_id="req-42",
                          context_data={"user_id": "staff-7"})
    assert context["data"]["correlation_id"] == "req-42"
    assert context["data"]["user_id"] == "staff-7"
    assert context["call_id_stack"][0].startswith("test.http.")
    assert context["call_id_stack"][-1].startswith(f"{echo.name}.context.")

    # without an explicit id the one of the current request (crm_kit.logging) is used
    token = set_correlation_id("req-from-logging")
    try:
        context = client.call(echo.name, "context")
    finally:
        reset_correlation_id(token)
    assert context["data"]["correlation_id"] == "req-from-logging"


def test_unreachable_broker_fails_fast():
    started = time.monotonic()
    rpc = RpcClient("amqp://guest:guest@127.0.0.1:1/", timeout=2.0, client_name="test")
    try:
        with pytest.raises(ServiceUnavailable):
            rpc.call("customer", "ping")
    finally:
        rpc.close()
    assert time.monotonic() - started < 2.0


def test_reconnects_after_the_connection_drops(client, echo):
    in_flight = {}

    def slow_call():
        try:
            client.call(echo.name, "slow", 5, timeout=10)
        except Exception as exc:  # asserted below
            in_flight["error"] = exc

    caller = threading.Thread(target=slow_call)
    caller.start()
    wait_until(lambda: client._pending, timeout=5, message="the slow call to be in flight")

    _close_broker_connection(client._parameters.client_properties["connection_name"])

    caller.join(timeout=5)
    assert isinstance(in_flight.get("error"), ServiceUnavailable)  # failed at once, not after 10 s
    wait_until(lambda: _answers(client, echo.name), timeout=10,
               message="the client to reconnect")


def _close_broker_connection(connection_name):
    listing = subprocess.run(
        ["rabbitmqctl", "list_connections", "-q", "--no-table-headers", "pid", "client_properties"],
        capture_output=True, text=True, check=True).stdout
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if connection_name in line]
    assert pids, f"connection {connection_name} not found"
    subprocess.run(["rabbitmqctl", "close_connection", pids[0], "test: simulated broker outage"],
                   check=True, capture_output=True)


def test_closed_client_refuses_calls(broker):
    rpc = RpcClient(broker.uri, timeout=1.0, client_name="test")
    rpc.close()
    with pytest.raises(ServiceUnavailable):
        rpc.call("customer", "ping")


def test_calls_fail_fast_while_the_broker_is_away_and_work_when_it_is_back(broker, echo):
    parameters = pika.URLParameters(broker.uri)
    link = BrokerLink(parameters.host, parameters.port)
    rpc = RpcClient(link.uri(parameters.virtual_host), timeout=2.0, client_name="test")
    try:
        assert rpc.call(echo.name, "ping") == "pong"
        link.cut()
        wait_until(lambda: not rpc.connected, timeout=5, message="the client to notice the outage")
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            rpc.call(echo.name, "ping")
        assert time.monotonic() - started < 0.5
        link.restore()
        wait_until(lambda: _answers(rpc, echo.name), timeout=15,
                   message="the client to reconnect after the outage")
    finally:
        rpc.close()
        link.close()
