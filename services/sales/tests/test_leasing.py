"""Leases, bills, payments, overdue, renewals and deposits on a real (SQLite) database."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_kit.errors import Conflict, InvalidInput
from sales_service import leasing, opportunities, payments, tasks, units
from sales_service.models import Bill, Task

from sales_fixtures import ACTOR, customer, events, opportunity_data, unit_data

TODAY = date.today()


def lease_data(unit_id, **overrides):
    data = {"customer_id": "cust-1", "unit_id": unit_id,
            "start_date": TODAY.isoformat(),
            "end_date": (TODAY + timedelta(days=364)).isoformat(),
            "monthly_rent": "3500.00", "deposit": "3500.00", "payment_cycle": "monthly"}
    data.update(overrides)
    return data


@pytest.fixture
def unit(session):
    return units.create(session, unit_data(), ACTOR)


def full_month_bill(bills):
    return next(b for b in bills if b.kind == "rent" and b.amount == Decimal("3500.00"))


def sign(session, unit, **overrides):
    return leasing.sign(session, lease_data(unit.id, **overrides), ACTOR, customer())


def test_signing_issues_the_schedule_marks_the_unit_and_wins_the_opportunity(session, unit):
    opportunity = opportunities.create(session, opportunity_data(), ACTOR, customer())
    lease, bills = sign(session, unit, opportunity_id=opportunity.id)
    assert unit.status == "leased" and opportunity.stage == "won"
    rent = [b for b in bills if b.kind == "rent"]
    [deposit] = [b for b in bills if b.kind == "deposit"]
    assert deposit.amount == Decimal("3500.00") and deposit.due_date == lease.start_date
    assert sum(b.amount for b in rent) == Decimal(leasing.to_dict(lease)["term_rent"])
    [signed] = events(session, "lease.signed")
    assert signed["data"]["lease_id"] == lease.id and signed["data"]["district"] == "高新区"
    assert len(events(session, "bill.issued")) == len(bills)


def test_a_unit_cannot_be_leased_twice_for_overlapping_terms(session, unit):
    sign(session, unit)
    with pytest.raises(Conflict):
        sign(session, unit, start_date=(TODAY + timedelta(days=30)).isoformat())


def test_maintenance_unit_refused(session, unit):
    units.update(session, unit.id, {"status": "maintenance"}, ACTOR)
    with pytest.raises(Conflict):
        sign(session, unit)


@pytest.mark.parametrize("field,value", [
    ("monthly_rent", 3500.0), ("monthly_rent", "35.001"), ("monthly_rent", "-1"),
    ("deposit", "abc"), ("payment_cycle", "weekly"), ("end_date", "2000-01-01"),
    ("start_date", "not a date"),
])
def test_bad_lease_values_are_named(session, unit, field, value):
    with pytest.raises(InvalidInput) as caught:
        sign(session, unit, **{field: value})
    assert field in caught.value.details


def test_a_past_lease_entered_after_the_fact_is_ended_and_leaves_the_unit(session, unit):
    lease, bills = sign(session, unit, start_date="2023-03-01", end_date="2024-02-29")
    assert lease.status == "ended" and unit.status == "vacant"
    assert sum(b.amount for b in bills if b.kind == "rent") == Decimal("42000.00")


def test_future_lease_reserves_and_the_scan_ends_and_frees(session, unit):
    start = TODAY + timedelta(days=10)
    lease, _ = sign(session, unit, start_date=start.isoformat(),
                    end_date=(start + timedelta(days=90)).isoformat())
    assert unit.status == "reserved"
    leasing.end_due_leases(session, today=start)
    assert unit.status == "leased"
    leasing.end_due_leases(session, today=start + timedelta(days=91))
    assert (lease.status, unit.status) == ("ended", "vacant")
    assert len(events(session, "lease.ended")) == 1


def test_payments_partial_full_and_never_above_the_balance(session, unit):
    _, bills = sign(session, unit)
    bill = full_month_bill(bills)
    paid_at = datetime.now(timezone.utc).isoformat()
    first = payments.record_payment(session, {"bill_id": bill.id, "amount": "1000.00",
                                              "paid_at": paid_at, "method": "wechat_pay"},
                                    None, ACTOR)
    assert (first["balance"], first["status"]) == ("2500.00", "partially_paid")
    with pytest.raises(InvalidInput) as caught:
        payments.record_payment(session, {"bill_id": bill.id, "amount": "2500.01",
                                          "paid_at": paid_at, "method": "cash"}, None, ACTOR)
    assert "amount" in caught.value.details
    last = payments.record_payment(session, {"bill_id": bill.id, "amount": "2500.00",
                                             "paid_at": paid_at, "method": "cash"}, None, ACTOR)
    assert (last["balance"], last["status"]) == ("0.00", "paid")
    received = events(session, "payment.received")
    assert [e["data"]["amount"] for e in received] == ["1000.00", "2500.00"]
    assert received[-1]["data"]["customer_id"] == "cust-1"


def test_a_retried_payment_with_the_same_key_pays_once(session, unit):
    _, bills = sign(session, unit)
    bill = full_month_bill(bills)
    body = {"bill_id": bill.id, "amount": "3500.00",
            "paid_at": datetime.now(timezone.utc).isoformat(), "method": "alipay"}
    first = payments.record_payment(session, body, "key-1", ACTOR)
    again = payments.record_payment(session, body, "key-1", ACTOR)
    assert first == again and payments.get(session, bill.id).paid == Decimal("3500.00")
    assert len(events(session, "payment.received")) == 1
    with pytest.raises(Conflict):
        payments.record_payment(session, {**body, "amount": "1.00"}, "key-1", ACTOR)


def test_overdue_shows_at_once_and_the_scan_announces_once_with_a_task(session, unit):
    start = TODAY - timedelta(days=70)
    _, bills = sign(session, unit, start_date=start.isoformat(),
                    end_date=(start + timedelta(days=364)).isoformat())
    overdue = payments.search(session, {"status": "overdue"}, per_page=200)
    past_due = [b for b in bills if b.due_date < TODAY]
    assert overdue["total"] == len(past_due) > 0
    assert all(item["status"] == "overdue" and item["days_overdue"] > 0
               for item in overdue["items"])
    open_task = tasks_opener()
    result = payments.scan_overdue(session, open_task=open_task)
    assert result["overdue"] == len(past_due)
    assert payments.scan_overdue(session, open_task=open_task)["overdue"] == 0  # once
    assert len(events(session, "bill.overdue")) == len(past_due)
    collection = session.scalars(select(Task).where(Task.kind == "collection")).all()
    assert len(collection) == len(past_due) and {t.owner_id for t in collection} == {"staff-1"}


def tasks_opener():
    def open_task(session, bill):
        tasks.create_system_task(session, bill.owner_id, "collection",
                                 f"催缴 collect {bill.amount - bill.paid}",
                                 datetime.now(timezone.utc) + timedelta(days=1),
                                 bill_id=bill.id, lease_id=bill.lease_id,
                                 customer_id=bill.customer_id)
    return open_task


def test_late_fee_once_after_the_grace_days(session, unit):
    start = TODAY - timedelta(days=20)
    _, bills = sign(session, unit, start_date=start.isoformat(),
                    end_date=(start + timedelta(days=364)).isoformat())
    first_rent = min((b for b in bills if b.kind == "rent"), key=lambda b: b.due_date)
    payments.scan_overdue(session)
    payments.scan_overdue(session)
    fees = session.scalars(select(Bill).where(Bill.kind == "late_fee")).all()
    assert [(f.late_fee_for_bill_id, f.amount) for f in fees] == [
        (first_rent.id, (first_rent.amount * Decimal("0.05")).quantize(Decimal("0.01")))]


def test_renewal_window_opens_one_renewal_opportunity(session, unit):
    start = TODAY - timedelta(days=320)
    lease, _ = sign(session, unit, start_date=start.isoformat(),
                    end_date=(TODAY + timedelta(days=45)).isoformat())
    [opened] = leasing.open_renewal_opportunities(session)
    assert (opened.kind, opened.renewal_of_lease_id, opened.owner_id) == (
        "renewal", lease.id, "staff-1")
    assert leasing.open_renewal_opportunities(session) == []
    renewal, bills = leasing.renew(session, lease.id, {
        "end_date": (TODAY + timedelta(days=45 + 365)).isoformat(),
        "monthly_rent": "3600.00"}, ACTOR)
    assert lease.status == "renewed" and renewal.renewed_from_id == lease.id
    assert opened.stage == "won"
    assert not [b for b in bills if b.kind == "deposit"]  # the deposit carries over
    [renewed] = events(session, "lease.renewed")
    assert renewed["data"]["lease_id"] == lease.id
    assert renewed["data"]["new_lease_id"] == renewal.id


def test_termination_voids_later_bills_prorates_the_current_and_frees_the_unit(session, unit):
    start = TODAY - timedelta(days=20)
    lease, bills = sign(session, unit, start_date=start.isoformat(),
                        end_date=(start + timedelta(days=364)).isoformat())
    day = start + timedelta(days=44)  # in the second or third month
    leasing.terminate(session, lease.id, {"date": day.isoformat(), "reason": "job moved"}, ACTOR)
    remaining = leasing.bills_of(session, lease.id)
    rent = [b for b in remaining if b.kind == "rent"]
    assert max(b.period_start for b in rent) <= day
    assert sum(b.amount for b in rent) == leasing.billing.term_rent(
        lease.monthly_rent, start, day)
    assert (lease.status, unit.status) == ("terminated", "vacant")
    with pytest.raises(Conflict):
        leasing.terminate(session, lease.id, {"date": day.isoformat(), "reason": "x"}, ACTOR)


def test_deposit_refund_deducts_and_settles_what_is_owed(session, unit):
    lease, bills = sign(session, unit)
    paid_at = datetime.now(timezone.utc).isoformat()
    deposit = next(b for b in bills if b.kind == "deposit")
    payments.record_payment(session, {"bill_id": deposit.id, "amount": "3500.00",
                                      "paid_at": paid_at, "method": "bank_transfer"}, None, ACTOR)
    with pytest.raises(Conflict):  # not while the lease runs
        leasing.refund_deposit(session, lease.id, {"deductions": []}, ACTOR)
    day = lease.start_date + timedelta(days=9)
    leasing.terminate(session, lease.id, {"date": day.isoformat(), "reason": "moving"}, ACTOR)
    refund = leasing.refund_deposit(session, lease.id, {"deductions": [
        {"reason": "wall repainting", "amount": "300.00"}]}, ACTOR)
    owed = leasing.billing.term_rent(lease.monthly_rent, lease.start_date, day)
    assert refund.refunded == Decimal("3500.00") - Decimal("300.00") - owed
    everything = payments.search(session, {"lease_id": lease.id}, per_page=200)
    assert everything["total"] >= 2  # the deposit and at least one rent bill
    assert {b["status"] for b in everything["items"]} == {"paid"}
    with pytest.raises(Conflict):
        leasing.refund_deposit(session, lease.id, {"deductions": []}, ACTOR)


def test_rent_paid_beyond_an_early_move_out_comes_back_with_the_deposit(session, unit):
    start = (TODAY.replace(day=1) + timedelta(days=32)).replace(day=1)  # a month's first day
    lease, bills = sign(session, unit, start_date=start.isoformat(),
                        end_date=(start + timedelta(days=364)).isoformat(),
                        payment_cycle="quarterly")
    paid_at = datetime.now(timezone.utc).isoformat()
    rent = sorted((b for b in bills if b.kind == "rent"), key=lambda b: b.due_date)
    deposit = next(b for b in bills if b.kind == "deposit")
    for bill, amount in ((deposit, "3500.00"), (rent[0], "10500.00"), (rent[1], "1000.00")):
        payments.record_payment(session, {"bill_id": bill.id, "amount": amount,
                                          "paid_at": paid_at, "method": "bank_transfer"},
                                None, ACTOR)
    day = start + timedelta(days=9)  # ten days lived in
    leasing.terminate(session, lease.id, {"date": day.isoformat(), "reason": "moving"}, ACTOR)
    owed = leasing.billing.term_rent(lease.monthly_rent, start, day)
    assert lease.credit == Decimal("10500.00") - owed + Decimal("1000.00")
    [kept] = [b for b in leasing.bills_of(session, lease.id) if b.kind == "rent"]
    assert (kept.amount, kept.paid, kept.status) == (owed, owed, "paid")
    refund = leasing.refund_deposit(session, lease.id, {"deductions": [
        {"reason": "cleaning", "amount": "200.00"}]}, ACTOR)
    assert refund.refunded == Decimal("3500.00") + lease.credit - Decimal("200.00")
    assert leasing.refund_dict(refund)["credit"] == f"{lease.credit:.2f}"
