"""The customer service's audit trail: every change of customer data is an entry (who, when,
what, before, after) in the same transaction; the database keeps it append-only; erasure
leaves the facts and no personal data. SQLite and PostgreSQL, the logic and the running
service."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm_kit import audit
from crm_kit.db import make_engine, make_sessionmaker
from crm_kit.envelope import make_envelope
from crm_kit.errors import InvalidInput
from crm_kit.migrations import upgrade
from crm_kit.testing import appears_in, publish_event, wait_until
from customer_service import customers, lifecycle

from customer_fixtures import ACTOR, MIGRATIONS, SPEC, person

SUPERVISOR = {"id": "staff-9", "roles": ["sales_supervisor"]}


@pytest.fixture
def sessions(database_url):
    """Sessions on a migrated customer database, SQLite then PostgreSQL."""
    upgrade(MIGRATIONS, database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine, "customer")
    engine.dispose()


def trail(sessions, **filters):
    with sessions() as session:
        return audit.trail(session, filters, 1, 200)["items"]


def raw_cells(sessions):
    with sessions() as session:
        rows = session.execute(text("SELECT * FROM audit_entries")).all()
    return "\n".join(str(cell) for row in rows for cell in row)



def test_each_change_of_customer_data_is_an_entry(sessions):
    with sessions() as session:
        customer = customers.create(session, person(id_number="11010519491231002x"), ACTOR)
        customer_id = customer.id
        session.commit()
    with sessions() as session:
        customers.update(session, customer_id, {"mobile": "13900139000",
                                                "consent": {"email": True}}, ACTOR)
        customers.add_tags(session, customer_id, ["vip"], ACTOR)
        customers.remove_tag(session, customer_id, "vip", ACTOR)
        customers.add_interaction(session, customer_id, {
            "channel": "phone", "direction": "inbound", "summary": "asked about 2b1b"}, ACTOR)
        lifecycle.change_stage(session, customer_id, {"stage": "churn_warning",
                                                      "reason": "moving away"}, SUPERVISOR)
        lifecycle.churn_decision(session, customer_id, {"decision": "keep_trying",
                                                        "reason": "will call again"}, ACTOR)
        customers.adjust_points(session, customer_id, {"delta": 120, "reason": "welcome gift"},
                                SUPERVISOR)
        customers.handover(session, {"from_owner_id": "staff-1", "to_owner_id": "staff-2",
                                     "reason": "staff-1 left"}, SUPERVISOR)
        customers.archive(session, customer_id, SUPERVISOR)
        session.commit()

    entries = trail(sessions, subject_id=customer_id)[::-1]  # oldest first
    assert [e["action"] for e in entries] == [
        "customer.created", "customer.updated", "customer.tags_changed",
        "customer.tags_changed", "interaction.added", "customer.stage_changed",
        "customer.churn_decided", "customer.stage_changed", "customer.points_changed",
        "customer.owner_changed", "customer.archived"]
    created, updated = entries[0], entries[1]
    assert created["before"] is None and created["after"]["mobile"] == "13800138000"
    assert created["after"]["id_number"] == "11010519491231002X"
    assert (created["actor_id"], created["actor_roles"]) == ("staff-1", ["customer_manager"])
    # only what changed: the mobile and the consent, nothing else of the record
    assert set(updated["before"]) == {"mobile", "consent"}
    assert updated["before"]["mobile"] == "13800138000"
    assert updated["after"]["mobile"] == "13900139000"
    assert updated["after"]["consent"]["email"] is True
    assert all(e["entity"] == "customer" and e["entity_id"] == customer_id
               for e in entries if e["action"] != "interaction.added")
    assert entries[2]["after"]["tags"] == sorted(entries[2]["before"]["tags"] + ["vip"])
    interaction = entries[4]
    assert interaction["entity"] == "interaction" and interaction["after"]["summary"] == (
        "asked about 2b1b")
    warned = entries[5]
    assert warned["before"] == {"stage": "potential"}
    assert warned["after"]["stage"] == "churn_warning" and warned["actor_id"] == "staff-9"
    assert entries[6]["after"]["decision"] == "keep_trying"
    assert entries[8]["before"] == {"points": 0}
    assert entries[8]["after"] == {"points": 120, "delta": 120, "reason": "welcome gift"}
    assert entries[9]["before"] == {"owner_id": "staff-1"}
    assert entries[9]["after"] == {"owner_id": "staff-2", "reason": "staff-1 left"}
    assert entries[10]["after"] == {"archived": True}
    assert all(e["at"] >= created["at"] and e["redacted_at"] is None for e in entries)


def test_a_refused_change_and_a_change_to_the_same_value_leave_no_entry(sessions):
    with sessions() as session:
        customer_id = customers.create(session, person(), ACTOR).id
        session.commit()
    with sessions() as session:
        with pytest.raises(InvalidInput):
            customers.update(session, customer_id, {"mobile": "not-a-mobile"}, ACTOR)
        session.rollback()
        customers.update(session, customer_id, {"name": "王小明"}, ACTOR)  # the same name
        session.commit()
    assert [e["action"] for e in trail(sessions, subject_id=customer_id)] == [
        "customer.created"]


def test_what_events_change_is_audited_as_the_system(sessions):
    with sessions() as session:
        customer_id = customers.create(session, person(), ACTOR).id
        session.commit()
    with sessions() as session:
        for n, (tier, risk) in enumerate((("key", 20), ("key", 35), ("important", 35))):
            moment = f"2026-12-0{n + 1}T00:00:00+00:00"
            lifecycle.on_customer_scored(session, {
                "customer_id": customer_id, "value_tier": tier, "churn_risk": risk,
                "scored_at": moment}, {"event_id": f"e-{n}", "occurred_at": moment})
        lifecycle.on_payment_received(session, {"customer_id": customer_id,
                                                "payment_id": "P-1", "amount": "3500.00"},
                                      {"event_id": "e-pay"})
        session.commit()
    scored = trail(sessions, action="customer.scored")[::-1]
    # a new value tier is an entry; the churn risk moving on its own is not
    assert [(e["before"], e["after"]) for e in scored] == [
        ({"value_tier": None, "churn_risk": None}, {"value_tier": "key", "churn_risk": 20}),
        ({"value_tier": "key"}, {"value_tier": "important"})]
    [points] = trail(sessions, action="customer.points_changed")
    assert (points["actor_id"], points["actor_roles"]) == ("system", [])
    assert points["before"] == {"points": 0}
    assert points["after"] == {"points": 350, "delta": 350, "payment_id": "P-1",
                               "event_id": "e-pay"}
    assert all(e["actor_id"] == "system" for e in scored)


def test_merge_is_audited_on_both_records(sessions):
    with sessions() as session:
        survivor = customers.create(session, person(email=None), ACTOR)
        duplicate = customers.create(session, person(mobile="13700137000"), ACTOR)
        customers.adjust_points(session, duplicate.id, {"delta": 40, "reason": "old points"},
                                SUPERVISOR)
        customers.merge(session, survivor.id, duplicate.id, SUPERVISOR)
        session.commit()
    [merged] = trail(sessions, action="customer.merged")
    assert merged["entity_id"] == survivor.id and merged["after"]["merged_id"] == duplicate.id
    assert merged["before"]["points"] == 0 and merged["after"]["points"] == 40
    assert merged["after"]["email"] == "xm@example.com"  # filled from the duplicate
    [folded] = trail(sessions, action="customer.merged_into")
    assert folded["subject_id"] == duplicate.id
    assert folded["before"]["mobile"] == "13700137000" and folded["after"]["mobile"] is None
    assert folded["after"]["merged_into"] == survivor.id


def test_erasure_keeps_the_facts_and_no_personal_data(sessions):
    secrets = {"name": "欧阳娜娜", "mobile": "13612345678", "email": "nana@example.com",
               "id_number": "11010519491231002X", "summary": "欧阳娜娜 wants a lake view",
               "old_mobile": "13687654321", "dup_mobile": "13611112222",
               "contact": "13655556666"}
    with sessions() as session:
        customer = customers.create(session, person(
            name=secrets["name"], mobile=secrets["old_mobile"], email=secrets["email"],
            id_number=secrets["id_number"]), ACTOR)
        customer_id = customer.id
        customers.update(session, customer_id, {"mobile": secrets["mobile"]}, ACTOR)
        customers.add_interaction(session, customer_id, {
            "channel": "wechat", "direction": "inbound", "summary": secrets["summary"]}, ACTOR)
        # a duplicate record of the same person, merged into theirs, then erased with it
        duplicate = customers.create(session, person(
            name=secrets["name"], mobile=secrets["dup_mobile"], email=secrets["email"],
            kind="company", contacts=[{"name": "前台", "mobile": secrets["contact"]}]), ACTOR)
        customers.merge(session, customer_id, duplicate.id, SUPERVISOR)
        bystander = customers.create(session, person(name="路人甲", mobile="13500135000"), ACTOR)
        session.commit()
    before = len(trail(sessions))
    cells = raw_cells(sessions)
    assert all(appears_in(value, cells) for value in secrets.values())  # the test can see them

    with sessions() as session:
        customers.erase(session, customer_id, {"id": "admin-1", "roles": ["admin"]})
        session.commit()

    cells = raw_cells(sessions)
    for label, value in secrets.items():
        assert not appears_in(value, cells), f"the {label} is still in the audit table"
    entries = trail(sessions)
    assert len(entries) == before + 1  # every fact stays, and the erasure is one more
    erased = entries[0]
    assert (erased["action"], erased["entity_id"], erased["actor_id"]) == (
        "customer.erased", customer_id, "admin-1")
    assert (erased["before"], erased["after"]) == ({"erased": False}, {"erased": True})
    theirs = [e for e in entries[1:] if e["subject_id"] in (customer_id, duplicate.id)]
    assert {e["action"] for e in theirs} >= {"customer.created", "customer.updated",
                                             "interaction.added", "customer.merged",
                                             "customer.merged_into"}
    assert all(e["before"] is None and e["after"] is None and e["redacted_at"]
               for e in theirs)
    [other] = trail(sessions, subject_id=bystander.id)
    assert other["after"]["name"] == "路人甲" and other["redacted_at"] is None


def test_the_database_keeps_the_trail_append_only(sessions):
    with sessions() as session:
        customer_id = customers.create(session, person(), ACTOR).id
        session.commit()
    for sql in ("DELETE FROM audit_entries",
                "UPDATE audit_entries SET actor_id = 'nobody'",
                "UPDATE audit_entries SET \"after\" = NULL"):
        with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(text(sql))
            session.rollback()
    [entry] = trail(sessions, subject_id=customer_id)
    assert entry["actor_id"] == "staff-1" and entry["after"]["mobile"] == "13800138000"


# ---------------------------------------------------------------- the running service

@pytest.fixture
def rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10,
                         context_data={"correlation_id": "req-audit-1"}) as proxy:
        yield proxy.customer


def test_the_service_audits_calls_and_events_and_answers_audit_trail(
        start_service, database_url, rpc, amqp_uri):
    start_service(SPEC, database_url)
    customer_id = rpc.create_customer(person(), ACTOR)["id"]
    rpc.update_customer(customer_id, {"occupation": "engineer"}, ACTOR)
    signed = make_envelope("lease.signed", {
        "lease_id": "L1", "customer_id": customer_id, "start_date": "2026-01-01",
        "end_date": "2026-12-31", "monthly_rent": "3500.00", "status": "active"},
        source="sales")
    publish_event(amqp_uri, "sales", "lease.signed", None, envelope=signed)
    wait_until(lambda: rpc.audit_trail({"subject_id": customer_id,
                                        "action": "customer.lease_counted"})["total"] == 1,
               message="the event's change in the audit trail")

    page = rpc.audit_trail({"subject_id": customer_id}, 1, 2)
    assert page["total"] == 4 and (page["page"], page["per_page"]) == (1, 2)
    everything = rpc.audit_trail({"subject_id": customer_id}, 1, 50)["items"]
    assert [e["action"] for e in everything] == [  # newest first
        "customer.stage_changed", "customer.lease_counted", "customer.updated",
        "customer.created"]
    assert page["items"] == everything[:2]
    by_action = {e["action"]: e for e in everything}
    assert by_action["customer.updated"]["after"] == {"occupation": "engineer"}
    assert by_action["customer.updated"]["correlation_id"] == "req-audit-1"
    assert by_action["customer.updated"]["source"] == "customer"
    counted = by_action["customer.lease_counted"]
    assert (counted["actor_id"], counted["actor_roles"]) == ("system", [])
    assert counted["before"] == {"leases_signed": 0}
    assert counted["after"]["leases_signed"] == 1 and counted["after"]["lease_id"] == "L1"
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)
    with pytest.raises(InvalidInput):
        rpc.audit_trail({"since": "last week"})
