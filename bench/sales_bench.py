"""Sales service benchmarks (issue 3), on the service's real code and database schema.

1. Generate and store the bill schedules of 10,000 leases (target ≤ 20 s), two ways:
   - schedules: the leases exist; ``leasing.issue_schedule`` generates each schedule (rent
     periods, proration, deposit) and stores the bills and their ``bill.issued`` events —
     exactly what the target names;
   - signing: the whole ``leasing.sign`` path per lease (validation, unit lock and
     availability, lease row, unit status, schedule, events), what an API call does.
   Both commit every 500 leases on a freshly migrated database.
2. List overdue bills among 1,000,000: bills inserted in bulk (about 4% open past their due
   date), then ``payments.search(status="overdue")`` — first page of 50 with the total — timed
   over repeated calls. Target ≤ 200 ms.

    .venv/bin/python bench/sales_bench.py [--leases 10000] [--bills 1000000] [--postgres URL]

With ``--postgres postgresql://postgres@127.0.0.1:5432`` it also runs both on a scratch
PostgreSQL database (created and dropped).
"""
import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select, text

from crm_kit.db import make_engine, make_sessionmaker
from crm_kit.envelope import now
from crm_kit.migrations import upgrade

import sales_service
from sales_service import leasing, payments, units
from sales_service.models import Bill, Lease, Unit
from bench_common import fresh_database  # noqa: E402

MIGRATIONS = Path(sales_service.__file__).parent / "migrations"
ACTOR = {"id": "bench", "roles": ["sales_supervisor"]}
CYCLES = ["monthly", "monthly", "monthly", "quarterly", "half_yearly", "yearly"]


def bench_schedules(url, lease_count, seed=7):
    """Seconds to sign ``lease_count`` leases with their schedules; returns (seconds, bills)."""
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine, "sales")
    rng = random.Random(seed)
    unit_count = max(1, lease_count // 5)
    with factory() as session:
        unit_ids = [units.create(session, {
            "code": f"B{i:05d}", "building": f"Building {i // 100}", "district": "高新区",
            "layout": "1b1b", "area_sqm": "35.00", "floor": i % 30 + 1,
            "monthly_rent": "3000.00"}, ACTOR).id for i in range(unit_count)]
        session.commit()
    # each unit gets back-to-back one-year leases from three years ago: no overlap by design
    next_start = {uid: date.today() - timedelta(days=3 * 365) for uid in unit_ids}
    started = time.perf_counter()
    bills = 0
    with factory() as session:
        for index in range(lease_count):
            unit_id = unit_ids[index % unit_count]
            start = next_start[unit_id]
            end = start + timedelta(days=rng.choice([180, 364, 364, 729]))
            next_start[unit_id] = end + timedelta(days=1)
            customer = {"id": f"c{index}", "owner_id": f"staff-{index % 50}"}
            _, issued = leasing.sign(session, {
                "customer_id": customer["id"], "unit_id": unit_id,
                "start_date": start.isoformat(), "end_date": end.isoformat(),
                "monthly_rent": str(Decimal(rng.randrange(2000, 9000, 50))) + ".00",
                "deposit": "3000.00", "payment_cycle": rng.choice(CYCLES)}, ACTOR, customer)
            bills += len(issued)
            if index % 500 == 499:
                session.commit()
        session.commit()
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, bills


def bench_schedules_only(url, lease_count, seed=7):
    """Seconds to generate and store the schedules of ``lease_count`` existing leases."""
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine, "sales")
    rng = random.Random(seed)
    moment = now()
    with factory() as session:
        session.add(Unit(id="u", code="U", building="b", district="d", layout="1b1b",
                         area_sqm=Decimal("30"), floor=1, monthly_rent=Decimal("3000"),
                         amenities=[], status="vacant", created_at=moment, updated_at=moment))
        session.commit()
    rows = []
    for index in range(lease_count):
        start = date.today() - timedelta(days=rng.randrange(0, 3 * 365))
        rows.append({"id": f"l{index:06d}", "customer_id": f"c{index}", "unit_id": "u",
                     "owner_id": f"staff-{index % 50}", "start_date": start,
                     "end_date": start + timedelta(days=rng.choice([180, 364, 364, 729])),
                     "monthly_rent": Decimal(rng.randrange(2000, 9000, 50)),
                     "deposit": Decimal("3000.00"), "payment_cycle": rng.choice(CYCLES),
                     "status": "active", "signed_at": moment, "created_at": moment,
                     "updated_at": moment})
    with engine.begin() as connection:
        connection.execute(insert(Lease), rows)
    started = time.perf_counter()
    bills = 0
    with factory() as session:
        leases = session.scalars(select(Lease).order_by(Lease.id)).all()
        for index, lease in enumerate(leases):
            bills += len(leasing.issue_schedule(session, lease, with_deposit=True))
            if index % 500 == 499:
                session.commit()
        session.commit()
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, bills


