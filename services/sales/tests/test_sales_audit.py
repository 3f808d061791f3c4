"""The sales service's audit trail of money: leases signed, renewed, terminated and ended, bills
issued and adjusted, payments, late fees, deposit refunds — who, when, before, after; ids and
amounts only, never personal data; append-only in the database. SQLite and PostgreSQL."""
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm_kit import audit
from crm_kit.db import make_engine, make_sessionmaker
from crm_kit.migrations import upgrade
from sales_service import leasing, payments, units

from sales_fixtures import ACTOR, MIGRATIONS, SUPERVISOR, customer, unit_data

TODAY = date.today()
PAID_AT = datetime.now(timezone.utc).isoformat()


@pytest.fixture
def sessions(database_url):
    upgrade(MIGRATIONS, database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine, "sales")
    engine.dispose()


def trail(sessions, **filters):
    with sessions() as session:
        return audit.trail(session, filters, 1, 1000)["items"][::-1]  # oldest first


def raw_cells(sessions):
    with sessions() as session:
        rows = session.execute(text("SELECT * FROM audit_entries")).all()
    return "\n".join(str(cell) for row in rows for cell in row)


def present(value, cells):
    return value in cells or json.dumps(value)[1:-1] in cells


def sign(session, unit, start, days=364, **more):
    data = {"customer_id": "cust-1", "unit_id": unit.id, "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=days)).isoformat(), "monthly_rent": "3500.00",
            "deposit": "3500.00", "payment_cycle": "monthly", **more}
    return leasing.sign(session, data, ACTOR, customer())


def pay(session, bill, amount, key=None, actor=ACTOR):
    return payments.record_payment(session, {"bill_id": bill.id, "amount": amount,
                                             "paid_at": PAID_AT, "method": "wechat_pay"},
                                   key, actor)


def test_signing_paying_and_charging_are_audited_with_amounts(sessions):
    with sessions() as session:
        unit = units.create(session, unit_data(), ACTOR)
        lease, bills = sign(session, unit, TODAY)
        deposit = next(b for b in bills if b.kind == "deposit")
        pay(session, deposit, "1000.00", key="k-1")
        pay(session, deposit, "1000.00", key="k-1")  # a retry: no second payment, no entry
        charge = payments.add_charge(session, lease.id, {
            "kind": "utilities", "description": "电费 electricity", "amount": "86.40",
            "due_date": TODAY.isoformat()}, SUPERVISOR)
        session.commit()
        lease_id, deposit_id, charge_id, bill_count = lease.id, deposit.id, charge.id, len(bills)

    [signed] = trail(sessions, entity="lease", entity_id=lease_id)
    assert (signed["action"], signed["actor_id"], signed["subject_id"]) == (
        "lease.signed", "staff-1", "cust-1")
    assert signed["before"] is None
    assert signed["after"]["monthly_rent"] == "3500.00" and signed["after"]["deposit"] == "3500.00"
    assert signed["after"]["start_date"] == TODAY.isoformat()
    issued = trail(sessions, action="bill.issued")
    assert len(issued) == bill_count + 1  # the schedule, and the charge
    assert {e["entity_id"] for e in issued} >= {deposit_id, charge_id}
    [charged] = [e for e in issued if e["entity_id"] == charge_id]
    assert charged["after"]["amount"] == "86.40" and charged["actor_id"] == "sup-1"
    assert "description" not in charged["after"]
    [paid] = trail(sessions, action="payment.received")
    assert (paid["entity"], paid["entity_id"]) == ("bill", deposit_id)
    assert paid["before"] == {"paid": "0.00", "status": "unpaid"}
    assert paid["after"]["paid"] == "1000.00" and paid["after"]["status"] == "partially_paid"
    assert paid["after"]["amount"] == "1000.00" and paid["after"]["method"] == "wechat_pay"
    assert paid["actor_roles"] == ["customer_manager"]


