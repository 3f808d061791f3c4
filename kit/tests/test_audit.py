"""crm_kit.audit: entries with who/when/what/before/after, append-only in the database itself
(SQLite and PostgreSQL triggers), redaction as the one change allowed, reading with filters."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm_kit.testing import appears_in
from crm_kit import audit
from crm_kit.db import make_engine, make_sessionmaker
from crm_kit.errors import InvalidInput
from crm_kit.logging import reset_correlation_id, set_correlation_id
from crm_kit.migrations import alembic_config, upgrade

ENV = """from crm_kit.audit import audit_metadata
from crm_kit.migrations import run_env

run_env(audit_metadata)
"""
REVISION = '''"""audit trail

Revision ID: 0001_audit
Revises:
"""
from crm_kit.audit import create_audit_trail, drop_audit_trail

revision = "0001_audit"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_audit_trail()


def downgrade():
    drop_audit_trail()
'''
ACTOR = {"id": "staff-7", "roles": ["customer_manager"]}


@pytest.fixture
def migrations(tmp_path):
    """An Alembic folder whose one migration is the one line every service's is."""
    folder = tmp_path / "migrations"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(ENV)
    (folder / "script.py.mako").write_text("")
    (folder / "versions" / "0001_audit.py").write_text(REVISION)
    return folder


@pytest.fixture
def url(database_kind, tmp_path, postgres_database, migrations):
    url = (f"sqlite:///{tmp_path / 'audit.db'}" if database_kind == "sqlite"
           else postgres_database("audit"))
    upgrade(migrations, url)
    return url


@pytest.fixture
def sessions(url):
    engine = make_engine(url)
    yield make_sessionmaker(engine, "sample")
    engine.dispose()



def dump(sessions):
    """Every cell of the audit table as text, the way someone reading the raw table sees it."""
    rows = raw(sessions, "SELECT * FROM audit_entries")
    return "\n".join(str(cell) for row in rows for cell in row)


def entries(sessions, filters=None, **paging):
    with sessions() as session:
        return audit.trail(session, filters or {}, **paging)["items"]


def raw(sessions, sql, **params):
    """A statement straight at the database, committed (what the triggers must stop)."""
    with sessions() as session:
        result = session.execute(text(sql), params)
        rows = result.all() if result.returns_rows else None
        session.commit()
        return rows


def test_a_change_is_recorded_with_who_when_what_before_and_after(sessions):
    token = set_correlation_id("req-42")
    try:
        with sessions() as session:
            entry = audit.record(
                session, ACTOR, "customer.updated", "customer", "c-1",
                {"name": "王小明", "mobile": "13800138000", "points": 10,
                 "birthday": datetime(1990, 1, 2).date()},
                {"name": "王小明", "mobile": "13900139000", "points": 12, "rent": Decimal("3500.00"),
                 "birthday": datetime(1990, 1, 2).date()},
                subject_id="c-1")
            session.commit()
    finally:
        reset_correlation_id(token)
    [item] = entries(sessions, {})
    assert item["id"] == entry.id and item["source"] == "sample"
    assert item["actor_id"] == "staff-7" and item["actor_roles"] == ["customer_manager"]
    assert (item["action"], item["entity"], item["entity_id"], item["subject_id"]) == (
        "customer.updated", "customer", "c-1", "c-1")
    # only what changed, JSON-ready (money as a decimal string)
    assert item["before"] == {"mobile": "13800138000", "points": 10}
    assert item["after"] == {"mobile": "13900139000", "points": 12, "rent": "3500.00"}
    assert item["correlation_id"] == "req-42" and item["redacted_at"] is None
    at = datetime.fromisoformat(item["at"])
    assert at.tzinfo is not None and abs(datetime.now(timezone.utc) - at) < timedelta(minutes=1)


