"""The analytics service's store (SQLAlchemy 2 typed models).

The first group is a copy of the other services' facts, built only from their events
(``ingest.py``); it can be dropped and rebuilt by replaying their event history (``rebuild.py``).
The second group is what analytics computes from it: score runs (RFM, CLV, value tier, churn
risk per customer), churn warnings, cluster runs. Money is exact (``Money``: NUMERIC or cents).
"""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kit.models import BigId
from crm_kit.types import JsonDoc, Money, UtcDateTime


class Base(DeclarativeBase):
    pass


# -- facts, from events --------------------------------------------------------------------
class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    gender: Mapped[str | None] = mapped_column(String(16))
    birthday: Mapped[date | None] = mapped_column(Date)
    industry: Mapped[str | None] = mapped_column(String(100))
    occupation: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)
    stage: Mapped[str | None] = mapped_column(String(20), index=True)
    stage_entered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # in the customer service
    merged_into: Mapped[str | None] = mapped_column(String(36))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    churned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    churn_reason: Mapped[str | None] = mapped_column(Text)
    churn_competitor: Mapped[str | None] = mapped_column(String(200))
    profile_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # version of the record


class StageChange(Base):
    """The customer's lifecycle history (customer.stage_changed), for the funnel."""

    __tablename__ = "stage_changes"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Opportunity(Base):
    __tablename__ = "opportunities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(32))
    campaign_id: Mapped[str | None] = mapped_column(String(36))
    stage: Mapped[str] = mapped_column(String(20))
    expected_value: Mapped[Decimal | None] = mapped_column(Money)
    loss_reason: Mapped[str | None] = mapped_column(String(32))
    lease_id: Mapped[str | None] = mapped_column(String(36))
    renewal_of_lease_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stage_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OpportunityStageChange(Base):
    __tablename__ = "opportunity_stage_changes"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(String(36), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Lease(Base):
    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36))
    unit_id: Mapped[str | None] = mapped_column(String(36))
    district: Mapped[str | None] = mapped_column(String(64))
    layout: Mapped[str | None] = mapped_column(String(16))
    opportunity_id: Mapped[str | None] = mapped_column(String(36))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date, index=True)
    monthly_rent: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), index=True)
    renewed_from_id: Mapped[str | None] = mapped_column(String(36), index=True)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Bill(Base):
    __tablename__ = "bills"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str | None] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    due_date: Mapped[date] = mapped_column(Date)
    overdue_since: Mapped[date | None] = mapped_column(Date)  # announced overdue (bill.overdue)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bill_id: Mapped[str | None] = mapped_column(String(36))
    lease_id: Mapped[str | None] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36))
    bill_kind: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    method: Mapped[str | None] = mapped_column(String(16))


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[str | None] = mapped_column(String(8))
    district: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)  # the customer's review, for sentiment
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# -- results -------------------------------------------------------------------------------
class ScoreRun(Base):
    """One recompute. Readers use the latest finished run (``Setting`` "current_run"), so a
    recompute in progress never shows half its results."""

    __tablename__ = "score_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed
    parameters: Mapped[dict] = mapped_column(JsonDoc)
    customers: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class CustomerScore(Base):
    __tablename__ = "customer_scores"

    run_id: Mapped[int] = mapped_column(ForeignKey("score_runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[Decimal] = mapped_column(Money)
    r: Mapped[int | None] = mapped_column(Integer)
    f: Mapped[int | None] = mapped_column(Integer)
    m: Mapped[int | None] = mapped_column(Integer)
    rfm_segment: Mapped[str | None] = mapped_column(String(32))
    clv: Mapped[Decimal] = mapped_column(Money)
    value_tier: Mapped[str] = mapped_column(String(16))
    churn_score: Mapped[int] = mapped_column(Integer)
    churn_reasons: Mapped[list] = mapped_column(JsonDoc)

    __table_args__ = (Index("ix_customer_scores_run_tier", "run_id", "value_tier"),
                      Index("ix_customer_scores_run_churn", "run_id", "churn_score"))


class PublishedScore(Base):
    """What was last told to the other services (customer.scored), so only changes are sent."""

    __tablename__ = "published_scores"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    value_tier: Mapped[str | None] = mapped_column(String(16))
    rfm_segment: Mapped[str | None] = mapped_column(String(32))
    churn_score: Mapped[int | None] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChurnWarning(Base):
    """A customer whose risk crossed the threshold (churn.warning_raised) and what the owner
    decided: ``open`` → ``kept`` (keep trying; the customer left churn_warning) or ``churned``."""

    __tablename__ = "churn_warnings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36))
    score: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JsonDoc)
    status: Mapped[str] = mapped_column(String(16), index=True)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ClusterRun(Base):
    __tablename__ = "cluster_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    k: Mapped[int] = mapped_column(Integer)
    features: Mapped[list] = mapped_column(JsonDoc)
    silhouette: Mapped[float | None] = mapped_column(Float)
    evaluation: Mapped[dict] = mapped_column(JsonDoc)  # sizes, profiles, k search
    customers: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ClusterMember(Base):
    __tablename__ = "cluster_members"

    run_id: Mapped[str] = mapped_column(ForeignKey("cluster_runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cluster: Mapped[int] = mapped_column(Integer)


class Setting(Base):
    """Small named values: "current_run" (the score run readers use), "clv_parameters"."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JsonDoc)