def test_termination_refund_late_fees_renewal_and_the_end(sessions):
    with sessions() as session:
        unit = units.create(session, unit_data(), ACTOR)
        start = TODAY - timedelta(days=20)
        lease, bills = sign(session, unit, start)
        deposit = next(b for b in bills if b.kind == "deposit")
        pay(session, deposit, "3500.00")
        payments.scan_overdue(session)  # the first month's rent is past its grace days
        day = start + timedelta(days=44)
        for bill in payments.search(session, {"lease_id": lease.id}, 1, 200)["items"]:
            # the rent up to move-out is paid; the late fee is left to the deposit
            if bill["kind"] == "rent" and bill["due_date"] <= day.isoformat():
                pay(session, payments.get(session, bill["id"]), bill["balance"])
        leasing.terminate(session, lease.id, {"date": day.isoformat(),
                                              "reason": "跳槽去深圳 job moved"}, ACTOR)
        leasing.refund_deposit(session, lease.id, {"deductions": [
            {"reason": "墙面重新粉刷 wall repainting", "amount": "300.00"}]}, SUPERVISOR)
        other = units.create(session, unit_data(code="GX-1204"), ACTOR)
        old, _ = sign(session, other, TODAY - timedelta(days=300), days=330)
        renewal, _ = leasing.renew(session, old.id, {
            "end_date": (TODAY + timedelta(days=400)).isoformat(), "monthly_rent": "3600.00"},
            ACTOR)
        third = units.create(session, unit_data(code="GX-1205"), ACTOR)
        ending, _ = sign(session, third, TODAY - timedelta(days=10), days=5)  # entered late
        session.commit()
        ids = {"lease": lease.id, "old": old.id, "renewal": renewal.id}

    issued = {e["entity_id"]: e for e in trail(sessions, action="bill.issued")}
    [late_fee] = [e for e in issued.values() if e["after"]["kind"] == "late_fee"]
    assert (late_fee["actor_id"], late_fee["actor_roles"]) == ("system", [])
    late_rent = issued[late_fee["after"]["late_fee_for_bill_id"]]["after"]
    assert Decimal(late_fee["after"]["amount"]) == (
        Decimal(late_rent["amount"]) * Decimal("0.05")).quantize(Decimal("0.01"))
    adjusted = trail(sessions, action="bill.adjusted")
    assert adjusted and all(e["actor_id"] == "staff-1" for e in adjusted)
    assert any(e["after"].get("voided") is True for e in adjusted)
    assert any(set(e["before"]) >= {"amount"} and e["after"]["amount"] != e["before"]["amount"]
               for e in adjusted)
    [terminated] = trail(sessions, action="lease.terminated")
    assert terminated["before"]["status"] == "active"
    assert terminated["after"]["status"] == "terminated"
    assert terminated["after"]["terminated_on"] == (
        TODAY - timedelta(days=20) + timedelta(days=44)).isoformat()
    [refunded] = trail(sessions, action="deposit.refunded")
    assert refunded["entity_id"] == ids["lease"] and refunded["actor_id"] == "sup-1"
    assert refunded["after"]["deposit_paid"] == "3500.00"
    assert refunded["after"]["deductions"][0] == "300.00"
    settled = [e for e in trail(sessions, action="payment.received")
               if e["after"]["method"] == "deposit"]  # settled from it
    assert settled and all(e["actor_id"] == "sup-1" for e in settled)
    [renewed] = trail(sessions, action="lease.renewed")
    assert renewed["entity_id"] == ids["old"]
    assert renewed["before"] == {"status": "active", "renewed_to_id": None}
    assert renewed["after"] == {"status": "renewed", "renewed_to_id": ids["renewal"]}
    [new_lease] = trail(sessions, action="lease.signed", entity_id=ids["renewal"])
    assert new_lease["after"]["monthly_rent"] == "3600.00"
    assert new_lease["after"]["renewed_from_id"] == ids["old"]

    with sessions() as session:  # an active lease past its end: the daily scan ends it
        leasing.end_due_leases(session, today=TODAY + timedelta(days=500))
        session.commit()
    ended = trail(sessions, action="lease.ended")
    assert ids["renewal"] in {e["entity_id"] for e in ended}
    assert all(e["actor_id"] == "system" and e["after"] == {"status": "ended"} for e in ended)

    # ids and amounts only: nothing personal, not even free-text reasons
    cells = raw_cells(sessions)
    for value in ("王小明", "13800138000", "跳槽去深圳", "墙面重新粉刷", "job moved",
                  "wall repainting"):
        assert not present(value, cells), value


def test_the_database_keeps_the_money_trail_append_only(sessions):
    with sessions() as session:
        unit = units.create(session, unit_data(), ACTOR)
        sign(session, unit, TODAY)
        session.commit()
    count = len(trail(sessions))
    for sql in ("DELETE FROM audit_entries WHERE action = 'lease.signed'",
                "UPDATE audit_entries SET \"after\" = NULL, \"before\" = NULL",
                "UPDATE audit_entries SET entity_id = 'x'"):
        with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(text(sql))
            session.rollback()
    assert len(trail(sessions)) == count


# ---------------------------------------------------------------- the running service

CUSTOMER = "customer_service.service:CustomerService"
SALES = "sales_service.service:SalesService"


def test_the_running_service_answers_its_audit_trail(start_service, database_url,
                                                     postgres_database, tmp_path, amqp_uri):
    customer_url = (f"sqlite:///{tmp_path / 'customer.db'}" if database_url.startswith("sqlite")
                    else postgres_database("customer"))
    start_service(CUSTOMER, customer_url, name="customer")
    start_service(SALES, database_url, name="sales")
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=15,
                         context_data={"correlation_id": "req-money-1"}) as rpc:
        person = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139000"}, ACTOR)
        unit = rpc.sales.create_unit(unit_data(), ACTOR)
        lease = rpc.sales.sign_lease({
            "customer_id": person["id"], "unit_id": unit["id"],
            "start_date": TODAY.isoformat(), "end_date": (TODAY + timedelta(days=89)).isoformat(),
            "monthly_rent": "3500.00", "deposit": "3500.00", "payment_cycle": "monthly"}, ACTOR)
        deposit = next(b for b in lease["bills"] if b["kind"] == "deposit")
        rpc.sales.record_payment({"bill_id": deposit["id"], "amount": "3500.00",
                                  "paid_at": PAID_AT, "method": "cash"}, "pay-1", ACTOR)

        page = rpc.sales.audit_trail({"subject_id": person["id"]}, 1, 50)
        assert page["total"] == 1 + len(lease["bills"]) + 1
        newest = page["items"][0]
        assert (newest["source"], newest["action"], newest["entity_id"]) == (
            "sales", "payment.received", deposit["id"])
        assert newest["after"]["amount"] == "3500.00"
        assert newest["correlation_id"] == "req-money-1"
        assert rpc.sales.audit_trail({"entity": "lease"}, 1, 50)["items"][0]["after"][
            "customer_id"] == person["id"]
        assert rpc.sales.audit_trail({"actor_id": "nobody"}, 1, 50)["total"] == 0
