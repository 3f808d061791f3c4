"""Units (房源): create, search, update and the status rules, on a real SQLite database."""
from decimal import Decimal

import pytest

from crm_kit.errors import Conflict, InvalidInput, NotFound
from sales_service import units

from sales_fixtures import ACTOR, events, unit_data


def test_create_returns_the_unit_with_exact_money_and_no_event(session):
    unit = units.create(session, unit_data(), ACTOR)
    session.commit()
    data = units.to_dict(units.get(session, unit.id))
    assert data["status"] == "vacant"
    assert (data["monthly_rent"], data["area_sqm"]) == ("3500.00", "38.50")
    assert isinstance(unit.monthly_rent, Decimal)
    assert data["amenities"] == ["washer", "air_conditioner"]
    assert events(session) == []  # the catalogue has no unit events


def test_a_taken_code_is_a_conflict_naming_the_field(session):
    first = units.create(session, unit_data(), ACTOR)
    with pytest.raises(Conflict) as caught:
        units.create(session, unit_data(building="另一栋"), ACTOR)
    assert caught.value.details == {"field": "code", "existing_id": first.id}
    other = units.create(session, unit_data(code="GX-1204"), ACTOR)
    with pytest.raises(Conflict) as caught:
        units.update(session, other.id, {"code": "GX-1203"}, ACTOR)
    assert caught.value.details["field"] == "code"


@pytest.mark.parametrize("field,value", [
    ("monthly_rent", 3500.0), ("monthly_rent", "3500.001"), ("monthly_rent", "0"),
    ("monthly_rent", "-1"), ("area_sqm", "abc"), ("floor", 999), ("code", "GX 12"),
    ("code", ""), ("building", "   "), ("status", "demolished"), ("colour", "red"),
    ("amenities", "washer"),
])
def test_invalid_values_are_named(session, field, value):
    with pytest.raises(InvalidInput) as caught:
        units.create(session, unit_data(**{field: value}), ACTOR)
    assert field in caught.value.details
    session.rollback()
    assert units.search(session, {})["total"] == 0


def test_missing_fields_are_named(session):
    with pytest.raises(InvalidInput) as caught:
        units.create(session, {"code": "X1"}, ACTOR)
    assert set(caught.value.details) == {"building", "district", "layout", "area_sqm",
                                         "floor", "monthly_rent"}


def test_a_new_unit_may_start_under_maintenance_but_not_leased(session):
    assert units.create(session, unit_data(status="maintenance"), ACTOR).status == "maintenance"
    with pytest.raises(Conflict) as caught:
        units.create(session, unit_data(code="X2", status="leased"), ACTOR)
    assert caught.value.details["field"] == "status"


def test_staff_switch_vacant_and_maintenance_only(session):
    unit = units.create(session, unit_data(), ACTOR)
    assert units.update(session, unit.id, {"status": "maintenance"}, ACTOR).status == "maintenance"
    assert units.update(session, unit.id, {"status": "vacant"}, ACTOR).status == "vacant"
    for status in ("reserved", "leased"):
        with pytest.raises(Conflict) as caught:
            units.update(session, unit.id, {"status": status}, ACTOR)
        assert caught.value.details == {"field": "status", "status": "vacant"}
    units.set_status_by_lease(session, unit, "leased")
    for status in ("vacant", "maintenance"):
        with pytest.raises(Conflict):
            units.update(session, unit.id, {"status": status}, ACTOR)
    # the same status again is no change, and other facts can still be edited
    updated = units.update(session, unit.id, {"status": "leased", "monthly_rent": "3600"}, ACTOR)
    assert (updated.status, updated.monthly_rent) == ("leased", Decimal("3600.00"))


def test_lease_code_sets_reserved_leased_and_back_to_vacant(session):
    unit = units.create(session, unit_data(), ACTOR)
    assert units.set_status_by_lease(session, unit.id, "reserved").status == "reserved"
    assert units.set_status_by_lease(session, unit, "leased").status == "leased"
    assert units.set_status_by_lease(session, unit, "vacant").status == "vacant"
    with pytest.raises(ValueError):
        units.set_status_by_lease(session, unit, "sold")
    with pytest.raises(NotFound):
        units.set_status_by_lease(session, "nope", "leased")


def test_update_changes_facts_and_refuses_nothing_to_change(session):
    unit = units.create(session, unit_data(), ACTOR)
    units.update(session, unit.id, {"building": "B栋", "amenities": None, "floor": 3}, ACTOR)
    data = units.to_dict(unit)
    assert (data["building"], data["amenities"], data["floor"]) == ("B栋", [], 3)
    with pytest.raises(InvalidInput) as caught:
        units.update(session, unit.id, {}, ACTOR)
    assert "_schema" in caught.value.details
    with pytest.raises(InvalidInput) as caught:
        units.update(session, unit.id, {"monthly_rent": 1.5}, ACTOR)
    assert "monthly_rent" in caught.value.details
    with pytest.raises(NotFound):
        units.update(session, "nope", {"floor": 2}, ACTOR)


def test_search_by_status_district_layout_rent_and_text_with_pages(session):
    units.create(session, unit_data(code="A-101", monthly_rent="2800.00"), ACTOR)
    units.create(session, unit_data(code="A-102", monthly_rent="3500.00", layout="2b1b"), ACTOR)
    units.create(session, unit_data(code="B-201", monthly_rent="3500.01", district="武侯区",
                                    building="武侯公寓"), ACTOR)
    maintained = units.create(session, unit_data(code="B-202", monthly_rent="2000.00"), ACTOR)
    units.update(session, maintained.id, {"status": "maintenance"}, ACTOR)

    def codes(**filters):
        return [u["code"] for u in units.search(session, filters)["items"]]

    assert codes(status="vacant") == ["A-101", "A-102", "B-201"]
    assert codes(status="vacant", max_rent="3500.00") == ["A-101", "A-102"]
    assert codes(max_rent="3500") == ["A-101", "A-102", "B-202"]
    assert codes(district="武侯区") == ["B-201"]
    assert codes(layout="2b1b") == ["A-102"]
    assert codes(q="武侯") == ["B-201"]
    assert codes(q="a-10") == ["A-101", "A-102"]
    assert codes(status=None, district="") == ["A-101", "A-102", "B-201", "B-202"]
    page = units.search(session, {}, page=2, per_page=3)
    assert (page["total"], page["page"], page["per_page"]) == (4, 2, 3)
    assert [u["code"] for u in page["items"]] == ["B-202"]
    with pytest.raises(InvalidInput) as caught:
        units.search(session, {"max_rent": 3000.5, "status": "gone"})
    assert set(caught.value.details) == {"max_rent", "status"}


def test_unknown_unit_is_not_found(session):
    with pytest.raises(NotFound) as caught:
        units.get(session, "nope")
    assert caught.value.details == {"unit_id": "nope"}


def test_a_code_taken_by_a_concurrent_request_is_still_a_conflict(session, monkeypatch):
    first = units.create(session, unit_data(), ACTOR)
    real_check = units._code_taken
    calls = []

    def late_check(session_, code, own_id=None):  # the first check misses the other insert
        calls.append(code)
        if len(calls) > 1:
            real_check(session_, code, own_id)

    monkeypatch.setattr(units, "_code_taken", late_check)
    with pytest.raises(Conflict) as caught:
        units.create(session, unit_data(), ACTOR)
    assert caught.value.details == {"field": "code", "existing_id": first.id}
    assert len(calls) == 2
