"""Start one CRM service: ``python -m crm_kit.run customer_service.service:CustomerService``.

1. eventlet monkey patching (first, before anything opens a socket), and psycogreen for PostgreSQL;
2. JSON logging;
3. the service's Alembic migrations (its package's ``migrations/`` folder);
4. the broker: waits up to ``CRM_BROKER_WAIT`` seconds (default 20), else exits with a clear message;
5. the nameko service; SIGTERM or Ctrl-C stops it gracefully: no new messages are taken,
   running workers finish, unacknowledged messages go back to the queue.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402  -- must precede every other import

import importlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from crm_kit import config, migrations  # noqa: E402
from crm_kit import logging as crm_logging  # noqa: E402

log = logging.getLogger("crm_kit.run")


def load_service(spec):
    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(module_name)
    return module, getattr(module, class_name)


def broker_reachable(uri, wait_seconds):
    """Return None if the broker answers within ``wait_seconds``, else the last error text."""
    from kombu import Connection

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with Connection(uri, connect_timeout=3) as connection:
                connection.ensure_connection(max_retries=1)
            return None
        except Exception as exc:  # any reason the broker can't be used
            error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return error
        time.sleep(1)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or ":" not in argv[0]:
        print("usage: python -m crm_kit.run package.module:ServiceClass", file=sys.stderr)
        return 2
    module, service_cls = load_service(argv[0])
    service = service_cls.name
    crm_logging.configure(service)

    database_url = config.database_url(service)
    if database_url.startswith("postgresql"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()  # a blocking driver would stall every greenthread of the service
    package_dir = Path(module.__file__).resolve().parent
    migrations.upgrade(package_dir / "migrations", database_url)
    log.info("database ready at %s", config.redact_uri(database_url))

    amqp_uri = config.amqp_uri()
    error = broker_reachable(amqp_uri, float(config.env("CRM_BROKER_WAIT", "20")))
    if error:
        print(f"\n{service}: cannot reach RabbitMQ at {config.redact_uri(amqp_uri)} ({error}).\n"
              "Start the broker (e.g. `rabbitmq-server -detached`) or set CRM_AMQP_URI.\n",
              file=sys.stderr)
        return 3

    from nameko.runners import ServiceRunner

    runner = ServiceRunner({
        "AMQP_URI": amqp_uri,
        "max_workers": int(config.env("CRM_MAX_WORKERS", "10")),
        "serializer": "json",
        "HEARTBEAT": 30,
    })
    runner.add_service(service_cls)

    stopping = eventlet.event.Event()

    def request_stop(signum, _frame):
        log.info("signal %s: stopping %s gracefully", signum, service)
        if not stopping.ready():
            stopping.send(True)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    runner.start()
    log.info("%s started", service)
    crashed = []

    def on_runner_exit(thread):
        try:
            thread.wait()
        except Exception:  # a container died: report it and exit non-zero
            log.exception("%s crashed", service)
            crashed.append(True)
        if not stopping.ready():
            stopping.send(True)

    runner_thread = eventlet.spawn(runner.wait)
    runner_thread.link(on_runner_exit)
    stopping.wait()
    if not crashed:
        runner.stop()
    log.info("%s stopped", service)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
