"""Bills and payments: balances, partial payments, idempotent retries, overdue and reminders.

Rules (docs/sales.md):
- A bill's stored status is ``unpaid``, ``partially_paid`` or ``paid``; it *shows* as
  ``overdue`` while unpaid or partly paid after its due date (so ``GET /bills?status=overdue``
  is right the moment a due date passes, without waiting for a scan).
- A payment is more than 0.00 and at most the bill's balance (more → 422 on ``amount``).
  With an idempotency key, a retry (same key, same bill and amount) returns the first result
  and pays nothing more; the same key for another bill or amount is a 409.
- The daily scan announces each bill the first time it is seen overdue (``bill.overdue``) and
  opens one collection (催缴) task for the lease's owner.
- Late fee: a rent bill still open ``LATE_FEE_GRACE_DAYS`` (5) days after its due date gets one
  late-fee bill of ``LATE_FEE_RATE`` (5%) of its balance at that moment, due at once. Once per
  bill, whatever is paid later.
"""
import uuid
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from crm_kit import audit, config
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from sales_service import schemas
from sales_service.models import Bill, Lease, Payment

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
OPEN = ("unpaid", "partially_paid")
LATE_FEE_RATE = Decimal(config.env("CRM_LATE_FEE_RATE", "0.05"))
LATE_FEE_GRACE_DAYS = int(config.env("CRM_LATE_FEE_GRACE_DAYS", "5"))


def money(value):
    return None if value is None else f"{value:.2f}"


def shown_status(bill, today=None):
    today = today or date.today()
    if bill.status in OPEN and bill.due_date < today:
        return "overdue"
    return bill.status


def bill_dict(bill, today=None):
    today = today or date.today()
    status = shown_status(bill, today)
    return {
        "id": bill.id, "lease_id": bill.lease_id, "customer_id": bill.customer_id,
        "owner_id": bill.owner_id, "kind": bill.kind, "description": bill.description,
        "period_start": bill.period_start.isoformat() if bill.period_start else None,
        "period_end": bill.period_end.isoformat() if bill.period_end else None,
        "due_date": bill.due_date.isoformat(), "amount": money(bill.amount),
        "paid": money(bill.paid), "balance": money(bill.amount - bill.paid), "status": status,
        "days_overdue": (today - bill.due_date).days if status == "overdue" else 0,
        "created_at": bill.created_at.isoformat(),
    }


def bill_event(bill):
    return {"bill_id": bill.id, "lease_id": bill.lease_id, "customer_id": bill.customer_id,
            "owner_id": bill.owner_id, "kind": bill.kind, "amount": money(bill.amount),
            "due_date": bill.due_date.isoformat(),
            "period_start": bill.period_start.isoformat() if bill.period_start else None,
            "period_end": bill.period_end.isoformat() if bill.period_end else None}


def audit_view(bill):
    """A bill as the audit trail keeps it: ids, dates, status and money (no descriptions)."""
    return {"lease_id": bill.lease_id, "customer_id": bill.customer_id, "kind": bill.kind,
            "amount": bill.amount, "paid": bill.paid, "status": bill.status,
            "due_date": bill.due_date, "period_start": bill.period_start,
            "period_end": bill.period_end,
            # (the snapshots of a bulk-issued schedule have neither)
            "late_fee_for_bill_id": getattr(bill, "late_fee_for_bill_id", None),
            "voided": getattr(bill, "voided_at", None) is not None}


def audit_issued(bill):
    """The audit entry of a new bill, for ``audit.record_many``."""
    return {"action": "bill.issued", "entity": "bill", "entity_id": bill.id, "before": None,
            "after": audit_view(bill), "subject_id": bill.customer_id}


def audit_bill(session, actor, action, bill, before, after=None):
    return audit.record(session, actor, action, "bill", bill.id, before,
                        audit_view(bill) if after is None else after,
                        subject_id=bill.customer_id)


def get(session, bill_id, for_update=False):
    query = select(Bill).where(Bill.id == bill_id, Bill.voided_at.is_(None))
    if for_update:
        query = query.with_for_update()
    bill = session.scalar(query)
    if bill is None:
        raise NotFound(f"bill {bill_id} does not exist", {"bill_id": bill_id})
    return bill


