"""Leasing routes (units, opportunities, viewings, leases, bills, payments, tasks) in front of the
REAL customer and sales services on the real broker — no stubs.

Both services run for this module (``crm_kit.testing.ServiceProcess``, SQLite in a temporary
folder) on the module's own RabbitMQ vhost, a child of the session's (``vhost`` of
``crm_kit.pytest_plugin``), removed afterwards: the session vhost is shared with suites that
start their own customer and sales services later (their durable queues would otherwise
receive what ours left behind), and the gateway tests' vhost has the session-long customer
service and the 360 stand-ins of ``other_services.py`` (a second ``rpc-sales`` consumer).
Tests share the services, never data: each makes its own units (unique codes), customers
(unique mobiles) and staff, and reads back only those.
"""
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from crm_kit.rpc_client import RpcClient
from crm_kit.testing import ServiceProcess, wait_until
from gateway_support import (module_vhost, CUSTOMER_SPEC, STAFF_PASSWORD, Api, make_app, rpc_calls_served,
                             unique_mobile, unique_tag)

SALES_SPEC = "sales_service.service:SalesService"
API = "/api/v1"
PASSWORD = STAFF_PASSWORD


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def leasing_uri(vhost):
    yield from module_vhost(vhost, "leasing")


@pytest.fixture(scope="module")
def services(leasing_uri, tmp_path_factory):
    """The real customer and sales services, as ``make up`` starts them."""
    data_dir = tmp_path_factory.mktemp("leasing-services")
    started = {}
    try:
        for name, spec in (("customer", CUSTOMER_SPEC), ("sales", SALES_SPEC)):
            url = f"sqlite:///{data_dir / (name + '.db')}"
            service = ServiceProcess(spec, leasing_uri, url, data_dir, name=name)
            service.database_url = url
            started[name] = service.start()
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


@pytest.fixture(scope="module")
def api(services, leasing_uri, tmp_path_factory):
    """One gateway for the module (role tokens are costly: scrypt), with the deployed RPC
    timeout (signing a lease asks the customer service too)."""
    return Api(make_app(tmp_path_factory.mktemp("leasing-gateway"), leasing_uri, RPC_TIMEOUT=5))


@pytest.fixture(scope="module")
def sales_rpc(leasing_uri, services):
    """The tests' own RPC client to the sales service (setup only: the daily scans)."""
    with RpcClient(leasing_uri, timeout=15, client_name="leasing-tests") as client:
        yield client


@pytest.fixture
def sales_calls(services):
    """``sales_calls()``: RPCs the sales service has run so far."""
    return lambda: rpc_calls_served(services["sales"])


# ---------------------------------------------------------------- helpers

TODAY = date.today


