"""Event propagation for `make bench`: from the commit of a ``customer.created`` event to its
effect in every service that consumes it, read from the services' own databases.

The chain measured: gateway ``POST /api/v1/customers`` → the customer service commits the
customer and its event in ``outbox_events`` (the envelope's ``occurred_at`` is taken in that
transaction, just before the commit) → its outbox relay publishes it to ``customer.events`` →
marketing and analytics each apply it in one transaction that also writes their inbox row in
``processed_events`` (``processed_at`` is taken as that transaction starts and is committed with
the effect).

    latency of an event at a consumer = processed_at (consumer's database)
                                        − occurred_at (envelope in the producer's outbox)

Both instants are written by the services themselves with the same clock (this machine's), so
the bench's own polling only decides when it stops waiting, never the figures. ``published_at``
(the relay's stamp, written after the broker confirmed the row) is reported too, to tell the
relay's share from the consumers'.

Two modes: ``steady`` (customers created at a fixed rate, on a schedule) and ``burst`` (many
customers created by several threads as fast as they go). Every event must reach every
consumer within ``ARRIVAL_DEADLINE`` seconds of the last commit, else it counts as lost.
"""
import json
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timezone

from crm_kit.testing import wait_until

EVENT = "customer.created"
PRODUCER = "customer"
#: every service that consumes customer.created → its inbox handler (``<service>.<entrypoint>``)
CONSUMERS = {"marketing": "marketing.on_customer_created",
             "analytics": "analytics.on_customer_created"}
ARRIVAL_DEADLINE = 60.0   # s after the last commit for every copy to be stored
POLL = 0.1                # s between two reads of the databases while waiting (not a resolution)


def queues():
    """The queue nameko's ``@event_handler`` declares for each consumer (reliable delivery)."""
    return {service: f"evt-{PRODUCER}-{EVENT}--{handler}" for service, handler in CONSUMERS.items()}


# ---------------------------------------------------------------- the databases

def _connect(data_dir, service):
    # read-only; the services use WAL, so reading never blocks their writes
    return closing(sqlite3.connect(f"file:{data_dir / (service + '.db')}?mode=ro", uri=True,
                                   timeout=30))