def detail(session, bill_id):
    bill = get(session, bill_id)
    rows = session.scalars(select(Payment).where(Payment.bill_id == bill.id)
                           .order_by(Payment.paid_at, Payment.id))
    return {**bill_dict(bill), "payments": [payment_dict(p) for p in rows]}


def payment_dict(payment):
    return {"id": payment.id, "bill_id": payment.bill_id, "amount": money(payment.amount),
            "paid_at": payment.paid_at.isoformat(), "method": payment.method,
            "recorded_by": payment.recorded_by}


def _status_filter(status, today):
    overdue = and_(Bill.status.in_(OPEN), Bill.due_date < today)
    if status == "overdue":
        return overdue
    if status in OPEN:
        return and_(Bill.status == status, Bill.due_date >= today)
    return Bill.status == status


def search(session, filters, page=1, per_page=50, today=None):
    today = today or date.today()
    filters = filters or {}
    query = select(Bill).where(Bill.voided_at.is_(None))
    if filters.get("status"):
        query = query.where(_status_filter(filters["status"], today))
    for name in ("customer_id", "lease_id", "owner_id", "kind"):
        if filters.get(name):
            query = query.where(getattr(Bill, name) == filters[name])
    if filters.get("owner_ids") is not None:
        query = query.where(Bill.owner_id.in_(filters["owner_ids"]))
    if filters.get("customer_ids") is not None:  # the caller's customers (gateway scopes)
        query = query.where(Bill.customer_id.in_(filters["customer_ids"]))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Bill.due_date, Bill.id)
                           .offset((page - 1) * per_page).limit(per_page))
    return {"items": [bill_dict(b, today) for b in rows], "total": total, "page": page,
            "per_page": per_page}


def set_amount(session, bill, amount):
    """Change what a bill asks for (a termination cuts it); the status follows."""
    bill.amount = amount
    bill.status = _status_for(bill)
    bill.updated_at = now()


def _status_for(bill):
    if bill.paid >= bill.amount:
        return "paid"
    return "partially_paid" if bill.paid > ZERO else "unpaid"


# -- charges -------------------------------------------------------------------------------
def add_charge(session, lease_id, data, actor):
    """An extra line item: utilities, a service fee, or another charge, as its own bill."""
    data = schemas.load(schemas.charge_schema, data)
    lease = session.get(Lease, lease_id)
    if lease is None:
        raise NotFound(f"lease {lease_id} does not exist", {"lease_id": lease_id})
    moment = now()
    bill = Bill(id=str(uuid.uuid4()), lease_id=lease.id, customer_id=lease.customer_id,
                owner_id=lease.owner_id, kind=data["kind"], description=data["description"],
                due_date=data["due_date"], amount=data["amount"], paid=ZERO, status="unpaid",
                created_at=moment, updated_at=moment)
    session.add(bill)
    record_event(session, "bill.issued", bill_event(bill))
    audit_bill(session, actor, "bill.issued", bill, None)
    return bill


# -- payments ------------------------------------------------------------------------------
def record_payment(session, data, idempotency_key, actor):
    """Pay (part of) a bill. Returns ``{payment_id, bill_id, amount, balance, status}``."""
    data = schemas.load(schemas.payment_schema, data)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 100:
        raise InvalidInput({"idempotency_key": ["1-100 characters"]})
    if idempotency_key:
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
        if earlier is not None:
            return _replayed(session, earlier, data)
    bill = get(session, data["bill_id"], for_update=True)
    if idempotency_key:
        # a retry that waited for the bill's lock behind its first attempt (two instances, or
        # a retry after a timeout while the first attempt still ran) sees it only now
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
        if earlier is not None:
            return _replayed(session, earlier, data)
    balance = bill.amount - bill.paid
    if data["amount"] > balance:
        raise InvalidInput({"amount": [f"is more than the balance {money(balance)}"]},
                           message="The payment is more than the bill's balance.")
    try:
        with session.begin_nested():
            payment = _apply(session, bill, data["amount"], data["paid_at"], data["method"],
                             idempotency_key, actor)
    except IntegrityError:  # the same key, committed by a concurrent retry
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
        return _replayed(session, earlier, data)
    return _result(payment)