def test_nothing_changed_records_nothing_and_creation_keeps_everything(sessions):
    with sessions() as session:
        assert audit.record(session, ACTOR, "x.updated", "x", "1", {"a": 1}, {"a": 1}) is None
        audit.record(session, None, "x.created", "x", 1, None, {"a": 1, "b": None})
        session.commit()
    [item] = entries(sessions, {})
    assert item["before"] is None and item["after"] == {"a": 1, "b": None}
    assert item["entity_id"] == "1"
    assert (item["actor_id"], item["actor_roles"]) == ("system", [])  # timers, event handlers


def test_secrets_never_reach_the_table(sessions):
    with sessions() as session:
        audit.record(session, ACTOR, "staff.updated", "staff", "s-1",
                     {"roles": ["technician"], "password_hash": "scrypt:old-hash"},
                     {"roles": ["admin"], "password_hash": "scrypt:new-hash"})
        audit.record(session, ACTOR, "staff.updated", "staff", "s-2",
                     {"password_hash": "scrypt:same"}, {"password_hash": "scrypt:same"})
        audit.record(session, ACTOR, "staff.created", "staff", "s-3", None,
                     {"username": "li", "password": "plain-text-1"})
        session.commit()
    items = entries(sessions, {})
    assert [i["entity_id"] for i in items] == ["s-3", "s-1"]  # an unchanged hash is no change
    assert items[1]["before"] == {"roles": ["technician"]}
    assert items[1]["after"] == {"roles": ["admin"], "password": "changed"}
    assert items[0]["after"] == {"username": "li", "password": "changed"}
    text_ = dump(sessions)
    assert "hash" not in text_ and "plain-text-1" not in text_


def test_the_database_refuses_delete_and_update(sessions, database_kind):
    with sessions() as session:
        entry = audit.record(session, ACTOR, "bill.issued", "bill", "b-1", None,
                             {"amount": "100.00"})
        session.commit()
        entry_id = entry.id
    refused = [
        "DELETE FROM audit_entries",
        "DELETE FROM audit_entries WHERE id = :id",
        "UPDATE audit_entries SET action = 'bill.voided' WHERE id = :id",
        "UPDATE audit_entries SET actor_id = 'someone-else' WHERE id = :id",
        "UPDATE audit_entries SET at = at WHERE id = :id",  # even a no-op write
        # blanking without the stamp, or stamping without blanking, is no redaction
        'UPDATE audit_entries SET "after" = NULL WHERE id = :id',
        "UPDATE audit_entries SET redacted_at = CURRENT_TIMESTAMP WHERE id = :id",
        # a redaction may not change anything else along the way
        'UPDATE audit_entries SET "before" = NULL, "after" = NULL, redacted_at = CURRENT_TIMESTAMP,'
        " entity_id = 'b-2' WHERE id = :id",
    ]
    if database_kind == "postgresql":
        refused.append("TRUNCATE audit_entries")
    for sql in refused:
        with pytest.raises(DBAPIError) as caught:
            raw(sessions, sql, id=entry_id)
        assert "append-only" in str(caught.value), sql
    [item] = entries(sessions, {})
    assert (item["action"], item["entity_id"], item["actor_id"]) == (
        "bill.issued", "b-1", "staff-7")
    assert item["after"] == {"amount": "100.00"} and item["redacted_at"] is None


def test_redaction_blanks_the_data_keeps_the_fact_and_happens_once(sessions):
    with sessions() as session:
        audit.record(session, ACTOR, "customer.created", "customer", "c-1", None,
                     {"name": "李雷", "mobile": "13711112222"}, subject_id="c-1")
        audit.record(session, ACTOR, "customer.created", "customer", "c-2", None,
                     {"name": "韩梅梅", "mobile": "13733334444"}, subject_id="c-2")
        audit.record(session, ACTOR, "interaction.added", "interaction", "9", None,
                     {"summary": "李雷 called about the lease"}, subject_id="c-1")
        session.commit()
    with sessions() as session:
        assert audit.redact(session, "c-1") == 2
        session.commit()
    with sessions() as session:
        assert audit.redact(session, ["c-1"]) == 0  # what is redacted stays as it is
        session.commit()
    items = {i["entity_id"]: i for i in entries(sessions, {})}
    for key in ("c-1", "9"):
        assert items[key]["before"] is None and items[key]["after"] is None
        assert items[key]["redacted_at"] is not None
        assert items[key]["actor_id"] == "staff-7" and items[key]["subject_id"] == "c-1"
    assert items["c-2"]["after"]["name"] == "韩梅梅" and items["c-2"]["redacted_at"] is None
    text_ = dump(sessions)
    assert not appears_in("李雷", text_) and not appears_in("13711112222", text_)
    assert appears_in("韩梅梅", text_)
    # and a redacted entry cannot be stamped again (nor written back)
    with pytest.raises(DBAPIError):
        raw(sessions, "UPDATE audit_entries SET redacted_at = CURRENT_TIMESTAMP "
                      "WHERE entity_id = 'c-1'")
    with pytest.raises(DBAPIError):
        raw(sessions, """UPDATE audit_entries SET "after" = '{"name": "x"}' """
                      "WHERE entity_id = 'c-1'")


