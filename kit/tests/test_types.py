"""Money and instants survive SQLite and PostgreSQL exactly."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Integer, MetaData, Table, Column, func, insert, select

from crm_kit.db import make_engine
from crm_kit.envelope import InvalidEnvelope, check_envelope, make_envelope
from crm_kit.types import Money, UtcDateTime, to_money


@pytest.fixture
def engine(database_kind, tmp_path, postgres_database):
    url = (f"sqlite:///{tmp_path / 't.db'}" if database_kind == "sqlite"
           else postgres_database("types"))
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_money_is_exact_and_sums_exactly(engine):
    table = Table("amounts", MetaData(), Column("id", Integer, primary_key=True),
                  Column("amount", Money), Column("at", UtcDateTime))
    table.metadata.create_all(engine)
    amounts = ["0.10", "0.20", "3500.00", "1166.67", "99999999.99"]
    with engine.begin() as connection:
        connection.execute(insert(table), [{"amount": Decimal(a)} for a in amounts])
        stored = connection.scalars(select(table.c.amount).order_by(table.c.id)).all()
        total = connection.scalar(select(func.sum(table.c.amount)))
    assert stored == [Decimal(a) for a in amounts]
    assert total == sum(Decimal(a) for a in amounts)


def test_money_refuses_floats_and_rounds_half_up():
    with pytest.raises(TypeError):
        to_money(0.1)
    assert to_money("2.005") == Decimal("2.01")


def test_instants_come_back_aware_in_utc(engine):
    table = Table("instants", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UtcDateTime))
    table.metadata.create_all(engine)
    shanghai = timezone(timedelta(hours=8))
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=shanghai)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"at": moment}])
        back = connection.scalar(select(table.c.at))
    assert back == moment and back.tzinfo is not None and back.utcoffset() == timedelta(0)
    with pytest.raises(Exception):
        with engine.begin() as connection:
            connection.execute(insert(table), [{"at": datetime(2026, 3, 1)}])


def test_envelope_shape_is_checked():
    envelope = make_envelope("lease.signed", {"lease_id": "L1"}, source="sales",
                             correlation_id="c1")
    assert check_envelope(envelope) is envelope
    for broken in ({**envelope, "event_id": "nope"}, {**envelope, "type": "Lease Signed"},
                   {k: v for k, v in envelope.items() if k != "data"}, "text", None):
        with pytest.raises(InvalidEnvelope):
            check_envelope(broken)
