"""The Kubernetes manifests in deploy/k8s are valid and agree with the code and the compose file.

Offline: each object is validated against the Kubernetes OpenAPI schemas that the
kubernetes-validate package ships (strict: unknown fields are errors), then checked for what the
CRM needs: every app (the gateway and each folder under services/) has its Deployment, Service,
PodDisruptionBudget, HorizontalPodAutoscaler, migration Job and PostgreSQL; probes ask the kit's
/healthz and /readyz on the app's metrics port (crm_kit.config.METRICS_PORTS); images are the
ones docker-compose.yml builds; no secret value is committed. Each migration Job runs the
migrate-only command of the program its Deployment runs (the image's CMD), and that command is run
against a scratch SQLite database when the app's package is installed.
"""
import ast
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
#: the oldest Kubernetes these manifests are for (autoscaling/v2, policy/v1, Job TTLs are GA
#: from 1.23) and the newest whose schemas kubernetes-validate ships
KUBERNETES_VERSIONS = ["1.29.0", "latest"]
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|COOKIE")


def service_dirs():
    return sorted(p.name for p in (ROOT / "services").iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")))


def key(name):
    return name.replace("-", "_")


@lru_cache(maxsize=None)
def metrics_ports():
    tree = ast.parse((ROOT / "kit" / "crm_kit" / "config.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "METRICS_PORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("kit/crm_kit/config.py defines no METRICS_PORTS")


APPS = ["gateway"] + service_dirs()


def manifest_files():
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


@lru_cache(maxsize=None)
def documents(path):
    return tuple(doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def objects(folder=None):
    files = manifest_files() if folder is None else sorted((K8S / folder).glob("*.yaml"))
    return [doc for path in files if path.name != "kustomization.yaml" for doc in documents(path)]


def the(kind, name, folder=None):
    found = [o for o in objects(folder) if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} in deploy/k8s/{folder or ''}, found {len(found)}"
    return found[0]


@lru_cache(maxsize=None)
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def container(obj, name=None):
    containers = obj["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


def port_number(c, port):
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in c["ports"] if p.get("name") == port)


# ---------------------------------------------------------------- schemas

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_is_valid_kubernetes(path, version):
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip install -r requirements/test.txt (kubernetes-validate)")
    if version == "latest":
        version = kubernetes_validate.latest_version() + ".0"
    assert documents(path), f"{path} holds no object"
    for doc in documents(path):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.relative_to(ROOT)}: {doc['kind']} {doc['metadata']['name']}: "
                        f"{exc.message} at {'/'.join(map(str, exc.path))}")


def test_kustomizations_list_every_file_and_folder():
    for kustomization in K8S.rglob("kustomization.yaml"):
        folder = kustomization.parent
        listed = yaml.safe_load(kustomization.read_text())["resources"]
        for entry in listed:
            assert (folder / entry).exists(), f"{kustomization}: {entry} does not exist"
            if (folder / entry).is_dir():
                assert (folder / entry / "kustomization.yaml").is_file()
        present = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"} | \
            {p.name for p in folder.iterdir() if p.is_dir()}
        assert present == set(listed), f"{kustomization.relative_to(ROOT)} lists {sorted(listed)}"
    top = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(APPS) | {"rabbitmq"} <= set(top["resources"])
    assert top["namespace"] == the("Namespace", top["namespace"])["metadata"]["name"]


def test_names_are_unique_per_kind():
    seen = set()
    for o in objects():
        ident = (o["kind"], o["metadata"]["name"])
        assert ident not in seen, f"two {ident}"
        seen.add(ident)


# ---------------------------------------------------------------- each app

@pytest.mark.parametrize("app", APPS)
def test_app_has_its_objects(app):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects(app)}
    assert {("Deployment", app), ("Service", app), ("PodDisruptionBudget", app),
            ("HorizontalPodAutoscaler", app), ("Job", f"{app}-migrate"),
            ("StatefulSet", f"postgres-{app}"), ("Service", f"postgres-{app}")} <= kinds, \
        f"deploy/k8s/{app} has {sorted(kinds)}"


@pytest.mark.parametrize("app", APPS)
def test_image_is_the_one_compose_builds(app):
    compose_image = compose()["services"][app]["image"]
    repository = compose_image.split(":")[0]
    deployment = the("Deployment", app, app)
    job = the("Job", f"{app}-migrate", app)
    assert container(deployment)["image"].split(":")[0] == repository
    assert container(job)["image"] == container(deployment)["image"]
    images = {i["name"] for i in yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"]}
    assert repository in images, "the tag is set in deploy/k8s/kustomization.yaml"


@pytest.mark.parametrize("app", APPS)
def test_probes_ask_the_kits_endpoints_on_the_metrics_port(app):
    port = metrics_ports()[key(app)]
    c = container(the("Deployment", app, app))
    assert [p["containerPort"] for p in c["ports"]] == [port]
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        http = c[probe]["httpGet"]
        assert http["path"] == path, f"{app}: {probe}"
        assert port_number(c, http["port"]) == port, f"{app}: {probe} asks another port"
    variables = env(c)
    if app == "gateway":
        assert variables["CRM_GATEWAY_BIND"]["value"] == f"0.0.0.0:{port}"
    else:
        assert variables["CRM_METRICS_PORT"]["value"] == str(port)
        config = the("ConfigMap", "crm-config")["data"]
        assert config["CRM_METRICS_HOST"] == "0.0.0.0", "the kit binds 127.0.0.1 otherwise"
        assert {"configMapRef": {"name": "crm-config"}} in c["envFrom"]


@pytest.mark.parametrize("app", APPS)
def test_pods_run_as_the_images_non_root_user_with_limits(app):
    dockerfile = ROOT / ("gateway" if app == "gateway" else f"services/{app}") / "Dockerfile"
    [user] = re.findall(r"^USER\s+(\d+)", dockerfile.read_text(), re.M)
    for obj in (the("Deployment", app, app), the("Job", f"{app}-migrate", app)):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == int(user)
        assert pod["automountServiceAccountToken"] is False, "the CRM never calls the API"
        for c in pod["containers"]:
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"])
            assert "memory" in c["resources"]["limits"]
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, "a writable /tmp on a read-only root"


@pytest.mark.parametrize("app", APPS)
def test_service_pdb_and_hpa_select_the_deployment_and_not_the_job(app):
    deployment = the("Deployment", app, app)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = the("Job", f"{app}-migrate", app)["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = the("Service", app, app)
    assert matches(service["spec"]["selector"], pod_labels)
    assert not matches(service["spec"]["selector"], job_labels), "the Service would reach the Job"
    [svc_port] = service["spec"]["ports"]
    assert port_number(container(deployment), svc_port["targetPort"]) == metrics_ports()[key(app)]
    pdb = the("PodDisruptionBudget", app, app)
    assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert not matches(pdb["spec"]["selector"]["matchLabels"], job_labels)
    hpa = the("HorizontalPodAutoscaler", app, app)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": app}
    low = hpa["spec"]["minReplicas"]
    assert 2 <= low <= hpa["spec"]["maxReplicas"], "two at least: a drain keeps one serving"
    assert deployment["spec"]["replicas"] == low
    assert pdb["spec"]["minAvailable"] < low, "a PDB that allows no eviction blocks every drain"


@pytest.mark.parametrize("app", APPS)
def test_app_uses_its_own_postgres_with_the_same_secret(app):
    database_env = "CRM_GATEWAY_DATABASE_URL" if app == "gateway" else "CRM_DATABASE_URL"
    statefulset = the("StatefulSet", f"postgres-{app}", app)
    postgres = env(container(statefulset))
    assert postgres["POSTGRES_DB"]["value"] == postgres["POSTGRES_USER"]["value"] == key(app)
    secret = postgres["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert the("Service", f"postgres-{app}", app)["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == f"postgres-{app}"
    assert statefulset["spec"]["replicas"] == 1, "one primary; replication needs an operator"
    for obj in (the("Deployment", app, app), the("Job", f"{app}-migrate", app)):
        variables = env(container(obj))
        assert variables["CRM_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret
        assert variables[database_env]["value"] == (
            f"postgresql://{key(app)}:$(CRM_DB_PASSWORD)@postgres-{app}:5432/{key(app)}")


def expansions(containers):
    for c in containers:
        defined = []
        for e in c.get("env", []):
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value", "")):
                yield c["name"], e["name"], ref, ref in defined
            defined.append(e["name"])


def pod_specs():
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objects()
            if o["kind"] in ("Deployment", "StatefulSet", "Job")]


def test_env_references_name_variables_defined_before_them():
    """Kubernetes expands $(NAME) only from variables listed earlier; otherwise the text stays
    as it is (and a database URL would hold the literal "$(CRM_DB_PASSWORD)")."""
    for name, spec in pod_specs():
        for cname, var, ref, ok in expansions(spec["containers"] + spec.get("initContainers", [])):
            assert ok, f"{name}/{cname}: {var} uses $({ref}) before it is defined"


# ---------------------------------------------------------------- secrets

def secret_refs():
    refs = set()
    for name, spec in pod_specs():
        for c in spec["containers"] + spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    refs.add((volume["secret"]["secretName"], item["key"]))
    return refs


def test_no_secret_values_are_committed():
    assert not [o for o in objects() if o["kind"] == "Secret"], \
        "Secrets are created by the operator (deploy/README.md), never committed"
    for name, spec in pod_specs():
        for c in spec["containers"] + spec.get("initContainers", []):
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]):
                    assert "valueFrom" in e, f"{name}: {e['name']} has a literal value"
                for password in re.findall(r"://[^:/@]+:([^@]*)@", e.get("value", "")):
                    assert re.fullmatch(r"\$\([A-Z_]+\)", password), f"{name}: {e['name']}"
    for o in objects():
        if o["kind"] == "ConfigMap":
            for k in o["data"]:
                assert not SECRET_NAME.search(k.upper()), f"{o['metadata']['name']}: {k}"


def documented_secrets():
    """{secret: {keys}} from the `kubectl create secret generic` commands in deploy/README.md,
    with `for x in a b; do ... $x ...; done` loops unrolled."""
    text = (ROOT / "deploy" / "README.md").read_text().replace("\\\n", " ")
    for var, values, body in re.findall(r"for (\w+) in ([^;\n]+); do\n(.*?)\ndone", text, re.S):
        text += "\n" + "\n".join(body.replace(f"${var}", v) for v in values.split())
    out = {}
    for name, rest in re.findall(r'create secret generic "?([\w-]+)"?([^\n]*)', text):
        out.setdefault(name, set()).update(re.findall(r"--from-literal=([\w-]+)=", rest))
    return out


def test_every_secret_used_is_documented_for_the_operator():
    documented = documented_secrets()
    for secret, secret_key in sorted(secret_refs()):
        assert secret in documented, f"deploy/README.md does not say how to create {secret}"
        assert secret_key in documented[secret], \
            f"deploy/README.md creates {secret} without the key {secret_key}"


# ---------------------------------------------------------------- the broker

def rabbitmq_config():
    data = the("ConfigMap", "rabbitmq-config", "rabbitmq")["data"]
    conf = {}
    for line in data["rabbitmq.conf"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            conf[name.strip()] = value.strip()
    return conf, data["enabled_plugins"]


def test_rabbitmq_is_a_three_node_cluster_with_quorum_queues():
    statefulset = the("StatefulSet", "rabbitmq", "rabbitmq")
    assert statefulset["spec"]["replicas"] == 3
    conf, plugins = rabbitmq_config()
    assert conf["cluster_formation.peer_discovery_backend"] == "rabbit_peer_discovery_k8s"
    assert re.fullmatch(r"\[[a-z0-9_, ]+\]\.\s*", plugins)
    assert {"rabbitmq_peer_discovery_k8s", "rabbitmq_prometheus", "rabbitmq_management"} <= {
        p.strip() for p in plugins.strip()[1:-2].split(",")}
    assert conf["default_queue_type"] == "quorum"
    assert conf["cluster_partition_handling"] == "pause_minority"
    # discovery through the headless Service, which publishes nodes before they are ready
    headless = the("Service", conf["cluster_formation.k8s.service_name"], "rabbitmq")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    assert statefulset["spec"]["serviceName"] == headless["metadata"]["name"]
    variables = env(container(statefulset, "rabbitmq"))
    assert headless["metadata"]["name"] in variables["RABBITMQ_NODENAME"]["value"]
    assert headless["metadata"]["name"] in variables["K8S_HOSTNAME_SUFFIX"]["value"]
    # the plugin may read the endpoints
    account = statefulset["spec"]["template"]["spec"]["serviceAccountName"]
    binding = the("RoleBinding", "rabbitmq-peer-discovery", "rabbitmq")
    assert {"kind": "ServiceAccount", "name": account} in binding["subjects"]
    role = the("Role", binding["roleRef"]["name"], "rabbitmq")
    assert any("endpoints" in r["resources"] and "get" in r["verbs"] for r in role["rules"])
    assert the("PodDisruptionBudget", "rabbitmq", "rabbitmq")["spec"]["maxUnavailable"] == 1


def test_rabbitmq_image_and_ports_match_compose_and_the_apps():
    statefulset = the("StatefulSet", "rabbitmq", "rabbitmq")
    image = compose()["services"]["rabbitmq"]["image"]
    pod = statefulset["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["containers"] + pod["initContainers"]} == {image}
    client = the("Service", "rabbitmq", "rabbitmq")
    ports = {p["name"]: p["port"] for p in client["spec"]["ports"]}
    assert ports["amqp"] == 5672 and ports["prometheus"] == 15692
    for app in APPS:
        uri = env(container(the("Deployment", app, app)))["CRM_AMQP_URI"]["value"]
        assert uri.endswith("@rabbitmq:5672/"), f"{app}: {uri}"


# ---------------------------------------------------------------- the migration Jobs

def image_cmd(app):
    """The CMD of the app's image (exec form): what its Deployment runs, as it sets no command."""
    dockerfile = ROOT / ("gateway" if app == "gateway" else f"services/{app}") / "Dockerfile"
    [cmd] = re.findall(r"^CMD\s+(\[.*\])\s*$", dockerfile.read_text(), re.M)
    return json.loads(cmd)


@pytest.mark.parametrize("app", APPS)
def test_migration_job_runs_the_migrate_only_form_of_the_deployments_program(app):
    """A service's Job: `python -m crm_kit.run --migrate-only` with the CMD's own target; the
    gateway's: `python -m crm_gateway.migrate`, of the package gunicorn serves."""
    deployment = container(the("Deployment", app, app))
    assert "command" not in deployment and "args" not in deployment, \
        f"{app}: the Deployment runs the image's CMD, which the Job's command is derived from"
    job = container(the("Job", f"{app}-migrate", app))
    assert "args" not in job, f"{app}: the whole command is in `command`"
    cmd = image_cmd(app)
    if app == "gateway":
        assert cmd[0] == "gunicorn" and cmd[-1].startswith("crm_gateway."), cmd
        assert job["command"] == ["python", "-m", "crm_gateway.migrate"]
        assert (ROOT / "gateway" / "crm_gateway" / "migrate.py").is_file()
    else:
        assert cmd[:3] == ["python", "-m", "crm_kit.run"] and len(cmd) == 4, cmd
        assert cmd[3].startswith(f"{key(app)}_service."), f"{app}: the CMD runs {cmd[3]}"
        assert job["command"] == ["python", "-m", "crm_kit.run", "--migrate-only", cmd[3]]


@pytest.mark.parametrize("app", APPS)
def test_migration_job_command_migrates_a_database(app, tmp_path):
    """Runs the Job's command here, against SQLite instead of the app's PostgreSQL: the first
    run creates the schema, the second applies nothing."""
    package = "crm_gateway" if app == "gateway" else f"{key(app)}_service"
    if importlib.util.find_spec(package) is None or importlib.util.find_spec("crm_kit") is None:
        pytest.skip(f"{package} is not installed in this venv; the Job checked for shape only")
    command = container(the("Job", f"{app}-migrate", app))["command"]
    assert command[0] == "python", command
    database = tmp_path / f"{key(app)}.db"
    environment = dict(os.environ, CRM_DATA_DIR=str(tmp_path),
                       CRM_DATABASE_URL=f"sqlite:///{database}",
                       CRM_GATEWAY_DATABASE_URL=f"sqlite:///{database}")
    environment.pop("CRM_JWT_SECRET", None)  # the Job is given none

    def run():
        done = subprocess.run([sys.executable, *command[1:]], env=environment, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    [first] = run()
    assert first.startswith(f"{key(app)}: migrated sqlite:///{database} from <none> to "), first
    with sqlite3.connect(database) as connection:
        [(head,)] = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert run() == [f"{key(app)}: sqlite:///{database} already at {head}, nothing to apply"]
