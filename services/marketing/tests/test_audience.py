"""Marketing's copy of customers and leases, kept from other services' events (any order)."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from marketing_service import audience, campaigns
from marketing_service.models import (AudienceCustomer, AudienceLease, AudienceTag,
                                      CampaignOpportunity, CampaignResponse)
from marketing_service.service import MarketingService

from marketing_builders import launch, message_of, send_all
from marketing_fixtures import (MARKETER, add_customer, envelope, instant, lease_data,
                                sign_lease, snapshot)


def tags_of(session, customer_id):
    return session.scalars(select(AudienceTag.tag).where(AudienceTag.customer_id == customer_id)
                           .order_by(AudienceTag.tag)).all()


def consume(session, handler, event_type, data, occurred_at=None):
    """Apply an event with the service's own consumer (``@on_event`` logic) of it."""
    logic = getattr(MarketingService, handler).crm_event_logic
    logic(None, session, data, envelope(event_type, data, occurred_at=occurred_at))


def lease(session, lease_id):
    session.flush()
    session.expire_all()
    return session.get(AudienceLease, lease_id)


# -- customer snapshots --------------------------------------------------------------------
def test_a_snapshot_fills_the_copy(session):
    row = add_customer(session, tags=["vip", "pet_owner", "vip"], birthday="1990-02-28",
                       member={"tier": "gold", "points": 120}, value_tier="key")
    assert (row.name, row.mobile, row.email, row.wechat_id) == (
        "王小明", "13800138000", "xm@example.com", "wx_xm")
    assert (row.district, row.industry, row.source, row.owner_id) == (
        "高新区", "software", "website", "staff-1")
    assert row.birthday == date(1990, 2, 28) and row.birthday_md == "02-28"
    assert row.member_tier == "gold" and row.value_tier == "key" and row.stage == "potential"
    assert row.consent["sms"] is True and row.consent["phone"] is False
    assert tags_of(session, row.id) == ["pet_owner", "vip"]


def test_a_newer_snapshot_replaces_the_copy(session):
    row = add_customer(session, tags=["vip"], updated_at=instant(-2).isoformat())
    audience.apply_customer(session, snapshot(row.id, name="王大明", district="锦江区",
                                              tags=["family"], archived=True,
                                              updated_at=instant(-1).isoformat()))
    assert (row.name, row.district, row.archived) == ("王大明", "锦江区", True)
    assert tags_of(session, row.id) == ["family"]


def test_an_older_snapshot_after_a_newer_one_changes_nothing(session):
    row = add_customer(session, name="新名字", tags=["new"], stage="intent",
                       stage_entered_at=instant(-1).isoformat(),
                       updated_at=instant(-1).isoformat())
    audience.apply_customer(session, snapshot(row.id, name="旧名字", tags=["old"],
                                              stage="potential", mobile="13900000000",
                                              stage_entered_at=instant(-9).isoformat(),
                                              updated_at=instant(-5).isoformat()))
    assert (row.name, row.mobile, row.stage) == ("新名字", "13800138000", "intent")
    assert tags_of(session, row.id) == ["new"]


def test_stage_changed_before_created_makes_a_stub_the_snapshot_fills(session):
    customer_id = "cust-early"
    data = {"customer_id": customer_id, "from_stage": "potential", "to_stage": "intent"}
    audience.stage_changed(session, data, envelope("customer.stage_changed", data,
                                                   occurred_at=instant(-1)))
    stub = session.get(AudienceCustomer, customer_id)
    assert stub.stage == "intent" and stub.name is None

    # the creation snapshot was taken before the stage change: its stage is older
    audience.apply_customer(session, snapshot(customer_id, stage="potential",
                                              stage_entered_at=instant(-3).isoformat(),
                                              updated_at=instant(-3).isoformat()))
    assert stub.name == "王小明" and stub.district == "高新区"
    assert stub.stage == "intent"


def test_a_snapshot_with_a_newer_stage_wins_over_an_earlier_stage_change(session):
    customer_id = "cust-2"
    data = {"customer_id": customer_id, "from_stage": "potential", "to_stage": "intent"}
    audience.stage_changed(session, data, envelope("customer.stage_changed", data,
                                                   occurred_at=instant(-5)))
    row = audience.apply_customer(session, snapshot(customer_id, stage="first_time",
                                                    stage_entered_at=instant(-1).isoformat()))
    assert row.stage == "first_time"


def test_an_older_stage_change_is_ignored(session):
    row = add_customer(session, stage="repeat", stage_entered_at=instant(-1).isoformat())
    data = {"customer_id": row.id, "from_stage": "potential", "to_stage": "intent"}
    audience.stage_changed(session, data, envelope("customer.stage_changed", data,
                                                   occurred_at=instant(-10)))
    assert row.stage == "repeat"


def test_owner_changed(session):
    row = add_customer(session)
    consume(session, "on_owner_changed", "customer.owner_changed", {
        "customer_id": row.id, "from_owner_id": "staff-1", "to_owner_id": "staff-9"})
    assert row.owner_id == "staff-9"


