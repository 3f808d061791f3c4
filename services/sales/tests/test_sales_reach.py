"""What the gateway's object-level limits ask of the sales service (crm_gateway.scopes): lists
narrowed to a caller's customers (``customer_ids``) or to their owners-or-customers
(``visible_to``)."""
from datetime import timedelta

from crm_kit.envelope import now
from sales_service import leasing, opportunities, payments, units, viewings

from sales_fixtures import ACTOR, customer, make_lease, opportunity_data, unit_data


def test_leases_and_bills_narrowed_to_customers(session):
    first = units.create(session, unit_data(code="R-1"), ACTOR)
    second = units.create(session, unit_data(code="R-2"), ACTOR)
    mine = make_lease(session, first.id, customer_id="cust-1")
    theirs = make_lease(session, second.id, customer_id="cust-2", owner_id="staff-2")
    leasing.issue_schedule(session, mine, with_deposit=True)
    leasing.issue_schedule(session, theirs, with_deposit=True)

    def lease_ids(**filters):
        return {lease["id"] for lease in leasing.search(session, filters)["items"]}

    def bill_customers(**filters):
        return {bill["customer_id"] for bill in payments.search(session, filters)["items"]}

    assert lease_ids(customer_ids=["cust-1"]) == {mine.id}
    assert lease_ids(customer_ids=["cust-1", "cust-2"]) == {mine.id, theirs.id}
    assert lease_ids(customer_ids=[]) == set()
    assert lease_ids(customer_ids=["cust-1"], customer_id="cust-2") == set()
    assert bill_customers(customer_ids=["cust-2"]) == {"cust-2"}
    assert payments.search(session, {"customer_ids": []})["total"] == 0


def test_opportunities_and_viewings_visible_by_owner_or_customer(session):
    own = opportunities.create(session, opportunity_data(customer_id="cust-1"), ACTOR,
                               customer("cust-1"))  # staff-1's customer and lead
    lead_on_other = opportunities.create(
        session, opportunity_data(customer_id="cust-2", owner_id="staff-1"), ACTOR,
        customer("cust-2", owner_id="staff-2"))
    other = opportunities.create(session, opportunity_data(customer_id="cust-2"), ACTOR,
                                 customer("cust-2", owner_id="staff-2"))
    unit = units.create(session, unit_data(), ACTOR)
    at = now() + timedelta(days=1)

    def book(opportunity, staff_id, hours):
        return viewings.book(session, {"opportunity_id": opportunity.id, "unit_id": unit.id,
                                       "scheduled_at": (at + timedelta(hours=hours)).isoformat(),
                                       "staff_id": staff_id}, ACTOR)

    on_own = book(own, "staff-1", 0)
    on_lead = book(lead_on_other, "staff-2", 2)
    led_by_me = book(other, "staff-1", 4)
    not_mine = book(other, "staff-2", 6)

    def opportunity_ids(scope):
        return {o["id"] for o in opportunities.search(session, {"visible_to": scope})["items"]}

    def viewing_ids(scope):
        return {v["id"] for v in viewings.search(session, {"visible_to": scope})["items"]}

    staff_1 = {"owner_ids": ["staff-1"], "customer_ids": ["cust-1"]}
    assert opportunity_ids(staff_1) == {own.id, lead_on_other.id}
    assert viewing_ids(staff_1) == {on_own.id, on_lead.id, led_by_me.id}
    assert not_mine.id not in viewing_ids(staff_1)
    assert opportunity_ids({"owner_ids": [], "customer_ids": ["cust-2"]}) == {
        lead_on_other.id, other.id}
    assert opportunity_ids({"owner_ids": [], "customer_ids": []}) == set()
    assert viewing_ids({"owner_ids": ["staff-9"], "customer_ids": []}) == set()
