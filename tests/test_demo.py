"""`make demo`: the demo data set, sent through the public API of a system started as `make up`
starts it, is there afterwards (counts, overdue bills, rated tickets, campaigns), a second run
adds nothing and fails on nothing, and the plan behind it is reproducible from its seed."""
import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests

from e2e_support import ADMIN, ROOT

sys.path.append(str(ROOT))  # the demo package lives at the repository's root

from demo import plan as demo_plan  # noqa: E402
from demo.cli import DEFAULT_SEED  # noqa: E402
from demo.send import payments_for, spread  # noqa: E402

SIZES = {"customers": 60, "units": 20, "leases": 40, "tickets": 50}
ARGS = [arg for name, value in SIZES.items() for arg in (f"--{name}", str(value))]
DAY = date(2026, 11, 24)


# ---------------------------------------------------------------- against the running system

def run_demo(system, data_dir):
    """`make demo ARGS=...` runs `python -m demo ARGS` from the repository root: the same here,
    with the admin's password only in the credentials file `make up` writes when it generated
    it (the demo's fallback when CRM_ADMIN_PASSWORD is not set)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRM_ADMIN_USERNAME", "CRM_ADMIN_PASSWORD", "CRM_DEMO_STAFF_PASSWORD")}
    env["CRM_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "demo", "--url", system.url, *ARGS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


class Admin:
    def __init__(self, url, username, password):
        self.base = url + "/api/v1"
        token = requests.post(self.base + "/auth/token", timeout=10,
                              json={"username": username, "password": password})
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def get(self, path, **params):
        response = requests.get(self.base + path, headers=self.headers, params=params, timeout=30)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def total(self, path, **params):
        return self.get(path, per_page=1, **params)["total"]

    def all(self, path, **params):
        items, page = [], 1
        while True:
            body = self.get(path, page=page, per_page=200, **params)
            items += body["items"]
            if page * 200 >= body["total"]:
                return items
            page += 1


def totals(admin):
    return {path: admin.total(path) for path in (
        "/customers", "/units", "/leases", "/bills", "/tickets", "/opportunities", "/viewings",
        "/tasks", "/campaigns", "/segments", "/care-rules", "/kb/articles", "/staff")}


@pytest.mark.e2e
def test_make_demo_fills_the_system_through_the_api_and_a_second_run_adds_nothing(
        system, tmp_path):
    data_dir = tmp_path / "demo-data"
    data_dir.mkdir()
    (data_dir / "admin-credentials.txt").write_text(
        f"username: {ADMIN[0]}\npassword: {ADMIN[1]}\n")

    done = run_demo(system, data_dir)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    assert "Demo data" in done.stdout and "req/s" in done.stdout
    assert "first failures" not in done.stdout

    admin = Admin(system.url, *ADMIN)
    plan = demo_plan.build_plan(DEFAULT_SEED, SIZES, date.today())
    counts = totals(admin)
    assert counts["/customers"] == SIZES["customers"]
    assert counts["/units"] == SIZES["units"]
    assert counts["/leases"] == SIZES["leases"]  # renewals are leases too
    assert counts["/tickets"] == SIZES["tickets"]
    assert counts["/staff"] == len(plan["staff"]) + 1  # and the admin
    assert counts["/segments"] == len(plan["marketing"]["segments"])
    assert counts["/care-rules"] == len(plan["marketing"]["care_rules"])
    assert counts["/campaigns"] == len(plan["marketing"]["campaigns"])

    # three years of leases, most of them over; bills paid, and someone behind with the rent
    leases = admin.all("/leases")
    assert min(lease["start_date"] for lease in leases) <= str(date.today() - timedelta(days=700))
    assert admin.total("/leases", status="ended") > 0
    assert admin.total("/leases", status="active") > 0
    assert admin.total("/bills", status="paid") > counts["/bills"] // 2
    overdue = admin.all("/bills", status="overdue")
    assert overdue and all(Decimal(bill["balance"]) > 0 for bill in overdue)

    # tickets went through their workflow and customers rated them
    closed = admin.all("/tickets", status="closed")
    assert closed and any((ticket.get("feedback") or {}).get("rating") for ticket in closed)
    assert admin.total("/tickets", status="resolved") + len(closed) > SIZES["tickets"] // 2

    # campaigns were launched to segments and reached people
    campaigns = admin.all("/campaigns")
    launched = [c for c in campaigns if c["status"] in ("launching", "sending", "completed")]
    assert len(launched) >= 3
    reached = sum(admin.get(f"/campaigns/{c['id']}/stats")["recipients"] for c in launched)
    assert reached > 0

    # the demo staff sign in with the password the demo kept for them (0600)
    saved = data_dir / "demo-staff-credentials.txt"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    password = saved.read_text().split("password:")[1].strip()
    manager = next(s["key"] for s in plan["staff"] if "customer_manager" in s["roles"])
    owned = Admin(system.url, manager, password).total("/customers")
    assert 0 < owned < SIZES["customers"]  # a manager sees the customers they own

    # again on the filled system: everything is found, nothing added, nothing failed
    again = run_demo(system, data_dir)
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-6000:]
    assert "skipped" in again.stdout
    after = totals(admin)
    # campaign responses of the first run open leads in the background: never fewer
    assert after.pop("/opportunities") >= counts.pop("/opportunities")
    assert after == counts


# ---------------------------------------------------------------- the plan, without a system

def test_the_same_seed_and_sizes_give_the_same_plan_and_another_seed_another():
    first = demo_plan.build_plan(8, SIZES, DAY)
    assert demo_plan.build_plan(8, SIZES, DAY) == first
    assert demo_plan.digest(demo_plan.build_plan(8, SIZES, DAY)) == demo_plan.digest(first)
    other = demo_plan.build_plan(9, SIZES, DAY)
    assert other != first and demo_plan.digest(other) != demo_plan.digest(first)
    assert [c["body"]["mobile"] for c in other["customers"]] != \
        [c["body"]["mobile"] for c in first["customers"]]
    bigger = demo_plan.build_plan(8, {**SIZES, "tickets": 51}, DAY)
    assert demo_plan.digest(bigger) != demo_plan.digest(first)
    # a section's stream does not depend on the others' sizes: more tickets, same customers
    assert bigger["customers"] == first["customers"]


def test_sizes_scale_with_customers_and_have_limits():
    assert demo_plan.resolve_sizes() == demo_plan.DEFAULTS
    assert demo_plan.resolve_sizes(customers=1000) == {
        "customers": 1000, "units": 200, "leases": 1200, "tickets": 2000}
    assert demo_plan.resolve_sizes(customers=1000, tickets=7) == {
        "customers": 1000, "units": 200, "leases": 1200, "tickets": 7}
    assert demo_plan.resolve_sizes(customers=100_000)["customers"] == 100_000
    with pytest.raises(ValueError):
        demo_plan.resolve_sizes(customers=100_001)
    done = subprocess.run([sys.executable, "-m", "demo", "--customers", "100001"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "customers must be" in done.stderr


def test_a_plan_holds_what_the_api_accepts():
    from customer_service.schemas import valid_id_number

    sizes = demo_plan.resolve_sizes(customers=1000)
    plan = demo_plan.build_plan(3, sizes, DAY)
    summary = demo_plan.summary(plan)
    assert summary["customers"] == 1000 and summary["units"] == 200
    assert summary["leases"] == 1200 and summary["tickets"] == 2000
    assert summary["renewals (API)"] > 0 and summary["terminations (API)"] > 0

    mobiles = [c["body"]["mobile"] for c in plan["customers"]]
    assert len(set(mobiles)) == len(mobiles)
    assert all(valid_id_number(c["body"]["id_number"]) for c in plan["customers"]
               if "id_number" in c["body"])
    assert len({u["code"] for u in plan["units"]}) == len(plan["units"])

    # a unit is never let twice for the same day, and history goes back three years
    start = DAY
    for chain in plan["chains"]:
        terms = []
        for step in chain["steps"]:
            if step["op"] == "lease":
                terms.append([step["body"]["start_date"], step["body"]["end_date"]])
            elif step["op"] == "renew":
                terms.append([(date.fromisoformat(terms[-1][1]) + timedelta(days=1)).isoformat(),
                              step["body"]["end_date"]])
            elif step["op"] == "terminate":
                terms[-1][1] = step["body"]["date"]
        for (_, end), (next_start, _) in zip(terms, terms[1:]):
            assert end < next_start, chain["unit"]
        if terms:
            start = min(start, date.fromisoformat(terms[0][0]))
    assert start <= DAY - timedelta(days=3 * 365 - 31)

    # sent spread out by who acts: eight workers are never one housekeeper for long (the
    # gateway limits each staff member's calls per minute)
    creators = {unit["code"]: unit["creator"] for unit in plan["units"]}
    order = [creators[chain["unit"]] for chain in spread(plan["chains"],
                                                          lambda c: creators[c["unit"]])]
    assert sorted(order) == sorted(creators[chain["unit"]] for chain in plan["chains"])
    share = {who: order.count(who) / len(order) for who in set(order)}
    for i in range(len(order) - 8):
        window = order[i:i + 8]
        assert all(window.count(who) <= 8 * share[who] + 2 for who in set(window))

    # viewings never double-book a staff member or a unit
    viewings = [(lead["actor"], lead["viewing"]["unit"], lead["viewing"]["scheduled_at"])
                for lead in plan["leads"] if lead["viewing"]]
    viewings += [(s["actor"], s["viewing"]["unit"], s["viewing"]["scheduled_at"])
                 for chain in plan["chains"] for s in chain["steps"]
                 if s["op"] == "opportunity" and s["viewing"]]
    assert len({(who, at) for who, _, at in viewings}) == len(viewings)
    assert len({(unit, at) for _, unit, at in viewings}) == len(viewings)


def test_payments_are_deterministic_never_in_the_future_and_never_more_than_owed():
    bills = [{"id": f"b{n}", "kind": "rent", "amount": "2350.00",
              "due_date": (DAY - timedelta(days=30 * n)).isoformat()} for n in range(12)]
    bills.append({"id": "d", "kind": "deposit", "amount": "2350.00",
                  "due_date": (DAY - timedelta(days=360)).isoformat()})
    for payer in ("punctual", "sometimes_late", "chronic_late", "defaulter"):
        for seed in range(20):
            paid = payments_for(bills, payer, seed, DAY)
            assert paid == payments_for(bills, payer, seed, DAY)
            assert all(at[:10] < DAY.isoformat() for _, _, at in paid)
            per_bill = {}
            for bill, amount, _ in paid:
                per_bill[bill["id"]] = per_bill.get(bill["id"], 0) + amount
            assert all(total <= Decimal("2350.00") for total in per_bill.values())
    behind = payments_for(bills, "punctual", 1, DAY, arrears="unpaid_last")
    assert "b1" not in {bill["id"] for bill, _, _ in behind}  # b0 is due today: not yet
