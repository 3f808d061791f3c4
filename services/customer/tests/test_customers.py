"""The customer record's rules, on a real (SQLite) database, without the broker."""
import io
import json

import pytest
from sqlalchemy import select

from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.models import OutboxEvent
from customer_service import customers, importing
from customer_service.models import Interaction, StageChange

from customer_fixtures import ACTOR, person


def events(session, event_type=None):
    rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    found = [json.loads(r.envelope) for r in rows]
    return [e for e in found if event_type is None or e["type"] == event_type]


def test_create_sets_defaults_rule_tags_history_and_event(session):
    customer = customers.create(session, person(tags=["vip"]), ACTOR)
    session.commit()
    data = customers.to_dict(customer)
    assert data["stage"] == "potential"
    assert data["member"] == {"tier": "standard", "points": 0}
    assert data["value_tier"] is None
    assert data["consent"] == {"sms": True, "email": False, "wechat": False, "phone": False,
                               "in_app": False}
    # vip by hand; young_professional, fresh_graduate and newcomer from rules
    assert set(data["tags"]) == {"vip", "young_professional", "fresh_graduate", "newcomer"}
    [created] = events(session, "customer.created")
    assert created["data"]["id"] == customer.id
    assert "id_number" not in created["data"]  # the sensitive field stays home
    [change] = session.scalars(select(StageChange)).all()
    assert (change.from_stage, change.to_stage, change.trigger) == (None, "potential", "created")


def test_same_mobile_is_a_conflict_naming_the_existing_customer(session):
    first = customers.create(session, person(), ACTOR)
    with pytest.raises(Conflict) as caught:
        customers.create(session, person(email="other@example.com"), ACTOR)
    assert caught.value.details["existing_id"] == first.id


@pytest.mark.parametrize("field,value", [
    ("mobile", "1380013800"), ("mobile", "23800138000"), ("email", "not-an-email"),
    ("birthday", "2999-01-01"), ("birthday", "1999-02-30"), ("gender", "unknown"),
    ("id_number", "510104199901011234"), ("education", "phd"), ("source", "tv"),
    ("consent", {"fax": True}), ("tags", ["a,b"]), ("custom_fields", {"x": [1, 2]}),
    ("stage", "repeat"), ("points", 100),
])
def test_invalid_values_are_named_and_change_nothing(session, field, value):
    with pytest.raises(InvalidInput) as caught:
        customers.create(session, person(**{field: value}), ACTOR)
    assert field in caught.value.details
    session.rollback()
    assert customers.search(session, {})["total"] == 0
    assert events(session) == []


def test_valid_id_number_is_accepted_and_checksum_enforced(session):
    customer = customers.create(session, person(id_number="11010519491231002x"), ACTOR)
    assert customer.id_number == "11010519491231002X"


def test_company_with_contacts_gets_a_primary_contact(session):
    company = customers.create(session, person(
        kind="company", name="成都某科技有限公司", contacts=[
            {"name": "李HR", "mobile": "13900139000", "title": "HR"},
            {"name": "张行政", "email": "zx@example.com"}]), ACTOR)
    data = customers.to_dict(company)
    assert [c["is_primary"] for c in data["contacts"]] == [True, False]
    assert "corporate" in data["tags"]
    with pytest.raises(InvalidInput) as caught:
        customers.create(session, person(mobile="13700137000",
                                         contacts=[{"name": "x"}]), ACTOR)
    assert "contacts" in caught.value.details


def test_update_refreshes_rule_tags_and_keeps_manual_ones(session):
    customer = customers.create(session, person(tags=["vip"]), ACTOR)
    customers.update(session, customer.id, {"income_band": "above_30k", "hometown": "成都"}, ACTOR)
    tags = set(customers.to_dict(customer)["tags"])
    assert "high_income" in tags and "vip" in tags and "newcomer" not in tags
    [updated] = events(session, "customer.updated")
    assert updated["data"]["changed"] == ["hometown", "income_band"]


def test_update_cannot_set_stage_points_or_tier(session):
    customer = customers.create(session, person(), ACTOR)
    with pytest.raises(InvalidInput) as caught:
        customers.update(session, customer.id, {"stage": "repeat", "points": 5,
                                                "value_tier": "key"}, ACTOR)
    assert set(caught.value.details) == {"stage", "points", "value_tier"}


