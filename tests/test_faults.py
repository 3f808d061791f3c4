"""Faults, for real: the CRM's own processes (started as ``make up`` starts them), a RabbitMQ node
of these tests' own (``crm_kit.testing.PrivateBroker``: restarting it disturbs nobody), SQLite
and PostgreSQL databases, the gateway over HTTP. Each test counts what the producers committed
and what every consumer applied (``faults_support.Ledger``), prints the figures
(``FAULT <scenario>: ops=…, committed=…, lost=…, duplicated=…``) and asserts 0 lost and
0 applied twice.
"""
import json
import signal
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

from crm_kit.testing import EventTap, publish_event, wait_until
from faults_support import (DELIVERIES, Ledger, Operations, Stream, WebhookSink,
                            absorbed_duplicates, assert_exactly_once, copy_sqlite, crm_dlq,
                            lease_story, report, vhost_of)

pytestmark = pytest.mark.faults


def test_rabbitmq_restart_in_the_middle_of_a_stream(broker, stack_factory):
    """The broker is stopped and started again (a real restart of the node) while tenants
    sign leases, pay and open tickets through the gateway: every service and the gateway ride it
    out (the same processes, reconnected), every committed operation's events reach every
    consumer exactly once, and every operation the client retried was done once."""
    stack = stack_factory().start()
    ops = Operations(stack.client())
    started = time.monotonic()
    stream = Stream(ops, stories=200, threads=8)
    wait_until(lambda: stream.progress() >= 0.3, timeout=120, interval=0.05,
               message="a third of the stream")
    restart_started = time.monotonic()
    broker.restart()
    restart_seconds = time.monotonic() - restart_started
    stream.wait(timeout=300)
    stream_seconds = time.monotonic() - started
    # the same processes throughout: nothing had to be restarted after the broker
    died = [name for name, [service] in stack.services.items()
            if service.process.poll() is not None]
    assert not died and stack.gateway.process.poll() is None, f"died with the broker: {died}"

    ledger = Ledger(stack)
    wait_until(ledger.caught_up, timeout=120, interval=0.5, message="every consumer caught up")
    figures = ledger.figures(ops)
    report("rabbitmq-restart", ops.business_operations, figures,
           restart_s=f"{restart_seconds:.1f}", stream_s=f"{stream_seconds:.1f}",
           retried=sum(ops.client.retries.values()),
           redelivered_absorbed=absorbed_duplicates(stack))
    assert ops.business_operations >= 1000
    assert figures["committed_by_kind"] == {k: ops.done[k] for k in figures["committed_by_kind"]}
    assert_exactly_once(figures)


