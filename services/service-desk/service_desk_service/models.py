"""The service desk's tables (SQLAlchemy 2 typed models)."""
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm_kit.models import BigId
from crm_kit.types import JsonDoc, UtcDateTime


class Base(DeclarativeBase):
    pass


class Ticket(Base):
    """A service ticket (服务单)."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)  # T20261124-0001
    number_day: Mapped[date] = mapped_column(Date)  # the business-calendar day of creation
    number_seq: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    description: Mapped[str] = mapped_column(Text)
    unit_id: Mapped[str | None] = mapped_column(String(36))
    lease_id: Mapped[str | None] = mapped_column(String(36))
    district: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    assignee_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_by: Mapped[str | None] = mapped_column(String(36))
    first_response_due: Mapped[datetime] = mapped_column(UtcDateTime)
    resolution_due: Mapped[datetime] = mapped_column(UtcDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolution_round: Mapped[int] = mapped_column(Integer, default=0)  # times resolved
    # set once, by the SLA scan, when the breach is announced (ticket.sla_breached)
    first_response_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    appointments: Mapped[list["Appointment"]] = relationship(
        lazy="selectin", order_by="Appointment.scheduled_at", viewonly=True)
    feedbacks: Mapped[list["Feedback"]] = relationship(
        lazy="selectin", order_by="Feedback.round", viewonly=True)

    __table_args__ = (
        UniqueConstraint("number_day", "number_seq", name="uq_ticket_day_seq"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
    )


class TicketChange(Base):
    """A ticket's history: every status change, assignment, escalation, reopen, feedback."""

    __tablename__ = "ticket_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # created|status|assigned|escalated|feedback
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    assignee_id: Mapped[str | None] = mapped_column(String(36))
    escalated_to: Mapped[str | None] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketComment(Base):
    __tablename__ = "ticket_comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    author_id: Mapped[str | None] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Appointment(Base):
    """An on-site visit (上门) of a technician for a repair or cleaning ticket."""

    __tablename__ = "appointments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    technician_id: Mapped[str] = mapped_column(String(36), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled|cancelled
    booked_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Feedback(Base):
    """The customer's satisfaction with one resolution of a ticket (1-5 and a comment)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)  # Ticket.resolution_round it rates
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("ticket_id", "round", name="uq_feedback_per_round"),)


class Agent(Base):
    """The assignment registry: who takes which tickets, where, and who they escalate to."""

    __tablename__ = "agents"

    staff_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    skills: Mapped[list] = mapped_column(JsonDoc, default=list)  # ticket types
    districts: Mapped[list] = mapped_column(JsonDoc, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    supervisor_id: Mapped[str | None] = mapped_column(String(36))
    max_open: Mapped[int | None] = mapped_column(Integer)  # None: no cap
    updated_by: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Article(Base):
    """A knowledge-base article (知识库): a symptom and its solution."""

    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    symptom: Mapped[str] = mapped_column(Text)
    solution: Mapped[str] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JsonDoc, default=list)
    source_ticket_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Setting(Base):
    """Configuration kept in the database: ``sla_targets`` (overrides) and ``calendar``."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[dict] = mapped_column(JsonDoc)
    updated_by: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
