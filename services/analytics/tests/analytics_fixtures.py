"""Shared test data and helpers of the analytics service's tests: facts written straight into
the store (as ``ingest`` would from events), so computations can be checked by hand."""
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import analytics_service
from analytics_service.models import (Bill, Customer, Lease, Opportunity, Payment, StageChange,
                                      Ticket)

MIGRATIONS = Path(analytics_service.__file__).parent / "migrations"
ANALYST = {"id": "exec-1", "roles": ["executive"]}


def at(day, hour=12):
    """An aware instant on ``day`` (a date or "YYYY-MM-DD")."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


def day(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def add_customer(session, customer_id=None, **fields):
    data = {"id": customer_id or str(uuid.uuid4()), "kind": "person", "stage": "potential",
            "district": "高新区", "industry": "software", "source": "website",
            "gender": "female", "birthday": date(1996, 5, 1), "owner_id": "staff-1",
            "created_at": at("2025-01-01"), "stage_entered_at": at("2025-01-01"),
            "archived": False, "erased": False}
    data.update(fields)
    customer = Customer(**data)
    session.add(customer)
    session.flush()
    return customer


def add_payment(session, customer_id, amount, paid_on, **fields):
    fields.setdefault("owner_id", "staff-1")
    fields.setdefault("bill_kind", "rent")
    payment = Payment(id=fields.pop("payment_id", str(uuid.uuid4())), customer_id=customer_id,
                      amount=Decimal(amount), paid_at=at(paid_on), **fields)
    session.add(payment)
    session.flush()
    return payment


def add_lease(session, customer_id, start, end, monthly_rent="3000.00", **fields):
    data = {"id": str(uuid.uuid4()), "customer_id": customer_id, "owner_id": "staff-1",
            "unit_id": "unit-1", "district": "高新区", "layout": "1b1b",
            "start_date": day(start), "end_date": day(end),
            "monthly_rent": Decimal(monthly_rent), "status": "active",
            "signed_at": at(start), "updated_at": at(start)}
    data.update(fields)
    lease = Lease(**data)
    session.add(lease)
    session.flush()
    return lease


def add_bill(session, customer_id, amount, due, paid="0.00", **fields):
    data = {"id": str(uuid.uuid4()), "customer_id": customer_id, "lease_id": None,
            "owner_id": "staff-1", "kind": "rent", "amount": Decimal(amount),
            "paid": Decimal(paid), "due_date": day(due)}
    data.update(fields)
    bill = Bill(**data)
    session.add(bill)
    session.flush()
    return bill


def add_ticket(session, customer_id, created, **fields):
    data = {"id": str(uuid.uuid4()), "customer_id": customer_id, "type": "repair",
            "channel": "phone", "priority": "normal", "status": "new",
            "created_at": at(created), "sla_breached": False}
    data.update(fields)
    ticket = Ticket(**data)
    session.add(ticket)
    session.flush()
    return ticket


def add_opportunity(session, customer_id, created, stage="new", **fields):
    data = {"id": str(uuid.uuid4()), "customer_id": customer_id, "owner_id": "staff-1",
            "kind": "new", "source": "website", "stage": stage, "created_at": at(created),
            "stage_at": at(created)}
    data.update(fields)
    opportunity = Opportunity(**data)
    session.add(opportunity)
    session.flush()
    return opportunity


def add_stage_change(session, customer_id, from_stage, to_stage, when):
    change = StageChange(event_id=str(uuid.uuid4()), customer_id=customer_id,
                         from_stage=from_stage, to_stage=to_stage, occurred_at=at(when))
    session.add(change)
    session.flush()
    return change
