"""Service-desk routes (tickets, appointments, feedback, the knowledge base, the assignment
registry, the SLA policy) in front of the REAL customer, sales and service_desk services on the
real broker — no stubs.

The three services run for this module (``crm_kit.testing.ServiceProcess``, SQLite in a
temporary folder) on the module's own RabbitMQ vhost, a child of the session's (``vhost`` of
``crm_kit.pytest_plugin``), removed afterwards — as ``test_leasing_routes.py`` does, for the
same reasons (other suites' durable queues; the 360 stand-ins of ``other_services.py``).
Tests share the services, never data: each makes its own customers (unique mobiles), staff,
districts (auto-assignment looks at the district) and articles (unique words), and reads back
only those.
"""
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crm_kit.rpc_client import RpcClient
from crm_kit.testing import ServiceProcess
from gateway_support import (module_vhost, CUSTOMER_SPEC, STAFF_PASSWORD, Api, make_app, rpc_calls_served,
                             unique_tag)

SALES_SPEC = "sales_service.service:SalesService"
SERVICE_DESK_SPEC = "service_desk_service.service:ServiceDeskService"
SERVICE_DESK_DIR = Path(__file__).resolve().parents[2] / "services" / "service-desk"
API = "/api/v1"
PASSWORD = STAFF_PASSWORD


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def service_desk_uri(vhost):
    yield from module_vhost(vhost, "service-desk")


def _python_path():
    """The service desk's package, importable whether or not it is installed into the venv."""
    return os.pathsep.join(filter(None, (str(SERVICE_DESK_DIR), os.environ.get("PYTHONPATH"))))


@pytest.fixture(scope="module")
def services(service_desk_uri, tmp_path_factory):
    """The real customer, sales and service_desk services, as ``make up`` starts them."""
    data_dir = tmp_path_factory.mktemp("service-desk-services")
    started = {}
    try:
        for name, spec in (("customer", CUSTOMER_SPEC), ("sales", SALES_SPEC),
                           ("service_desk", SERVICE_DESK_SPEC)):
            url = f"sqlite:///{data_dir / (name + '.db')}"
            service = ServiceProcess(spec, service_desk_uri, url, data_dir, name=name,
                                     env={"PYTHONPATH": _python_path()})
            service.database_url = url
            started[name] = service.start()
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


@pytest.fixture(scope="module")
def api(services, service_desk_uri, tmp_path_factory):
    """One gateway for the module (role tokens are costly: scrypt), with the deployed RPC
    timeout (opening a ticket asks the customer and sales services too)."""
    return Api(make_app(tmp_path_factory.mktemp("service-desk-gateway"), service_desk_uri,
                        RPC_TIMEOUT=5))


@pytest.fixture(scope="module")
def desk_rpc(service_desk_uri, services):
    """The tests' own RPC client to the service desk (setup only: the SLA scan)."""
    with RpcClient(service_desk_uri, timeout=15, client_name="service-desk-tests") as client:
        yield client


@pytest.fixture
def desk_calls(services):
    """``desk_calls()``: RPCs the service desk has run so far."""
    return lambda: rpc_calls_served(services["service_desk"])


# ---------------------------------------------------------------- helpers

def now_iso(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def error(response, status):
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def staff(api, roles, **fields):
    """A new staff member with ``roles`` and their token: ``(record, headers)``."""
    record = api.create_staff(unique_tag("staff"), roles, **fields)
    return record, api.auth(api.token(record["username"], PASSWORD))


def get(api, path, role="sales_supervisor", **query):
    return ok(api.request("GET", f"{API}{path}", role=role, query_string=query))


def post(api, path, body=None, role="service_agent", status=200, **kwargs):
    response = api.request("POST", f"{API}{path}", role=role, json=body or {}, **kwargs)
    return ok(response, status) if status < 400 else error(response, status)


def new_district():
    """A district of its own: auto-assignment in one test never picks another test's agent."""
    return unique_tag("区")


def new_ticket(api, customer_id, role="service_agent", status=201, **fields):
    body = {"customer_id": customer_id, "type": "repair", "channel": "phone",
            "description": "卫生间水龙头漏水", **fields}
    return post(api, "/tickets", body, role=role, status=status)


def register_agent(api, staff_id, role="sales_supervisor", **fields):
    body = {"skills": ["repair"], "districts": [], "active": True, **fields}
    return ok(api.request("PUT", f"{API}/service-desk/agents/{staff_id}", role=role, json=body))


def new_article(api, role="service_agent", **fields):
    return post(api, "/kb/articles", {"tags": [], **fields}, role=role, status=201)


def move_ticket_due_times_back(database_url, ticket_id, hours):
    """Time travel in the service desk's own database: the ticket's SLA targets lie ``hours``
    in the past (as test_leasing_routes.py moves an opportunity's stage entry)."""
    from sqlalchemy import create_engine, text

    due = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(tzinfo=None)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE tickets SET first_response_due = :t, "
                                    "resolution_due = :t WHERE id = :id"),
                               {"t": due, "id": ticket_id})
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the whole flow

