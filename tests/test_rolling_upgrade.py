"""A rolling upgrade, for real (docs/upgrades.md, "Rolling out"): the customer and the sales
service run as two instances each on their PostgreSQL databases, analytics (one instance)
consumes what both publish, the gateway serves staff. While tenants' stories stream through the
gateway (customer → unit → lease → deposit and rent paid: RPC gateway → customer/sales and
sales → customer, events sales → customer and both → analytics), each instance in turn is
stopped with SIGTERM (as Kubernetes stops a pod) and started again as the next version
(``CRM_VERSION`` 1.0.0 → 1.1.0): customer 0, customer 1, then sales 0, sales 1.

What it holds the product to:
- not one request of the stream is answered 502/503/504 or left unanswered, so not one business
  operation needed a retry, let alone failed: another replica of the service is up the whole
  time (the client would retry an outage, but here there must be none to retry). The RPC
  timeout is the deployed 5 s: a call lost with a stopping instance would be a 504. A failure
  lists, for each write that failed, how long after the request its record was committed (within
  the wait: the reply was lost; later: a late run or the client's retry), and which instances
  served RPCs slower than 2.5 s (a machine too busy rather than a lost call);
- every instance stopped exits 0 (graceful) and the new one reports 1.1.0 at ``/healthz`` and in
  ``crm_build_info``; analytics, not rolled, still reports 1.0.0;
- every event of the run is applied exactly once by every consumer (the ledger of
  ``faults_support``), nothing is dead-lettered or half done, and each story ends where its
  events take it: the customer ``first_time`` (one stage change, by its lease's event), one lease
  counted, the points of its two payments; analytics' copy of the customer at ``first_time``.
- an event published twice (an outbox relay stopped between the broker's confirm and its stamp)
  is allowed: it is counted and printed, and the ledger shows it had no second effect.
"""
import json
import signal
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest

from crm_kit.testing import EventTap, http_get, wait_until
from faults_support import (ADMIN, RETRYABLE, Client, Ledger, Operations, Stream,
                            absorbed_duplicates, assert_exactly_once, lease_story, points_for,
                            report)

pytestmark = pytest.mark.faults

OLD, NEW = "1.0.0", "1.1.0"
ROLLED = ("customer", "sales")  # in this order, instance 0 then instance 1 of each


class RecordingClient(Client):
    """The staff client of the fault tests, noting every attempt that was not an answer (a
    502/503/504 or no response): when, what, and what the gateway said."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outages = []
        self._outage_lock = threading.Lock()

    def request(self, method, path, **kwargs):
        sent, moment = time.monotonic(), datetime.now(timezone.utc)
        response = super().request(method, path, **kwargs)
        if response is None or response.status_code in RETRYABLE:
            with self._outage_lock:
                self.outages.append({
                    "sent": moment, "answered_after_s": round(time.monotonic() - sent, 2),
                    "call": f"{method} {path}",
                    "status": response.status_code if response is not None else "no answer",
                    "answer": response.text[:200] if response is not None else "",
                    "json": kwargs.get("json"), "headers": kwargs.get("headers")})
        return response


def wall_clock(moment=None):
    """The time of day as the services' logs write it, UTC (to find a moment in them)."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%H:%M:%S,") + f"{moment.microsecond // 1000:03d}"


def committed_after(stack, outage):
    """Seconds from an outage's request to the commit of the record it asked for (None if it
    is not a write this can look up): tells a late answer from a lost request."""
    body, headers = outage["json"] or {}, outage["headers"] or {}
    lookups = {"POST /leases": ("SELECT min(created_at) FROM leases WHERE unit_id = :v",
                                body.get("unit_id")),
               "POST /units": ("SELECT min(created_at) FROM units WHERE code = :v",
                               body.get("code")),
               "POST /payments": ("SELECT min(created_at) FROM payments WHERE "
                                  "idempotency_key = :v", headers.get("Idempotency-Key"))}
    if outage["call"] not in lookups:
        return None
    sql, value = lookups[outage["call"]]
    committed = stack.scalar("sales", sql, v=value)
    return None if committed is None else round((committed - outage["sent"]).total_seconds(), 2)


def slow_rpcs(process, slower_than="2.5"):
    """``{entrypoint: RPCs that took longer than slower_than seconds}`` from a service's
    ``crm_entrypoint_duration_seconds`` (a bucket bound of ``metrics.LATENCY_BUCKETS``)."""
    status, body = http_get(process.base_url + "/metrics")
    if status != 200:
        return {}
    count, within = Counter(), Counter()
    for line in body.splitlines():
        if not line.startswith("crm_entrypoint_duration_seconds_") or 'kind="rpc"' not in line:
            continue
        series, _, value = line.rpartition(" ")
        entrypoint = series.split('entrypoint="', 1)[1].split('"', 1)[0]
        if series.startswith("crm_entrypoint_duration_seconds_count"):
            count[entrypoint] += float(value)
        elif f'le="{slower_than}"' in series:
            within[entrypoint] += float(value)
    return {e: int(count[e] - within[e]) for e in count if count[e] > within[e]}


