"""Viewings (带看): booking without double booking, outcomes, and the pipeline they move."""
from datetime import timedelta

import pytest

from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from sales_service import opportunities, units, viewings

from sales_fixtures import ACTOR, OTHER, customer, events, opportunity_data, unit_data

START = (now() + timedelta(days=2)).replace(hour=2, minute=0, second=0, microsecond=0)


def at(minutes):
    return (START + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def setting(session):
    """Two open opportunities and two units."""
    first = opportunities.create(session, opportunity_data(), ACTOR, customer())
    second = opportunities.create(session, opportunity_data(customer_id="cust-2"), ACTOR,
                                  customer("cust-2"))
    unit = units.create(session, unit_data(code="A-101"), ACTOR)
    other_unit = units.create(session, unit_data(code="A-102"), ACTOR)
    return first, second, unit, other_unit


def book(session, opportunity, unit, minutes=0, staff_id="staff-1", **extra):
    return viewings.book(session, {"opportunity_id": opportunity.id, "unit_id": unit.id,
                                   "scheduled_at": at(minutes), "staff_id": staff_id, **extra},
                         ACTOR)


def test_booking_lasts_an_hour_by_default_and_advances_the_opportunity(session, setting):
    first, _, unit, _ = setting
    viewing = book(session, first, unit)
    data = viewings.to_dict(viewing)
    assert (data["status"], data["customer_id"], data["staff_id"], data["unit_id"]) == (
        "scheduled", "cust-1", "staff-1", unit.id)
    assert viewing.ends_at - viewing.scheduled_at == timedelta(minutes=60)
    assert data["duration_minutes"] == 60
    assert data["scheduled_at"] == START.isoformat()
    assert (data["result"], data["outcome"], data["completed_at"]) == (None, None, None)
    assert first.stage == "viewing_booked"
    last = opportunities.history(session, first.id)[-1]
    assert (last["from_stage"], last["to_stage"], last["trigger"]) == (
        "new", "viewing_booked", "viewing_booked")
    # a second viewing of the same opportunity does not move it again
    book(session, first, unit, minutes=120, duration_minutes=30)
    assert len(events(session, "opportunity.stage_changed")) == 1
    assert events(session, "viewing.completed") == []


def test_staff_defaults_to_the_actor(session, setting):
    first, _, unit, _ = setting
    viewing = viewings.book(session, {"opportunity_id": first.id, "unit_id": unit.id,
                                      "scheduled_at": at(0)}, OTHER)
    assert viewing.staff_id == "staff-2"
    with pytest.raises(InvalidInput) as caught:
        viewings.book(session, {"opportunity_id": first.id, "unit_id": unit.id,
                                "scheduled_at": at(300)}, None)
    assert "staff_id" in caught.value.details


@pytest.mark.parametrize("field,value", [
    ("duration_minutes", 14), ("duration_minutes", 241), ("scheduled_at", "2030-01-01T10:00:00"),
    ("scheduled_at", "soon"), ("unit_id", None), ("colour", "blue"),
])
def test_invalid_values_are_named(session, setting, field, value):
    first, _, unit, _ = setting
    data = {"opportunity_id": first.id, "unit_id": unit.id, "scheduled_at": at(0),
            "staff_id": "staff-1", field: value}
    with pytest.raises(InvalidInput) as caught:
        viewings.book(session, data, ACTOR)
    assert field in caught.value.details


def test_duration_bounds_are_allowed(session, setting):
    first, _, unit, other_unit = setting
    assert book(session, first, unit, duration_minutes=15).ends_at == START + timedelta(minutes=15)
    assert book(session, first, other_unit, minutes=600,
                duration_minutes=240).ends_at == START + timedelta(minutes=840)


def test_too_far_in_the_past_or_future_is_refused(session, setting):
    first, _, unit, _ = setting
    for when in (now() - timedelta(days=31), now() + timedelta(days=366)):
        with pytest.raises(InvalidInput) as caught:
            viewings.book(session, {"opportunity_id": first.id, "unit_id": unit.id,
                                    "scheduled_at": when.isoformat(), "staff_id": "s"}, ACTOR)
        assert "scheduled_at" in caught.value.details
    # a walk-in entered afterwards is fine
    viewings.book(session, {"opportunity_id": first.id, "unit_id": unit.id,
                            "scheduled_at": (now() - timedelta(days=1)).isoformat(),
                            "staff_id": "s"}, ACTOR)


def test_unknown_opportunity_or_unit_is_invalid_input(session, setting):
    first, _, unit, _ = setting
    with pytest.raises(InvalidInput) as caught:
        viewings.book(session, {"opportunity_id": "nope", "unit_id": unit.id,
                                "scheduled_at": at(0), "staff_id": "s"}, ACTOR)
    assert list(caught.value.details) == ["opportunity_id"]
    with pytest.raises(InvalidInput) as caught:
        viewings.book(session, {"opportunity_id": first.id, "unit_id": "nope",
                                "scheduled_at": at(0), "staff_id": "s"}, ACTOR)
    assert list(caught.value.details) == ["unit_id"]


def test_closed_opportunity_or_unit_under_maintenance_is_a_conflict(session, setting):
    first, second, unit, other_unit = setting
    units.update(session, unit.id, {"status": "maintenance"}, ACTOR)
    with pytest.raises(Conflict) as caught:
        book(session, first, unit)
    assert caught.value.details == {"field": "unit_id", "status": "maintenance"}
    opportunities.change_stage(session, second.id, {"stage": "lost", "loss_reason": "price"},
                               ACTOR)
    with pytest.raises(Conflict) as caught:
        book(session, second, other_unit)
    assert caught.value.details == {"field": "opportunity_id", "stage": "lost"}
    # a leased unit may be shown (the tenant may be moving out)
    units.set_status_by_lease(session, other_unit, "leased")
    assert book(session, first, other_unit).status == "scheduled"


@pytest.mark.parametrize("minutes,clash", [
    (-60, False),   # ends exactly when the booked one starts: touching is fine
    (60, False),    # starts exactly when it ends
    (-59, True), (59, True), (0, True), (15, True), (-30, True),
])
def test_no_double_booking_of_a_staff_member(session, setting, minutes, clash):
    first, second, unit, other_unit = setting
    booked = book(session, first, unit)  # [0, 60)
    if clash:
        with pytest.raises(Conflict) as caught:
            book(session, second, other_unit, minutes=minutes)
        assert caught.value.details["field"] == "staff_id"
        assert caught.value.details["existing_id"] == booked.id
        assert list(caught.value.details["conflicts"]) == ["staff_id"]
        assert "staff member staff-1" in caught.value.message
    else:
        assert book(session, second, other_unit, minutes=minutes).status == "scheduled"


@pytest.mark.parametrize("minutes,clash", [(-60, False), (60, False), (-1, True), (45, True)])
def test_no_double_booking_of_a_unit(session, setting, minutes, clash):
    first, second, unit, _ = setting
    booked = book(session, first, unit)
    if clash:
        with pytest.raises(Conflict) as caught:
            book(session, second, unit, minutes=minutes, staff_id="staff-2")
        assert caught.value.details["field"] == "unit_id"
        assert caught.value.details["existing_id"] == booked.id
        assert "unit A-101" in caught.value.message
    else:
        assert book(session, second, unit, minutes=minutes, staff_id="staff-2")


def test_both_clashes_are_named(session, setting):
    first, second, unit, _ = setting
    booked = book(session, first, unit)
    with pytest.raises(Conflict) as caught:
        book(session, second, unit, minutes=30)
    assert caught.value.details["conflicts"]["staff_id"]["viewing_id"] == booked.id
    assert caught.value.details["conflicts"]["unit_id"]["viewing_id"] == booked.id
    assert caught.value.details["conflicts"]["unit_id"]["ends_at"] == booked.ends_at.isoformat()


def test_a_longer_viewing_covering_another_clashes(session, setting):
    first, second, unit, other_unit = setting
    book(session, first, unit, minutes=60, duration_minutes=15)
    with pytest.raises(Conflict):
        book(session, second, other_unit, minutes=0, duration_minutes=240)


def test_completed_and_cancelled_viewings_free_the_slot(session, setting):
    first, second, unit, _ = setting
    done = book(session, first, unit)
    viewings.record_outcome(session, done.id, {"result": "interested"}, ACTOR)
    cancelled = book(session, second, unit)
    viewings.cancel(session, cancelled.id, "客户改期", ACTOR)
    assert cancelled.status == "cancelled"
    assert book(session, second, unit).status == "scheduled"
    with pytest.raises(Conflict):
        viewings.cancel(session, cancelled.id, "again", ACTOR)
    with pytest.raises(InvalidInput) as caught:
        viewings.cancel(session, done.id, "", ACTOR)
    assert "reason" in caught.value.details


def test_outcome_completes_advances_and_emits_once(session, setting):
    first, _, unit, _ = setting
    viewing = book(session, first, unit)
    viewings.record_outcome(session, viewing.id, {"result": "interested",
                                                  "outcome": "喜欢采光，想谈价格"}, ACTOR)
    data = viewings.to_dict(viewing)
    assert (data["status"], data["result"], data["outcome"]) == ("completed", "interested",
                                                                "喜欢采光，想谈价格")
    assert data["completed_at"] is not None
    assert first.stage == "viewed"
    [completed] = events(session, "viewing.completed")
    assert completed["data"] == {"viewing_id": viewing.id, "opportunity_id": first.id,
                                 "customer_id": "cust-1", "unit_id": unit.id,
                                 "staff_id": "staff-1", "result": "interested"}
    with pytest.raises(Conflict) as caught:
        viewings.record_outcome(session, viewing.id, {"result": "no_show"}, ACTOR)
    assert caught.value.details == {"status": "completed"}
    assert len(events(session, "viewing.completed")) == 1


def test_outcome_rules(session, setting):
    first, _, unit, _ = setting
    viewing = book(session, first, unit)
    for data, field in (({}, "result"), ({"result": "loved_it"}, "result"),
                        ({"result": "interested", "outcome": "x" * 4001}, "outcome"),
                        ({"result": "interested", "rating": 5}, "rating")):
        with pytest.raises(InvalidInput) as caught:
            viewings.record_outcome(session, viewing.id, data, ACTOR)
        assert field in caught.value.details
    with pytest.raises(NotFound):
        viewings.record_outcome(session, "nope", {"result": "interested"}, ACTOR)
    viewings.cancel(session, viewing.id, "客户取消", ACTOR)
    with pytest.raises(Conflict) as caught:
        viewings.record_outcome(session, viewing.id, {"result": "interested"}, ACTOR)
    assert caught.value.details == {"status": "cancelled"}


def test_no_show_completes_without_moving_to_viewed(session, setting):
    first, _, unit, _ = setting
    viewing = book(session, first, unit)
    viewings.record_outcome(session, viewing.id, {"result": "no_show"}, ACTOR)
    assert (viewing.status, first.stage) == ("completed", "viewing_booked")
    assert events(session, "viewing.completed")[0]["data"]["result"] == "no_show"


def test_outcome_never_moves_an_opportunity_back(session, setting):
    first, _, unit, _ = setting
    viewing = book(session, first, unit)
    opportunities.change_stage(session, first.id, {"stage": "negotiating", "reason": "谈价"},
                               ACTOR)
    viewings.record_outcome(session, viewing.id, {"result": "interested"}, ACTOR)
    assert first.stage == "negotiating"


def test_closing_an_opportunity_cancels_its_viewings_to_come(session, setting):
    first, _, unit, other_unit = setting
    upcoming = book(session, first, unit)
    past = viewings.book(session, {"opportunity_id": first.id, "unit_id": other_unit.id,
                                   "scheduled_at": (now() - timedelta(hours=3)).isoformat(),
                                   "staff_id": "staff-1"}, ACTOR)
    opportunities.change_stage(session, first.id, {"stage": "lost", "loss_reason": "price"},
                               ACTOR)
    session.expire_all()
    assert upcoming.status == "cancelled"
    assert past.status == "scheduled"  # its outcome can still be recorded
    viewings.record_outcome(session, past.id, {"result": "not_interested"}, ACTOR)
    assert opportunities.get(session, first.id).stage == "lost"


def test_list_filters(session, setting):
    first, second, unit, other_unit = setting
    a = book(session, first, unit, minutes=120)
    b = book(session, second, other_unit, minutes=0, staff_id="staff-2")
    c = book(session, first, other_unit, minutes=240)
    viewings.record_outcome(session, c.id, {"result": "interested"}, ACTOR)

    def ids(**filters):
        return [v["id"] for v in viewings.search(session, filters)["items"]]

    assert ids() == [b.id, a.id, c.id]  # in time order
    assert ids(opportunity_id=first.id) == [a.id, c.id]
    assert ids(staff_id="staff-2") == [b.id]
    assert ids(unit_id=other_unit.id) == [b.id, c.id]
    assert ids(customer_id="cust-2") == [b.id]
    assert ids(status="completed") == [c.id]
    assert ids(status="scheduled", staff_id="staff-1") == [a.id]
    assert ids(**{"from": at(60), "to": at(240)}) == [a.id]
    page = viewings.search(session, {}, page=2, per_page=2)
    assert (page["total"], [v["id"] for v in page["items"]]) == (3, [c.id])
    with pytest.raises(InvalidInput) as caught:
        viewings.search(session, {"status": "done"})
    assert "status" in caught.value.details
