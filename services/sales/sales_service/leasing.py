"""Leases (租约): signing, renewal, early termination, natural end, deposit refund.

Rules (docs/sales.md):
- Signing needs the customer to exist (asked of the customer service before the transaction)
  and the unit to be free for the whole term: not under maintenance, and no other active lease
  of the unit overlapping the term (Conflict). A lease whose term has already ended when it is
  entered (existing leases entered after the fact) is stored ``ended`` and leaves the unit as
  it is; otherwise it is ``active`` and the unit becomes ``leased`` (``reserved`` if the term
  starts in the future).
- Signing generates the bill schedule (``billing.rent_schedule``) and the deposit bill, wins
  the opportunity it came from, and emits ``lease.signed`` and one ``bill.issued`` per bill.
- Renewal: a new lease from the day after the old end to the new end date, with the new rent;
  the old lease becomes ``renewed`` (``lease.renewed``). The deposit carries over (no new
  deposit bill).
- Early termination on a date inside the term: bills for periods starting after that date are
  voided, the bill of the period containing it is cut to the rent up to that date; rent already
  paid for days after it becomes the lease's ``credit``, returned with the deposit; the unit
  becomes vacant (``lease.terminated``).
- A lease past its end date is ended by the daily scan (``lease.ended``); the unit becomes vacant.
- Deposit refund at move-out: the deposit paid, plus the rent credit, minus deductions, minus
  anything the tenant still owes on the lease (those bills are settled from it); it cannot go
  below zero (deductions larger than that are refused).
"""
import uuid
from datetime import date, timedelta
from types import SimpleNamespace
from decimal import Decimal

from sqlalchemy import func, insert, or_, select

from crm_kit import audit, config
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event, record_events
from sales_service import billing, schemas, units
from sales_service.models import Bill, DepositRefund, Lease, Unit

ZERO = Decimal("0.00")


def money(value):
    return None if value is None else f"{value:.2f}"


def actor_id(actor):
    return (actor or {}).get("id")


def audit_view(lease):
    """A lease as the audit trail keeps it: ids, dates, status and money; never personal data
    (free-text reasons stay out), so the sales audit trail has nothing to redact."""
    return {"customer_id": lease.customer_id, "unit_id": lease.unit_id,
            "owner_id": lease.owner_id, "start_date": lease.start_date,
            "end_date": lease.end_date, "monthly_rent": lease.monthly_rent,
            "deposit": lease.deposit, "payment_cycle": lease.payment_cycle,
            "status": lease.status, "credit": lease.credit,
            "renewed_from_id": lease.renewed_from_id, "renewed_to_id": lease.renewed_to_id,
            "terminated_on": lease.terminated_on}


def audit_lease(session, actor, action, lease, before, after=None):
    return audit.record(session, actor, action, "lease", lease.id, before,
                        audit_view(lease) if after is None else after,
                        subject_id=lease.customer_id)


# -- reading -------------------------------------------------------------------------------
def to_dict(lease, bills=None, refund=None):
    data = {
        "id": lease.id, "customer_id": lease.customer_id, "unit_id": lease.unit_id,
        "opportunity_id": lease.opportunity_id, "owner_id": lease.owner_id,
        "start_date": lease.start_date.isoformat(), "end_date": lease.end_date.isoformat(),
        "monthly_rent": money(lease.monthly_rent), "deposit": money(lease.deposit),
        "payment_cycle": lease.payment_cycle, "status": lease.status,
        "term_rent": money(billing.term_rent(lease.monthly_rent, lease.start_date,
                                             lease.end_date)),
        "renewed_from_id": lease.renewed_from_id, "renewed_to_id": lease.renewed_to_id,
        "credit": money(lease.credit),
        "terminated_on": lease.terminated_on.isoformat() if lease.terminated_on else None,
        "termination_reason": lease.termination_reason,
        "signed_at": lease.signed_at.isoformat(), "created_at": lease.created_at.isoformat(),
        "updated_at": lease.updated_at.isoformat(),
    }
    if bills is not None:
        from sales_service import payments

        data["bills"] = [payments.bill_dict(b) for b in bills]
    if refund is not None:
        data["deposit_refund"] = refund_dict(refund)
    return data