def healthz_version(process):
    status, body = http_get(process.base_url + "/healthz")
    assert status == 200, body
    return json.loads(body)["version"]


def build_info(process, service):
    """``{version: value}`` of the ``crm_build_info`` samples of ``service`` on its /metrics."""
    status, body = http_get(process.base_url + "/metrics")
    assert status == 200, body
    found = {}
    for line in body.splitlines():
        if line.startswith("crm_build_info{"):
            series, _, value = line.rpartition(" ")
            labels = dict(part.split("=", 1) for part in series[len("crm_build_info{"):-1]
                          .split(","))
            if labels["service"].strip('"') == service:
                found[labels["version"].strip('"')] = float(value)
    return found


def error_lines(process):
    """The ERROR/CRITICAL records of a process's JSON log (a service or the gateway): time,
    message and the last line of the exception, for the report."""
    lines = process.log_path.read_text(errors="replace").splitlines() \
        if process.log_path.exists() else []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if str(record.get("level", "")).upper() in ("ERROR", "CRITICAL"):
            last = (record.get("exc_info") or "").strip().splitlines()[-1:]
            found.append(" ".join([record.get("time", ""), record.get("message", "")[:200],
                                   *last]))
    return found


def test_rolling_upgrade_of_two_services_while_the_others_run(postgres_database, broker,
                                                              stack_factory):
    """Customer 0, customer 1, sales 0, sales 1: each SIGTERMed and started again as 1.1.0
    while tenants' stories stream through the gateway (the module's docstring says what must
    hold). (``postgres_database`` first: its databases are dropped after the stack stopped.)"""
    names = ("customer", "sales", "analytics")
    stack = stack_factory(databases={name: postgres_database(name) for name in names},
                          env={name: {"CRM_VERSION": OLD} for name in names},
                          rpc_timeout=5.0)  # as deployed (deploy/k8s/config.yaml)
    stack.start(ROLLED, instances=2, gateway=False)
    stack.start(("analytics",))  # and the gateway, ready once all three answer
    for name in names:
        for process in stack.services[name]:
            assert healthz_version(process) == OLD
            assert build_info(process, name) == {OLD: 1.0}
    taps = {name: EventTap(stack.amqp_uri, name) for name in ROLLED}
    client = RecordingClient(stack.gateway.url, *ADMIN)
    ops = Operations(client)

    rolled_out = threading.Event()

    def story(ops, n):
        if not rolled_out.is_set():  # the stream runs for the whole rollout, then stops
            lease_story(ops, n)

    steps = []
    slow = {}  # process -> {entrypoint: RPCs slower than 2.5 s}, for the report
    retired = []  # the processes of the old version, stopped
    started = time.monotonic()
    stream = Stream(ops, stories=20_000, threads=6, story=story)
    try:
        wait_until(lambda: ops.done["payments"] >= 20, timeout=120, interval=0.05,
                   message="the stream under way")
        for name in ROLLED:
            for instance in (0, 1):
                for tap in taps.values():
                    tap.drain()  # (keeps the taps' connections alive)
                old = stack.service(name, instance)
                done_before = ops.business_operations
                slow[f"{old.name}-{old.port}"] = slow_rpcs(old)  # (its last scrape)
                term, term_clock = time.monotonic(), wall_clock()
                old.process.send_signal(signal.SIGTERM)  # as Kubernetes stops a pod
                try:
                    code = old.process.wait(60)  # (terminationGracePeriodSeconds: 45)
                except Exception:
                    raise AssertionError(f"{name} {instance} did not stop in 60 s:\n{old.log()}")
                exited = time.monotonic()
                assert code == 0, f"{name} {instance} exited {code}:\n{old.log()}"
                retired.append(old)
                # the next version: the same database, a new CRM_VERSION
                stack.env[name] = {**stack.env[name], "CRM_VERSION": NEW}
                [new] = stack.restart(name, instance=instance)
                ready = time.monotonic()
                assert healthz_version(new) == NEW
                assert build_info(new, name) == {NEW: 1.0}
                other = stack.service(name, 1 - instance)
                # the mix during the rollout: the other one as it was at this point
                assert healthz_version(other) == (NEW if instance == 1 else OLD)
                steps.append({"step": f"{name}[{instance}]", "sigterm": term_clock,
                              "old": f"{old.name}-{old.port}", "new": f"{new.name}-{new.port}",
                              "stop_s": round(exited - term, 1),
                              "start_s": round(ready - exited, 1),
                              "ops_meanwhile": ops.business_operations - done_before})
        # and the stream goes on a while on the new versions only
        after = ops.done["payments"]
        wait_until(lambda: ops.done["payments"] >= after + 20, timeout=120, interval=0.05,
                   message="the stream on the new versions")
        rolled_out.set()
        stream.wait(timeout=300)
    except AssertionError as failure:  # a failed story: what the gateway logged with it
        raise AssertionError(f"{failure}\nthe gateway's errors: "
                             f"{json.dumps(error_lines(stack.gateway), indent=1)}") from None
    finally:
        rolled_out.set()
        stream.abort()
    stream_seconds = time.monotonic() - started
    for name in ROLLED:
        for process in stack.services[name]:
            slow[f"{process.name}-{process.port}"] = slow_rpcs(process)

    # versions: both instances of each rolled service are 1.1.0; analytics was left alone
    for name in ROLLED:
        for instance, process in enumerate(stack.services[name]):
            assert process.process.poll() is None, f"{name} {instance}:\n{process.log()}"
            assert healthz_version(process) == NEW, (name, instance)
            assert build_info(process, name) == {NEW: 1.0}, (name, instance)
    assert healthz_version(stack.service("analytics")) == OLD
    assert build_info(stack.service("analytics"), "analytics") == {OLD: 1.0}

    # events: every one applied exactly once, nothing dead-lettered or half done
    ledger = Ledger(stack)
    wait_until(ledger.caught_up, timeout=120, interval=0.5, message="every consumer caught up")
    figures = ledger.figures(ops)
    published_twice = {}
    for name, tap in taps.items():  # what each service's relays sent, by event id
        wait_until(lambda: len({e["event_id"] for e in tap.drain()}) >= stack.scalar(
            name, "SELECT count(*) FROM outbox_events"), timeout=30,
            message=f"{name}'s events at the tap")
        published_twice[name] = sum(1 for n in Counter(
            e["event_id"] for e in tap.events).values() if n > 1)
        tap.close()
    errors = {f"{p.name}-{p.port}": error_lines(p) for p in retired}
    report("rolling-upgrade", ops.business_operations, figures,
           stream_s=f"{stream_seconds:.1f}", steps=steps,
           failed_requests=len(client.outages), retried=dict(client.retries),
           published_twice=published_twice, redelivered_absorbed=absorbed_duplicates(stack),
           rpcs_slower_than_2_5s={p: n for p, n in slow.items() if n})
    if any(errors.values()):
        print("ERROR lines of the stopped instances:", json.dumps(errors, indent=1))

    # the stream: traffic while each instance was away, not one request failed
    assert all(step["ops_meanwhile"] > 0 for step in steps), steps
    if client.outages:  # what became of each: committed in time, late, or never
        outages = [{"sent": wall_clock(o["sent"]), "call": o["call"], "status": o["status"],
                    "answered_after_s": o["answered_after_s"],
                    "committed_after_s": committed_after(stack, o), "answer": o["answer"]}
                   for o in client.outages]
        raise AssertionError("requests failed during the rollout:\n" + json.dumps(
            {"outages": outages[:20], "count": len(outages), "steps": steps,
             "rpcs_slower_than_2.5s": slow}, indent=1, ensure_ascii=False))
    assert figures["committed_by_kind"] == {k: ops.done[k] for k in figures["committed_by_kind"]}
    assert_exactly_once(figures)

    # each story where its events take it: in the customer service and in analytics' copy
    points = Counter()
    for customer_id, amount in ops.expected["payments"].values():
        points[customer_id] += points_for(amount)
    leases = Counter(ops.expected["leases"].values())
    held = {row[0]: row[1:] for row in stack.rows(
        "customer", "SELECT id, stage, leases_signed, points FROM customers")}
    stages = defaultdict(list)
    for customer_id, to_stage, trigger in stack.rows(
            "customer", "SELECT customer_id, to_stage, trigger FROM stage_changes ORDER BY id"):
        stages[customer_id].append((to_stage, trigger))
    copies = dict(stack.rows("analytics", "SELECT id, stage FROM customers"))
    wrong = {}
    for customer_id in ops.expected["customers"]:
        want = ("first_time", leases[customer_id], points[customer_id])
        if held.get(customer_id) != want or leases[customer_id] != 1 \
                or [s for s, _t in stages[customer_id]] != ["potential", "first_time"] \
                or stages[customer_id][1][1] != "event:lease.signed" \
                or copies.get(customer_id) != "first_time":
            wrong[customer_id] = {"want": want, "held": held.get(customer_id),
                                  "stages": stages[customer_id],
                                  "analytics": copies.get(customer_id)}
    assert wrong == {}, json.dumps(dict(list(wrong.items())[:5]), indent=1)
    assert len(ops.expected["customers"]) == ops.done["customers"] > 0
