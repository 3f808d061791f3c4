"""Marketing benchmark: launching a campaign to 100,000 customers — first target
≤ 30 s from the launch until every recipient is recorded in the delivery log, memory reported.

For each database (SQLite, and PostgreSQL with ``--postgres``):
1. Setup, not timed: a freshly migrated marketing database gets N customers in its copy tables
   (``customers`` + ``customer_tags``) in bulk, with the variety of a real city: Chinese names,
   Chengdu districts, ~85% SMS consent, some erased or archived, some without a district (the
   template names it), a tag on most, and ~3% who already had two campaign messages this week
   (the frequency cap skips them). Every customer lives in 成都, so the segment
   ``{"city": ["成都"]}`` holds all N.
2. The real marketing service process (``python -m crm_kit.run``, as ``make up`` starts it) on a
   private vhost, with ``CRM_MARKETING_DISPATCH_SECONDS=0.2``. Through the stock nameko proxy:
   create the segment, create an SMS campaign with a personalised template, launch it. Measured:
   - launch RPC → the campaign leaves ``launching``: every member recorded (queued, or skipped
     with its reason); checked: N messages of the campaign in the database;
   - launch RPC → ``completed``: every queued message sent through the log channel;
   - the service's RSS at rest before the launch and its peak during the campaign (VmHWM of
     /proc/<pid>/status, reset before the launch through /proc/<pid>/clear_refs);
   - the service's CPU seconds in each phase (/proc/<pid>/stat), steadier than wall time on a
     shared machine;
   - launch → the outbox drained (a ``message.sent`` and a ``message.delivered`` event per
     message, published to RabbitMQ by the relay with publisher confirms).
3. Event ingestion: 5,000 ``customer.created`` envelopes published to ``customer.events`` as the
   customer service's relay does; time until all 5,000 customers are in the copy → events/s.

Prints a Markdown table and writes it to ``bench/results/marketing.md`` (git-ignored).

    .venv/bin/python bench/marketing_bench.py [--customers 100000] [--events 5000]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--only postgresql] [--py-spy DIR]

With ``--py-spy DIR`` (needs ``py-spy`` on PATH or in the venv) the service is recorded during
the campaign and the ingestion, as collapsed stacks in DIR.
"""
import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, insert, select, text

from crm_kit.db import make_engine
from crm_kit.envelope import make_envelope
from crm_kit.migrations import upgrade
from crm_kit.models import OutboxEvent
from crm_kit.testing import ServiceProcess, wait_until

import marketing_service
from marketing_service.models import AudienceCustomer, AudienceTag, Campaign, Message
from bench_common import (cpu_model, database_version, fresh_database, git_revision,  # noqa: E402
                          reset_peak)

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
MIGRATIONS = Path(marketing_service.__file__).parent / "migrations"
VHOST = "crm-bench-marketing"
AMQP_URI = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
ACTOR = {"id": "bench-marketer", "roles": ["marketer"]}
TARGET_SECONDS = 30.0
TEMPLATE = "{name}您好！{district}的新房源已上线，首月租金九折，回复1预约看房。"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鑫浩宇轩然子涵欣怡梓晨思雨博文"
DISTRICTS = ["锦江区", "青羊区", "金牛区", "武侯区", "成华区", "高新区", "天府新区", "龙泉驿区",
             "青白江区", "新都区", "温江区", "双流区", "郫都区", "新津区"]
OCCUPATIONS = [("engineer", "software", "天府软件园"), ("teacher", "education", "成都七中"),
               ("nurse", "healthcare", "华西医院"), ("designer", "media", "成都传媒集团"),
               ("sales", "retail", "春熙路商场"), ("student", None, None),
               ("accountant", "finance", "成都银行"), ("chef", "catering", None),
               (None, None, None)]
SOURCES = ["website", "referral", "walk_in", "wechat", "agent", "event"]
STAGES = ["potential", "potential", "intent", "negotiating", "signed", "renewed", "lost"]
TAGS = ["学生", "白领", "养宠物", "需要停车位", "合租", "整租", "地铁沿线", "短租", "VIP", "企业客户"]