def _instant(text):
    """An ISO instant as the envelope or SQLite holds it (SQLite keeps UTC without a zone)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def last_outbox_id(data_dir):
    with _connect(data_dir, PRODUCER) as db:
        return db.execute("SELECT coalesce(max(id), 0) FROM outbox_events").fetchone()[0]


def produced(data_dir, after_id, customer_ids):
    """event_id → (occurred_at, published_at or None) of the customer.created events of
    ``customer_ids`` committed after outbox row ``after_id``."""
    with _connect(data_dir, PRODUCER) as db:
        rows = db.execute("SELECT envelope, published_at FROM outbox_events "
                          "WHERE id > ? AND event_type = ?", (after_id, EVENT)).fetchall()
    found = {}
    for envelope_json, published_at in rows:
        envelope = json.loads(envelope_json)
        if envelope["data"]["id"] in customer_ids:
            found[envelope["event_id"]] = (_instant(envelope["occurred_at"]),
                                           _instant(published_at) if published_at else None)
    return found


def consumed(data_dir, service, event_ids):
    """event_id → processed_at of those of ``event_ids`` that ``service`` has applied."""
    with _connect(data_dir, service) as db:
        rows = db.execute("SELECT event_id, processed_at FROM processed_events WHERE handler = ?",
                          (CONSUMERS[service],)).fetchall()
    return {event_id: _instant(at) for event_id, at in rows if event_id in event_ids}


# ---------------------------------------------------------------- load

def create_many(new_session, create_customer, total, threads, rate=None):
    """``total`` customers created by ``threads`` threads (one session each): customer n is
    started at n / ``rate`` s on a fixed schedule, or at once if ``rate`` is None (a burst).
    Several threads keep the schedule when answers are slow. Returns (customer ids, seconds
    taken); the first failure fails the run."""
    ids, failures = [], []
    slots = iter(range(total))
    lock = threading.Lock()
    sessions = [new_session() for _ in range(threads)]
    started = time.perf_counter()

    def worker(session):
        while not failures:
            with lock:
                n = next(slots, None)
            if n is None:
                return
            if rate:
                ahead = started + n / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)  # pacing to the schedule, not waiting for a result
            try:
                customer_id = create_customer(session)
            except Exception as exc:
                failures.append(exc)
                return
            with lock:
                ids.append(customer_id)

    workers = [threading.Thread(target=worker, args=(session,), daemon=True)
               for session in sessions]
    try:
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    finally:
        for session in sessions:
            session.close()
    if failures:
        raise RuntimeError(f"a customer could not be created: {failures[0]}")
    return ids, time.perf_counter() - started


# ---------------------------------------------------------------- one mode

def measure(data_dir, drive, cpu):
    """Run ``drive()`` (→ customer ids, seconds), then wait until every consumer has stored
    every event of those customers. Returns per consumer the sorted latencies in ms and how
    many never arrived, the relay's share (commit → published_at stamp), and the CPU time per
    event of each service from ``cpu()`` (→ {service: CPU seconds so far})."""
    after = last_outbox_id(data_dir)
    cpu_before = cpu()
    customer_ids, seconds = drive()
    events = produced(data_dir, after, set(customer_ids))
    if len(events) != len(customer_ids):
        raise RuntimeError(f"{len(customer_ids)} customers created but {len(events)} "
                           f"{EVENT} events in the customer service's outbox")
    wanted = set(events)
    latest = {}

    def all_stored():
        for service in CONSUMERS:
            latest[service] = consumed(data_dir, service, wanted)
        return all(len(copies) == len(wanted) for copies in latest.values())

    try:
        wait_until(all_stored, ARRIVAL_DEADLINE, POLL,
                   f"{len(wanted)} {EVENT} events at {', '.join(CONSUMERS)}")
    except AssertionError:
        pass  # what is missing in ``latest`` now is reported as lost
    cpu_after = cpu()
    # the relay stamps a batch after the broker's confirms: a consumer may be faster
    try:
        wait_until(lambda: all(published for _, published in
                               produced(data_dir, after, set(customer_ids)).values()),
                   10, POLL, "the relay's published_at stamps")
    except AssertionError:
        pass
    events = produced(data_dir, after, set(customer_ids))

    def ms(later, earlier):
        return (later - earlier).total_seconds() * 1000

    result = {"events": len(events), "seconds": seconds, "consumers": {},
              "cpu ms per event": {service: (cpu_after[service] - cpu_before[service]) * 1000
                                   / max(1, len(events)) for service in cpu_after}}
    for service, copies in latest.items():
        result["consumers"][service] = {
            "latencies": sorted(ms(copies[e], events[e][0]) for e in copies),
            "lost": len(wanted) - len(copies)}
    result["all consumers"] = sorted(
        ms(max(latest[s][e] for s in CONSUMERS), occurred)
        for e, (occurred, _) in events.items() if all(e in latest[s] for s in CONSUMERS))
    result["relay"] = sorted(ms(published, occurred)
                             for occurred, published in events.values() if published)
    return result


def run(data_dir, new_session, create_customer, cpu, rate, seconds, burst_size, burst_threads):
    """Both modes, one after the other: {mode label: measure() result}. The steady mode uses
    up to 4 threads, only so that one slow answer does not hold the next customers back."""
    return {
        f"steady {rate:g}/s for {seconds:g} s": measure(data_dir, lambda: create_many(
            new_session, create_customer, int(rate * seconds), 4, rate=rate), cpu),
        f"burst of {burst_size} by {burst_threads} threads": measure(data_dir, lambda: create_many(
            new_session, create_customer, burst_size, burst_threads), cpu),
    }
