"""Analytics benchmark: a full recompute over 100,000 customers and 1,000,000 payments — first
target ≤ 30 s and ≤ 2 GiB peak memory — and the event ingestion rate (events/s).

For each database (SQLite, and PostgreSQL with ``--postgres``):
1. Setup, not timed: a freshly migrated analytics database gets a seeded, realistic store in
   bulk: customers (Chengdu districts, industries, occupations, sources, birthdays, lifecycle
   stages; some churned with reasons and competitors, a few merged, erased or archived), the
   tenants' payments (monthly rent, one deposit each; exactly ``--payments`` of them), leases
   over three years (12-month renewal chains; active, renewed, ended, terminated) with their
   bill schedules (some overdue), tickets (repair, complaint, ...; ratings with short Chinese
   reviews), opportunities (the won one of each lease, renewal opportunities, prospects) and
   the customers' and opportunities' stage histories. Payments of tenants whose leases are
   not among the ``--leases`` stored ones refer to bills and leases not in the store (only the
   overdue signal reads bills; RFM, CLV and falling activity read payments).
2. Recompute #1, in a fresh subprocess: ``recompute.run_all(transaction, as_of)`` exactly as
   the service's ``recompute`` RPC calls it, with the steps timed by wrapping the functions it
   calls (frames loaders, rfm, clv, tiers, churn, the INSERT of the scores, reading the previous
   run, publishing, warnings, each transaction's commit); wall and CPU seconds. Peak memory is
   the subprocess's peak RSS (VmHWM of /proc/self/status: the interpreter with its libraries,
   reported apart, plus the recompute). Not ``ru_maxrss``: Linux carries the parent's RSS at
   fork over into a child's ``ru_maxrss``, and the parent holds the generated store. The first
   run publishes ``customer.scored`` for every customer into the outbox.
3. A day of new payments (``--new-payments``) is added, then recompute #2 in another fresh
   subprocess: only the customers whose tier, RFM segment or churn score changed are published.
4. Event ingestion: the real analytics service (``python -m crm_kit.run``, as ``make up``
   starts it) on a fresh database and a private RabbitMQ vhost; ``customer.created`` for the
   customers first (waited for), then ``--events`` ``payment.received`` envelopes as the sales
   service's relay publishes them (exchange ``sales.events``, payload of ``record_payment``),
   published on one connection without confirms; timed from the first publish until every
   payment is in the ``payments`` table.

Prints a Markdown table and writes it to ``bench/results/analytics-latest.md`` (git-ignored).

    .venv/bin/python bench/analytics_bench.py [--customers 100000] [--payments 1000000]
        [--leases 12000] [--tickets 20000] [--opportunities 30000] [--events 5000]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--only postgresql]
        [--skip-ingestion] [--profile DIR]

``--profile DIR`` also runs each recompute under cProfile (a third subprocess per run, so the
timed figures are not slowed) and writes ``DIR/<database>-run<N>.prof`` and a text summary.
"""
import argparse
import contextlib
import csv
import importlib.metadata
import io
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from bench_common import cpu_model, database_version, fresh_database, git_revision  # noqa: E402

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
VHOST = "crm-bench-analytics"
AMQP_URI = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
TARGET_SECONDS = 30.0
TARGET_RSS_MIB = 2048.0

UTC = timezone.utc
CST = timezone(timedelta(hours=8))  # Asia/Shanghai: no daylight saving since 1991

DISTRICTS = (("高新区", 18), ("武侯区", 14), ("锦江区", 10), ("青羊区", 9), ("成华区", 9),
             ("金牛区", 9), ("天府新区", 8), ("双流区", 6), ("郫都区", 5), ("龙泉驿区", 4),
             ("温江区", 4), ("新都区", 4))
INDUSTRIES = (("互联网", 20), ("金融", 10), ("教育", 9), ("医疗", 7), ("制造业", 8),
              ("零售", 8), ("餐饮", 6), ("物流", 5), ("政府机关", 4), ("传媒", 5),
              ("建筑", 5), ("游戏", 4), (None, 9))
OCCUPATIONS = ("软件工程师", "产品经理", "教师", "医生", "护士", "销售", "设计师", "会计",
               "公务员", "研究生", "自由职业", "厨师", "运营", "律师", None)
SOURCES = (("walk_in", 12), ("referral", 14), ("website", 14), ("wechat", 20), ("weibo", 4),
           ("agent", 12), ("campaign", 10), ("corporate", 6), ("phone", 5), ("other", 3))
STAGES = (("potential", 30), ("intent", 15), ("first_time", 25), ("repeat", 15),
          ("churn_warning", 3), ("churned", 12))
TENANT_STAGES = ("first_time", "repeat", "churn_warning", "churned")
CHURN_REASONS = ("房租上涨", "工作调动离开成都", "买房了", "换到了更便宜的公寓", "对维修服务不满意",
                 "通勤太远", "合租室友搬走", None)
COMPETITORS = ("自如", "贝壳", "泊寓", "冠寓", "相寓", None, None, None)
LAYOUTS = ("studio", "1b1b", "1b1b", "2b1b", "2b1b", "3b2b")
METHODS = (("wechat_pay", 40), ("alipay", 30), ("bank_transfer", 20), ("card", 5), ("cash", 5))
TICKET_TYPES = (("repair", 50), ("complaint", 12), ("consultation", 20), ("suggestion", 8),
                ("cleaning", 10))
