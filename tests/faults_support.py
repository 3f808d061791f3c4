"""What the fault tests (``test_faults.py``) share: the CRM's real processes on a broker of the
test's choosing, a staff client that retries the way a careful app does, a stream of business
operations, and the ledger that compares what the producers committed with what every
consumer applied.

- ``Gateway``: the gateway as ``make up`` runs it (gunicorn), on a free port.
- ``Stack``: services (``crm_kit.testing.ServiceProcess``, as ``make up`` starts them) and the
  gateway, each service with its own database (SQLite file unless a URL is given), started
  together; any one can be killed, stopped or restarted on the same database.
- ``Client``: a staff client over HTTP; ``Client.call`` retries what a broker or service outage
  makes fail (503, 504, 502, a dropped connection) and resolves an unknown outcome the way an
  app can (a customer by its mobile, a lease by its unit, a payment by its idempotency key, a
  ticket by its description) so each business operation is done exactly once.
- ``tenant_story``: one tenant's operations: customer, unit, lease signed, two payments, a
  ticket (five business operations, plus the unit).
- ``Ledger``: reads every service's database and counts, per event and consumer, what was
  committed, published and applied: ``lost`` and ``duplicated`` must be 0.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from crm_kit.config import normalize_database_url
from crm_kit.testing import ServiceProcess, free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ("admin", "fault-admin-password")
SPECS = {
    "customer": "customer_service.service:CustomerService",
    "sales": "sales_service.service:SalesService",
    "service_desk": "service_desk_service.service:ServiceDeskService",
    "marketing": "marketing_service.service:MarketingService",
    "analytics": "analytics_service.service:AnalyticsService",
}
#: what a careful client retries: the broker or a service away (503), slow (504), the
#: gateway itself restarting (502/connection refused)
RETRYABLE = {502, 503, 504}


class Gateway:
    """The gateway process (gunicorn, one worker, threads), as ``make up`` starts it."""

    def __init__(self, amqp_uri, data_dir, rpc_timeout=3.0, ready_services=None, env=None):
        self.port = free_port()
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / f"gateway-{self.port}.log"
        self.env = {**os.environ, "CRM_AMQP_URI": amqp_uri, "CRM_DATA_DIR": str(self.data_dir),
                    "CRM_GATEWAY_BIND": f"127.0.0.1:{self.port}",
                    "CRM_ADMIN_USERNAME": ADMIN[0], "CRM_ADMIN_PASSWORD": ADMIN[1],
                    "CRM_RPC_TIMEOUT": str(rpc_timeout),
                    "CRM_GATEWAY_READY_SERVICES": ",".join(ready_services or SPECS),
                    # one staff client drives thousands of calls a minute here
                    "CRM_RATE_LIMIT": "100000 per minute",
                    "CRM_RATE_LIMIT_ANALYTICS": "100000 per minute",
                    "CRM_RATE_LIMIT_LOGIN": "1000 per minute",
                    "CRM_GATEWAY_THREADS": "16", **(env or {})}
        for name in ("CRM_GATEWAY_DATABASE_URL", "CRM_DATABASE_URL", "CRM_METRICS_PORT"):
            self.env.pop(name, None)
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60.0):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:crm_gateway.gunicorn_conf",
                 "crm_gateway.app:create_app()"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_until(self._ready, timeout=timeout, interval=0.1, message="the gateway")
        except AssertionError:
            raise AssertionError(f"the gateway did not become ready:\n{self.log()}") from None
        return self

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{self.log()}")
        return http_get(self.url + "/readyz")[0] == 200

    def log(self):
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Stack:
    """Services and the gateway on ``amqp_uri``; ``databases`` maps a service to its database
    URL (default: a SQLite file of its own), ``env`` a service to extra environment."""

    def __init__(self, amqp_uri, data_dir, databases=None, env=None, rpc_timeout=3.0):
        self.amqp_uri = amqp_uri
        self.data_dir = Path(data_dir)
        self.databases = dict(databases or {})
        self.env = dict(env or {})
        self.rpc_timeout = rpc_timeout
        self.services = {}  # name -> [ServiceProcess, ...] (a second instance after the first)
        self.gateway = None
        self._engines = {}

    def database_url(self, name):
        return self.databases.setdefault(name, f"sqlite:///{self.data_dir / (name + '.db')}")

    def _process(self, name):
        return ServiceProcess(SPECS[name], self.amqp_uri, self.database_url(name),
                              self.data_dir, name=name,
                              env={"CRM_RPC_TIMEOUT": str(self.rpc_timeout),
                                   **self.env.get(name, {})})

    def start(self, names=tuple(SPECS), instances=1, gateway=True):
        """Start ``names`` (``instances`` of each) at once, then the gateway."""
        started = []
        for name in names:
            for _ in range(instances):
                process = self._process(name)
                self.services.setdefault(name, []).append(process)
                started.append(process)
        self._start_all(started)
        if gateway:
            self.gateway = Gateway(self.amqp_uri, self.data_dir, self.rpc_timeout,
                                   ready_services=[n for n in SPECS if n in self.services]
                                   ).start()
        return self

    @staticmethod
    def _start_all(processes):
        failures = []

        def start(process):
            try:
                process.start(timeout=60)
            except BaseException as exc:  # reported below, after the others started
                failures.append(exc)

        threads = [threading.Thread(target=start, args=(p,)) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]

    def service(self, name, instance=0):
        return self.services[name][instance]

    def restart(self, *names, instance=0):
        """New processes of the services, on the same databases (after a kill or a stop),
        started at once; returns them."""
        fresh = []
        for name in names:
            self.services[name][instance].kill()  # if it still runs
            self.services[name][instance] = self._process(name)
            fresh.append(self.services[name][instance])
        self._start_all(fresh)
        return fresh

    def stop(self):
        """Everything at once: the end of a test, not a fault."""
        self.wait_stopped(self.signal_stop())

    def signal_stop(self):
        """SIGTERM to every service, a quick shutdown to the gateway; the processes to wait
        for (``wait_stopped``), so that several stacks stop at once."""
        running = [p.process for processes in self.services.values() for p in processes
                   if p.process is not None and p.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        if self.gateway is not None and self.gateway.process.poll() is None:
            self.gateway.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            running.append(self.gateway.process)
        return running

    def wait_stopped(self, running, timeout=20.0):
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for engine in self._engines.values():
            engine.dispose()

    def engine(self, name):
        if name not in self._engines:
            self._engines[name] = create_engine(normalize_database_url(self.database_url(name)))
        return self._engines[name]

    def rows(self, name, sql, **params):
        with self.engine(name).connect() as connection:
            return connection.execute(text(sql), params).all()

    def scalar(self, name, sql, **params):
        with self.engine(name).connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def client(self):
        return Client(self.gateway.url, *ADMIN)


# ---------------------------------------------------------------------------------- client

class Outage(Exception):
    """The operation could not be completed before its deadline."""


class Client:
    """A staff member's HTTP client (one ``requests`` session per thread)."""

    def __init__(self, base_url, username, password, deadline=90.0):
        self.base = base_url + "/api/v1"
        self.deadline = deadline
        self._local = threading.local()
        self.retries = Counter()  # status (or "connection") -> how many calls were retried
        self.aborted = threading.Event()  # set when the test gives up: no more retries
        self._lock = threading.Lock()
        response = requests.post(self.base + "/auth/token",
                                 json={"username": username, "password": password}, timeout=30)
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def request(self, method, path, **kwargs):
        """One attempt: the response, or None when the gateway could not be reached."""
        try:
            return self._session().request(method, self.base + path, timeout=30, **kwargs)
        except requests.RequestException:
            return None

    def call(self, method, path, expect=(200, 201), resolve=None, **kwargs):
        """The operation done once: retried while the answer is an outage (503, 504, 502 or no
        answer). Before each retry ``resolve()`` may find the first attempt's effect (an
        unknown outcome) and return it; after a retry answered 409, ``resolve(details)`` gets
        the conflict's details (the record the first attempt made, committed late). Answers the
        JSON body; any other status fails."""
        deadline = time.monotonic() + self.deadline
        pause = 0.1
        uncertain = False
        while True:
            if uncertain and resolve is not None:
                found = resolve(None)
                if found is not None:
                    return found
            response = self.request(method, path, **kwargs)
            if response is not None and response.status_code in expect:
                return response.json() if response.content else None
            if response is not None and response.status_code == 409 and uncertain \
                    and resolve is not None:  # the first attempt's effect, committed late
                found = resolve(response.json()["error"]["details"])
                if found is not None:
                    return found
            if response is not None and response.status_code not in RETRYABLE:
                raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            with self._lock:
                self.retries[response.status_code if response is not None else "connection"] += 1
            if time.monotonic() > deadline or self.aborted.is_set():
                raise Outage(f"{method} {path} still failing after {self.deadline}s")
            uncertain = True
            if self.aborted.wait(pause):  # backoff between retries; an abort ends it at once
                raise Outage(f"{method} {path}: the run was aborted")
            pause = min(pause * 2, 1.0)

    def get(self, path, **params):
        return self.call("GET", path, expect=(200,), params=params)


