"""Campaigns: creation, launch, recording the recipients (consent, cap, skips), sending through
the log channel, responses and results."""
from decimal import Decimal

import pytest
from sqlalchemy import update

from crm_kit.errors import Conflict, InvalidInput
from marketing_service import audience, campaigns, care, channels, clock, delivery
from marketing_service.models import Message

from marketing_builders import (LOG, campaign_data, launch, make_campaign, make_segment,
                                merge, message_of, messages, record_all, send_all)
from marketing_fixtures import MARKETER, add_customer, events, instant, sign_lease


class ScriptedChannel:
    """A channel adapter whose provider answers per recipient address (default: delivered)."""

    name = "scripted"

    def __init__(self, outcomes):
        self.outcomes = outcomes

    def send(self, batch):
        return {m["id"]: channels.Outcome(self.outcomes.get(m["recipient"], "delivered"))
                for m in batch}


# -- creating ------------------------------------------------------------------------------
def test_create_a_draft(session):
    segment = make_segment(session)
    campaign = make_campaign(session, segment.id, cost="1200.50")
    assert campaign.status == "draft" and campaign.cost == Decimal("1200.50")
    assert campaign.created_by == MARKETER["id"] and campaign.scheduled_at is None
    shown = campaigns.to_dict(campaign)
    assert shown["cost"] == "1200.50" and shown["audience"] is None


def test_create_with_a_future_time_is_scheduled(session):
    segment = make_segment(session)
    when = instant(days=1)
    campaign = make_campaign(session, segment.id, scheduled_at=when.isoformat())
    assert campaign.status == "scheduled" and campaign.scheduled_at == when


@pytest.mark.parametrize("overrides, field", [
    ({"template": "{name}您好 {nickname}"}, "template"),
    ({"template": "{name!r}"}, "template"),
    ({"segment_id": "no-such-segment"}, "segment_id"),
    ({"channel": "fax"}, "channel"),
    ({"cost": 12.5}, "cost"),
    ({"cost": "12.345"}, "cost"),
    ({"scheduled_at": instant(seconds=-60).isoformat()}, "scheduled_at"),
    ({"scheduled_at": "2099-01-01T10:00:00"}, "scheduled_at"),  # naive: no time zone
    ({"name": "  "}, "name"),
    ({"audience": 5}, "audience"),
])
def test_create_refuses_naming_the_field(session, overrides, field):
    segment = make_segment(session)
    with pytest.raises(InvalidInput) as error:
        campaigns.create(session, {**campaign_data(segment.id), **overrides}, MARKETER)
    assert list(error.value.details) == [field]


def test_create_names_every_bad_field_at_once(session):
    with pytest.raises(InvalidInput) as error:
        campaigns.create(session, campaign_data("no-such-segment", channel="fax",
                                                template="{nickname}"), MARKETER)
    assert set(error.value.details) == {"segment_id", "channel", "template"}


# -- launching and recording ---------------------------------------------------------------
def test_launch_once(session):
    campaign = make_campaign(session, make_segment(session).id)
    campaigns.launch(session, campaign.id, MARKETER)
    assert campaign.status == "launching" and campaign.launched_at is not None
    [launched] = events(session, "campaign.launched")
    assert launched["data"]["campaign_id"] == campaign.id
    assert launched["data"]["launched_by"] == MARKETER["id"]
    with pytest.raises(Conflict):
        campaigns.launch(session, campaign.id, MARKETER)
    assert campaigns.launching(session) == [campaign.id]


def test_recording_in_small_chunks_records_each_member_once(session):
    members = [add_customer(session, tags=["vip"]) for _ in range(7)]
    add_customer(session, tags=["other"])
    campaign = make_campaign(session, make_segment(session, {"tags": ["vip"]}).id)
    campaigns.launch(session, campaign.id)

    assert campaigns.record_chunk(session, campaign.id, chunk=3) is True
    assert len(messages(session, campaign_id=campaign.id)) == 3
    assert campaign.recorded_up_to == sorted(m.id for m in members)[2]
    assert campaign.status == "launching"
    assert campaigns.record_chunk(session, campaign.id, chunk=3) is True
    assert campaigns.record_chunk(session, campaign.id, chunk=3) is False

    recorded = messages(session, campaign_id=campaign.id)
    assert sorted(m.customer_id for m in recorded) == sorted(m.id for m in members)
    assert {m.occasion for m in recorded} == {f"campaign:{campaign.id}"}
    assert campaign.status == "sending" and campaign.audience == 7
    assert campaign.recorded_at is not None
    # nothing more once recorded
    assert campaigns.record_chunk(session, campaign.id, chunk=3) is False
    assert len(messages(session, campaign_id=campaign.id)) == 7