def test_redaction_in_the_transaction_of_a_change_covers_its_entries(sessions):
    with sessions() as session:
        audit.record(session, ACTOR, "customer.updated", "customer", "c-1", {"name": "a"},
                     {"name": "b"}, subject_id="c-1")
        assert audit.redact(session, "c-1") == 1
        audit.record(session, ACTOR, "customer.erased", "customer", "c-1", {"erased": False},
                     {"erased": True}, subject_id="c-1")
        session.commit()
    erased, updated = entries(sessions, {})
    assert erased["action"] == "customer.erased" and erased["after"] == {"erased": True}
    assert updated["after"] is None and updated["redacted_at"] is not None


def test_bulk_entries(sessions):
    with sessions() as session:
        count = audit.record_many(session, ACTOR, [
            {"action": "bill.issued", "entity": "bill", "entity_id": f"b-{n}", "before": None,
             "after": {"amount": Decimal(n)}, "subject_id": "c-1"} for n in range(3)])
        session.commit()
    assert count == 3
    items = entries(sessions, {"entity": "bill"})
    assert sorted(i["after"]["amount"] for i in items) == ["0", "1", "2"]
    assert all(i["before"] is None for i in items)
    # the blank "before" is SQL NULL, not JSON null: these rows can still be redacted
    with sessions() as session:
        assert audit.redact(session, "c-1") == 3
        session.commit()


def test_reading_filters_pages_and_refuses_unknown_filters(sessions):
    with sessions() as session:
        for n in range(5):
            audit.record(session, {"id": f"staff-{n % 2}", "roles": []}, "lease.signed",
                         "lease", f"l-{n}", None, {"n": n}, subject_id=f"c-{n % 3}")
        session.commit()
    with sessions() as session:
        page = audit.trail(session, {}, page=2, per_page=2)
        assert page["total"] == 5 and (page["page"], page["per_page"]) == (2, 2)
        assert [i["entity_id"] for i in page["items"]] == ["l-2", "l-1"]  # newest first
        assert audit.trail(session, {"actor_id": "staff-1"})["total"] == 2
        assert audit.trail(session, {"subject_id": "c-0"})["total"] == 2
        assert audit.trail(session, {"entity": "lease", "entity_id": "l-3"})["total"] == 1
        assert audit.trail(session, {"action": "lease.ended"})["total"] == 0
        future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
        past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
        assert audit.trail(session, {"since": future})["total"] == 0
        assert audit.trail(session, {"since": past, "until": future})["total"] == 5
        assert audit.trail(session, {"until": past})["total"] == 0
        with pytest.raises(InvalidInput) as caught:
            audit.trail(session, {"who": "x", "since": "yesterday"})
        assert set(caught.value.details) == {"who", "since"}


def test_downgrade_removes_the_table_and_its_triggers(url, migrations, sessions):
    command.downgrade(alembic_config(migrations, url), "base")
    with pytest.raises(DBAPIError):
        raw(sessions, "SELECT count(*) FROM audit_entries")
    upgrade(migrations, url)  # and up again: nothing left behind clashes
    assert raw(sessions, "SELECT count(*) FROM audit_entries") == [(0,)]
