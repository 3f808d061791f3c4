"""The pinned stack is the one that works: nameko 2.14.1 breaks on eventlet ≥ 0.34
("'Queue' object has no attribute 'mutex'", nameko issue #783). The messaging tests start real
services and would fail on such a stack; this test says why, up front."""
from importlib.metadata import version
from pathlib import Path

from packaging.version import Version

CONSTRAINTS = Path(__file__).resolve().parents[2] / "requirements" / "constraints.txt"


def pinned():
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, ver = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = ver.strip()
    return pins


def test_eventlet_is_below_the_version_that_breaks_nameko():
    assert Version(pinned()["eventlet"]) < Version("0.34")
    assert Version(version("eventlet")) < Version("0.34"), (
        "eventlet >= 0.34 breaks nameko 2.14's QueueConsumer; install from constraints.txt")


def test_installed_versions_match_the_pins():
    pins = pinned()
    for package in ("nameko", "eventlet", "kombu", "pika", "sqlalchemy", "flask", "marshmallow",
                    "prometheus-client", "gunicorn"):
        assert version(package) == pins[package], f"{package} differs from constraints.txt"


def test_a_nameko_service_runs_on_the_pinned_eventlet(start_service, tmp_path, amqp_uri):
    from nameko.standalone.rpc import ClusterRpcProxy

    start_service("sample.services:Consumer", f"sqlite:///{tmp_path / 'c.db'}")
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as proxy:
        assert proxy.kit_consumer.ping() == {"service": "kit_consumer", "status": "ok"}