def test_customer_to_ticket_to_article(api):
    """customer → knowledge base → ticket with suggestions, auto-assigned → workflow (an
    illegal move is a 409) → comment → appointment (double booking 409) → resolved → feedback
    (6 refused, 2 taken, once) → reopened → article from the ticket; the history tells who did
    what, and the customer's 360 view shows the ticket."""
    district = new_district()
    agent, as_agent = staff(api, ["service_agent"])
    technician, as_technician = staff(api, ["technician"])
    registry_entry = register_agent(api, agent["id"], districts=[district])
    assert registry_entry["staff_id"] == agent["id"]
    assert registry_entry["skills"] == ["repair"] and registry_entry["districts"] == [district]
    assert agent["id"] in {a["staff_id"] for a in get(
        api, "/service-desk/agents", role="executive")["items"]}

    # a knowledge base to suggest from
    heater = new_article(api, role="technician", title="热水器不出热水的处理",
                         symptom="热水器打开后不出热水，水一直是凉的",
                         solution="检查燃气阀门是否打开，电池是否没电，必要时上门维修热水器",
                         tags=["热水器"])
    aircon = new_article(api, title="空调不制冷", symptom="空调开机后吹的是热风，不制冷",
                         solution="清洗滤网，检查制冷剂", tags=["空调"])
    assert heater["source_ticket_id"] is None
    assert get(api, f"/kb/articles/{heater['id']}", role="marketer") == heater

    # the customer calls: a ticket, with SLA targets and suggestions, assigned automatically
    customer = api.managed_customer(name="韩梅梅", district=district)
    ticket = new_ticket(api, customer["id"], role="customer_manager",
                        description="热水器不出热水", priority="high")
    assert ticket["customer_id"] == customer["id"] and ticket["type"] == "repair"
    assert ticket["priority"] == "high" and ticket["district"] == district
    assert ticket["number"]
    assert set(ticket["sla"]) >= {"first_response_due", "resolution_due"}
    assert ticket["sla"]["first_response_due"] <= ticket["sla"]["resolution_due"]
    assert ticket["breached"] is False and ticket["feedback"] is None
    suggested = [article["id"] for article in ticket["suggested_articles"]]
    assert suggested[0] == heater["id"]
    assert ticket["status"] == "assigned" and ticket["assignee_id"] == agent["id"]
    assert [(h["from_status"], h["to_status"]) for h in ticket["history"]][:2] == [
        (None, "new"), ("new", "assigned")]
    ticket_id = ticket["id"]

    # the workflow: an assigned ticket cannot be closed
    refused = post(api, f"/tickets/{ticket_id}/status", {"status": "closed"}, headers=as_agent,
                   role=None, status=409)
    assert refused["code"] == "conflict"
    working = post(api, f"/tickets/{ticket_id}/status",
                   {"status": "in_progress", "note": "已联系客户"}, headers=as_agent, role=None)
    assert working["status"] == "in_progress"
    assert working["sla"]["first_responded_at"] is not None

    comment = post(api, f"/tickets/{ticket_id}/comments", {"body": "客户说早上还好好的"},
                   headers=as_agent, role=None, status=201)
    assert comment["body"] == "客户说早上还好好的" and comment["author_id"] == agent["id"]

    # an on-site visit; the technician cannot be in two places at once
    at = now_iso(days=1)
    visit = post(api, f"/tickets/{ticket_id}/appointment",
                 {"scheduled_at": at, "duration_minutes": 60,
                  "technician_id": technician["id"]}, headers=as_technician, role=None,
                 status=201)
    assert visit["technician_id"] == technician["id"] and visit["duration_minutes"] == 60
    other = new_ticket(api, customer["id"], description="厨房水槽堵了")
    clash = post(api, f"/tickets/{other['id']}/appointment",
                 {"scheduled_at": now_iso(days=1, minutes=30), "technician_id": technician["id"]},
                 status=409)
    assert clash["code"] == "conflict"
    assert get(api, f"/tickets/{ticket_id}")["appointment"]["id"] == visit["id"]

    # resolved; the customer's rating (1-5), once
    resolved = post(api, f"/tickets/{ticket_id}/status",
                    {"status": "resolved", "note": "更换了热水器电池"}, headers=as_agent, role=None)
    assert resolved["status"] == "resolved" and resolved["sla"]["resolved_at"] is not None
    bad = post(api, f"/tickets/{ticket_id}/feedback", {"rating": 6}, role="customer_manager",
               status=422)
    assert set(bad["details"]) == {"rating"}
    rated = post(api, f"/tickets/{ticket_id}/feedback", {"rating": 2, "comment": "修得太慢"},
                 role="customer_manager")
    assert rated["feedback"]["rating"] == 2 and rated["feedback"]["comment"] == "修得太慢"
    post(api, f"/tickets/{ticket_id}/feedback", {"rating": 3}, status=409)

    # the customer calls again: reopened
    reopened = post(api, f"/tickets/{ticket_id}/reopen", {"reason": "第二天又不出热水了"},
                    headers=as_agent, role=None)
    assert reopened["status"] == "reopened"

    # the history: every change, who, when
    full = get(api, f"/tickets/{ticket_id}", role="executive")
    moves = [(h["from_status"], h["to_status"], h["actor_id"]) for h in full["history"]]
    assert ("assigned", "in_progress", agent["id"]) in moves
    assert ("in_progress", "resolved", agent["id"]) in moves
    assert ("resolved", "reopened", agent["id"]) in moves
    assert all(h["occurred_at"] for h in full["history"])
    assert [c["id"] for c in full["comments"]] == [comment["id"]]

    # fixed for good, and written up for the knowledge base
    post(api, f"/tickets/{ticket_id}/status", {"status": "in_progress"}, headers=as_agent,
         role=None)
    post(api, f"/tickets/{ticket_id}/status", {"status": "resolved", "note": "更换了点火器"},
         headers=as_agent, role=None)
    article = post(api, f"/tickets/{ticket_id}/to-article", {"tags": ["热水器", "点火器"]},
                   headers=as_technician, role=None, status=201)
    assert article["source_ticket_id"] == ticket_id
    assert sorted(article["tags"]) == sorted(["热水器", "点火器"])
    assert article["title"] and article["symptom"] and article["solution"]
    listed = get(api, "/kb/articles", role="technician", source_ticket_id=ticket_id)
    assert [a["id"] for a in listed["items"]] == [article["id"]]

    # lists
    mine = get(api, "/tickets", role="service_agent", assignee_id=agent["id"])
    assert {t["id"] for t in mine["items"]} == {ticket_id, other["id"]}
    assert get(api, "/tickets", customer_id=customer["id"], status="resolved")["total"] == 1
    assert get(api, "/tickets", customer_id=customer["id"], type="complaint")["total"] == 0
    assert get(api, "/tickets", customer_id=customer["id"], priority="high")["total"] == 1

    # the customer's 360 view shows the tickets
    view = get(api, f"/customers/{customer['id']}/360", role="service_agent")
    assert view["tickets"]["available"] is True
    assert {t["id"]: t["status"] for t in view["tickets"]["items"]} == {
        ticket_id: "resolved", other["id"]: "assigned"}


