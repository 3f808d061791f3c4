"""`make up`: every CRM service and the gateway on this machine, until Ctrl-C.

- RabbitMQ on localhost (CRM_AMQP_URI); a clear message and exit 1 if it cannot be reached.
- One SQLite file per service under CRM_DATA_DIR (default ./data), unless
  CRM_<SERVICE>_DATABASE_URL names another database for that service.
- The gateway on http://127.0.0.1:8000 (CRM_GATEWAY_BIND). The first admin comes from
  CRM_ADMIN_USERNAME/CRM_ADMIN_PASSWORD, else the gateway generates one, prints it once and
  saves it in <data dir>/admin-credentials.txt.
- Ctrl-C (or SIGTERM) stops every process gracefully; if one process dies, all are stopped.
"""
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "kit"))

from crm_kit import config  # noqa: E402

#: (name, nameko service class) of every service; the gateway is started after them
SERVICES = [
    ("customer", "customer_service.service:CustomerService"),
    ("sales", "sales_service.service:SalesService"),
    ("service_desk", "service_desk_service.service:ServiceDeskService"),
    ("marketing", "marketing_service.service:MarketingService"),
    ("analytics", "analytics_service.service:AnalyticsService"),
]
STOP_TIMEOUT = 25.0


def broker_error(uri):
    import pika

    params = pika.URLParameters(uri)
    params.socket_timeout = params.blocked_connection_timeout = 3
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return None
    except Exception as exc:  # any reason at all: tell the user plainly
        return f"{type(exc).__name__}: {exc}".strip(": ")


def service_env(name, data_dir):
    env = {**os.environ, "CRM_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("CRM_DATABASE_URL", None)  # one database per service, never a shared one
    env.pop("CRM_METRICS_PORT", None)
    own = os.environ.get(f"CRM_{name.upper()}_DATABASE_URL")
    if own:
        env["CRM_DATABASE_URL"] = own
    port = os.environ.get(f"CRM_{name.upper()}_METRICS_PORT")
    if port:
        env["CRM_METRICS_PORT"] = port
    return env


def metrics_port(name):
    return int(os.environ.get(f"CRM_{name.upper()}_METRICS_PORT") or config.metrics_port(name))


def ready(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except Exception:  # not up yet
        return False


def main():
    amqp_uri = config.amqp_uri()
    error = broker_error(amqp_uri)
    if error:
        print(f"\nCannot reach RabbitMQ at {config.redact_uri(amqp_uri)}: {error}\n"
              "The CRM needs a running RabbitMQ broker. Start it (e.g. `rabbitmq-server -detached`"
              " or `sudo systemctl start rabbitmq-server`), or point CRM_AMQP_URI at one.\n",
              file=sys.stderr)
        return 1
    data_dir = config.data_dir()
    processes = {}
    for name, spec in SERVICES:
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "crm_kit.run", spec], env=service_env(name, data_dir))
    gateway_env = service_env("gateway", data_dir)
    bind = gateway_env.setdefault("CRM_GATEWAY_BIND", "127.0.0.1:8000")
    processes["gateway"] = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:crm_gateway.gunicorn_conf",
         "crm_gateway.app:create_app()"], env=gateway_env)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    probes = {name: f"http://127.0.0.1:{metrics_port(name)}/readyz" for name, _ in SERVICES}
    probes["gateway"] = f"http://{bind}/healthz"
    announced = False
    exit_code = 0
    try:
        while not stopping:
            dead = [name for name, p in processes.items() if p.poll() is not None]
            if dead:
                print(f"\n{', '.join(dead)} stopped unexpectedly; stopping the rest.",
                      file=sys.stderr)
                exit_code = 1
                break
            if not announced and all(ready(url) for url in probes.values()):
                announced = True
                print(f"\nCRM is up: API http://{bind}/api/v1  docs http://{bind}/docs  "
                      f"metrics http://{bind}/metrics (services: "
                      + ", ".join(f"{n} :{metrics_port(n)}" for n, _ in SERVICES)
                      + f"). Data in {data_dir}. Ctrl-C stops everything.\n", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(processes)
    return exit_code


def stop_all(processes):
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes.values():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