def test_consumers_killed_hard_while_handling_events(stack_factory):
    """SIGKILL, mid-stream: analytics and the customer service while they have events to
    handle, later marketing and sales (a producer whose relay has rows to publish) too; each is
    started again on its own database. The stream goes on (the client retries what the outage made
    fail) and at the end every event is applied exactly once everywhere."""
    stack = stack_factory().start()
    ledger = Ledger(stack)
    ops = Operations(stack.client())
    started = time.monotonic()
    stream = Stream(ops, stories=200, threads=8)
    backlog_at_kill = {}
    for at, names in ((0.25, ("analytics", "customer")), (0.6, ("marketing", "sales"))):
        wait_until(lambda: stream.progress() >= at, timeout=120, interval=0.05,
                   message=f"{at:.0%} of the stream")
        # while it has events to handle (queued, or taken by its workers)
        wait_until(lambda: ledger.backlog(names[0]) > 0, timeout=30, interval=0.01,
                   message=f"{names[0]} busy with events")
        for name in names:
            backlog_at_kill[name] = ledger.backlog(name) if name != "sales" else None
            stack.service(name).kill()
        stack.restart(*names)
    stream.wait(timeout=300)
    stream_seconds = time.monotonic() - started

    wait_until(ledger.caught_up, timeout=120, interval=0.5, message="every consumer caught up")
    figures = ledger.figures(ops)
    report("consumer-sigkill", ops.business_operations, figures,
           backlog_at_kill=backlog_at_kill, redelivered_absorbed=absorbed_duplicates(stack),
           stream_s=f"{stream_seconds:.1f}", retried=sum(ops.client.retries.values()))
    assert ops.business_operations >= 1000
    assert figures["committed_by_kind"] == {k: ops.done[k] for k in figures["committed_by_kind"]}
    assert_exactly_once(figures)


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_service_down_is_503_in_time_and_works_again_once_back(stack_factory):
    """The real gateway and the real sales service: sales killed while called is a 503 within
    the RPC timeout for every call, in flight or new, never a hang; started again (nothing else
    restarted) the same gateway serves it at once, with its data."""
    timeout = 2.0
    stack = stack_factory(rpc_timeout=timeout).start(("customer", "sales"))
    ops = Operations(stack.client())
    customer = ops.create_customer(1)
    lease = ops.sign_lease(customer, ops.create_unit(1))
    client = ops.client
    calls = [lambda: client.request("GET", "/units", params={"per_page": 5}),
             lambda: client.request("GET", f"/leases/{lease['id']}"),
             lambda: client.request("POST", "/units", json={
                 "code": "DOWN-1", "building": "B", "district": "高新区", "layout": "1b1b",
                 "area_sqm": "30.00", "floor": 2, "monthly_rent": "2000.00"}),
             lambda: client.request("GET", "/bills", params={"lease_id": lease["id"]})]
    assert all(call().status_code in (200, 201) for call in calls[:2])

    # calls in flight when it dies, and calls made while it is down: each answered in time
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        in_flight = [pool.submit(timed, calls[n % 4]) for n in range(8)]
        stack.service("sales").kill()
        answered = [future.result(timeout=3 * timeout + 5) for future in in_flight]
    down = [timed(call) for call in calls for _ in range(3)]
    for response, seconds in answered + down:
        assert response is not None, "no answer at all"
        assert seconds < timeout + 1.0, seconds  # never a hang
        assert response.status_code in (200, 201, 503), response.text
    slowest = max(seconds for _response, seconds in answered + down)
    for response, _seconds in down:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.json()["error"]["details"] == {"service": "sales"}
        assert response.headers["Retry-After"]
    # once found out, a stopped service is answered at once, not after a timeout each
    assert sorted(seconds for _response, seconds in down)[len(down) // 2] < 0.5

    # back up: the same gateway, nothing else restarted
    stack.restart("sales")
    back = time.monotonic()
    response = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
        calls[1]()), timeout=timeout + 5, interval=0.05, message="sales served again")
    recovered = time.monotonic() - back
    assert response.json()["id"] == lease["id"]  # its data, as it was
    again = ops.sign_lease(customer, ops.create_unit(2))  # and sales → customer works too
    assert again["customer_id"] == customer["id"]
    print(f"FAULT service-down: {len(answered + down)} calls answered within {slowest:.2f}s "
          f"(RPC timeout {timeout:g}s; in flight: "
          f"{sorted(r.status_code for r, _s in answered)}), 503 at once once known down; served "
          f"again {recovered:.2f}s after its restart, nothing else restarted")


def test_slow_service_is_504_in_time_and_its_late_call_is_not_run(broker, fault_uri,
                                                                  stack_factory):
    """A customer service busy with one long import (one worker): a call behind it is a 504
    within the RPC timeout, and it is dropped, never run late; the import finishes and the
    service answers again. The real gateway throughout."""
    timeout = 1.5
    stack = stack_factory(rpc_timeout=timeout,
                          env={"customer": {"CRM_MAX_WORKERS": "1"}}).start(("customer",))
    client = stack.client()
    customer = Operations(client).create_customer(1)
    rows = "\n".join(f"慢服务{n},139{n:08d}" for n in range(2000))

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        imported = pool.submit(timed, lambda: client.request(
            "POST", "/customers/import", data=f"name,mobile\n{rows}\n".encode(),
            headers={"Content-Type": "text/csv"}))
        wait_until(lambda: broker.queues(vhost_of(fault_uri)).get("rpc-customer", (0, 0))[1],
                   timeout=30, interval=0.05, message="the import in the only worker's hands")
        late = {"channel": "phone", "summary": "a call that came too late"}
        response, seconds = timed(lambda: client.request(
            "POST", f"/customers/{customer['id']}/interactions", json=late))
        assert response.status_code == 504, response.text
        assert response.json()["error"]["code"] == "service_timeout"
        assert response.json()["error"]["details"] == {"service": "customer"}
        assert timeout <= seconds < timeout + 1.0, seconds
        assert not imported.done(), "the import was not slow enough to test anything"
        done, import_seconds = imported.result(timeout=120)
    assert done.status_code == 200 and done.json()["created"] == 2000, done.text
    # the service answers again; the call that timed out was dropped, never run late (the one
    # worker took it, if at all, before this one)
    logged = client.request("GET", f"/customers/{customer['id']}/interactions")
    assert logged.status_code == 200
    assert late["summary"] not in [i["summary"] for i in logged.json()["items"]]
    print(f"FAULT service-slow: 504 after {seconds:.2f}s (RPC timeout {timeout:g}s) behind a "
          f"{import_seconds:.1f}s import; the late call never ran")