# ---------------------------------------------------------------- knowledge base

def test_kb_search_ranks_the_closest_article_first(api):
    word = unique_tag("型号")
    washer = new_article(api, title=f"洗衣机不脱水 {word}", symptom="洗衣机洗完衣服不脱水，桶里有水",
                         solution="检查排水管是否堵塞", tags=["洗衣机"])
    noisy = new_article(api, title=f"洗衣机噪音大 {word}", symptom="洗衣机运转时声音很大",
                        solution="调平洗衣机的脚", tags=["洗衣机"])
    new_article(api, title=f"门锁打不开 {word}", symptom="电子门锁没电，打不开门",
                solution="更换门锁电池", tags=["门锁"])
    found = get(api, "/kb/search", role="marketer", q="洗衣机不脱水", limit=2)
    assert found["query"] == "洗衣机不脱水"
    assert [hit["article"]["id"] for hit in found["items"]] == [washer["id"], noisy["id"]]
    assert found["items"][0]["score"] > found["items"][1]["score"]
    assert found["items"][0]["article"]["solution"] == "检查排水管是否堵塞"

    error(api.request("GET", f"{API}/kb/search", role="marketer"), 422)  # no q
    body = error(api.request("GET", f"{API}/kb/search", role="marketer",
                             query_string={"q": "门锁", "limit": 0}), 422)
    assert set(body["details"]) == {"limit"}
    error(api.request("GET", f"{API}/kb/articles/no-such-article", role="executive"), 404)