def get(session, lease_id, for_update=False):
    query = select(Lease).where(Lease.id == lease_id)
    if for_update:
        query = query.with_for_update()
    lease = session.scalar(query)
    if lease is None:
        raise NotFound(f"lease {lease_id} does not exist", {"lease_id": lease_id})
    return lease


def bills_of(session, lease_id):
    return session.scalars(select(Bill).where(Bill.lease_id == lease_id, Bill.voided_at.is_(None))
                           .order_by(Bill.due_date, Bill.kind.desc(), Bill.id)).all()


def detail(session, lease_id):
    lease = get(session, lease_id)
    refund = session.scalar(select(DepositRefund).where(DepositRefund.lease_id == lease_id))
    data = to_dict(lease, bills_of(session, lease_id))
    data["deposit_refund"] = refund_dict(refund) if refund else None
    return data


def search(session, filters, page=1, per_page=50):
    filters = filters or {}
    query = select(Lease)
    for name in ("customer_id", "status", "unit_id", "owner_id"):
        if filters.get(name):
            query = query.where(getattr(Lease, name) == filters[name])
    if filters.get("owner_ids") is not None:
        query = query.where(Lease.owner_id.in_(filters["owner_ids"]))
    if filters.get("customer_ids") is not None:  # the caller's customers (gateway scopes)
        query = query.where(Lease.customer_id.in_(filters["customer_ids"]))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Lease.start_date.desc(), Lease.id)
                           .offset((page - 1) * per_page).limit(per_page))
    return {"items": [to_dict(r) for r in rows], "total": total, "page": page,
            "per_page": per_page}


# -- signing -------------------------------------------------------------------------------
def _check_unit_free(session, unit, start, end, except_lease_id=None):
    if unit.status == "maintenance":
        raise Conflict(f"unit {unit.code} is under maintenance", {"unit_status": unit.status})
    overlapping = select(Lease.id).where(
        Lease.unit_id == unit.id, Lease.status == "active",
        Lease.start_date <= end, Lease.end_date >= start)
    if except_lease_id:
        overlapping = overlapping.where(Lease.id != except_lease_id)
    clash = session.scalar(overlapping.limit(1))
    if clash:
        raise Conflict(f"unit {unit.code} is leased for part of that term (lease {clash})",
                       {"lease_id": clash, "unit_status": unit.status})


def _unit_status_for(lease, today):
    if lease.status != "active":
        return None
    return "reserved" if lease.start_date > today else "leased"


def sign(session, data, actor, customer, today=None):
    """Sign a lease. ``customer`` is the customer service's record (checked by the caller)."""
    today = today or date.today()
    data = schemas.load(schemas.lease_schema, data)
    unit = session.scalar(select(Unit).where(Unit.id == data["unit_id"]).with_for_update())
    if unit is None:
        raise InvalidInput({"unit_id": ["no such unit"]})
    _check_unit_free(session, unit, data["start_date"], data["end_date"])
    opportunity = None
    if data.get("opportunity_id"):
        from sales_service import opportunities

        opportunity = opportunities.get(session, data["opportunity_id"])
        if opportunity.customer_id != customer["id"]:
            raise InvalidInput({"opportunity_id": ["belongs to another customer"]})
        if opportunity.stage in ("won", "lost"):
            raise Conflict(f"opportunity is already {opportunity.stage}",
                           {"stage": opportunity.stage})
    moment = now()
    owner = (data.get("owner_id") or (opportunity.owner_id if opportunity else None)
             or customer.get("owner_id") or actor_id(actor))
    lease = Lease(id=str(uuid.uuid4()), customer_id=customer["id"], unit_id=unit.id,
                  opportunity_id=data.get("opportunity_id"), owner_id=owner,
                  start_date=data["start_date"], end_date=data["end_date"],
                  monthly_rent=data["monthly_rent"], deposit=data["deposit"],
                  payment_cycle=data["payment_cycle"],
                  status="active" if data["end_date"] >= today else "ended",
                  signed_at=moment, created_at=moment, updated_at=moment,
                  closed_at=None if data["end_date"] >= today else moment)
    session.add(lease)
    session.flush()
    status = _unit_status_for(lease, today)
    if status:
        units.set_status_by_lease(session, unit, status)
    audit_lease(session, actor, "lease.signed", lease, None)
    bills = issue_schedule(session, lease, with_deposit=True,
                           first_events=[("lease.signed", _lease_event(lease, unit))],
                           actor=actor)
    if opportunity is not None:
        from sales_service import opportunities

        opportunities.mark_won(session, opportunity, lease.id)
    return lease, bills


