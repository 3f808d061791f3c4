"""Fixtures of the gateway's own tests (Flask test client; RabbitMQ vhost ``crm-test``).

Gateway-only behaviour is tested with ``stub_rpc``, a stand-in for the RPC client that answers
from canned data. The 503/360 tests use the real client against the real broker, where the
other services are simply not running. Tests against the real customer service live in the
repository's ``tests/``.
"""
import importlib.util
import os
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
VHOST, Api, StubRpc, ensure_vhost, make_app = (
    _support.VHOST, _support.Api, _support.StubRpc, _support.ensure_vhost, _support.make_app)

from crm_gateway import rpc  # noqa: E402


@pytest.fixture(scope="session")
def broker_uri(request):
    """The project's per-session vhost (crm_kit.pytest_plugin) when loaded, else ``crm-test``."""
    if os.environ.get("CRM_TEST_AMQP_URI"):
        uri = os.environ["CRM_TEST_AMQP_URI"]
    else:
        try:
            uri = request.getfixturevalue("amqp_uri")
        except pytest.FixtureLookupError:
            ensure_vhost()
            uri = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    yield uri
    rpc.close_all()  # before the vhost goes: the process-wide clients would try to reconnect


@pytest.fixture
def app(tmp_path, broker_uri):
    return make_app(tmp_path, broker_uri)


@pytest.fixture
def api(app):
    return Api(app)


@pytest.fixture(scope="module")
def module_api(tmp_path_factory, broker_uri):
    """One app for a module whose tests only read (role tokens are costly: scrypt)."""
    return Api(make_app(tmp_path_factory.mktemp("gateway"), broker_uri))


@pytest.fixture
def stub_rpc(monkeypatch):
    stub = StubRpc()
    monkeypatch.setattr(rpc, "get_client", lambda: stub)
    return stub
