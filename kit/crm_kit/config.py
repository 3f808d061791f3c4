"""Configuration from environment variables, with defaults that run everything on one machine.

| variable | default | meaning |
| --- | --- | --- |
| CRM_AMQP_URI | amqp://guest:guest@127.0.0.1:5672/ | the RabbitMQ broker |
| CRM_DATA_DIR | ./data | where SQLite files, generated secrets and credentials live |
| CRM_DATABASE_URL | sqlite:///<CRM_DATA_DIR>/<service>.db | this process's own database |
| CRM_METRICS_PORT | per service (see METRICS_PORTS) | port of /metrics, /healthz, /readyz |
| CRM_RPC_TIMEOUT | 5 | seconds an RPC call may take before it fails |
| CRM_LOG_LEVEL | INFO | |
| CRM_VERSION | the package version | reported at /healthz and in build info |
"""
import os
from pathlib import Path

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"

#: the port each process serves /metrics and /healthz on when CRM_METRICS_PORT is not set
METRICS_PORTS = {
    "gateway": 8000,
    "customer": 9101,
    "sales": 9102,
    "service_desk": 9103,
    "marketing": 9104,
    "analytics": 9105,
}


def env(name, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def amqp_uri():
    return env("CRM_AMQP_URI", DEFAULT_AMQP_URI)


def data_dir():
    path = Path(env("CRM_DATA_DIR", "data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(service):
    url = env("CRM_DATABASE_URL")
    if url:
        return normalize_database_url(url)
    return f"sqlite:///{data_dir() / (service + '.db')}"


def normalize_database_url(url):
    """PostgreSQL URLs use psycopg2, the driver psycogreen makes cooperative under eventlet."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def metrics_port(service):
    return int(env("CRM_METRICS_PORT", METRICS_PORTS.get(service, 9100)))


def rpc_timeout():
    return float(env("CRM_RPC_TIMEOUT", "5"))


def log_level():
    return env("CRM_LOG_LEVEL", "INFO").upper()


def redact_uri(uri):
    """The URI with its password hidden, for logs and error messages."""
    if "@" not in uri or "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
