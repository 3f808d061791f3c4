"""The kit's own tables, created in every service's database by that service's migrations.

- ``outbox_events``: events written in the same transaction as the change they announce,
  published by the relay and then stamped ``published_at`` (kept, so history can be replayed).
- ``processed_events``: the inbox; one row per (handler, event_id) handled, written in the same
  transaction as the handler's effect, so a redelivered event has no second effect.
- ``dead_letters``: events a handler kept failing on, kept with the error until replayed.
"""
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kit.types import UtcDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key
BigId = BigInteger().with_variant(Integer, "sqlite")


class KitBase(DeclarativeBase):
    pass


kit_metadata = KitBase.metadata


class OutboxEvent(KitBase):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[str] = mapped_column(Text)  # the JSON envelope exactly as published
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        # the relay's scan: unpublished rows in order
        Index("ix_outbox_unpublished", "id",
              postgresql_where=published_at.is_(None), sqlite_where=published_at.is_(None)),
    )


class ProcessedEvent(KitBase):
    __tablename__ = "processed_events"

    handler: Mapped[str] = mapped_column(String(150), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeadLetter(KitBase):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    handler: Mapped[str] = mapped_column(String(150))
    event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    event_type: Mapped[str | None] = mapped_column(String(100), default=None)
    body: Mapped[str] = mapped_column(Text)  # the message as received, JSON
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # 'dead' until a replay succeeds, then 'replayed'
    status: Mapped[str] = mapped_column(String(16), default="dead", index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