def test_events_delivered_twice_and_out_of_order_end_right(broker, stack_factory, tmp_path):
    """A tenant's real history (created, moved to intent, moved house, lease signed, two
    payments, renewal) is captured as the services published it. Then every event is delivered
    twice, in reverse order, to fresh consumers (marketing, analytics) and to a customer service
    restored from a backup taken before the lease: each ends exactly where the consumers that
    saw the events once, in order, ended — the newest stage, the newest record, one lease
    counted, the points once."""
    stack = stack_factory().start(("customer", "sales", "marketing", "analytics"))
    taps = {source: EventTap(stack.amqp_uri, source) for source in ("customer", "sales")}
    ops = Operations(stack.client())
    client = ops.client
    customer = ops.create_customer(1, birthday="1990-05-01")
    client.call("POST", f"/customers/{customer['id']}/stage",
                json={"stage": "intent", "reason": "booked a viewing"})
    client.call("PATCH", f"/customers/{customer['id']}", json={"district": "武侯区"})
    backup = copy_sqlite(stack.database_url("customer"), tmp_path / "customer-backup.db")
    lease = ops.sign_lease(customer, ops.create_unit(1))
    for bill in [b for b in lease["bills"] if b["kind"] in ("deposit", "rent")][:2]:
        ops.pay(bill)
    end = date.fromisoformat(lease["end_date"])
    client.call("POST", f"/leases/{lease['id']}/renew", expect=(201,), json={
        "end_date": (end + timedelta(days=365)).isoformat(), "monthly_rent": "3200.00"})
    ledger = Ledger(stack)
    wait_until(ledger.caught_up, timeout=60, interval=0.2, message="the history applied once")
    published = {source: stack.scalar(source, "SELECT count(*) FROM outbox_events")
                 for source in taps}
    history = {source: wait_until(lambda: len(tap.drain()) == published[source] and tap.events,
                                  timeout=20, message=f"{source}'s events captured")
               for source, tap in taps.items()}
    for tap in taps.values():
        tap.close()

    # fresh marketing and analytics; the customer service restored from the backup
    copies = stack_factory(amqp_uri=broker.add_vhost(f"faults-copy-{uuid.uuid4().hex[:6]}"))
    copies.start(("marketing", "analytics"), gateway=False)
    restored = stack_factory(amqp_uri=broker.add_vhost(f"faults-restored-{uuid.uuid4().hex[:6]}"),
                             databases={"customer": backup})
    restored.start(("customer",), gateway=False)
    fed = ((copies, ("customer", "sales")), (restored, ("sales",)))
    for target, sources in fed:
        events = sorted((e for source in sources for e in history[source]),
                        key=lambda e: e["occurred_at"], reverse=True)
        for envelope in events:
            for _ in range(2):  # twice, newest first
                publish_event(target.amqp_uri, envelope["source"], envelope["type"], None,
                              envelope=envelope)

    # each consumer applied each event once: the inbox saw the second copy as a duplicate
    for target, sources in fed:
        handlers = [(c, h, p, t) for c, h, p, t in DELIVERIES
                    if c in target.services and p in sources]
        twice = Ledger(target, deliveries=[])  # reads its inboxes
        expected = {(c, h): {e["event_id"] for e in history[p] if e["type"] == t}
                    for c, h, p, t in handlers}
        wait_until(lambda: all(twice.applied(c, h) == ids for (c, h), ids in expected.items()),
                   timeout=60, interval=0.2, message="every event applied")
    replayed = {e["event_id"] for events in history.values() for e in events}

    def inbox_rows():  # (handler, event) pairs applied from the replayed history, all handlers
        return sum(1 for target, _sources in fed for name in target.services
                   for (event_id,) in target.rows(name, "SELECT event_id FROM processed_events")
                   if event_id in replayed)

    handled = inbox_rows()
    absorbed = wait_until(lambda: (lambda n: n if n >= handled else None)(
        absorbed_duplicates(copies) + absorbed_duplicates(restored)),
        timeout=30, message="every second copy seen as a duplicate")
    assert (absorbed, inbox_rows()) == (handled, handled)

    # and each ends where the in-order consumers ended
    def state(target):
        rows = {}
        if "marketing" in target.services:
            rows["marketing.customer"] = target.rows(
                "marketing", "SELECT stage, district, member_tier, birthday, name FROM customers")
            rows["marketing.leases"] = sorted(target.rows(
                "marketing", "SELECT id, status, renewed_from_id, end_date FROM leases"))
        if "analytics" in target.services:
            rows["analytics.customer"] = target.rows(
                "analytics", "SELECT stage, district, birthday FROM customers")
            rows["analytics.leases"] = sorted(target.rows(
                "analytics", "SELECT id, status, renewed_from_id, monthly_rent FROM leases"))
            rows["analytics.payments"] = sorted(target.rows(
                "analytics", "SELECT id, amount FROM payments"))
            rows["analytics.bills"] = sorted(target.rows(
                "analytics", "SELECT id, paid FROM bills"))
            rows["analytics.stage_changes"] = sorted(target.rows(
                "analytics", "SELECT event_id, to_stage FROM stage_changes"))
        if "customer" in target.services:
            rows["customer"] = target.rows(
                "customer", "SELECT stage, leases_signed, points, member_tier FROM customers "
                "WHERE id = :id", id=customer["id"])
            rows["customer.point_entries"] = target.scalar(
                "customer", "SELECT count(*) FROM point_entries WHERE customer_id = :id",
                id=customer["id"])
        return rows

    original = state(stack)
    assert original["customer"][0][:2] == ("repeat", 1)
    assert original["marketing.customer"] == [("repeat", "武侯区", "standard", "1990-05-01",
                                               customer["name"])]
    for target in (copies, restored):
        for key, rows in state(target).items():
            assert rows == original[key], key
    done = ops.business_operations + 3  # and the stage change, the move, the renewal
    figures = {"committed": done, "events": sum(published.values()),
               "deliveries": 2 * handled, "lost": 0, "duplicated": 0}
    report("duplicate-out-of-order", done, figures,
           second_copies_absorbed=absorbed)


