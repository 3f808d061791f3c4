"""The sales service as it runs, beside the real customer service, on the real RabbitMQ with
SQLite and PostgreSQL: events from leasing drive the customer's lifecycle end to end."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from crm_kit.errors import Conflict, InvalidInput, Unavailable
from crm_kit.testing import EventTap, wait_until

from sales_fixtures import ACTOR, unit_data

CUSTOMER = "customer_service.service:CustomerService"
SALES = "sales_service.service:SalesService"


@pytest.fixture
def services(start_service, database_url, postgres_database, tmp_path):
    customer_url = (f"sqlite:///{tmp_path / 'customer.db'}" if database_url.startswith("sqlite")
                    else postgres_database("customer"))
    customer = start_service(CUSTOMER, customer_url, name="customer")
    sales = start_service(SALES, database_url, name="sales")
    return customer, sales


@pytest.fixture
def rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=15) as proxy:
        yield proxy


def test_leasing_moves_the_customer_along_and_earns_points(services, rpc, amqp_uri):
    tap = EventTap(amqp_uri, "sales")
    customer = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139000",
                                             "owner_id": "staff-1"}, ACTOR)
    unit = rpc.sales.create_unit(unit_data(), ACTOR)
    opportunity = rpc.sales.create_opportunity({"customer_id": customer["id"],
                                                "source": "website"}, ACTOR)
    assert opportunity["owner_id"] == "staff-1"
    wait_until(lambda: rpc.customer.get_customer(customer["id"])["stage"] == "intent",
               message="opportunity.created → intent")

    start = date.today()
    lease = rpc.sales.sign_lease({
        "customer_id": customer["id"], "unit_id": unit["id"], "opportunity_id": opportunity["id"],
        "start_date": start.isoformat(), "end_date": (start + timedelta(days=364)).isoformat(),
        "monthly_rent": "3500.00", "deposit": "3500.00", "payment_cycle": "quarterly"}, ACTOR)
    assert rpc.sales.get_unit(unit["id"])["status"] == "leased"
    assert rpc.sales.get_opportunity(opportunity["id"])["stage"] == "won"
    assert all(isinstance(b["amount"], str) for b in lease["bills"])  # money is never a float
    rent = [b for b in lease["bills"] if b["kind"] == "rent"]
    assert sum(Decimal(b["amount"]) for b in rent) == Decimal(lease["term_rent"])
    wait_until(lambda: rpc.customer.get_customer(customer["id"])["stage"] == "first_time",
               message="lease.signed → first_time")

    deposit = next(b for b in lease["bills"] if b["kind"] == "deposit")
    paid = rpc.sales.record_payment({"bill_id": deposit["id"], "amount": "3500.00",
                                     "paid_at": datetime.now(timezone.utc).isoformat(),
                                     "method": "wechat_pay"}, "pay-1", ACTOR)
    assert paid["status"] == "paid"
    again = rpc.sales.record_payment({"bill_id": deposit["id"], "amount": "3500.00",
                                      "paid_at": datetime.now(timezone.utc).isoformat(),
                                      "method": "wechat_pay"}, "pay-1", ACTOR)
    assert again == paid
    wait_until(lambda: rpc.customer.get_customer(customer["id"])["member"]["points"] == 350,
               message="payment.received → points")
    types = [e["type"] for e in tap.wait_for(lambda e: e["type"] == "payment.received")]
    assert types == ["payment.received"]  # one payment, one event, despite the retry
    assert {e["type"] for e in tap.events} >= {"opportunity.created", "lease.signed",
                                               "bill.issued", "payment.received"}
    tap.close()


def test_unknown_customer_or_taken_unit_changes_nothing(services, rpc):
    unit = rpc.sales.create_unit(unit_data(), ACTOR)
    start = date.today()
    lease = {"customer_id": "nobody", "unit_id": unit["id"], "start_date": start.isoformat(),
             "end_date": (start + timedelta(days=30)).isoformat(), "monthly_rent": "3000.00",
             "deposit": "0", "payment_cycle": "monthly"}
    with pytest.raises(InvalidInput) as caught:
        rpc.sales.sign_lease(lease, ACTOR)
    assert "customer_id" in caught.value.details
    assert rpc.sales.list_leases({}, 1, 50)["total"] == 0
    assert rpc.sales.list_bills({}, 1, 50)["total"] == 0
    assert rpc.sales.get_unit(unit["id"])["status"] == "vacant"

    customer = rpc.customer.create_customer({"name": "韩梅梅", "mobile": "13700137000"}, ACTOR)
    rpc.sales.sign_lease({**lease, "customer_id": customer["id"]}, ACTOR)
    with pytest.raises(Conflict):
        rpc.sales.sign_lease({**lease, "customer_id": customer["id"]}, ACTOR)
    assert rpc.sales.list_leases({}, 1, 50)["total"] == 1


def test_customer_service_down_gives_unavailable(services, rpc):
    customer_service, _ = services
    customer = rpc.customer.create_customer({"name": "韩梅梅", "mobile": "13700137000"}, ACTOR)
    customer_service.stop()
    with pytest.raises(Unavailable):
        rpc.sales.create_opportunity({"customer_id": customer["id"], "source": "website"},
                                     ACTOR)
    assert rpc.sales.list_opportunities({}, 1, 50)["total"] == 0


def test_overdue_scan_announces_and_opens_a_collection_task(services, rpc, amqp_uri):
    tap = EventTap(amqp_uri, "sales", ["bill.overdue"])
    customer = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139000",
                                             "owner_id": "staff-1"}, ACTOR)
    unit = rpc.sales.create_unit(unit_data(), ACTOR)
    start = date.today() - timedelta(days=40)
    rpc.sales.sign_lease({
        "customer_id": customer["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": "3000.00",
        "deposit": "3000.00", "payment_cycle": "monthly"}, ACTOR)
    overdue = rpc.sales.list_bills({"status": "overdue"}, 1, 50)
    assert overdue["total"] >= 2  # deposit and the first rent bill(s), at once
    done = rpc.sales.run_daily_scans()
    assert done["overdue"] == overdue["total"]
    assert rpc.sales.run_daily_scans()["overdue"] == 0
    tap.wait_for(lambda e: True)
    tasks = rpc.sales.list_tasks({"owner_id": "staff-1", "status": "open"}, 1, 50)
    assert sum(1 for t in tasks["items"] if t["kind"] == "collection") == overdue["total"]
    tap.close()