def test_search_filters(session):
    a = customers.create(session, person(tags=["vip"]), ACTOR)
    customers.create(session, person(name="赵六", mobile="13600136000", email=None,
                                     owner_id="staff-2", district="锦江区"), ACTOR)
    assert [c["id"] for c in customers.search(session, {"tag": "vip"})["items"]] == [a.id]
    assert customers.search(session, {"q": "赵"})["total"] == 1
    assert customers.search(session, {"owner_ids": ["staff-1"]})["total"] == 1
    assert customers.search(session, {"district": "锦江区"})["total"] == 1
    page = customers.search(session, {}, page=2, per_page=1)
    assert (page["total"], len(page["items"]), page["page"]) == (2, 1, 2)


def test_tags_add_and_remove(session):
    customer = customers.create(session, person(), ACTOR)
    customers.add_tags(session, customer.id, ["pet_owner", "vip"], ACTOR)
    assert {"pet_owner", "vip"} <= set(customers.to_dict(customer)["tags"])
    customers.remove_tag(session, customer.id, "vip", ACTOR)
    assert "vip" not in customers.to_dict(customer)["tags"]
    with pytest.raises(NotFound):
        customers.remove_tag(session, customer.id, "vip", ACTOR)


def test_interactions_on_every_channel(session):
    customer = customers.create(session, person(), ACTOR)
    for channel in ("phone", "wechat", "weibo", "web", "email", "sms", "in_app", "face_to_face"):
        customers.add_interaction(session, customer.id,
                                  {"channel": channel, "summary": f"via {channel}"}, ACTOR)
    page = customers.list_interactions(session, customer.id, per_page=100)
    assert page["total"] == 8
    assert {i["staff_id"] for i in page["items"]} == {"staff-1"}
    with pytest.raises(InvalidInput) as caught:
        customers.add_interaction(session, customer.id, {"channel": "fax", "summary": ""}, ACTOR)
    assert set(caught.value.details) == {"channel", "summary"}


def test_handover_moves_all_or_some_with_history(session):
    ids = [customers.create(session, person(mobile=f"1380013800{i}", email=None), ACTOR).id
           for i in range(3)]
    moved = customers.handover(session, {"from_owner_id": "staff-1", "to_owner_id": "staff-9",
                                         "customer_ids": ids[:1], "reason": "调岗"}, ACTOR)
    assert moved == {"moved": 1, "customer_ids": ids[:1]}
    moved = customers.handover(session, {"from_owner_id": "staff-1", "to_owner_id": "staff-9",
                                         "reason": "离职"}, ACTOR)
    assert moved["moved"] == 2
    assert customers.search(session, {"owner_id": "staff-9"})["total"] == 3
    history = customers.owner_history(session, ids[0])
    assert [(h["from_owner_id"], h["to_owner_id"], h["reason"]) for h in history] == [
        ("staff-1", "staff-9", "调岗")]
    assert len(events(session, "customer.owner_changed")) == 3
    with pytest.raises(InvalidInput):
        customers.handover(session, {"from_owner_id": "staff-1", "to_owner_id": "staff-9",
                                     "customer_ids": ["nope"], "reason": "x"}, ACTOR)


def test_duplicates_by_email_and_id_number(session):
    a = customers.create(session, person(id_number="11010519491231002X"), ACTOR)
    b = customers.create(session, person(mobile="13900139001", id_number="11010519491231002X",
                                         email="XM@example.com"), ACTOR)
    customers.create(session, person(mobile="13900139002", email="other@example.com"), ACTOR)
    [found] = customers.find_duplicates(session, a.id)
    assert found["customer"]["id"] == b.id
    assert found["matched_on"] == ["email", "id_number"]