def test_article_validation_names_every_field(api):
    body = error(api.request("POST", f"{API}/kb/articles", role="technician",
                             json={"title": " ", "solution": "x" * 9000, "tags": ["ok"],
                                   "colour": "red"}), 422)
    assert set(body["details"]) == {"title", "symptom", "solution", "colour"}
    body = error(api.request("POST", f"{API}/kb/articles", role="technician",
                             json={"title": "t", "symptom": "s", "solution": "s",
                                   "tags": "热水器"}), 422)
    assert set(body["details"]) == {"tags"}  # not a list: refused at the gateway


# ---------------------------------------------------------------- SLA

def test_a_breached_ticket_is_found_after_the_sla_scan(api, services, desk_rpc):
    customer = api.create_customer(district=new_district())
    late = new_ticket(api, customer["id"], type="complaint", description="楼上装修太吵")
    on_time = new_ticket(api, customer["id"], type="consultation", description="怎么交水费")
    assert late["status"] == "new" and late["assignee_id"] is None  # no agent for the district

    move_ticket_due_times_back(services["service_desk"].database_url, late["id"], hours=2)
    assert desk_rpc.call("service_desk", "run_sla_scan")["breached"] >= 1

    breached = get(api, "/tickets", role="executive", customer_id=customer["id"],
                   breached="true")
    assert [t["id"] for t in breached["items"]] == [late["id"]]
    assert breached["items"][0]["breached"] is True
    sla = breached["items"][0]["sla"]
    assert sla["first_response_breached"] is True and sla["resolution_breached"] is True
    assert on_time["breached"] is False
    escalations = [h for h in get(api, f"/tickets/{late['id']}")["history"]
                   if h["action"] == "escalated"]
    assert len(escalations) == 2 and all(h["actor_id"] == "system" for h in escalations)
    body = error(api.request("GET", f"{API}/tickets", role="executive",
                             query_string={"breached": "maybe", "status": "lost"}), 422)
    assert set(body["details"]) == {"breached", "status"}


def test_breached_false_lists_the_tickets_on_time(api):
    """An open ticket not yet due, never answered, is on time: ``breached=false`` lists it."""
    customer = api.create_customer(district=new_district())
    on_time = new_ticket(api, customer["id"], type="consultation", description="怎么办停车证")
    assert on_time["breached"] is False
    listed = get(api, "/tickets", customer_id=customer["id"], breached="false")
    assert [t["id"] for t in listed["items"]] == [on_time["id"]]


