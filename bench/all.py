"""`make bench`: every benchmark of bench/, one after another, and one table of their results.

    .venv/bin/python bench/all.py [--postgres postgresql://postgres@127.0.0.1:5432 | --no-postgres]
        [--only gateway,relay,sales,service_desk,marketing,analytics] [--quick]

Each benchmark runs as its own process (they start their own services, vhosts and scratch
databases and clean up after themselves), its output goes to the terminal as it comes, and the
Markdown tables it prints are collected into ``bench/results/all.md`` (git-ignored) under its
name, with its command, exit status and duration. ``--quick`` runs smaller sizes (a smoke run of
every bench in a few minutes; the figures are then not comparable with the targets).
PostgreSQL is used where a bench supports it, at ``--postgres`` (default: env
``BENCH_POSTGRES`` or the local server if it answers). The exit status is 1 if any bench failed: an error,
calls failing, events lost, or (the relay bench) its target missed. The other targets are
reported in each bench's table ("met"), not turned into a failure.

bench/README.md says what each bench measures and how to read it.
"""
import argparse
import datetime
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench_common import cpu_model, git_revision

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432"

# name -> (script, arguments, quick arguments, takes --postgres)
BENCHES = {
    "gateway": ("run.py", [], ["--duration", "2", "--warmup", "0.5"], False),
    "relay": ("relay_bench.py", [], ["--events", "5000"], True),
    "sales": ("sales_bench.py", [], ["--leases", "1000", "--bills", "100000"], True),
    "service_desk": ("service_desk_bench.py", [], ["--articles", "1000", "--tickets", "100"],
                     False),
    "marketing": ("marketing_bench.py", [], ["--customers", "10000", "--events", "500"], True),
    "analytics": ("analytics_bench.py", [],
                  ["--customers", "10000", "--payments", "100000", "--leases", "1200",
                   "--tickets", "2000", "--opportunities", "3000", "--events", "500"], True),
}


def postgres_answers(url):
    host_port = url.rsplit("@", 1)[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port or 5432)), timeout=2).close()
        return True
    except OSError:
        return False


def tables(output):
    """The Markdown tables (runs of lines starting with '|') a bench printed, in order."""
    blocks, current = [], []
    for line in output.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return ["\n".join(block) for block in blocks]


def run(name, args, postgres):
    script, arguments, quick, takes_postgres = BENCHES[name]
    command = [sys.executable, str(ROOT / "bench" / script),
               *(quick if args.quick else arguments)]
    if takes_postgres and postgres:
        command += ["--postgres", postgres]
    print(f"\n[bench/all] {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    output = []
    for line in process.stdout:
        sys.stdout.write(line)
        output.append(line)
    status = process.wait()
    return {"name": name, "command": " ".join(["bench/" + script, *command[2:]]),
            "status": status, "seconds": time.monotonic() - started,
            "tables": tables("".join(output))}


def render(results, args, postgres):
    lines = [
        "# All benchmarks", "",
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores {cpu_model()}, "
        f"load average at the end {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
        f"revision {git_revision()}; PostgreSQL: {postgres or 'not used'}"
        + ("; **quick sizes** (not comparable with the targets)" if args.quick else "") + ".",
        "", "| bench | command | status | minutes |", "| --- | --- | --- | ---: |",
    ]
    for r in results:
        status = "ok" if r["status"] == 0 else f"**failed (exit {r['status']})**"
        lines.append(f"| {r['name']} | `{r['command']}` | {status} | {r['seconds'] / 60:.1f} |")
    for r in results:
        lines += ["", f"## {r['name']}", ""]
        lines += ["\n\n".join(r["tables"]) or "(no table printed; see the output above)"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES),
                        help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", LOCAL_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    postgres = None if args.no_postgres or not postgres_answers(args.postgres) else args.postgres
    results = []
    try:
        for name in names:
            results.append(run(name, args, postgres))
    except KeyboardInterrupt:
        print("\n[bench/all] interrupted; writing what finished", flush=True)
    report = render(results, args, postgres)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "all.md").write_text(report)
    print("\n" + report.split("\n## ")[0])
    print(f"[bench/all] every table: {RESULTS / 'all.md'}")
    return 0 if results and all(r["status"] == 0 for r in results) and \
        len(results) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
