"""`make bench-gateway`: the gateway against stock nameko and raw pika, event propagation, memory.

Throughput and latency of the gateway beside the same calls made with a stock nameko proxy and
with raw pika; how long a committed event takes to reach its consumers; memory per process.

What it does (see bench/README.md for how to read the figures):

1. Starts the whole system exactly as `make up` does (`scripts/up.py` in a subprocess) on a
   private RabbitMQ vhost (`crm-bench`), a temporary data dir and free loopback ports; plus a
   bare nameko service (`bench/echo_service.py`, stock `nameko run` CLI) and a raw pika echo
   responder (`bench/pika_echo.py`). Once it is ready, reads every process's VmRSS (at rest).
2. Signs in as the admin, creates a customer_manager, signs in as them, creates customers.
3. Event propagation (bench/propagation.py): customers created through the gateway at a steady
   rate, then in a burst; per `customer.created` event, the time from its commit to each
   consumer's copy, from the services' own timestamps in their SQLite databases.
4. For each scenario and each concurrency level (threads; each thread has its own keep-alive
   `requests.Session`, `ClusterRpcProxy` or pika connection): a warm-up, then a fixed window in
   which every completed call is counted and timed. The peak RSS of every process of the
   system over all scenarios is VmHWM, reset just before them.
5. Prints Markdown tables, checks the targets, writes bench/results/latest.md.
6. Stops everything (SIGINT to up.py, SIGTERM to the echo processes) and deletes the vhost,
   also on errors and Ctrl-C.

Options: `--duration S` (measured window per level, default 5), `--warmup S` (default 1),
`--levels 1,8,32`, `--scenarios get,proxy_get,...` (default: all), `--customers N`,
`--keep` (keep the temp dir with the logs), `--py-spy DIR` (needs py-spy installed: record the
gateway worker and the customer service during gateway GET and POST at every level, as
speedscope files in DIR; the profiler's own CPU use lowers those figures);
`--event-rate 20 --event-seconds 10 --burst 500 --burst-threads 8` or `--skip-propagation`;
`--skip-memory`.
"""
import argparse
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

import pika
import requests

from crm_kit.testing import wait_until
from bench_common import cpu_model, git_revision, reset_peak  # noqa: E402
import propagation  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VHOST = "crm-bench"
BROKER = "127.0.0.1:5672"
AMQP_URI = f"amqp://guest:guest@{BROKER}/{VHOST}"
ADMIN = ("bench-admin", "bench-admin-password-1")
MANAGER = ("bench.manager", "bench-manager-pass-1")
PIKA_QUEUE = "bench-pika-echo"
ECHO_QUEUE = "rpc-bench_echo"  # the queue `nameko run` declares for the bench_echo service

START_TIMEOUT = 90.0      # the system answering /readyz 200
CALL_TIMEOUT = 10.0       # any single measured call
STOP_TIMEOUT = 40.0       # up.py after SIGINT (it gives its children 25 s)
MAX_ERROR_RATE = 0.01     # more failed calls than this in a window fails the run

SCENARIOS = {
    "get": "gateway GET /api/v1/customers/{id}",
    "proxy_get": "stock ClusterRpcProxy → customer.get_customer",
    "pika_get": "raw pika round trip → customer.get_customer",
    "post": "gateway POST /api/v1/customers",
    "proxy_post": "stock ClusterRpcProxy → customer.create_customer",
    "pika_post": "raw pika round trip → customer.create_customer",
    "echo": "stock nameko ClusterRpcProxy → bench_echo.echo",
    "pika": "raw pika round trip (echo responder)",
    "healthz": "gateway GET /healthz (no auth, no RPC)",
}
ACTOR = {"id": "bench", "roles": ["customer_manager"]}


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- RabbitMQ vhost

def rabbitmqctl(*args, check=True):
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def create_vhost():
    vhosts = rabbitmqctl("list_vhosts", "--quiet").stdout.split()
    if VHOST in vhosts:  # left over by an interrupted run: start clean
        rabbitmqctl("delete_vhost", VHOST)
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")


def delete_vhost():
    rabbitmqctl("delete_vhost", VHOST, check=False)