def _lease_event(lease, unit=None):
    data = {"lease_id": lease.id, "customer_id": lease.customer_id, "unit_id": lease.unit_id,
            "owner_id": lease.owner_id, "opportunity_id": lease.opportunity_id,
            "start_date": lease.start_date.isoformat(), "end_date": lease.end_date.isoformat(),
            "monthly_rent": money(lease.monthly_rent), "deposit": money(lease.deposit),
            "payment_cycle": lease.payment_cycle, "status": lease.status,
            "renewed_from_id": lease.renewed_from_id}
    if unit is not None:
        data.update(district=unit.district, layout=unit.layout)
    return data


def issue_schedule(session, lease, with_deposit, first_events=(), actor=None):
    """Create and announce the lease's bills: deposit (if asked) and every rent period.
    ``first_events`` (e.g. ``lease.signed``) go out just before the bills' events.

    Written with one bulk INSERT for the bills and one for their events: a lease has up to a
    few dozen bills and bulk loads sign thousands of leases (bench/sales_bench.py).
    """
    from sales_service import payments

    moment = now()
    common = {"lease_id": lease.id, "customer_id": lease.customer_id, "owner_id": lease.owner_id,
              "paid": ZERO, "status": "unpaid", "created_at": moment, "updated_at": moment}
    rows = []
    if with_deposit and lease.deposit > ZERO:
        rows.append({**common, "id": str(uuid.uuid4()), "kind": "deposit",
                     "description": "押金 deposit", "period_start": None, "period_end": None,
                     "due_date": lease.start_date, "amount": lease.deposit})
    for period in billing.rent_schedule(lease.monthly_rent, lease.start_date, lease.end_date,
                                        lease.payment_cycle):
        rows.append({**common, "id": str(uuid.uuid4()), "kind": "rent",
                     "description": f"租金 rent {period.start.isoformat()}–{period.end.isoformat()}",
                     "period_start": period.start, "period_end": period.end,
                     "due_date": period.due, "amount": period.amount})
    session.execute(insert(Bill), rows)
    bills = [SimpleNamespace(**row) for row in rows]  # read-only snapshots, for the answer
    record_events(session, [*first_events,
                            *(("bill.issued", payments.bill_event(bill)) for bill in bills)])
    audit.record_many(session, actor, [payments.audit_issued(bill) for bill in bills])
    return bills


# -- renewal, termination, end -------------------------------------------------------------
def renew(session, lease_id, data, actor, today=None):
    today = today or date.today()
    data = schemas.load(schemas.renewal_schema, data)
    lease = get(session, lease_id, for_update=True)
    if lease.status != "active":
        raise Conflict(f"only an active lease can be renewed; this one is {lease.status}",
                       {"status": lease.status})
    start = lease.end_date + timedelta(days=1)
    if data["end_date"] < start:
        raise InvalidInput({"end_date": [f"must be on or after {start.isoformat()}"]})
    unit = session.get(Unit, lease.unit_id)
    _check_unit_free(session, unit, start, data["end_date"], except_lease_id=lease.id)
    moment = now()
    renewal = Lease(id=str(uuid.uuid4()), customer_id=lease.customer_id, unit_id=lease.unit_id,
                    opportunity_id=None, owner_id=lease.owner_id, start_date=start,
                    end_date=data["end_date"], monthly_rent=data["monthly_rent"],
                    deposit=lease.deposit, payment_cycle=data.get("payment_cycle")
                    or lease.payment_cycle, status="active", renewed_from_id=lease.id,
                    signed_at=moment, created_at=moment, updated_at=moment)
    session.add(renewal)
    before = audit_view(lease)
    lease.status, lease.renewed_to_id = "renewed", renewal.id
    lease.closed_at = lease.updated_at = moment
    session.flush()
    audit_lease(session, actor, "lease.renewed", lease, before)
    audit_lease(session, actor, "lease.signed", renewal, None)
    bills = issue_schedule(session, renewal, with_deposit=False, actor=actor)
    _win_renewal_opportunity(session, lease, renewal)
    record_event(session, "lease.renewed", {**_lease_event(renewal, unit),
                                            "lease_id": lease.id, "new_lease_id": renewal.id})
    return renewal, bills


