"""Helpers of the gateway's tests: app factory with test settings, sign-in helpers, unique
customer data, and what the tests read from the real customer service (its /metrics, its
database for a time jump, its RPCs for a stagnation scan)."""
import itertools
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for package_dir in (ROOT / "kit", ROOT / "gateway"):  # when not installed into the venv
    if str(package_dir) not in sys.path:
        sys.path.insert(0, str(package_dir))

from crm_kit.testing import http_get, wait_until  # noqa: E402
from crm_gateway.app import create_app  # noqa: E402
from crm_gateway.permissions import ROLES  # noqa: E402

CUSTOMER_SPEC = "customer_service.service:CustomerService"
ADMIN_PASSWORD = "admin-password-1"
STAFF_PASSWORD = "staff-password-1"
RPC_TIMEOUT = 1.5
ALL_ROLES = ROLES


def make_app(data_dir, amqp_uri, **overrides):
    config = {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'gateway.db'}",
        "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AMQP_URI": amqp_uri,
        "RPC_TIMEOUT": RPC_TIMEOUT,
        "GATEWAY_READY_SERVICES": "customer",  # the one service these tests run
    }
    config.update(overrides)
    app = create_app(config)
    app.testing = True
    return app


class Api:
    """The test client with sign-in helpers."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self._tokens = {}

    def token(self, username, password):
        response = self.client.post("/api/v1/auth/token",
                                    json={"username": username, "password": password})
        assert response.status_code == 200, response.json
        return response.json["access_token"]

    def admin_token(self):
        if "admin" not in self._tokens:
            self._tokens["admin"] = self.token("admin", ADMIN_PASSWORD)
        return self._tokens["admin"]

    def create_staff(self, username, roles, **fields):
        body = {"username": username, "password": STAFF_PASSWORD,
                "display_name": username.title(), "roles": list(roles), **fields}
        response = self.client.post("/api/v1/staff", json=body, headers=self.auth(self.admin_token()))
        assert response.status_code == 201, response.json
        return response.json

    def role_token(self, role):
        """A token of a staff member holding only ``role`` (created once per app); the
        customer manager's supervisor is the sales supervisor."""
        key = f"role:{role}"
        if key not in self._tokens:
            # the customer manager is in the sales supervisor's team (crm_gateway.scopes)
            team = ({"supervisor_id": self.role_id("sales_supervisor")}
                    if role == "customer_manager" else {})
            staff = self.create_staff(f"only-{role.replace('_', '-')}", [role], **team)
            self._tokens[key] = self.token(staff["username"], STAFF_PASSWORD)
            self._tokens[f"id:{role}"] = staff["id"]
        return self._tokens[key]

    def role_id(self, role):
        self.role_token(role)
        return self._tokens[f"id:{role}"]

    @staticmethod
    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    def as_role(self, role):
        return self.auth(self.role_token(role))

    def request(self, method, path, role=None, token=None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers.update(self.as_role(role))
        if token is not None:
            headers.update(self.auth(token))
        return self.client.open(path, method=method, headers=headers, **kwargs)

    # ------------------------------------------------------------ customers, for real

    def create_customer(self, role="sales_supervisor", **fields):
        """A new customer in the real customer service (unique mobile unless given)."""
        body = {"name": "王芳", "mobile": unique_mobile(), **fields}
        response = self.request("POST", "/api/v1/customers", role=role, json=body)
        assert response.status_code == 201, response.json
        return response.json

    def managed_customer(self, **fields):
        """A new customer owned by the customer manager of ``role_token`` (whom object-level
        limits let reach it, as their supervisor)."""
        return self.create_customer(owner_id=self.role_id("customer_manager"), **fields)

    def customer(self, customer_id, role="sales_supervisor"):
        """The customer as the service keeps it (a supervisor sees mobile and ID in full)."""
        response = self.request("GET", f"/api/v1/customers/{customer_id}", role=role)
        assert response.status_code == 200, response.json
        return response.json

    def stage_history(self, customer_id):
        response = self.request("GET", f"/api/v1/customers/{customer_id}/stage-history",
                                role="sales_supervisor")
        assert response.status_code == 200, response.json
        return response.json


# ---------------------------------------------------------------- unique test data

_serial = itertools.count(1)


def unique_mobile():
    """An 11-digit mainland mobile no other test of the session uses (13…, 15…, 18…)."""
    n = next(_serial)
    return f"{('13', '15', '18')[n % 3]}{n:09d}"


ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def resident_id(birthday=None):
    """A valid 18-character resident ID (GB 11643 check character) no other test uses."""
    n = next(_serial)
    birthday = birthday or date(1950, 1, 1) + timedelta(days=n)
    body = f"110105{birthday:%Y%m%d}{n % 1000:03d}"
    return body + ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]


def unique_tag(prefix="t"):
    """A tag or search word no other test uses (fixed width: never part of another one)."""
    return f"{prefix}-{next(_serial):06d}"


def masked_mobile(mobile):
    return mobile[:3] + "****" + mobile[-4:]


def masked_id_number(id_number):
    return id_number[:4] + "*" * 10 + id_number[-4:]


# ---------------------------------------------------------------- the customer service

def rpc_calls_served(service):
    """RPCs the service process has run so far (its ``crm_entrypoint_calls_total``, kind rpc),
    read once the number stops moving: the reply to a call goes out just before the count."""
    def read():
        status, body = http_get(service.base_url + "/metrics")
        assert status == 200, body
        return sum(float(line.rpartition(" ")[2]) for line in body.splitlines()
                   if line.startswith("crm_entrypoint_calls_total{") and 'kind="rpc"' in line)

    seen = [read()]

    def settled():
        seen.append(read())
        return seen[-1] == seen[-2]

    wait_until(settled, timeout=5, interval=0.01, message="the RPC count to settle")
    return seen[-1]


def move_stage_entry_back(database_url, customer_id, days):
    """Time travel in the service's own database: the customer entered its stage ``days`` ago
    (as the customer service's own stagnation test does)."""
    from sqlalchemy import create_engine, text

    entered = (datetime.now(timezone.utc) - timedelta(days=days)).replace(tzinfo=None)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE customers SET stage_entered_at = :t WHERE id = :id"),
                               {"t": entered, "id": customer_id})
    finally:
        engine.dispose()


# ---------------------------------------------------------------- RabbitMQ virtual hosts

def _rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          timeout=60)


def add_vhost(name):
    made = _rabbitmqctl("add_vhost", name)
    assert made.returncode == 0, f"cannot create RabbitMQ vhost {name}: {made.stderr.strip()}"
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")


def delete_vhost(name):
    _rabbitmqctl("delete_vhost", name)


def module_vhost(session_vhost, suffix):
    """For a module-scoped fixture, a vhost of the module's own for its long-lived services:
    ``yield from module_vhost(vhost, "leasing")`` yields its AMQP URI, then deletes it."""
    from crm_kit.pytest_plugin import BROKER_HOST
    from crm_gateway import rpc

    name = f"{session_vhost}-{suffix}"
    add_vhost(name)
    yield f"amqp://guest:guest@{BROKER_HOST}:5672/{name}"
    rpc.close_all()  # before the vhost goes: the process-wide clients would try to reconnect
    delete_vhost(name)


def delete_queues(amqp_uri, *queues):
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
    finally:
        connection.close()
