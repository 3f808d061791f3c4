"""The store as pandas DataFrames: what every computation (RFM, CLV, churn, reports) reads.

Money comes out as exact integer cents (``*_cents``, int64), never floats: sums and ranks are
exact, and results turn back into ``Decimal`` at the edge (``cents_to_money``). Instants are
UTC-aware ``datetime64``; dates are naive ``datetime64`` (midnight). Each loader reads one table with
one query; column names are the contract the computing modules rely on.
"""
from decimal import Decimal

import pandas as pd
from sqlalchemy import BigInteger, cast, select, type_coerce

from analytics_service.models import (Bill, Customer, Lease, Opportunity, OpportunityStageChange,
                                      Payment, StageChange, Ticket)
from crm_kit.types import UtcDateTime

CENT = Decimal("0.01")


def cents(column, session):
    """A Money column as integer cents in SQL (SQLite stores cents; PostgreSQL NUMERIC)."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(column, BigInteger)
    return cast(column * 100, BigInteger)


def cents_to_money(value):
    """Integer cents → Decimal with two places."""
    return (Decimal(int(value)) * CENT).quantize(CENT)


def _frame(session, query, instants=(), dates=(), ints=()):
    if instants:
        # instants come as the plain DateTime and pandas makes them UTC-aware below, all at
        # once, rather than UtcDateTime's Python call per value (seconds at 1,000,000 payments)
        query = query.with_only_columns(*(
            type_coerce(column, column.type.impl).label(column.key)
            if column.key in instants and isinstance(column.type, UtcDateTime) else column
            for column in query.selected_columns))
    frame = pd.read_sql(query, session.connection())
    for column in instants:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="mixed")
    for column in dates:
        frame[column] = pd.to_datetime(frame[column])
    for column in ints:
        frame[column] = frame[column].fillna(0).astype("int64")
    return frame


def customers(session):
    """Every customer but merged duplicates: customer_id, kind, gender, birthday, industry,
    occupation, district, source, owner_id, stage, stage_entered_at, created_at, archived,
    erased, churned_at, churn_reason, churn_competitor."""
    c = Customer
    query = select(c.id.label("customer_id"), c.kind, c.gender, c.birthday, c.industry,
                   c.occupation, c.district, c.source, c.owner_id, c.stage, c.stage_entered_at,
                   c.created_at, c.archived, c.erased, c.churned_at, c.churn_reason,
                   c.churn_competitor).where(c.merged_into.is_(None))
    return _frame(session, query, instants=("stage_entered_at", "created_at", "churned_at"),
                  dates=("birthday",))


def payments(session):
    """payment_id, customer_id, owner_id, lease_id, bill_kind, amount_cents, paid_at."""
    p = Payment
    query = select(p.id.label("payment_id"), p.customer_id, p.owner_id, p.lease_id, p.bill_kind,
                   cents(p.amount, session).label("amount_cents"), p.paid_at)
    return _frame(session, query, instants=("paid_at",), ints=("amount_cents",))


def revenue(payments):
    """The payments that are revenue: all but deposits (a deposit is held and refunded, a
    liability, not income). RFM, CLV, sales trend, staff revenue and contribution use these."""
    return payments[payments["bill_kind"] != "deposit"]


def leases(session):
    """lease_id, customer_id, owner_id, district, layout, opportunity_id, start_date, end_date,
    monthly_rent_cents, status, renewed_from_id, signed_at, closed_at."""
    lease = Lease
    query = select(lease.id.label("lease_id"), lease.customer_id, lease.owner_id,
                   lease.district, lease.layout, lease.opportunity_id, lease.start_date,
                   lease.end_date, cents(lease.monthly_rent, session).label("monthly_rent_cents"),
                   lease.status, lease.renewed_from_id, lease.signed_at, lease.closed_at)
    return _frame(session, query, instants=("signed_at", "closed_at"),
                  dates=("start_date", "end_date"), ints=("monthly_rent_cents",))


def bills(session):
    """bill_id, lease_id, customer_id, owner_id, kind, amount_cents, paid_cents, due_date,
    overdue_since."""
    b = Bill
    query = select(b.id.label("bill_id"), b.lease_id, b.customer_id, b.owner_id, b.kind,
                   cents(b.amount, session).label("amount_cents"),
                   cents(b.paid, session).label("paid_cents"), b.due_date, b.overdue_since)
    return _frame(session, query, dates=("due_date", "overdue_since"),
                  ints=("amount_cents", "paid_cents"))


def tickets(session):
    """ticket_id, customer_id, type, channel, priority, district, status, created_at,
    resolved_at, sla_breached, rating, comment, rated_at."""
    t = Ticket
    query = select(t.id.label("ticket_id"), t.customer_id, t.type, t.channel, t.priority,
                   t.district, t.status, t.created_at, t.resolved_at, t.sla_breached, t.rating,
                   t.comment, t.rated_at)
    return _frame(session, query, instants=("created_at", "resolved_at", "rated_at"))


def opportunities(session):
    """opportunity_id, customer_id, owner_id, kind, source, campaign_id, stage,
    expected_value_cents, loss_reason, lease_id, renewal_of_lease_id, created_at, stage_at,
    closed_at."""
    o = Opportunity
    query = select(o.id.label("opportunity_id"), o.customer_id, o.owner_id, o.kind, o.source,
                   o.campaign_id, o.stage,
                   cents(o.expected_value, session).label("expected_value_cents"),
                   o.loss_reason, o.lease_id, o.renewal_of_lease_id, o.created_at, o.stage_at,
                   o.closed_at)
    return _frame(session, query, instants=("created_at", "stage_at", "closed_at"),
                  ints=("expected_value_cents",))


def stage_changes(session):
    """customer_id, from_stage, to_stage, occurred_at (the lifecycle history)."""
    s = StageChange
    return _frame(session, select(s.customer_id, s.from_stage, s.to_stage, s.occurred_at),
                  instants=("occurred_at",))


def opportunity_stage_changes(session):
    """opportunity_id, from_stage, to_stage, occurred_at (the pipeline history)."""
    s = OpportunityStageChange
    return _frame(session, select(s.opportunity_id, s.from_stage, s.to_stage, s.occurred_at),
                  instants=("occurred_at",))


def scores(session, run_id):
    """A score run's results, indexed by customer_id: recency_days, frequency, monetary_cents,
    clv_cents, value_tier, churn_score."""
    from analytics_service.models import CustomerScore

    s = CustomerScore
    query = select(s.customer_id, s.recency_days, s.frequency,
                   cents(s.monetary, session).label("monetary_cents"),
                   cents(s.clv, session).label("clv_cents"), s.value_tier,
                   s.churn_score).where(s.run_id == run_id)
    return _frame(session, query, ints=("monetary_cents", "clv_cents")).set_index("customer_id")