# ------------------------------------------------------------------------------ operations

class Operations:
    """Business operations through the gateway, each done once whatever the outages; counts
    them by kind (``done``) for the figures."""

    def __init__(self, client, run_id=None):
        self.client = client
        self.run_id = run_id or uuid.uuid4().hex[:6]
        self.done = Counter()
        self._lock = threading.Lock()
        self.expected = {"customers": set(), "leases": {}, "payments": {}, "tickets": set(),
                         "units": set(), "tasks": set()}

    def _count(self, kind, key, value=None):
        with self._lock:
            self.done[kind] += 1
            bucket = self.expected[kind]
            if isinstance(bucket, dict):
                bucket[key] = value
            else:
                bucket.add(key)

    def create_customer(self, n, **fields):
        mobile = f"15{int(self.run_id[:4], 16) % 100:02d}{n:07d}"  # (the tests' imports: 13x)
        body = {"name": f"租客{self.run_id}-{n}", "mobile": mobile, "district": "高新区",
                "consent": {"sms": True, "in_app": True}, **fields}

        def resolve(conflict):
            if conflict and conflict.get("field") == "mobile":
                return self.client.get(f"/customers/{conflict['existing_id']}")
            found = self.client.get("/customers", q=mobile, per_page=5)["items"]
            return next((c for c in found if c["name"] == body["name"]), None)

        customer = self.client.call("POST", "/customers", json=body, resolve=resolve)
        self._count("customers", customer["id"])
        return customer

    def create_unit(self, n, rent="3000.00"):
        code = f"F{self.run_id}-{n:05d}"
        body = {"code": code, "building": f"故障测试{self.run_id}栋", "district": "高新区",
                "layout": "1b1b", "area_sqm": "35.00", "floor": 1 + n % 30,
                "monthly_rent": rent}

        def resolve(conflict):
            if conflict and conflict.get("field") == "code":
                return self.client.get(f"/units/{conflict['existing_id']}")
            found = self.client.get("/units", q=code, per_page=5)["items"]
            return next((u for u in found if u["code"] == code), None)

        unit = self.client.call("POST", "/units", json=body, resolve=resolve)
        self._count("units", unit["id"])
        return unit

    def sign_lease(self, customer, unit, start=None, cycle="yearly", rent="3000.00"):
        start = start or date.today() - timedelta(days=40)
        body = {"customer_id": customer["id"], "unit_id": unit["id"],
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(days=364)).isoformat(),
                "monthly_rent": rent, "deposit": rent, "payment_cycle": cycle}

        def resolve(_conflict):
            found = self.client.get("/leases", unit_id=unit["id"], per_page=5)["items"]
            lease = next((x for x in found if x["customer_id"] == customer["id"]), None)
            return lease and self.client.get(f"/leases/{lease['id']}")

        lease = self.client.call("POST", "/leases", json=body, resolve=resolve)
        self._count("leases", lease["id"], customer["id"])
        return lease

    def pay(self, bill, amount=None):
        amount = amount or bill["balance"]
        key = f"fault-{self.run_id}-{bill['id']}-{amount}"
        body = {"bill_id": bill["id"], "amount": amount, "method": "wechat_pay",
                "paid_at": datetime.now(timezone.utc).isoformat()}
        # the idempotency key makes the retry itself the resolution
        paid = self.client.call("POST", "/payments", json=body,
                                headers={"Idempotency-Key": key})
        self._count("payments", paid["payment_id"], (bill["customer_id"], paid["amount"]))
        return paid

    def open_ticket(self, customer, lease=None, n=0):
        description = f"故障测试 {self.run_id}-{n}: 热水器不热 water heater"
        body = {"customer_id": customer["id"], "type": "repair", "channel": "wechat",
                "priority": "normal", "description": description}
        if lease is not None:
            body["lease_id"] = lease["id"]

        def resolve(_conflict):
            found = self.client.get("/tickets", customer_id=customer["id"], per_page=50)["items"]
            return next((t for t in found if t.get("description") == description), None)

        ticket = self.client.call("POST", "/tickets", json=body, resolve=resolve)
        self._count("tickets", ticket["id"])
        return ticket

    def create_task(self, customer, remind_in=2.0, n=0):
        moment = datetime.now(timezone.utc)
        title = f"回访 {self.run_id}-{n}"
        body = {"title": title, "customer_id": customer["id"],
                "due_at": (moment + timedelta(days=1)).isoformat(),
                "remind_at": (moment + timedelta(seconds=remind_in)).isoformat()}

        def resolve(_conflict):
            found = self.client.get("/tasks", customer_id=customer["id"], per_page=50)["items"]
            return next((t for t in found if t["title"] == title), None)

        task = self.client.call("POST", "/tasks", json=body, resolve=resolve)
        self._count("tasks", task["id"])
        return task

    @property
    def business_operations(self):
        """Customers, leases, payments, tickets and tasks (units are the stock, not counted)."""
        return sum(self.done[kind] for kind in ("customers", "leases", "payments", "tickets",
                                                "tasks"))


