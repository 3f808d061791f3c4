import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from crm_kit.testing import PrivateBroker, free_port, http_get, wait_until  # noqa: E402
from e2e_support import ADMIN, ROOT  # noqa: E402
from faults_support import Stack  # noqa: E402


class System:
    """The whole CRM started by `scripts/up.py`, exactly what `make up` runs."""

    def __init__(self, amqp_uri, data_dir, env=None):
        self.port = free_port()
        self.customer_port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "up.log"
        self.env = {**os.environ, "CRM_AMQP_URI": amqp_uri, "CRM_DATA_DIR": str(data_dir),
                    "CRM_GATEWAY_BIND": f"127.0.0.1:{self.port}",
                    "CRM_CUSTOMER_METRICS_PORT": str(self.customer_port),
                    "CRM_ADMIN_USERNAME": ADMIN[0], "CRM_ADMIN_PASSWORD": ADMIN[1],
                    "CRM_RPC_TIMEOUT": "3",
                    # ready means every service of up.py answers
                    "CRM_GATEWAY_READY_SERVICES": "customer,sales,service_desk,marketing,analytics",
                    **(env or {})}
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_ports(self):
        """``{process: port of its /metrics}``, as up.py picks them: the gateway's HTTP port;
        for a service CRM_<SERVICE>_METRICS_PORT, else crm_kit.config.METRICS_PORTS."""
        from crm_kit import config

        return {name: self.port if name == "gateway" else
                int(self.env.get(f"CRM_{name.upper()}_METRICS_PORT") or default)
                for name, default in config.METRICS_PORTS.items()}

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "up.py")],
                                        env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_until(self._ready, timeout=60, interval=0.2, message="the system to be ready")
        except AssertionError:
            self.stop()
            raise AssertionError(f"the system did not come up:\n{self.log()}") from None
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"up.py exited with {self.process.returncode}:\n{self.log()}")
        return http_get(self.url + "/readyz")[0] == 200

    def log(self):
        return self.log_path.read_text(errors="replace")[-8000:]

    def stop(self):
        """Ctrl-C, as a person would; returns up.py's exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def broken_contracts(data_dir):
    """Every event the system's services published that breaks its contract
    (``crm_kit.contracts``): a producer breaking a consumer's expectations fails the test."""
    import json
    import sqlite3

    from crm_kit import contracts

    found = []
    for path in sorted(data_dir.glob("*.db")):
        connection = sqlite3.connect(path)
        try:
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "outbox_events" not in tables:
                continue
            for (body,) in connection.execute("SELECT envelope FROM outbox_events"):
                envelope = json.loads(body)
                for problem in contracts.problems(envelope):
                    found.append(f"{path.stem}: {envelope['type']}: {problem}")
        finally:
            connection.close()
    return found


@pytest.fixture
def system_env():
    """More environment for the system of ``system``: a test module overrides this fixture
    (e.g. higher rate limits for the fuzz test)."""
    return {}


@pytest.fixture
def system(amqp_uri, tmp_path, system_env):
    running = System(amqp_uri, tmp_path / "data", system_env).start()
    yield running
    running.stop()
    assert broken_contracts(running.data_dir) == []


# ---------------------------------------------------------------- fault tests
# (test_faults.py, test_rolling_upgrade.py): a RabbitMQ node of the module's own, a vhost per
# test on it, and stacks of real processes stopped after the test

@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    reason = PrivateBroker.unavailable()
    if reason:
        pytest.skip(reason)
    node = PrivateBroker(tmp_path_factory.mktemp("rabbitmq")).start()
    yield node
    node.close()


@pytest.fixture
def fault_uri(broker):
    """A vhost of its own for each test, on the private node."""
    return broker.add_vhost(f"faults-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def stack_factory(fault_uri, tmp_path):
    """``make(amqp_uri=the test's vhost, **Stack options)`` → a Stack, stopped after the test."""
    made = []

    def make(amqp_uri=None, **kwargs):
        stack = Stack(amqp_uri or fault_uri, tmp_path / f"stack{len(made)}", **kwargs)
        made.append(stack)
        return stack

    yield make
    stopping = [(stack, stack.signal_stop()) for stack in made]
    for stack, processes in stopping:
        stack.wait_stopped(processes)
