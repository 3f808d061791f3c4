"""Helpers of the gateway's tests: app factory with test settings, sign-in helpers, the RPC stub."""
import copy
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for package_dir in (ROOT / "kit", ROOT / "gateway"):  # when not installed into the venv
    if str(package_dir) not in sys.path:
        sys.path.insert(0, str(package_dir))

from crm_kit.rpc_client import ServiceUnavailable  # noqa: E402
from crm_gateway.app import create_app  # noqa: E402
from crm_gateway.permissions import ROLES  # noqa: E402

VHOST = "crm-test"
ADMIN_PASSWORD = "admin-password-1"
STAFF_PASSWORD = "staff-password-1"
RPC_TIMEOUT = 1.5


def ensure_vhost():
    listed = subprocess.run(["rabbitmqctl", "list_vhosts", "-q"], capture_output=True, text=True,
                            check=True).stdout.split()
    if VHOST not in listed:
        subprocess.run(["rabbitmqctl", "add_vhost", VHOST], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True)


def make_app(data_dir, amqp_uri, **overrides):
    config = {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'gateway.db'}",
        "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AMQP_URI": amqp_uri,
        "RPC_TIMEOUT": RPC_TIMEOUT,
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
        """A token of a staff member holding only ``role`` (created once per app)."""
        key = f"role:{role}"
        if key not in self._tokens:
            staff = self.create_staff(f"only-{role.replace('_', '-')}", [role])
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


@dataclass
class RecordedCall:
    service: str
    method: str
    args: tuple
    kwargs: dict
    correlation_id: str | None
    timeout: float | None


@dataclass
class StubRpc:
    """Stands in for RpcClient: answers are canned per (service, method); an unknown one is
    'not deployed' (ServiceUnavailable), as on a broker where the service does not run."""

    answers: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    connected: bool = True

    def on(self, service, method, answer):
        """``answer``: a value (returned), an exception (raised) or a callable(*args, **kwargs)."""
        self.answers[(service, method)] = answer

    def call(self, service, method, *args, timeout=None, correlation_id=None, **kwargs):
        self.calls.append(RecordedCall(service, method, args, kwargs, correlation_id, timeout))
        answer = self.answers.get((service, method))
        if answer is None:
            raise ServiceUnavailable(f"The {service} service is not deployed.", service, method)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(*args, **kwargs)
        return copy.deepcopy(answer)

    def calls_to(self, method):
        return [call for call in self.calls if call.method == method]


def a_customer(**fields):
    """A customer dict as the customer service returns it (docs/rpc-contracts.md)."""
    customer = {
        "id": "c-1", "kind": "person", "name": "张伟", "mobile": "13812345678",
        "email": "zhang.wei@example.com", "wechat_id": "zw88", "gender": "male",
        "birthday": "1995-04-02", "id_number": "510104199504021234", "occupation": "engineer",
        "industry": "software", "employer": "Tianfu Soft", "education": "bachelor",
        "income_band": "10k_20k", "hometown": "Mianyang", "city": "Chengdu",
        "district": "Gaoxin", "source": "website", "owner_id": None, "stage": "potential",
        "stage_entered_at": "2025-01-02T03:04:05+00:00", "value_tier": None, "churn_risk": None,
        "member": {"tier": "basic", "points": 0},
        "consent": {"sms": True, "email": False, "wechat": True, "phone": False, "in_app": False},
        "tags": ["graduate"], "custom_fields": {}, "contacts": [], "leases_signed": 0,
        "merged_into": None, "archived": False, "erased": False,
        "created_at": "2025-01-02T03:04:05+00:00", "updated_at": "2025-01-02T03:04:05+00:00",
    }
    customer.update(fields)
    return customer


ALL_ROLES = ROLES