def _apply(session, bill, amount, paid_at, method, idempotency_key, actor):
    before = {"paid": bill.paid, "status": bill.status}
    bill.paid += amount
    bill.status = _status_for(bill)
    bill.updated_at = now()
    payment = Payment(id=str(uuid.uuid4()), bill_id=bill.id, lease_id=bill.lease_id,
                      customer_id=bill.customer_id, amount=amount, paid_at=paid_at,
                      method=method, idempotency_key=idempotency_key,
                      recorded_by=(actor or {}).get("id"), created_at=now(),
                      balance_after=bill.amount - bill.paid, status_after=shown_status(bill))
    session.add(payment)
    session.flush()
    audit_bill(session, actor, "payment.received", bill, before, {
        "paid": bill.paid, "status": bill.status, "payment_id": payment.id, "amount": amount,
        "method": method, "paid_at": paid_at})
    record_event(session, "payment.received", {
        "payment_id": payment.id, "bill_id": bill.id, "lease_id": bill.lease_id,
        "customer_id": bill.customer_id, "owner_id": bill.owner_id, "bill_kind": bill.kind,
        "amount": money(amount), "paid_at": paid_at.isoformat(), "method": method,
        "balance": money(bill.amount - bill.paid), "bill_status": bill.status,
        "due_date": bill.due_date.isoformat()})
    return payment


def _replayed(session, earlier, data):
    """The first answer again, as it was (later payments on the bill do not change it)."""
    if earlier.bill_id != data["bill_id"] or earlier.amount != data["amount"]:
        raise Conflict("this Idempotency-Key was used for another payment",
                       {"payment_id": earlier.id})
    return _result(earlier)


def _result(payment):
    return {"payment_id": payment.id, "bill_id": payment.bill_id, "amount": money(payment.amount),
            "balance": money(payment.balance_after), "status": payment.status_after}


def settle_from_deposit(session, bills, actor):
    """Pay what is still owed on ``bills`` out of the deposit, at move-out."""
    from sales_service.vocabulary import DEPOSIT_SETTLEMENT

    for bill in bills:
        balance = bill.amount - bill.paid
        if balance > ZERO:
            _apply(session, bill, balance, now(), DEPOSIT_SETTLEMENT, None, actor)


# -- overdue -------------------------------------------------------------------------------
def scan_overdue(session, today=None, open_task=None):
    """Announce newly overdue bills once each (event + collection task); charge late fees.

    ``open_task(session, bill)`` opens the collection task (the tasks module's job).
    Returns ``{"overdue": n, "late_fees": m}``.
    """
    today = today or date.today()
    moment = now()
    newly = session.scalars(
        select(Bill).where(Bill.status.in_(OPEN), Bill.due_date < today,
                           Bill.voided_at.is_(None), Bill.overdue_notified_at.is_(None))
        .order_by(Bill.due_date, Bill.id).limit(5000).with_for_update(skip_locked=True)).all()
    for bill in newly:
        bill.overdue_notified_at = moment
        record_event(session, "bill.overdue", {
            **bill_event(bill), "balance": money(bill.amount - bill.paid),
            "days_overdue": (today - bill.due_date).days})
        if open_task is not None and bill.owner_id:
            open_task(session, bill)
    fees = 0
    grace_cutoff = today - timedelta(days=LATE_FEE_GRACE_DAYS)
    charged = select(Bill.late_fee_for_bill_id).where(Bill.late_fee_for_bill_id.is_not(None))
    late = session.scalars(
        select(Bill).where(Bill.kind == "rent", Bill.status.in_(OPEN),
                           Bill.due_date < grace_cutoff, Bill.voided_at.is_(None),
                           Bill.id.not_in(charged))
        .order_by(Bill.due_date, Bill.id).limit(5000)).all()
    for bill in late:
        fee = ((bill.amount - bill.paid) * LATE_FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
        if fee <= ZERO:
            continue
        late_fee = Bill(id=str(uuid.uuid4()), lease_id=bill.lease_id,
                        customer_id=bill.customer_id, owner_id=bill.owner_id, kind="late_fee",
                        description=f"滞纳金 late fee for {bill.due_date.isoformat()} rent",
                        due_date=today, amount=fee, paid=ZERO, status="unpaid",
                        late_fee_for_bill_id=bill.id, created_at=moment, updated_at=moment)
        try:
            with session.begin_nested():
                session.add(late_fee)
        except IntegrityError:  # another instance charged it first
            continue
        record_event(session, "bill.issued", bill_event(late_fee))
        audit_bill(session, audit.SYSTEM, "bill.issued", late_fee, None)
        fees += 1
    return {"overdue": len(newly), "late_fees": fees}