def now_iso(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def error(response, status):
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def staff(api, roles, **fields):
    """A new staff member with ``roles`` and their token: ``(record, headers)``."""
    record = api.create_staff(unique_tag("staff"), roles, **fields)
    return record, api.auth(api.token(record["username"], PASSWORD))


def new_unit(api, role="sales_supervisor", **fields):
    body = {"code": unique_tag("U"), "building": "锦江公寓 A 栋", "district": "锦江区",
            "layout": "1室1厅", "area_sqm": "45.50", "floor": 12, "monthly_rent": "3500.00",
            "amenities": ["空调", "洗衣机"], **fields}
    return ok(api.request("POST", f"{API}/units", role=role, json=body), 201)


def new_opportunity(api, customer_id, role="sales_supervisor", **fields):
    body = {"customer_id": customer_id, "source": "website", **fields}
    return ok(api.request("POST", f"{API}/opportunities", role=role, json=body), 201)


def lease_body(customer_id, unit_id, start, end, **fields):
    return {"customer_id": customer_id, "unit_id": unit_id, "start_date": start.isoformat(),
            "end_date": end.isoformat(), "monthly_rent": "3500.00", "deposit": "3500.00",
            "payment_cycle": "monthly", **fields}


def sign(api, body, role="customer_manager"):
    return ok(api.request("POST", f"{API}/leases", role=role, json=body), 201)


def pay(api, bill_id, amount, role="sales_supervisor", key=None, status=201):
    headers = {"Idempotency-Key": key} if key else {}
    response = api.request("POST", f"{API}/payments", role=role, headers=headers,
                           json={"bill_id": bill_id, "amount": amount, "paid_at": now_iso(),
                                 "method": "wechat_pay"})
    return ok(response, status) if status < 400 else error(response, status)


def get(api, path, role="sales_supervisor", **query):
    return ok(api.request("GET", f"{API}{path}", role=role, query_string=query))


def lease_bills(api, lease_id, **query):
    return get(api, f"/leases/{lease_id}/bills", per_page=200, **query)["items"]


def money(text):
    assert isinstance(text, str), f"money must be a decimal string, not {text!r}"
    return Decimal(text)


def by_id(items):
    return {item["id"]: item for item in items}


def customer_stage(api, customer_id):
    return api.customer(customer_id)["stage"]


# ---------------------------------------------------------------- the whole flow

def test_unit_to_deposit_refund(api):
    """unit → customer → opportunity → viewing → outcome → lease with its bill schedule →
    payments → renewal → termination → deposit refund, with the conflicts on the way; and the
    customer's 360 view shows what sales knows."""
    # in the team of the sales supervisor of api.role_token, who reaches their customers
    manager, as_manager = staff(api, ["customer_manager"],
                                supervisor_id=api.role_id("sales_supervisor"))
    other_manager, _ = staff(api, ["customer_manager"])

    # a unit and a customer
    unit = new_unit(api, role="customer_manager")
    assert unit["status"] == "vacant" and unit["monthly_rent"] == "3500.00"
    assert unit["area_sqm"] == "45.50"
    assert get(api, f"/units/{unit['id']}", role="technician") == unit
    customer = ok(api.request("POST", f"{API}/customers", headers=as_manager,
                              json={"name": "李雷", "mobile": unique_mobile()}), 201)

    # an opportunity: the customer manager who names no owner becomes the owner
    opportunity = ok(api.request("POST", f"{API}/opportunities", headers=as_manager, json={
        "customer_id": customer["id"], "source": "website", "budget": "3500.00",
        "district": "锦江区", "layout": "1室1厅"}), 201)
    assert opportunity["owner_id"] == manager["id"]
    assert opportunity["stage"] == "new" and opportunity["kind"] == "new"
    assert opportunity["expected_value"] == "42000.00"  # 12 × the monthly budget
    wait_until(lambda: customer_stage(api, customer["id"]) == "intent", timeout=10,
               message="opportunity.created to make the customer an intent")

    # a development plan step, carried out
    planned = ok(api.request("POST", f"{API}/opportunities/{opportunity['id']}/plan-steps",
                             headers=as_manager, json={"title": "发房源图片",
                                                       "due_date": TODAY().isoformat()}))
    step = planned["plan_steps"][-1]
    assert step["done"] is False
    done = ok(api.request(
        "POST", f"{API}/opportunities/{opportunity['id']}/plan-steps/{step['id']}/done",
        headers=as_manager, json={"result": "客户喜欢朝南的房间"}))
    assert done["plan_steps"][-1]["done"] is True
    assert done["plan_steps"][-1]["result"] == "客户喜欢朝南的房间"

    # a viewing; the same staff member or the same unit at an overlapping time → 409
    at = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    viewing = ok(api.request("POST", f"{API}/viewings", headers=as_manager, json={
        "opportunity_id": opportunity["id"], "unit_id": unit["id"],
        "scheduled_at": at.isoformat(), "staff_id": manager["id"]}), 201)
    assert viewing["status"] == "scheduled" and viewing["customer_id"] == customer["id"]
    assert get(api, f"/opportunities/{opportunity['id']}")["stage"] == "viewing_booked"
    other_unit = new_unit(api)
    clash = error(api.request("POST", f"{API}/viewings", headers=as_manager, json={
        "opportunity_id": opportunity["id"], "unit_id": other_unit["id"],
        "scheduled_at": (at + timedelta(minutes=30)).isoformat(), "staff_id": manager["id"]}),
        409)
    assert clash["details"]["field"] == "staff_id"
    assert clash["details"]["existing_id"] == viewing["id"]
    clash = error(api.request("POST", f"{API}/viewings", role="sales_supervisor", json={
        "opportunity_id": opportunity["id"], "unit_id": unit["id"],
        "scheduled_at": (at + timedelta(minutes=59)).isoformat(),
        "staff_id": other_manager["id"]}), 409)
    assert clash["details"]["field"] == "unit_id"
    calendar = get(api, "/viewings", opportunity_id=opportunity["id"])
    assert [v["id"] for v in calendar["items"]] == [viewing["id"]]
    day = {"from": at.isoformat(), "to": (at + timedelta(hours=1)).isoformat()}
    assert get(api, "/viewings", staff_id=manager["id"], **day)["total"] == 1
    assert get(api, "/viewings", unit_id=unit["id"], status="completed")["total"] == 0
    refused = error(api.request("GET", f"{API}/viewings", role="executive",
                                query_string={"from": "yesterday"}), 422)
    assert set(refused["details"]) == {"from"}

    # the outcome: completed, and the opportunity is viewed
    viewed = ok(api.request("PATCH", f"{API}/viewings/{viewing['id']}", headers=as_manager,
                            json={"result": "interested", "outcome": "采光好，想谈价格"}))
    assert viewed["status"] == "completed" and viewed["result"] == "interested"
    assert get(api, f"/opportunities/{opportunity['id']}")["stage"] == "viewed"

    # signing: an unknown customer is a 422 on customer_id and writes nothing
    start, end = TODAY(), TODAY() + timedelta(days=40)
    while (end + timedelta(days=2)).day == 1:  # the renewal's first period: more than a day
        end += timedelta(days=1)
    unknown = error(api.request("POST", f"{API}/leases", headers=as_manager,
                                json=lease_body("no-such-customer", unit["id"], start, end)),
                    422)
    assert "customer_id" in unknown["details"]
    assert get(api, "/leases", unit_id=unit["id"])["total"] == 0
    assert get(api, f"/units/{unit['id']}")["status"] == "vacant"

    # the lease, with its bill schedule: the rent bills sum exactly to the term's rent
    lease = ok(api.request("POST", f"{API}/leases", headers=as_manager, json=lease_body(
        customer["id"], unit["id"], start, end, opportunity_id=opportunity["id"])), 201)
    assert lease["status"] == "active" and lease["owner_id"] == manager["id"]
    rent = [b for b in lease["bills"] if b["kind"] == "rent"]
    deposit = [b for b in lease["bills"] if b["kind"] == "deposit"]
    assert len(deposit) == 1 and deposit[0]["amount"] == "3500.00"
    assert deposit[0]["due_date"] == start.isoformat()
    assert rent[0]["period_start"] == start.isoformat()
    assert rent[-1]["period_end"] == end.isoformat()
    assert sum(money(b["amount"]) for b in rent) == money(lease["term_rent"])
    assert all(b["status"] == "unpaid" and b["balance"] == b["amount"] for b in lease["bills"])
    assert by_id(get(api, f"/leases/{lease['id']}", role="service_agent")["bills"]) \
        == by_id(lease["bills"])
    assert by_id(lease_bills(api, lease["id"])) == by_id(lease["bills"])
    assert get(api, f"/units/{unit['id']}")["status"] == "leased"
    won = get(api, f"/opportunities/{opportunity['id']}", role="executive")
    assert won["stage"] == "won" and won["lease_id"] == lease["id"]
    assert [h["to_stage"] for h in won["history"]] == [
        "new", "viewing_booked", "viewed", "won"]
    wait_until(lambda: customer_stage(api, customer["id"]) == "first_time", timeout=10,
               message="lease.signed to make a first-time customer")

    # the unit is taken for that term → 409
    taken = error(api.request("POST", f"{API}/leases", role="sales_supervisor", json=lease_body(
        customer["id"], unit["id"], end - timedelta(days=3), end + timedelta(days=30))), 409)
    assert taken["details"]["lease_id"] == lease["id"]

    # payments: partial, over the balance (422 on amount, nothing paid), in full
    first = rent[0]
    part = pay(api, first["id"], "100.00")  # a first part month costs at least 112.90
    assert part["bill_id"] == first["id"] and part["amount"] == "100.00"
    assert part["balance"] == str(money(first["amount"]) - Decimal("100.00"))
    assert part["status"] == "partially_paid"
    over = pay(api, first["id"], first["amount"], status=422)
    assert set(over["details"]) == {"amount"}
    full = pay(api, first["id"], part["balance"])
    assert full["balance"] == "0.00" and full["status"] == "paid"
    paid = get(api, f"/bills/{first['id']}", role="executive")
    assert paid["paid"] == first["amount"] and paid["status"] == "paid"
    assert [p["amount"] for p in paid["payments"]] == ["100.00", part["balance"]]

    # an Idempotency-Key retry pays once and answers the same payment; the key with another
    # amount is a 409
    key = str(uuid.uuid4())
    once = pay(api, deposit[0]["id"], "500.00", key=key)
    again = pay(api, deposit[0]["id"], "500.00", key=key)
    assert again == once
    reused = pay(api, deposit[0]["id"], "600.00", key=key, status=409)
    assert reused["details"]["payment_id"] == once["payment_id"]
    bill = get(api, f"/bills/{deposit[0]['id']}")
    assert bill["paid"] == "500.00" and len(bill["payments"]) == 1
    pay(api, deposit[0]["id"], "3000.00")

    # an extra charge, its own bill on the lease
    charge = ok(api.request("POST", f"{API}/leases/{lease['id']}/charges", headers=as_manager,
                            json={"kind": "utilities", "amount": "88.50",
                                  "due_date": end.isoformat(), "description": "水电费 三月"}),
                201)
    assert charge["kind"] == "utilities" and charge["amount"] == "88.50"
    assert charge["lease_id"] == lease["id"] and charge["customer_id"] == customer["id"]
    assert charge["id"] in {b["id"] for b in lease_bills(api, lease["id"])}
    for bill in rent[1:]:  # the rest of the rent is paid; the utilities stay open
        pay(api, bill["id"], bill["amount"])

    # renewal: a new lease from the day after the end, at the new rent; the deposit carries
    renewal = ok(api.request("POST", f"{API}/leases/{lease['id']}/renew", headers=as_manager,
                             json={"end_date": (end + timedelta(days=90)).isoformat(),
                                   "monthly_rent": "3600.00"}), 201)
    assert renewal["start_date"] == (end + timedelta(days=1)).isoformat()
    assert renewal["renewed_from_id"] == lease["id"] and renewal["monthly_rent"] == "3600.00"
    assert {b["kind"] for b in renewal["bills"]} == {"rent"}
    assert sum(money(b["amount"]) for b in renewal["bills"]) == money(renewal["term_rent"])
    old = get(api, f"/leases/{lease['id']}")
    assert old["status"] == "renewed" and old["renewed_to_id"] == renewal["id"]
    wait_until(lambda: customer_stage(api, customer["id"]) == "repeat", timeout=10,
               message="lease.renewed to make a repeat customer")

    # the deposit is refunded at move-out only
    error(api.request("POST", f"{API}/leases/{renewal['id']}/deposit-refund",
                      role="sales_supervisor", json={}), 409)

    # termination on the renewal's first day: later rent voided, the first period cut
    move_out = renewal["start_date"]
    ended = ok(api.request("POST", f"{API}/leases/{renewal['id']}/terminate",
                           headers=as_manager, json={"date": move_out, "reason": "工作调动"}))
    assert ended["status"] == "terminated" and ended["terminated_on"] == move_out
    assert get(api, f"/units/{unit['id']}")["status"] == "vacant"
    cut = lease_bills(api, renewal["id"])
    assert len(cut) == 1 and cut[0]["period_end"] == renewal["bills"][0]["period_end"]
    assert money(cut[0]["amount"]) < money(renewal["bills"][0]["amount"])

    # the deposit refund: deposit paid − deductions − what is still owed (then settled)
    owed = sum(money(b["balance"]) for b in lease_bills(api, lease["id"]) + cut
               if b["kind"] != "deposit")
    assert owed == Decimal("88.50") + money(cut[0]["amount"])
    refund = ok(api.request("POST", f"{API}/leases/{renewal['id']}/deposit-refund",
                            role="sales_supervisor",
                            json={"deductions": [{"reason": "保洁", "amount": "200.00"}]}), 201)
    assert refund["deposit_paid"] == "3500.00"
    assert money(refund["deducted"]) == Decimal("200.00") + owed
    assert money(refund["refunded"]) == Decimal("3300.00") - owed
    assert refund["deductions"][0] == {"reason": "保洁", "amount": "200.00"}
    assert money(refund["deductions"][-1]["amount"]) == owed
    assert get(api, f"/leases/{renewal['id']}")["deposit_refund"] == refund
    settled = get(api, f"/bills/{charge['id']}")
    assert settled["status"] == "paid" and settled["payments"][-1]["method"] == "deposit"
    error(api.request("POST", f"{API}/leases/{renewal['id']}/deposit-refund",
                      role="sales_supervisor", json={}), 409)

    # the 360 view: the customer's opportunities, leases with their bills
    view = get(api, f"/customers/{customer['id']}/360", role="sales_supervisor")
    assert view["profile"]["stage"] == "repeat"
    assert view["opportunities"]["available"] is True
    assert {o["id"]: o["stage"] for o in view["opportunities"]["items"]}[opportunity["id"]] \
        == "won"
    assert view["leases"]["available"] is True
    leases = {item["id"]: item for item in view["leases"]["items"]}
    assert leases[lease["id"]]["status"] == "renewed"
    assert leases[renewal["id"]]["status"] == "terminated"
    assert {b["id"] for b in leases[lease["id"]]["bills"]} == {
        b["id"] for b in lease_bills(api, lease["id"])}
    assert {b["id"] for b in leases[renewal["id"]]["bills"]} == {cut[0]["id"]}
    listed = get(api, "/leases", role="executive", customer_id=customer["id"])
    assert {item["id"] for item in listed["items"]} == {lease["id"], renewal["id"]}
    assert get(api, "/leases", customer_id=customer["id"], status="terminated")["total"] == 1


def test_a_lease_entered_after_the_fact_shows_its_overdue_bills(api, sales_rpc):
    owner, _ = staff(api, ["customer_manager"], supervisor_id=api.role_id("sales_supervisor"))
    customer = api.managed_customer()
    unit = new_unit(api)
    start, end = TODAY() - timedelta(days=100), TODAY() + timedelta(days=200)
    lease = sign(api, lease_body(customer["id"], unit["id"], start, end, owner_id=owner["id"]))
    assert lease["status"] == "active" and lease["owner_id"] == owner["id"]
    assert get(api, f"/units/{unit['id']}")["status"] == "leased"
    past = {b["id"] for b in lease["bills"] if b["due_date"] < TODAY().isoformat()}
    assert len(past) >= 4  # the deposit and three or four months of rent

    overdue = get(api, "/bills", role="service_agent", status="overdue", lease_id=lease["id"])
    assert {b["id"] for b in overdue["items"]} == past
    assert all(b["status"] == "overdue" and b["days_overdue"] > 0 for b in overdue["items"])
    by_customer = get(api, "/bills", status="overdue", customer_id=customer["id"],
                      per_page=200)
    assert {b["id"] for b in by_customer["items"]} == past
    unpaid = get(api, "/bills", status="unpaid", lease_id=lease["id"], per_page=200)
    assert {b["id"] for b in unpaid["items"]} == {b["id"] for b in lease["bills"]} - past

    # paid in part, a bill past its due date is still overdue
    oldest = overdue["items"][0]
    assert pay(api, oldest["id"], "100.00")["status"] == "overdue"
    assert get(api, f"/bills/{oldest['id']}")["status"] == "overdue"
    pay(api, oldest["id"], str(money(oldest["amount"]) - Decimal("100.00")))
    assert get(api, "/bills", status="overdue", lease_id=lease["id"])["total"] == len(past) - 1
    assert get(api, "/bills", status="paid", lease_id=lease["id"])["items"][0]["id"] \
        == oldest["id"]

    # the daily scan: one collection task (催缴) per overdue bill for the lease's owner, one
    # late fee of 5% of the balance per rent bill open 5 days past its due date
    sales_rpc.call("sales", "run_daily_scans")
    still = {b["id"]: b for b in lease["bills"] if b["id"] in past - {oldest["id"]}}
    collection = get(api, "/tasks", role="sales_supervisor", owner_id=owner["id"],
                     kind="collection", per_page=200)["items"]
    assert {t["bill_id"] for t in collection} == set(still)
    assert {t["lease_id"] for t in collection} == {lease["id"]}
    fees = get(api, "/bills", lease_id=lease["id"], kind="late_fee", per_page=200)["items"]
    late = [b for b in still.values() if b["kind"] == "rent"
            and b["due_date"] < (TODAY() - timedelta(days=5)).isoformat()]
    assert sorted(money(f["amount"]) for f in fees) == sorted(
        (money(b["amount"]) * Decimal("0.05")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        for b in late)
    assert all(f["due_date"] == TODAY().isoformat() for f in fees)
    sales_rpc.call("sales", "run_daily_scans")  # once per bill, however often it runs
    assert get(api, "/bills", lease_id=lease["id"], kind="late_fee")["total"] == len(fees)
    assert get(api, "/tasks", owner_id=owner["id"], kind="collection")["total"] \
        == len(collection)


def test_a_lease_already_over_when_entered_is_ended_and_leaves_the_unit_free(api):
    customer = api.managed_customer()
    unit = new_unit(api)
    lease = sign(api, lease_body(customer["id"], unit["id"], TODAY() - timedelta(days=400),
                                 TODAY() - timedelta(days=40), payment_cycle="quarterly"))
    assert lease["status"] == "ended"
    assert get(api, f"/units/{unit['id']}")["status"] == "vacant"
    rent = [b for b in lease["bills"] if b["kind"] == "rent"]
    assert sum(money(b["amount"]) for b in rent) == money(lease["term_rent"])


# ---------------------------------------------------------------- units

def test_units_create_search_and_page(api):
    word = unique_tag("楼")
    units = [new_unit(api, building=f"{word} 一号楼", monthly_rent=rent, layout=layout)
             for rent, layout in (("2800.00", "1室0厅"), ("3500.00", "1室1厅"),
                                  ("5200.50", "2室1厅"))]
    found = get(api, "/units", role="marketer", q=word, max_rent="3500.00")
    assert [u["id"] for u in found["items"]] == [u["id"] for u in units[:2]]
    assert get(api, "/units", q=word, layout="2室1厅")["items"][0]["monthly_rent"] == "5200.50"
    page = get(api, "/units", q=word, per_page=1, page=2)
    assert (page["total"], page["page"], page["per_page"]) == (3, 2, 1)
    assert [u["id"] for u in page["items"]] == [units[1]["id"]]
    assert get(api, "/units", q=word, status="vacant")["total"] == 3

    taken = error(api.request("POST", f"{API}/units", role="admin",
                              json={**{k: units[0][k] for k in ("code", "building", "district",
                                                                 "layout", "area_sqm", "floor",
                                                                 "monthly_rent")}}), 409)
    assert taken["details"]["existing_id"] == units[0]["id"]
    error(api.request("GET", f"{API}/units/no-such-unit", role="technician"), 404)


def test_unit_validation_is_the_services_one_422_naming_every_field(api, sales_calls):
    word = unique_tag("x")
    response = api.request("POST", f"{API}/units", role="sales_supervisor",
                           json={"building": word, "colour": "red", "area_sqm": "-1"})
    body = error(response, 422)
    assert body["code"] == "validation_error"
    assert set(body["details"]) == {"code", "district", "layout", "area_sqm", "floor",
                                    "monthly_rent", "colour"}
    assert get(api, "/units", q=word)["total"] == 0

    # JSON types are checked at the gateway: a number is never taken for money
    api.role_token("sales_supervisor")
    before = sales_calls()
    body = error(api.request("POST", f"{API}/units", role="sales_supervisor",
                             json={"monthly_rent": 3500.5, "floor": "12th"}), 422)
    assert set(body["details"]) == {"monthly_rent", "floor"}
    body = error(api.request("GET", f"{API}/units?status=rented", role="sales_supervisor"), 422)
    assert set(body["details"]) == {"status"}
    assert sales_calls() == before  # refused before the service was asked

    # a query value only the service can judge: its 422 names the parameter
    body = error(api.request("GET", f"{API}/units?max_rent=cheap", role="sales_supervisor"), 422)
    assert set(body["details"]) == {"max_rent"}


def test_technician_puts_a_unit_under_maintenance_and_nothing_else(api):
    unit = new_unit(api)
    fixed = ok(api.request("PATCH", f"{API}/units/{unit['id']}", role="technician",
                           json={"status": "maintenance"}))
    assert fixed["status"] == "maintenance"
    refused = error(api.request("PATCH", f"{API}/units/{unit['id']}", role="technician",
                                json={"status": "vacant", "monthly_rent": "100.00"}), 403)
    assert refused["details"] == {"fields": ["monthly_rent"]}
    assert get(api, f"/units/{unit['id']}")["monthly_rent"] == "3500.00"

    # under maintenance: no lease (409)
    customer = api.managed_customer()
    busy = error(api.request("POST", f"{API}/leases", role="sales_supervisor", json=lease_body(
        customer["id"], unit["id"], TODAY(), TODAY() + timedelta(days=30))), 409)
    assert busy["details"]["unit_status"] == "maintenance"

    # leased: staff cannot set it vacant by hand (409)
    ok(api.request("PATCH", f"{API}/units/{unit['id']}", role="technician",
                   json={"status": "vacant"}))
    sign(api, lease_body(customer["id"], unit["id"], TODAY(), TODAY() + timedelta(days=30)))
    error(api.request("PATCH", f"{API}/units/{unit['id']}", role="sales_supervisor",
                      json={"status": "vacant"}), 409)
    edited = ok(api.request("PATCH", f"{API}/units/{unit['id']}", role="customer_manager",
                            json={"monthly_rent": "3650.00", "amenities": ["冰箱"]}))
    assert edited["monthly_rent"] == "3650.00" and edited["status"] == "leased"


# ---------------------------------------------------------------- opportunities

def test_opportunity_owner_stage_rules_assignment_and_history(api):
    supervisor, as_supervisor = staff(api, ["sales_supervisor"])
    manager, _ = staff(api, ["customer_manager"], supervisor_id=supervisor["id"])
    customer = api.create_customer(owner_id=manager["id"])

    # a supervisor naming no owner: the customer's owner
    opportunity = ok(api.request("POST", f"{API}/opportunities", headers=as_supervisor,
                                 json={"customer_id": customer["id"], "source": "referral"}),
                     201)
    assert opportunity["owner_id"] == manager["id"]
    path = f"{API}/opportunities/{opportunity['id']}"

    # lost needs a loss reason; other stages a reason
    body = error(api.request("POST", f"{path}/stage", headers=as_supervisor,
                             json={"stage": "lost"}), 422)
    assert set(body["details"]) == {"loss_reason"}
    body = error(api.request("POST", f"{path}/stage", headers=as_supervisor,
                             json={"stage": "contacted"}), 422)
    assert set(body["details"]) == {"reason"}
    moved = ok(api.request("POST", f"{path}/stage", headers=as_supervisor,
                           json={"stage": "contacted", "reason": "电话沟通"}))
    assert moved["stage"] == "contacted" and moved["probability"] == "0.20"

    # assignment: to an active staff member only
    body = error(api.request("POST", f"{path}/assign", headers=as_supervisor,
                             json={"owner_id": "no-such-staff"}), 422)
    assert set(body["details"]) == {"owner_id"}
    assigned = ok(api.request("POST", f"{path}/assign", headers=as_supervisor,
                              json={"owner_id": supervisor["id"]}))
    assert assigned["owner_id"] == supervisor["id"]

    lost = ok(api.request("POST", f"{path}/stage", headers=as_supervisor,
                          json={"stage": "lost", "loss_reason": "price", "loss_note": "太贵"}))
    assert lost["stage"] == "lost" and lost["loss_reason"] == "price"
    final = error(api.request("POST", f"{path}/stage", headers=as_supervisor,
                              json={"stage": "negotiating", "reason": "回来了"}), 409)
    assert final["details"]["stage"] == "lost"
    history = get(api, f"/opportunities/{opportunity['id']}", role="executive")["history"]
    assert [(h["trigger"], h["to_stage"]) for h in history] == [
        ("created", "new"), ("manual", "contacted"), ("assigned", "contacted"),
        ("manual", "lost")]
    assert history[2]["actor_id"] == supervisor["id"]

    listed = get(api, "/opportunities", role="executive", customer_id=customer["id"],
                 stage="lost")
    assert [o["id"] for o in listed["items"]] == [opportunity["id"]]
    assert get(api, "/opportunities", customer_id=customer["id"], stage="new")["total"] == 0
    error(api.request("GET", f"{API}/opportunities/no-such-opportunity", role="executive"), 404)


def test_an_opportunity_for_an_unknown_customer_is_a_422_on_customer_id(api):
    body = error(api.request("POST", f"{API}/opportunities", role="customer_manager",
                             json={"customer_id": "no-such-customer", "source": "website"}), 422)
    assert set(body["details"]) == {"customer_id"}


@pytest.mark.parametrize("path, body, fields", [
    ("/opportunities", {"customer_id": "no-such-customer", "source": "telepathy",
                        "budget": "-5"}, {"customer_id", "source", "budget"}),
    ("/leases", {"customer_id": "no-such-customer", "unit_id": "u", "start_date": "2025-01-01",
                 "end_date": "2025-12-31", "monthly_rent": "0.00", "deposit": "0.00",
                 "payment_cycle": "weekly"}, {"customer_id", "monthly_rent", "payment_cycle"}),
])
def test_one_422_names_every_bad_field_with_the_customer(api, path, body, fields):
    refused = error(api.request("POST", f"{API}{path}", role="customer_manager", json=body), 422)
    assert set(refused["details"]) == fields


def test_staff_ids_must_name_active_staff(api, sales_calls):
    leaver, _ = staff(api, ["customer_manager"])
    ok(api.request("PATCH", f"{API}/staff/{leaver['id']}", role="admin",
                   json={"active": False}))
    customer = api.create_customer()
    api.role_token("sales_supervisor")
    before = sales_calls()
    for path, body, field in (
            ("/opportunities", {"customer_id": customer["id"], "source": "website",
                                "owner_id": leaver["id"]}, "owner_id"),
            ("/opportunities", {"customer_id": customer["id"], "source": "website",
                                "owner_id": "no-such-staff"}, "owner_id"),
            ("/viewings", {"opportunity_id": "o", "unit_id": "u", "scheduled_at": now_iso(),
                           "staff_id": leaver["id"]}, "staff_id"),
            ("/tasks", {"owner_id": leaver["id"], "title": "回访", "due_at": now_iso()},
             "owner_id"),
            ("/leases", {**lease_body(customer["id"], "u", TODAY(), TODAY()),
                         "owner_id": "no-such-staff"}, "owner_id")):
        refused = error(api.request("POST", f"{API}{path}", role="sales_supervisor", json=body),
                        422)
        assert refused["details"] == {field: ["is not an active staff member"]}, path
    assert sales_calls() == before


def test_stagnant_opportunities_and_their_stage_limits(api, services, sales_rpc):
    limits = get(api, "/opportunity-settings/stage-limits", role="executive")
    assert limits["new"] == 3
    error(api.request("PUT", f"{API}/opportunity-settings/stage-limits", role="customer_manager",
                      json={"new": 2}), 403)
    body = error(api.request("PUT", f"{API}/opportunity-settings/stage-limits",
                             role="sales_supervisor", json={"new": -1, "won": 3}), 422)
    assert set(body["details"]) == {"new", "won"}
    changed = ok(api.request("PUT", f"{API}/opportunity-settings/stage-limits",
                             role="sales_supervisor", json={"new": 2}))
    assert changed["new"] == 2 and changed["negotiating"] == 14

    manager, _ = staff(api, ["customer_manager"], supervisor_id=api.role_id("sales_supervisor"))
    customer = api.create_customer()
    stuck = new_opportunity(api, customer["id"], owner_id=manager["id"])
    fresh = new_opportunity(api, customer["id"], owner_id=manager["id"])
    _enter_stage_days_ago(services["sales"].database_url, stuck["id"], 3)
    sales_rpc.call("sales", "run_daily_scans")

    stagnant = get(api, "/opportunities", customer_id=customer["id"], stagnant="true")
    assert [o["id"] for o in stagnant["items"]] == [stuck["id"]]
    assert stagnant["items"][0]["stagnant"] is True
    assert [o["id"] for o in get(api, "/opportunities", customer_id=customer["id"],
                                 stagnant="false")["items"]] == [fresh["id"]]
    tasks = get(api, "/tasks", role="sales_supervisor", owner_id=manager["id"],
                kind="stagnation")
    assert [t["opportunity_id"] for t in tasks["items"]] == [stuck["id"]]
    ok(api.request("PUT", f"{API}/opportunity-settings/stage-limits", role="admin",
                   json={"new": 3}))


def _enter_stage_days_ago(database_url, opportunity_id, days):
    """Time travel in the sales service's own database (as its own stagnation tests do)."""
    from sqlalchemy import create_engine, text

    entered = (datetime.now(timezone.utc) - timedelta(days=days)).replace(tzinfo=None)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE opportunities SET stage_entered_at = :t "
                                    "WHERE id = :id"), {"t": entered, "id": opportunity_id})
    finally:
        engine.dispose()