def _win_renewal_opportunity(session, lease, renewal):
    from sales_service import opportunities
    from sales_service.models import Opportunity

    opportunity = session.scalar(select(Opportunity).where(
        Opportunity.renewal_of_lease_id == lease.id))
    if opportunity is not None and opportunity.stage not in ("won", "lost"):
        opportunities.mark_won(session, opportunity, renewal.id)


def terminate(session, lease_id, data, actor):
    data = schemas.load(schemas.termination_schema, data)
    lease = get(session, lease_id, for_update=True)
    if lease.status != "active":
        raise Conflict(f"only an active lease can be terminated; this one is {lease.status}",
                       {"status": lease.status})
    day = data["date"]
    if not lease.start_date <= day <= lease.end_date:
        raise InvalidInput({"date": [f"must lie in the term {lease.start_date.isoformat()}"
                                     f"–{lease.end_date.isoformat()}"]})
    moment = now()
    from sales_service import payments

    lease_before = audit_view(lease)
    for bill in session.scalars(select(Bill).where(Bill.lease_id == lease.id, Bill.kind == "rent",
                                                   Bill.voided_at.is_(None))):
        if bill.period_end <= day:
            continue
        bill_before = payments.audit_view(bill)
        owed = (ZERO if bill.period_start > day
                else billing.term_rent(lease.monthly_rent, bill.period_start, day))
        if bill.paid > owed:  # paid for days after move-out: a credit, returned with the deposit
            lease.credit += bill.paid - owed
            bill.paid = owed
        if owed == ZERO:
            bill.voided_at = bill.updated_at = moment
        else:
            payments.set_amount(session, bill, owed)
        payments.audit_bill(session, actor, "bill.adjusted", bill, bill_before)
    lease.status, lease.terminated_on = "terminated", day
    lease.termination_reason = data["reason"]
    lease.closed_at = lease.updated_at = moment
    audit_lease(session, actor, "lease.terminated", lease, lease_before)
    _free_unit(session, lease)
    record_event(session, "lease.terminated", {**_lease_event(lease), "date": day.isoformat(),
                                               "reason": data["reason"]})
    return lease


def _free_unit(session, lease):
    unit = session.get(Unit, lease.unit_id)
    still_leased = session.scalar(select(Lease.id).where(
        Lease.unit_id == unit.id, Lease.status == "active", Lease.id != lease.id).limit(1))
    if not still_leased and unit.status in ("leased", "reserved"):
        units.set_status_by_lease(session, unit, "vacant")


def end_due_leases(session, today=None):
    """The daily scan: active leases whose term is over are ended. Returns how many."""
    today = today or date.today()
    due = session.scalars(select(Lease).where(Lease.status == "active", Lease.end_date < today)
                          .order_by(Lease.end_date).limit(1000).with_for_update(skip_locked=True)
                          ).all()
    moment = now()
    for lease in due:
        audit_lease(session, audit.SYSTEM, "lease.ended", lease, {"status": lease.status},
                    {"status": "ended"})
        lease.status, lease.closed_at, lease.updated_at = "ended", moment, moment
        _free_unit(session, lease)
        record_event(session, "lease.ended", _lease_event(lease))
    # reserved units whose lease has started are now leased
    starting = session.scalars(select(Lease).where(Lease.status == "active",
                                                   Lease.start_date <= today)
                               .join(Unit, Unit.id == Lease.unit_id)
                               .where(Unit.status == "reserved")).all()
    for lease in starting:
        units.set_status_by_lease(session, session.get(Unit, lease.unit_id), "leased")
    return len(due)


