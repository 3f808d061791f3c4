"""The leasing business's tables (SQLAlchemy 2 typed models). Money is ``Money`` (Decimal)."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm_kit.models import BigId
from crm_kit.types import JsonDoc, Money, UtcDateTime


class Base(DeclarativeBase):
    pass


class Unit(Base):
    """A rentable apartment (房源)."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    building: Mapped[str] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(64), index=True)
    layout: Mapped[str] = mapped_column(String(32), index=True)  # e.g. 1b1b, 2b1b, studio
    area_sqm: Mapped[Decimal] = mapped_column(Money)  # two places, exact
    floor: Mapped[int] = mapped_column(Integer)
    monthly_rent: Mapped[Decimal] = mapped_column(Money)
    amenities: Mapped[list] = mapped_column(JsonDoc, default=list)
    status: Mapped[str] = mapped_column(String(16), default="vacant", index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Opportunity(Base):
    """A lead or sales opportunity (销售机会), new business or a renewal."""

    __tablename__ = "opportunities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="new")  # new | renewal
    source: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[str | None] = mapped_column(String(36))
    budget: Mapped[Decimal | None] = mapped_column(Money)
    district: Mapped[str | None] = mapped_column(String(64))
    layout: Mapped[str | None] = mapped_column(String(32))
    move_in_date: Mapped[date | None] = mapped_column(Date)
    expected_value: Mapped[Decimal | None] = mapped_column(Money)
    expected_close: Mapped[date | None] = mapped_column(Date)  # the forecast's month
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)
    stage: Mapped[str] = mapped_column(String(16), default="new", index=True)
    stage_entered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    loss_reason: Mapped[str | None] = mapped_column(String(32))
    loss_note: Mapped[str | None] = mapped_column(Text)
    lease_id: Mapped[str | None] = mapped_column(String(36))
    # a lease gets at most one renewal opportunity, however often the scan runs
    renewal_of_lease_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    stagnant_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    steps: Mapped[list["PlanStep"]] = relationship(
        back_populates="opportunity", cascade="all, delete-orphan", lazy="selectin",
        order_by="PlanStep.id")


class OpportunityStageChange(Base):
    __tablename__ = "opportunity_stage_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(48))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PlanStep(Base):
    """A step of a customer development plan (客户开发计划), done with a result."""

    __tablename__ = "plan_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    result: Mapped[str | None] = mapped_column(Text)
    done_by: Mapped[str | None] = mapped_column(String(36))
    opportunity: Mapped[Opportunity] = relationship(back_populates="steps")


class Viewing(Base):
    """A viewing appointment (带看)."""

    __tablename__ = "viewings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    staff_id: Mapped[str] = mapped_column(String(36), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled|completed|cancelled
    result: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Lease(Base):
    """A lease (租约)."""

    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    opportunity_id: Mapped[str | None] = mapped_column(String(36))
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)  # responsible staff
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date, index=True)
    monthly_rent: Mapped[Decimal] = mapped_column(Money)
    deposit: Mapped[Decimal] = mapped_column(Money)
    payment_cycle: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    renewed_from_id: Mapped[str | None] = mapped_column(String(36))
    renewed_to_id: Mapped[str | None] = mapped_column(String(36))
    terminated_on: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(Text)
    # rent paid for days after an early termination: returned with the deposit
    credit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # ended/terminated/renewed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Bill(Base):
    """A bill (账单): rent for a period, the deposit, or an extra charge."""

    __tablename__ = "bills"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(200))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money)
    # unpaid | partially_paid | paid (stored); "overdue" is derived: unpaid/partly paid past due
    status: Mapped[str] = mapped_column(String(16), default="unpaid")
    late_fee_for_bill_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # cut by a termination
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        # the overdue list: open bills by due date
        Index("ix_bills_open_due", "status", "due_date"),
    )


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bill_id: Mapped[str] = mapped_column(ForeignKey("bills.id"), index=True)
    lease_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime)
    method: Mapped[str] = mapped_column(String(16))
    # a retried POST with the same key pays once, and gets the first answer again
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    status_after: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DepositRefund(Base):
    """The deposit settled at move-out (退押金), with its deductions."""

    __tablename__ = "deposit_refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), unique=True)
    deposit_paid: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[Decimal] = mapped_column(Money)  # rent paid beyond an early move-out
    deductions: Mapped[list] = mapped_column(JsonDoc, default=list)  # [{reason, amount}]
    deducted: Mapped[Decimal] = mapped_column(Money)
    refunded: Mapped[Decimal] = mapped_column(Money)
    refunded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[str | None] = mapped_column(String(36))


class Task(Base):
    """A task, reminder or appointment of a staff member (工作日历)."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="task")
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    remind_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    customer_id: Mapped[str | None] = mapped_column(String(36), index=True)
    opportunity_id: Mapped[str | None] = mapped_column(String(36))
    bill_id: Mapped[str | None] = mapped_column(String(36))
    lease_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)  # open | done
    result: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    urged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    urged_by: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        # one collection (催缴) task per overdue bill, however often the scan runs
        UniqueConstraint("kind", "bill_id", name="uq_task_per_bill"),
    )


class TaskEvent(Base):
    """A task's history: created, reminded, urged, done."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OpportunityStageLimit(Base):
    __tablename__ = "opportunity_stage_limits"

    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)

