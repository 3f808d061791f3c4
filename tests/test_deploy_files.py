"""The container and deployment files agree with the code and with each other.

No network and no docker engine: docker-compose.yml, the Dockerfiles, .dockerignore and deploy/
are read as files. Where a tool can check more without an engine (the `docker compose` CLI,
the installed CRM packages), the test uses it and otherwise skips, saying why.

Conventions these checks hold every service to (deploy/README.md, "Adding a service"):
folder services/<dir>  ->  compose service <dir>, Dockerfile services/<dir>/Dockerfile,
python module <key>_service, database and role <key>, metrics port METRICS_PORTS[<key>],
where <key> is <dir> with '-' replaced by '_' (services/service-desk -> service_desk).
"""
import ast
import importlib.util
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
POSTGRES_INIT = DEPLOY / "postgres" / "initdb.d" / "10-crm-databases.sh"
MAKE_ENV = DEPLOY / "make-env.sh"
INFRA = {"rabbitmq", "postgres"}


# ---------------------------------------------------------------- what the repository holds

def service_dirs():
    return sorted(p.name for p in (ROOT / "services").iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")))


def key(service_dir):
    return service_dir.replace("-", "_")


@lru_cache(maxsize=None)
def metrics_ports():
    """METRICS_PORTS from kit/crm_kit/config.py, read as a literal (the kit need not be installed)."""
    tree = ast.parse((ROOT / "kit" / "crm_kit" / "config.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "METRICS_PORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("kit/crm_kit/config.py defines no METRICS_PORTS")


class App:
    """A CRM process that ships as an image: a service or the gateway."""

    def __init__(self, name, folder, module, port, database, database_env):
        self.name, self.folder, self.module = name, folder, module
        self.port, self.database, self.database_env = port, database, database_env

    @property
    def dockerfile(self):
        return f"{self.folder}/Dockerfile"

    def __repr__(self):
        return self.name


def apps():
    found = [App("gateway", "gateway", "crm_gateway", metrics_ports()["gateway"], "gateway",
                 "CRM_GATEWAY_DATABASE_URL")]
    for d in service_dirs():
        found.append(App(d, f"services/{d}", f"{key(d)}_service",
                         metrics_ports().get(key(d)), key(d), "CRM_DATABASE_URL"))
    return found


APPS = apps()
SERVICE_APPS = [a for a in APPS if a.name != "gateway"]


# ---------------------------------------------------------------- compose, read as text and YAML

@lru_cache(maxsize=None)
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())  # safe_load resolves the `<<:` merge keys


def services():
    return compose()["services"]


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text, env=None):
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, with `env` as the environment."""
    env = env or {}

    def one(m):
        value = env.get(m["name"])
        if m["op"] in (":-", "-"):
            return value if value else m["arg"]
        if m["op"] in (":?", "?") and not value:
            raise KeyError(m["name"])
        return value or ""
    return _VAR.sub(one, str(text))


def environment(service):
    env = services()[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def container_ports(service):
    """Every port the service's containers listen on, as compose declares it."""
    svc = services()[service]
    ports = {int(interpolate(p)) for p in svc.get("expose", [])}
    for spec in svc.get("ports", []):
        ports.add(int(interpolate(spec).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def published(service):
    """{container port: host port} of the service's published ports (defaults interpolated)."""
    out = {}
    for spec in services().get(service, {}).get("ports", []):
        parts = interpolate(spec).split(":")
        out[int(parts[-1])] = int(parts[-2])
    return out


# ---------------------------------------------------------------- Dockerfiles

def dockerfile_instructions(path):
    """[(INSTRUCTION, arguments)], continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        current = ""
    return instructions


def arguments(instruction_args):
    """Exec-form (JSON array) or shell-form arguments as a list."""
    if instruction_args.startswith("["):
        return json.loads(instruction_args)
    return shlex.split(instruction_args)


def copy_sources(instruction_args):
    words = arguments(instruction_args)
    if any(w.startswith("--from") for w in words):
        return []  # from another stage or image, not from the build context
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def the(instructions, name):
    found = [args for word, args in instructions if word == name]
    assert found, f"no {name} instruction"
    return found[-1]


# ---------------------------------------------------------------- .dockerignore (Docker's rules)

@lru_cache(maxsize=None)
def dockerignore_rules():
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.strip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((re.compile(regex + r"\Z"), negate))
    return rules


def docker_ignores(relpath):
    """True when Docker leaves `relpath` out of the build context: the last rule that matches the
    path or one of its parent folders decides."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for regex, negate in dockerignore_rules():
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


# ---------------------------------------------------------------- every app has an image and a service

def test_every_service_folder_is_known():
    assert (ROOT / "services" / "customer").is_dir()
    assert [a.name for a in SERVICE_APPS] == service_dirs()


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_app_has_a_metrics_port_in_the_kit(app):
    assert app.port, (f"crm_kit.config.METRICS_PORTS has no port for {key(app.name)!r}: "
                      "add one there first")


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_compose_service_is_built_from_the_apps_dockerfile(app):
    assert app.name in services(), f"docker-compose.yml has no service {app.name!r}"
    build = services()[app.name].get("build")
    assert isinstance(build, dict), f"{app.name}: build must be {{context: ., dockerfile: ...}}"
    assert build.get("context") == ".", "the build context is the repository root"
    assert build.get("dockerfile") == app.dockerfile
    assert (ROOT / app.dockerfile).is_file()


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_dockerfile_copies_only_what_exists_and_is_in_the_context(app):
    instructions = dockerfile_instructions(ROOT / app.dockerfile)
    sources = [s for word, args in instructions if word in ("COPY", "ADD")
               for s in copy_sources(args)]
    assert "kit/" in sources and f"{app.folder}/" in sources, \
        "the image installs the kit and the app from the build context"
    # the image is the app's own folder, the kit and the pins: another app's change leaves it
    # as it is (docs/upgrades.md)
    assert set(sources) <= {"requirements/constraints.txt", "kit/", f"{app.folder}/"}, sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"{app.dockerfile}: COPY source {source} does not exist"
        assert not docker_ignores(source), f".dockerignore leaves {source} out of the context"
        if path.is_dir():  # what pip needs from the folder must reach the image
            needed = [path / "pyproject.toml"] + [
                p for p in path.rglob("*.py")
                if "tests" not in p.relative_to(path).parts
                and "__pycache__" not in p.parts and ".egg-info" not in str(p)]
            for p in needed:
                rel = p.relative_to(ROOT).as_posix()
                assert p.exists(), f"{rel} is missing"
                assert not docker_ignores(rel), f".dockerignore leaves {rel} out of the context"


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_dockerfile_installs_from_the_pins_on_python_311_slim(app):
    instructions = dockerfile_instructions(ROOT / app.dockerfile)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", the(instructions, "FROM").split()[0])
    installs = [args for word, args in instructions if word == "RUN" and "pip install" in args]
    assert installs, "no pip install"
    for args in installs:
        assert "-c requirements/constraints.txt" in args, f"unpinned install: {args}"


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_image_runs_as_a_non_root_user(app):
    user = the(dockerfile_instructions(ROOT / app.dockerfile), "USER").split(":")[0]
    assert user not in ("root", "0"), f"{app.dockerfile} runs as root"


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_image_exposes_and_health_checks_its_metrics_port(app):
    instructions = dockerfile_instructions(ROOT / app.dockerfile)
    assert str(app.port) in the(instructions, "EXPOSE").split()
    env = " ".join(args for word, args in instructions if word == "ENV")
    if app.name == "gateway":
        assert f"CRM_GATEWAY_BIND=0.0.0.0:{app.port}" in env
    else:
        assert f"CRM_METRICS_PORT={app.port}" in env
        assert "CRM_METRICS_HOST=0.0.0.0" in env, "the kit binds 127.0.0.1 unless told otherwise"
    healthcheck = the(instructions, "HEALTHCHECK")
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck
    assert str(app.port) in healthcheck


def entry_point(app):
    """(modules that must be importable, (module, attribute) the process starts) from the CMD."""
    cmd = the(dockerfile_instructions(ROOT / app.dockerfile), "CMD")
    assert cmd.startswith("["), "CMD in exec form, so SIGTERM reaches the process"
    argv = json.loads(cmd)
    if app.name == "gateway":
        assert argv[:3] == ["gunicorn", "-c", "python:crm_gateway.gunicorn_conf"], argv
        target = argv[3]
        assert target == "crm_gateway.app:create_app()", argv
        return ["gunicorn", "crm_gateway.gunicorn_conf"], ("crm_gateway.app", "create_app")
    assert argv[:3] == ["python", "-m", "crm_kit.run"], argv
    module, _, attribute = argv[3].partition(":")
    assert module == f"{app.module}.service" and attribute, argv
    return ["crm_kit.run"], (module, attribute)


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_cmd_names_an_importable_entry_point(app):
    modules, (module, attribute) = entry_point(app)
    missing = [m for m in {m.split(".")[0] for m in modules + [module]}
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(sorted(missing))} not installed in this venv "
                    f"(pip install -e kit -e {app.folder}); CMD checked for shape only")
    for m in modules + [module]:
        assert importlib.util.find_spec(m) is not None, f"{app.dockerfile}: no module {m}"
    # Import in a child process: the service module may import eventlet and nameko.
    probe = subprocess.run(
        [sys.executable, "-c",
         "import importlib, sys; getattr(importlib.import_module(sys.argv[1]), sys.argv[2])",
         module, attribute],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert probe.returncode == 0, f"{module}:{attribute} does not import:\n{probe.stderr}"


# ---------------------------------------------------------------- compose wiring

def test_every_compose_service_has_a_healthcheck():
    for name, svc in services().items():
        test = (svc.get("healthcheck") or {}).get("test")
        assert test and not (svc["healthcheck"].get("disable")), f"{name} has no healthcheck"


def test_every_compose_service_restarts():
    for name, svc in services().items():
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), name


def test_depends_on_names_existing_services_and_waits_for_health():
    for name, svc in services().items():
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on with conditions, not a list"
        for other, spec in depends.items():
            assert other in services(), f"{name} depends on unknown service {other}"
            assert spec.get("condition") == "service_healthy", f"{name} -> {other}"


@pytest.mark.parametrize("app", APPS, ids=repr)
def test_app_waits_for_broker_and_database_and_gets_the_kit_settings(app):
    svc = services()[app.name]
    assert INFRA <= set(svc.get("depends_on") or {})
    env = environment(app.name)
    assert env.get("CRM_AMQP_URI", "").endswith("@rabbitmq:5672/")
    url = env.get(app.database_env, "")
    assert url.startswith(f"postgresql://{app.database}:"), f"{app.database_env}={url}"
    assert url.endswith(f"@postgres:5432/{app.database}"), f"{app.database_env}={url}"
    if app.name == "gateway":
        assert env["CRM_GATEWAY_BIND"] == f"0.0.0.0:{app.port}"
        for name in ("CRM_JWT_SECRET", "CRM_ADMIN_USERNAME", "CRM_ADMIN_PASSWORD"):
            assert name in env
    else:
        assert env.get("CRM_METRICS_PORT") == str(app.port)
        assert env.get("CRM_METRICS_HOST") == "0.0.0.0", "Prometheus scrapes from another container"
    assert app.port in container_ports(app.name), f"{app.name} must expose {app.port}"


def test_published_ports():
    assert published("gateway").get(8000) == 8000
    assert published("rabbitmq").get(15672) == 15672
    assert published("prometheus").get(9090) == 9090
    # the broker's AMQP port, the database and the services stay on the compose network
    assert set(published("rabbitmq")) == {15672}
    for name in ["postgres"] + [a.name for a in SERVICE_APPS]:
        assert not published(name), f"{name} publishes {published(name)}"


def test_infrastructure_images():
    assert services()["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    assert services()["postgres"]["image"].split(":")[1].split("-")[0] == "16"
    assert services()["prometheus"]["image"].startswith("prom/prometheus:v")
    assert services()["rabbitmq"]["healthcheck"]["test"][1:] == ["rabbitmq-diagnostics", "-q", "ping"]


def mounts(service):
    out = {}
    for volume in services()[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


def test_mounted_deploy_files_exist():
    for name in services():
        for target, source in mounts(name).items():
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_rabbitmq_enables_management_and_prometheus_plugins():
    assert mounts("rabbitmq")["/etc/rabbitmq/enabled_plugins"] == "./deploy/rabbitmq/enabled_plugins"
    text = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text().strip()
    assert re.fullmatch(r"\[[a-z_, ]+\]\.", text), "an Erlang list ending with a full stop"
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= {
        p.strip() for p in text[1:-2].split(",")}
    assert 15692 in container_ports("rabbitmq")


# ---------------------------------------------------------------- Prometheus

@lru_cache(maxsize=None)
def prometheus():
    return yaml.safe_load(PROMETHEUS_FILE.read_text())


def scrape_targets():
    """[(job, host, port, metrics_path)]"""
    out = []
    for job in prometheus()["scrape_configs"]:
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                out.append((job["job_name"], host, int(port), job.get("metrics_path", "/metrics")))
    return out


def test_prometheus_is_mounted_with_its_rules():
    assert mounts("prometheus")["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert mounts("prometheus")["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
    assert prometheus()["rule_files"] == ["alerts.yml"]


def test_every_prometheus_target_is_a_compose_service_port():
    jobs = [job["job_name"] for job in prometheus()["scrape_configs"]]
    assert len(jobs) == len(set(jobs)), "job names must be unique"
    for job, host, port, _ in scrape_targets():
        assert host in services(), f"job {job}: no compose service {host}"
        assert port in container_ports(host), f"job {job}: {host} does not expose {port}"


def test_every_app_and_the_broker_are_scraped():
    scraped = {(host, port, path) for _, host, port, path in scrape_targets()}
    for app in APPS:
        assert (app.name, app.port, "/metrics") in scraped, f"{app.name}:{app.port} not scraped"
    assert ("rabbitmq", 15692, "/metrics") in scraped
    jobs = {job: host for job, host, _, _ in scrape_targets()}
    for app in APPS:
        assert jobs.get(app.name) == app.name, f"the job of {app.name} is named {app.name}"


def test_alert_rules_are_well_formed():
    rules = yaml.safe_load(ALERTS_FILE.read_text())
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert len(names) == len(set(names)), "alert names are unique"
    # what operations asked for (issue "Operations"): each has its unit test in
    # deploy/prometheus/tests (tests/test_prometheus_rules.py runs them)
    assert {"CrmTargetDown", "CrmServiceErrorRatioHigh", "CrmGatewayErrorRatioHigh",
            "CrmServiceLatencyHigh", "CrmGatewayLatencyHigh", "CrmOutboxBacklogGrowing",
            "CrmDeadLetters", "RabbitmqQueueHasNoConsumers", "RabbitmqQueueGrowing",
            "CrmSlaBreachesSpiking", "CrmOverdueBillsSpiking"} <= set(names)
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["expr"] and rule["labels"]["severity"] and rule["annotations"]["summary"]
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]


# ---------------------------------------------------------------- metric names in PromQL

#: Series of RabbitMQ's rabbitmq_prometheus plugin the rules and dashboards may use: from
#: /metrics (aggregated), and from /metrics/detailed by family (named rabbitmq_detailed_...).
RABBITMQ_METRICS = {
    "rabbitmq_alarms_memory_used_watermark", "rabbitmq_alarms_free_disk_space_watermark",
    "rabbitmq_alarms_file_descriptor_limit", "rabbitmq_identity_info", "rabbitmq_build_info",
    "rabbitmq_connections", "rabbitmq_channels", "rabbitmq_consumers", "rabbitmq_queues",
    "rabbitmq_queue_messages", "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_consumers",
}
RABBITMQ_DETAILED_FAMILIES = {
    "queue_coarse_metrics": {"rabbitmq_detailed_queue_messages_ready",
                             "rabbitmq_detailed_queue_messages_unacked",
                             "rabbitmq_detailed_queue_messages",
                             "rabbitmq_detailed_queue_process_reductions_total"},
    "queue_consumer_count": {"rabbitmq_detailed_queue_consumers"},
}
#: series Prometheus itself makes for every target
PROMETHEUS_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def _exposed(kind, name):
    """The series prometheus_client exposes for a metric (``_created`` is disabled in the kit)."""
    if kind == "Counter":
        return {name if name.endswith("_total") else name + "_total"}
    if kind == "Histogram":
        return {name + "_bucket", name + "_sum", name + "_count"}
    if kind == "Summary":
        return {name, name + "_sum", name + "_count"}
    if kind == "Info":
        return {name + "_info"}
    return {name}


@lru_cache(maxsize=None)
def code_metrics():
    """Every series the CRM's code declares with prometheus_client: the kit (all services), the
    gateway, and anything a service declares itself. Read with ast, nothing is imported."""
    files = list((ROOT / "kit" / "crm_kit").glob("*.py")) + \
        list((ROOT / "gateway" / "crm_gateway").rglob("*.py")) + \
        [p for p in (ROOT / "services").rglob("*.py")
         if "tests" not in p.parts and "migrations" not in p.parts]
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            if kind in _METRIC_CLASSES and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                names |= _exposed(kind, first.value)
    return frozenset(names)


def rabbitmq_detailed_scraped():
    """The rabbitmq_detailed_ series the rabbitmq-queues job asks for (its `family` params)."""
    out = set()
    for job in prometheus()["scrape_configs"]:
        if job.get("metrics_path") == "/metrics/detailed":
            for family in job.get("params", {}).get("family", []):
                out |= RABBITMQ_DETAILED_FAMILIES.get(family, set())
    return out


def known_metrics():
    return code_metrics() | RABBITMQ_METRICS | rabbitmq_detailed_scraped() | PROMETHEUS_METRICS


_PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                 "group_left", "group_right", "inf", "nan", "atan2"}


def promql_metric_names(expr):
    """The metric names a PromQL expression reads (functions, keywords, labels, strings,
    durations and Grafana's $variables left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"'(?:[^'\\]|\\.)*'", "''", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                     # ranges and subqueries
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\boffset\s+-?[0-9a-z]+", "", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)                    # $__rate_interval, ${var}
    names = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        if m.group(2) or m.group(1).lower() in _PROMQL_WORDS:
            continue  # a function or an aggregation, or a keyword
        names.add(m.group(1))
    return names


def test_promql_metric_names_are_read_correctly():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (service, le) (rate(x_bucket{kind="rpc", a=~"b|c"}[5m])))'
        ' > 2.5 and on (service) y offset 1h or vector(0) unless z[$__rate_interval] * 1e3') \
        == {"x_bucket", "y", "z"}
    assert promql_metric_names("up == 0") == {"up"}
    assert promql_metric_names("count(a == 0) or vector(0)") == {"a"}


def test_code_metrics_are_found():
    assert {"crm_entrypoint_calls_total", "crm_entrypoint_duration_seconds_bucket",
            "crm_events_handled_total", "crm_outbox_backlog", "crm_dead_letters",
            "crm_http_requests_total", "crm_http_request_duration_seconds_bucket",
            "crm_rpc_client_calls_total"} <= code_metrics()


def alert_rules():
    rules = yaml.safe_load(ALERTS_FILE.read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_alert_rules_use_only_metrics_that_exist(rule):
    names = promql_metric_names(rule["expr"])
    assert names, f"no metric found in {rule['expr']!r}"
    unknown = names - known_metrics()
    assert not unknown, (f"{rule.get('alert')}: {sorted(unknown)} is exported by no code in "
                         "kit/, gateway/ or services/, nor scraped from RabbitMQ")


# events the business rules and panels count: the service named consumes them (handled) or
# publishes them (published), and some service emits them

_SELECTOR = re.compile(r"(?P<metric>crm_events_handled_total|crm_events_published_total)"
                       r"\{(?P<matchers>[^}]*)\}")
_MATCHER = re.compile(r'(?P<label>\w+)\s*(?P<op>=~|!=|!~|=)\s*"(?P<value>[^"]*)"')


def counted_events(expr):
    """[(metric, service or None, event_type)] of every crm_events_handled_total or
    crm_events_published_total selector naming an event type."""
    out = []
    for sel in _SELECTOR.finditer(expr):
        matchers = {m["label"]: (m["op"], m["value"]) for m in _MATCHER.finditer(sel["matchers"])}
        if "event_type" in matchers:
            op, value = matchers["event_type"]
            types = value.split("|") if op == "=~" else [value]
            service = matchers["service"][1] if "service" in matchers else None
            out += [(sel["metric"], service, t) for t in types]
    return out


@lru_cache(maxsize=None)
def consumed_events():
    """{service: {event types}} from `("source", "type")` pairs in each service's code
    (@on_event(...) and the analytics ingest table)."""
    pair = re.compile(r'\(\s*"([a-z_]+)"\s*,\s*"([a-z_]+\.[a-z_.]+)"\s*\)')
    out = {}
    for d in service_dirs():
        text = "\n".join(p.read_text() for p in (ROOT / "services" / d / f"{key(d)}_service").glob("*.py"))
        out[key(d)] = {m.group(2) for m in pair.finditer(text)}
    return out


@lru_cache(maxsize=None)
def emitted_by():
    """{service: {event types it emits}}: record_event(session, "type", ...) and the
    (type, data) pairs record_events takes, in each service's code."""
    pattern = re.compile(r'record_event\(\s*session\s*,\s*"([a-z_]+\.[a-z_.]+)"'
                         r'|\(\s*"([a-z_]+\.[a-z_.]+)"\s*,\s*[{\w]')
    out = {}
    for d in service_dirs():
        found = out.setdefault(key(d), set())
        for p in (ROOT / "services" / d).rglob("*_service/*.py"):
            for m in pattern.finditer(p.read_text()):
                found.add(m.group(1) or m.group(2))
    return out


def emitted_events():
    return set().union(*emitted_by().values())


def check_counted_events(where, expr):
    for metric, service, event_type in counted_events(expr):
        assert event_type in emitted_events(), f"{where}: no service emits {event_type}"
        if metric == "crm_events_handled_total" and service:
            assert event_type in consumed_events().get(service, set()), \
                f"{where}: the {service} service does not consume {event_type}"
        if metric == "crm_events_published_total" and service:
            assert event_type in emitted_by().get(service, set()), \
                f"{where}: the {service} service does not publish {event_type}"


def test_counted_events_are_checked_against_the_code():
    check_counted_events("ok", 'crm_events_published_total{service="sales", event_type="bill.overdue"}')
    with pytest.raises(AssertionError, match="does not publish bill.overdue"):
        check_counted_events("x", 'crm_events_published_total{service="customer", '
                                  'event_type="bill.overdue"}')
    with pytest.raises(AssertionError, match="no service emits lease.teleported"):
        check_counted_events("x", 'crm_events_published_total{event_type=~"lease.signed|lease.teleported"}')


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_alert_rules_count_events_that_are_emitted_and_consumed(rule):
    check_counted_events(rule["alert"], rule["expr"])


# ---------------------------------------------------------------- Grafana

GRAFANA = DEPLOY / "grafana"


def grafana_dashboards():
    return sorted((GRAFANA / "dashboards").glob("*.json"))


def dashboard(path):
    return json.loads(path.read_text())


def all_panels(board):
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def queries(board):
    """[(panel title, expr)]"""
    return [(p["title"], t["expr"]) for p in all_panels(board) for t in p.get("targets", [])]


def grafana_datasource():
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = doc["datasources"]
    return source


def test_grafana_dashboards_are_the_overview_and_business_ones():
    titles = {dashboard(p)["title"]: dashboard(p) for p in grafana_dashboards()}
    assert {"CRM overview", "CRM business"} <= set(titles)
    uids = [dashboard(p)["uid"] for p in grafana_dashboards()]
    assert len(uids) == len(set(uids)), "dashboard uids are unique"
    for path in grafana_dashboards():
        board = dashboard(path)
        ids = [p["id"] for p in all_panels(board)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids are unique"
        for panel in all_panels(board):
            if panel["type"] != "row":
                assert panel.get("targets"), f"{path.name}: {panel['title']} has no query"
                for target in panel["targets"]:
                    assert target["expr"].strip() and target["refId"]


def test_every_panel_uses_the_provisioned_datasource():
    source = grafana_datasource()
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert 9090 in container_ports("prometheus")
    expected = {"type": "prometheus", "uid": source["uid"]}
    for path in grafana_dashboards():
        for panel in all_panels(dashboard(path)):
            if panel["type"] == "row":
                continue
            assert panel.get("datasource") == expected, f"{path.name}: {panel['title']}"
            for target in panel["targets"]:
                assert target.get("datasource", expected) == expected, f"{path.name}: {panel['title']}"


@pytest.mark.parametrize("path", grafana_dashboards(), ids=lambda p: p.name)
def test_dashboard_queries_use_only_metrics_that_exist(path):
    for title, expr in queries(dashboard(path)):
        names = promql_metric_names(expr)
        assert names, f"{path.name}: {title}: no metric found in {expr!r}"
        unknown = names - known_metrics()
        assert not unknown, f"{path.name}: {title}: {sorted(unknown)} is exported by nothing"
        check_counted_events(f"{path.name}: {title}", expr)


def test_overview_dashboard_shows_every_series_the_code_exports():
    [overview] = [dashboard(p) for p in grafana_dashboards() if dashboard(p)["uid"] == "crm-overview"]
    shown = set().union(*(promql_metric_names(expr) for _, expr in queries(overview)))
    # the histograms' _sum and _count, and build info, need no panel of their own
    wanted = {n for n in code_metrics() if not n.endswith(("_sum", "_count")) and "build_info" not in n}
    assert not wanted - shown, f"not on the overview dashboard: {sorted(wanted - shown)}"
    assert {"rabbitmq_detailed_queue_messages_ready", "rabbitmq_detailed_queue_consumers"} <= shown


def test_grafana_is_provisioned_from_the_repository():
    svc = services()["grafana"]
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", svc["image"]), "a pinned release"
    assert mounts("grafana")["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "crm.yml").read_text())["providers"]
    for provider in providers:
        path = provider["options"]["path"]
        assert mounts("grafana").get(path) == "./deploy/grafana/dashboards", \
            f"the dashboards folder is mounted where the provider {provider['name']} reads"
    home = environment("grafana").get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert (ROOT / "deploy" / "grafana" / "dashboards" / Path(home).name).is_file()
        assert Path(home).parent.as_posix() in mounts("grafana")
    assert set(svc["depends_on"]) == {"prometheus"}
    assert published("grafana").get(3000) == 3000
    assert any("CRM_OPS_ADDRESS" in spec for spec in svc["ports"]), \
        "published on the ops address, like Prometheus"


def test_grafana_admin_password_is_required_from_the_environment():
    env = environment("grafana")
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${CRM_GRAFANA_ADMIN_PASSWORD:?run deploy/make-env.sh}"
    assert env.get("GF_USERS_ALLOW_SIGN_UP") == "false"
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "false") == "false"
    assert "CRM_GRAFANA_ADMIN_PASSWORD" in (DEPLOY / "README.md").read_text()


# ---------------------------------------------------------------- PostgreSQL

def test_postgres_creates_a_database_and_role_for_every_app():
    assert mounts("postgres")["/docker-entrypoint-initdb.d"] == "./deploy/postgres/initdb.d"
    env = environment("postgres")
    databases = env["CRM_DATABASES"].split()
    assert sorted(databases) == sorted(a.database for a in APPS)
    for name in databases:
        var = f"CRM_{name.upper()}_DB_PASSWORD"
        assert env.get(var) == f"${{{var}:?run deploy/make-env.sh}}", f"postgres needs {var}"
    assert env["POSTGRES_PASSWORD"].startswith("${CRM_POSTGRES_PASSWORD:?")
    # the healthcheck goes over TCP, so it stays red while the init script runs
    assert "127.0.0.1" in services()["postgres"]["healthcheck"]["test"]


def test_postgres_init_script_creates_each_database(tmp_path):
    """Runs the init script with a stand-in psql that records what it is sent."""
    assert POSTGRES_INIT.stat().st_mode & stat.S_IXUSR, "the init script must be executable"
    fake = tmp_path / "bin" / "psql"
    fake.parent.mkdir()
    log = tmp_path / "psql.log"
    fake.write_text(f'#!/usr/bin/env bash\n{{ printf "ARGS %s\\n" "$*"; cat; }} >> "{log}"\n')
    fake.chmod(0o755)
    names = [a.database for a in APPS]
    env = {"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
           "POSTGRES_USER": "postgres", "CRM_DATABASES": " ".join(names)}
    env.update({f"CRM_{n.upper()}_DB_PASSWORD": f"pw-{n}" for n in names})
    run = subprocess.run(["bash", str(POSTGRES_INIT)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    calls = log.read_text().split("ARGS ")[1:]
    assert len(calls) == len(names)
    for name, call in zip(names, calls):
        assert f"--set=name={name} --set=password=pw-{name}" in call
        for statement in ("CREATE ROLE %I LOGIN", "PASSWORD %L", "CREATE DATABASE %I OWNER %I",
                          "REVOKE ALL ON DATABASE %I FROM PUBLIC"):
            assert statement in call
        assert f"pw-{name}" not in call.split("\n", 1)[1], "the password never enters SQL text"
    # a missing password stops the init (and so the container) instead of leaving a hole
    env.pop(f"CRM_{names[-1].upper()}_DB_PASSWORD")
    run = subprocess.run(["bash", str(POSTGRES_INIT)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0 and f"CRM_{names[-1].upper()}_DB_PASSWORD" in run.stderr


# ---------------------------------------------------------------- secrets

SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET")


def deploy_text_files():
    files = [COMPOSE_FILE] + [p for p in DEPLOY.rglob("*") if p.is_file()]
    return [p for p in files if p.suffix in ("", ".yml", ".yaml", ".sh", ".md", ".conf", ".txt",
                                             ".env", ".example")]


def test_no_admin_password_literal_in_deploy_files_or_compose():
    assignment = re.compile(r"CRM_ADMIN_PASSWORD\s*[=:]\s*(?P<value>\S*)")
    for path in deploy_text_files():
        for line in path.read_text().splitlines():
            for m in assignment.finditer(line):
                value = m["value"].strip("\"'`")
                assert value.startswith(("${CRM_ADMIN_PASSWORD:?", "$(")) or not value, \
                    f"{path.relative_to(ROOT)}: admin password literal in {line.strip()!r}"


def test_every_secret_in_compose_is_required_from_the_environment():
    text = COMPOSE_FILE.read_text()
    for m in _VAR.finditer(text):
        if SECRET_NAME.search(m["name"]):
            assert m["op"] in (":?", "?"), f"${{{m['name']}}} must be required, not defaulted"
    for name, svc in services().items():
        for var, value in environment(name).items():
            if SECRET_NAME.search(var):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), f"{name}.{var}={value}"
            for cred in re.finditer(r"://(?:\$\{[^}]*\}|[^:/@$]+):(?P<password>[^@]*)@", value):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", cred["password"]), \
                    f"{name}.{var} has a password that is not required from the environment"


def test_dotenv_never_enters_an_image():
    assert docker_ignores(".env") and docker_ignores("services/customer/.env")
    assert docker_ignores(".git/config") and docker_ignores(".venv/bin/python")


def required_variables():
    return sorted({m["name"] for m in _VAR.finditer(COMPOSE_FILE.read_text())
                   if m["op"] in (":?", "?")})


def read_env_file(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))


def test_make_env_writes_every_required_setting_once(tmp_path):
    target = tmp_path / ".env"
    run = subprocess.run(["bash", str(MAKE_ENV), str(target)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    values = read_env_file(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for name in required_variables():
        assert values.get(name), f"make-env.sh does not write {name}"
        if SECRET_NAME.search(name):  # random, and hex so it is safe inside a URL
            assert re.fullmatch(r"[0-9a-f]{48,}", values[name]), name
    assert len(set(v for k, v in values.items() if SECRET_NAME.search(k))) == \
        len([k for k in values if SECRET_NAME.search(k)]), "every secret is different"
    # run again: nothing changes, nothing is duplicated
    before = target.read_text()
    subprocess.run(["bash", str(MAKE_ENV), str(target)], check=True, capture_output=True, timeout=60)
    assert target.read_text() == before
    # a setting that went missing (a new service) is added, the others are kept
    target.write_text("\n".join(l for l in before.splitlines()
                                if not l.startswith("CRM_CUSTOMER_DB_PASSWORD=")) + "\n")
    subprocess.run(["bash", str(MAKE_ENV), str(target)], check=True, capture_output=True, timeout=60)
    after = read_env_file(target)
    assert after["CRM_CUSTOMER_DB_PASSWORD"] != values["CRM_CUSTOMER_DB_PASSWORD"]
    assert {k: v for k, v in after.items() if k != "CRM_CUSTOMER_DB_PASSWORD"} == \
        {k: v for k, v in values.items() if k != "CRM_CUSTOMER_DB_PASSWORD"}


def test_compose_interpolates_with_the_generated_settings(tmp_path):
    target = tmp_path / ".env"
    subprocess.run(["bash", str(MAKE_ENV), str(target)], check=True, capture_output=True, timeout=60)
    env = read_env_file(target)
    for name, svc in services().items():
        for var, value in environment(name).items():
            interpolate(value, env)  # raises KeyError for a required variable make-env misses
    with pytest.raises(KeyError):
        interpolate(environment("gateway")["CRM_ADMIN_PASSWORD"], {})


# ---------------------------------------------------------------- the compose CLI, where there is one

def compose_cli():
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def run_compose_config(cli, env_file):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "COMPOSE_"))}
    return subprocess.run(cli + ["--env-file", str(env_file), "-f", str(COMPOSE_FILE),
                                 "config", "-q"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_compose_cli_accepts_the_file(tmp_path):
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    settings = tmp_path / "settings.env"
    subprocess.run(["bash", str(MAKE_ENV), str(settings)], check=True, capture_output=True,
                   timeout=60)
    ok = run_compose_config(cli, settings)
    assert ok.returncode == 0, ok.stderr
    # and without the settings it refuses to start, naming what is missing
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = run_compose_config(cli, empty)
    assert refused.returncode != 0
    assert "make-env" in refused.stderr
