"""The gateway's configuration, from environment variables with working defaults.

| variable | default | meaning |
| --- | --- | --- |
| CRM_GATEWAY_DATABASE_URL | sqlite:///<data dir>/gateway.db | staff accounts |
| CRM_JWT_SECRET | generated once, kept 0600 in <data dir>/jwt-secret | signs access tokens |
| CRM_TOKEN_TTL | 3600 | seconds an access token is valid |
| CRM_ADMIN_USERNAME / CRM_ADMIN_PASSWORD | admin / generated, printed once | the first admin |
| CRM_RPC_TIMEOUT | 5 | seconds an RPC may take (crm_kit.config) |
| CRM_AMQP_URI | amqp://guest:guest@127.0.0.1:5672/ | the broker (crm_kit.config) |
| CRM_GATEWAY_READY_SERVICES | customer,sales,service_desk,marketing,analytics | services /readyz requires to answer ``ping`` |
| CRM_VERSION | package version | reported at /healthz |
| CRM_RATE_LIMIT | 1200 per minute | requests per client (staff id of a valid token, else address), all routes together (``rate_limits.py``) |
| CRM_RATE_LIMIT_ANALYTICS | 60 per minute | analytics requests per client, on top (not a customer's scores nor a score run's status) |
| CRM_RATE_LIMIT_LOGIN | 20 per minute | ``POST /api/v1/auth/token`` attempts per address |
| CRM_RATE_LIMIT_STORAGE | memory:// | where counters live: per gunicorn worker; ``redis://…`` shares them |
| CRM_LOGIN_MAX_FAILURES | 5 | wrong passwords for one username before it is locked (``lockout.py``) |
| CRM_LOGIN_LOCKOUT_SECONDS | 900 | the window those failures count in, and how long the lock lasts |
| CRM_MAX_BODY_BYTES | 20971520 (20 MiB) | larger request bodies → 413 (a CSV import of ~50 000 customers fits) |

``create_app(config)`` takes the same settings as a dict (keys in upper case without the
``CRM_`` prefix, e.g. ``{"DATABASE_URL": ..., "JWT_SECRET": ...}``), which wins over the
environment: tests use that.
"""
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from crm_kit import config as kit_config

from crm_gateway import __version__


@dataclass
class Settings:
    database_url: str
    jwt_secret: str
    token_ttl: int
    admin_username: str
    admin_password: str | None
    amqp_uri: str
    rpc_timeout: float
    ready_services: list = field(default_factory=lambda: ["customer"])
    version: str = __version__
    data_dir: Path = None
    rate_limit: str = "1200 per minute"
    rate_limit_analytics: str = "60 per minute"
    rate_limit_login: str = "20 per minute"
    rate_limit_storage: str = "memory://"
    max_body_bytes: int = 20 * 1024 * 1024
    login_max_failures: int = 5
    login_lockout_seconds: int = 900


def read_or_create_secret(path):
    """A random secret kept in ``path`` (0600), created atomically so concurrent workers agree."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Path(path).read_text().strip()
    with os.fdopen(fd, "w") as handle:
        value = secrets.token_urlsafe(48)
        handle.write(value + "\n")
    return value


def load(overrides=None):
    overrides = {key.upper(): value for key, value in (overrides or {}).items()}

    def setting(name, default=None):
        if name in overrides:
            return overrides[name]
        return kit_config.env(f"CRM_{name}", default)

    data_dir = Path(setting("DATA_DIR") or kit_config.data_dir())
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = setting("JWT_SECRET") or read_or_create_secret(data_dir / "jwt-secret")
    ready = setting("GATEWAY_READY_SERVICES", "customer,sales,service_desk,marketing,analytics")
    if isinstance(ready, str):
        ready = [name.strip() for name in ready.split(",") if name.strip()]
    return Settings(
        database_url=(overrides.get("DATABASE_URL") or setting("GATEWAY_DATABASE_URL")
                      or f"sqlite:///{data_dir / 'gateway.db'}"),
        jwt_secret=secret,
        token_ttl=int(setting("TOKEN_TTL", 3600)),
        admin_username=setting("ADMIN_USERNAME", "admin"),
        admin_password=setting("ADMIN_PASSWORD"),
        amqp_uri=setting("AMQP_URI") or kit_config.amqp_uri(),
        rpc_timeout=float(setting("RPC_TIMEOUT") or kit_config.rpc_timeout()),
        ready_services=ready,
        version=setting("VERSION", __version__),
        data_dir=data_dir,
        rate_limit=setting("RATE_LIMIT", Settings.rate_limit),
        rate_limit_analytics=setting("RATE_LIMIT_ANALYTICS", Settings.rate_limit_analytics),
        rate_limit_login=setting("RATE_LIMIT_LOGIN", Settings.rate_limit_login),
        rate_limit_storage=setting("RATE_LIMIT_STORAGE", Settings.rate_limit_storage),
        max_body_bytes=int(setting("MAX_BODY_BYTES", Settings.max_body_bytes)),
        login_max_failures=int(setting("LOGIN_MAX_FAILURES", Settings.login_max_failures)),
        login_lockout_seconds=int(setting("LOGIN_LOCKOUT_SECONDS",
                                          Settings.login_lockout_seconds)),
    )
