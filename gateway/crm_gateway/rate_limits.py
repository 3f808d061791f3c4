"""Rate limits per client (Flask-Limiter), checked before the permission check.

The client is the staff member of a validly signed, unexpired bearer token (``staff:<id>``),
else the caller's address (``ip:<address>``, the WSGI ``REMOTE_ADDR``: behind a reverse proxy
that is the proxy's, so give the proxy its own limits). Three limits, each a limits string such
as ``"1200 per minute"`` (settings ``CRM_RATE_LIMIT``, ``CRM_RATE_LIMIT_ANALYTICS``,
``CRM_RATE_LIMIT_LOGIN``):

- every route, counted together per client: ``rate_limit``;
- the analytics routes, one shared budget per client on top of that: ``rate_limit_analytics``
  — reports (JSON, CSV or PNG), RFM and CLV lists, recomputes, clusterings, churn; except the
  two cheap reads a screen may poll, a customer's scores and a score run's status
  (``ANALYTICS_NOT_COUNTED``);
- ``POST /api/v1/auth/token`` per address, every attempt (each costs a scrypt hash):
  ``rate_limit_login``.

``/healthz``, ``/readyz``, ``/metrics``, ``/docs`` and the OpenAPI document are never limited.
Counters live in ``rate_limit_storage``: ``memory://`` (the default) keeps them per gunicorn
worker, so with N workers a client may get up to N times a limit; ``redis://host:6379`` (needs
the ``redis`` package) shares them. Fixed windows. A request over a limit gets 429
``rate_limited`` with ``Retry-After`` (seconds) and ``details.limit``, before anything is done.
"""
import math
import threading
import time

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many
from limits.storage import MemoryStorage

from crm_gateway import auth, errors

API = "/api/v1"
NOT_LIMITED_PATHS = ("/healthz", "/readyz", "/metrics", f"{API}/openapi.json")
NOT_LIMITED_PREFIXES = ("/docs",)
LOGIN_RULE = f"{API}/auth/token"
ANALYTICS_NOT_COUNTED = {
    ("GET", f"{API}/analytics/customers/<customer_id>/scores"),
    ("GET", f"{API}/analytics/runs/<run_id>"),
}


def client_key():
    staff_id = auth.token_subject()
    return f"staff:{staff_id}" if staff_id else address_key()


def address_key():
    return f"ip:{request.remote_addr or 'unknown'}"


def _not_limited():
    path = request.path
    return path in NOT_LIMITED_PATHS or path.startswith(NOT_LIMITED_PREFIXES)


def _rule_of_request():
    rule = request.url_rule
    method = "GET" if request.method == "HEAD" else request.method
    return method, rule.rule if rule is not None else None


def _analytics_not_counted():
    return _rule_of_request() in ANALYTICS_NOT_COUNTED


def _not_login():
    return _rule_of_request() != ("POST", LOGIN_RULE)


class ThreadSafeMemoryStorage(MemoryStorage):
    """``memory://`` as limits 5.8.0 keeps it, with a lock where it has none: when its expiry
    timer has stopped, two request threads could both make a new one and one then start the
    other's a second time ("threads can only be started once", a 500 for that request; seen in
    the rolling-upgrade test). Fixed upstream (alisaifee/limits#352) in no release we can pin
    yet; drop this class once one is. The gateway uses it for every ``memory://`` setting."""

    STORAGE_SCHEME = ["crm-memory"]

    def __init__(self, *args, **kwargs):
        self._timer_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _MemoryStorage__schedule_expiry(self):  # MemoryStorage's private __schedule_expiry
        with self._timer_lock:
            super()._MemoryStorage__schedule_expiry()


def storage_uri(setting):
    """The storage the limiter gets: ``memory://`` becomes the thread-safe one above."""
    return "crm-" + setting if setting.startswith("memory://") else setting


def init_app(app, settings):
    """The limiter of ``app``; call it before the permission check's hook is registered, so
    that callers without a valid token are counted too."""
    for value in (settings.rate_limit, settings.rate_limit_analytics, settings.rate_limit_login):
        parse_many(value)  # a typo fails at start, not on every request
    limiter = Limiter(client_key, app=app, application_limits=[settings.rate_limit],
                      storage_uri=storage_uri(settings.rate_limit_storage),
                      strategy="fixed-window",
                      headers_enabled=False, key_prefix="crm-gateway")
    limiter.request_filter(_not_limited)
    app.extensions["crm_gateway"]["limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, handle_rate_limited)
    return limiter


def limit_blueprints(limiter, settings, analytics_blueprints, auth_blueprint):
    """The stricter limits, once the blueprints are registered."""
    for blueprint in analytics_blueprints:  # one budget for all of them: the same scope
        limiter.shared_limit(settings.rate_limit_analytics, scope="analytics",
                             exempt_when=_analytics_not_counted)(blueprint)
    limiter.limit(settings.rate_limit_login, key_func=address_key,
                  exempt_when=_not_login)(auth_blueprint)


def handle_rate_limited(error):
    limit = str(error.limit.limit)
    current = current_app.extensions["crm_gateway"]["limiter"].current_limit
    reset_at = current.window[0] if current is not None else time.time() + 1  # the window's end
    retry_after = max(1, math.ceil(reset_at - time.time()))
    return errors.error_response(
        429, f"Too many requests ({limit}); try again in {retry_after} s.",
        {"limit": limit, "retry_after": retry_after}, headers={"Retry-After": str(retry_after)})
