"""Test helpers shared by every service's tests: real broker, real databases, real processes.

- ``wait_until``: wait on a condition with a deadline (never a bare sleep).
- ``ServiceProcess``: a service started exactly as ``make up`` starts it
  (``python -m crm_kit.run``), in its own process, with its own database.
- ``BrokerLink``: a TCP proxy in front of RabbitMQ that a test can cut and restore, to make
  the broker unreachable for one service while everything else keeps running.
- ``EventTap``: a queue bound to a service's event exchange, to see what it published.
- ``publish_event``: publish an envelope the way a service's outbox relay does.
- ``PrivateBroker``: a RabbitMQ node of a test's own (own node name, ports, data), which the
  test may stop, restart or kill without touching the broker everything else uses.
The pytest fixtures built on these live in ``crm_kit.pytest_plugin``.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from crm_kit.envelope import make_envelope


def wait_until(predicate, timeout=10.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it returns something truthy; raise AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def appears_in(value, text):
    """Whether ``value`` is in ``text`` as it is, or as JSON writes it with ``\\u`` escapes
    (what a search for leftover personal data in raw database cells must catch)."""
    return value in text or json.dumps(value)[1:-1] in text


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url, timeout=2.0):
    """(status, body) of a GET, or (None, error text) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)


class ServiceProcess:
    """One service process: ``start()`` waits until /readyz says ready."""

    def __init__(self, spec, amqp_uri, database_url, data_dir, env=None, name=None):
        self.spec = spec
        self.name = name or spec.split(".")[0]
        self.port = free_port()
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / f"{self.name}-{self.port}.log"
        self.env = {**os.environ, "CRM_AMQP_URI": amqp_uri, "CRM_DATABASE_URL": database_url,
                    "CRM_METRICS_PORT": str(self.port), "CRM_DATA_DIR": str(self.data_dir),
                    "CRM_BROKER_WAIT": "5", **(env or {})}
        self.process = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30.0):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "crm_kit.run", self.spec],
                                        env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, timeout=timeout, interval=0.1,
                       message=f"{self.spec} to be ready")
        except AssertionError:
            raise AssertionError(f"{self.spec} did not become ready; log:\n{self.log()}") from None
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"{self.spec} exited with {self.process.returncode}:\n{self.log()}")
        return http_get(self.base_url + "/readyz")[0] == 200

    def log(self):
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self, timeout=20.0):
        """Graceful stop (SIGTERM), as an orchestrator does; returns the exit code."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def kill(self):
        """Hard kill (SIGKILL): no chance to finish anything."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def metric(self, name, **labels):
        """The value of one sample on /metrics, or None."""
        status, body = http_get(self.base_url + "/metrics")
        if status != 200:
            return None
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in body.splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            have = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if all(part in have.split(",") for part in want.split(",") if part):
                return float(value)
        return None


class BrokerLink:
    """A TCP proxy to RabbitMQ. ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target_host="127.0.0.1", target_port=5672):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(64)
        self._open = threading.Event()
        self._open.set()
        self._sockets = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def uri(self, vhost):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)

    def cut(self):
        self._open.clear()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self):
        self._open.set()

    def close(self):
        self._closed = True
        self.cut()
        self._listener.close()


class EventTap:
    """A durable queue bound to ``<source>.events`` for ``routing_keys``; collects envelopes."""

    def __init__(self, amqp_uri, source, routing_keys=("#",)):
        import pika

        self._connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self._channel = self._connection.channel()
        exchange = f"{source}.events"
        self._channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.queue = self._channel.queue_declare("", exclusive=True).method.queue
        for key in routing_keys:
            self._channel.queue_bind(self.queue, exchange, routing_key=key)
        self.events = []

    def drain(self):
        while True:
            method, _props, body = self._channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.events
            self.events.append(json.loads(body))

    def wait_for(self, predicate, timeout=10.0, message="event"):
        def found():
            self.drain()
            return [e for e in self.events if predicate(e)]
        return wait_until(found, timeout=timeout, message=message)

    def close(self):
        try:
            self._connection.close()
        except Exception:  # already gone
            pass


def publish_event(amqp_uri, source, event_type, data, envelope=None):
    """Publish an event as ``source``'s outbox relay would; returns the envelope."""
    import pika

    envelope = envelope or make_envelope(event_type, data, source=source,
                                         correlation_id="test")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare(f"{source}.events", exchange_type="topic", durable=True)
        channel.basic_publish(f"{source}.events", event_type,
                              json.dumps(envelope).encode(),
                              pika.BasicProperties(content_type="application/json",
                                                   content_encoding="utf-8", delivery_mode=2))
    finally:
        connection.close()
    return envelope