def bench_overdue(url, bill_count, seed=11, repeats=20):
    """Median and worst ms of listing overdue bills among ``bill_count``."""
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine, "sales")
    rng = random.Random(seed)
    today = date.today()
    moment = now()
    with factory() as session:
        session.add(Unit(id="u", code="U", building="b", district="d", layout="1b1b",
                         area_sqm=Decimal("30"), floor=1, monthly_rent=Decimal("3000"),
                         amenities=[], status="leased", created_at=moment, updated_at=moment))
        session.flush()  # the lease refers to the unit
        session.add(Lease(id="l", customer_id="c", unit_id="u", owner_id="s",
                          start_date=today - timedelta(days=1500), end_date=today,
                          monthly_rent=Decimal("3000"), deposit=Decimal("3000"),
                          payment_cycle="monthly", status="active", signed_at=moment,
                          created_at=moment, updated_at=moment))
        session.commit()
    started = time.perf_counter()
    batch = []
    with engine.begin() as connection:
        for index in range(bill_count):
            due = today - timedelta(days=rng.randrange(-365, 1100))
            roll = rng.random()
            if due < today:  # the past: mostly paid, a few still open
                status = "paid" if roll > 0.05 else ("unpaid" if roll > 0.02 else "partially_paid")
            else:
                status = "unpaid"
            amount = Decimal("3000.00")
            paid = amount if status == "paid" else (Decimal("1000.00")
                                                    if status == "partially_paid" else Decimal(0))
            batch.append({"id": f"b{index:07d}", "lease_id": "l", "customer_id": f"c{index % 100000}",
                          "owner_id": f"staff-{index % 50}", "kind": "rent", "due_date": due,
                          "amount": amount, "paid": paid, "status": status,
                          "created_at": moment, "updated_at": moment})
            if len(batch) == 20000:
                connection.execute(insert(Bill), batch)
                batch = []
        if batch:
            connection.execute(insert(Bill), batch)
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE bills"))
        else:
            connection.execute(text("ANALYZE"))
    load_seconds = time.perf_counter() - started
    timings = []
    with factory() as session:
        for _ in range(repeats):
            t0 = time.perf_counter()
            page = payments.search(session, {"status": "overdue"}, 1, 50)
            timings.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return statistics.median(timings), max(timings), page["total"], load_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leases", type=int, default=10_000)
    parser.add_argument("--bills", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=None, help="server URL without a database name")
    args = parser.parse_args(argv)
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    rows = []
    for kind in kinds:
        url, drop = fresh_database(kind, args.postgres, "schedules")
        try:
            seconds, bills = bench_schedules_only(url, args.leases)
        finally:
            drop and drop()
        rows.append(f"| {kind} | bill schedules of {args.leases:,} leases generated and stored "
                    f"({bills:,} bills + events) | {seconds:.1f} s | ≤ 20 s | "
                    f"{'yes' if seconds <= 20 else '**no**'} |")
        print("[sales bench]", rows[-1], flush=True)
        url, drop = fresh_database(kind, args.postgres, "signing")
        try:
            seconds, bills = bench_schedules(url, args.leases)
        finally:
            drop and drop()
        rows.append(f"| {kind} | {args.leases:,} leases signed, whole path ({bills:,} bills) | "
                    f"{seconds:.1f} s | (≤ 20 s for the schedules alone) | info |")
        print("[sales bench]", rows[-1], flush=True)
        url, drop = fresh_database(kind, args.postgres, "overdue")
        try:
            median, worst, total, load = bench_overdue(url, args.bills)
        finally:
            drop and drop()
        rows.append(f"| {kind} | overdue list among {args.bills:,} bills ({total:,} overdue; "
                    f"loaded in {load:.0f} s) | p50 {median:.1f} ms, max {worst:.1f} ms | "
                    f"≤ 200 ms | {'yes' if median <= 200 else '**no**'} |")
        print("[sales bench]", rows[-1], flush=True)
    print("\n| database | what | measured | target | met |\n| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
