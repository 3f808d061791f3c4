"""Segments: each rule narrows marketing's copy of the customers; preview and size."""
from datetime import timedelta

import pytest

from crm_kit.errors import Conflict, InvalidInput
from marketing_service import audience, clock, segments

from marketing_builders import make_segment, merge
from marketing_fixtures import MARKETER, add_customer, envelope, instant, lease_data, sign_lease

TODAY = clock.today()  # the service's local date (Asia/Shanghai by default)


def member_ids(session, rules):
    segment = make_segment(session, rules)
    found = segments.preview(session, segment.id, 1, 200)
    ids = [item["customer_id"] for item in found["items"]]
    assert found["total"] == len(ids)
    return set(ids)


@pytest.mark.parametrize("rules, matching, other", [
    ({"tags": ["vip", "family"]}, {"tags": ["family", "pet_owner"]}, {"tags": ["pet_owner"]}),
    ({"stage": ["intent", "first_time"]}, {"stage": "intent"}, {"stage": "potential"}),
    ({"value_tier": ["key"]}, {"value_tier": "key"}, {"value_tier": "small"}),
    ({"district": ["锦江区"]}, {"district": "锦江区"}, {"district": "高新区"}),
    ({"city": ["重庆"]}, {"city": "重庆"}, {"city": "成都"}),
    ({"industry": ["finance"]}, {"industry": "finance"}, {"industry": "software"}),
    ({"source": ["referral"]}, {"source": "referral"}, {"source": "website"}),
    ({"gender": ["female"]}, {"gender": "female"}, {"gender": "male"}),
    ({"member_tier": ["gold"]}, {"member": {"tier": "gold", "points": 900}},
     {"member": {"tier": "regular", "points": 0}}),
])
def test_each_list_rule_matches_any_of_its_values(session, rules, matching, other):
    inside = add_customer(session, **matching)
    add_customer(session, **other)
    add_customer(session, **{**other, "tags": []})
    assert member_ids(session, rules) == {inside.id}


def test_rfm_segment_rule(session):
    inside, outside = add_customer(session), add_customer(session)
    for customer, segment in ((inside, "champions"), (outside, "hibernating")):
        data = {"customer_id": customer.id, "value_tier": "key",
                "rfm": {"segment": segment}, "scored_at": instant().isoformat()}
        audience.scored(session, data, envelope("customer.scored", data))
    assert member_ids(session, {"rfm_segment": ["champions", "loyal"]}) == {inside.id}


def ends_in(days):
    end = TODAY + timedelta(days=days)
    return {"start": end - timedelta(days=364), "end": end}


def test_lease_ends_within_days_counts_only_active_leases_not_yet_ended(session):
    soon, at_limit, later, ended, terminated, no_lease = (
        add_customer(session) for _ in range(6))
    sign_lease(session, soon.id, **ends_in(10))
    sign_lease(session, at_limit.id, **ends_in(30))
    sign_lease(session, later.id, **ends_in(31))
    sign_lease(session, ended.id, **ends_in(-1))
    data = lease_data(terminated.id, **ends_in(5))
    audience.apply_lease(session, data, envelope("lease.terminated", data), status="terminated")
    assert member_ids(session, {"lease_ends_within_days": 30}) == {soon.id, at_limit.id}


def test_has_active_lease_true_and_false(session):
    leasing, terminated, never = (add_customer(session) for _ in range(3))
    sign_lease(session, leasing.id)
    data = lease_data(terminated.id)
    audience.apply_lease(session, data, envelope("lease.terminated", data), status="terminated")
    assert member_ids(session, {"has_active_lease": True}) == {leasing.id}
    assert member_ids(session, {"has_active_lease": False}) == {terminated.id, never.id}


def test_rules_combine_with_and(session):
    everything = add_customer(session, district="锦江区", tags=["vip"])
    sign_lease(session, everything.id)
    no_lease = add_customer(session, district="锦江区", tags=["vip"])
    wrong_district = add_customer(session, district="高新区", tags=["vip"])
    sign_lease(session, wrong_district.id)
    no_tag = add_customer(session, district="锦江区", tags=[])
    sign_lease(session, no_tag.id)
    rules = {"district": ["锦江区"], "tags": ["vip"], "has_active_lease": True}
    assert member_ids(session, rules) == {everything.id}
    assert no_lease.id not in member_ids(session, {"has_active_lease": True})


def test_no_rules_is_everyone_but_merged_duplicates(session):
    survivor, duplicate = add_customer(session), add_customer(session)
    erased, archived = add_customer(session), add_customer(session, archived=True)
    audience.erase(session, erased.id)
    merge(session, survivor.id, duplicate.id)
    segment = make_segment(session, {})
    found = segments.preview(session, segment.id, 1, 50)
    by_id = {item["customer_id"]: item for item in found["items"]}
    assert set(by_id) == {survivor.id, erased.id, archived.id} and found["total"] == 3
    # erased and archived customers are members (a campaign records them as skipped)
    assert by_id[erased.id]["erased"] and by_id[archived.id]["archived"]


def test_preview_pages_in_id_order_with_the_total_and_tags(session):
    customers = [add_customer(session, tags=["vip", "family"]) for _ in range(5)]
    add_customer(session, tags=["other"])
    segment = make_segment(session, {"tags": ["vip"]})
    ids = sorted(c.id for c in customers)
    pages = [segments.preview(session, segment.id, page, 2) for page in (1, 2, 3)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [[item["customer_id"] for item in p["items"]] for p in pages] == [
        ids[0:2], ids[2:4], ids[4:5]]
    first = pages[0]["items"][0]
    assert first["tags"] == ["family", "vip"] and first["name"] == "王小明"
    assert first["stage"] == "potential" and first["district"] == "高新区"


@pytest.mark.parametrize("rules, key", [
    ({"colour": ["red"]}, "colour"),
    ({"stage": "intent"}, "stage"),
    ({"tags": []}, "tags"),
    ({"lease_ends_within_days": 400}, "lease_ends_within_days"),
    ({"lease_ends_within_days": "30"}, "lease_ends_within_days"),
])
def test_an_unknown_rule_or_bad_value_is_refused_naming_it(session, rules, key):
    with pytest.raises(InvalidInput) as error:
        segments.create(session, {"name": "bad", "rules": rules}, MARKETER)
    assert list(error.value.details) == [f"rules.{key}"]  # docs/rpc-contracts.md


def test_a_taken_name_is_a_conflict(session):
    first = make_segment(session, {"tags": ["vip"]}, name="VIP 客户")
    with pytest.raises(Conflict) as error:
        segments.create(session, {"name": "VIP 客户 ", "rules": {}}, MARKETER)
    assert error.value.details == {"existing_id": first.id}
    make_segment(session, {}, name="another")  # the session is still usable


def test_a_name_with_a_leading_space_is_trimmed(session):
    assert make_segment(session, name="  VIP 客户").name == "VIP 客户"


def test_search_by_name(session):
    make_segment(session, name="锦江 VIP")
    make_segment(session, name="高新 families")
    found = segments.search(session, {"q": "VIP"}, 1, 50)
    assert found["total"] == 1 and found["items"][0]["name"] == "锦江 VIP"
    assert segments.search(session, None, 1, 50)["total"] == 2