def test_poison_event_is_dead_lettered_visible_and_replayable_across_services(
        stack_factory):
    """A lease.signed the customer service cannot apply: the real sales service's event for a
    customer the customer service does not have (its database restored from a backup older than
    that customer). It is retried, dead-lettered, shown by ``crm-dlq list`` and on /metrics,
    while the tenants behind it go on being applied; after the fix (the customer restored) one
    ``crm-dlq replay`` applies it, once."""
    stack = stack_factory().start(("customer", "sales"))
    customer_service = stack.service("customer")
    tap = EventTap(stack.amqp_uri, "sales", ("lease.signed",))
    ops = Operations(stack.client())
    tenant = ops.create_customer(0)
    ops.sign_lease(tenant, ops.create_unit(0))
    [real] = tap.wait_for(lambda e: e["data"]["customer_id"] == tenant["id"])
    tap.close()
    lost_id = str(uuid.uuid4())
    poison = {**real, "event_id": str(uuid.uuid4()),
              "data": {**real["data"], "customer_id": lost_id, "lease_id": str(uuid.uuid4())}}
    publish_event(stack.amqp_uri, "sales", "lease.signed", None, envelope=poison)
    stream = Stream(ops, stories=25, threads=4, first=1, story=lease_story)  # flowing on
    wait_until(lambda: customer_service.metric("crm_dead_letters") == 1, timeout=30,
               message="the poison event dead-lettered")
    stream.wait(timeout=120)
    ledger = Ledger(stack)
    wait_until(ledger.caught_up, timeout=60, interval=0.2, message="the events behind it")
    figures = ledger.figures(ops)
    assert (figures["lost"], figures["duplicated"], figures["half_done"]) == (0, 0, {}), \
        figures["details"]
    assert figures["dead_letters"] == {"customer": 1, "sales": 0}

    code, out, err = crm_dlq(stack.amqp_uri, "list", "customer")
    assert code == 0, err
    [letter] = json.loads(out)
    assert (letter["event_id"], letter["handler"], letter["event_type"], letter["attempts"]) == (
        poison["event_id"], "customer.on_lease_signed", "lease.signed", 3)
    assert lost_id in letter["error"][0] and "NotFound" in letter["error"][0]
    code, out, _err = crm_dlq(stack.amqp_uri, "replay", "customer")  # before the fix
    assert (code, json.loads(out)) == (1, {"replayed": [], "failed": [letter["id"]]})

    # the fix: the customer comes back from the newer backup
    [row] = stack.rows("customer", "SELECT * FROM customers WHERE id = :id", id=tenant["id"])
    restored = {**row._mapping, "id": lost_id, "name": "从备份恢复", "mobile": "13999990000",
                "leases_signed": 0, "points": 0, "stage": "intent"}
    with stack.engine("customer").begin() as connection:
        connection.execute(text(f"INSERT INTO customers ({', '.join(restored)}) VALUES "
                                f"({', '.join(':' + column for column in restored)})"), restored)
    code, out, _err = crm_dlq(stack.amqp_uri, "replay", "customer")
    assert (code, json.loads(out)) == (0, {"replayed": [letter["id"]], "failed": []})
    code, out, _err = crm_dlq(stack.amqp_uri, "replay", "customer")  # nothing twice
    assert (code, json.loads(out)) == (0, {"replayed": [], "failed": []})
    assert stack.rows("customer", "SELECT stage, leases_signed FROM customers WHERE id = :id",
                      id=lost_id) == [("first_time", 1)]
    assert customer_service.metric("crm_dead_letters") == 0
    assert json.loads(crm_dlq(stack.amqp_uri, "list", "customer")[1]) == []
    report("poison-event", ops.business_operations, figures, dead_lettered=1, replayed=1,
           applied_behind_it=figures["deliveries"])