def test_merge_keeps_everything_of_both(session):
    a = customers.create(session, person(tags=["vip"], custom_fields={"pet": "cat"}), ACTOR)
    b = customers.create(session, person(mobile="13900139001", email="b@example.com",
                                         wechat_id="wx_b", tags=["referrer"],
                                         custom_fields={"floor_pref": "high", "pet": "dog"},
                                         consent={"email": True}), ACTOR)
    customers.add_interaction(session, b.id, {"channel": "wechat", "summary": "asked"}, ACTOR)
    b.points, b.leases_signed = 120, 1
    survivor = customers.merge(session, a.id, b.id, ACTOR)
    data = customers.to_dict(survivor)
    assert data["wechat_id"] == "wx_b" and data["email"] == "xm@example.com"
    assert {"vip", "referrer"} <= set(data["tags"])
    assert data["custom_fields"] == {"pet": "cat", "floor_pref": "high"}
    assert data["consent"]["sms"] and data["consent"]["email"]
    assert data["member"]["points"] == 120 and data["leases_signed"] == 1
    assert data["stage"] == "first_time"  # b's signed lease counts for the survivor
    assert session.scalars(select(Interaction.customer_id)).all() == [a.id]
    merged = customers.get(session, b.id)
    assert merged.merged_into == a.id and merged.mobile is None
    [event] = events(session, "customer.merged")
    assert event["data"]["survivor_id"] == a.id and event["data"]["merged_id"] == b.id
    assert customers.search(session, {})["total"] == 1
    with pytest.raises(Conflict):
        customers.update(session, b.id, {"name": "x"}, ACTOR)


def test_erase_anonymises_and_announces(session):
    customer = customers.create(session, person(id_number="11010519491231002X"), ACTOR)
    customers.add_interaction(session, customer.id, {"channel": "phone",
                                                     "summary": "王小明 called about rent"}, ACTOR)
    customers.erase(session, customer.id, ACTOR)
    data = customers.to_dict(customer)
    assert data["name"] == "(erased)"
    for field in ("mobile", "email", "birthday", "id_number", "employer", "hometown"):
        assert data[field] is None
    assert data["erased"] and data["tags"] == [] and not any(data["consent"].values())
    assert session.scalars(select(Interaction.summary)).all() == ["[erased]"]
    [event] = events(session, "customer.erased")
    assert event["data"] == {"customer_id": customer.id, "erased_at": event["data"]["erased_at"]}
    # the mobile is free again for a new record
    customers.create(session, person(), ACTOR)


def test_points_adjustment_never_below_zero(session):
    customer = customers.create(session, person(), ACTOR)
    customers.adjust_points(session, customer.id, {"delta": 1200, "reason": "referral"}, ACTOR)
    assert customers.to_dict(customer)["member"] == {"tier": "silver", "points": 1200}
    with pytest.raises(Conflict):
        customers.adjust_points(session, customer.id, {"delta": -5000, "reason": "redeem"}, ACTOR)


def test_csv_import_keeps_good_rows_reports_bad_ones_and_updates_known(session):
    customers.create(session, person(), ACTOR)
    text = ("\ufeff姓名,手机,邮箱,性别,生日,标签,consent_sms,custom.pet\n"
            "王小明,13800138000,new@example.com,男,2000-03-15,vip;老客户,yes,cat\n"
            "李四,13900139000,,女,1995-07-01,,no,\n"
            "坏行,12345,,,,,,\n"
            "赵五,13700137000,bad-email,,,,,\n"
            "钱六,13600136000,,,2001-13-01,,,\n")
    result = importing.import_csv(session, text, ACTOR)
    assert (result["created"], result["updated"]) == (1, 1)
    assert [e["row"] for e in result["errors"]] == [4, 5, 6]
    assert "mobile" in result["errors"][0]["message"]
    assert "email" in result["errors"][1]["message"]
    assert customers.search(session, {})["total"] == 2
    known = customers.search(session, {"q": "13800138000"})["items"][0]
    assert known["email"] == "new@example.com" and known["custom_fields"] == {"pet": "cat"}
    assert {"vip", "老客户"} <= set(known["tags"])
    # nothing half-written: the bad rows left no event either
    assert len(events(session, "customer.created")) == 2  # the original and 李四


def test_csv_import_rejects_unknown_columns_before_any_row(session):
    result = importing.import_csv(session, "name,mobile,shoe_size\nA,13800138000,42\n", ACTOR)
    assert result["created"] == 0 and "shoe_size" in result["errors"][0]["message"]


def test_export_round_trips_through_import(session):
    import csv

    customers.create(session, person(tags=["vip"]), ACTOR)
    rows = customers.export(session, {})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["name", "mobile", "email", "tags"])
    writer.writeheader()
    for row in rows:
        writer.writerow({"name": row["name"], "mobile": row["mobile"], "email": row["email"],
                         "tags": ";".join(row["tags"])})
    result = importing.import_csv(session, out.getvalue(), ACTOR)
    assert result == {"created": 0, "updated": 1, "errors": []}
