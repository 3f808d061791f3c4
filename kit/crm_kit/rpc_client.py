"""A thread-safe RPC client that speaks nameko 2.14's AMQP protocol, built on pika.

Why not nameko's own ``ClusterRpcProxy``: it needs eventlet monkey patching, which does not
mix with a threaded WSGI server (gunicorn ``gthread``). This client keeps nameko's wire format
so the services see an ordinary nameko caller.

Design: one long-lived instance per process. A single I/O thread owns the
``pika.BlockingConnection`` (pika connections are not thread-safe). A caller, on any thread,
registers a pending call, hands the publish to the I/O thread with
``add_callback_threadsafe`` (which wakes ``process_data_events`` at once: no polling) and waits
on its own event with a deadline. Replies come back on one exclusive reply queue and are
matched to their caller by the AMQP ``correlation_id``.

Wire format (see ``nameko/rpc.py``): publish to the durable topic exchange ``nameko-rpc``
with routing key ``<service>.<method>``, JSON body ``{"args": [...], "kwargs": {...}}``,
``reply_to`` = our reply queue's routing key, headers ``nameko.<key>`` for the worker's context
data (``correlation_id``, ``call_id_stack``). The reply is ``{"result": ..., "error": ...}``.

Failure modes, each a distinct error so the gateway can answer 503 or 504:

- no queue bound for the routing key (service never deployed): the broker returns the
  ``mandatory`` message at once → ``ServiceUnavailable``;
- the service queue exists but nobody consumes it (service stopped): the message expires
  after the timeout (``expiration``) instead of running late; on the timeout we look at the
  queue's consumer count → 0 means ``ServiceUnavailable``, and for about a second further calls
  to that service fail fast instead of each waiting the full timeout;
- consumers exist but no answer in time → ``ServiceTimeout``;
- the broker connection is down → ``ServiceUnavailable``; the I/O thread reconnects with
  backoff, so the client recovers without restarting the process.
"""
import datetime
import decimal
import functools
import json
import logging
import os
import threading
import time
import uuid

import pika
from pika.exceptions import ChannelClosedByBroker

from crm_kit import config

log = logging.getLogger(__name__)

RPC_EXCHANGE = "nameko-rpc"
SERVICE_QUEUE_TEMPLATE = "rpc-{}"  # the queue every nameko service consumes its RPCs from
HEADER_PREFIX = "nameko"

#: how long a "this service has no consumers" finding is trusted before asking the broker again
DOWN_CACHE_SECONDS = 1.0
#: the longest a timed-out caller waits for the consumer-count check before answering 504
CONSUMER_CHECK_SECONDS = 1.0
RECONNECT_BACKOFF_FIRST = 0.2
RECONNECT_BACKOFF_MAX = 5.0


class RpcError(Exception):
    """Base of every failure of an RPC call."""

    def __init__(self, message, service=None, method=None):
        super().__init__(message)
        self.message = message
        self.service = service
        self.method = method


class ServiceUnavailable(RpcError):
    """The service is not deployed, not running, or the broker is unreachable (HTTP 503)."""


class ServiceTimeout(RpcError):
    """The service is running but did not answer within the timeout (HTTP 504)."""


class RemoteError(RpcError):
    """The service raised an exception.

    By the ``crm_kit.errors`` convention ``exc_args`` is ``(message, details)``; ``exc_type``
    is the class name (``NotFound``, ``Conflict``, ``InvalidInput``, or anything else = a bug).
    """

    def __init__(self, exc_type, exc_args=(), value="", exc_path=None, service=None, method=None):
        exc_args = list(exc_args or ())
        message = exc_args[0] if exc_args and isinstance(exc_args[0], str) else (value or exc_type)
        super().__init__(message, service, method)
        self.exc_type = exc_type
        self.exc_args = exc_args
        self.exc_path = exc_path
        self.value = value
        self.details = exc_args[1] if len(exc_args) > 1 and isinstance(exc_args[1], dict) else {}

    def __str__(self):
        return f"{self.exc_type}: {self.message}"


