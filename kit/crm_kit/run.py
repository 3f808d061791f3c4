"""Start one CRM service: ``python -m crm_kit.run customer_service.service:CustomerService``.

``python -m crm_kit.run --migrate-only customer_service.service:CustomerService`` does steps 1-3
and exits: 0 with one line on stdout (the service, the revision, what it applied),
1 with one line on stderr when the database cannot be reached or a migration fails
(``crm_kit.migrate``). The Kubernetes migration Jobs run it.

1. eventlet monkey patching (first, before anything opens a socket), and psycogreen for PostgreSQL;
2. JSON logging;
3. the service's Alembic migrations (its package's ``migrations/`` folder);
4. the broker: waits up to ``CRM_BROKER_WAIT`` seconds (default 20), else exits with a clear message;
5. the nameko service; SIGTERM or Ctrl-C stops it gracefully: no new messages are taken,
   running workers finish, unacknowledged messages go back to the queue.

A broker that restarts (or a connection that drops) while workers run does not stop the
service: nameko 2.14 lets the socket error of a late acknowledgement or of an RPC reply kill
the whole container, so ``survive_broker_restarts`` makes both a logged warning instead (the
broker has taken the unacknowledged message back and delivers it again; the caller of a lost
reply times out). The consumers reconnect by themselves.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402  -- must precede every other import

import importlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from crm_kit import config, migrate, migrations  # noqa: E402
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


def survive_broker_restarts():
    """Make a broker connection lost under a finishing worker a warning, not a crash.

    nameko 2.14 guards its acknowledgements against ``amqp.exceptions.ConnectionError`` only,
    while a dead socket raises ``ConnectionResetError``/``BrokenPipeError``; and an RPC reply
    that cannot be published raises out of the worker. Either kills the service container, so
    a RabbitMQ restart would stop every service that was busy at that moment."""
    from amqp.exceptions import ConnectionError as AmqpConnectionError
    from kombu.exceptions import OperationalError
    from nameko import messaging, rpc

    lost = (OSError, AmqpConnectionError, OperationalError)

    def settle(action):
        def settle_message(self, message):
            if not message.channel.connection:
                return  # the broker has reclaimed it already
            try:
                getattr(message, action)()
            except lost as exc:
                log.warning("could not %s message %s, the broker connection was lost (%s); "
                            "the broker delivers it again", action,
                            message.delivery_tag, exc)
        return settle_message

    messaging.QueueConsumer.ack_message = settle("ack")
    messaging.QueueConsumer.requeue_message = settle("requeue")

    send_response = rpc.Responder.send_response
    if getattr(send_response, "survives_broker_restarts", False):
        return

    def send_response_or_lose_it(self, result, exc_info):
        try:
            return send_response(self, result, exc_info)
        except lost as exc:
            log.warning("an RPC reply was lost with the broker connection (%s); its caller "
                        "times out", exc)
            return result, exc_info

    send_response_or_lose_it.survives_broker_restarts = True
    rpc.Responder.send_response = send_response_or_lose_it


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = [a for a in argv if a.startswith("-")]
    targets = [a for a in argv if not a.startswith("-")]
    if set(options) - {"--migrate-only"} or len(targets) != 1 or ":" not in targets[0]:
        print("usage: python -m crm_kit.run [--migrate-only] package.module:ServiceClass",
              file=sys.stderr)
        return 2
    module, service_cls = load_service(targets[0])
    service = service_cls.name
    crm_logging.configure(service)

    database_url = config.database_url(service)
    if database_url.startswith("postgresql"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()  # a blocking driver would stall every greenthread of the service
    package_dir = Path(module.__file__).resolve().parent
    if options:  # --migrate-only: the same upgrade, reported, then exit
        return migrate.migrate_only(service, package_dir / "migrations", database_url)
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

    survive_broker_restarts()
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