def lease_story(ops, n):
    """Customer → unit → lease (entered 40 days late: the deposit and the year's rent are due)
    → both paid: four business operations, and the lease returned."""
    customer = ops.create_customer(n)
    unit = ops.create_unit(n)
    lease = ops.sign_lease(customer, unit)
    due = sorted((b for b in lease["bills"] if b["kind"] in ("deposit", "rent")),
                 key=lambda b: (b["due_date"], b["kind"] != "deposit"))[:2]
    for bill in due:
        ops.pay(bill)
    return customer, lease


def tenant_story(ops, n):
    """``lease_story`` and then a repair ticket: five business operations."""
    customer, lease = lease_story(ops, n)
    ops.open_ticket(customer, lease, n)


class Stream:
    """``stories`` stories (``story(ops, n)``, a tenant's by default) on ``threads`` threads,
    in the background."""

    def __init__(self, ops, stories, threads=8, first=0, story=tenant_story):
        self.ops = ops
        self.story = story
        self.total = stories
        self.finished = 0
        self.errors = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="story")
        self._futures = [self._pool.submit(self._one, first + n) for n in range(stories)]

    def _one(self, n):
        try:
            self.story(self.ops, n)
        except BaseException as exc:
            self.errors.append(f"story {n}: {type(exc).__name__}: {exc}")
            raise
        finally:
            with self._lock:
                self.finished += 1

    def progress(self):
        return self.finished / self.total

    def wait(self, timeout=300):
        deadline = time.monotonic() + timeout
        try:
            for future in self._futures:
                future.exception(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            self.abort()
        assert not self.errors, self.errors[:5]

    def abort(self):
        """No new story, no more retries (a test that failed does not wait for the rest)."""
        self.ops.client.aborted.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------- ledger

#: (consumer service, handler, producer service, event type) checked by the ledger
DELIVERIES = [
    ("customer", "customer.on_lease_signed", "sales", "lease.signed"),
    ("customer", "customer.on_payment_received", "sales", "payment.received"),
    ("marketing", "marketing.on_customer_created", "customer", "customer.created"),
    ("marketing", "marketing.on_customer_updated", "customer", "customer.updated"),
    ("marketing", "marketing.on_stage_changed", "customer", "customer.stage_changed"),
    ("marketing", "marketing.on_lease_signed", "sales", "lease.signed"),
    ("analytics", "analytics.on_customer_created", "customer", "customer.created"),
    ("analytics", "analytics.on_customer_updated", "customer", "customer.updated"),
    ("analytics", "analytics.on_customer_stage_changed", "customer", "customer.stage_changed"),
    ("analytics", "analytics.on_lease_signed", "sales", "lease.signed"),
    ("analytics", "analytics.on_bill_issued", "sales", "bill.issued"),
    ("analytics", "analytics.on_payment_received", "sales", "payment.received"),
    ("analytics", "analytics.on_ticket_created", "service_desk", "ticket.created"),
]


def points_for(amount):
    return int((Decimal(str(amount)) / 10).to_integral_value(rounding=ROUND_FLOOR))


class Ledger:
    """What every producer committed and every consumer applied, from their databases."""

    def __init__(self, stack, deliveries=DELIVERIES):
        self.stack = stack
        self.deliveries = [d for d in deliveries
                           if d[0] in stack.services and d[2] in stack.services]

    def unpublished(self):
        return {name: self.stack.scalar(
                    name, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
                for name in self.stack.services}

    def events(self, producer, event_type):
        return {row[0] for row in self.stack.rows(
            producer, "SELECT event_id FROM outbox_events WHERE event_type = :t", t=event_type)}

    def applied(self, consumer, handler):
        return {row[0] for row in self.stack.rows(
            consumer, "SELECT event_id FROM processed_events WHERE handler = :h", h=handler)}

    def dead_letters(self):
        return {name: self.stack.scalar(
                    name, "SELECT count(*) FROM dead_letters WHERE status = 'dead'")
                for name in self.stack.services}

    def backlog(self, consumer):
        """Events committed by producers that ``consumer`` has not applied yet (queued or in
        the hands of its workers)."""
        return sum(len(self.events(p, t) - self.applied(c, h))
                   for c, h, p, t in self.deliveries if c == consumer)

    def caught_up(self):
        """True once every outbox row is published and every consumer has applied every event
        it subscribes to (the waiting condition; ``figures`` says what went wrong if never)."""
        if any(self.unpublished().values()):
            return False
        return all(self.events(p, t) <= self.applied(c, h) for c, h, p, t in self.deliveries)

    def figures(self, ops=None):
        """``{committed, events, deliveries, lost, duplicated, details}``."""
        lost, duplicated, details = 0, 0, defaultdict(dict)
        unpublished = self.unpublished()
        lost += sum(unpublished.values())
        details["unpublished"] = unpublished
        deliveries = 0
        for consumer, handler, producer, event_type in self.deliveries:
            expected = self.events(producer, event_type)
            applied = self.applied(consumer, handler)
            deliveries += len(expected)
            missing = expected - applied
            strays = applied - expected  # applied but never committed by the producer
            lost += len(missing)
            duplicated += len(strays)
            if missing or strays:
                details["deliveries"][handler] = {"missing": len(missing), "strays": len(strays)}
        effects = self._effects()
        lost += effects["lost"]
        duplicated += effects["duplicated"]
        details["effects"] = effects
        committed = self.committed()
        if ops is not None:  # what the client was told is done is what the producers hold
            for kind, held in committed["ids"].items():
                told = set(ops.expected[kind])
                if told - held:
                    lost += len(told - held)
                    details["acknowledged_but_missing"][kind] = len(told - held)
        committed_total = sum(len(ids) for ids in committed["ids"].values())
        return {"committed": committed_total, "committed_by_kind": {
                    k: len(v) for k, v in committed["ids"].items()},
                "events": sum(committed["events"].values()), "deliveries": deliveries,
                "lost": lost, "duplicated": duplicated, "details": dict(details),
                "dead_letters": self.dead_letters(), "half_done": self.half_done()}

    #: a business record and the event that announces it, committed together or not at all
    ANNOUNCED = [("customer", "SELECT count(*) FROM customers", "customer.created"),
                 ("sales", "SELECT count(*) FROM leases WHERE renewed_from_id IS NULL",
                  "lease.signed"),
                 ("sales", "SELECT count(*) FROM payments", "payment.received"),
                 ("service_desk", "SELECT count(*) FROM tickets", "ticket.created")]

    def half_done(self):
        """Work committed in part: records without their event (or the other way round), bills
        whose paid amount is not the sum of their payments. ``{what: how many}``, empty if
        none."""
        found = {}
        for service, count_rows, event_type in self.ANNOUNCED:
            if service in self.stack.services:
                rows = self.stack.scalar(service, count_rows)
                events = self.stack.scalar(service, "SELECT count(*) FROM outbox_events WHERE "
                                           "event_type = :t", t=event_type)
                if rows != events:
                    found[event_type] = events - rows
        if "sales" in self.stack.services:
            mismatched = self.stack.scalar(
                "sales", "SELECT count(*) FROM bills b WHERE b.paid <> (SELECT "
                "coalesce(sum(p.amount), 0) FROM payments p WHERE p.bill_id = b.id)")
            if mismatched:
                found["bills_paid_not_their_payments"] = mismatched
        return found

    def committed(self):
        """Rows of the business operations in the producers' databases, and their events."""
        ids, events = {}, {}
        s = self.stack
        if "customer" in s.services:
            ids["customers"] = {r[0] for r in s.rows("customer", "SELECT id FROM customers")}
        if "sales" in s.services:
            ids["leases"] = {r[0] for r in s.rows("sales", "SELECT id FROM leases")}
            ids["payments"] = {r[0] for r in s.rows("sales", "SELECT id FROM payments")}
            ids["tasks"] = {r[0] for r in s.rows("sales", "SELECT id FROM tasks "
                                                 "WHERE kind = 'task'")}  # staff's own
        if "service_desk" in s.services:
            ids["tickets"] = {r[0] for r in s.rows("service_desk", "SELECT id FROM tickets")}
        for name in s.services:
            events[name] = s.scalar(name, "SELECT count(*) FROM outbox_events")
        return {"ids": ids, "events": events}

    def _effects(self):
        """Effects that are not idempotent by nature, so a second application would show:
        the customer's lease counter, points and ledger of points, the stage changes caused by
        an event; the copies in marketing and analytics row by row."""
        s = self.stack
        lost = duplicated = 0
        found = {}
        if "customer" in s.services and "sales" in s.services:
            leases = Counter(r[0] for r in s.rows("sales", "SELECT customer_id FROM leases"))
            points = Counter()
            for customer_id, amount in s.rows("sales", "SELECT customer_id, amount FROM payments"):
                points[customer_id] += points_for(_money(amount, s.database_url("sales")))
            counted = {r[0]: (r[1], r[2]) for r in s.rows(
                "customer", "SELECT id, leases_signed, points FROM customers")}
            for customer_id, (signed, balance) in counted.items():
                for want, have, name in ((leases[customer_id], signed, "leases_signed"),
                                         (points[customer_id], balance, "points")):
                    if have > want:
                        duplicated += have - want
                        found.setdefault(name + "_over", 0)
                        found[name + "_over"] += have - want
                    elif have < want:
                        lost += want - have
                        found.setdefault(name + "_under", 0)
                        found[name + "_under"] += want - have
            twice = s.scalar("customer", "SELECT count(*) FROM (SELECT event_id FROM point_entries"
                             " WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1)"
                             " AS twice")
            stage_twice = s.scalar("customer", "SELECT count(*) FROM (SELECT event_id FROM "
                                   "stage_changes WHERE event_id IS NOT NULL GROUP BY event_id "
                                   "HAVING count(*) > 1) AS twice")
            duplicated += twice + stage_twice
            found["point_entries_twice"] = twice
            found["stage_changes_twice"] = stage_twice
        copies = [("marketing", "customers", "customer", "customers"),
                  ("marketing", "leases", "sales", "leases"),
                  ("analytics", "customers", "customer", "customers"),
                  ("analytics", "leases", "sales", "leases"),
                  ("analytics", "payments", "sales", "payments"),
                  ("analytics", "bills", "sales", "bills"),
                  ("analytics", "tickets", "service_desk", "tickets")]
        for consumer, table, producer, source in copies:
            if consumer in s.services and producer in s.services:
                have = {r[0] for r in s.rows(consumer, f"SELECT id FROM {table}")}
                want = {r[0] for r in s.rows(producer, f"SELECT id FROM {source}")}
                if want - have:
                    lost += len(want - have)
                    found[f"{consumer}.{table}_missing"] = len(want - have)
        return {"lost": lost, "duplicated": duplicated, **found}


def _money(value, url):
    """Money as the producer stores it: integer cents on SQLite, NUMERIC on PostgreSQL."""
    if url.startswith("sqlite"):
        return Decimal(int(value)) / 100
    return Decimal(value)


def report(name, ops, figures, **timings):
    """The line the closing note collects, printed; returns it."""
    extra = "".join(f", {key}={value}" for key, value in timings.items())
    line = (f"FAULT {name}: ops={ops}, committed={figures['committed']}, "
            f"events={figures['events']}, deliveries={figures['deliveries']}, "
            f"lost={figures['lost']}, duplicated={figures['duplicated']}{extra}")
    print(line)
    return line


def assert_exactly_once(figures):
    assert figures["lost"] == 0 and figures["duplicated"] == 0, json.dumps(
        figures["details"], indent=1, default=str)
    assert not any(figures["dead_letters"].values()), figures["dead_letters"]
    assert figures["half_done"] == {}, figures["half_done"]


# ------------------------------------------------------------------------------- helpers

def metric_total(process, name, **labels):
    """The sum of every sample of ``name`` on a service's /metrics that has ``labels``."""
    status, body = http_get(process.base_url + "/metrics")
    if status != 200:
        return None
    want = {f'{key}="{value}"' for key, value in labels.items()}
    total = 0.0
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric_name, _, label_text = series.partition("{")
        if metric_name == name and want <= set(label_text.rstrip("}").split(",")):
            total += float(value)
    return total


def absorbed_duplicates(stack):
    """Deliveries the inboxes recognised as already applied (redeliveries after a fault)."""
    return int(sum(metric_total(process, "crm_events_handled_total", outcome="duplicate") or 0
                   for processes in stack.services.values() for process in processes))


def vhost_of(amqp_uri):
    return amqp_uri.rsplit("/", 1)[1]


def copy_sqlite(source_url, target_path):
    """A consistent copy of a live SQLite database (the backup API), as a backup would take."""
    import sqlite3

    source = sqlite3.connect(source_url[len("sqlite:///"):])
    target = sqlite3.connect(str(target_path))
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return f"sqlite:///{target_path}"


def crm_dlq(amqp_uri, *args):
    """The ``crm-dlq`` command, as an operator runs it: ``(exit code, stdout, stderr)``."""
    done = subprocess.run([sys.executable, "-m", "crm_kit.dlq", *args],
                          env={**os.environ, "CRM_AMQP_URI": amqp_uri},
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


class WebhookSink:
    """An SMS/e-mail provider's relay stand-in: records every message POSTed to it."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.received = []
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink._lock:
                    sink.received.append(body)
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def message_ids(self):
        with self._lock:
            return [body["message_id"] for body in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