CHANNELS = ("phone", "wechat", "wechat", "web", "in_app", "in_app", "face_to_face", "email")
PRIORITIES = (("low", 15), ("normal", 60), ("high", 20), ("urgent", 5))
RATINGS = ((5, 45), (4, 25), (3, 12), (2, 10), (1, 8))
COMMENTS = {
    5: ("师傅很专业，修得又快又好", "响应很及时，点赞", "服务态度很好，谢谢", "非常满意",
        "管家很贴心"),
    4: ("处理得不错，就是来得有点晚", "整体满意", "修好了，还可以", "挺好的，下次希望更快"),
    3: ("一般般吧", "问题解决了但沟通不太顺畅", "还行，中规中矩"),
    2: ("等了好几天才有人来", "维修质量一般，又坏了", "客服态度冷淡", "收费不透明"),
    1: ("太慢了，非常失望", "投诉了三次都没解决", "再也不想租这里了", "噪音问题一直没人管"),
}
OPPORTUNITY_PATH = ("new", "contacted", "viewing_booked", "viewed", "negotiating")
LOSS_REASONS = ("price", "location", "layout", "competitor", "timing", "no_response",
                "not_qualified", "other")
STAFF = 150


# -- databases -----------------------------------------------------------------------------
def migrations_dir():
    import analytics_service

    return Path(analytics_service.__file__).parent / "migrations"


class BulkLoader:
    """Rows (dicts with every column) into the store in chunks: SQLAlchemy Core executemany on
    SQLite (the column types write the stored forms: cents, naive UTC), COPY on PostgreSQL."""

    def __init__(self, engine, chunk=50_000):
        self.engine, self.chunk = engine, chunk
        self.buffers, self.counts = {}, {}
        self.postgres = engine.dialect.name == "postgresql"
        if self.postgres:
            self.raw = engine.raw_connection()
        else:
            self.connection = engine.connect()
            self.transaction = self.connection.begin()

    def add(self, model, row):
        buffer = self.buffers.setdefault(model, [])
        buffer.append(row)
        if len(buffer) >= self.chunk:
            self.flush(model)

    def flush(self, model):
        rows = self.buffers.get(model)
        if not rows:
            return
        table = model.__table__
        self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)
        if self.postgres:
            columns = list(rows[0])
            text = io.StringIO()
            writer = csv.writer(text)
            for row in rows:
                writer.writerow([row[c] for c in columns])
            text.seek(0)
            with self.raw.cursor() as cursor:
                cursor.copy_expert(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN "
                                   f"WITH (FORMAT csv)", text)
        else:
            from sqlalchemy import insert

            self.connection.execute(insert(table), rows)
        self.buffers[model] = []

    def close(self):
        for model in list(self.buffers):
            self.flush(model)
        if self.postgres:
            self.raw.commit()
            self.raw.close()
        else:
            self.transaction.commit()
            self.connection.close()


# -- the store -----------------------------------------------------------------------------
def weighted(rng, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights)[0]


