"""The marketing service's tables (SQLAlchemy 2 typed models).

``customers``, ``customer_tags`` and ``leases`` are the service's own copy of what it needs from
the customer, sales and analytics services, kept up to date from their events (``audience``);
the rest is marketing's own business: segments, campaigns, the delivery log, responses, care rules.
"""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kit.models import BigId
from crm_kit.types import JsonDoc, Money, UtcDateTime


class Base(DeclarativeBase):
    pass


# -- the copy of other services' data ------------------------------------------------------
class AudienceCustomer(Base):
    """A customer as marketing knows them, from customer.* and customer.scored events."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    wechat_id: Mapped[str | None] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(16))
    birthday: Mapped[date | None] = mapped_column(Date)
    birthday_md: Mapped[str | None] = mapped_column(String(5), index=True)  # "MM-DD"
    occupation: Mapped[str | None] = mapped_column(String(100))
    industry: Mapped[str | None] = mapped_column(String(100), index=True)
    employer: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(36))
    stage: Mapped[str | None] = mapped_column(String(20), index=True)
    value_tier: Mapped[str | None] = mapped_column(String(16), index=True)
    rfm_segment: Mapped[str | None] = mapped_column(String(40))
    member_tier: Mapped[str | None] = mapped_column(String(16))
    consent: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    merged_into: Mapped[str | None] = mapped_column(String(36))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    # which version each part of the copy is, so an older event never overwrites a newer one
    profile_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the record's updated_at
    stage_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    owner_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AudienceTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class AudienceLease(Base):
    """A lease as marketing knows it, from lease.* events (lease facts in segments, care rules)."""

    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    unit_id: Mapped[str | None] = mapped_column(String(36))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    renewed_from_id: Mapped[str | None] = mapped_column(String(36), index=True)
    opportunity_id: Mapped[str | None] = mapped_column(String(36), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CampaignOpportunity(Base):
    """An opportunity a campaign produced (opportunity.created with a campaign_id), and the
    lease it was won with (lease.signed naming the opportunity)."""

    __tablename__ = "campaign_opportunities"

    opportunity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    lease_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# -- marketing's own records ---------------------------------------------------------------
class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    rules: Mapped[dict] = mapped_column(JsonDoc)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cost: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), index=True)
    audience: Mapped[int | None] = mapped_column(Integer)  # recipients recorded (incl. skipped)
    # recording recipients is resumable: the last customer id recorded
    recorded_up_to: Mapped[str | None] = mapped_column(String(36))
    launched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Message(Base):
    """One line of the delivery log: a message to one customer on one occasion (a campaign, a
    birthday...). ``(customer_id, occasion)`` is unique, so nobody gets the same occasion twice,
    whatever restarts or second instances happen."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    occasion: Mapped[str] = mapped_column(String(120))  # "campaign:<id>", "birthday:2026", ...
    campaign_id: Mapped[str | None] = mapped_column(String(36))
    care_rule_id: Mapped[str | None] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(254))  # the address it went to
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("customer_id", "occasion", name="uq_message_customer_occasion"),
        Index("ix_messages_campaign_status", "campaign_id", "status"),
        Index("ix_messages_status_next", "status", "next_attempt_at"),
        # the dispatcher's claim: queued messages in id order, without sorting the whole log
        Index("ix_messages_status_id", "status", "id"),
        Index("ix_messages_customer_created", "customer_id", "created_at"),
    )


class CampaignResponse(Base):
    __tablename__ = "campaign_responses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    response: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_response_campaign_customer"),
    )


class CareRule(Base):
    """An automatic greeting (客户关怀): which occasion, on which channel, with which words."""

    __tablename__ = "care_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    holiday: Mapped[str | None] = mapped_column(String(32))  # spring_festival, mid_autumn, custom
    holiday_name: Mapped[str | None] = mapped_column(String(64))
    holiday_date: Mapped[str | None] = mapped_column(String(5))  # "MM-DD" of a custom holiday
    days_before: Mapped[int | None] = mapped_column(Integer)  # renewal reminders
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
