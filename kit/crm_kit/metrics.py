"""Prometheus metrics of a service, and the small HTTP server that exposes them.

Names follow Prometheus conventions: base units, ``_total`` counters, ``_seconds`` histograms.
Labels carry the service, entrypoint and event type, never ids or personal data.

``Metrics`` is a nameko DependencyProvider: declared once on a service (``CrmService`` does it),
it times every worker of the service (RPC, event handler, timer), sets the worker's correlation
id for logging, and serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``CRM_METRICS_PORT``.
"""
import json
import logging
import time

from nameko.extensions import DependencyProvider
from prometheus_client import (CONTENT_TYPE_LATEST, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest)

from crm_kit import config
from crm_kit.build_info import BUILD_INFO  # crm_build_info, shared by every app
from crm_kit.logging import reset_correlation_id, set_correlation_id

log = logging.getLogger(__name__)
disable_created_metrics()  # the *_created series only add noise to every scrape

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

ENTRYPOINT_CALLS = Counter(
    "crm_entrypoint_calls_total", "Entrypoint invocations by outcome (ok, error, expected_error).",
    ["service", "entrypoint", "kind", "outcome"])
ENTRYPOINT_DURATION = Histogram(
    "crm_entrypoint_duration_seconds", "Time spent in an entrypoint.",
    ["service", "entrypoint", "kind"], buckets=LATENCY_BUCKETS)
EVENTS_HANDLED = Counter(
    "crm_events_handled_total",
    "Events consumed by outcome: applied, duplicate (skipped), dead_lettered, retried.",
    ["service", "event_type", "outcome"])
EVENTS_PUBLISHED = Counter(
    "crm_events_published_total", "Outbox events confirmed by the broker.",
    ["service", "event_type"])
OUTBOX_BACKLOG = Gauge(
    "crm_outbox_backlog", "Committed events not yet published.", ["service"])
DEAD_LETTERS = Gauge(
    "crm_dead_letters", "Events waiting in the dead-letter table for a replay.", ["service"])


def _kind(entrypoint):
    name = type(entrypoint).__name__
    return {"Rpc": "rpc", "EventHandler": "event", "Timer": "timer"}.get(name, name.lower())


def package_version(service_cls):
    """The installed version of the distribution that holds ``service_cls`` (``crm-customer``
    0.1.0 for ``customer_service``), or "dev" when it runs from an uninstalled tree."""
    from importlib import metadata

    top = service_cls.__module__.split(".")[0]
    for distribution in metadata.packages_distributions().get(top, []):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "dev"


class Metrics(DependencyProvider):
    def setup(self):
        self.service = self.container.service_name
        self.version = config.env("CRM_VERSION") or package_version(self.container.service_cls)
        self.port = int(self.container.config.get("METRICS_PORT") or config.metrics_port(self.service))
        self.host = config.env("CRM_METRICS_HOST", "127.0.0.1")
        self._started = {}
        BUILD_INFO.labels(self.service, self.version).set(1)

    def start(self):
        import eventlet
        import eventlet.wsgi

        self._socket = eventlet.listen((self.host, self.port))
        self.container.spawn_managed_thread(
            lambda: eventlet.wsgi.server(self._socket, self._wsgi, log_output=False),
            identifier="metrics-http")
        log.info("metrics on http://%s:%s/metrics", self.host, self.port)

    def stop(self):
        sock = getattr(self, "_socket", None)
        if sock is not None:
            sock.close()

    # -- per worker ------------------------------------------------------------------------
    def worker_setup(self, worker_ctx):
        token = set_correlation_id(worker_ctx.context_data.get("correlation_id"))
        self._started[worker_ctx] = (time.perf_counter(), token)

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started, token = self._started.pop(worker_ctx, (None, None))
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        labels = (self.service, entrypoint.method_name, _kind(entrypoint))
        ENTRYPOINT_DURATION.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is None:
            outcome = "ok"
        elif isinstance(exc_info[1], entrypoint.expected_exceptions or ()):
            outcome = "expected_error"
        else:
            outcome = "error"
        ENTRYPOINT_CALLS.labels(*labels, outcome).inc()
        try:
            reset_correlation_id(token)
        except ValueError:  # set in another context; nothing to restore
            pass

    # -- HTTP ------------------------------------------------------------------------------
    def _wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/healthz":
            return self._json(start_response, 200, {
                "status": "ok", "service": self.service, "version": self.version})
        if path == "/readyz":
            checks, ready = self._readiness()
            return self._json(start_response, 200 if ready else 503, {
                "status": "ready" if ready else "not_ready", "service": self.service,
                "checks": checks})
        return self._json(start_response, 404, {"error": {"code": "not_found",
                                                          "message": "no such path"}})

    def _readiness(self):
        checks, ready = {}, True
        # nameko starts this server beside the message consumers: not ready until every
        # consumer is listening, or a caller could reach a service whose queue nobody reads yet
        from nameko.messaging import QueueConsumer

        for consumer in (e for e in self.container.extensions if isinstance(e, QueueConsumer)):
            listening = consumer._consumers_ready  # nameko's own "consumers ready" event
            if not listening.ready() or listening.has_exception():
                checks["consumers"] = "starting"
                ready = False
        for provider in self.container.dependencies:
            probe = getattr(provider, "is_ready", None)
            if probe is None:
                continue
            try:
                probe()
                checks[provider.attr_name] = "ok"
            except Exception as exc:
                checks[provider.attr_name] = f"failing: {type(exc).__name__}"
                ready = False
        return checks, ready

    @staticmethod
    def _json(start_response, status, payload):
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]