def new_id(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def month_day(month, day):
    """Month number (year × 12 + month − 1) and day → date."""
    year, index = divmod(month, 12)
    return date(year, index + 1, day)


def instant(day, rng, hours=(8, 22)):
    """A moment of a local (Chengdu) day, as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, rng.randrange(*hours), rng.randrange(60),
                    rng.randrange(60), tzinfo=CST).astimezone(UTC)


def money(cents):
    return Decimal(cents).scaleb(-2)


def spread_months(rng, caps, total):
    """Months of paid rent per tenant (1 … cap each) adding up to ``total`` (or as close as
    the caps allow)."""
    months = [rng.randint(1, cap) for cap in caps]
    diff = total - sum(months)
    order = list(range(len(caps)))
    while diff:
        rng.shuffle(order)
        moved = 0
        for i in order:
            if diff > 0 and months[i] < caps[i]:
                months[i] += 1
                diff -= 1
                moved += 1
            elif diff < 0 and months[i] > 1:
                months[i] -= 1
                diff += 1
                moved += 1
            if not diff:
                break
        if not moved:
            break
    return months


def build_store(url, args, as_of):
    """Fill a migrated analytics database; returns row counts and facts for the report."""
    from crm_kit.db import make_engine
    from analytics_service.models import (Bill, Customer, Lease, Opportunity,
                                          OpportunityStageChange, Payment, StageChange, Ticket)

    rng = random.Random(args.seed)
    engine = make_engine(url)
    loader = BulkLoader(engine)
    as_month = as_of.year * 12 + as_of.month - 1
    window_start = as_of - timedelta(days=3 * 365)
    staff = [f"staff-{i:03d}" for i in range(STAFF)]

    # customers: stage first; tenants get a tenancy (months of rent, paid up to a month)
    customers = []
    for _ in range(args.customers):
        stage = weighted(rng, STAGES)
        kind = "company" if rng.random() < 0.06 else "person"
        customers.append({
            "id": new_id(rng), "kind": kind, "stage": stage, "owner_id": rng.choice(staff),
            "gender": None if kind == "company" else rng.choice(("male", "female", "female",
                                                                "male", "other", None)),
            "birthday": (None if kind == "company" or rng.random() < 0.1 else
                         date(rng.randint(1962, 2004), rng.randint(1, 12), rng.randint(1, 28))),
            "industry": weighted(rng, INDUSTRIES), "occupation": rng.choice(OCCUPATIONS),
            "district": weighted(rng, DISTRICTS), "source": weighted(rng, SOURCES),
            "merged_into": None, "archived": False, "erased": False, "churned_at": None,
            "churn_reason": None, "churn_competitor": None})
    tenants = [c for c in customers if c["stage"] in TENANT_STAGES]
    for c in tenants:
        c["rent"] = rng.randrange(1500, 9001, 100) * 100  # cents
        c["pay_day"] = rng.randint(1, 28)
        last = as_month if c["pay_day"] <= as_of.day else as_month - 1  # last due ≤ as_of
        if c["stage"] == "churned":
            last -= rng.randint(1, 30)
            unpaid = 0
        elif c["stage"] == "churn_warning":
            unpaid = rng.randint(1, 3)  # stopped paying: the last bills are overdue
        else:
            unpaid = 1 if rng.random() < 0.03 else 0
        c["last_due"], c["unpaid"] = last, unpaid
        c["cap"] = max(1, min(36, last - unpaid - (as_month - 36) + 1))
    rent_payments = max(len(tenants), args.payments - len(tenants))  # one deposit each
    for c, months in zip(tenants, spread_months(rng, [c["cap"] for c in tenants],
                                                rent_payments)):
        c["first_due"] = c["last_due"] - c["unpaid"] - months + 1
    for c in customers:
        if c["stage"] in TENANT_STAGES:
            first_day = month_day(c["first_due"], c["pay_day"])
            created = first_day - timedelta(days=rng.randint(3, 90))
        else:
            created = window_start + timedelta(days=rng.randrange((as_of - window_start).days))
        c["created_at"] = instant(created, rng)
        if c["stage"] == "churned":
            gone = min(as_of, month_day(c["last_due"] + 1, c["pay_day"])
                       + timedelta(days=rng.randint(0, 20)))
            c["churned_at"] = instant(gone, rng)
            c["churn_reason"] = rng.choice(CHURN_REASONS)
            c["churn_competitor"] = rng.choice(COMPETITORS)
            c["archived"] = rng.random() < 0.05
    for c in rng.sample(customers, len(customers) // 500):  # erased on request
        c["erased"] = True
        c["gender"] = c["birthday"] = c["occupation"] = c["churn_reason"] = None
    leads = [c for c in customers if c["stage"] in ("potential", "intent")]
    for c in rng.sample(leads, len(customers) // 200):  # duplicates merged into another lead
        c["merged_into"] = rng.choice(leads)["id"]

    # leases, bills and payments, tenant by tenant; leases are 12-month renewal chains
    stored = set()
    lease_count = 0
    for c in rng.sample(tenants, len(tenants)):
        if lease_count >= args.leases:
            break
        chain = math.ceil((c["last_due"] - c["first_due"] + 1) / 12)
        stored.add(c["id"])
        c["chain"] = chain
        lease_count += chain
    methods = [m for m, _ in METHODS]
    method_weights = [w for _, w in METHODS]
    leases, opportunities, renewals_due = [], [], []
    overdue = 0
    for c in tenants:
        pay_day, rent, owner = c["pay_day"], c["rent"], c["owner_id"]
        method = rng.choices(methods, method_weights)[0]
        first, last_paid = c["first_due"], c["last_due"] - c["unpaid"]
        if c["id"] in stored:
            lease_ids = [new_id(rng) for _ in range(c["chain"])]
            unit, layout = new_id(rng), rng.choice(LAYOUTS)
            for j, lease_id in enumerate(lease_ids):
                start_month = first + 12 * j
                start = month_day(start_month, pay_day)
                end = month_day(start_month + 12, pay_day) - timedelta(days=1)
                last_chunk = j == len(lease_ids) - 1
                if not last_chunk:
                    status, closed = "renewed", None
                elif c["stage"] == "churned":
                    end = month_day(c["last_due"] + 1, pay_day) - timedelta(days=1)
                    status = "terminated" if rng.random() < 0.25 else "ended"
                    closed = instant(end, rng)
                else:
                    status, closed = "active", None
                signed = instant(start - timedelta(days=rng.randint(1, 14)), rng)
                opportunity_id = new_id(rng)
                leases.append({
                    "id": lease_id, "customer_id": c["id"], "owner_id": owner,
                    "unit_id": unit, "district": c["district"], "layout": layout,
                    "opportunity_id": opportunity_id, "start_date": start, "end_date": end,
                    "monthly_rent": money(rent), "status": status,
                    "renewed_from_id": lease_ids[j - 1] if j else None, "signed_at": signed,
                    "closed_at": closed, "updated_at": closed or signed})
                opportunities.append({
                    "id": opportunity_id, "customer_id": c["id"], "owner_id": owner,
                    "kind": "renewal" if j else "new", "source": "renewal" if j else c["source"],
                    "campaign_id": None, "stage": "won", "expected_value": money(rent * 12),
                    "loss_reason": None, "lease_id": lease_id,
                    "renewal_of_lease_id": lease_ids[j - 1] if j else None,
                    "created_at": signed - timedelta(days=rng.randint(5, 40)),
                    "stage_at": signed, "closed_at": signed})
                if status == "active" and (end - as_of).days <= 90:
                    renewals_due.append((c, lease_id, end))
            # the deposit bill, then the schedule: every month of the chain
            deposit_bill = new_id(rng)
            deposit_due = month_day(first, pay_day)
            loader.add(Bill, {"id": deposit_bill, "lease_id": lease_ids[0],
                              "customer_id": c["id"], "owner_id": owner, "kind": "deposit",
                              "amount": money(rent), "paid": money(rent),
                              "due_date": deposit_due, "overdue_since": None})
            bill_of = {}
            months_end = (first + 12 * len(lease_ids) - 1 if c["stage"] != "churned"
                          else c["last_due"])
            for month in range(first, months_end + 1):
                due = month_day(month, pay_day)
                paid = month <= last_paid
                late = not paid and due < as_of
                overdue += late
                bill_id = new_id(rng)
                bill_of[month] = bill_id
                loader.add(Bill, {"id": bill_id, "lease_id": lease_ids[(month - first) // 12],
                                  "customer_id": c["id"], "owner_id": owner, "kind": "rent",
                                  "amount": money(rent), "paid": money(rent if paid else 0),
                                  "due_date": due,
                                  "overdue_since": due + timedelta(days=1) if late else None})
        else:
            lease_ids, deposit_bill, bill_of = [new_id(rng)], new_id(rng), {}
        # payments: the deposit with the first month, then each month's rent
        first_day = month_day(first, pay_day)
        loader.add(Payment, {
            "id": new_id(rng), "bill_id": deposit_bill, "lease_id": lease_ids[0],
            "customer_id": c["id"], "owner_id": owner, "bill_kind": "deposit",
            "amount": money(rent), "paid_at": instant(first_day - timedelta(days=2), rng),
            "method": method})
        for month in range(first, last_paid + 1):
            due = month_day(month, pay_day)
            day = min(as_of, due + timedelta(days=rng.choice((-6, -4, -3, -2, -1, -1, 0, 0, 0,
                                                              1, 2, 5))))
            loader.add(Payment, {
                "id": new_id(rng), "bill_id": bill_of.get(month) or new_id(rng),
                "lease_id": lease_ids[min((month - first) // 12, len(lease_ids) - 1)],
                "customer_id": c["id"], "owner_id": owner, "bill_kind": "rent",
                "amount": money(rent), "paid_at": instant(day, rng),
                "method": method if rng.random() < 0.9 else rng.choice(methods)})

    # renewal opportunities for about half the active leases ending within 90 days
    for c, lease_id, end in renewals_due:
        if rng.random() < 0.5:
            created = instant(end - timedelta(days=rng.randint(60, 100)), rng)
            created = min(created, instant(as_of - timedelta(days=1), rng))
            lost = rng.random() < 0.2
            opportunities.append({
                "id": new_id(rng), "customer_id": c["id"], "owner_id": c["owner_id"],
                "kind": "renewal", "source": "renewal", "campaign_id": None,
                "stage": "lost" if lost else rng.choice(("contacted", "negotiating")),
                "expected_value": money(c["rent"] * 12),
                "loss_reason": rng.choice(LOSS_REASONS) if lost else None, "lease_id": None,
                "renewal_of_lease_id": lease_id, "created_at": created, "stage_at": created,
                "closed_at": created if lost else None})
    # prospects: leads' and tenants' other opportunities, open or lost
    while len(opportunities) < args.opportunities:
        c = rng.choice(leads) if rng.random() < 0.8 else rng.choice(customers)
        created = max(c["created_at"], instant(window_start, rng)) + timedelta(
            days=rng.randint(0, 200))
        created = min(created, instant(as_of, rng, hours=(0, 8)))
        old = (as_of - created.date()).days > 45
        stage = ("lost" if old and rng.random() < 0.85 else
                 rng.choice(OPPORTUNITY_PATH))
        stage_at = created + timedelta(days=rng.randint(0, 30)) if stage != "new" else created
        stage_at = min(stage_at, instant(as_of, rng, hours=(0, 8)))
        opportunities.append({
            "id": new_id(rng), "customer_id": c["id"], "owner_id": c["owner_id"],
            "kind": "new", "source": c["source"], "campaign_id": None, "stage": stage,
            "expected_value": money(rng.randrange(1500, 9001, 100) * 1200),
            "loss_reason": rng.choice(LOSS_REASONS) if stage == "lost" else None,
            "lease_id": None, "renewal_of_lease_id": None, "created_at": created,
            "stage_at": stage_at, "closed_at": stage_at if stage == "lost" else None})
    for row in leases:
        loader.add(Lease, row)
    for o in opportunities:
        loader.add(Opportunity, o)
        path = list(OPPORTUNITY_PATH[:rng.randint(1, 5)]) if o["stage"] in ("won", "lost") \
            else list(OPPORTUNITY_PATH[:OPPORTUNITY_PATH.index(o["stage"]) + 1])
        if o["stage"] in ("won", "lost"):
            path.append(o["stage"])
        span = max(1, (o["stage_at"] - o["created_at"]).total_seconds())
        for k, (before, after) in enumerate(zip([None] + path, path)):
            loader.add(OpportunityStageChange, {
                "event_id": new_id(rng), "opportunity_id": o["id"], "from_stage": before,
                "to_stage": after,
                "occurred_at": o["created_at"] + timedelta(seconds=span * k / len(path))})

    # customers and their lifecycle history
    lifecycle = ("potential", "intent", "first_time", "repeat")
    for c in customers:
        stage = c["stage"]
        if stage in lifecycle:
            path = list(lifecycle[:lifecycle.index(stage) + 1])
        else:
            path = ["potential", "intent", "first_time"] + (["repeat"] if rng.random() < 0.4
                                                            else [])
            path += ["churn_warning"] if stage == "churn_warning" else (
                ["churn_warning", "churned"] if rng.random() < 0.3 else ["churned"])
        end = c["churned_at"] or instant(as_of, rng, hours=(0, 8))
        span = max(60, (end - c["created_at"]).total_seconds())
        moments = [c["created_at"] + timedelta(seconds=span * k / len(path))
                   for k in range(len(path))]
        if c["churned_at"]:
            moments[-1] = c["churned_at"]
        for before, after, moment in zip([None] + path, path, moments):
            loader.add(StageChange, {"event_id": new_id(rng), "customer_id": c["id"],
                                     "from_stage": before, "to_stage": after,
                                     "occurred_at": moment})
        loader.add(Customer, {
            "id": c["id"], "kind": c["kind"], "gender": c["gender"], "birthday": c["birthday"],
            "industry": c["industry"], "occupation": c["occupation"], "district": c["district"],
            "source": c["source"], "owner_id": c["owner_id"], "stage": stage,
            "stage_entered_at": moments[-1], "created_at": c["created_at"],
            "merged_into": c["merged_into"], "archived": c["archived"], "erased": c["erased"],
            "churned_at": c["churned_at"], "churn_reason": c["churn_reason"],
            "churn_competitor": c["churn_competitor"], "profile_at": c["created_at"]})

    # tickets: mostly tenants'; ratings with short reviews
    types = [t for t, _ in TICKET_TYPES]
    type_weights = [w for _, w in TICKET_TYPES]
    complaints_recent = 0
    for _ in range(args.tickets):
        c = rng.choice(tenants) if rng.random() < 0.9 else rng.choice(customers)
        created = instant(window_start + timedelta(days=rng.randrange(3 * 365 + 1)), rng)
        age = (as_of - created.astimezone(CST).date()).days
        ticket_type = rng.choices(types, type_weights)[0]
        complaints_recent += ticket_type == "complaint" and age < 90
        if age > 20 or rng.random() < 0.5:
            status = "closed" if rng.random() < 0.85 else "resolved"
        else:
            status = rng.choice(("new", "assigned", "in_progress", "awaiting_customer"))
        resolved = (created + timedelta(hours=rng.randint(2, 120))
                    if status in ("closed", "resolved") else None)
        rating = comment = rated = None
        if resolved is not None and rng.random() < 0.45:
            rating = weighted(rng, RATINGS)
            rated = resolved + timedelta(hours=rng.randint(1, 72))
            if rng.random() < 0.7 and not c["erased"]:
                comment = rng.choice(COMMENTS[rating])
        loader.add(Ticket, {
            "id": new_id(rng), "customer_id": c["id"], "type": ticket_type,
            "channel": rng.choice(CHANNELS), "priority": weighted(rng, PRIORITIES),
            "district": c["district"], "status": status, "created_at": created,
            "resolved_at": resolved, "sla_breached": rng.random() < 0.08, "rating": rating,
            "comment": comment, "rated_at": rated, "status_at": resolved or created})
    loader.close()
    if engine.dialect.name == "postgresql":  # what autovacuum does to a long-lived store
        from sqlalchemy import text

        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    counts = dict(loader.counts)
    counts.update({"tenants": len(tenants), "overdue_bills": overdue,
                   "recent_complaints": complaints_recent})
    return counts, [c["id"] for c in tenants if c["stage"] in ("first_time", "repeat")]


def add_new_payments(url, customer_ids, count, as_of, seed):
    """A day of payments (dated ``as_of``) before the second recompute."""
    from crm_kit.db import make_engine
    from analytics_service.models import Payment

    rng = random.Random(seed + 1)
    engine = make_engine(url)
    loader = BulkLoader(engine)
    for customer_id in rng.sample(customer_ids, min(count, len(customer_ids))):
        loader.add(Payment, {
            "id": new_id(rng), "bill_id": new_id(rng), "lease_id": None,
            "customer_id": customer_id, "owner_id": None, "bill_kind": "rent",
            "amount": money(rng.randrange(1500, 9001, 100) * 100),
            "paid_at": instant(as_of, rng, hours=(0, 8)), "method": "wechat_pay"})
    loader.close()
    engine.dispose()


# -- the recompute, in its own process -------------------------------------------------------
def vm_hwm_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def recompute_child(url, as_of, profile_path=None):
    """Run in a fresh process: one ``recompute.run_all`` with its steps timed. Prints JSON."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the service sets before numpy loads
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.dml import Insert

    from analytics_service import churn, clv, frames, recompute, rfm, tiers
    from crm_kit.db import make_engine, make_sessionmaker, transaction

    # VmHWM, the peak RSS of this process's own memory: ru_maxrss would not do, Linux carries
    # the parent's RSS at fork over into the child's ru_maxrss (the parent built the store)
    baseline = vm_hwm_mib()
    engine = make_engine(url)
    factory = make_sessionmaker(engine, "analytics")
    times, marks = {}, {}

    def wrap(module, name, key):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[key] = times.get(key, 0.0) + time.perf_counter() - t0
                if key in ("compute", "finish"):
                    marks[key] = vm_hwm_mib()
        setattr(module, name, timed)

    if profile_path is None:  # the profile shows the functions themselves
        for name in ("customers", "payments", "leases", "bills", "tickets", "opportunities"):
            wrap(frames, name, f"load {name}")
        wrap(frames, "scores", "previous scores")
        wrap(rfm, "compute", "rfm")
        wrap(clv, "compute", "clv")
        wrap(tiers, "assign", "tiers")
        wrap(churn, "score", "churn")
        for name in ("start", "compute", "finish", "_publish_changes", "_raise_warnings"):
            wrap(recompute, name, name.lstrip("_"))
        execute = Session.execute

        def timed_execute(self, statement, *args, **kwargs):
            if not (isinstance(statement, Insert) and statement.table.name == "customer_scores"):
                return execute(self, statement, *args, **kwargs)
            t0 = time.perf_counter()
            try:
                return execute(self, statement, *args, **kwargs)
            finally:
                times["insert scores"] = times.get("insert scores", 0.0) + \
                    time.perf_counter() - t0
        Session.execute = timed_execute
    commits = []

    @contextlib.contextmanager
    def timed_transaction():
        with transaction(factory) as session:
            yield session
            t0 = time.perf_counter()
        commits.append(time.perf_counter() - t0)

    profiler = None
    if profile_path is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    summary = recompute.run_all(timed_transaction, as_of)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)
    with factory() as session:
        from sqlalchemy import func, select

        from crm_kit.models import OutboxEvent

        outbox = session.scalar(select(func.count()).select_from(OutboxEvent))
    engine.dispose()
    print(json.dumps({
        "wall": wall, "cpu": cpu, "summary": summary, "times": times, "commits": commits,
        "baseline_mib": baseline, "peak_mib": vm_hwm_mib(),
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "hwm_after": marks, "outbox": outbox}, default=str))


