"""RPC from request handlers: one long-lived client per process, the request's correlation id.

The client (``crm_kit.rpc_client.RpcClient``) is created at the first call, not at import or
app creation, so a gunicorn worker creates it after the fork; every thread of the worker
shares it. It is closed when the process exits.
"""
import atexit
import threading
import time

from flask import current_app, g, has_request_context

from crm_kit.rpc_client import RemoteError, RpcClient, ServiceTimeout, ServiceUnavailable
from crm_gateway import metrics

_clients = {}  # amqp uri -> RpcClient (one per broker: tests point apps at a test vhost)
_clients_lock = threading.Lock()


def client_for(amqp_uri, timeout):
    with _clients_lock:
        client = _clients.get(amqp_uri)
        if client is None:
            client = RpcClient(amqp_uri, timeout=timeout, client_name="gateway")
            _clients[amqp_uri] = client
        return client


def close_all():
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


atexit.register(close_all)


def get_client():
    settings = current_app.config["CRM_SETTINGS"]
    return client_for(settings.amqp_uri, settings.rpc_timeout)


def call(service, method, *args, timeout=None, **kwargs):
    """``service.method(*args, **kwargs)`` with the current request's correlation id.

    Usable from worker threads of the 360 fan-out too: pass the client and id explicitly
    there (``call_with``), as they have no request context.
    """
    correlation_id = g.get("correlation_id") if has_request_context() else None
    return call_with(get_client(), correlation_id, service, method, *args, timeout=timeout,
                     **kwargs)


def call_with(client, correlation_id, service, method, *args, timeout=None, **kwargs):
    started = time.perf_counter()
    outcome = "ok"
    try:
        return client.call(service, method, *args, timeout=timeout,
                           correlation_id=correlation_id, **kwargs)
    except ServiceUnavailable:
        outcome = "unavailable"
        raise
    except ServiceTimeout:
        outcome = "timeout"
        raise
    except RemoteError as error:
        outcome = "error" if error.exc_type not in ("NotFound", "Conflict", "InvalidInput") \
            else "rejected"
        raise
    finally:
        metrics.observe_rpc(service, method, outcome, time.perf_counter() - started)
