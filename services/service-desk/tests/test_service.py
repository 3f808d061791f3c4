"""The service desk as it runs, beside the real customer and sales services, on the real
RabbitMQ with SQLite and PostgreSQL."""
from datetime import date, timedelta

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from crm_kit.errors import Conflict, InvalidInput
from crm_kit.testing import EventTap, wait_until

from service_desk_fixtures import ACTOR, SUPERVISOR

CUSTOMER = "customer_service.service:CustomerService"
SALES = "sales_service.service:SalesService"
SERVICE_DESK = "service_desk_service.service:ServiceDeskService"


@pytest.fixture
def services(start_service, database_url, postgres_database, tmp_path):
    def url(name):
        return (f"sqlite:///{tmp_path / (name + '.db')}" if database_url.startswith("sqlite")
                else postgres_database(name))
    customer = start_service(CUSTOMER, url("customer"), name="customer")
    sales = start_service(SALES, url("sales"), name="sales")
    desk = start_service(SERVICE_DESK, database_url, name="service_desk")
    return customer, sales, desk


@pytest.fixture
def rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=15) as proxy:
        yield proxy


def _unit(rpc, code="GX-1203", district="高新区"):
    return rpc.sales.create_unit({"code": code, "building": "A栋", "district": district,
                                  "layout": "1b1b", "area_sqm": "38.50", "floor": 12,
                                  "monthly_rent": "3500.00"}, ACTOR)


