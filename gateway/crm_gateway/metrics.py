"""Prometheus metrics of the gateway: RED per HTTP route and per RPC method.

Labels carry the route rule (``/api/v1/customers/<customer_id>``), never the raw path, so no
id or personal data lands in a label. With several gunicorn workers set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory): each worker writes its samples there and
``/metrics`` adds them up (gunicorn_conf marks dead workers).
"""
import os
import time

from flask import Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

from crm_kit.build_info import BUILD_INFO  # crm_build_info, shared by every app

# latencies of an API whose calls are mostly one RPC of about a millisecond
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests answered by the gateway",
    ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "crm_http_request_duration_seconds", "Time to answer an HTTP request",
    ["route", "method"], buckets=BUCKETS)
RPC_CALLS = Counter(
    "crm_rpc_client_calls_total",
    "RPC calls made by the gateway; outcome: ok, rejected (business error), error, "
    "unavailable, timeout",
    ["service", "method", "outcome"])
RPC_DURATION = Histogram(
    "crm_rpc_client_call_duration_seconds", "Time an RPC call from the gateway took",
    ["service", "method"], buckets=BUCKETS)




def observe_rpc(service, method, outcome, seconds):
    RPC_CALLS.labels(service, method, outcome).inc()
    RPC_DURATION.labels(service, method).observe(seconds)


def _route():
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def before_request():
    g.request_started = time.perf_counter()


def after_request(response):
    started = g.pop("request_started", None)
    if started is not None:
        route, method = _route(), request.method
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)
    return response


def exposition():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app, version):
    BUILD_INFO.labels("gateway", version).set(1)
    app.before_request(before_request)
    app.after_request(after_request)