def _json_default(value):
    """Encode the few non-JSON values callers naturally hold, the way the contracts expect."""
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _PendingCall:
    __slots__ = ("id", "service", "method", "routing_key", "body", "headers", "expiration_ms",
                 "event", "reply_body", "error", "abandoned")

    def __init__(self, service, method, body, headers, timeout):
        self.id = str(uuid.uuid4())
        self.service = service
        self.method = method
        self.routing_key = f"{service}.{method}"
        self.body = body
        self.headers = headers
        self.expiration_ms = str(max(1, int(timeout * 1000)))
        self.event = threading.Event()
        self.reply_body = None  # raw bytes, decoded by the caller's thread, not the I/O thread
        self.error = None
        self.abandoned = False  # the caller gave up: skip the publish if it has not happened yet


class RpcClient:
    """Call nameko services from ordinary threads. Create once per process and share it."""

    def __init__(self, amqp_uri, timeout=5.0, client_name="gateway"):
        self.amqp_uri = amqp_uri
        self.timeout = float(timeout)
        self.client_name = client_name
        self._parameters = self._connection_parameters(amqp_uri, client_name)

        # guards _pending, _connection and _closed: registering a call and failing every
        # pending call on a disconnect must not interleave, or a call could be lost unanswered
        self._lock = threading.Lock()
        self._pending = {}
        self._connection = None
        self._closed = False

        # owned by the I/O thread only
        self._channel = None
        self._check_channel = None
        self._reply_to = None

        # service -> (consumer_count, monotonic time of the check); written by the I/O thread
        self._consumer_counts = {}

        self._closing = threading.Event()
        self._first_attempt_done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{client_name}-rpc-io", daemon=True)
        self._thread.start()
        # a process that calls right after start-up should not get a spurious 503
        self._first_attempt_done.wait(timeout=max(self.timeout, 1.0))

    # ---------------------------------------------------------------- public API

    @property
    def connected(self):
        return self._connection is not None

    def call(self, service, method, *args, timeout=None, correlation_id=None, context_data=None,
             **kwargs):
        """Call ``service.method(*args, **kwargs)`` and return its result.

        ``correlation_id`` (default: the one of ``crm_kit.logging`` for this thread, else a new
        uuid) travels as the ``nameko.correlation_id`` header into the worker's context;
        ``context_data`` adds more ``nameko.<key>`` headers.
        Raises ``ServiceUnavailable``, ``ServiceTimeout`` or ``RemoteError``.
        """
        timeout = self.timeout if timeout is None else float(timeout)
        # encode in the caller's thread: a bad argument is the caller's TypeError, not the I/O thread's
        body = json.dumps({"args": list(args), "kwargs": kwargs}, default=_json_default).encode()
        headers = self._headers(correlation_id, context_data)

        if self._known_down(service, fresh_only=True):
            raise ServiceUnavailable(f"The {service} service is not running.", service, method)

        call = _PendingCall(service, method, body, headers, timeout)
        with self._lock:
            connection = self._connection
            if self._closed or connection is None:
                raise ServiceUnavailable("The message broker is unreachable.", service, method)
            self._pending[call.id] = call
            try:
                connection.add_callback_threadsafe(functools.partial(self._publish, call))
            except Exception:  # the connection closed under us
                del self._pending[call.id]
                raise ServiceUnavailable("The message broker is unreachable.", service, method)

        if not call.event.wait(timeout):
            with self._lock:
                gave_up = self._pending.pop(call.id, None) is not None
            if gave_up:
                call.abandoned = True
                raise self._timeout_error(service, method, timeout)
            # answered in the instant between the deadline and our pop: take the answer
            call.event.wait()
        return self._result(call)

    def close(self):
        """Stop the I/O thread and close the connection; pending calls fail with ServiceUnavailable."""
        with self._lock:
            self._closed = True
            connection = self._connection
        self._closing.set()
        if connection is not None:
            try:
                connection.add_callback_threadsafe(lambda: None)  # wake the I/O loop
            except Exception:
                pass
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._fail_pending("The RPC client was closed.")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ---------------------------------------------------------------- caller side helpers

    def _headers(self, correlation_id, context_data):
        if correlation_id is None:
            from crm_kit.logging import get_correlation_id
            correlation_id = get_correlation_id() or str(uuid.uuid4())
        headers = {f"{HEADER_PREFIX}.{key}": value
                   for key, value in (context_data or {}).items() if value is not None}
        headers[f"{HEADER_PREFIX}.correlation_id"] = correlation_id
        # nameko workers append their own call id to this stack; ours names the origin
        headers[f"{HEADER_PREFIX}.call_id_stack"] = [f"{self.client_name}.http.{uuid.uuid4()}"]
        return headers

    def _known_down(self, service, fresh_only):
        """True when a recent check found no consumer on the service's queue."""
        entry = self._consumer_counts.get(service)
        if entry is None or entry[0] != 0:
            return False
        return not fresh_only or time.monotonic() - entry[1] < DOWN_CACHE_SECONDS

    def _timeout_error(self, service, method, timeout):
        """No reply in time: tell a stopped service (503) from a slow one (504)."""
        if self._known_down(service, fresh_only=True):  # another caller just found out
            return ServiceUnavailable(f"The {service} service is not running.", service, method)
        count = self._ask_consumer_count(service)
        if count == 0:
            return ServiceUnavailable(f"The {service} service is not running.", service, method)
        if count is None and not self.connected:
            return ServiceUnavailable("The message broker is unreachable.", service, method)
        return ServiceTimeout(
            f"The {service} service did not answer within {timeout:g} s.", service, method)

    def _ask_consumer_count(self, service):
        """The consumer count of the service's queue, asked through the I/O thread; None if unknown."""
        outcome = {}
        done = threading.Event()

        def check():
            try:
                outcome["count"] = self._refresh_consumer_count(service)
            except Exception as exc:  # reported as "unknown"; the I/O loop handles a dead connection
                outcome["error"] = exc
            finally:
                done.set()

        connection = self._connection
        if connection is None:
            return None
        try:
            connection.add_callback_threadsafe(check)
        except Exception:
            return None
        done.wait(CONSUMER_CHECK_SECONDS)
        return outcome.get("count")

    def _result(self, call):
        if call.error is not None:
            raise call.error
        try:
            reply = json.loads(call.reply_body)
        except ValueError:
            raise RemoteError("UnreadableReply", ["The service sent a reply that is not JSON."],
                              service=call.service, method=call.method)
        error = reply.get("error")
        if error:
            raise RemoteError(error.get("exc_type") or "RemoteError", error.get("exc_args"),
                              error.get("value") or "", error.get("exc_path"),
                              service=call.service, method=call.method)
        return reply.get("result")

    # ---------------------------------------------------------------- I/O thread

    @staticmethod
    def _connection_parameters(amqp_uri, client_name):
        parameters = pika.URLParameters(amqp_uri)
        if parameters.virtual_host == "":  # kombu spells the default vhost "amqp://host//"
            parameters.virtual_host = "/"
        # fail fast so calls answer 503 quickly while the broker is away; reconnect loop retries
        parameters.connection_attempts = 1
        parameters.socket_timeout = 3
        parameters.stack_timeout = 5
        parameters.blocked_connection_timeout = 30
        parameters.client_properties = {
            "connection_name": f"{client_name}-rpc-{os.getpid()}-{uuid.uuid4().hex[:8]}"}
        return parameters

    def _run(self):
        backoff = RECONNECT_BACKOFF_FIRST
        while not self._closing.is_set():
            try:
                self._connect()
            except Exception as exc:
                log.warning("RPC client cannot reach the broker at %s: %s; retrying in %.1f s",
                            config.redact_uri(self.amqp_uri), exc.__class__.__name__, backoff)
                self._first_attempt_done.set()
                self._closing.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
                continue
            backoff = RECONNECT_BACKOFF_FIRST
            self._first_attempt_done.set()
            try:
                while not self._closing.is_set():
                    self._connection.process_data_events(time_limit=None)
            except Exception as exc:
                if not self._closing.is_set():
                    log.warning("RPC client lost the broker connection: %s: %s",
                                exc.__class__.__name__, exc)
            finally:
                self._disconnect()

    def _connect(self):
        connection = pika.BlockingConnection(self._parameters)
        try:
            channel = connection.channel()
            channel.exchange_declare(RPC_EXCHANGE, exchange_type="topic", durable=True)
            reply_queue = f"rpc.reply-{self.client_name}-{uuid.uuid4()}"
            channel.queue_declare(reply_queue, exclusive=True, auto_delete=True)
            channel.queue_bind(reply_queue, RPC_EXCHANGE, routing_key=reply_queue)
            channel.basic_consume(reply_queue, self._on_reply, auto_ack=True)
            channel.add_on_return_callback(self._on_returned)
        except Exception:
            connection.close()
            raise
        self._channel = channel
        self._check_channel = None
        self._reply_to = reply_queue
        self._consumer_counts.clear()
        with self._lock:
            self._connection = connection
        log.info("RPC client connected to %s", config.redact_uri(self.amqp_uri))

    def _disconnect(self):
        with self._lock:
            connection, self._connection = self._connection, None
            pending = list(self._pending.values())
            self._pending.clear()
        self._channel = self._check_channel = None
        self._fail(pending, "The connection to the message broker was lost.")
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                pass

    def _fail_pending(self, message):
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        self._fail(pending, message)

    @staticmethod
    def _fail(calls, message):
        for call in calls:
            call.error = ServiceUnavailable(message, call.service, call.method)
            call.event.set()

    def _finish(self, correlation_id, reply_body=None, error=None):
        with self._lock:
            call = self._pending.pop(correlation_id, None)
        if call is None:
            return  # a late reply to a call that already timed out
        call.reply_body = reply_body
        call.error = error
        call.event.set()

    def _publish(self, call):
        """Runs on the I/O thread."""
        if call.abandoned:
            return
        if self._known_down(call.service, fresh_only=False):
            # at most one broker check per service per DOWN_CACHE_SECONDS: this thread is the
            # only one that refreshes, and a fresh entry is trusted without asking
            if not self._known_down(call.service, fresh_only=True):
                self._refresh_consumer_count(call.service)
            if self._known_down(call.service, fresh_only=True):
                self._finish(call.id, error=ServiceUnavailable(
                    f"The {call.service} service is not running.", call.service, call.method))
                return
        properties = pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            reply_to=self._reply_to,
            correlation_id=call.id,
            headers=call.headers,
            # a call nobody picked up in time is dropped, never executed after its caller gave up
            expiration=call.expiration_ms,
        )
        self._channel.basic_publish(RPC_EXCHANGE, call.routing_key, call.body, properties,
                                    mandatory=True)

    def _on_reply(self, _channel, _method, properties, body):
        self._finish(properties.correlation_id, reply_body=body)

    def _on_returned(self, _channel, _method, properties, _body):
        # unroutable: no queue is bound for <service>.*, so the service was never started here
        with self._lock:
            call = self._pending.get(properties.correlation_id)
        service = call.service if call else "requested"
        method = call.method if call else None
        self._finish(properties.correlation_id, error=ServiceUnavailable(
            f"The {service} service is not deployed.", service, method))

    def _refresh_consumer_count(self, service):
        """Passive declare of the service queue on a side channel (a 404 closes that channel)."""
        if self._check_channel is None or not self._check_channel.is_open:
            self._check_channel = self._connection.channel()
        try:
            frame = self._check_channel.queue_declare(
                SERVICE_QUEUE_TEMPLATE.format(service), passive=True)
            count = frame.method.consumer_count
        except ChannelClosedByBroker as exc:
            self._check_channel = None
            if exc.reply_code != 404:
                raise
            count = 0  # no queue at all
        self._consumer_counts[service] = (count, time.monotonic())
        return count
