"""The demo's HTTP client: many signed-in staff members over one thread pool.

- one keep-alive ``requests.Session`` per thread; each call names the staff member it acts
  as (their bearer token is added to that call), so the gateway's per-client rate limit
  (``CRM_RATE_LIMIT``, per staff member) is spread over everyone doing the work;
- each staff member's calls are paced to at most ``staff_rate`` a second (default 18, just
  under the gateway's default 1200 a minute): a burst for one person waits milliseconds here
  instead of a whole rate-limit window (up to a minute) after a 429;
- staff sign in lazily, once each (a lock per account); sign-ins are limited per address
  (``CRM_RATE_LIMIT_LOGIN``, 20 a minute by default): a 429 waits for its ``Retry-After``;
- 429 anywhere: wait ``Retry-After`` (plus a little jitter) and send again; 401 (a token
  expired during a long run): sign in again and send again; 503 (a service down) and
  connection errors: back off and send again; 504 and read timeouts are retried only for
  safe calls (GETs, payments with an ``Idempotency-Key``), others are answered as they are.
"""
import random
import threading
import time
from collections import Counter

import requests
from requests.adapters import HTTPAdapter

MAX_RATE_LIMIT_WAITS = 60
MAX_RETRIES = 6


class ApiError(Exception):
    """A call that got no usable answer (connection refused over and over, timeouts)."""


class Stats:
    """Request counters shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses = Counter()
        self.waits = Counter()
        self.started = time.monotonic()

    def count(self, status):
        with self.lock:
            self.requests += 1
            self.statuses[status] += 1

    def wait(self, reason):
        with self.lock:
            self.waits[reason] += 1

    def rate(self):
        elapsed = time.monotonic() - self.started
        return self.requests / elapsed if elapsed > 0 else 0.0


class Api:
    def __init__(self, base_url, timeout=30.0, stats=None, log=None, staff_rate=18.0):
        self.root = base_url.rstrip("/")
        self.base = self.root + "/api/v1"
        self.timeout = timeout
        self.stats = stats or Stats()
        self.log = log or (lambda message: None)
        self.local = threading.local()
        self.credentials = {}  # actor key -> (username, password)
        self.tokens = {}
        self.locks = {}
        self.locks_lock = threading.Lock()
        self.interval = 1.0 / staff_rate if staff_rate else 0.0
        self.next_slot = {}  # actor key -> the earliest moment of their next call
        self.pace_lock = threading.Lock()

    # ------------------------------------------------------------ sessions and sign-in

    def session(self):
        session = getattr(self.local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self.local.session = session
        return session

    def add_account(self, key, username, password):
        self.credentials[key] = (username, password)
        self.tokens.pop(key, None)

    def signed_in(self, key):
        return key in self.tokens

    def _lock(self, key):
        with self.locks_lock:
            return self.locks.setdefault(key, threading.Lock())

    def token(self, key, stale=None, quiet=False):
        """The bearer token of ``key``, signing in when there is none (or it is ``stale``)."""
        token = self.tokens.get(key)
        if token and token != stale:
            return token
        with self._lock(key):
            token = self.tokens.get(key)
            if token and token != stale:
                return token
            username, password = self.credentials[key]
            for attempt in range(MAX_RATE_LIMIT_WAITS):
                response = self._send("POST", self.base + "/auth/token",
                                      json={"username": username, "password": password})
                if response.status_code == 429:
                    self.stats.wait("sign-in rate limit")
                    self._sleep_retry_after(response, None if quiet else f"sign-in of {username}")
                    continue
                if response.status_code != 200:
                    raise ApiError(f"cannot sign in as {username}: {response.status_code} "
                                   f"{response.text[:300]}")
                token = response.json()["access_token"]
                self.tokens[key] = token
                return token
            raise ApiError(f"cannot sign in as {username}: rate limited for too long")

    def sign_in_all(self, keys):
        """Sign ``keys`` in one after another on a background thread, so the per-address
        sign-in limit is waited out while others work, not when each first acts."""
        def run():
            for key in keys:
                try:
                    self.token(key, quiet=True)
                except Exception:  # noqa: BLE001 (a call as them will try again and report)
                    pass

        thread = threading.Thread(target=run, name="demo-sign-in", daemon=True)
        thread.start()
        return thread

    def _pace(self, actor):
        """Reserve ``actor``'s next call slot and wait for it (a token bucket of one)."""
        if not self.interval:
            return
        with self.pace_lock:
            now = time.monotonic()
            slot = max(now, self.next_slot.get(actor, 0.0))
            self.next_slot[actor] = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def _sleep_retry_after(self, response, what):
        try:
            seconds = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            seconds = 1.0
        seconds = max(0.2, min(seconds, 120.0)) + random.uniform(0.0, 0.5)
        if seconds > 5 and what:
            self.log(f"rate limited ({what}): waiting {seconds:.0f} s")
        time.sleep(seconds)

    # ------------------------------------------------------------ calls

    def _send(self, method, url, **kwargs):
        response = self.session().request(method, url, timeout=self.timeout, **kwargs)
        self.stats.count(response.status_code)
        return response

    def call(self, actor, method, path, json=None, params=None, headers=None, safe=None):
        """``method path`` as ``actor`` (a staff key); the response, whatever its status,
        after the retries above. ``safe``: may be sent again after a timeout (default: GET)."""
        safe = method == "GET" if safe is None else safe
        url = self.base + path
        stale = None
        failures = 0
        waits = 0
        while True:
            token = self.token(actor, stale)
            all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
            self._pace(actor)
            try:
                response = self._send(method, url, json=json, params=params,
                                      headers=all_headers)
            except requests.ConnectionError as exc:
                failures += 1
                self.stats.wait("connection error")
                if failures > MAX_RETRIES:
                    raise ApiError(f"{method} {path}: {exc}") from None
                time.sleep(min(30.0, 0.5 * 2 ** failures))
                continue
            except requests.Timeout as exc:
                failures += 1
                self.stats.wait("timeout")
                if not safe or failures > MAX_RETRIES:
                    raise ApiError(f"{method} {path}: no answer in {self.timeout:g} s") from exc
                continue
            status = response.status_code
            if status == 401 and stale != token:
                stale = token  # expired during a long run: sign in again
                continue
            if status == 429:
                waits += 1
                self.stats.wait("rate limit")
                if waits > MAX_RATE_LIMIT_WAITS:
                    return response
                self._sleep_retry_after(response, f"{method} {path}")
                continue
            if status == 503 or (status == 504 and safe):
                failures += 1
                self.stats.wait(f"{status}")
                if failures > MAX_RETRIES:
                    return response
                time.sleep(min(30.0, 0.5 * 2 ** failures))
                continue
            return response

    def get(self, actor, path, **params):
        return self.call(actor, "GET", path, params=params)

    def post(self, actor, path, body=None, **kwargs):
        return self.call(actor, "POST", path, json=body if body is not None else {}, **kwargs)

    def patch(self, actor, path, body):
        return self.call(actor, "PATCH", path, json=body)

    def put(self, actor, path, body):
        return self.call(actor, "PUT", path, json=body, safe=True)

    def ready(self):
        try:
            return requests.get(self.root + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False
