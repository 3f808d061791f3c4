"""A real Prometheus scraping the running system: deploy/prometheus/prometheus.yml, its targets
pointed at the processes of the ``system`` fixture, finds every target up, the series the
alerts and dashboards are built on, and every alert rule loaded and evaluating.

- The scrape config is the shipped one (same jobs, params and rule files, alerts.yml by its
  absolute path) with every ``<compose service>:<port>`` target rewritten to this machine's
  ``127.0.0.1:<port>`` (``System.metrics_ports``) and a 1 s scrape and evaluation interval.
- The ``rabbitmq`` and ``rabbitmq-queues`` jobs scrape RabbitMQ's own exporter (the
  ``rabbitmq_prometheus`` plugin, port 15692). If it does not answer, the test enables it
  (``rabbitmq-plugins enable rabbitmq_prometheus``); if that cannot be done here, both jobs
  are left out and the test says so (a warning in pytest's summary), rather than failing on
  the machine's broker.
- The server is Debian's ``prometheus`` package (.ci/run installs it, for promtool); without
  it the test skips, saying so. It listens on a free port of 127.0.0.1, never on 9090, and
  keeps its data under the test's tmp_path.

It prints ``PROMETHEUS: ...`` with the jobs scraped and whether RabbitMQ's were.
"""
import copy
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections import defaultdict
from urllib.parse import urlparse

import pytest
import requests
import yaml

from crm_kit.testing import free_port, http_get, wait_until
from e2e_support import ADMIN, ROOT

pytestmark = pytest.mark.e2e

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
SHIPPED_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
#: the nameko services up.py starts (the ``service`` label; their jobs use hyphens)
SERVICES = ("customer", "sales", "service_desk", "marketing", "analytics")
RABBITMQ_PLUGIN_PORT = 15692
RABBITMQ_JOBS = ("rabbitmq", "rabbitmq-queues")
#: how long Prometheus may take, from its start, to see everything this test asks for
DEADLINE = 60.0


@pytest.fixture
def system_env():
    """Metrics ports of its own for every service (the customer's is the fixture's), so that
    no default port (9101..9105) of a `make up` on this machine is scraped instead."""
    return {f"CRM_{name.upper()}_METRICS_PORT": str(free_port())
            for name in SERVICES if name != "customer"}


def prometheus_binary():
    found = shutil.which("prometheus") or next(
        (p for p in ("/usr/bin/prometheus",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus; .ci/run "
                    "does)")
    return found


def rabbitmq_exporter(host):
    """``(address, note)``: RabbitMQ's exporter at ``host:15692``, enabled here if it was not,
    or ``(None, why not)``."""
    address = f"{host}:{RABBITMQ_PLUGIN_PORT}"

    def answers():
        return http_get(f"http://{address}/metrics", timeout=5)[0] == 200

    if answers():
        return address, "rabbitmq_prometheus was already enabled"
    tool = shutil.which("rabbitmq-plugins") or next(
        (p for p in ("/usr/sbin/rabbitmq-plugins", "/usr/lib/rabbitmq/bin/rabbitmq-plugins")
         if os.access(p, os.X_OK)), None)
    if tool is None:
        return None, f"nothing answers on {address} and rabbitmq-plugins is not installed"
    try:
        enabled = subprocess.run([tool, "-q", "enable", "rabbitmq_prometheus"],
                                 capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "`rabbitmq-plugins enable rabbitmq_prometheus` did not finish in 120 s"
    if enabled.returncode != 0:
        why = (enabled.stderr or enabled.stdout).strip().splitlines()[-3:]
        return None, ("`rabbitmq-plugins enable rabbitmq_prometheus` failed "
                      f"({enabled.returncode}): {' '.join(why)}")
    try:
        wait_until(answers, timeout=30, interval=0.5, message=f"{address}/metrics")
    except AssertionError:
        return None, f"rabbitmq_prometheus enabled, but nothing answers on {address} after 30 s"
    return address, "rabbitmq_prometheus enabled by this test"


def scrape_config(system, prometheus_address, rabbitmq_address):
    """The shipped config for this machine: ``(config, jobs it scrapes, jobs left out)``."""
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config = copy.deepcopy(shipped)
    config["global"] = {**shipped.get("global", {}), "scrape_interval": "1s",
                        "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str((PROMETHEUS_DIR / name).resolve())
                            for name in shipped.get("rule_files", [])]
    addresses = {name.replace("_", "-"): f"127.0.0.1:{port}"
                 for name, port in system.metrics_ports.items()}
    addresses["prometheus"] = prometheus_address
    jobs, left_out, kept = [], [], []
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        hosts = {target.rpartition(":")[0] for group in job.get("static_configs", [])
                 for target in group["targets"]}
        if hosts == {"rabbitmq"} and rabbitmq_address is None:
            left_out.append(job["job_name"])
            continue
        for group in job.get("static_configs", []):
            rewritten = []
            for target in group["targets"]:
                host = target.rpartition(":")[0]
                address = rabbitmq_address if host == "rabbitmq" else addresses.get(host)
                assert address, (f"prometheus.yml job {job['job_name']!r} scrapes {target}: no "
                                 f"process of the system is called {host!r} (known: "
                                 f"{sorted(addresses)} and rabbitmq)")
                rewritten.append(address)
            group["targets"] = rewritten
        jobs.append(job["job_name"])
        kept.append(job)
    config["scrape_configs"] = kept
    assert jobs, "prometheus.yml has no scrape job"
    return config, jobs, left_out


class Prometheus:
    """A Prometheus server of the test's own, and its HTTP API."""

    def __init__(self, binary, config, workdir, address):
        self.address = address
        self.workdir = workdir
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / "prometheus.log"
        self.binary = binary
        self.process = None

    @property
    def url(self):
        return f"http://{self.address}"

    def start(self):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address={self.address}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            wait_until(self._ready, timeout=30, interval=0.2, message="Prometheus to be ready")
        except AssertionError:
            self.stop()
            raise AssertionError(f"Prometheus did not become ready:\n{self.log()}") from None
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n"
                                 f"{self.log()}")
        return http_get(self.url + "/-/ready")[0] == 200

    def log(self):
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path, **params):
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body.get("status") == "success", \
            f"/api/v1/{path} {params}: {response.status_code} {response.text[:500]}"
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]