def test_forecast_weighs_expected_value_by_stage(api):
    owner, _ = staff(api, ["customer_manager"], supervisor_id=api.role_id("sales_supervisor"))
    customer = api.create_customer()
    first = new_opportunity(api, customer["id"], owner_id=owner["id"],
                            expected_value="10000.00", expected_close="2031-05-20")
    new_opportunity(api, customer["id"], owner_id=owner["id"], budget="3000.00",
                    expected_close="2031-06-01")
    forecast = get(api, "/opportunities/forecast", role="sales_supervisor", owner_id=owner["id"])
    assert forecast == {"total": "4600.00", "count": 2,
                        "by_owner": [{"owner_id": owner["id"], "value": "4600.00", "count": 2}],
                        "by_month": [{"month": "2031-05", "value": "1000.00", "count": 1},
                                     {"month": "2031-06", "value": "3600.00", "count": 1}]}
    ok(api.request("POST", f"{API}/opportunities/{first['id']}/stage", role="sales_supervisor",
                   json={"stage": "negotiating", "reason": "议价"}))
    forecast = get(api, "/opportunities/forecast", role="executive", owner_id=owner["id"])
    assert forecast["total"] == "11600.00"


# ---------------------------------------------------------------- payments

def test_an_idempotent_retry_answers_exactly_the_first_answer(api):
    customer = api.managed_customer()
    lease = sign(api, lease_body(customer["id"], new_unit(api)["id"], TODAY(),
                                 TODAY() + timedelta(days=30)))
    deposit = next(b for b in lease["bills"] if b["kind"] == "deposit")
    key = str(uuid.uuid4())
    first = pay(api, deposit["id"], "1000.00", key=key)
    pay(api, deposit["id"], "500.00")
    assert pay(api, deposit["id"], "1000.00", key=key) == first