def test_graceful_shutdown_lets_in_flight_work_finish(broker, stack_factory):
    """SIGTERM, as an orchestrator stops a service: the customer service in the middle of a
    CSV import finishes it and answers it, then exits 0 — every imported customer is there with
    its event, nothing half-done; analytics stopped while it works through those events hands
    the rest back to its queues; sales stopped in the middle of a stream of leases and payments
    finishes what it had. Started again, every event is applied exactly once."""
    stack = stack_factory().start(("customer", "sales", "marketing", "analytics"))
    ledger = Ledger(stack)
    client = stack.client()
    ops = Operations(client)
    rows = 2000
    csv_text = "name,mobile,district\n" + "".join(
        f"导入{n},137{n:08d},成华区\n" for n in range(rows))

    from concurrent.futures import ThreadPoolExecutor

    customer = stack.service("customer")
    with ThreadPoolExecutor(1) as pool:
        imported = pool.submit(client.request, "POST", "/customers/import",
                               data=csv_text.encode(), headers={"Content-Type": "text/csv"})
        wait_until(lambda: broker.queues(vhost_of(stack.amqp_uri)).get("rpc-customer",
                                                                       (0, 0))[1],
                   timeout=30, interval=0.05, message="the import in a worker's hands")
        term = time.monotonic()
        customer.process.send_signal(signal.SIGTERM)
        done = imported.result(timeout=120)
        assert customer.process.wait(60) == 0  # a graceful exit, not a kill
    customer_stop = time.monotonic() - term
    assert done.status_code == 200, done.text  # the in-flight import finished and answered
    assert (done.json()["created"], done.json()["errors"]) == (rows, [])
    assert stack.scalar("customer", "SELECT count(*) FROM customers") == rows
    assert stack.scalar("customer", "SELECT count(*) FROM outbox_events WHERE event_type = "
                        "'customer.created'") == rows  # each with its event: nothing half-done

    stack.restart("customer")  # its relay publishes what it had not yet

    analytics = stack.service("analytics")
    wait_until(lambda: ledger.applied("analytics", "analytics.on_customer_created")
               and ledger.backlog("analytics"), timeout=30, interval=0.01,
               message="analytics working through the imported customers")
    analytics_backlog = ledger.backlog("analytics")
    term = time.monotonic()
    analytics.process.send_signal(signal.SIGTERM)
    assert analytics.process.wait(60) == 0
    analytics_stop = time.monotonic() - term
    stack.restart("analytics")

    started = time.monotonic()
    stream = Stream(ops, stories=60, threads=8, story=lease_story)
    wait_until(lambda: stream.progress() >= 0.4, timeout=120, interval=0.05,
               message="the stream under way")
    sales = stack.service("sales")
    term = time.monotonic()
    sales.process.send_signal(signal.SIGTERM)
    assert sales.process.wait(60) == 0
    sales_stop = time.monotonic() - term
    stack.restart("sales")
    stream.wait(timeout=300)
    stream_seconds = time.monotonic() - started

    wait_until(ledger.caught_up, timeout=120, interval=0.5, message="every consumer caught up")
    figures = ledger.figures(ops)
    report("graceful-sigterm", rows + ops.business_operations, figures,
           imported_in_flight=rows, analytics_backlog_at_stop=analytics_backlog,
           stop_s={"customer": round(customer_stop, 1), "analytics": round(analytics_stop, 1),
                   "sales": round(sales_stop, 1)},
           stream_s=f"{stream_seconds:.1f}", retried=sum(client.retries.values()))
    assert figures["committed_by_kind"] == {
        k: ops.done[k] + (rows if k == "customers" else 0) for k in figures["committed_by_kind"]}
    assert_exactly_once(figures)  # and nothing half-done


