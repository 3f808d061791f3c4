"""gunicorn settings of the gateway: ``gunicorn -c python:crm_gateway.gunicorn_conf 'crm_gateway.app:create_app()'``.

| variable | default | meaning |
| --- | --- | --- |
| CRM_GATEWAY_BIND | 127.0.0.1:8000 | address to listen on |
| CRM_GATEWAY_WORKERS | 1 | processes (each has its own RPC connection) |
| CRM_GATEWAY_THREADS | 32 | threads per process (gthread) sharing that connection |
| CRM_GATEWAY_TIMEOUT | 120 | seconds before a silent worker is restarted (CSV import/export) |
| CRM_GATEWAY_JSON_ACCESS_LOG | 0 | 1: access log as JSON lines on stdout |
| PROMETHEUS_MULTIPROC_DIR | unset | needed with more than one worker, so /metrics sums all |
"""
import json
import os

from gunicorn import util as gunicorn_util

# module names here must not collide with gunicorn settings (``config`` is one)
from crm_kit import config as kit_config
from crm_kit import logging as crm_logging
from crm_gateway.errors import CODES

bind = kit_config.env("CRM_GATEWAY_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(kit_config.env("CRM_GATEWAY_WORKERS", "1"))
threads = int(kit_config.env("CRM_GATEWAY_THREADS", "32"))
timeout = int(kit_config.env("CRM_GATEWAY_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# the app is built in each worker, after the fork: the RPC client's I/O thread and the
# database pool must not be shared across processes
preload_app = False
# gunicorn 23+ opens a control socket in the user's home by default; several gateways on one
# host (make up beside the tests, or the bench) would fight over it, and we do not use it
control_socket_disable = True

# a request line up to gunicorn's largest limit reaches the app (long list filters); a longer
# one gets 414, from gunicorn itself (below: in the api.md error format)
limit_request_line = 8190

# application logs: one JSON line per record with the request's correlation id
crm_logging.configure("gateway")
errorlog = "-"
loglevel = kit_config.log_level().lower()

if kit_config.env("CRM_GATEWAY_JSON_ACCESS_LOG", "0") in ("1", "true", "yes"):
    accesslog = "-"
    # gunicorn's atoms: no query string (it may hold a mobile number), no body
    access_log_format = json.dumps({
        "time": "%(t)s", "logger": "gunicorn.access", "service": "gateway",
        "correlation_id": "%({x-request-id}o)s", "method": "%(m)s", "path": "%(U)s",
        "status": "%(s)s", "bytes": "%(B)s", "duration_ms": "%(M)s",
        "remote": "%(h)s", "user_agent": "%(a)s",
    })


def _write_error(sock, status_int, reason, mesg):
    """What gunicorn refuses itself, before the app (a request line over the limit: 414, header
    fields too large: 431, a malformed request: 400), answered in the api.md error format like
    everything else, not as gunicorn's HTML page."""
    code = CODES.get(status_int, "bad_request" if status_int < 500 else "internal_error")
    body = json.dumps({"error": {"code": code, "message": (str(mesg) or reason)[:200],
                                 "details": {}}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    gunicorn_util.write_nonblock(sock, head.encode("latin1") + body)


gunicorn_util.write_error = _write_error


def child_exit(_server, worker):
    """A dead worker's samples must stop counting as live gauges in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