def test_payment_validation_and_unknown_bill(api):
    customer = api.managed_customer()
    lease = sign(api, lease_body(customer["id"], new_unit(api)["id"], TODAY(),
                                 TODAY() + timedelta(days=30)))
    bill = lease["bills"][0]
    body = error(api.request("POST", f"{API}/payments", role="customer_manager",
                             json={"bill_id": bill["id"], "amount": "0.00",
                                   "paid_at": "yesterday", "method": "barter", "tip": "5.00"}),
                 422)
    assert set(body["details"]) == {"amount", "paid_at", "method", "tip"}
    body = error(api.request("POST", f"{API}/payments", role="customer_manager",
                             json={"bill_id": bill["id"], "amount": "1.00",
                                   "paid_at": now_iso(days=2), "method": "cash"}), 422)
    assert set(body["details"]) == {"paid_at"}
    body = error(api.request("POST", f"{API}/payments", role="customer_manager",
                             json={"bill_id": bill["id"], "amount": 100,
                                   "paid_at": now_iso(), "method": "cash"}), 422)
    assert set(body["details"]) == {"amount"}  # a number, refused at the gateway
    error(api.request("POST", f"{API}/payments", role="customer_manager",
                      json={"bill_id": "no-such-bill", "amount": "1.00", "paid_at": now_iso(),
                            "method": "cash"}), 404)
    assert get(api, f"/bills/{bill['id']}")["paid"] == "0.00"
    error(api.request("GET", f"{API}/leases/no-such-lease/bills", role="sales_supervisor"), 404)
    error(api.request("GET", f"{API}/bills/no-such-bill", role="sales_supervisor"), 404)


