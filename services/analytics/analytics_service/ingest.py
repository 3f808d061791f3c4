"""Building the store from the other services' events (never their databases).

Every handler is order-independent: events of different types come through different queues, so
a stage change may arrive before the customer's creation, a payment before its bill. Rows are
created as stubs when needed and each fact remembers its version (a record's ``updated_at``, an
event's ``occurred_at``): an older event never overwrites a newer one. Duplicates are absorbed
by the kit's inbox; rebuilding from the event history (``rebuild.py``) runs the same functions.
"""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select, update

from analytics_service.models import (Bill, ChurnWarning, Customer, Lease, Opportunity,
                                      OpportunityStageChange, Payment, StageChange, Ticket)

PROFILE = ("kind", "gender", "industry", "occupation", "district", "source", "owner_id")
#: what customer.erased blanks: the person's own attributes (district, industry and source
#: stay: coarse groups that the composition and churn reports count, identifying nobody)
ERASED = ("gender", "birthday", "occupation")


def instant(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _day(value):
    return date.fromisoformat(value) if value else None


def _money(value):
    return Decimal(value) if value is not None else None


def _customer(session, customer_id):
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        customer = Customer(id=customer_id, archived=False, erased=False)
        session.add(customer)
        session.flush()
    return customer


# -- customer.* ----------------------------------------------------------------------------
def customer_snapshot(session, data):
    customer = _customer(session, data["id"])
    version = instant(data["updated_at"])
    if customer.erased or (customer.profile_at is not None and version < customer.profile_at):
        return customer
    customer.profile_at = version
    for field in PROFILE:
        setattr(customer, field, data.get(field))
    customer.birthday = _day(data.get("birthday"))
    customer.created_at = instant(data.get("created_at")) or customer.created_at
    customer.merged_into = data.get("merged_into")
    customer.archived = bool(data.get("archived"))
    stage_at = instant(data.get("stage_entered_at"))
    if data.get("stage") and (customer.stage_entered_at is None
                              or stage_at >= customer.stage_entered_at):
        customer.stage, customer.stage_entered_at = data["stage"], stage_at
    if data.get("erased"):
        erase(session, customer.id)
    return customer


def stage_changed(session, data, envelope):
    moment = instant(envelope["occurred_at"])
    if session.get(StageChange, envelope["event_id"]) is None:
        session.add(StageChange(event_id=envelope["event_id"], customer_id=data["customer_id"],
                                from_stage=data.get("from_stage"), to_stage=data["to_stage"],
                                occurred_at=moment))
    customer = _customer(session, data["customer_id"])
    if customer.stage_entered_at is None or moment >= customer.stage_entered_at:
        customer.stage, customer.stage_entered_at = data["to_stage"], moment
    if data.get("from_stage") == "churn_warning" and data["to_stage"] != "churned":
        _decide_warning(session, data["customer_id"], "kept", moment)


def owner_changed(session, data):
    _customer(session, data["customer_id"]).owner_id = data.get("to_owner_id")


def merged(session, data):
    customer_snapshot(session, data["customer"])
    _customer(session, data["merged_id"]).merged_into = data["survivor_id"]


def erase(session, customer_id):
    customer = _customer(session, customer_id)
    for field in ERASED:
        setattr(customer, field, None)
    customer.erased = True
    customer.churn_reason = None
    session.execute(update(Ticket).where(Ticket.customer_id == customer_id).values(comment=None))


def churn_confirmed(session, data, envelope):
    moment = instant(envelope["occurred_at"])
    customer = _customer(session, data["customer_id"])
    customer.churned_at = moment
    customer.churn_reason = data.get("reason")
    customer.churn_competitor = data.get("competitor")
    _decide_warning(session, data["customer_id"], "churned", moment)


def _decide_warning(session, customer_id, status, moment):
    """The owner's decision on an open warning, reflected from the customer service."""
    session.execute(update(ChurnWarning).where(
        ChurnWarning.customer_id == customer_id, ChurnWarning.status == "open")
        .values(status=status, decided_at=moment))


# -- opportunities -------------------------------------------------------------------------
def _opportunity(session, data, moment):
    opportunity = session.get(Opportunity, data["opportunity_id"], with_for_update=True)
    if opportunity is None:
        opportunity = Opportunity(id=data["opportunity_id"], customer_id=data["customer_id"],
                                  stage=data.get("stage") or data.get("to_stage") or "new",
                                  created_at=moment, stage_at=moment)
        session.add(opportunity)
        session.flush()
    return opportunity


def opportunity_created(session, data, envelope):
    moment = instant(envelope["occurred_at"])
    opportunity = _opportunity(session, data, moment)
    opportunity.created_at = min(opportunity.created_at, moment)
    for field in ("owner_id", "kind", "source", "campaign_id", "renewal_of_lease_id"):
        setattr(opportunity, field, data.get(field))
    opportunity.expected_value = _money(data.get("expected_value"))


def opportunity_stage_changed(session, data, envelope):
    moment = instant(envelope["occurred_at"])
    if session.get(OpportunityStageChange, envelope["event_id"]) is None:
        session.add(OpportunityStageChange(
            event_id=envelope["event_id"], opportunity_id=data["opportunity_id"],
            from_stage=data.get("from_stage"), to_stage=data["to_stage"], occurred_at=moment))
    opportunity = _opportunity(session, data, moment)
    if moment >= opportunity.stage_at:
        opportunity.stage, opportunity.stage_at = data["to_stage"], moment
        opportunity.owner_id = data.get("owner_id") or opportunity.owner_id
        opportunity.loss_reason = data.get("loss_reason")
        opportunity.lease_id = data.get("lease_id")
        opportunity.closed_at = moment if data["to_stage"] in ("won", "lost") else None


# -- leases, bills, payments ---------------------------------------------------------------
def lease(session, data, envelope, lease_id=None, status=None):
    moment = instant(envelope["occurred_at"])
    lease_id = lease_id or data["lease_id"]
    row = session.get(Lease, lease_id, with_for_update=True)
    if row is None:
        row = Lease(id=lease_id, customer_id=data["customer_id"], signed_at=moment)
        session.add(row)
    elif row.updated_at >= moment:
        return row
    for field in ("owner_id", "unit_id", "opportunity_id"):
        setattr(row, field, data.get(field) or getattr(row, field))
    row.district = data.get("district") or row.district
    row.layout = data.get("layout") or row.layout
    row.start_date, row.end_date = _day(data["start_date"]), _day(data["end_date"])
    row.monthly_rent = _money(data["monthly_rent"])
    row.status = status or data["status"]
    row.renewed_from_id = data.get("renewed_from_id") or row.renewed_from_id
    row.closed_at = moment if row.status in ("ended", "terminated") else None
    row.updated_at = moment
    if row.status == "active" and session.scalar(select(Lease.id).where(
            Lease.renewed_from_id == lease_id).limit(1)) is not None:
        row.status = "renewed"  # its renewal was heard of first
    return row


def lease_renewed(session, data, envelope):
    renewal = lease(session, data, envelope, lease_id=data["new_lease_id"])
    renewal.renewed_from_id = data["lease_id"]
    old = session.get(Lease, data["lease_id"], with_for_update=True)
    if old is not None:
        old.status = "renewed"


def _paid(session, bill_id):
    return session.scalar(select(func.coalesce(func.sum(Payment.amount), 0))
                          .where(Payment.bill_id == bill_id)) or Decimal("0.00")


def bill_issued(session, data):
    if session.get(Bill, data["bill_id"]) is None:
        session.add(Bill(id=data["bill_id"], lease_id=data.get("lease_id"),
                         customer_id=data["customer_id"], owner_id=data.get("owner_id"),
                         kind=data["kind"], amount=_money(data["amount"]),
                         paid=_paid(session, data["bill_id"]),
                         due_date=_day(data["due_date"])))


def bill_overdue(session, data, envelope):
    bill_issued(session, data)
    session.flush()
    bill = session.get(Bill, data["bill_id"])
    if bill.overdue_since is None:
        bill.overdue_since = instant(envelope["occurred_at"]).date()


def payment_received(session, data):
    if session.get(Payment, data["payment_id"]) is not None:
        return
    session.add(Payment(id=data["payment_id"], bill_id=data.get("bill_id"),
                        lease_id=data.get("lease_id"), customer_id=data["customer_id"],
                        owner_id=data.get("owner_id"), bill_kind=data.get("bill_kind"),
                        amount=_money(data["amount"]), paid_at=instant(data["paid_at"]),
                        method=data.get("method")))
    session.flush()
    bill = session.get(Bill, data.get("bill_id")) if data.get("bill_id") else None
    if bill is not None:
        bill.paid = _paid(session, bill.id)


# -- tickets -------------------------------------------------------------------------------
def _ticket(session, data, moment):
    ticket = session.get(Ticket, data["ticket_id"], with_for_update=True)
    if ticket is None:
        ticket = Ticket(id=data["ticket_id"], customer_id=data["customer_id"], status="new",
                        created_at=instant(data.get("created_at")) or moment,
                        sla_breached=False)
        session.add(ticket)
        session.flush()
    for field in ("type", "channel", "priority"):
        if data.get(field):
            setattr(ticket, field, data[field])
    return ticket


def ticket_created(session, data, envelope):
    ticket = _ticket(session, data, instant(envelope["occurred_at"]))
    ticket.created_at = instant(data.get("created_at")) or ticket.created_at
    ticket.district = data.get("district")


def ticket_status_changed(session, data, envelope):
    moment = instant(envelope["occurred_at"])
    ticket = _ticket(session, data, moment)
    if ticket.status_at is None or moment >= ticket.status_at:
        ticket.status, ticket.status_at = data["to_status"], moment
        if data["to_status"] == "reopened":
            ticket.resolved_at = None


def ticket_resolved(session, data, envelope):
    ticket = _ticket(session, data, instant(envelope["occurred_at"]))
    ticket.resolved_at = instant(data.get("resolved_at")) or instant(envelope["occurred_at"])
    if data.get("first_response_breached") or data.get("resolution_breached"):
        ticket.sla_breached = True


def ticket_sla_breached(session, data, envelope):
    _ticket(session, data, instant(envelope["occurred_at"])).sla_breached = True


def ticket_feedback(session, data, envelope):
    ticket = _ticket(session, data, instant(envelope["occurred_at"]))
    ticket.rating = data["rating"]
    ticket.rated_at = instant(envelope["occurred_at"])
    customer = session.get(Customer, data["customer_id"])
    ticket.comment = None if customer is not None and customer.erased else data.get("comment")




#: every event the store is built from: (source, type) → apply(session, data, envelope).
#: The service subscribes to each (one ``@on_event`` entrypoint per row) and ``rebuild``
#: replays the history through the same table.
HANDLERS = {
    ("customer", "customer.created"): lambda s, d, e: customer_snapshot(s, d),
    ("customer", "customer.updated"): lambda s, d, e: customer_snapshot(s, d),
    ("customer", "customer.stage_changed"): stage_changed,
    ("customer", "customer.owner_changed"): lambda s, d, e: owner_changed(s, d),
    ("customer", "customer.merged"): lambda s, d, e: merged(s, d),
    ("customer", "customer.erased"): lambda s, d, e: erase(s, d["customer_id"]),
    ("customer", "customer.churn_confirmed"): churn_confirmed,
    ("sales", "opportunity.created"): opportunity_created,
    ("sales", "opportunity.stage_changed"): opportunity_stage_changed,
    ("sales", "lease.signed"): lease,
    ("sales", "lease.renewed"): lease_renewed,
    ("sales", "lease.terminated"): lambda s, d, e: lease(s, d, e, status="terminated"),
    ("sales", "lease.ended"): lambda s, d, e: lease(s, d, e, status="ended"),
    ("sales", "bill.issued"): lambda s, d, e: bill_issued(s, d),
    ("sales", "bill.overdue"): bill_overdue,
    ("sales", "payment.received"): lambda s, d, e: payment_received(s, d),
    ("service_desk", "ticket.created"): ticket_created,
    ("service_desk", "ticket.status_changed"): ticket_status_changed,
    ("service_desk", "ticket.resolved"): ticket_resolved,
    ("service_desk", "ticket.sla_breached"): ticket_sla_breached,
    ("service_desk", "ticket.feedback_received"): ticket_feedback,
}


def handler_name(event_type):
    """The entrypoint (and inbox) name of an event type: ``on_customer_created``."""
    return "on_" + event_type.replace(".", "_")