@pytest.fixture
def prometheus(system, vhost, tmp_path):
    """``(Prometheus, jobs it scrapes, jobs left out, note on RabbitMQ)`` over ``system``."""
    binary = prometheus_binary()
    broker_host = urlparse(system.env["CRM_AMQP_URI"]).hostname or "127.0.0.1"
    rabbitmq_address, rabbitmq_note = rabbitmq_exporter(broker_host)
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    address = f"127.0.0.1:{free_port()}"
    config, jobs, left_out = scrape_config(system, address, rabbitmq_address)
    server = Prometheus(binary, config, workdir, address).start()
    try:
        yield server, jobs, left_out, rabbitmq_note
    finally:
        server.stop()


def drive_traffic(base):
    """Sign in as the admin, create a customer and read it back: requests at the gateway, RPCs
    to the customer service, an event in its outbox."""
    token = requests.post(base + "/api/v1/auth/token",
                          json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    created = requests.post(base + "/api/v1/customers", headers=headers, timeout=15,
                            json={"name": "普罗米修斯", "mobile": "13700137000"})
    assert created.status_code == 201, created.text
    read = requests.get(f"{base}/api/v1/customers/{created.json()['id']}", headers=headers,
                        timeout=15)
    assert read.status_code == 200, read.text


def eventually(check, what, deadline):
    """Wait until ``check()`` returns None (no problem); at the deadline fail with the last
    problem it described."""
    last = {"problem": "never checked"}

    def fine():
        last["problem"] = check()
        return last["problem"] is None

    timeout = max(deadline - time.monotonic(), 1.0)
    try:
        wait_until(fine, timeout=timeout, interval=0.5, message=what)
    except AssertionError:
        raise AssertionError(f"{what}, still not so after {DEADLINE:.0f}s: "
                             f"{last['problem']}") from None


def targets_problem(server, jobs):
    data = server.api("targets", state="active")
    by_job = defaultdict(list)
    for target in data["activeTargets"]:
        by_job[target["labels"]["job"]].append(target)
    problems = []
    for job in jobs:
        found = by_job.get(job, [])
        if len(found) != 1:
            problems.append(f"job {job}: {len(found)} active targets, expected 1")
        for target in found:
            if target["health"] != "up":
                problems.append(f"job {job} ({target['scrapeUrl']}) is {target['health']}: "
                                f"{target['lastError'] or 'not scraped yet'}")
    for job in sorted(set(by_job) - set(jobs)):
        problems.append(f"unexpected job {job}")
    return "; ".join(problems) or None


def series_problem(server, expr, label=None, want=()):
    """None if ``expr`` has a sample (one for each ``label`` value in ``want``)."""
    result = server.query(expr)
    if not result:
        return f"{expr} has no sample"
    if label:
        have = {sample["metric"].get(label) for sample in result}
        missing = sorted(set(want) - have)
        if missing:
            return (f"{expr} has no sample with {label}={missing} "
                    f"(it has {sorted(h for h in have if h)})")
    return None


def rules_problem(server, expected_rules):
    groups = server.api("rules")["groups"]
    if not groups:
        return "no rule group loaded"
    problems = []
    loaded = set()
    for group in groups:
        for rule in group["rules"]:
            loaded.add(rule["name"])
            where = f"{group['name']}/{rule['name']}"
            if rule.get("health") != "ok":
                problems.append(f"{where} health {rule.get('health')!r}: "
                                f"{rule.get('lastError') or 'not evaluated yet'}")
            elif rule.get("lastEvaluation", "").startswith("0001-"):
                problems.append(f"{where} not evaluated yet")
    missing = sorted(set(expected_rules) - loaded)
    if missing:
        problems.append(f"rules of the rule files not loaded: {missing}")
    return "; ".join(problems) or None


def shipped_rules():
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    names = []
    for name in config.get("rule_files", []):
        for group in yaml.safe_load((PROMETHEUS_DIR / name).read_text())["groups"]:
            names += [rule.get("alert") or rule.get("record") for rule in group["rules"]]
    return names


def test_prometheus_scrapes_every_target_of_the_running_system(system, prometheus, vhost):
    server, jobs, left_out, rabbitmq_note = prometheus
    deadline = time.monotonic() + DEADLINE
    if left_out:
        note = (f"RabbitMQ's exporter is not available here ({rabbitmq_note}): jobs "
                f"{', '.join(left_out)} of prometheus.yml were left out")
        print(f"PROMETHEUS: {note}")
        warnings.warn(note)
    drive_traffic(system.url)

    eventually(lambda: targets_problem(server, jobs), "every target of prometheus.yml up",
               deadline)

    def up_problem():
        result = server.query("up")
        down = sorted(s["metric"]["job"] for s in result if s["value"][1] != "1")
        if down:
            return f"up is not 1 for {down}"
        return series_problem(server, "up", "job", jobs)

    checks = [
        ("up == 1 for every job", up_problem),
        ("crm_build_info of every service and the gateway",
         lambda: series_problem(server, "crm_build_info", "service", SERVICES + ("gateway",))),
        ("the gateway's request counter",
         lambda: series_problem(server, 'crm_http_requests_total{job="gateway", '
                                        'route="/api/v1/customers", method="POST", '
                                        'status="201"}')),
        ("the gateway's request latency histogram",
         lambda: series_problem(server, 'crm_http_request_duration_seconds_bucket{'
                                        'job="gateway", route="/api/v1/customers", '
                                        'method="POST"}')),
        ("the gateway's RPC client counter",
         lambda: series_problem(server, 'crm_rpc_client_calls_total{job="gateway", '
                                        'service="customer", outcome="ok"}')),
        ("the customer service's entrypoint counter",
         lambda: series_problem(server, 'crm_entrypoint_calls_total{job="customer", '
                                        'service="customer", kind="rpc", outcome="ok"}')),
        ("the customer service's entrypoint latency histogram",
         lambda: series_problem(server, 'crm_entrypoint_duration_seconds_bucket{'
                                        'job="customer", kind="rpc"}')),
        ("the customer service's published events",
         lambda: series_problem(server, 'crm_events_published_total{job="customer"}')),
        ("crm_outbox_backlog of every service",
         lambda: series_problem(server, "crm_outbox_backlog", "service", SERVICES)),
        ("crm_dead_letters of every service",
         lambda: series_problem(server, "crm_dead_letters", "service", SERVICES)),
    ]
    if "rabbitmq" in jobs:
        checks.append(("RabbitMQ's alarm series (rabbitmq job)",
                       lambda: series_problem(server, 'rabbitmq_alarms_memory_used_watermark'
                                                      '{job="rabbitmq"}')))
    if "rabbitmq-queues" in jobs:
        for name in ("rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers"):
            checks.append((f"{name} of this system's queues (rabbitmq-queues job)",
                           lambda name=name: series_problem(
                               server, f'{name}{{job="rabbitmq-queues", vhost="{vhost}"}}',
                               "queue", ["rpc-customer"])))
    for what, check in checks:
        eventually(check, what, deadline)

    eventually(lambda: rules_problem(server, shipped_rules()),
               "every rule of the rule files loaded and evaluated without error", deadline)

    print(f"PROMETHEUS: {len(jobs)} jobs up ({', '.join(jobs)}); RabbitMQ: "
          + (f"scraped ({rabbitmq_note})" if not left_out else f"left out ({rabbitmq_note})"))