def test_a_segment_size_multiple_of_the_chunk_ends_with_an_empty_chunk(session):
    for _ in range(6):
        add_customer(session)
    campaign = make_campaign(session, make_segment(session).id)
    campaigns.launch(session, campaign.id)
    assert record_all(session, campaign.id, chunk=3) == 3
    assert campaign.status == "sending" and campaign.audience == 6


def test_a_chunk_recorded_twice_adds_nobody_twice(session):
    """A second instance, or a retried transaction, recording the same chunk again."""
    for _ in range(4):
        add_customer(session)
    campaign = make_campaign(session, make_segment(session).id)
    campaigns.launch(session, campaign.id)
    campaigns.record_chunk(session, campaign.id, chunk=2)
    campaign.recorded_up_to = None  # as if the chunk's progress had not been seen
    record_all(session, campaign.id, chunk=2)
    assert len(messages(session, campaign_id=campaign.id)) == 4 and campaign.audience == 4


def test_a_draft_is_not_recorded(session):
    add_customer(session)
    campaign = make_campaign(session, make_segment(session).id)
    assert campaigns.record_chunk(session, campaign.id) is False
    assert messages(session) == []


def test_skip_reasons(session):
    ok = add_customer(session, name="李雷")
    erased = add_customer(session)
    audience.erase(session, erased.id)
    archived = add_customer(session, archived=True)
    no_consent = add_customer(session, consent={"sms": False, "email": True})
    no_address = add_customer(session, mobile=None)
    no_district = add_customer(session, district=None)
    survivor, duplicate = add_customer(session), add_customer(session)
    merge(session, survivor.id, duplicate.id)  # the duplicate is no recipient at all

    campaign = launch(session, template="{name}您好，{district}有新房源")
    expected = {ok.id: ("queued", None), survivor.id: ("queued", None),
                erased.id: ("skipped", "erased"), archived.id: ("skipped", "archived"),
                no_consent.id: ("skipped", "no_consent"),
                no_address.id: ("skipped", "no_address"),
                no_district.id: ("skipped", "missing_field")}
    recorded = {m.customer_id: m for m in messages(session, campaign_id=campaign.id)}
    assert {cid: (m.status, m.skip_reason) for cid, m in recorded.items()} == expected
    assert recorded[ok.id].body == "李雷您好，高新区有新房源"
    assert recorded[ok.id].recipient == "13800138000"
    assert recorded[no_district.id].body is None and recorded[no_district.id].recipient is None
    assert "district" in recorded[no_district.id].error


@pytest.mark.parametrize("channel, address", [
    ("email", "xm@example.com"), ("wechat", "wx_xm"), ("in_app", None)])
def test_each_channel_uses_its_consent_and_address(session, channel, address):
    customer = add_customer(session)
    refused = add_customer(session, consent={channel: False, "sms": True})
    campaign = launch(session, channel=channel)
    assert message_of(session, customer.id).recipient == (address or customer.id)
    assert message_of(session, refused.id).skip_reason == "no_consent"
    assert campaign.channel == channel


# -- the frequency cap ---------------------------------------------------------------------
def test_the_third_campaign_in_a_week_is_capped(session):
    customer = add_customer(session)
    first, second, third = (launch(session) for _ in range(3))
    assert message_of(session, customer.id, campaign_id=first.id).status == "queued"
    assert message_of(session, customer.id, campaign_id=second.id).status == "queued"
    capped = message_of(session, customer.id, campaign_id=third.id)
    assert (capped.status, capped.skip_reason) == ("skipped", "frequency_cap")
    assert campaigns.stats(session, third.id)["skipped"] == {"frequency_cap": 1}


def test_messages_older_than_the_window_do_not_count(session):
    customer = add_customer(session)
    launch(session), launch(session)
    session.execute(update(Message).values(
        created_at=instant(days=-campaigns.CAP_DAYS, seconds=-60)))
    third = launch(session)
    assert message_of(session, customer.id, campaign_id=third.id).status == "queued"


