"""JSON logs, one line per record, carrying the correlation id of the request being served.

The gateway assigns a correlation id per HTTP request and sends it as the header
``nameko.correlation_id``; nameko copies it into each worker's context, into every RPC the
worker makes and (through the outbox envelope) into every event. Log records never carry
personal data: log ids, never names, mobiles or ID numbers.
"""
import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from crm_kit import config

_correlation_id = contextvars.ContextVar("correlation_id", default=None)


def get_correlation_id():
    return _correlation_id.get()


def set_correlation_id(value):
    """Set the id for the current thread/greenthread; returns a token for ``reset_correlation_id``."""
    return _correlation_id.set(value)


def reset_correlation_id(token):
    _correlation_id.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, service):
        super().__init__()
        self.service = service

    def filter(self, record):
        record.service = self.service
        record.correlation_id = _correlation_id.get()
        return True


def configure(service, level=None, stream=None):
    """Send every log record of this process to ``stream`` (stderr) as one JSON line."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(JsonFormatter(
        "{asctime}{levelname}{name}{message}{service}{correlation_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or config.log_level())
    # kombu/amqp are chatty at INFO about reconnects that our own code already reports
    for noisy in ("amqp", "kombu", "pika"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # nameko logs every expected business error (404/409/422) as a warning with a traceback;
    # those are answers, not faults. Unexpected errors are still logged at ERROR.
    logging.getLogger("nameko.containers").setLevel(logging.ERROR)
