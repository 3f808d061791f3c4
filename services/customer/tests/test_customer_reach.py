"""What the gateway's object-level limits ask of the customer service (crm_gateway.scopes):
owners with "no owner" among them, the ids of an owner's customers, acknowledging and importing
only within the caller's team."""
import pytest

from crm_kit.errors import NotFound
from customer_service import customers, importing, lifecycle
from customer_service.models import StagnationAlert

from customer_fixtures import ACTOR, person


def _three(session):
    mine = customers.create(session, person(mobile="13800000001", owner_id="staff-1"), ACTOR)
    theirs = customers.create(session, person(mobile="13800000002", owner_id="staff-2",
                                              email="b@example.com"), ACTOR)
    nobodys = customers.create(session, person(mobile="13800000003", owner_id=None,
                                               email="c@example.com"), ACTOR)
    return mine, theirs, nobodys


def test_owner_ids_may_ask_for_customers_without_an_owner(session):
    mine, theirs, nobodys = _three(session)

    def ids(owner_ids):
        return {c["id"] for c in customers.search(session, {"owner_ids": owner_ids})["items"]}

    assert ids(["staff-1"]) == {mine.id}
    assert ids(["staff-1", None]) == {mine.id, nobodys.id}
    assert ids([None]) == {nobodys.id}
    assert ids([]) == set()
    assert {c["id"] for c in customers.export(session, {"owner_ids": ["staff-2", None]})} \
        == {theirs.id, nobodys.id}


def test_ids_owned_by_include_archived_and_merged_customers(session):
    mine, theirs, nobodys = _three(session)
    customers.archive(session, mine.id, ACTOR)
    assert set(customers.ids_owned_by(session, ["staff-1"])) == {mine.id}
    assert set(customers.ids_owned_by(session, ["staff-1", "staff-2", None])) == {
        mine.id, theirs.id, nobodys.id}
    assert customers.ids_owned_by(session, []) == []


def test_an_alert_of_another_owner_is_not_acknowledged(session):
    mine, theirs, _ = _three(session)
    alert = StagnationAlert(customer_id=theirs.id, owner_id="staff-2", stage="potential",
                            stage_entered_at=theirs.stage_entered_at, limit_days=30,
                            status="open", created_at=theirs.created_at)
    session.add(alert)
    session.flush()
    with pytest.raises(NotFound) as caught:
        lifecycle.acknowledge_alert(session, str(alert.id), ACTOR, owner_ids=["staff-1"])
    assert caught.value.details == {"alert_id": str(alert.id)}
    assert alert.status == "open"
    done = lifecycle.acknowledge_alert(session, str(alert.id), ACTOR, owner_ids=["staff-2"])
    assert done["status"] == "acknowledged"


def test_an_import_limited_to_owners_leaves_the_others_alone(session):
    mine, theirs, nobodys = _three(session)
    text = ("name,mobile,occupation\n"
            "甲,13800000001,教师\n"
            "乙,13800000002,医生\n"
            "丙,13800000003,律师\n")
    result = importing.import_csv(session, text, ACTOR, owner_ids=["staff-1", None])
    assert (result["created"], result["updated"]) == (0, 2)
    assert result["errors"] == [{"row": 3,
                                 "message": "mobile: belongs to a customer outside your team"}]
    assert (mine.occupation, nobodys.occupation) == ("教师", "律师")
    assert theirs.occupation is None and theirs.name == "王小明"