def test_two_instances_of_each_service_double_nothing(stack_factory, postgres_database):
    """Two processes of customer, sales, service desk and marketing, each pair on one PostgreSQL
    database (SQLite is one process per file, by design), their timers every second: the
    outbox relays publish each event once, the consumers apply each once (every sales event is
    delivered a second time on top, so both instances race for it), the overdue scans announce
    each bill and charge each late fee once, each task is reminded once, each SLA breach is
    escalated once, each birthday greeting is recorded and sent to the SMS provider once.
    (Two marketing instances keeping the frequency cap: services/marketing/tests/test_service.py
    ::test_two_instances_keep_the_frequency_cap.)"""
    from zoneinfo import ZoneInfo

    sink = WebhookSink()
    names = ("customer", "sales", "service_desk", "marketing")
    stack = stack_factory(
        databases={name: postgres_database(name) for name in names},
        env={"sales": {"CRM_SALES_SCAN_SECONDS": "1", "CRM_TASK_REMINDER_SECONDS": "1"},
             "service_desk": {"CRM_SLA_SCAN_SECONDS": "1"},
             "marketing": {"CRM_MARKETING_CARE_SECONDS": "1", "CRM_MARKETING_WEBHOOK_URL": sink.url,
                           "CRM_MARKETING_DISPATCH_SECONDS": "0.5"}})
    stack.start(names, instances=2)
    taps = {name: EventTap(stack.amqp_uri, name) for name in names}
    ops = Operations(stack.client())
    ops.client.call("POST", "/care-rules", expect=(201,), json={
        "kind": "birthday", "channel": "sms", "template": "{name}，生日快乐！"})
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    birthday = date(1992, today.month, today.day).isoformat()
    started = date.today() - timedelta(days=100)  # three monthly rents overdue past the grace

    def story(ops, n):
        customer = ops.create_customer(n, birthday=birthday)
        lease = ops.sign_lease(customer, ops.create_unit(n), start=started, cycle="monthly")
        due = sorted((b for b in lease["bills"] if b["kind"] in ("deposit", "rent")),
                     key=lambda b: (b["due_date"], b["kind"] != "deposit"))
        for bill in due[:2]:
            ops.pay(bill)
        ops.open_ticket(customer, lease, n)
        ops.create_task(customer, n=n)

    stories = 100
    stream = Stream(ops, stories=stories, threads=8, story=story)
    stream.wait(timeout=300)
    # the clock moves on for the service desk: every ticket misses both SLA targets
    with stack.engine("service_desk").begin() as connection:
        connection.execute(text("UPDATE tickets SET first_response_due = now() - interval "
                                "'2 hours', resolution_due = now() - interval '1 hour'"))

    def outbox(name, event_type):
        return [json.loads(envelope)["data"] for (envelope,) in stack.rows(
            name, "SELECT envelope FROM outbox_events WHERE event_type = :t", t=event_type)]

    def unattended():
        """Bills overdue but not announced, rent past the grace days without its late fee."""
        return stack.scalar("sales", "SELECT count(*) FROM bills b WHERE b.status IN "
                            "('unpaid', 'partially_paid') AND b.voided_at IS NULL AND ("
                            "(b.due_date < :today AND b.overdue_notified_at IS NULL) OR "
                            "(b.kind = 'rent' AND b.due_date < :grace AND NOT EXISTS (SELECT 1 "
                            "FROM bills f WHERE f.late_fee_for_bill_id = b.id)))",
                            today=date.today(), grace=date.today() - timedelta(days=5))

    wait_until(lambda: unattended() == 0
               and len(outbox("sales", "task.reminder_due")) >= stories
               and len(outbox("service_desk", "ticket.sla_breached")) >= 2 * stories
               and len(set(sink.message_ids())) >= stories,
               timeout=120, interval=0.5, message="every scan, reminder and greeting done")
    # every sales event once more, back to back, so the two customer instances race for it
    resent = [e for e in taps["sales"].drain() if e["type"] in ("lease.signed",
                                                                "payment.received")]
    for envelope in resent:
        publish_event(stack.amqp_uri, "sales", envelope["type"], None, envelope=envelope)
    ledger = Ledger(stack)
    second_copies = sum(1 for e in resent for _c, _h, p, t in ledger.deliveries
                        if (p, t) == ("sales", e["type"]))  # one per consumer of each
    wait_until(lambda: ledger.caught_up() and absorbed_duplicates(stack) >= second_copies,
               timeout=120, interval=0.5, message="every consumer caught up")
    published_twice = {}
    for name, tap in taps.items():  # the relays: each committed event out once
        wait_until(lambda: len({e["event_id"] for e in tap.drain()}) >= stack.scalar(
            name, "SELECT count(*) FROM outbox_events"), timeout=30,
            message=f"{name}'s events at the tap")
        counts = Counter(e["event_id"] for e in tap.events)
        if name == "sales":
            counts.subtract(e["event_id"] for e in resent)  # the test's own second copies
        published_twice[name] = sum(1 for n in counts.values() if n > 1)
        tap.close()

    def twice(rows):
        return sum(n - 1 for n in Counter(rows).values() if n > 1)

    doubles = {
        "published": sum(published_twice.values()),
        "bill.overdue": twice(d["bill_id"] for d in outbox("sales", "bill.overdue")),
        "late_fee": twice(r[0] for r in stack.rows(
            "sales", "SELECT late_fee_for_bill_id FROM bills WHERE kind = 'late_fee'")),
        "collection_task": twice(r[0] for r in stack.rows(
            "sales", "SELECT bill_id FROM tasks WHERE kind = 'collection'")),
        "reminder": twice(d["task_id"] for d in outbox("sales", "task.reminder_due")),
        "sla_breach": twice((d["ticket_id"], d["kind"])
                            for d in outbox("service_desk", "ticket.sla_breached")),
        "escalation": twice(r for r in stack.rows(
            "service_desk", "SELECT ticket_id, note FROM ticket_changes "
            "WHERE action = 'escalated'")),
        "care_message": twice(r for r in stack.rows(
            "marketing", "SELECT customer_id, occasion FROM messages "
            "WHERE care_rule_id IS NOT NULL")),
        "sms_sent": twice(sink.message_ids()),
        "message.sent": twice(d["message_id"] for d in outbox("marketing", "message.sent")),
    }
    late_fees = [d for d in outbox("sales", "bill.issued") if d["kind"] == "late_fee"]
    done = {"overdue_announced": len(outbox("sales", "bill.overdue")),
            "late_fees": len(late_fees),
            "reminders": len(outbox("sales", "task.reminder_due")),
            "sla_breaches": len(outbox("service_desk", "ticket.sla_breached")),
            "sms_sent": len(sink.message_ids())}
    sink.close()
    figures = ledger.figures(ops)
    figures["duplicated"] += sum(doubles.values())
    report("two-instances", ops.business_operations, figures, **done,
           second_deliveries_absorbed=absorbed_duplicates(stack))
    assert doubles == dict.fromkeys(doubles, 0)
    # (a bill may be announced, and a first rent charged a late fee, in the moment between the
    # lease entered 100 days late and its payment: those count, once)
    assert done["overdue_announced"] == stack.scalar(
        "sales", "SELECT count(*) FROM bills WHERE overdue_notified_at IS NOT NULL") >= 3 * stories
    assert done["late_fees"] == stack.scalar(
        "sales", "SELECT count(*) FROM bills WHERE kind = 'late_fee'") >= 3 * stories
    assert unattended() == 0
    assert (done["reminders"], done["sla_breaches"], done["sms_sent"]) == (
        stories, 2 * stories, stories)
    assert_exactly_once(figures)