def test_sla_policy_is_read_and_set_by_supervisors(api):
    policy = get(api, "/service-desk/sla-policy", role="executive")
    assert set(policy) >= {"targets", "calendar"}
    assert policy["targets"]["repair"]["urgent"] == {"first_response_minutes": 30,
                                                     "resolution_minutes": 240}
    error(api.request("PUT", f"{API}/service-desk/sla-policy", role="service_agent",
                      json={}), 403)
    body = error(api.request("PUT", f"{API}/service-desk/sla-policy", role="sales_supervisor",
                             json={"targets": {"repair": {"urgent": {
                                 "first_response_minutes": 60, "resolution_minutes": 30}}},
                                 "calendar": {"opens": "25:00"}}), 422)
    assert set(body["details"]) == {"targets", "calendar"}
    changed = ok(api.request("PUT", f"{API}/service-desk/sla-policy", role="admin",
                             json={"targets": {"suggestion": {"low": {
                                 "first_response_minutes": 500, "resolution_minutes": 7300}}}}))
    assert changed["targets"]["suggestion"]["low"]["resolution_minutes"] == 7300
    assert changed["targets"]["repair"] == policy["targets"]["repair"]
    ok(api.request("PUT", f"{API}/service-desk/sla-policy", role="admin",
                   json={"targets": {"suggestion": {"low": policy["targets"]["suggestion"]
                                                    ["low"]}}}))


# ---------------------------------------------------------------- validation and staff ids

def test_one_422_names_every_bad_field_of_a_ticket(api):
    body = post(api, "/tickets", {"customer_id": "no-such-customer", "type": "haunting",
                                  "channel": "pigeon", "description": " ", "mood": "angry"},
                status=422)
    assert set(body["details"]) == {"customer_id", "type", "channel", "description", "mood"}
    body = post(api, "/tickets", {"customer_id": "c", "type": "repair", "channel": "phone",
                                  "description": 42}, status=422)
    assert set(body["details"]) == {"description"}  # a number, refused at the gateway
    customer = api.create_customer()
    ticket = new_ticket(api, customer["id"])
    body = post(api, f"/tickets/{ticket['id']}/status", {"status": "resolved", "rating": 5},
                status=422)
    assert set(body["details"]) == {"rating"}
    body = post(api, f"/tickets/{ticket['id']}/feedback", {"rating": "5"}, status=422)
    assert set(body["details"]) == {"rating"}
    post(api, "/tickets/no-such-ticket/comments", {"body": "在吗"}, status=404)
    error(api.request("GET", f"{API}/tickets/no-such-ticket", role="executive"), 404)


def test_staff_ids_must_name_active_staff(api, desk_calls):
    leaver, _ = staff(api, ["technician"])
    ok(api.request("PATCH", f"{API}/staff/{leaver['id']}", role="admin",
                   json={"active": False}))
    customer = api.create_customer()
    ticket = new_ticket(api, customer["id"])
    api.role_token("sales_supervisor")
    before = desk_calls()
    for path, body, field in (
            (f"/tickets/{ticket['id']}/assign", {"assignee_id": leaver["id"]}, "assignee_id"),
            (f"/tickets/{ticket['id']}/assign", {"assignee_id": "no-such-staff"},
             "assignee_id"),
            (f"/tickets/{ticket['id']}/appointment",
             {"scheduled_at": now_iso(days=2), "technician_id": leaver["id"]}, "technician_id"),
            (f"/service-desk/agents/{leaver['id']}", {"skills": ["repair"]}, "staff_id")):
        method = "PUT" if path.startswith("/service-desk") else "POST"
        refused = error(api.request(method, f"{API}{path}", role="sales_supervisor", json=body),
                        422)
        assert refused["details"] == {field: ["is not an active staff member"]}, path
    error(api.request("PUT", f"{API}/service-desk/agents/no-such-staff", role="admin",
                      json={"skills": ["repair"]}), 404)
    assert desk_calls() == before
    # a leaver's entry may still be switched off
    ok(api.request("PUT", f"{API}/service-desk/agents/{leaver['id']}", role="admin",
                   json={"skills": ["repair"], "active": False}))


def test_manual_assignment(api):
    agent, _ = staff(api, ["service_agent"])
    customer = api.create_customer(district=new_district())
    ticket = new_ticket(api, customer["id"], type="suggestion", description="希望增加快递柜")
    assert ticket["status"] == "new"
    assigned = post(api, f"/tickets/{ticket['id']}/assign", {"assignee_id": agent["id"]},
                    role="sales_supervisor")
    assert assigned["status"] == "assigned" and assigned["assignee_id"] == agent["id"]
    body = post(api, f"/tickets/{ticket['id']}/assign", {"assignee_id": agent["id"],
                                                         "note": "x"}, status=422)
    assert set(body["details"]) == {"note"}


