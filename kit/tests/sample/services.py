"""``kit_producer`` records notes (each with a ``note.recorded`` event); ``kit_consumer``
applies those events to its own table. Nothing here is business logic: they exist to test
the outbox, the relay, idempotent consumption and dead letters against the real broker.
"""
from datetime import datetime

from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kit.envelope import now
from crm_kit.inbox import on_event
from crm_kit.outbox import record_event
from crm_kit.service import CrmService
from crm_kit.types import UtcDateTime


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Effect(Base):
    __tablename__ = "effects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))
    n: Mapped[int] = mapped_column(Integer)


class Switch(Base):
    """Test knobs written straight into the database by the tests."""
    __tablename__ = "switches"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def _record(session, n):
    session.add(Note(n=n, created_at=now()))
    record_event(session, "note.recorded", {"n": n})


class Producer(CrmService):
    name = "kit_producer"

    @rpc
    def record(self, n):
        with self.db.transaction() as session:
            _record(session, n)
        return n

    @timer(interval=0.1)
    def record_pending(self):
        """Commits the notes asked for in switch 'pending' — works with the broker away."""
        with self.db.transaction() as session:
            switch = session.get(Switch, "pending")
            if switch is None or switch.value <= 0:
                return
            start = session.scalar(select(Note.n).order_by(Note.n.desc()).limit(1)) or 0
            for n in range(start + 1, start + 1 + switch.value):
                _record(session, n)
            switch.value = 0


class Consumer(CrmService):
    name = "kit_consumer"

    @on_event("kit_producer", "note.recorded")
    def on_note_recorded(self, session, data, envelope):
        # negative notes fail until switch 'accept_negative' is set: the "fix" of a poison event
        if data["n"] < 0:
            fixed = session.get(Switch, "accept_negative")
            if fixed is None or not fixed.value:
                raise ValueError("negative notes are not accepted")
        session.add(Effect(event_id=envelope["event_id"], n=data["n"]))

    @rpc
    def effects(self):
        with self.db.transaction() as session:
            return [n for (n,) in session.execute(select(Effect.n).order_by(Effect.id))]
