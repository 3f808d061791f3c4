"""Erasure leaves none of the person's data anywhere in the customer database: not in their
record, not in a record merged into theirs, not in interactions, stage reasons or churn
reasons, not in the audit trail and not in the kept event history (``outbox_events``, which is
replayed to rebuild other services' copies). The facts stay. SQLite and PostgreSQL."""
import json

import pytest
from sqlalchemy import inspect, text

from crm_kit.testing import appears_in
from crm_kit import contracts
from crm_kit.db import make_engine, make_sessionmaker
from crm_kit.migrations import upgrade
from customer_service import customers, lifecycle

from customer_fixtures import ACTOR, MIGRATIONS, person

ADMIN = {"id": "admin-1", "roles": ["admin"]}
SUPERVISOR = {"id": "staff-9", "roles": ["sales_supervisor"]}


@pytest.fixture
def sessions(database_url):
    upgrade(MIGRATIONS, database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine, "customer")
    engine.dispose()


def every_cell(sessions):
    """The text of every cell of every table."""
    with sessions() as session:
        tables = inspect(session.connection()).get_table_names()
        return "\n".join(str(cell) for table in tables
                         for row in session.execute(text(f'SELECT * FROM "{table}"')).all()
                         for cell in row)


def test_erasure_leaves_no_personal_data_in_any_table(sessions):
    secrets = {"name": "司马相如", "mobile": "13712345678", "email": "xiangru@example.com",
               "id_number": "11010519491231002X", "employer": "卓氏酒坊",
               "summary": "司马相如 asked for a quiet flat", "stage_reason": "司马相如 moves abroad",
               "churn_reason": "司马相如 bought a house", "dup_mobile": "13787654321",
               "dup_name": "司马长卿"}
    with sessions() as session:
        customer = customers.create(session, person(
            name=secrets["name"], mobile=secrets["mobile"], email=secrets["email"],
            id_number=secrets["id_number"], employer=secrets["employer"]), ACTOR)
        customer_id = customer.id
        customers.add_interaction(session, customer_id, {
            "channel": "wechat", "direction": "inbound", "summary": secrets["summary"]}, ACTOR)
        lifecycle.change_stage(session, customer_id, {"stage": "churn_warning",
                                                      "reason": secrets["stage_reason"]},
                               SUPERVISOR)
        lifecycle.churn_decision(session, customer_id, {"decision": "keep_trying",
                                                        "reason": secrets["churn_reason"]}, ACTOR)
        duplicate = customers.create(session, person(name=secrets["dup_name"],
                                                     mobile=secrets["dup_mobile"]), ACTOR)
        duplicate_id = duplicate.id
        customers.merge(session, customer_id, duplicate_id, SUPERVISOR)
        bystander = customers.create(session, person(name="路人甲", mobile="13500135001"), ACTOR)
        bystander_id = bystander.id
        session.commit()
    cells = every_cell(sessions)
    assert all(appears_in(value, cells) for value in secrets.values())  # the test can see them

    with sessions() as session:
        customers.erase(session, customer_id, ADMIN)
        session.commit()

    cells = every_cell(sessions)
    for label, value in secrets.items():
        assert not appears_in(value, cells), f"the {label} is still in the database"
    assert appears_in("路人甲", cells)  # other people are untouched
    with sessions() as session:
        erased = {json.loads(envelope)["data"]["customer_id"] for (envelope,) in session.execute(
            text("SELECT envelope FROM outbox_events WHERE event_type = 'customer.erased'"))}
        assert set(erased) == {customer_id, duplicate_id}  # the merged record is told too
        # the facts stay: every event is still there, and still keeps its contract
        envelopes = [json.loads(envelope) for (envelope,) in session.execute(text(
            "SELECT envelope FROM outbox_events ORDER BY id")).all()]
        assert [e["type"] for e in envelopes].count("customer.created") == 3
        assert all(contracts.problems(e) == [] for e in envelopes), \
            [contracts.problems(e) for e in envelopes]
        merged = customers.get(session, duplicate_id)
        assert merged.name == customers.ERASED_NAME and merged.erased_at is not None
        assert customers.get(session, bystander_id).erased_at is None


def test_scrubbing_an_event_touches_only_the_erased_people():
    data = {"survivor_id": "a", "merged_id": "b", "merged_mobile": "13700000000",
            "customer": {"id": "a", "name": "张三", "mobile": "13711111111", "tags": ["vip"],
                         "stage": "repeat", "district": "武侯"}}
    scrubbed = customers.scrub_event_data(data, {"b"})
    assert scrubbed["merged_mobile"] is None and scrubbed["customer"]["name"] == "张三"
    scrubbed = customers.scrub_event_data(data, {"a"})
    assert scrubbed["customer"] == {"id": "a", "name": customers.ERASED_NAME, "mobile": None,
                                    "tags": [], "stage": "repeat", "district": "武侯"}
    assert data["customer"]["name"] == "张三"  # the input is not changed
