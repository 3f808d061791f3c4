"""The customer master's tables (SQLAlchemy 2 typed models)."""
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm_kit.models import BigId
from crm_kit.types import JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="person")  # person | company
    name: Mapped[str] = mapped_column(String(100))
    # unique while the person exists; erasure sets it to NULL (NULLs never clash)
    mobile: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    wechat_id: Mapped[str | None] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(8))
    birthday: Mapped[date | None] = mapped_column(Date)
    id_number: Mapped[str | None] = mapped_column(String(18), index=True)
    occupation: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(64))
    employer: Mapped[str | None] = mapped_column(String(128))
    education: Mapped[str | None] = mapped_column(String(32))
    income_band: Mapped[str | None] = mapped_column(String(16))
    hometown: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)

    stage: Mapped[str] = mapped_column(String(16), default="potential", index=True)
    stage_entered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value_tier: Mapped[str | None] = mapped_column(String(16), index=True)
    churn_risk: Mapped[int | None] = mapped_column(Integer)  # 0-100, from analytics
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # newest customer.scored applied

    member_tier: Mapped[str] = mapped_column(String(16), default="standard")
    points: Mapped[int] = mapped_column(Integer, default=0)
    leases_signed: Mapped[int] = mapped_column(Integer, default=0)

    consent: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    custom_fields: Mapped[dict] = mapped_column(JsonDoc, default=dict)

    merged_into: Mapped[str | None] = mapped_column(String(36))
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    tags: Mapped[list["CustomerTag"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin",
        order_by="CustomerTag.tag")
    contacts: Mapped[list["Contact"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin",
        order_by="Contact.id")


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    source: Mapped[str] = mapped_column(String(8), default="manual")  # manual | rule
    customer: Mapped[Customer] = relationship(back_populates="tags")


class Contact(Base):
    """A person at a corporate customer (单位客户联系人)."""

    __tablename__ = "customer_contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    title: Mapped[str | None] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(default=False)
    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Interaction(Base):
    """One contact with the customer on any channel (交往记录)."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    summary: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[str | None] = mapped_column(String(36))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StageChange(Base):
    """Lifecycle history: every transition with what triggered it and who."""

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(48))  # manual | event:lease.signed | merge | ...
    event_id: Mapped[str | None] = mapped_column(String(36))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    approver_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OwnerChange(Base):
    """Account handover history (业务移交)."""

    __tablename__ = "owner_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    from_owner_id: Mapped[str | None] = mapped_column(String(36))
    to_owner_id: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChurnDecision(Base):
    """The owner's answer to a churn warning: keep trying (暂缓流失) or confirm churn (确定流失)."""

    __tablename__ = "churn_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    competitor: Mapped[str | None] = mapped_column(String(100))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PointEntry(Base):
    """Membership points ledger; ``event_id`` ties an entry to the event that earned it."""

    __tablename__ = "point_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(36))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StageLimit(Base):
    """How many days a customer may stay in a stage before the owner is alerted."""

    __tablename__ = "stage_limits"

    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)


class StagnationAlert(Base):
    __tablename__ = "stagnation_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    stage_entered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    limit_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(36))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        # one alert per stay in a stage, however many scans (or instances) see it
        UniqueConstraint("customer_id", "stage", "stage_entered_at", name="uq_alert_per_stay"),
    )


Index("ix_customers_stage_entered", Customer.stage, Customer.stage_entered_at)
