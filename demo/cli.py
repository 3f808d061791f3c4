"""`make demo` (= `python -m demo`): fill a running CRM with a realistic Chengdu operator.

Builds the deterministic plan of ``demo.plan`` for ``--seed`` and the sizes, then sends it
through the gateway's public API (``demo.send``) with a thread pool, a progress bar on stderr
and a summary at the end. `make up` must be running (in another terminal).

Options (all optional): ``--url`` (default ``$CRM_DEMO_URL``, else
``http://$CRM_GATEWAY_BIND``, else http://127.0.0.1:8000), ``--seed`` (default 8),
``--customers`` (10,000; up to 100,000), ``--units`` (2,000), ``--leases`` (12,000),
``--tickets`` (20,000) — the sizes not given scale with ``--customers`` —, ``--workers`` (8),
``--admin-username``/``--admin-password`` (default ``$CRM_ADMIN_USERNAME``/
``$CRM_ADMIN_PASSWORD``, else ``<data dir>/admin-credentials.txt``, which `make up` writes when
it generated the admin's password), ``--data-dir`` (``$CRM_DATA_DIR`` or ./data),
``--staff-password`` (the demo staff's one password; default ``$CRM_DEMO_STAFF_PASSWORD``, else
the one kept in ``<data dir>/demo-staff-credentials.txt``, else a new one written there),
``--today`` (the plan's last day; only with ``--dry-run``), ``--dry-run`` (build the plan and
print its counts and digest; send nothing), ``--quiet`` (no progress bar), ``--timeout``,
``--staff-rate`` (calls a second per staff member, default 18).
"""
import argparse
import os
import secrets
import signal
import sys
import time
from datetime import date
from pathlib import Path

from demo import plan as planning
from demo.client import Api, ApiError
from demo.send import ADMIN, Runner, StaffConflict

DEFAULT_SEED = 8
STAFF_CREDENTIALS = "demo-staff-credentials.txt"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Fill a running CRM (make up) with a realistic Chengdu rental operator "
                    "through its public API: staff, units, customers, three years of leases "
                    "with bills and payments, tickets with ratings, campaigns.")
    bind = os.environ.get("CRM_GATEWAY_BIND")
    parser.add_argument("--url", default=os.environ.get("CRM_DEMO_URL") or (
        f"http://{bind}" if bind else "http://127.0.0.1:8000"),
        help="the gateway (default: $CRM_DEMO_URL, else http://$CRM_GATEWAY_BIND, else "
             "http://127.0.0.1:8000)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"the same seed and sizes give the same data (default {DEFAULT_SEED})")
    for name, default in planning.DEFAULTS.items():
        parser.add_argument(f"--{name}", type=int, default=None, metavar="N",
                            help=f"default {default:,}" + (
                                f", at most {planning.MAXIMUM[name]:,}" if name == "customers"
                                else ", else scaled with --customers"))
    parser.add_argument("--workers", type=int, default=8, help="concurrent requests (default 8)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--staff-rate", type=float, default=18.0, metavar="PER_SECOND",
                        help="at most this many calls a second as one staff member (default 18: "
                             "under the gateway's default CRM_RATE_LIMIT of 1200 a minute; "
                             "0: no pacing)")
    parser.add_argument("--data-dir", default=os.environ.get("CRM_DATA_DIR") or "data",
                        help="where make up keeps admin-credentials.txt (default $CRM_DATA_DIR "
                             "or ./data)")
    parser.add_argument("--admin-username", default=os.environ.get("CRM_ADMIN_USERNAME"))
    parser.add_argument("--admin-password", default=os.environ.get("CRM_ADMIN_PASSWORD"))
    parser.add_argument("--staff-password", default=os.environ.get("CRM_DEMO_STAFF_PASSWORD"),
                        help="the password of every demo staff account")
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="the plan's last day (YYYY-MM-DD); with --dry-run only")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the plan, print what it holds and its digest, send nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        args.sizes = planning.resolve_sizes(args.customers, args.units, args.leases,
                                            args.tickets)
    except ValueError as exc:
        parser.error(str(exc))
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.today and not args.dry_run and args.today != date.today():
        parser.error("--today is for --dry-run: data is sent as of today")
    return args


def read_pairs(path):
    """``key: value`` lines of a credentials file."""
    pairs = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            pairs[key.strip()] = value.strip()
    return pairs


