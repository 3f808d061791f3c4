"""Lifecycle, churn decisions, stagnation alerts and membership, on a real SQLite database."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_kit.envelope import make_envelope, now
from crm_kit.errors import Conflict, InvalidInput
from crm_kit.models import OutboxEvent
from customer_service import customers, lifecycle, membership
from customer_service.models import PointEntry

from customer_fixtures import ACTOR, person


def event(event_type, **data):
    return make_envelope(event_type, data, source="sales")


def stages(session, customer_id):
    return [(h["from_stage"], h["to_stage"], h["trigger"])
            for h in lifecycle.history(session, customer_id)]


def test_events_move_a_customer_along_the_lifecycle(session):
    c = customers.create(session, person(), ACTOR)
    opened = event("opportunity.created", customer_id=c.id)
    lifecycle.on_opportunity_created(session, opened["data"], opened)
    lifecycle.on_lease_signed(session, {"customer_id": c.id, "lease_id": "L1"},
                              event("lease.signed"))
    assert c.stage == "first_time"
    renewed = event("lease.renewed", customer_id=c.id, lease_id="L1")
    lifecycle.on_lease_renewed(session, renewed["data"], renewed)
    assert c.stage == "repeat"
    assert stages(session, c.id) == [
        (None, "potential", "created"),
        ("potential", "intent", "event:opportunity.created"),
        ("intent", "first_time", "event:lease.signed"),
        ("first_time", "repeat", "event:lease.renewed")]
    [hist] = [h for h in lifecycle.history(session, c.id) if h["to_stage"] == "intent"]
    assert hist["event_id"] == opened["event_id"]


def test_second_lease_makes_a_repeat_customer(session):
    c = customers.create(session, person(), ACTOR)
    for lease in ("L1", "L2"):
        lifecycle.on_lease_signed(session, {"customer_id": c.id, "lease_id": lease},
                                  event("lease.signed"))
    assert (c.stage, c.leases_signed) == ("repeat", 2)


def test_opportunity_does_not_move_a_customer_back(session):
    c = customers.create(session, person(), ACTOR)
    lifecycle.on_lease_signed(session, {"customer_id": c.id}, event("lease.signed"))
    lifecycle.on_opportunity_created(session, {"customer_id": c.id},
                                     event("opportunity.created"))
    assert c.stage == "first_time"


def test_manual_transition_needs_a_reason_and_records_actor_and_approver(session):
    c = customers.create(session, person(), ACTOR)
    with pytest.raises(InvalidInput) as caught:
        lifecycle.change_stage(session, c.id, {"stage": "intent"}, ACTOR)
    assert "reason" in caught.value.details
    lifecycle.change_stage(session, c.id, {"stage": "intent", "reason": "asked for a viewing",
                                           "approver_id": "sup-1"}, ACTOR)
    last = lifecycle.history(session, c.id)[-1]
    assert (last["trigger"], last["actor_id"], last["approver_id"], last["reason"]) == (
        "manual", "staff-1", "sup-1", "asked for a viewing")
    with pytest.raises(Conflict):
        lifecycle.change_stage(session, c.id, {"stage": "intent", "reason": "again"}, ACTOR)


def test_keep_trying_returns_to_the_stage_before_the_warning(session):
    c = customers.create(session, person(), ACTOR)
    lifecycle.on_lease_signed(session, {"customer_id": c.id}, event("lease.signed"))
    lifecycle.on_churn_warning(session, {"customer_id": c.id, "reasons": ["lease ends soon"]},
                               make_envelope("churn.warning_raised", {}, source="analytics"))
    assert c.stage == "churn_warning"
    lifecycle.churn_decision(session, c.id, {"decision": "keep_trying",
                                             "reason": "offered a renewal discount"}, ACTOR)
    assert c.stage == "first_time"
    assert lifecycle.decisions(session, c.id)[0]["decision"] == "keep_trying"


def test_confirm_churn_records_reason_and_competitor(session):
    c = customers.create(session, person(), ACTOR)
    with pytest.raises(Conflict):  # no warning to answer
        lifecycle.churn_decision(session, c.id, {"decision": "confirm_churn", "reason": "x"},
                                 ACTOR)
    lifecycle.on_churn_warning(session, {"customer_id": c.id, "reasons": []},
                               make_envelope("churn.warning_raised", {}, source="analytics"))
    lifecycle.churn_decision(session, c.id, {"decision": "confirm_churn",
                                             "reason": "moved closer to work",
                                             "competitor": "自如"}, ACTOR)
    assert c.stage == "churned"
    confirmed = [e for e in session.scalars(select(OutboxEvent.event_type))
                 if e == "customer.churn_confirmed"]
    assert confirmed == ["customer.churn_confirmed"]
    assert lifecycle.decisions(session, c.id)[0]["competitor"] == "自如"


def test_payment_earns_points_by_decimal_rule(session):
    c = customers.create(session, person(), ACTOR)
    lifecycle.on_payment_received(session, {"customer_id": c.id, "amount": "3599.99",
                                            "payment_id": "P1"}, event("payment.received"))
    assert (c.points, c.member_tier) == (359, "standard")
    assert membership.points_for_payment(Decimal("10.00")) == 1
    assert membership.points_for_payment("9.99") == 0
    assert [e.delta for e in session.scalars(select(PointEntry))] == [359]


def test_scores_apply_newest_first_only(session):
    c = customers.create(session, person(), ACTOR)
    newer = make_envelope("customer.scored", {}, source="analytics")
    older_time = (now() - timedelta(hours=1)).isoformat()
    lifecycle.on_customer_scored(session, {"customer_id": c.id, "value_tier": "key",
                                           "churn_risk": {"score": 80, "reasons": []}}, newer)
    lifecycle.on_customer_scored(session, {"customer_id": c.id, "value_tier": "small",
                                           "scored_at": older_time}, newer)
    assert (c.value_tier, c.churn_risk) == ("key", 80)


def test_events_about_a_merged_customer_reach_the_survivor(session):
    a = customers.create(session, person(), ACTOR)
    b = customers.create(session, person(mobile="13900139000", email=None), ACTOR)
    customers.merge(session, a.id, b.id, ACTOR)
    lifecycle.on_lease_signed(session, {"customer_id": b.id}, event("lease.signed"))
    assert (a.leases_signed, a.stage) == (1, "first_time")


def test_stagnation_alerts_once_per_stay_and_resolve_on_leaving(session):
    c = customers.create(session, person(), ACTOR)
    c.stage_entered_at = now() - timedelta(days=16)
    fresh = customers.create(session, person(mobile="13900139000", email=None), ACTOR)
    [alert] = lifecycle.scan_stagnation(session)
    assert (alert.customer_id, alert.owner_id, alert.limit_days) == (c.id, "staff-1", 15)
    assert lifecycle.scan_stagnation(session) == []  # once per stay
    assert fresh.id not in [a["customer_id"] for a in lifecycle.list_alerts(session, {})["items"]]
    acknowledged = lifecycle.acknowledge_alert(session, alert.id, ACTOR)
    assert acknowledged["status"] == "acknowledged"
    lifecycle.change_stage(session, c.id, {"stage": "intent", "reason": "called back"}, ACTOR)
    assert lifecycle.list_alerts(session, {})["items"][0]["status"] == "resolved"


def test_stage_limits_are_configurable(session):
    assert lifecycle.stage_limits(session) == lifecycle.DEFAULT_STAGE_LIMITS
    limits = lifecycle.set_stage_limits(session, {"potential": 3, "churn_warning": None}, ACTOR)
    assert limits == {"potential": 3, "intent": 30}
    assert lifecycle.stage_limits(session) == {"potential": 3, "intent": 30}
    c = customers.create(session, person(), ACTOR)
    c.stage_entered_at = now() - timedelta(days=4)
    assert [a.customer_id for a in lifecycle.scan_stagnation(session)] == [c.id]
    with pytest.raises(InvalidInput):
        lifecycle.set_stage_limits(session, {"potential": 0}, ACTOR)
    with pytest.raises(InvalidInput):
        lifecycle.set_stage_limits(session, {"lead": 4}, ACTOR)


def test_handover_moves_open_alerts_to_the_new_owner(session):
    c = customers.create(session, person(), ACTOR)
    c.stage_entered_at = now() - timedelta(days=20)
    lifecycle.scan_stagnation(session)
    customers.handover(session, {"from_owner_id": "staff-1", "to_owner_id": "staff-2",
                                 "reason": "leave"}, ACTOR)
    assert lifecycle.list_alerts(session, {"owner_id": "staff-2"})["total"] == 1
