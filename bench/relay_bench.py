"""Outbox relay throughput: committed events published to RabbitMQ per second.

    .venv/bin/python bench/relay_bench.py [--events 20000] [--postgres postgresql://postgres@127.0.0.1:5432]
        [--only sqlite|postgresql] [--batch 500]

Per database (a scratch one, created and dropped):
1. Setup, not timed: the customer service's migrations, then ``--events`` `customer.created`
   events written to its outbox with ``crm_kit.outbox.record_events`` (1,000 per transaction),
   each with a realistic customer (~700 bytes of JSON).
2. On a private vhost ``crm-bench-relay`` (created, deleted at the end), the exchange
   ``customer.events`` with one durable queue bound to every event, as a consumer's queue would
   be: the broker routes and stores every message to disk, as in production.
3. Timed: the real ``OutboxRelay`` of the service, under eventlet's monkey patching as in a
   service process, publishes batches until the backlog is 0. Then the queue must hold exactly
   ``--events`` messages (nothing lost, nothing twice) and every row is stamped ``published_at``.

Prints a Markdown table and writes it to bench/results/relay.md (git-ignored).
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "kit"), str(ROOT / "services" / "customer")]

from kombu import Connection, Exchange, Queue  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench_common import cpu_model, database_version, fresh_database, git_revision  # noqa: E402
from crm_kit import migrations  # noqa: E402
from crm_kit.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from crm_kit.models import OutboxEvent  # noqa: E402
from crm_kit.outbox import OutboxRelay, backlog, record_events  # noqa: E402

import customer_service  # noqa: E402

VHOST = "crm-bench-relay"
QUEUE = "bench-relay-consumer"
RESULTS = ROOT / "bench" / "results"
DISTRICTS = ["锦江区", "青羊区", "金牛区", "武侯区", "成华区", "高新区", "天府新区", "双流区"]


def rabbitmqctl(*args, check=True):
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def customer(rng, number):
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "name": rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(["伟", "芳", "娜", "敏", "静", "磊", "洋"]),
        "mobile": f"13{number:09d}",
        "email": f"tenant{number}@example.cn",
        "city": "成都", "district": rng.choice(DISTRICTS),
        "industry": rng.choice(["互联网", "金融", "教育", "医疗", "制造"]),
        "source": rng.choice(["walk_in", "referral", "online", "agent"]),
        "stage": "prospect", "tags": rng.sample(["白领", "养宠", "合租", "短通勤", "高预算"], 2),
        "owner_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "consent": {"sms": True, "email": rng.random() < 0.6},
        "created_at": "2026-12-03T10:00:00+08:00",
    }


def fill_outbox(sessionmaker, events):
    rng = random.Random(7)
    for start in range(0, events, 1000):
        with transaction(sessionmaker) as session:
            record_events(session, [("customer.created", customer(rng, n))
                                    for n in range(start, min(events, start + 1000))])


def prepare_broker(amqp_uri):
    if VHOST in rabbitmqctl("list_vhosts", "--quiet").stdout.split():
        rabbitmqctl("delete_vhost", VHOST)
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    with Connection(amqp_uri) as connection:  # kombu: pika does not run under eventlet
        consumer_queue(connection).declare()


def consumer_queue(connection):
    exchange = Exchange("customer.events", type="topic", durable=True)
    return Queue(QUEUE, exchange, routing_key="#", durable=True, channel=connection.default_channel)


def queued_messages(amqp_uri):
    with Connection(amqp_uri) as connection:
        return consumer_queue(connection).queue_declare(passive=True).message_count


def cpu_seconds():
    usage = os.times()
    return usage.user + usage.system


def run_one(kind, args):
    url, drop = fresh_database(kind, args.postgres, "relay")
    amqp_uri = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    try:
        migrations.upgrade(Path(customer_service.__file__).parent / "migrations", url)
        engine = make_engine(url)
        sessionmaker = make_sessionmaker(engine, "customer")
        fill_outbox(sessionmaker, args.events)
        prepare_broker(amqp_uri)
        relay = OutboxRelay("customer", sessionmaker, amqp_uri, batch_size=args.batch)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        published = 0
        while published < args.events:
            sent = relay.relay_once()
            if sent == 0:
                raise RuntimeError(f"the relay stopped at {published} of {args.events}")
            published += sent
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        relay.stop()
        relay._close()
        with transaction(sessionmaker) as session:
            left = backlog(session)
            stamped = session.scalar(select(func.count()).select_from(OutboxEvent)
                                     .where(OutboxEvent.published_at.is_not(None)))
        queued = queued_messages(amqp_uri)
        if left or stamped != args.events or queued != args.events:
            raise RuntimeError(f"{kind}: backlog {left}, stamped {stamped}, in the queue "
                               f"{queued}; expected 0, {args.events}, {args.events}")
        version = database_version(url)
        engine.dispose()
        return {"database": version, "events": args.events, "seconds": elapsed, "cpu": cpu}
    finally:
        rabbitmqctl("delete_vhost", VHOST, check=False)
        drop()


def render(results, args):
    rabbit = rabbitmqctl("version", check=False).stdout.strip() or "?"
    lines = [
        f"{datetime.date.today()}, {os.cpu_count()} cores {cpu_model()}, load average "
        f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, RabbitMQ {rabbit}, "
        f"revision {git_revision()}; batch {args.batch}, durable queue, persistent messages.",
        "",
        "| database | events | seconds | events/s | relay CPU per event | target ≥ 2,000/s |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        rate = r["events"] / r["seconds"]
        lines.append(f"| {r['database']} | {r['events']:,} | {r['seconds']:.2f} | {rate:,.0f} | "
                     f"{r['cpu'] / r['events'] * 1e6:.0f} µs | {'yes' if rate >= 2000 else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES"))
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args(argv)
    kinds = [k for k in ("sqlite", "postgresql")
             if (args.only in (None, k)) and (k == "sqlite" or args.postgres)]
    results = []
    for kind in kinds:
        print(f"[relay bench] {kind}: {args.events:,} events", flush=True)
        results.append(run_one(kind, args))
    table = render(results, args)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay.md").write_text(table)
    return 0 if all(r["events"] / r["seconds"] >= 2000 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