def test_skipped_messages_do_not_count(session):
    customer = add_customer(session, occupation=None)
    for _ in range(2):
        launch(session, template="{name}，适合{occupation}的房源")  # skipped: missing_field
    third = launch(session)
    assert message_of(session, customer.id, campaign_id=third.id).status == "queued"


def test_care_greetings_do_not_count(session):
    today = clock.today()
    customer = add_customer(session, birthday=today.replace(year=1992).isoformat())
    care.create(session, {"kind": "birthday", "channel": "sms",
                          "template": "{name}生日快乐"}, MARKETER)
    care.create(session, {"kind": "holiday", "channel": "sms", "holiday": "custom",
                          "holiday_name": "店庆", "holiday_date": today.strftime("%m-%d"),
                          "template": "{name}，{holiday_name}快乐"}, MARKETER)
    care.run(session, today)
    assert [m.status for m in messages(session, customer_id=customer.id)] == ["queued"] * 2
    campaign = launch(session)
    assert message_of(session, customer.id, campaign_id=campaign.id).status == "queued"


# -- sending -------------------------------------------------------------------------------
def test_dispatch_through_the_log_delivers_and_announces(session):
    customer = add_customer(session)
    add_customer(session, consent={})  # skipped: never sent
    campaign = launch(session)
    assert send_all(session) == {"sent": 0, "delivered": 1, "failed": 0, "retry": 0}
    message = message_of(session, customer.id)
    assert message.status == "delivered" and message.attempts == 1
    assert message.sent_at is not None and message.delivered_at is not None
    [sent] = events(session, "message.sent")
    [delivered] = events(session, "message.delivered")
    for event in (sent, delivered):
        assert event["data"]["message_id"] == str(message.id)
        assert event["data"]["customer_id"] == customer.id
        assert event["data"]["campaign_id"] == campaign.id
    assert send_all(session) == {"sent": 0, "delivered": 0, "failed": 0, "retry": 0}

    campaigns.complete_finished(session)
    assert campaign.status == "completed" and campaign.completed_at is not None


def test_a_campaign_with_queued_messages_is_not_completed(session):
    add_customer(session)
    campaign = launch(session)
    campaigns.complete_finished(session)
    assert campaign.status == "sending"


# -- results -------------------------------------------------------------------------------
def test_stats(session):
    delivered_1 = add_customer(session, mobile="13800000001")
    delivered_2 = add_customer(session, mobile="13800000002")
    awaiting = add_customer(session, mobile="13800000003")
    failing = add_customer(session, mobile="13800000004")
    add_customer(session, consent={"sms": False})
    add_customer(session, mobile=None)
    campaign = launch(session, cost="1000.00")
    other = launch(session, cost="10.00")

    provider = ScriptedChannel({"13800000003": "sent", "13800000004": "failed"})
    send_all(session, {"sms": provider})
    for customer in (delivered_1, delivered_2):
        campaigns.record_response(session, campaign.id, {"customer_id": customer.id,
                                                         "response": "感兴趣"}, MARKETER)
    for n, customer in enumerate((delivered_1, delivered_2, awaiting, failing)):
        audience.opportunity_created(session, {"opportunity_id": f"opp-{n}",
                                               "customer_id": customer.id,
                                               "campaign_id": campaign.id})
    audience.opportunity_created(session, {"opportunity_id": "opp-other",
                                           "customer_id": awaiting.id,
                                           "campaign_id": other.id})
    for n in range(3):
        sign_lease(session, f"cust-{n}", opportunity_id=f"opp-{n}")
    sign_lease(session, awaiting.id, opportunity_id="opp-other")

    stats = campaigns.stats(session, campaign.id)
    assert stats == {
        "campaign_id": campaign.id, "status": "sending", "audience": 6, "recipients": 4,
        "skipped": {"no_consent": 1, "no_address": 1}, "queued": 0,
        "sent": 3, "delivered": 2, "failed": 1, "delivery_rate": 0.5,
        "responses": 2, "opportunities": 4, "leases_won": 3,
        "cost": "1000.00", "cost_per_lease": "333.33"}

    delivery.record_receipt(session, message_of(session, awaiting.id,
                                                campaign_id=campaign.id).id,
                            {"status": "delivered"})
    stats = campaigns.stats(session, campaign.id)
    assert (stats["delivered"], stats["sent"], stats["delivery_rate"]) == (3, 3, 0.75)