def consumer_count(queue):
    """Consumers on ``queue`` of the bench vhost (0 if it does not exist yet)."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
    except Exception:
        return 0
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    except Exception:
        return 0
    finally:
        if connection.is_open:
            connection.close()


def rabbitmq_version():
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
    except Exception:
        return "?"
    try:
        version = connection._impl.server_properties.get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        connection.close()


# ---------------------------------------------------------------- processes

class Processes:
    """Everything the bench starts, stopped in ``stop()`` whatever happened."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.up = self.echo = self.pika = None
        self._logs = []

    def _log_file(self, name):
        handle = open(self.workdir / f"{name}.log", "ab")
        self._logs.append(handle)
        return handle

    def _up_env(self):
        env = {**os.environ, "CRM_AMQP_URI": AMQP_URI, "CRM_DATA_DIR": str(self.data_dir),
               "CRM_GATEWAY_BIND": f"127.0.0.1:{self.port}",
               "CRM_ADMIN_USERNAME": ADMIN[0], "CRM_ADMIN_PASSWORD": ADMIN[1],
               # one signed-in client sends hundreds of calls a second here: far beyond its
               # share in production, so its limit is lifted (the limiter still runs)
               "CRM_RATE_LIMIT": "10000000 per minute",
               "PYTHONUNBUFFERED": "1"}
        for name in [name for name, _ in up_services()]:  # never a port a `make up` may hold
            env[f"CRM_{name.upper()}_METRICS_PORT"] = str(free_port())
        for name in list(env):  # one database per service in the temp dir, as make up does
            if name.startswith("CRM_") and name.endswith("_DATABASE_URL"):
                del env[name]
        return env

    def start(self):
        self.data_dir.mkdir(parents=True)
        self.up = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "up.py")], cwd=ROOT, env=self._up_env(),
            stdout=self._log_file("up"), stderr=subprocess.STDOUT, start_new_session=True)
        nameko = Path(sys.executable).with_name("nameko")
        self.echo = subprocess.Popen(
            [str(nameko), "run", "--broker", AMQP_URI, "echo_service"], cwd=BENCH,
            stdout=self._log_file("nameko-echo"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.pika = subprocess.Popen(
            [sys.executable, str(BENCH / "pika_echo.py"), AMQP_URI, PIKA_QUEUE],
            stdout=self._log_file("pika-echo"), stderr=subprocess.STDOUT,
            start_new_session=True)

    def check_alive(self):
        for name, process in (("scripts/up.py", self.up), ("nameko run echo_service", self.echo),
                              ("pika_echo.py", self.pika)):
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n"
                                   + self.log_tail(name))

    def log_tail(self, name=None, chars=4000):
        files = {"scripts/up.py": "up", "nameko run echo_service": "nameko-echo",
                 "pika_echo.py": "pika-echo"}
        names = [files[name]] if name else list(files.values())
        out = []
        for stem in names:
            path = self.workdir / f"{stem}.log"
            if path.exists():
                out.append(f"--- {path} (tail)\n" + path.read_text(errors="replace")[-chars:])
        return "\n".join(out)

    def wait_ready(self):
        def gateway_ready():
            self.check_alive()
            try:
                return requests.get(self.base + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        def echoes_ready():
            self.check_alive()
            return consumer_count(ECHO_QUEUE) > 0 and consumer_count(PIKA_QUEUE) > 0

        wait_until(gateway_ready, START_TIMEOUT, 0.2, "the gateway's /readyz to answer 200")
        wait_until(echoes_ready, 30, 0.2, "the nameko and pika echo responders")

    def pids(self):
        """name -> pids of the processes whose CPU time is reported."""
        groups = {"gateway": [], "customer svc": []}
        if self.up is not None:
            for pid in descendants(self.up.pid):
                cmdline = read_cmdline(pid)
                if "gunicorn" in cmdline:
                    groups["gateway"].append(pid)
                elif "crm_kit.run" in cmdline and "customer" in cmdline:
                    groups["customer svc"].append(pid)
                else:
                    groups.setdefault("other CRM", []).append(pid)
        groups["nameko echo"] = [self.echo.pid] if self.echo else []
        groups["pika echo"] = [self.pika.pid] if self.pika else []
        groups["rabbitmq"] = [pid for pid in all_pids() if read_comm(pid) == "beam.smp"]
        groups["bench client"] = [os.getpid()]
        return groups

    def gateway_worker_pid(self):
        """The gunicorn worker (the child of the gunicorn master)."""
        gunicorn = [pid for pid in descendants(self.up.pid) if "gunicorn" in read_cmdline(pid)]
        workers = [pid for pid in gunicorn if parent_pid(pid) in gunicorn]
        return workers[0] if workers else None

    def customer_pid(self):
        return self.service_pid("customer")

    def service_pid(self, name):
        """The process of service ``name`` of scripts/up.py (``customer``, ``marketing``...)."""
        spec = dict(up_services())[name]
        for pid in descendants(self.up.pid):
            if spec in read_cmdline(pid):
                return pid
        return None

    def system_processes(self):
        """(label, pid) of every process `make up` runs: up.py, each service (in the order of
        scripts/up.py), the gateway's gunicorn master and its workers."""
        services = up_services()
        tree = descendants(self.up.pid)
        gunicorn = [pid for pid in tree if "gunicorn" in read_cmdline(pid)]
        found = [("up.py (supervisor)", self.up.pid)]
        for name, spec in services:
            found += [(f"{name} service", pid) for pid in tree if spec in read_cmdline(pid)]
        found += [("gateway: gunicorn master", pid) for pid in gunicorn
                  if parent_pid(pid) not in gunicorn]
        workers = [pid for pid in gunicorn if parent_pid(pid) in gunicorn]
        found += [(f"gateway: worker {n}" if len(workers) > 1 else "gateway: worker", pid)
                  for n, pid in enumerate(workers, 1)]
        known = {pid for _, pid in found}
        found += [(read_comm(pid), pid) for pid in tree if pid not in known]
        return found

    def stop(self):
        """Ctrl-C to up.py (as a person would), SIGTERM to the echo processes; kill at the end."""
        tree = descendants(self.up.pid) if self.up is not None else []
        if self.up is not None and self.up.poll() is None:
            self.up.send_signal(signal.SIGINT)
        for process in (self.echo, self.pika):
            if process is not None and process.poll() is None:
                process.terminate()
        for process, timeout in ((self.up, STOP_TIMEOUT), (self.echo, 15), (self.pika, 10)):
            if process is None:
                continue
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"pid {process.pid} did not stop in {timeout:g} s: killing it")
                process.kill()
                process.wait()
        for pid in tree:  # up.py's children, should up.py itself have been killed
            if pid_alive(pid):
                log(f"pid {pid} ({read_cmdline(pid)[:60]}) outlived up.py: killing it")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for handle in self._logs:
            handle.close()
        return self.up.returncode if self.up is not None else None


def up_services():
    """SERVICES of scripts/up.py, so every service started gets a free metrics port."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("crm_up", ROOT / "scripts" / "up.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SERVICES


# ---------------------------------------------------------------- /proc helpers

def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def parent_pid(pid):
    try:
        return int(_stat_fields(pid)[1])
    except (OSError, ValueError):
        return None


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def pid_alive(pid):
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def descendants(root):
    children = {}
    for pid in all_pids():
        ppid = parent_pid(pid)
        if ppid is not None:
            children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kib(pid, field):
    """A ``kB`` line of /proc/<pid>/status (``VmRSS``, ``VmHWM``) in KiB; None if gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """The peak RSS of ``pids`` between ``start()`` and ``stop()``: VmHWM, reset at the start;
    for a process whose VmHWM cannot be reset, VmRSS sampled every 100 ms instead."""

    INTERVAL = 0.1

    def __init__(self, pids):
        self.pids = list(pids)
        self.sampled = {}  # pid -> highest VmRSS seen, for those sampled
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        self.sampled = {pid: 0 for pid in self.pids if not reset_peak(pid)}
        if self.sampled:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stopping.is_set():
            for pid in self.sampled:
                self.sampled[pid] = max(self.sampled[pid], status_kib(pid, "VmRSS") or 0)
            self._stopping.wait(self.INTERVAL)

    def stop(self):
        """pid -> peak KiB (None if the process is gone)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        peaks = {}
        for pid in self.pids:
            if pid in self.sampled:
                peaks[pid] = self.sampled[pid] or None
            else:
                peaks[pid] = status_kib(pid, "VmHWM")
        return peaks


def machine_busy_seconds():
    """CPU seconds all processes of the machine have used (from /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(groups):
    """CPU seconds per group, plus ``other``: everything else on the machine (other engineers'
    tests, py-spy...), which makes figures noisy on a shared machine."""
    snapshot = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}
    snapshot["other"] = machine_busy_seconds() - sum(snapshot.values())
    return snapshot


# ---------------------------------------------------------------- clients

class Api:
    """A signed-in staff member on one keep-alive session."""

    def __init__(self, base, username, password):
        self.base = base + "/api/v1"
        self.session = requests.Session()
        response = self.session.post(self.base + "/auth/token",
                                     json={"username": username, "password": password},
                                     timeout=CALL_TIMEOUT)
        expect(response, 200, f"sign in as {username}")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.token = response.json()["access_token"]

    def post(self, path, body):
        return self.session.post(self.base + path, json=body, timeout=CALL_TIMEOUT)

    def get(self, path):
        return self.session.get(self.base + path, timeout=CALL_TIMEOUT)


def expect(response, status, what):
    if response.status_code != status:
        raise RuntimeError(f"{what}: HTTP {response.status_code} (expected {status}): "
                           f"{response.text[:500]}")


class PikaRoundTrip:
    """One connection and exclusive reply queue per thread; publish, wait for our reply."""

    def __init__(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
        self.channel = self.connection.channel()
        self.reply_to = self.channel.queue_declare("", exclusive=True,
                                                   auto_delete=True).method.queue
        self.channel.basic_consume(self.reply_to, self._on_reply, auto_ack=True)
        self.expected = self.reply = None

    def _on_reply(self, _channel, _method, properties, body):
        if properties.correlation_id == self.expected:
            self.reply = body

    def call(self, value):
        self.expected, self.reply = uuid.uuid4().hex, None
        self.channel.basic_publish("", PIKA_QUEUE, json.dumps(value).encode(),
                                   pika.BasicProperties(reply_to=self.reply_to,
                                                        correlation_id=self.expected,
                                                        content_type="application/json"))
        deadline = time.monotonic() + CALL_TIMEOUT
        while self.reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply from the pika echo responder")
            self.connection.process_data_events(time_limit=remaining)
        return json.loads(self.reply)

    def close(self):
        if self.connection.is_open:
            self.connection.close()


class PikaNamekoCall:
    """A nameko RPC made by hand with pika: the same call the gateway makes, minus everything
    but the AMQP round trip (one connection and reply queue per thread)."""

    def __init__(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
        self.channel = self.connection.channel()
        self.reply_to = self.channel.queue_declare("", exclusive=True,
                                                   auto_delete=True).method.queue
        self.channel.queue_bind(self.reply_to, "nameko-rpc", routing_key=self.reply_to)
        self.channel.basic_consume(self.reply_to, self._on_reply, auto_ack=True)
        self.expected = self.reply = None

    def _on_reply(self, _channel, _method, properties, body):
        if properties.correlation_id == self.expected:
            self.reply = body

    def call(self, service, method, *args):
        self.expected, self.reply = uuid.uuid4().hex, None
        self.channel.basic_publish(
            "nameko-rpc", f"{service}.{method}",
            json.dumps({"args": list(args), "kwargs": {}}).encode(),
            pika.BasicProperties(reply_to=self.reply_to, correlation_id=self.expected,
                                 content_type="application/json"))
        deadline = time.monotonic() + CALL_TIMEOUT
        while self.reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply from {service}.{method}")
            self.connection.process_data_events(time_limit=remaining)
        reply = json.loads(self.reply)
        if reply.get("error"):
            raise RuntimeError(reply["error"].get("value"))
        return reply["result"]

    def close(self):
        if self.connection.is_open:
            self.connection.close()


class NamekoProxy:
    """A stock ``ClusterRpcProxy`` (not thread-safe: one per thread)."""

    def __init__(self):
        from nameko.standalone.rpc import ClusterRpcProxy
        self._cluster = ClusterRpcProxy({"AMQP_URI": AMQP_URI}, timeout=CALL_TIMEOUT)
        self.proxy = self._cluster.start()

    def call(self, value):
        return self.proxy.bench_echo.echo(value)

    def close(self):
        self._cluster.stop()


def manager_session(token):
    """A keep-alive session signed in with ``token`` (one per thread)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def post_customer(session, base, mobile):
    """``POST /api/v1/customers`` through the gateway; returns the new customer's id."""
    response = session.post(f"{base}/api/v1/customers",
                            json={"name": f"压测客户{mobile[-4:]}", "mobile": mobile,
                                  "district": "高新区", "source": "other"},
                            timeout=CALL_TIMEOUT)
    if response.status_code != 201:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()["id"]


def scenario_calls(name, processes, manager_token, customer_ids, payload, mobiles):
    """(make_client(), call(client), close(client)) of a scenario."""
    base = processes.base

    def new_session():
        return manager_session(manager_token)

    def close_session(session):
        session.close()

    if name == "get":
        def call(session):
            customer_id = random.choice(customer_ids)
            response = session.get(f"{base}/api/v1/customers/{customer_id}",
                                   timeout=CALL_TIMEOUT)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return new_session, call, close_session
    if name == "post":
        def call(session):
            post_customer(session, base, mobiles())
        return new_session, call, close_session
    if name == "healthz":
        def call(session):
            response = session.get(f"{base}/healthz", timeout=CALL_TIMEOUT)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return new_session, call, close_session
    if name in ("proxy_get", "pika_get", "proxy_post", "pika_post"):
        def new_customer():
            mobile = mobiles()
            return {"name": f"压测客户{mobile[-4:]}", "mobile": mobile, "district": "高新区",
                    "source": "other"}

        if name.startswith("proxy"):
            def call(proxy):
                if name == "proxy_get":
                    proxy.proxy.customer.get_customer(random.choice(customer_ids))
                else:
                    proxy.proxy.customer.create_customer(new_customer(), ACTOR)
            return NamekoProxy, call, lambda proxy: proxy.close()

        def call(client):
            if name == "pika_get":
                client.call("customer", "get_customer", random.choice(customer_ids))
            else:
                client.call("customer", "create_customer", new_customer(), ACTOR)
        return PikaNamekoCall, call, lambda client: client.close()
    if name == "echo":
        def call(proxy):
            if proxy.call(payload) != payload:
                raise RuntimeError("the echo differs from the payload")
        return NamekoProxy, call, lambda proxy: proxy.close()
    if name == "pika":
        def call(client):
            if client.call(payload) != payload:
                raise RuntimeError("the echo differs from the payload")
        return PikaRoundTrip, call, lambda client: client.close()
    raise ValueError(name)


# ---------------------------------------------------------------- measuring

def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[rank]


def measure(make_client, call, close, concurrency, warmup, duration, cpu_groups):
    """Run ``concurrency`` threads; count and time the calls completed in the measured window."""
    clients = []
    try:
        for _ in range(concurrency):
            clients.append(make_client())
        latencies = [[] for _ in range(concurrency)]
        errors = [0] * concurrency
        first_error = []
        window = {}
        barrier = threading.Barrier(concurrency + 1)

        def worker(index):
            client, mine = clients[index], latencies[index]
            barrier.wait()
            measure_from, measure_to = window["from"], window["to"]
            while True:
                started = time.perf_counter()
                if started >= measure_to:
                    return
                try:
                    call(client)
                    ok = True
                except Exception as exc:
                    ok = False
                    if not first_error:
                        first_error.append(f"{type(exc).__name__}: {exc}")
                finished = time.perf_counter()
                if measure_from <= finished <= measure_to:
                    if ok:
                        mine.append(finished - started)
                    else:
                        errors[index] += 1
                if not ok:
                    time.sleep(0.01)  # a failing target must not turn into a busy loop

        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(concurrency)]
        for thread in threads:
            thread.start()
        now = time.perf_counter()
        window["from"], window["to"] = now + warmup, now + warmup + duration
        barrier.wait()
        time.sleep(max(0.0, window["from"] - time.perf_counter()))
        cpu_before, wall_before = cpu_snapshot(cpu_groups), time.perf_counter()
        time.sleep(max(0.0, window["to"] - time.perf_counter()))
        cpu_after, wall_after = cpu_snapshot(cpu_groups), time.perf_counter()
        for thread in threads:
            thread.join(CALL_TIMEOUT + 5)
        if any(thread.is_alive() for thread in threads):
            raise RuntimeError("a bench thread is stuck past the call timeout")
    finally:
        for client in clients:
            try:
                close(client)
            except Exception:
                pass

    done = sorted(itertools.chain.from_iterable(latencies))
    error_count = sum(errors)
    return {
        "n": len(done), "errors": error_count, "first_error": first_error[0] if first_error else "",
        "rps": len(done) / duration,
        "p50": percentile(done, 0.50) * 1000, "p99": percentile(done, 0.99) * 1000,
        "cpu": {name: cpu_after[name] - cpu_before[name] for name in cpu_after},
        "cpu_wall": wall_after - wall_before,
    }


# ---------------------------------------------------------------- report

def versions():
    names = ["nameko", "pika", "kombu", "eventlet", "requests", "gunicorn", "Flask",
             "SQLAlchemy"]
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "-"
    return found


def ms(value):
    return "-" if value is None or value != value else f"{value:.2f}"


def own_cpu_per_call(result):
    """ms of CPU per call of the processes the bench measures (not ``other``)."""
    return sum(v for k, v in result["cpu"].items() if k != "other") * 1000 / result["n"]


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def render_propagation(propagated):
    lines = ["", f"## Event propagation: {propagation.EVENT}, commit → stored by each consumer", "",
             "Per event, from the services' own timestamps: `occurred_at` of the envelope in the "
             "customer service's outbox (taken in the creating transaction, just before its "
             "commit) to `processed_at` of the consumer's inbox row (taken as its transaction "
             "starts, committed with the effect). `published` is the outbox row's `published_at` "
             "(stamped by the relay after the broker confirmed its batch, so it may come after "
             "a consumer's copy); `all consumers` is, per event, the later of the consumers. "
             f"Lost: not stored {propagation.ARRIVAL_DEADLINE:g} s after the last commit. "
             "CPU ms/event: the process's CPU time (/proc) from the first customer created to "
             "the last copy stored, per event: the customer service's on the `published` row "
             "(creating the customers included), each consumer's on its row.", "",
             "| mode | created | until | events | lost | p50 ms | p99 ms | max ms | CPU ms/event |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, result in propagated.items():
        created = (f"{result['events']} in {result['seconds']:.1f} s "
                   f"({result['events'] / result['seconds']:.0f}/s)")
        cpu = result["cpu ms per event"]
        rows = [("published (relay's stamp)", result["relay"], "", cpu[propagation.PRODUCER])]
        rows += [(f"{service} stored", consumer["latencies"], consumer["lost"], cpu[service])
                 for service, consumer in result["consumers"].items()]
        rows.append(("all consumers stored", result["all consumers"], "", None))
        for until, latencies, lost, cpu_ms in rows:
            lines.append(f"| {mode} | {created} | {until} | {len(latencies)} | {lost} | "
                         f"{ms(percentile(latencies, 0.50))} | {ms(percentile(latencies, 0.99))} | "
                         f"{ms(max(latencies, default=None))} | {ms(cpu_ms)} |")
    return lines


def render_memory(memory):
    how = "VmHWM, reset through `/proc/<pid>/clear_refs` just before the first scenario"
    if memory["sampled"]:
        how += (f"; VmRSS sampled every {PeakMemory.INTERVAL * 1000:.0f} ms for pids "
                + ", ".join(map(str, memory["sampled"])) + " (their VmHWM could not be reset)")
    lines = ["", "## Memory per process (MiB)", "",
             "At rest: VmRSS of each process of the system once the gateway answered `/readyz`, "
             f"before any request. Peak under load: the highest RSS during all gateway scenarios "
             f"({how}).", "",
             "| process | at rest MiB | peak under load MiB |", "| --- | ---: | ---: |"]
    for label, pid in memory["processes"]:
        lines.append(f"| {label} | {mib(memory['rest'][pid])} | {mib(memory['peak'][pid])} |")
    rest = sum(v or 0 for v in memory["rest"].values())
    peak = sum(v or 0 for v in memory["peak"].values())
    lines.append(f"| **all** (sum; peaks need not coincide) | {mib(rest)} | {mib(peak)} |")
    return lines


def render(results, args, meta, payload_bytes, propagated=None, memory=None):
    lines = [
        "# CRM bench results", "",
        f"- date: {meta['date']}",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.platform()}",
        f"- Python {platform.python_version()}, RabbitMQ {meta['rabbitmq']}, "
        + ", ".join(f"{name} {version}" for name, version in meta["versions"].items()),
        f"- revision: {meta['git']}; load average before the run: {meta['load']}",
        f"- gateway: gunicorn gthread, CRM_GATEWAY_WORKERS={os.environ.get('CRM_GATEWAY_WORKERS', '1')}, "
        f"CRM_GATEWAY_THREADS={os.environ.get('CRM_GATEWAY_THREADS', '32')}; one customer "
        "service process (SQLite); load generator, system and broker share the same cores",
        f"- per level: {args.warmup:g} s warm-up, {args.duration:g} s measured; payload "
        f"{payload_bytes} bytes of JSON (a customer as the gateway returns it) for echo and pika",
        "",
        "| scenario | concurrency | req/s | p50 ms | p99 ms | calls | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (scenario, level), r in results.items():
        lines.append(f"| {SCENARIOS[scenario]} | {level} | {r['rps']:.0f} | {ms(r['p50'])} | "
                     f"{ms(r['p99'])} | {r['n']} | {r['errors']} |")

    lines += ["", "## Targets", ""]
    top = max(args.levels)
    targets = []
    get_top, echo_top = results.get(("get", top)), results.get(("echo", top))
    if get_top and echo_top and echo_top["rps"]:
        ratio = get_top["rps"] / echo_top["rps"]
        targets.append((f"gateway GET throughput at {top} ≥ 50% of stock-proxy echo at {top}",
                        f"{get_top['rps']:.0f} / {echo_top['rps']:.0f} req/s = {ratio:.0%}",
                        ratio >= 0.5))
    if get_top and echo_top and get_top["n"] and echo_top["n"]:
        # the same target from CPU cost: what each would reach if it had the cores to itself
        get_cost, echo_cost = own_cpu_per_call(get_top), own_cpu_per_call(echo_top)
        ratio = echo_cost / get_cost
        targets.append((f"the same from CPU cost per call at {top} (system + client, ignores "
                        "other load on the machine)",
                        f"echo {echo_cost:.2f} ms / GET {get_cost:.2f} ms = {ratio:.0%}",
                        ratio >= 0.5))
    # "beside the same calls made with ... a raw pika round trip": the same get_customer call
    get_one, pika_one = results.get(("get", 1)), results.get(("pika_get", 1))
    if get_one and pika_one and pika_one["p50"]:
        ratio = get_one["p50"] / pika_one["p50"]
        targets.append(("gateway GET p50 at 1 ≤ 3× the raw pika round trip of the same call at 1",
                        f"{get_one['p50']:.2f} / {pika_one['p50']:.2f} ms = {ratio:.2f}×",
                        ratio <= 3.0))
    for mode, result in (propagated or {}).items():
        p99 = {service: percentile(consumer["latencies"], 0.99)
               for service, consumer in result["consumers"].items()}
        lost = sum(consumer["lost"] for consumer in result["consumers"].values())
        targets.append((f"{propagation.EVENT} commit → stored by every consumer, p99 ≤ 500 ms "
                        f"({mode})",
                        ", ".join(f"{service} {ms(value)} ms" for service, value in p99.items())
                        + f"; {result['events']} events, {lost} lost",
                        lost == 0 and max(p99.values()) <= 500))
    lines += ["| target | measured | met |", "| --- | --- | --- |"]
    for name, measured, met in targets:
        lines.append(f"| {name} | {measured} | {'yes' if met else '**no**'} |")

    groups = [g for g in next(iter(results.values()))["cpu"]] if results else []
    groups = [g for g in groups
              if any(r["cpu"].get(g, 0) > 0 for r in results.values())]
    lines += ["", "## CPU per call (ms of CPU time per completed call, from /proc)", "",
              "Where the cores went during each measured window. `other` is every other process "
              "of the machine (per call, to compare): if it is not small, the machine was shared "
              f"and the figures are low. `busy` is all CPU use as a share of the {os.cpu_count()} "
              "cores.", "",
              "| scenario | conc | " + " | ".join(groups) + " | busy |",
              "| --- | ---: | " + " | ".join("---:" for _ in groups) + " | ---: |"]
    for (scenario, level), r in results.items():
        # max(0): jiffy rounding can make "other" a hair below zero
        per_call = [max(0.0, r["cpu"][g]) * 1000 / r["n"] if r["n"] else None for g in groups]
        busy = sum(r["cpu"].values()) / r["cpu_wall"] / (os.cpu_count() or 1)
        lines.append(f"| {scenario} | {level} | " + " | ".join(ms(v) for v in per_call)
                     + f" | {busy:.0%} |")
    if propagated:
        lines += render_propagation(propagated)
    if memory:
        lines += render_memory(memory)
    return "\n".join(lines) + "\n", targets


# ---------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float,
                        default=float(os.environ.get("BENCH_DURATION", 5)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 1)))
    parser.add_argument("--levels", default=os.environ.get("BENCH_LEVELS", "1,8,32"))
    parser.add_argument("--scenarios", default=os.environ.get(
        "BENCH_SCENARIOS", ",".join(SCENARIOS)))
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")
    parser.add_argument("--py-spy", dest="py_spy", metavar="DIR",
                        help="record the gateway and customer service with py-spy during GET/POST")
    parser.add_argument("--skip-propagation", action="store_true",
                        help="do not measure customer.created commit → consumers")
    parser.add_argument("--event-rate", type=float, default=20,
                        help="customers created per second in the steady propagation mode")
    parser.add_argument("--event-seconds", type=float, default=10,
                        help="length of the steady propagation mode")
    parser.add_argument("--burst", type=int, default=500,
                        help="customers created as fast as possible in the burst mode")
    parser.add_argument("--burst-threads", type=int, default=8)
    parser.add_argument("--skip-memory", action="store_true",
                        help="do not report the memory of the system's processes")
    args = parser.parse_args(argv)
    args.levels = [int(level) for level in args.levels.split(",")]
    args.scenarios = [name.strip() for name in args.scenarios.split(",")]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def setup_data(processes, customers):
    admin = Api(processes.base, *ADMIN)
    staff = admin.post("/staff", {"username": MANAGER[0], "password": MANAGER[1],
                                  "display_name": "压测经理", "roles": ["customer_manager"]})
    expect(staff, 201, "create the customer_manager")
    manager = Api(processes.base, *MANAGER)
    # unique mobiles for the whole run: 11 digits, "1" + run-specific digit + counter
    prefix = f"1{random.randint(3, 9)}"
    mobiles = (f"{prefix}{n:09d}" for n in itertools.count(1))
    lock = threading.Lock()

    def next_mobile():
        with lock:
            return next(mobiles)

    ids = []
    for _ in range(customers):
        created = manager.post("/customers", {
            "name": "王小明", "mobile": next_mobile(), "email": "xm@example.com",
            "district": "高新区", "tags": ["vip"], "consent": {"sms": True}})
        expect(created, 201, "create a customer")
        ids.append(created.json()["id"])
    sample = manager.get(f"/customers/{ids[0]}")
    expect(sample, 200, "read a customer back")
    return manager.token, ids, sample.json(), next_mobile


def run_py_spy(out_dir, pids, seconds):
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        log("py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders = []
    for name, pid in pids.items():
        if pid is None:
            continue
        target = out_dir / f"{name}.speedscope.json"
        # --gil: only the thread holding the GIL is sampled, i.e. where the Python CPU goes
        recorders.append(subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
             "--rate", "200", "--gil", "--format", "speedscope", "--output", str(target),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        log(f"py-spy recording {name} (pid {pid}) into {target}")
    return recorders


def measure_propagation(processes, token, mobiles, args):
    """bench/propagation.py on this system: customers created through the gateway."""
    queues = propagation.queues()
    wait_until(lambda: all(consumer_count(queue) > 0 for queue in queues.values()), 30, 0.2,
               f"consumers on {', '.join(queues.values())}")
    pids = {name: processes.service_pid(name)
            for name in (propagation.PRODUCER, *propagation.CONSUMERS)}
    results = propagation.run(
        processes.data_dir, lambda: manager_session(token),
        lambda session: post_customer(session, processes.base, mobiles()),
        lambda: {name: cpu_seconds(pid) for name, pid in pids.items()},
        args.event_rate, args.event_seconds, args.burst, args.burst_threads)
    for mode, result in results.items():
        for service, consumer in result["consumers"].items():
            latencies = consumer["latencies"]
            log(f"propagation {mode:<28} → {service:<9} {len(latencies):4} events  "
                f"p50 {percentile(latencies, 0.5):7.1f} ms  "
                f"p99 {percentile(latencies, 0.99):7.1f} ms  "
                f"max {max(latencies, default=float('nan')):7.1f} ms  lost {consumer['lost']}")
    return results


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    log(f"temp dir {workdir}; RabbitMQ vhost {VHOST}")
    processes = Processes(workdir)
    results = {}
    failed = True
    vhost_made = False
    try:
        create_vhost()
        vhost_made = True
        processes.start()
        log(f"started up.py (pid {processes.up.pid}), nameko echo (pid {processes.echo.pid}), "
            f"pika echo (pid {processes.pika.pid}); waiting for {processes.base}/readyz")
        processes.wait_ready()
        log(f"ready after {time.monotonic() - started:.1f} s")
        memory = None
        if not args.skip_memory:  # at rest: started, nothing asked of it yet
            system = processes.system_processes()
            memory = {"processes": system,
                      "rest": {pid: status_kib(pid, "VmRSS") for _, pid in system}}

        token, ids, customer, mobiles = setup_data(processes, args.customers)
        payload = customer
        payload_bytes = len(json.dumps(payload, ensure_ascii=False).encode())
        log(f"signed in, created a customer_manager and {len(ids)} customers "
            f"(payload {payload_bytes} bytes)")
        cpu_groups = processes.pids()
        meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "rabbitmq": rabbitmq_version(), "versions": versions(), "git": git_revision(),
                "load": " ".join(f"{v:.2f}" for v in load_before)}

        propagated = None
        if not args.skip_propagation:
            propagated = measure_propagation(processes, token, mobiles, args)

        peak = PeakMemory(memory["rest"]).start() if memory else None
        for scenario in args.scenarios:
            for level in args.levels:
                processes.check_alive()
                make_client, call, close = scenario_calls(scenario, processes, token, ids,
                                                          payload, mobiles)
                recorders = []
                if args.py_spy and scenario in ("get", "post"):
                    recorders = run_py_spy(Path(args.py_spy), {
                        f"gateway-{scenario}-c{level}": processes.gateway_worker_pid(),
                        f"customer-{scenario}-c{level}": processes.customer_pid()},
                        args.warmup + args.duration)
                result = measure(make_client, call, close, level, args.warmup, args.duration,
                                 cpu_groups)
                for recorder in recorders:
                    recorder.wait(60)
                results[(scenario, level)] = result
                log(f"{SCENARIOS[scenario]:<48} c={level:<3} {result['rps']:8.0f} req/s  "
                    f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  "
                    f"errors {result['errors']}"
                    + (f"  first error: {result['first_error']}" if result["errors"] else ""))

        if peak:
            memory["peak"], memory["sampled"] = peak.stop(), sorted(peak.sampled)

        report, targets = render(results, args, meta, payload_bytes, propagated, memory)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.md").write_text(report)
        print()
        print(report)
        log(f"written to {RESULTS / 'latest.md'}")

        bad = {key: r for key, r in results.items()
               if r["errors"] > MAX_ERROR_RATE * max(1, r["n"] + r["errors"])}
        if bad:
            for (scenario, level), r in bad.items():
                log(f"too many errors in {scenario} at {level}: {r['errors']} "
                    f"({r['first_error']})")
        lost = {(mode, service): consumer["lost"]
                for mode, result in (propagated or {}).items()
                for service, consumer in result["consumers"].items() if consumer["lost"]}
        for (mode, service), count in lost.items():
            log(f"{count} customer.created events of the {mode} mode never reached {service} "
                f"within {propagation.ARRIVAL_DEADLINE:g} s")
        if bad or lost:
            return 1
        failed = False
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:
        log(f"failed: {exc}")
        traceback.print_exc()
        if processes.up is not None:
            print(processes.log_tail(), file=sys.stderr)
        return 1
    finally:
        log("stopping the system and the echo responders")
        code = processes.stop()
        if code not in (0, None):
            log(f"up.py exited with {code}")
        if vhost_made:
            delete_vhost()
        if args.keep or failed:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