# ---------------------------------------------------------------- tasks

def test_tasks_create_list_done_and_urge(api):
    technician, as_technician = staff(api, ["technician"])
    manager, as_manager = staff(api, ["customer_manager"],
                                supervisor_id=api.role_id("sales_supervisor"))

    # without an owner a task is the caller's own
    own = ok(api.request("POST", f"{API}/tasks", headers=as_technician,
                         json={"title": "检修空调", "due_at": now_iso(days=1)}), 201)
    assert own["owner_id"] == technician["id"] and own["status"] == "open"
    assert own["overdue"] is False and own["history"][0]["action"] == "created"
    error(api.request("POST", f"{API}/tasks/{own['id']}/urge", role="admin"), 409)

    late = ok(api.request("POST", f"{API}/tasks", role="sales_supervisor",
                          json={"owner_id": manager["id"], "title": "回访李雷",
                                "due_at": now_iso(hours=-2)}), 201)
    listed = get(api, "/tasks", role="technician", owner_id=manager["id"], overdue="true")
    assert [t["id"] for t in listed["items"]] == [late["id"]]
    assert listed["items"][0]["overdue"] is True

    error(api.request("POST", f"{API}/tasks/{late['id']}/urge", headers=as_manager), 403)
    urged = ok(api.request("POST", f"{API}/tasks/{late['id']}/urge", role="sales_supervisor"))
    assert urged["urge_count"] == 1 and urged["urged_by"] == api.role_id("sales_supervisor")

    done = ok(api.request("POST", f"{API}/tasks/{late['id']}/done", headers=as_manager,
                          json={"result": "已回访，下周看房"}))
    assert done["status"] == "done" and done["result"] == "已回访，下周看房"
    assert [h["action"] for h in done["history"]] == ["created", "urged", "done"]
    error(api.request("POST", f"{API}/tasks/{late['id']}/done", headers=as_manager), 409)
    error(api.request("POST", f"{API}/tasks/{late['id']}/urge", role="admin"), 409)
    assert ok(api.request("POST", f"{API}/tasks/{own['id']}/done",
                          headers=as_technician))["result"] is None
    assert get(api, "/tasks", owner_id=manager["id"], status="open")["total"] == 0
    error(api.request("POST", f"{API}/tasks/no-such-task/done", headers=as_manager), 404)

    body = error(api.request("POST", f"{API}/tasks", headers=as_manager,
                             json={"title": " ", "due_at": "tomorrow", "kind": "chore"}), 422)
    assert set(body["details"]) == {"title", "due_at", "kind"}
    body = error(api.request("POST", f"{API}/tasks/{own['id']}/done", headers=as_technician,
                             json={"result": "ok", "rating": 5}), 422)
    assert set(body["details"]) == {"rating"}