def test_merged_marks_the_duplicate_and_refreshes_the_survivor(session):
    survivor = add_customer(session, updated_at=instant(-2).isoformat())
    duplicate = add_customer(session, mobile="13900000000")
    audience.merged(session, {
        "survivor_id": survivor.id, "merged_id": duplicate.id, "merged_mobile": "13900000000",
        "customer": snapshot(survivor.id, tags=["merged_tag"], updated_at=instant().isoformat())})
    assert duplicate.merged_into == survivor.id
    assert survivor.merged_into is None
    assert tags_of(session, survivor.id) == ["merged_tag"]


# -- erasure -------------------------------------------------------------------------------
def test_erased_blanks_personal_data_messages_and_responses(session):
    customer = add_customer(session, tags=["vip"])
    campaign = launch(session)
    send_all(session)
    campaigns.record_response(session, campaign.id, {"customer_id": customer.id,
                                                     "response": "请致电13800138000"}, MARKETER)
    message = message_of(session, customer.id)
    assert message.body.startswith("王小明") and message.recipient == "13800138000"

    audience.erase(session, customer.id, instant())
    session.flush()
    session.expire_all()
    row = session.get(AudienceCustomer, customer.id)
    assert row.erased is True and row.name == audience.ERASED_NAME
    for field in ("mobile", "email", "wechat_id", "gender", "occupation", "industry",
                  "employer", "city", "district", "source", "birthday", "birthday_md"):
        assert getattr(row, field) is None, field
    assert row.consent == {} and tags_of(session, customer.id) == []
    assert row.owner_id == "staff-1"  # not personal: the staff member stays
    message = message_of(session, customer.id)
    assert message.body == audience.ERASED_NAME and message.recipient is None
    assert message.status == "delivered"  # the fact stays
    response = session.scalar(select(CampaignResponse))
    assert response.response is None and response.customer_id == customer.id


def test_an_older_snapshot_after_erasure_resurrects_nothing(session):
    row = add_customer(session, updated_at=instant(-2).isoformat())
    audience.erase(session, row.id, instant(-1))
    audience.apply_customer(session, snapshot(row.id, updated_at=instant(-3).isoformat(),
                                              tags=["vip"]))
    assert (row.name, row.mobile, row.birthday, row.consent) == (
        audience.ERASED_NAME, None, None, {})
    assert tags_of(session, row.id) == []


def test_erasure_before_creation_wins_over_the_late_creation(session):
    audience.erase(session, "cust-gone", instant(-1))
    row = audience.apply_customer(session, snapshot("cust-gone", tags=["vip"],
                                                    updated_at=instant(-5).isoformat()))
    assert row.erased and row.name == audience.ERASED_NAME and row.mobile is None
    assert tags_of(session, "cust-gone") == []


def test_a_snapshot_of_an_erased_customer_erases_the_copy(session):
    row = add_customer(session, updated_at=instant(-2).isoformat())
    audience.apply_customer(session, snapshot(row.id, name="(erased)", mobile=None,
                                              erased=True, updated_at=instant().isoformat()))
    assert row.erased and row.mobile is None and row.consent == {}


# -- scores --------------------------------------------------------------------------------
def scored(session, customer_id, scored_at, value_tier="key", segment="champions"):
    data = {"customer_id": customer_id, "value_tier": value_tier,
            "rfm": {"r": 5, "f": 4, "m": 5, "segment": segment},
            "scored_at": scored_at.isoformat()}
    audience.scored(session, data, envelope("customer.scored", data))


def test_scored_sets_value_tier_and_rfm_segment_and_the_newest_wins(session):
    row = add_customer(session, value_tier="small")
    scored(session, row.id, instant(-1), "important", "loyal")
    assert (row.value_tier, row.rfm_segment) == ("important", "loyal")
    scored(session, row.id, instant(-3), "small", "hibernating")  # older: ignored
    assert (row.value_tier, row.rfm_segment) == ("important", "loyal")
    scored(session, row.id, instant(), "key", "champions")
    assert (row.value_tier, row.rfm_segment) == ("key", "champions")


def test_a_later_snapshot_does_not_undo_the_analytics_score(session):
    row = add_customer(session, value_tier=None)
    scored(session, row.id, instant(-1), "key")
    audience.apply_customer(session, snapshot(row.id, value_tier="small",
                                              updated_at=instant(1).isoformat()))
    assert row.value_tier == "key"


# -- leases --------------------------------------------------------------------------------
def test_lease_signed_is_copied(session):
    start = date.today() - timedelta(days=10)
    data = sign_lease(session, "cust-1", start=start, end=start + timedelta(days=364))
    copy = lease(session, data["lease_id"])
    assert (copy.customer_id, copy.unit_id, copy.status) == ("cust-1", "unit-1", "active")
    assert copy.start_date == start and copy.end_date == start + timedelta(days=364)