def run_recompute(url, as_of, profile_path=None):
    command = [sys.executable, str(Path(__file__).resolve()), "--child-recompute", url,
               "--as-of", as_of.isoformat()]
    if profile_path:
        command += ["--child-profile", str(profile_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"recompute subprocess failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile_summary(path, top=30):
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    Path(str(path) + ".txt").write_text(text.getvalue())


def steps(result):
    """(label, seconds) of one recompute, in order; the remainders are named."""
    t = dict(result["times"])
    loads = {k[5:]: v for k, v in t.items() if k.startswith("load ")}
    load_total = sum(loads.values())
    compute_other = t["compute"] - load_total - sum(t.get(k, 0) for k in
                                                    ("rfm", "clv", "tiers", "churn"))
    publish, warnings = t.get("publish_changes", 0.0), t.get("raise_warnings", 0.0)
    finish_other = (t["finish"] - t.get("insert scores", 0.0) - t.get("previous scores", 0.0)
                    - publish - warnings)
    commits = result["commits"]  # start, compute, finish
    biggest = sorted(loads.items(), key=lambda kv: -kv[1])[:2]
    return [
        ("start (the score run row)", t.get("start", 0.0) + commits[0]),
        ("load frames (" + ", ".join(f"{k} {v:.1f}" for k, v in biggest) + ", …)",
         load_total),
        ("rfm", t.get("rfm", 0.0)),
        ("clv", t.get("clv", 0.0)),
        ("tiers", t.get("tiers", 0.0)),
        ("churn", t.get("churn", 0.0)),
        ("compute: joins", compute_other + commits[1]),
        ("finish: score rows from the frame, settings, cleanup", finish_other),
        ("write scores (INSERT customer_scores)", t.get("insert scores", 0.0)),
        ("read the previous run's scores", t.get("previous scores", 0.0)),
        ("publish customer.scored (diff, outbox, published_scores)", publish),
        ("churn warnings", warnings),
        ("commit", commits[2]),
    ]


# -- ingestion ------------------------------------------------------------------------------
def process_cpu_seconds(pid):
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          timeout=60)


def customer_created(rng, customer_id, moment):
    """customer.created as the customer service publishes it (``event_snapshot``)."""
    from crm_kit.envelope import make_envelope

    data = {"id": customer_id, "kind": "person", "name": "压测租客", "mobile": None,
            "email": None, "wechat_id": None, "gender": rng.choice(("male", "female")),
            "birthday": date(rng.randint(1970, 2003), rng.randint(1, 12),
                             rng.randint(1, 28)).isoformat(),
            "occupation": rng.choice(OCCUPATIONS), "industry": weighted(rng, INDUSTRIES),
            "employer": None, "education": None, "income_band": None, "hometown": None,
            "city": "成都", "district": weighted(rng, DISTRICTS),
            "source": weighted(rng, SOURCES), "owner_id": f"staff-{rng.randrange(STAFF):03d}",
            "stage": "first_time", "stage_entered_at": moment.isoformat(), "value_tier": None,
            "churn_risk": None, "member": {"tier": None, "points": 0},
            "consent": {"sms": False, "email": False, "wechat": False, "phone": False,
                        "in_app": False},
            "tags": [], "custom_fields": {}, "contacts": [], "leases_signed": 1,
            "merged_into": None, "archived": False, "erased": False,
            "created_at": moment.isoformat(), "updated_at": moment.isoformat()}
    return make_envelope("customer.created", data, source="customer",
                         correlation_id=f"bench-{uuid.uuid4().hex[:8]}")


def payment_received(rng, customer_id, lease_id, rent, moment):
    """payment.received as ``sales_service.payments._apply`` records it."""
    from crm_kit.envelope import make_envelope

    due = (moment - timedelta(days=rng.randint(0, 5))).date()
    data = {"payment_id": str(uuid.uuid4()), "bill_id": str(uuid.uuid4()),
            "lease_id": lease_id, "customer_id": customer_id,
            "owner_id": f"staff-{rng.randrange(STAFF):03d}", "bill_kind": "rent",
            "amount": f"{rent:.2f}", "paid_at": moment.isoformat(),
            "method": weighted(rng, METHODS), "balance": "0.00", "bill_status": "paid",
            "due_date": due.isoformat()}
    return make_envelope("payment.received", data, source="sales",
                         correlation_id=f"bench-{uuid.uuid4().hex[:8]}")


def publish_all(channel, exchange, envelopes):
    import pika

    properties = pika.BasicProperties(content_type="application/json",
                                      content_encoding="utf-8", delivery_mode=2)
    for envelope in envelopes:
        channel.basic_publish(exchange, envelope["type"],
                              json.dumps(envelope, ensure_ascii=False).encode(), properties)


def bench_ingestion(kind, args, workdir):
    """Events/s of payment.received into a fresh store through the real service."""
    import pika
    from sqlalchemy import func, select

    from crm_kit.db import make_engine
    from crm_kit.testing import ServiceProcess, wait_until
    from analytics_service.models import Customer, Payment

    if kind == "sqlite":
        url, drop = f"sqlite:///{workdir / 'analytics-ingest.db'}", None
    else:
        url, drop = fresh_database(kind, args.postgres, "ingest")
    service = ServiceProcess("analytics_service.service:AnalyticsService", AMQP_URI, url,
                             workdir, name=f"analytics-{kind}")
    engine = None
    try:
        service.start(90)
        engine = make_engine(url)
        rng = random.Random(args.seed + 2)
        moment = datetime.now(UTC)
        people = [(str(uuid.uuid4()), str(uuid.uuid4()), Decimal(rng.randrange(15, 91)) * 100)
                  for _ in range(max(1, args.events // args.payments_per_customer))]
        created = [customer_created(rng, cid, moment) for cid, _, _ in people]
        paid = [payment_received(rng, *rng.choice(people),
                                 moment - timedelta(minutes=rng.randrange(60 * 24 * 30)))
                for _ in range(args.events)]

        def count(model):
            with engine.connect() as connection:
                return connection.execute(select(func.count()).select_from(model)).scalar()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
        try:
            channel = connection.channel()  # no publisher confirms: the publisher must not be
            # the bottleneck; counting the rows proves every event arrived
            t0 = time.perf_counter()
            publish_all(channel, "customer.events", created)
            wait_until(lambda: count(Customer) >= len(created), timeout=args.timeout,
                       interval=0.05, message=f"{len(created)} customers ingested")
            customers_seconds = time.perf_counter() - t0
            t0, cpu0 = time.perf_counter(), process_cpu_seconds(service.process.pid)
            publish_all(channel, "sales.events", paid)
            published = time.perf_counter() - t0
        finally:
            connection.close()
        wait_until(lambda: count(Payment) >= len(paid), timeout=args.timeout, interval=0.05,
                   message=f"{len(paid)} payments ingested")
        seconds = time.perf_counter() - t0
        cpu = process_cpu_seconds(service.process.pid) - cpu0
        return {"events": len(paid), "seconds": seconds, "published": published, "cpu": cpu,
                "customers": len(created), "customers_seconds": customers_seconds}
    finally:
        service.stop()
        if engine is not None:
            engine.dispose()
        drop and drop()


# -- reporting -------------------------------------------------------------------------------
def rows_of(r, args):
    name, n = r["name"], r["first"]["summary"]["customers"]
    out = []
    for label, run in (("#1 (first: every customer published)", r["first"]),
                       (f"#2 (after {args.new_payments:,} new payments: changes only)",
                        r["second"])):
        seconds, peak = run["wall"], run["peak_mib"]
        met = "yes" if seconds <= TARGET_SECONDS and peak <= TARGET_RSS_MIB else "**no**"
        out.append(
            f"| {name} | full recompute {label}: {n:,} customers, {r['counts']['payments']:,} "
            f"payments; {run['summary']['published']:,} customer.scored, "
            f"{run['summary']['warnings_raised']:,} churn warnings | {seconds:.1f} s "
            f"({n / seconds:,.0f} customers/s; CPU {run['cpu']:.1f} s); peak RSS {peak:,.0f} MiB "
            f"(interpreter + libraries {run['baseline_mib']:,.0f}) | ≤ 30 s, ≤ 2 GiB | {met} |")
    if r.get("ingestion"):
        i = r["ingestion"]
        out.append(
            f"| {name} | {i['events']:,} payment.received ingested by the service "
            f"(published in {i['published']:.1f} s; before them {i['customers']:,} "
            f"customer.created in {i['customers_seconds']:.1f} s) | {i['seconds']:.1f} s "
            f"({i['events'] / i['seconds']:,.0f} events/s; service CPU "
            f"{i['cpu'] * 1000 / i['events']:.1f} ms per event) | reported | info |")
    return out


def step_table(results):
    lines = ["| step | " + " | ".join(f"{r['name']} #1 | #2" for r in results) + " |",
             "| --- | " + " | ".join("---: | ---:" for _ in results) + " |"]
    labels = [label for label, _ in steps(results[0]["first"])]
    per = [(steps(r["first"]), steps(r["second"])) for r in results]
    for k, label in enumerate(labels):
        generic = label.split(" (")[0] if label.startswith("load frames") else label
        cells = []
        for first, second in per:
            cells += [f"{first[k][1]:.2f}", f"{second[k][1]:.2f}"]
        lines.append(f"| {generic} | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        cells += [f"**{r['first']['wall']:.2f}**", f"**{r['second']['wall']:.2f}**"]
    lines.append("| total (run_all) | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        for run in (r["first"], r["second"]):
            hwm = run["hwm_after"]
            cells.append(f"{hwm.get('compute', 0):,.0f} / {hwm.get('finish', 0):,.0f}")
    lines.append("| peak RSS (MiB) after compute / after finish | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--leases", type=int, default=12_000)
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--opportunities", type=int, default=30_000)
    parser.add_argument("--new-payments", type=int, default=1_000,
                        help="payments added (dated as_of) before the second recompute")
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--payments-per-customer", type=int, default=5,
                        help="ingestion: customer.created events = events / this")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--as-of", default=None, help="the recompute's date (default today "
                                                      "in Chengdu)")
    parser.add_argument("--postgres", default=None, help="server URL without a database name")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--skip-ingestion", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds the ingestion may take at most")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="also run each recompute under cProfile (separately) into DIR")
    parser.add_argument("--child-recompute", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.as_of:
        as_of = date.fromisoformat(args.as_of)
    else:
        as_of = datetime.now(CST).date()
    if args.child_recompute:
        recompute_child(args.child_recompute, as_of, args.child_profile)
        return 0

    from crm_kit.migrations import upgrade

    load_before = os.getloadavg()[0]
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    if args.only:
        kinds = [args.only]
    workdir = Path(tempfile.mkdtemp(prefix="crm-analytics-bench-"))
    print(f"temp dir {workdir} (service logs; removed at the end unless something failed)",
          flush=True)
    ingest = not args.skip_ingestion
    if ingest:
        rabbitmqctl("delete_vhost", VHOST)  # left over by an interrupted run: start clean
        made = rabbitmqctl("add_vhost", VHOST)
        if made.returncode != 0:
            print(f"cannot create vhost {VHOST}: {made.stderr.strip()}", file=sys.stderr)
            return 1
        rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    results = []
    try:
        for kind in kinds:
            url, drop = fresh_database(kind, args.postgres, "analytics")
            try:
                upgrade(migrations_dir(), url)
                t0 = time.perf_counter()
                counts, active = build_store(url, args, as_of)
                print(f"{kind}: store built in {time.perf_counter() - t0:.0f} s: "
                      + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
                result = {"name": database_version(url), "counts": counts}
                result["first"] = run_recompute(url, as_of)
                print(f"{kind}: recompute #1 {result['first']['wall']:.1f} s, peak "
                      f"{result['first']['peak_mib']:,.0f} MiB", flush=True)
                add_new_payments(url, active, args.new_payments, as_of, args.seed)
                result["second"] = run_recompute(url, as_of)
                print(f"{kind}: recompute #2 {result['second']['wall']:.1f} s, peak "
                      f"{result['second']['peak_mib']:,.0f} MiB", flush=True)
                if args.profile:
                    directory = Path(args.profile)
                    directory.mkdir(parents=True, exist_ok=True)
                    for run in (1, 2):
                        path = directory / f"{kind}-run{run}.prof"
                        run_recompute(url, as_of, path)
                        profile_summary(path)
                    print(f"{kind}: profiles in {directory}", flush=True)
            finally:
                drop and drop()
            if ingest:
                result["ingestion"] = bench_ingestion(kind, args, workdir)
                i = result["ingestion"]
                print(f"{kind}: ingestion {i['events'] / i['seconds']:,.0f} events/s",
                      flush=True)
            results.append(result)
            for line in rows_of(result, args):
                print(line, flush=True)
        shutil.rmtree(workdir, ignore_errors=True)  # kept (with the service's log) on failure
    finally:
        if ingest:
            rabbitmqctl("delete_vhost", VHOST)
    table = ["| database | what | measured | target | met |",
             "| --- | --- | --- | --- | --- |"]
    for result in results:
        table += rows_of(result, args)
    detail = step_table(results)
    counts = results[0]["counts"]
    header = [
        "# Analytics bench results", "",
        f"- date: {datetime.now().astimezone().isoformat(timespec='seconds')}; as_of "
        f"{as_of.isoformat()}; seed {args.seed}",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.platform()}; "
        f"load average before the run: {load_before:.2f}",
        f"- Python {platform.python_version()}, "
        + ", ".join(f"{name} {importlib.metadata.version(name)}"
                    for name in ("pandas", "numpy", "SQLAlchemy", "psycopg2-binary", "nameko"))
        + f", {', '.join(r['name'] for r in results)}; revision {git_revision()}",
        "- store: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), "",
    ]
    report = "\n".join(header + table + ["", "Seconds per step of the recompute:", ""]
                       + detail) + "\n"
    print("\n" + "\n".join(table) + "\n\n" + "\n".join(detail))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics-latest.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