# -- setup ---------------------------------------------------------------------------------
def customer_row(rng, moment):
    """One customer of marketing's copy, with the variety of a real customer base."""
    customer_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    roll = rng.random()
    erased, archived = roll < 0.01, 0.01 <= roll < 0.04
    occupation, industry, employer = rng.choice(OCCUPATIONS)
    birthday = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 40 * 365))
    has_email, has_wechat = rng.random() < 0.55, rng.random() < 0.75
    row = {
        "id": customer_id,
        "name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN)
                                               for _ in range(rng.choice((1, 2, 2)))),
        "mobile": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        if rng.random() < 0.98 else None,
        "email": f"user{rng.randrange(10**8)}@example.com" if has_email else None,
        "wechat_id": f"wx_{rng.randrange(16**10):010x}" if has_wechat else None,
        "gender": rng.choice(("male", "female", "female", "male", None)),
        "birthday": birthday, "birthday_md": birthday.strftime("%m-%d"),
        "occupation": occupation, "industry": industry, "employer": employer,
        "city": "成都",
        "district": rng.choice(DISTRICTS) if rng.random() < 0.98 else None,
        "source": rng.choice(SOURCES), "owner_id": f"staff-{rng.randrange(40)}",
        "stage": rng.choice(STAGES), "value_tier": rng.choice(("high", "medium", "low", None)),
        "rfm_segment": rng.choice(("champions", "loyal", "at_risk", "hibernating", None)),
        "member_tier": rng.choice(("regular", "regular", "silver", "gold")),
        "consent": {"sms": rng.random() < 0.85, "email": has_email and rng.random() < 0.6,
                    "wechat": has_wechat and rng.random() < 0.7, "phone": rng.random() < 0.3,
                    "in_app": rng.random() < 0.5},
        "merged_into": None, "archived": archived, "erased": False,
        "profile_at": moment, "stage_at": moment, "scored_at": None,
    }
    if erased:  # what audience.erase leaves of a person
        row.update(name="(erased)", mobile=None, email=None, wechat_id=None, gender=None,
                   birthday=None, birthday_md=None, occupation=None, industry=None,
                   employer=None, district=None, source=None, consent={}, erased=True)
    return row


