"""crm_kit.db's helpers behave the same on SQLite and PostgreSQL."""
import pytest
from sqlalchemy import Integer, String, UniqueConstraint, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from crm_kit.db import insert_new, make_engine, paginate


class Base(DeclarativeBase):
    pass


class Greeting(Base):
    __tablename__ = "greetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    occasion: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("customer_id", "occasion"),)


@pytest.fixture
def session(database_kind, tmp_path, postgres_database):
    url = (f"sqlite:///{tmp_path / 'h.db'}" if database_kind == "sqlite"
           else postgres_database("helpers"))
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_insert_new_keeps_what_exists_and_adds_the_rest(session):
    insert_new(session, Greeting, [{"customer_id": "c1", "occasion": "birthday:2026"}])
    insert_new(session, Greeting, [{"customer_id": "c1", "occasion": "birthday:2026"},
                                   {"customer_id": "c2", "occasion": "birthday:2026"}])
    insert_new(session, Greeting, [])
    session.commit()
    assert session.execute(select(Greeting.customer_id, Greeting.occasion)
                           .order_by(Greeting.customer_id)).all() == [
        ("c1", "birthday:2026"), ("c2", "birthday:2026")]


def test_paginate_counts_all_and_returns_one_page(session):
    session.add_all(Greeting(customer_id=f"c{i:02d}", occasion="x") for i in range(7))
    session.commit()
    page = paginate(session, select(Greeting).order_by(Greeting.customer_id.desc()), 2, 3,
                    lambda g: g.customer_id)
    assert page == {"items": ["c03", "c02", "c01"], "total": 7, "page": 2, "per_page": 3}
    assert paginate(session, select(Greeting).order_by(Greeting.id), 4, 3,
                    lambda g: g.id)["items"] == []