def test_the_closed_loop_end_to_end(services, rpc, amqp_uri):
    tap = EventTap(amqp_uri, "service_desk")
    customer = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139000",
                                             "district": "锦江区"}, ACTOR)
    unit = _unit(rpc)
    start = date.today()
    lease = rpc.sales.sign_lease({
        "customer_id": customer["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": "3500.00",
        "deposit": "3500.00", "payment_cycle": "monthly"}, ACTOR)
    rpc.service_desk.set_agent("tech-1", {"skills": ["repair"], "districts": ["高新区"],
                                          "supervisor_id": "sup-1"}, SUPERVISOR)
    rpc.service_desk.create_article({"title": "空调漏水怎么办", "symptom": "空调滴水",
                                     "solution": "疏通排水管", "tags": ["空调"]}, ACTOR)
    ticket = rpc.service_desk.create_ticket({
        "customer_id": customer["id"], "type": "repair", "channel": "wechat",
        "priority": "urgent", "description": "空调漏水", "lease_id": lease["id"]}, ACTOR)
    # the unit comes from the lease, the district from the unit, the agent from the registry
    assert (ticket["unit_id"], ticket["district"], ticket["assignee_id"], ticket["status"]) == (
        unit["id"], "高新区", "tech-1", "assigned")
    assert ticket["suggested_articles"][0]["title"] == "空调漏水怎么办"
    assert ticket["sla"]["first_response_due"] and ticket["history"]

    appointment = rpc.service_desk.book_appointment(ticket["id"], {
        "scheduled_at": (date.today() + timedelta(days=1)).isoformat() + "T02:00:00+00:00"},
        ACTOR)
    assert appointment["technician_id"] == "tech-1"
    rpc.service_desk.change_ticket_status(ticket["id"], "in_progress", None, ACTOR)
    rpc.service_desk.add_comment(ticket["id"], "排水管已疏通", ACTOR)
    rpc.service_desk.change_ticket_status(ticket["id"], "resolved", "疏通排水管", ACTOR)
    with pytest.raises(Conflict):
        rpc.service_desk.change_ticket_status(ticket["id"], "in_progress", None, ACTOR)
    rated = rpc.service_desk.record_feedback(ticket["id"], {"rating": 2, "comment": "慢"},
                                             ACTOR)
    assert rated["feedback"]["rating"] == 2
    with pytest.raises(InvalidInput) as caught:
        rpc.service_desk.record_feedback(ticket["id"], {"rating": 9}, ACTOR)
    assert "rating" in caught.value.details
    reopened = rpc.service_desk.reopen_ticket(ticket["id"], "still dripping", ACTOR)
    assert reopened["status"] == "reopened"
    events = tap.wait_for(lambda e: e["type"] == "ticket.feedback_received")
    feedback = next(e for e in events if e["type"] == "ticket.feedback_received")
    assert feedback["data"]["low_rating"] is True
    assert feedback["data"]["customer_id"] == customer["id"]
    assert {e["type"] for e in tap.events} >= {"ticket.created", "ticket.status_changed",
                                               "ticket.resolved",
                                               "ticket.feedback_received"}
    detail = rpc.service_desk.get_ticket(ticket["id"])
    assert [h["to_status"] for h in detail["history"] if h["action"] in (
        "created", "status", "assigned")] == ["new", "assigned", "in_progress", "resolved",
                                              "reopened"]
    assert rpc.service_desk.list_tickets({"customer_id": customer["id"]}, 1, 50)["total"] == 1
    tap.close()


def test_unknown_customer_unit_or_lease_changes_nothing(services, rpc):
    customer = rpc.customer.create_customer({"name": "韩梅梅", "mobile": "13700137000"}, ACTOR)
    other = rpc.customer.create_customer({"name": "王五", "mobile": "13700137001"}, ACTOR)
    unit = _unit(rpc)
    start = date.today()
    lease = rpc.sales.sign_lease({
        "customer_id": other["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=30)).isoformat(), "monthly_rent": "3000.00",
        "deposit": "0", "payment_cycle": "monthly"}, ACTOR)
    with pytest.raises(InvalidInput) as caught:
        rpc.service_desk.create_ticket({"customer_id": "nobody", "type": "repair",
                                        "channel": "fax", "description": "x",
                                        "unit_id": "no-unit"}, ACTOR)
    assert set(caught.value.details) == {"customer_id", "channel", "unit_id"}
    with pytest.raises(InvalidInput) as caught:
        rpc.service_desk.create_ticket({"customer_id": customer["id"], "type": "repair",
                                        "channel": "phone", "description": "x",
                                        "lease_id": lease["id"]}, ACTOR)
    assert caught.value.details["lease_id"] == ["belongs to another customer"]
    with pytest.raises(InvalidInput) as caught:
        rpc.service_desk.create_ticket({"customer_id": customer["id"], "type": "repair",
                                        "channel": "phone", "description": "x",
                                        "lease_id": "no-lease"}, ACTOR)
    assert "lease_id" in caught.value.details
    assert rpc.service_desk.list_tickets({}, 1, 50)["total"] == 0


def test_concurrent_creations_get_distinct_numbers(services, rpc):
    customer = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139000"}, ACTOR)
    calls = [rpc.service_desk.create_ticket.call_async({
        "customer_id": customer["id"], "type": "consultation", "channel": "web",
        "description": f"问题 {n}"}, ACTOR) for n in range(8)]
    numbers = [call.result()["number"] for call in calls]
    assert len(set(numbers)) == 8
    assert sorted(int(n[-4:]) for n in numbers) == list(range(1, 9))


def test_merge_and_erasure_reach_the_tickets(services, rpc):
    survivor = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139000"}, ACTOR)
    duplicate = rpc.customer.create_customer({"name": "李雷", "mobile": "13900139001"}, ACTOR)
    ticket = rpc.service_desk.create_ticket({
        "customer_id": duplicate["id"], "type": "complaint", "channel": "phone",
        "description": "我是李雷，电话13900139001"}, ACTOR)
    rpc.customer.merge_customers(survivor["id"], duplicate["id"], ACTOR)
    wait_until(lambda: rpc.service_desk.get_ticket(ticket["id"])["customer_id"]
               == survivor["id"], message="customer.merged → ticket re-pointed")
    rpc.customer.erase_customer(survivor["id"], ACTOR)
    wait_until(lambda: rpc.service_desk.get_ticket(ticket["id"])["description"] == "",
               message="customer.erased → description blanked")
    assert rpc.service_desk.get_ticket(ticket["id"])["status"] == "new"


def test_sla_scan_and_policy_over_rpc(services, rpc):
    policy = rpc.service_desk.get_sla_policy()
    assert policy["targets"]["repair"]["urgent"]["first_response_minutes"] == 30
    changed = rpc.service_desk.set_sla_policy({"calendar": {"holidays": ["2030-01-01"]}},
                                              SUPERVISOR)
    assert changed["calendar"]["holidays"] == ["2030-01-01"]
    assert rpc.service_desk.run_sla_scan() == {"breached": 0}
    assert rpc.service_desk.list_tickets({"breached": True}, 1, 50)["total"] == 0
    assert rpc.service_desk.list_agents() == []
    assert rpc.service_desk.search_articles("空调", 5) == []