def test_lease_renewed_marks_the_old_lease_and_adds_the_new_one(session):
    old = sign_lease(session, "cust-1")
    old_end = date.fromisoformat(old["end_date"])
    new_id = "lease-renewal"
    data = {**lease_data("cust-1", start=old_end + timedelta(days=1),
                         end=old_end + timedelta(days=365), renewed_from_id=old["lease_id"]),
            "lease_id": old["lease_id"], "new_lease_id": new_id}
    audience.lease_renewed(session, data, envelope("lease.renewed", data))
    assert lease(session, old["lease_id"]).status == "renewed"
    renewal = lease(session, new_id)
    assert renewal.status == "active" and renewal.renewed_from_id == old["lease_id"]
    assert renewal.start_date == old_end + timedelta(days=1)


@pytest.mark.parametrize("event_type, status", [
    ("lease.terminated", "terminated"), ("lease.ended", "ended")])
def test_lease_terminated_and_ended(session, event_type, status):
    data = sign_lease(session, "cust-1")
    later = {**data, "status": "active"}  # the status comes from the event type
    audience.apply_lease(session, later, envelope(event_type, later, occurred_at=instant(1)),
                         status=status)
    assert lease(session, data["lease_id"]).status == status


def test_an_older_lease_event_after_a_newer_one_changes_nothing(session):
    data = lease_data("cust-1")
    audience.apply_lease(session, data, envelope("lease.terminated", data),
                         status="terminated")
    audience.lease_signed(session, data, envelope("lease.signed", data,
                                                  occurred_at=instant(-30)))
    assert lease(session, data["lease_id"]).status == "terminated"


def test_lease_renewed_before_the_old_lease_signed_still_retires_it(session):
    old = lease_data("cust-1")
    old_end = date.fromisoformat(old["end_date"])
    data = {**lease_data("cust-1", start=old_end + timedelta(days=1),
                         end=old_end + timedelta(days=365), renewed_from_id=old["lease_id"]),
            "lease_id": old["lease_id"], "new_lease_id": "lease-renewal"}
    audience.lease_renewed(session, data, envelope("lease.renewed", data))
    audience.lease_signed(session, old, envelope("lease.signed", old, occurred_at=instant(-300)))
    assert lease(session, old["lease_id"]).status == "renewed"


# -- attribution ---------------------------------------------------------------------------
def test_an_opportunity_from_a_campaign_and_its_lease_are_attributed(session):
    opportunity = {"opportunity_id": "opp-1", "customer_id": "cust-1", "campaign_id": "camp-1",
                   "source": "campaign"}
    audience.opportunity_created(session, opportunity)
    audience.opportunity_created(session, opportunity)  # a redelivery adds nothing
    sign_lease(session, "cust-1", opportunity_id="opp-1", lease_id="lease-won")
    [attributed] = session.scalars(select(CampaignOpportunity)).all()
    assert (attributed.campaign_id, attributed.customer_id, attributed.lease_id) == (
        "camp-1", "cust-1", "lease-won")


def test_an_opportunity_without_a_campaign_is_not_kept(session):
    audience.opportunity_created(session, {"opportunity_id": "opp-2", "customer_id": "cust-1",
                                           "campaign_id": None, "source": "walk_in"})
    sign_lease(session, "cust-1", opportunity_id="opp-2")
    assert session.scalars(select(CampaignOpportunity)).all() == []


def test_a_lease_signed_before_its_opportunity_arrives_is_still_attributed(session):
    sign_lease(session, "cust-1", opportunity_id="opp-3", lease_id="lease-won")
    audience.opportunity_created(session, {"opportunity_id": "opp-3", "customer_id": "cust-1",
                                           "campaign_id": "camp-1", "source": "campaign"})
    attributed = session.get(CampaignOpportunity, "opp-3")
    assert attributed.lease_id == "lease-won"


def test_a_late_snapshot_of_the_duplicate_does_not_undo_the_merge(session):
    survivor = add_customer(session)
    duplicate = add_customer(session, updated_at=instant(-3).isoformat())
    audience.merged(session, {"survivor_id": survivor.id, "merged_id": duplicate.id,
                              "merged_mobile": "13800138000",
                              "customer": snapshot(survivor.id)})
    audience.apply_customer(session, snapshot(duplicate.id, updated_at=instant(-1).isoformat()))
    assert duplicate.merged_into == survivor.id


@pytest.mark.parametrize("order", ["owner change first", "snapshot first"])
def test_the_newest_owner_wins_whatever_the_order(session, order):
    row = add_customer(session, owner_id="staff-a", updated_at=instant(-10).isoformat())
    handover = {"customer_id": row.id, "from_owner_id": "staff-a", "to_owner_id": "staff-b"}
    older_snapshot = snapshot(row.id, owner_id="staff-a", updated_at=instant(-5).isoformat())
    newer_snapshot = snapshot(row.id, owner_id="staff-c", updated_at=instant(-1).isoformat())
    def hand_over():  # at -2
        consume(session, "on_owner_changed", "customer.owner_changed", handover, instant(-2))

    if order == "owner change first":  # handed over to b at -2, then the snapshot of -5
        hand_over()
        audience.apply_customer(session, older_snapshot)
        expected = "staff-b"
    else:  # the snapshot of -1 (owner c), then the handover to b of -2
        audience.apply_customer(session, newer_snapshot)
        hand_over()
        expected = "staff-c"
    assert row.owner_id == expected