def test_cost_per_lease_rounds_half_up_to_cents_and_needs_a_lease(session):
    campaign = launch(session, cost="0.05")
    assert campaigns.stats(session, campaign.id)["cost_per_lease"] is None
    for n in range(2):
        audience.opportunity_created(session, {"opportunity_id": f"opp-{n}",
                                               "customer_id": "c", "campaign_id": campaign.id})
        sign_lease(session, "c", opportunity_id=f"opp-{n}")
    stats = campaigns.stats(session, campaign.id)
    assert (stats["leases_won"], stats["cost_per_lease"]) == (2, "0.03")


def test_stats_of_a_campaign_without_recipients_or_cost(session):
    campaign = launch(session, {"tags": ["nobody"]})
    stats = campaigns.stats(session, campaign.id)
    assert (stats["audience"], stats["recipients"], stats["delivery_rate"]) == (0, 0, None)
    assert (stats["cost"], stats["cost_per_lease"], stats["skipped"]) == (None, None, {})


# -- responses -----------------------------------------------------------------------------
def test_record_response_announces_it_with_the_owner(session):
    customer = add_customer(session, owner_id="staff-7")
    campaign = launch(session)
    send_all(session)
    response = campaigns.record_response(session, campaign.id, {
        "customer_id": customer.id, "response": "想看两居室"}, MARKETER)
    assert response.recorded_by == MARKETER["id"]
    [announced] = events(session, "campaign.response_received")
    assert announced["data"] == {
        "response_id": response.id, "campaign_id": campaign.id, "customer_id": customer.id,
        "response": "想看两居室", "channel": "sms", "owner_id": "staff-7"}
    listed = campaigns.list_responses(session, campaign.id, 1, 50)
    assert listed["total"] == 1 and listed["items"][0]["id"] == response.id


def test_a_second_response_is_a_conflict(session):
    customer = add_customer(session)
    campaign = launch(session)
    send_all(session)
    first = campaigns.record_response(session, campaign.id, {"customer_id": customer.id},
                                      MARKETER)
    with pytest.raises(Conflict) as error:
        campaigns.record_response(session, campaign.id, {"customer_id": customer.id,
                                                         "response": "again"}, MARKETER)
    assert error.value.details == {"response_id": first.id}
    assert len(events(session, "campaign.response_received")) == 1


def test_a_response_from_someone_not_sent_the_campaign_is_refused(session):
    add_customer(session, tags=["vip"])
    outsider = add_customer(session, tags=[])
    skipped = add_customer(session, tags=["vip"], consent={})
    campaign = launch(session, {"tags": ["vip"]})
    for customer in (outsider, skipped):
        with pytest.raises(InvalidInput) as error:
            campaigns.record_response(session, campaign.id, {"customer_id": customer.id},
                                      MARKETER)
        assert list(error.value.details) == ["customer_id"]


# -- scheduling ----------------------------------------------------------------------------
def test_a_scheduled_campaign_is_listed_once_its_time_has_come(session):
    segment = make_segment(session)
    later = make_campaign(session, segment.id, scheduled_at=instant(days=1).isoformat())
    due = make_campaign(session, segment.id, scheduled_at=instant(seconds=60).isoformat())
    make_campaign(session, segment.id)  # a draft
    assert campaigns.due_scheduled(session) == []

    due.scheduled_at = instant(seconds=-1)  # time passes
    session.flush()
    assert campaigns.due_scheduled(session) == [due.id]
    campaigns.launch(session, due.id)
    assert campaigns.due_scheduled(session) == []
    assert later.status == "scheduled"


def test_search_campaigns(session):
    segment = make_segment(session)
    sms = make_campaign(session, segment.id)
    make_campaign(session, segment.id, channel="email")
    found = campaigns.search(session, {"channel": "sms", "status": "draft"}, 1, 50)
    assert [c["id"] for c in found["items"]] == [sms.id] and found["total"] == 1


def test_the_log_channel_is_the_default_for_every_channel(monkeypatch):
    monkeypatch.delenv("CRM_MARKETING_WEBHOOK_URL", raising=False)
    assert {type(a) for a in channels.configured().values()} == {channels.LogChannel}
    assert set(LOG) == set(channels.configured())


def test_a_response_before_the_message_went_out_is_refused(session):
    customer = add_customer(session)
    campaign = launch(session)  # recorded, still queued
    with pytest.raises(InvalidInput) as error:
        campaigns.record_response(session, campaign.id, {"customer_id": customer.id}, MARKETER)
    assert "customer_id" in error.value.details
    assert events(session, "campaign.response_received") == []