def admin_credentials(args):
    username, password = args.admin_username, args.admin_password
    path = Path(args.data_dir) / "admin-credentials.txt"
    if not password and path.exists():
        saved = read_pairs(path)
        password = saved.get("password")
        username = username or saved.get("username")
    if not password:
        sys.exit(f"demo: no admin password: set CRM_ADMIN_PASSWORD (or --admin-password), or "
                 f"run it where `make up` keeps {path}")
    return username or "admin", password


def staff_password(args):
    if args.staff_password:
        return args.staff_password
    path = Path(args.data_dir) / STAFF_CREDENTIALS
    if path.exists():
        saved = read_pairs(path).get("password")
        if saved:
            return saved
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# every staff account the demo (make demo) created signs in with this\n"
                     f"password: {password}\n")
    return password


def print_plan(plan, stream=sys.stdout):
    meta = plan["meta"]
    print(f"plan: seed {meta['seed']}, as of {meta['today']}, digest {planning.digest(plan)}",
          file=stream)
    for name, count in planning.summary(plan).items():
        print(f"  {name:<22} {count:>9,}", file=stream)


def report(runner, api, elapsed, password_hint, stream=sys.stdout):
    stats = api.stats
    print("\nDemo data", file=stream)
    kinds = []
    for (kind, _), _n in runner.outcomes.items():
        if kind not in kinds:
            kinds.append(kind)
    print(f"  {'':<30} {'created':>9} {'skipped':>8} {'failed':>7}", file=stream)
    for kind in kinds:
        print(f"  {kind:<30} {runner.outcomes[(kind, 'created')]:>9,} "
              f"{runner.outcomes[(kind, 'skipped')]:>8,} {runner.outcomes[(kind, 'failed')]:>7,}",
              file=stream)
    rate = stats.requests / elapsed if elapsed else 0.0
    print(f"\n  {stats.requests:,} requests in {elapsed:.0f} s = {rate:.0f} req/s "
          f"({runner.workers} workers)", file=stream)
    if stats.waits:
        print("  waits: " + ", ".join(f"{n:,}× {why}" for why, n in stats.waits.items()),
              file=stream)
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(stats.statuses.items()))
    print(f"  answers: {statuses}", file=stream)
    print("  phases: " + ", ".join(f"{label} {seconds:.0f} s"
                                   for label, seconds in runner.phase_times), file=stream)
    if runner.examples:
        print("\n  first failures:", file=stream)
        for example in runner.examples:
            print("   - " + example.strip().replace("\n", "\n     "), file=stream)
    staff = runner.plan["staff"]
    print(f"\n  Sign in as any demo staff member, e.g. {_first(staff, 'sales_supervisor')} "
          f"(supervisor), {_first(staff, 'customer_manager')} (customer manager), "
          f"{_first(staff, 'service_agent')} (service agent), {_first(staff, 'marketer')} "
          f"(marketer), {_first(staff, 'executive')} (executive); {password_hint}.",
          file=stream)


def _first(staff, role):
    return next((s["key"] for s in staff if role in s["roles"]), "-")


def _stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C: queued work dropped, summary printed


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    today = args.today or date.today()
    started = time.monotonic()
    plan = planning.build_plan(args.seed, args.sizes, today)
    print_plan(plan)
    if args.dry_run:
        return 0
    api = Api(args.url, timeout=args.timeout, staff_rate=args.staff_rate,
              log=lambda message: print(f"demo: {message}", file=sys.stderr, flush=True))
    deadline = time.monotonic() + 30
    while not api.ready():
        if time.monotonic() > deadline:
            print(f"demo: the CRM at {args.url} is not ready (GET /readyz). Start it with "
                  "`make up` in another terminal, or give --url.", file=sys.stderr)
            return 2
        time.sleep(1)
    username, password = admin_credentials(args)
    api.add_account(ADMIN, username, password)
    demo_password = staff_password(args)
    if args.staff_password:
        hint = "their password is the one given"
    else:
        hint = f"their password is in {Path(args.data_dir) / STAFF_CREDENTIALS}"
    runner = Runner(api, plan, workers=args.workers, progress=not args.quiet,
                    log=lambda message: print(f"demo: {message}", file=sys.stderr, flush=True))
    api.stats.started = time.monotonic()
    try:
        api.token(ADMIN)
        runner.run(demo_password, wait_timeout=max(60.0, args.sizes["customers"] / 100))
    except (ApiError, StaffConflict) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        report(runner, api, time.monotonic() - started, hint)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        report(runner, api, time.monotonic() - started, hint)
        return 130
    report(runner, api, time.monotonic() - api.stats.started, hint)
    return 1 if runner.failures() else 0