# ---------------------------------------------------------------- roles

FORBIDDEN = [
    ("executive", "POST", "/units", {}),
    ("service_agent", "PATCH", "/units/u-1", {"status": "maintenance"}),
    ("marketer", "GET", "/opportunities", None),
    ("technician", "POST", "/opportunities", {}),
    ("customer_manager", "POST", "/opportunities/o-1/assign", {"owner_id": "s-1"}),
    ("executive", "POST", "/viewings", {}),
    ("service_agent", "GET", "/opportunities/forecast", None),
    ("executive", "POST", "/leases", {}),
    ("technician", "GET", "/leases", None),
    ("marketer", "GET", "/bills", None),
    ("service_agent", "POST", "/payments", {}),
    ("customer_manager", "POST", "/leases/l-1/deposit-refund", {}),
    ("customer_manager", "POST", "/tasks/t-1/urge", None),
    ("executive", "POST", "/tasks", {}),
    ("executive", "PUT", "/opportunity-settings/stage-limits", {"new": 3}),
]


@pytest.mark.parametrize("role, method, path, body", FORBIDDEN)
def test_a_role_outside_the_table_is_refused_before_the_service(api, sales_calls, role, method,
                                                                 path, body):
    api.role_token(role)
    before = sales_calls()
    kwargs = {"json": body} if body is not None else {}
    refused = error(api.request(method, f"{API}{path}", role=role, **kwargs), 403)
    assert refused["code"] == "forbidden"
    assert sales_calls() == before


@pytest.mark.parametrize("role, path", [
    ("technician", "/units"), ("marketer", "/units"), ("executive", "/opportunities"),
    ("executive", "/viewings"), ("service_agent", "/leases"), ("service_agent", "/bills"),
    ("executive", "/opportunities/forecast"), ("marketer", "/tasks"),
])
def test_readers_read(api, role, path):
    get(api, path, role=role)


def test_money_and_ids_are_strings_in_the_openapi_document(api):
    spec = ok(api.client.get(f"{API}/openapi.json"))
    schemas = spec["components"]["schemas"]
    for name, field in (("Lease", "monthly_rent"), ("Bill", "balance"),
                        ("PaymentResult", "balance"), ("PaymentIn", "amount"),
                        ("UnitCreate", "monthly_rent")):
        assert schemas[name]["properties"][field]["type"] == "string", (name, field)
    parameters = spec["paths"][f"{API}/payments"]["post"]["parameters"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= parameters[0].items()
    assert {f"{API}/units", f"{API}/opportunities/forecast", f"{API}/leases/{{lease_id}}/renew",
            f"{API}/tasks/{{task_id}}/urge"} <= set(spec["paths"])