def rabbitmq_scripts():
    """``(rabbitmq-server, rabbitmqctl)`` of the local RabbitMQ installation, or None.

    Debian's ``/usr/sbin/rabbitmq-server`` is a wrapper that switches to the ``rabbitmq`` user
    (and its home, data and cookie); the scripts beside the wrapper's target run as the caller,
    with the environment they are given, which a private node needs."""
    found = shutil.which("rabbitmq-server") or next(
        (p for p in ("/usr/sbin/rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server")
         if os.path.exists(p)), None)
    if found is None:
        return None
    folder = Path(os.path.realpath(found)).parent  # Debian: the wrapper's folder
    server, ctl = folder / "rabbitmq-server", folder / "rabbitmqctl"
    if not (server.exists() and ctl.exists()):
        return None
    return str(server), str(ctl)


class PrivateBroker:
    """A RabbitMQ node of its own: node name ``crmfault-<random>@localhost``, free AMQP and
    distribution ports, no plugins (so no management port), data, logs, config and Erlang cookie
    under ``base_dir``. ``stop()``/``start()``/``restart()`` stop and start the node process
    (durable queues and persistent messages survive, as on a real restart); ``kill()`` is a
    crash (SIGKILL). Nothing here touches the shared broker on 5672.

    ``PrivateBroker.unavailable()`` is the reason it cannot run here (None if it can)."""

    def __init__(self, base_dir, name=None):
        self.base_dir = Path(base_dir)
        self.node = f"{name or 'crmfault-' + os.urandom(4).hex()}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.process = None
        scripts = rabbitmq_scripts()
        if scripts is None:
            raise RuntimeError(self.unavailable())
        self.server_script, self.ctl_script = scripts
        self.pid_file = self.base_dir / "node.pid"
        self.log_path = self.base_dir / "server.log"
        self.env = {**os.environ,
                    "HOME": str(self.base_dir),  # its own .erlang.cookie, shared with its ctl
                    "RABBITMQ_NODENAME": self.node,
                    "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                    "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(self.dist_port),
                    "RABBITMQ_MNESIA_BASE": str(self.base_dir / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(self.base_dir / "log"),
                    "RABBITMQ_CONFIG_FILE": str(self.base_dir / "rabbitmq.conf"),
                    "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base_dir / "advanced.config"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base_dir / "enabled_plugins"),
                    "RABBITMQ_CONF_ENV_FILE": str(self.base_dir / "rabbitmq-env.conf"),
                    "RABBITMQ_PID_FILE": str(self.pid_file),
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                        "-kernel inet_dist_use_interface {127,0,0,1}",
                    "ERL_EPMD_ADDRESS": "127.0.0.1"}

    @staticmethod
    def unavailable():
        if rabbitmq_scripts() is None:
            return "rabbitmq-server is not installed (needed for a private RabbitMQ node)"
        return None

    def uri(self, vhost=""):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def _write_config(self):
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.base_dir / "advanced.config").write_text("[].\n")
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        (self.base_dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's node name

    def ctl(self, *args, timeout=60):
        return subprocess.run([self.ctl_script, "-q", "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, timeout=60.0):
        self._write_config()
        self.pid_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([self.server_script], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        waited = self.ctl("wait", str(self.pid_file), "--timeout", str(int(timeout)),
                          timeout=timeout + 10)
        if waited.returncode != 0 or self.process.poll() is not None:
            self.kill()
            raise AssertionError(f"the private RabbitMQ node {self.node} did not start: "
                                 f"{waited.stderr.strip()}\n{self.log()}")
        wait_until(self._accepts, timeout=timeout, interval=0.1,
                   message=f"{self.node} to accept AMQP connections")
        return self

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self, timeout=60.0):
        """A clean stop of the node (``rabbitmqctl stop``), as an operator's restart does."""
        if self.process is None or self.process.poll() is not None:
            return
        self.ctl("stop", str(self.pid_file), timeout=timeout)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, timeout=60.0):
        self.stop(timeout)
        return self.start(timeout)

    def kill(self):
        """SIGKILL the node's process group (the Erlang VM and its helpers)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()

    def add_vhost(self, name):
        for args in (("add_vhost", name), ("set_permissions", "-p", name, "guest", ".*", ".*",
                                           ".*")):
            done = self.ctl(*args)
            if done.returncode != 0:
                raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()}")
        return self.uri(name)

    def queues(self, vhost):
        """``{queue: (ready, unacknowledged, consumers)}`` of a vhost."""
        listed = self.ctl("list_queues", "-p", vhost, "--no-table-headers", "name",
                          "messages_ready", "messages_unacknowledged", "consumers")
        found = {}
        for line in listed.stdout.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[1].isdigit():
                found[parts[0]] = tuple(int(n) for n in parts[1:])
        return found

    def close(self):
        self.stop(timeout=30)
        self.kill()