def load_audience(url, count, rng):
    """Migrate, then insert ``count`` customers, their tags and some earlier campaign messages
    in bulk; returns {"customers", "tags", "capped"}."""
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    moment = datetime.now(timezone.utc)
    customers, tags, earlier = [], [], []
    for _ in range(count):
        row = customer_row(rng, moment)
        customers.append(row)
        if not row["erased"] and rng.random() < 0.8:
            for tag in rng.sample(TAGS, rng.choice((1, 1, 2, 3))):
                tags.append({"customer_id": row["id"], "tag": tag})
        if not row["erased"] and rng.random() < 0.03:  # two campaign messages this week
            for days, old in ((2, "old-1"), (4, "old-2")):
                earlier.append({"customer_id": row["id"], "occasion": f"campaign:{old}",
                                "campaign_id": old, "channel": "sms", "recipient": row["mobile"],
                                "body": "上周的活动", "status": "delivered", "attempts": 1,
                                "created_at": moment - timedelta(days=days),
                                "sent_at": moment - timedelta(days=days),
                                "delivered_at": moment - timedelta(days=days)})
    with engine.begin() as connection:
        for model, rows in ((AudienceCustomer, customers), (AudienceTag, tags),
                            (Message, earlier)):
            for start in range(0, len(rows), 5000):
                connection.execute(insert(model), rows[start:start + 5000])
        if engine.dialect.name == "postgresql":  # autovacuum would, a minute later
            connection.execute(text("ANALYZE"))
        # not on SQLite: the service never runs ANALYZE there, and statistics taken now (every
        # message "delivered") make SQLite scan the whole log for queued messages
    engine.dispose()
    return {"customers": len(customers), "tags": len(tags), "capped": len(earlier) // 2}


def ingest_envelope(rng, moment):
    """A customer.created envelope as the customer service's outbox relay publishes it."""
    row = customer_row(rng, moment)
    data = {"id": row["id"], "kind": "person", "name": row["name"], "mobile": row["mobile"],
            "email": row["email"], "wechat_id": row["wechat_id"], "gender": row["gender"],
            "birthday": row["birthday"].isoformat() if row["birthday"] else None,
            "occupation": row["occupation"], "industry": row["industry"],
            "employer": row["employer"], "education": None, "income_band": None,
            "hometown": None, "city": row["city"], "district": row["district"],
            "source": row["source"], "owner_id": row["owner_id"], "stage": "potential",
            "stage_entered_at": moment.isoformat(), "value_tier": None, "churn_risk": None,
            "member": {"tier": row["member_tier"], "points": 0}, "consent": row["consent"],
            "tags": rng.sample(TAGS, rng.choice((0, 1, 1, 2))), "custom_fields": {},
            "contacts": [], "leases_signed": 0, "merged_into": None,
            "archived": False, "erased": False, "created_at": moment.isoformat(),
            "updated_at": moment.isoformat()}
    return make_envelope("customer.created", data, source="customer",
                         correlation_id=f"bench-{uuid.uuid4().hex[:8]}")


# -- measuring -----------------------------------------------------------------------------
def proc_status(pid):
    """{"VmRSS": MiB, "VmHWM": MiB} of a process."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


def cpu_seconds(pid):
    """User + system CPU seconds the process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU seconds all cores have been busy (not idle nor waiting for I/O) since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def spy(directory, pid, label):
    """With ``--py-spy DIR``: record the service with py-spy during the block (collapsed stacks
    ``DIR/<label>.txt``; a flame graph: https://www.speedscope.app reads them)."""
    if not directory:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    Path(directory).mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen([binary, "record", "--pid", str(pid), "--format", "raw",
                                 "--rate", "200", "--output",
                                 str(Path(directory) / f"{label}.txt")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the work starts
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          timeout=60)


def bench_database(kind, url, args):
    """Everything of one database; returns the measured figures."""
    rng = random.Random(17)
    started = time.perf_counter()
    loaded = load_audience(url, args.customers, rng)
    print(f"[{kind}] loaded {loaded['customers']:,} customers, {loaded['tags']:,} tags, "
          f"{loaded['capped']:,} already at the frequency cap in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    engine = make_engine(url)
    workdir = Path(tempfile.mkdtemp(prefix="crm-marketing-bench-"))
    rabbitmqctl("delete_vhost", VHOST)
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    service = ServiceProcess("marketing_service.service:MarketingService", AMQP_URI, url,
                             workdir, name="marketing",
                             env={"CRM_MARKETING_DISPATCH_SECONDS": "0.2"})
    result = {"kind": kind, "customers": args.customers, "log": str(service.log_path)}
    finished = False
    try:
        service.start(60)
        pid = service.process.pid
        from nameko.standalone.rpc import ClusterRpcProxy

        with ClusterRpcProxy({"AMQP_URI": AMQP_URI}, timeout=120) as rpc:
            t0 = time.perf_counter()
            segment = rpc.marketing.create_segment(
                {"name": "成都全部客户", "rules": {"city": ["成都"]}}, ACTOR)
            preview = rpc.marketing.preview_segment(segment["id"], 1, 50)
            result["preview_seconds"] = time.perf_counter() - t0
            assert preview["total"] == args.customers, preview["total"]
            campaign = rpc.marketing.create_campaign(
                {"name": "新房源上线", "segment_id": segment["id"], "channel": "sms",
                 "template": TEMPLATE}, ACTOR)
            time.sleep(1.0)  # let the process settle: RSS at rest
            result["rss_rest"] = proc_status(pid)["VmRSS"]
            result["hwm_before"] = proc_status(pid)["VmHWM"]
            result["peak_reset"] = reset_peak(pid)
            peak_sampled = result["rss_rest"]

            marks = {}
            with spy(args.py_spy, pid, f"{kind}-campaign"), engine.connect() as connection:
                cpu0, busy0 = cpu_seconds(pid), machine_busy_seconds()
                launch_t0 = time.perf_counter()
                rpc.marketing.launch_campaign(campaign["id"], ACTOR)
                result["launch_rpc_ms"] = (time.perf_counter() - launch_t0) * 1000
                deadline = launch_t0 + args.timeout
                while time.perf_counter() < deadline:
                    status = connection.execute(select(Campaign.status).where(
                        Campaign.id == campaign["id"])).scalar()
                    connection.rollback()  # a fresh snapshot each time
                    moment = time.perf_counter() - launch_t0
                    peak_sampled = max(peak_sampled, proc_status(pid)["VmRSS"])
                    if status != "launching" and "recorded" not in marks:
                        marks["recorded"] = moment
                        marks["cpu_recorded"] = cpu_seconds(pid) - cpu0
                        print(f"[{kind}] every recipient recorded after {moment:.1f} s",
                              flush=True)
                    if status == "completed":
                        marks["completed"] = moment
                        marks["cpu_completed"] = cpu_seconds(pid) - cpu0
                        marks["busy_completed"] = machine_busy_seconds() - busy0
                        print(f"[{kind}] completed after {moment:.1f} s", flush=True)
                        break
                    time.sleep(0.05)
            result.update(marks)
            if "completed" not in marks:
                raise AssertionError(f"campaign not completed after {args.timeout} s "
                                     f"(marks {marks}); log:\n{service.log()}")
            result["peak_sampled"] = peak_sampled
            result["hwm"] = proc_status(pid)["VmHWM"]
            with engine.connect() as connection:
                row = connection.execute(select(
                    Campaign.audience, Campaign.launched_at, Campaign.recorded_at,
                    Campaign.completed_at).where(Campaign.id == campaign["id"])).one()
                by_status = dict(connection.execute(
                    select(Message.status, func.count()).where(
                        Message.campaign_id == campaign["id"]).group_by(Message.status)).all())
                skipped = dict(connection.execute(
                    select(Message.skip_reason, func.count()).where(
                        Message.campaign_id == campaign["id"], Message.status == "skipped")
                    .group_by(Message.skip_reason)).all())
            recorded = sum(by_status.values())
            assert recorded == args.customers == row.audience, (recorded, row.audience)
            assert by_status.get("queued", 0) == 0, by_status
            result.update(recorded_messages=recorded, by_status=by_status, skipped=skipped,
                          service_recorded=(row.recorded_at - row.launched_at).total_seconds(),
                          service_completed=(row.completed_at - row.launched_at).total_seconds())

            # the outbox: a message.sent and a message.delivered per delivered message
            backlog_query = select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.published_at.is_(None))
            with engine.connect() as connection:
                result["outbox_events"] = connection.execute(
                    select(func.count()).select_from(OutboxEvent)).scalar()

            def drained():
                with engine.connect() as connection:
                    return connection.execute(backlog_query).scalar() == 0
            try:
                wait_until(drained, timeout=max(1.0, launch_t0 + args.outbox_timeout
                                                - time.perf_counter()),
                           interval=0.25, message="the outbox to drain")
                result["outbox_drained"] = time.perf_counter() - launch_t0
            except AssertionError:
                with engine.connect() as connection:
                    result["outbox_left"] = connection.execute(backlog_query).scalar()
            print(f"[{kind}] outbox: {result['outbox_events']:,} events, drained after "
                  f"{result.get('outbox_drained', float('nan')):.1f} s "
                  f"(left: {result.get('outbox_left', 0):,})", flush=True)

        with spy(args.py_spy, pid, f"{kind}-ingestion"):
            result.update(bench_ingestion(engine, pid, args, rng))
        print(f"[{kind}] ingested {args.events:,} customer.created in "
              f"{result['ingest_seconds']:.1f} s", flush=True)
        finished = True
    finally:
        service.stop()
        engine.dispose()
        rabbitmqctl("delete_vhost", VHOST)
        if finished:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"[{kind}] the service's log is kept: {service.log_path}", file=sys.stderr)
    return result


def bench_ingestion(engine, pid, args, rng):
    """Publish ``args.events`` customer.created envelopes; seconds until all are in the copy."""
    import pika

    moment = datetime.now(timezone.utc)
    envelopes = [ingest_envelope(rng, moment) for _ in range(args.events)]
    with engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(AudienceCustomer)).scalar()
    expected = before + args.events
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URI))
    channel = connection.channel()  # no publisher confirms: the publisher must not be the
    # bottleneck; all_in() below is what proves every event arrived
    properties = pika.BasicProperties(content_type="application/json",
                                      content_encoding="utf-8", delivery_mode=2)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    try:
        for envelope in envelopes:
            channel.basic_publish("customer.events", "customer.created",
                                  json.dumps(envelope, ensure_ascii=False).encode(), properties)
        published = time.perf_counter() - t0
    finally:
        connection.close()

    def all_in():
        with engine.connect() as db:
            return db.execute(select(func.count()).select_from(AudienceCustomer)).scalar() \
                >= expected
    wait_until(all_in, timeout=args.timeout, interval=0.05,
               message=f"{args.events} customers ingested")
    seconds = time.perf_counter() - t0
    return {"ingest_seconds": seconds, "ingest_publish": published,
            "ingest_cpu": cpu_seconds(pid) - cpu0,
            "ingest_hwm": proc_status(pid)["VmHWM"]}