# -- deposit -------------------------------------------------------------------------------
def refund_dict(refund):
    return {"deposit_paid": money(refund.deposit_paid), "credit": money(refund.credit),
            "deducted": money(refund.deducted),
            "refunded": money(refund.refunded), "deductions": refund.deductions,
            "refunded_at": refund.refunded_at.isoformat()}


def refund_deposit(session, lease_id, data, actor):
    """Settle the deposit at move-out: paid deposit − deductions − what is still owed."""
    data = schemas.load(schemas.deposit_refund_schema, data)
    lease = get(session, lease_id, for_update=True)
    if lease.status not in ("ended", "terminated"):
        raise Conflict("the deposit is settled at move-out: only for an ended or terminated "
                       f"lease (this one is {lease.status})", {"status": lease.status})
    if session.scalar(select(DepositRefund.id).where(DepositRefund.lease_id == lease.id)):
        raise Conflict("the deposit of this lease was settled already", {"lease_id": lease.id})
    chain = [lease.id]
    while lease.renewed_from_id:  # a renewal carries the first lease's deposit
        chain.append(lease.renewed_from_id)
        lease = get(session, lease.renewed_from_id)
    deposit_paid = sum(session.scalars(select(Bill.paid).where(
        Bill.lease_id.in_(chain), Bill.kind == "deposit")), ZERO)
    credit = sum(session.scalars(select(Lease.credit).where(Lease.id.in_(chain))), ZERO)
    open_bills = session.scalars(select(Bill).where(
        Bill.lease_id.in_(chain), Bill.kind != "deposit", Bill.voided_at.is_(None),
        or_(Bill.status == "unpaid", Bill.status == "partially_paid"))).all()
    owed = sum((b.amount - b.paid for b in open_bills), ZERO)
    deductions = [{"reason": d["reason"], "amount": money(d["amount"])}
                  for d in data["deductions"]]
    if owed:
        deductions.append({"reason": "未付款项 unpaid bills", "amount": money(owed)})
    deducted = sum((Decimal(d["amount"]) for d in deductions), ZERO)
    if deducted > deposit_paid + credit:
        raise InvalidInput({"deductions": [
            f"deductions and unpaid bills ({money(deducted)}) exceed the deposit paid and the "
            f"rent credit ({money(deposit_paid + credit)})"]})
    from sales_service import payments

    payments.settle_from_deposit(session, open_bills, actor)
    refund = DepositRefund(lease_id=chain[0], deposit_paid=deposit_paid, credit=credit,
                           deductions=deductions, deducted=deducted,
                           refunded=deposit_paid + credit - deducted,
                           refunded_at=now(), actor_id=actor_id(actor))
    session.add(refund)
    audit.record(session, actor, "deposit.refunded", "lease", chain[0], None, {
        "deposit_paid": deposit_paid, "credit": credit, "deducted": deducted,
        "refunded": refund.refunded, "deductions": [d["amount"] for d in deductions]},
        subject_id=lease.customer_id)
    record_event(session, "deposit.refunded", {
        "lease_id": chain[0], "customer_id": lease.customer_id,
        "deposit_paid": money(deposit_paid), "credit": money(credit),
        "deducted": money(deducted), "refunded": money(refund.refunded)})
    return refund


# -- renewals ------------------------------------------------------------------------------
RENEWAL_WINDOW_DAYS = int(config.env("CRM_RENEWAL_WINDOW_DAYS", "60"))


def open_renewal_opportunities(session, today=None, window_days=RENEWAL_WINDOW_DAYS):
    """Active leases ending within the window, not renewed, get one renewal opportunity each."""
    from sales_service import opportunities
    from sales_service.models import Opportunity

    today = today or date.today()
    has_one = select(Opportunity.renewal_of_lease_id).where(
        Opportunity.renewal_of_lease_id.is_not(None))
    due = session.scalars(select(Lease).where(
        Lease.status == "active", Lease.renewed_to_id.is_(None),
        Lease.end_date >= today, Lease.end_date <= today + timedelta(days=window_days),
        Lease.id.not_in(has_one)).order_by(Lease.end_date).limit(1000)).all()
    opened = [opportunities.create_renewal(session, lease, (lease.end_date - today).days)
              for lease in due]
    return [o for o in opened if o is not None]