# ---------------------------------------------------------------- roles

FORBIDDEN = [
    ("executive", "POST", "/tickets", {}),
    ("marketer", "POST", "/tickets", {}),
    ("marketer", "GET", "/tickets", None),
    ("marketer", "GET", "/tickets/t-1", None),
    ("technician", "POST", "/tickets/t-1/assign", {"assignee_id": "s-1"}),
    ("customer_manager", "POST", "/tickets/t-1/assign", {"assignee_id": "s-1"}),
    ("executive", "POST", "/tickets/t-1/status", {"status": "in_progress"}),
    ("marketer", "POST", "/tickets/t-1/comments", {"body": "hi"}),
    ("customer_manager", "POST", "/tickets/t-1/appointment", {}),
    ("technician", "POST", "/tickets/t-1/feedback", {"rating": 5}),
    ("sales_supervisor", "POST", "/tickets/t-1/feedback", {"rating": 5}),
    ("technician", "POST", "/tickets/t-1/reopen", {"reason": "x"}),
    ("customer_manager", "POST", "/kb/articles", {}),
    ("executive", "POST", "/kb/articles", {}),
    ("customer_manager", "POST", "/tickets/t-1/to-article", {}),
    ("service_agent", "GET", "/service-desk/agents", None),
    ("service_agent", "PUT", "/service-desk/agents/s-1", {"skills": ["repair"]}),
    ("executive", "PUT", "/service-desk/agents/s-1", {"skills": ["repair"]}),
    ("technician", "GET", "/service-desk/sla-policy", None),
    ("executive", "PUT", "/service-desk/sla-policy", {}),
]


@pytest.mark.parametrize("role, method, path, body", FORBIDDEN)
def test_a_role_outside_the_table_is_refused_before_the_service(api, desk_calls, role, method,
                                                                 path, body):
    api.role_token(role)
    before = desk_calls()
    kwargs = {"json": body} if body is not None else {}
    refused = error(api.request(method, f"{API}{path}", role=role, **kwargs), 403)
    assert refused["code"] == "forbidden"
    assert desk_calls() == before


@pytest.mark.parametrize("role, path", [
    ("executive", "/tickets"), ("technician", "/tickets"), ("customer_manager", "/tickets"),
    ("marketer", "/kb/articles"), ("executive", "/kb/articles"),
    ("executive", "/service-desk/agents"), ("sales_supervisor", "/service-desk/sla-policy"),
])
def test_readers_read(api, role, path):
    get(api, path, role=role)


@pytest.mark.parametrize("role, mobile, id_number", [
    ("service_agent", "13812345678", "5101**********1234"),
    ("executive", "138****5678", "5101**********1234"),
    ("customer_manager", "13812345678", "510104199001011234"),
])
def test_a_customer_embedded_in_a_ticket_is_masked_by_role(api, role, mobile, id_number):
    """The service sends ``customer_id`` only; should it ever embed the customer, the ticket
    schema masks it as every customer the gateway answers."""
    from flask import g

    from crm_gateway.auth import Caller
    from crm_gateway.schemas.service_desk import TicketSchema

    with api.app.test_request_context():
        g.caller = Caller("s-1", "someone", "Someone", (role,), None, None)
        dumped = TicketSchema().dump({"id": "t-1", "customer": {
            "id": "c-1", "mobile": "13812345678", "id_number": "510104199001011234"}})
    assert dumped["customer"] == {"id": "c-1", "mobile": mobile, "id_number": id_number}


def test_the_openapi_document_has_the_service_desk(api):
    spec = ok(api.client.get(f"{API}/openapi.json"))
    assert {f"{API}/tickets", f"{API}/tickets/{{ticket_id}}/feedback", f"{API}/kb/search",
            f"{API}/tickets/{{ticket_id}}/to-article", f"{API}/service-desk/agents/{{staff_id}}",
            f"{API}/service-desk/sla-policy"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["FeedbackIn"]["properties"]["rating"]["type"] == "integer"
    assert {"history", "sla", "suggested_articles"} <= set(schemas["Ticket"]["properties"])