# -- reporting -----------------------------------------------------------------------------
def rows_of(r, args):
    kind, n = r["name"], r["customers"]
    by_status, skipped = r["by_status"], r["skipped"]
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in
                        sorted(skipped.items(), key=lambda item: -item[1]))
    recorded = r.get("recorded")
    met = "yes" if recorded is not None and recorded <= TARGET_SECONDS else "**no**"
    outbox = (f"{r['outbox_drained']:.1f} s" if "outbox_drained" in r
              else f"not drained after {args.outbox_timeout:.0f} s ({r['outbox_left']:,} left)")
    peak = r["hwm"] if r["peak_reset"] else r["peak_sampled"]
    return [
        f"| {kind} | launch → every recipient recorded ({r['recorded_messages']:,} messages: "
        f"{by_status.get('delivered', 0):,} to send, skipped {reasons}) | {recorded:.1f} s "
        f"({n / recorded:,.0f} recipients/s; service CPU {r['cpu_recorded']:.1f} s) "
        f"| ≤ 30 s | {met} |",
        f"| {kind} | launch → completed (every queued message sent through the log channel) | "
        f"{r['completed']:.1f} s (service CPU {r['cpu_completed']:.1f} s; all cores busy "
        f"{r['busy_completed']:.1f} s) | — | info |",
        f"| {kind} | service RSS at rest before the launch → peak during the campaign "
        f"(VmHWM{'' if r['peak_reset'] else ' sampled'}) | {r['rss_rest']:.0f} → {peak:.0f} MiB "
        f"(+{peak - r['rss_rest']:.0f}) | reported | info |",
        f"| {kind} | launch → outbox drained ({r['outbox_events']:,} events published) | "
        f"{outbox} | — | info |",
        f"| {kind} | {args.events:,} customer.created events ingested (published in "
        f"{r['ingest_publish']:.1f} s) | {r['ingest_seconds']:.1f} s "
        f"({args.events / r['ingest_seconds']:,.0f} events/s; service CPU "
        f"{r['ingest_cpu'] * 1000 / args.events:.1f} ms per event) | — | info |",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--postgres", default=None, help="server URL without a database name")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None,
                        help="run one database only")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds the campaign and the ingestion may take at most")
    parser.add_argument("--outbox-timeout", type=float, default=300.0,
                        help="seconds after the launch to wait for the outbox to drain")
    parser.add_argument("--py-spy", metavar="DIR", default=None,
                        help="record the service with py-spy during the campaign (until it "
                             "completes) and the ingestion; the profiler lowers the figures")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    if args.only:
        kinds = [args.only]
    results = []
    for kind in kinds:
        url, drop = fresh_database(kind, args.postgres, "marketing")
        try:
            result = bench_database(kind, url, args)
            result["name"] = database_version(url)
        finally:
            drop and drop()
        results.append(result)
        for line in rows_of(result, args):
            print(line, flush=True)
    table = ["| database | what | measured | target | met |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        table += rows_of(result, args)
    header = [
        "# Marketing bench results", "",
        f"- date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), {platform.platform()}; "
        f"load average before the run: {load_before:.2f}",
        f"- Python {platform.python_version()}, "
        + ", ".join(f"{name} {importlib.metadata.version(name)}"
                    for name in ("nameko", "SQLAlchemy", "psycopg2-binary", "pika"))
        + f", {', '.join(r['name'] for r in results)}; revision {git_revision()}",
        f"- {args.customers:,} customers, SMS campaign, CRM_MARKETING_DISPATCH_SECONDS=0.2, "
        f"log channel; {args.events:,} customer.created events", "",
    ]
    report = "\n".join(header + table) + "\n"
    print("\n" + "\n".join(table))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "marketing.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
