"""Opportunities: creation, the pipeline, plans, assignment, forecast and stagnation."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_kit.envelope import make_envelope, now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from sales_service import opportunities, tasks, units
from sales_service.models import Opportunity, Task

from sales_fixtures import (ACTOR, OTHER, SUPERVISOR, customer, events, make_lease,
                            opportunity_data, unit_data)

REASON = {"reason": "客户回电"}


def new_opportunity(session, **overrides):
    return opportunities.create(session, opportunity_data(**overrides), ACTOR, customer())


def move(session, opportunity, stage, **data):
    return opportunities.change_stage(session, opportunity.id, {"stage": stage, **REASON, **data},
                                      ACTOR)


def stages(session, opportunity):
    return [(h["from_stage"], h["to_stage"], h["trigger"])
            for h in opportunities.history(session, opportunity.id)]


# -- creation ------------------------------------------------------------------------------
def test_create_returns_the_contract_dict_and_records_the_event(session):
    opportunity = new_opportunity(session, expected_close="2030-05-31")
    session.commit()
    data = opportunities.detail(session, opportunity.id)
    assert set(data) >= {
        "id", "customer_id", "kind", "source", "campaign_id", "budget", "district", "layout",
        "move_in_date", "expected_value", "probability", "expected_close", "owner_id", "stage",
        "stage_entered_at", "loss_reason", "loss_note", "lease_id", "renewal_of_lease_id",
        "stagnant", "plan_steps", "created_at", "updated_at", "history"}
    assert (data["kind"], data["stage"], data["probability"], data["stagnant"]) == (
        "new", "new", "0.10", False)
    assert (data["budget"], data["expected_value"]) == ("3500.00", "42000.00")  # 12 × budget
    assert data["expected_close"] == "2030-05-31"
    assert [(h["to_stage"], h["trigger"], h["actor_id"]) for h in data["history"]] == [
        ("new", "created", "staff-1")]
    [created] = events(session, "opportunity.created")
    assert created["source"] == "sales"
    assert created["data"] == {
        "opportunity_id": opportunity.id, "customer_id": "cust-1", "owner_id": "staff-1",
        "kind": "new", "source": "website", "campaign_id": None, "expected_value": "42000.00",
        "stage": "new", "renewal_of_lease_id": None}


def test_explicit_expected_value_wins_and_no_budget_means_no_value(session):
    assert new_opportunity(session, expected_value="50000").expected_value == Decimal("50000.00")
    assert new_opportunity(session, budget=None).expected_value is None


@pytest.mark.parametrize("data_owner,customer_owner,actor,expected", [
    ("staff-9", "staff-1", ACTOR, "staff-9"),
    (None, "staff-1", OTHER, "staff-1"),
    (None, None, OTHER, "staff-2"),  # a customer manager creating it owns it
    (None, None, SUPERVISOR, None),
    (None, None, None, None),
])
def test_owner_defaults(session, data_owner, customer_owner, actor, expected):
    opportunity = opportunities.create(session, opportunity_data(owner_id=data_owner), actor,
                                       customer(owner_id=customer_owner))
    assert opportunity.owner_id == expected


@pytest.mark.parametrize("field,value", [
    ("source", "tv"), ("budget", 3500.0), ("budget", "0"), ("expected_value", "1.234"),
    ("move_in_date", "2030-02-30"), ("customer_id", None), ("stage", "won"), ("kind", "renewal"),
    ("owner_id", "x" * 37),
])
def test_invalid_values_are_named_and_nothing_is_recorded(session, field, value):
    with pytest.raises(InvalidInput) as caught:
        opportunities.create(session, opportunity_data(**{field: value}), ACTOR, customer())
    assert field in caught.value.details
    session.rollback()
    assert opportunities.search(session, {})["total"] == 0
    assert events(session) == []


@pytest.mark.parametrize("found", [
    None, customer(customer_id="cust-2"), customer(merged_into="cust-9"),
    customer(erased=True), customer(archived=True)])
def test_unknown_or_gone_customer_is_invalid_customer_id(session, found):
    with pytest.raises(InvalidInput) as caught:
        opportunities.create(session, opportunity_data(), ACTOR, found)
    assert list(caught.value.details) == ["customer_id"]


def test_campaign_response_opens_a_lead_once_per_campaign(session):
    envelope = make_envelope("campaign.response_received",
                             {"customer_id": "cust-1", "campaign_id": "camp-1",
                              "response": "想看看两居室"}, source="marketing")
    lead = opportunities.create_from_campaign_response(session, envelope["data"], envelope)
    assert (lead.source, lead.campaign_id, lead.kind, lead.stage, lead.owner_id) == (
        "campaign", "camp-1", "new", "new", None)
    [history] = opportunities.history(session, lead.id)
    assert (history["trigger"], history["reason"]) == (
        "event:campaign.response_received", "campaign response: 想看看两居室")
    again = make_envelope("campaign.response_received",
                          {"customer_id": "cust-1", "campaign_id": "camp-1", "response": "在吗"},
                          source="marketing")
    assert opportunities.create_from_campaign_response(session, again["data"], again).id == lead.id
    other = make_envelope("campaign.response_received",
                          {"customer_id": "cust-1", "campaign_id": "camp-2", "response": "好",
                           "owner_id": "staff-2"}, source="marketing")
    second = opportunities.create_from_campaign_response(session, other["data"], other)
    assert (second.campaign_id, second.owner_id) == ("camp-2", "staff-2")
    assert [e["data"]["campaign_id"] for e in events(session, "opportunity.created")] == [
        "camp-1", "camp-2"]
    # once that lead is closed, a new response opens a new one
    move(session, lead, "lost", loss_reason="no_response")
    third = opportunities.create_from_campaign_response(session, again["data"], again)
    assert third.id not in (lead.id, second.id)


def test_renewal_opportunity_once_per_lease(session):
    unit = units.create(session, unit_data(), ACTOR)
    lease = make_lease(session, unit.id, monthly_rent="3333.33", owner_id="staff-7",
                       end_date=date(2031, 1, 31))
    renewal = opportunities.create_renewal(session, lease, 45)
    data = opportunities.to_dict(renewal)
    assert (data["kind"], data["source"], data["renewal_of_lease_id"], data["owner_id"]) == (
        "renewal", "renewal", lease.id, "staff-7")
    assert (data["expected_value"], data["expected_close"], data["budget"]) == (
        "39999.96", "2031-01-31", "3333.33")
    assert (data["district"], data["layout"]) == ("高新区", "1b1b")
    assert "45 days" in opportunities.history(session, renewal.id)[0]["reason"]
    assert opportunities.create_renewal(session, lease, 44) is None
    [created] = events(session, "opportunity.created")
    assert created["data"]["kind"] == "renewal"
    assert created["data"]["renewal_of_lease_id"] == lease.id


def test_renewal_created_concurrently_returns_none(session, monkeypatch):
    unit = units.create(session, unit_data(), ACTOR)
    lease = make_lease(session, unit.id)
    first = opportunities.create_renewal(session, lease, 30)
    session.commit()
    real = opportunities._renewal_of
    calls = []

    def late(session_, lease_id):  # the pre-check misses the other scan's row
        calls.append(lease_id)
        return None if len(calls) == 1 else real(session_, lease_id)

    monkeypatch.setattr(opportunities, "_renewal_of", late)
    assert opportunities.create_renewal(session, lease, 30) is None
    session.commit()  # the failed savepoint left the transaction usable
    assert [o.id for o in session.scalars(select(Opportunity))] == [first.id]
    assert len(events(session, "opportunity.created")) == 1


# -- stages --------------------------------------------------------------------------------
def test_forward_and_backward_moves_with_reasons_history_and_events(session):
    opportunity = new_opportunity(session)
    entered = opportunity.stage_entered_at
    move(session, opportunity, "contacted")
    move(session, opportunity, "negotiating")
    move(session, opportunity, "viewed", reason="客户要再看一次")
    assert opportunity.stage == "viewed"
    assert opportunity.stage_entered_at > entered
    assert stages(session, opportunity) == [
        (None, "new", "created"), ("new", "contacted", "manual"),
        ("contacted", "negotiating", "manual"), ("negotiating", "viewed", "manual")]
    assert opportunities.history(session, opportunity.id)[-1]["reason"] == "客户要再看一次"
    changed = events(session, "opportunity.stage_changed")
    assert [(e["data"]["from_stage"], e["data"]["to_stage"]) for e in changed] == [
        ("new", "contacted"), ("contacted", "negotiating"), ("negotiating", "viewed")]
    assert {k: changed[0]["data"][k] for k in (
        "opportunity_id", "customer_id", "owner_id", "loss_reason", "expected_value")} == {
        "opportunity_id": opportunity.id, "customer_id": "cust-1", "owner_id": "staff-1",
        "loss_reason": None, "expected_value": "42000.00"}
    assert opportunities.to_dict(opportunity)["probability"] == "0.60"


def test_stage_change_rules(session):
    opportunity = new_opportunity(session)
    cases = [
        ({"stage": "contacted"}, "reason"),
        ({"stage": "contacted", "reason": "  "}, "reason"),
        ({"stage": "lost"}, "loss_reason"),
        ({"stage": "lost", "loss_reason": "too_far"}, "loss_reason"),
        ({"stage": "viewed", "reason": "x", "loss_reason": "price"}, "loss_reason"),
        ({"stage": "closed", "reason": "x"}, "stage"),
        ({"stage": "viewed", "reason": "x", "extra": 1}, "extra"),
    ]
    for data, field in cases:
        with pytest.raises(InvalidInput) as caught:
            opportunities.change_stage(session, opportunity.id, data, ACTOR)
        assert field in caught.value.details, data
    with pytest.raises(Conflict) as caught:
        move(session, opportunity, "new")
    assert caught.value.details == {"stage": "new"}
    with pytest.raises(NotFound):
        opportunities.change_stage(session, "nope", {"stage": "contacted", **REASON}, ACTOR)
    assert events(session, "opportunity.stage_changed") == []


def test_lost_needs_a_reason_from_the_list_and_is_final(session):
    opportunity = new_opportunity(session)
    opportunities.change_stage(session, opportunity.id, {
        "stage": "lost", "loss_reason": "competitor", "loss_note": "签了自如"}, ACTOR)
    assert (opportunity.loss_reason, opportunity.loss_note) == ("competitor", "签了自如")
    [lost] = events(session, "opportunity.stage_changed")
    assert (lost["data"]["to_stage"], lost["data"]["loss_reason"]) == ("lost", "competitor")
    assert opportunities.history(session, opportunity.id)[-1]["reason"] == "lost: competitor"
    for stage in ("new", "negotiating", "won"):
        with pytest.raises(Conflict) as caught:
            move(session, opportunity, stage)
        assert caught.value.details == {"stage": "lost"}
    with pytest.raises(Conflict):
        opportunities.mark_won(session, opportunity, "L1")


def test_won_by_a_lease_is_final_and_idempotent(session):
    opportunity = new_opportunity(session)
    move(session, opportunity, "negotiating")
    opportunities.mark_won(session, opportunity.id, "L1", customer_id="cust-1")
    assert (opportunity.stage, opportunity.lease_id) == ("won", "L1")
    assert stages(session, opportunity)[-1] == ("negotiating", "won", "lease_signed")
    assert opportunities.mark_won(session, opportunity, "L1").stage == "won"  # same lease again
    assert len([e for e in events(session, "opportunity.stage_changed")
                if e["data"]["to_stage"] == "won"]) == 1
    with pytest.raises(Conflict):
        opportunities.mark_won(session, opportunity, "L2")
    with pytest.raises(Conflict) as caught:
        move(session, opportunity, "lost", loss_reason="price")
    assert caught.value.details == {"stage": "won"}
    assert opportunities.to_dict(opportunity)["probability"] == "1.00"


def test_mark_won_refuses_another_customers_opportunity(session):
    opportunity = new_opportunity(session)
    with pytest.raises(InvalidInput) as caught:
        opportunities.mark_won(session, opportunity, "L1", customer_id="cust-2")
    assert "opportunity_id" in caught.value.details
    assert opportunity.stage == "new"


def test_staff_may_mark_won_by_hand_with_a_reason(session):
    opportunity = new_opportunity(session)
    move(session, opportunity, "won", reason="签约于线下")
    assert (opportunity.stage, opportunity.lease_id) == ("won", None)


def test_advance_to_moves_forward_only_and_never_out_of_a_final_stage(session):
    opportunity = new_opportunity(session)
    assert opportunities.advance_to(session, opportunity, "viewing_booked", "viewing_booked")
    assert not opportunities.advance_to(session, opportunity.id, "viewing_booked", "viewing_booked")
    assert not opportunities.advance_to(session, opportunity, "contacted", "x")
    move(session, opportunity, "negotiating")
    assert not opportunities.advance_to(session, opportunity, "viewed", "viewing_completed")
    assert opportunity.stage == "negotiating"
    move(session, opportunity, "lost", loss_reason="price")
    assert not opportunities.advance_to(session, opportunity, "negotiating", "x")
    with pytest.raises(ValueError):
        opportunities.advance_to(session, opportunity, "won", "x")
    assert stages(session, opportunity)[1] == ("new", "viewing_booked", "viewing_booked")


# -- assignment and plans ------------------------------------------------------------------
def test_assign_moves_the_owner_and_its_open_tasks(session):
    opportunity = new_opportunity(session)
    task = tasks.create(session, {"owner_id": "staff-1", "title": "打电话",
                                  "due_at": now().isoformat(),
                                  "opportunity_id": opportunity.id}, ACTOR)
    someone_elses = tasks.create(session, {"owner_id": "staff-5", "title": "x",
                                           "due_at": now().isoformat(),
                                           "opportunity_id": opportunity.id}, ACTOR)
    opportunities.assign(session, opportunity.id, "staff-2", SUPERVISOR)
    assert opportunity.owner_id == "staff-2"
    assert (task.owner_id, someone_elses.owner_id) == ("staff-2", "staff-5")
    assert tasks.to_dict(task)["history"][-1]["action"] == "reassigned"
    last = opportunities.history(session, opportunity.id)[-1]
    assert (last["from_stage"], last["to_stage"], last["trigger"], last["actor_id"]) == (
        "new", "new", "assigned", "sup-1")
    assert "staff-1 → staff-2" in last["reason"]
    count = len(opportunities.history(session, opportunity.id))
    opportunities.assign(session, opportunity.id, "staff-2", SUPERVISOR)  # no change
    assert len(opportunities.history(session, opportunity.id)) == count
    with pytest.raises(InvalidInput) as caught:
        opportunities.assign(session, opportunity.id, None, SUPERVISOR)
    assert "owner_id" in caught.value.details
    move(session, opportunity, "lost", loss_reason="price")
    with pytest.raises(Conflict):
        opportunities.assign(session, opportunity.id, "staff-3", SUPERVISOR)


def test_plan_steps_are_added_and_done_once_with_a_result(session):
    opportunity = new_opportunity(session)
    opportunities.add_plan_step(session, opportunity.id,
                                {"title": "电话了解需求", "due_date": "2030-01-10"}, ACTOR)
    opportunities.add_plan_step(session, opportunity.id,
                                {"title": "带看两套", "due_date": "2030-01-12"}, ACTOR)
    first, second = opportunities.to_dict(opportunity)["plan_steps"]
    assert (first["title"], first["due_date"], first["done"], first["result"]) == (
        "电话了解需求", "2030-01-10", False, None)
    opportunities.complete_plan_step(session, opportunity.id, str(first["id"]),
                                     "预算3500，想住高新区", ACTOR)
    done = opportunities.to_dict(opportunity)["plan_steps"][0]
    assert (done["done"], done["result"], done["done_by"]) == (True, "预算3500，想住高新区",
                                                               "staff-1")
    assert done["done_at"] is not None
    with pytest.raises(Conflict):
        opportunities.complete_plan_step(session, opportunity.id, first["id"], "again", ACTOR)
    with pytest.raises(InvalidInput) as caught:
        opportunities.complete_plan_step(session, opportunity.id, second["id"], "", ACTOR)
    assert "result" in caught.value.details
    with pytest.raises(NotFound):
        opportunities.complete_plan_step(session, opportunity.id, 9999, "x", ACTOR)
    with pytest.raises(NotFound):
        opportunities.complete_plan_step(session, opportunity.id, "abc", "x", ACTOR)
    with pytest.raises(InvalidInput) as caught:
        opportunities.add_plan_step(session, opportunity.id, {"title": "x"}, ACTOR)
    assert "due_date" in caught.value.details
    move(session, opportunity, "lost", loss_reason="timing")
    with pytest.raises(Conflict):
        opportunities.add_plan_step(session, opportunity.id,
                                    {"title": "再联系", "due_date": "2030-02-01"}, ACTOR)
    # a step done before the end can still get its result recorded
    opportunities.complete_plan_step(session, opportunity.id, second["id"], "没来", ACTOR)


# -- search --------------------------------------------------------------------------------
def test_search_filters(session):
    a = new_opportunity(session)
    b = opportunities.create(session, opportunity_data(customer_id="cust-2", owner_id="staff-2"),
                             ACTOR, customer("cust-2"))
    move(session, b, "contacted")
    unit = units.create(session, unit_data(), ACTOR)
    renewal = opportunities.create_renewal(session, make_lease(session, unit.id), 30)
    b.stagnant_since = now()

    def ids(**filters):
        return {o["id"] for o in opportunities.search(session, filters)["items"]}

    assert ids() == {a.id, b.id, renewal.id}
    assert ids(customer_id="cust-2") == {b.id}
    assert ids(stage="contacted") == {b.id}
    assert ids(owner_id="staff-1") == {a.id, renewal.id}
    assert ids(owner_ids=["staff-2", "staff-3"]) == {b.id}
    assert ids(owner_ids=[]) == set()
    assert ids(kind="renewal") == {renewal.id}
    assert ids(stagnant=True) == {b.id}
    assert ids(stagnant="false") == {a.id, renewal.id}
    page = opportunities.search(session, {}, page=2, per_page=2)
    assert (page["total"], len(page["items"])) == (3, 1)
    with pytest.raises(InvalidInput) as caught:
        opportunities.search(session, {"stage": "done", "kind": "old"})
    assert set(caught.value.details) == {"stage", "kind"}


# -- forecast ------------------------------------------------------------------------------
def test_forecast_sums_value_times_probability_exactly(session):
    def make(owner, expected_value, stage, **dates):
        o = opportunities.create(session, opportunity_data(
            owner_id=owner, expected_value=expected_value, budget=None,
            move_in_date=dates.get("move_in_date"), expected_close=dates.get("expected_close")),
            SUPERVISOR, customer(owner_id=None))
        if stage != "new":
            move(session, o, stage)
        return o

    make("staff-1", "42000.00", "new", expected_close="2025-03-15")        # 4200.00
    make("staff-1", "33333.33", "viewed", move_in_date="2025-04-01")       # 19999.998
    make("staff-2", "10000.05", "negotiating", expected_close="2025-03-31")  # 8000.04
    d = make("staff-2", None, "contacted")                                 # 0
    d.created_at = datetime(2025, 4, 30, 20, 0, tzinfo=timezone.utc)      # 05-01 in Chengdu
    make(None, "0.05", "new", expected_close="2025-03-01")                 # 0.005
    won = make("staff-1", "99999.00", "negotiating", expected_close="2025-03-01")
    opportunities.mark_won(session, won, "L1")
    lost = make("staff-2", "77777.00", "new", expected_close="2025-03-01")
    move(session, lost, "lost", loss_reason="price", reason=None)

    result = opportunities.forecast(session, {})
    # 4200 + 19999.998 + 8000.04 + 0 + 0.005 = 32200.043
    assert Decimal("42000.00") * Decimal("0.10") + Decimal("33333.33") * Decimal("0.60") + \
        Decimal("10000.05") * Decimal("0.80") + Decimal("0.05") * Decimal("0.10") == \
        Decimal("32200.043")
    assert (result["total"], result["count"]) == ("32200.04", 5)
    assert result["by_owner"] == [
        {"owner_id": "staff-1", "value": "24200.00", "count": 2},   # 24199.998
        {"owner_id": "staff-2", "value": "8000.04", "count": 2},
        {"owner_id": None, "value": "0.01", "count": 1},            # 0.005, half up
    ]
    assert result["by_month"] == [
        {"month": "2025-03", "value": "12200.05", "count": 3},      # 12200.045, half up
        {"month": "2025-04", "value": "20000.00", "count": 1},      # 19999.998
        {"month": "2025-05", "value": "0.00", "count": 1},
    ]
    assert opportunities.forecast(session, {"owner_id": "staff-2"})["total"] == "8000.04"
    assert opportunities.forecast(session, {"owner_ids": ["staff-1"]})["total"] == "24200.00"
    assert opportunities.forecast(session, {"owner_ids": []}) == {
        "total": "0.00", "count": 0, "by_owner": [], "by_month": []}


# -- stagnation ----------------------------------------------------------------------------
def test_stage_limits_default_and_are_configurable(session):
    assert opportunities.stage_limits(session) == {"new": 3, "contacted": 7, "viewing_booked": 7,
                                                   "viewed": 7, "negotiating": 14}
    limits = opportunities.set_stage_limits(session, {"new": 1, "negotiating": 0,
                                                      "viewed": None}, SUPERVISOR)
    assert limits == {"new": 1, "contacted": 7, "viewing_booked": 7}
    assert opportunities.stage_limits(session) == limits
    assert opportunities.set_stage_limits(
        session, {s: 0 for s in ("new", "contacted", "viewing_booked")}, SUPERVISOR) == {}
    assert opportunities.stage_limits(session) == {}  # all off is not "use the defaults"
    for bad in ({"won": 3}, {"new": -1}, {"new": "soon"}, {}):
        with pytest.raises(InvalidInput) as caught:
            opportunities.set_stage_limits(session, bad, SUPERVISOR)
        assert set(caught.value.details) == (set(bad) or {"_schema"})


def test_stagnation_flags_once_per_stay_with_a_task_and_an_event(session):
    moment = now()
    stuck = new_opportunity(session)
    stuck.stage_entered_at = moment - timedelta(days=4)          # new: limit 3
    fresh = new_opportunity(session)
    fresh.stage_entered_at = moment - timedelta(days=2)
    ownerless = opportunities.create(session, opportunity_data(), SUPERVISOR,
                                     customer(owner_id=None))
    ownerless.stage_entered_at = moment - timedelta(days=10)
    closed = new_opportunity(session)
    move(session, closed, "lost", loss_reason="price", reason=None)
    closed.stage_entered_at = moment - timedelta(days=100)

    flagged = opportunities.scan_stagnation(session, moment)
    assert {o.id for o in flagged} == {stuck.id, ownerless.id}
    assert stuck.stagnant_since == moment
    assert opportunities.to_dict(stuck)["stagnant"] is True
    assert opportunities.scan_stagnation(session, moment + timedelta(days=1)) == []  # once

    [task] = session.scalars(select(Task).where(Task.kind == "stagnation")).all()
    assert (task.owner_id, task.opportunity_id, task.customer_id) == ("staff-1", stuck.id,
                                                                     "cust-1")
    stagnated = {e["data"]["opportunity_id"]: e["data"]
                 for e in events(session, "opportunity.stagnated")}
    assert stagnated[stuck.id] == {"opportunity_id": stuck.id, "customer_id": "cust-1",
                                   "owner_id": "staff-1", "stage": "new", "days_in_stage": 4,
                                   "limit_days": 3}
    assert stagnated[ownerless.id]["owner_id"] is None  # no owner: event, no task

    # moving on ends the stay: flag cleared, the task closed; a new stay can stagnate again
    move(session, stuck, "contacted")
    assert stuck.stagnant_since is None
    assert (task.status, task.result) == ("done", "moved to contacted")
    stuck.stage_entered_at = moment - timedelta(days=8)          # contacted: limit 7
    assert [o.id for o in opportunities.scan_stagnation(session, moment)] == [stuck.id]
    assert len(events(session, "opportunity.stagnated")) == 3


def test_stagnation_follows_the_configured_limits(session):
    moment = now()
    opportunity = new_opportunity(session)
    opportunity.stage_entered_at = moment - timedelta(days=5)
    opportunities.set_stage_limits(session, {"new": 0}, SUPERVISOR)
    assert opportunities.scan_stagnation(session, moment) == []
    opportunities.set_stage_limits(session, {"new": 6}, SUPERVISOR)
    assert opportunities.scan_stagnation(session, moment) == []
    opportunities.set_stage_limits(session, {"new": 4}, SUPERVISOR)
    assert opportunities.scan_stagnation(session, moment) == [opportunity]
