"""Property-level access (OWASP API3) in front of the REAL customer, sales and service-desk
services on the real broker — no stubs.

- No mass assignment: a customer manager makes no one but themselves the owner of a customer or
  an opportunity (403 naming ``owner_id``; supervisors and admins assign); no writable route
  takes what its role may not set — a customer's stage, points, membership, value tier, a
  lease's status or rent total, a bill's amount paid or status, a ticket's status or SLA, a
  staff member's password hash — each refused by name (422), and reading back shows nothing
  changed.
- Sensitive fields are masked by role on every route that answers customer data (list, record,
  360, export, duplicates), contacts included.
- Staff answers never carry a password hash.

The services run for this module on its own RabbitMQ vhost (as the other route modules do).
"""
import csv
import io
import os
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from crm_kit.testing import ServiceProcess
from crm_gateway.models import Staff
from gateway_support import (module_vhost, CUSTOMER_SPEC, STAFF_PASSWORD, Api, make_app, masked_id_number,
                             masked_mobile, resident_id, unique_mobile, unique_tag)

SALES_SPEC = "sales_service.service:SalesService"
SERVICE_DESK_SPEC = "service_desk_service.service:ServiceDeskService"
SERVICE_DESK_DIR = Path(__file__).resolve().parents[2] / "services" / "service-desk"
API = "/api/v1"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def property_uri(vhost):
    yield from module_vhost(vhost, "property-access")


@pytest.fixture(scope="module")
def services(property_uri, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("property-access-services")
    python_path = os.pathsep.join(filter(None, (str(SERVICE_DESK_DIR),
                                                os.environ.get("PYTHONPATH"))))
    started = {}
    try:
        for name, spec in (("customer", CUSTOMER_SPEC), ("sales", SALES_SPEC),
                           ("service_desk", SERVICE_DESK_SPEC)):
            url = f"sqlite:///{data_dir / (name + '.db')}"
            service = ServiceProcess(spec, property_uri, url, data_dir, name=name,
                                     env={"PYTHONPATH": python_path})
            started[name] = service.start()
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


@pytest.fixture(scope="module")
def api(services, property_uri, tmp_path_factory):
    return Api(make_app(tmp_path_factory.mktemp("property-access-gateway"), property_uri,
                        RPC_TIMEOUT=5))


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def now_iso(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def call(api, who, method, path, **kwargs):
    return api.request(method, f"{API}{path}", token=who, **kwargs)


@pytest.fixture(scope="module")
def team(api):
    """Supervisor S with customer managers A and B; a service agent; the admin."""
    def member(roles, **fields):
        record = api.create_staff(unique_tag("prop"), roles, **fields)
        return record["id"], api.token(record["username"], STAFF_PASSWORD)

    s_id, s = member(["sales_supervisor"])
    a_id, a = member(["customer_manager"], supervisor_id=s_id)
    b_id, b = member(["customer_manager"], supervisor_id=s_id)
    agent_id, agent = member(["service_agent"])
    return SimpleNamespace(S=s, A=a, B=b, agent=agent, admin=api.admin_token(),
                           ids={"S": s_id, "A": a_id, "B": b_id, "agent": agent_id})


def found_by_mobile(api, team, mobile):
    return ok(call(api, team.admin, "GET", "/customers", query_string={"q": mobile}))["total"]


# ---------------------------------------------------------------- owners

def test_a_manager_makes_no_one_else_the_owner(api, team):
    mobile = unique_mobile()
    refused = call(api, team.A, "POST", "/customers",
                   json={"name": "王芳", "mobile": mobile, "owner_id": team.ids["B"]})
    assert refused.status_code == 403
    assert set(refused.get_json()["error"]["details"]) == {"owner_id"}
    assert found_by_mobile(api, team, mobile) == 0

    mine = ok(call(api, team.A, "POST", "/customers",
                   json={"name": "王芳", "mobile": mobile, "owner_id": team.ids["A"]}), 201)
    assert mine["owner_id"] == team.ids["A"]
    for owner in (team.ids["B"], None):
        refused = call(api, team.A, "PATCH", f"/customers/{mine['id']}",
                       json={"owner_id": owner, "email": "moved@example.com"})
        assert refused.status_code == 403, owner
        assert set(refused.get_json()["error"]["details"]) == {"owner_id"}
    after = ok(call(api, team.admin, "GET", f"/customers/{mine['id']}"))
    assert (after["owner_id"], after["email"], after["updated_at"]) == (
        team.ids["A"], None, mine["updated_at"])

    refused = call(api, team.A, "POST", "/opportunities", json={
        "customer_id": mine["id"], "source": "website", "owner_id": team.ids["B"]})
    assert refused.status_code == 403
    assert set(refused.get_json()["error"]["details"]) == {"owner_id"}
    listed = ok(call(api, team.admin, "GET", "/opportunities",
                     query_string={"customer_id": mine["id"]}))
    assert listed["total"] == 0
    own = ok(call(api, team.A, "POST", "/opportunities", json={
        "customer_id": mine["id"], "source": "website", "owner_id": team.ids["A"]}), 201)
    assert own["owner_id"] == team.ids["A"]


def test_supervisors_and_admins_assign_owners(api, team):
    given = ok(call(api, team.S, "POST", "/customers", json={
        "name": "李娜", "mobile": unique_mobile(), "owner_id": team.ids["A"]}), 201)
    assert given["owner_id"] == team.ids["A"]
    moved = ok(call(api, team.S, "PATCH", f"/customers/{given['id']}",
                    json={"owner_id": team.ids["B"]}))
    assert moved["owner_id"] == team.ids["B"]
    opportunity = ok(call(api, team.admin, "POST", "/opportunities", json={
        "customer_id": given["id"], "source": "website", "owner_id": team.ids["A"]}), 201)
    assert opportunity["owner_id"] == team.ids["A"]


def test_a_service_agent_opens_customers_without_assigning_them(api, team):
    mobile = unique_mobile()
    refused = call(api, team.agent, "POST", "/customers",
                   json={"name": "赵磊", "mobile": mobile, "owner_id": team.ids["A"]})
    assert refused.status_code == 403
    assert found_by_mobile(api, team, mobile) == 0
    opened = ok(call(api, team.agent, "POST", "/customers",
                     json={"name": "赵磊", "mobile": mobile}), 201)
    assert opened["owner_id"] is None


# ---------------------------------------------------------------- no mass assignment

CUSTOMER_FIELDS = [("stage", "repeat"), ("points", 5000), ("member", {"tier": "gold",
                                                                       "points": 5000}),
                   ("value_tier", "key"), ("churn_risk", 0), ("leases_signed", 3),
                   ("merged_into", "someone"), ("erased", True), ("archived", True),
                   ("stage_entered_at", "2020-01-01T00:00:00+00:00"),
                   ("id", "chosen-id"), ("created_at", "2020-01-01T00:00:00+00:00")]


@pytest.mark.parametrize("field, value", CUSTOMER_FIELDS)
def test_a_new_customer_takes_no_field_its_creator_may_not_set(api, team, field, value):
    mobile = unique_mobile()
    for who in (team.A, team.S, team.admin):
        refused = call(api, who, "POST", "/customers",
                       json={"name": "王芳", "mobile": mobile, field: value})
        assert refused.status_code == 422, (field, refused.get_json())
        assert field in refused.get_json()["error"]["details"]
    assert found_by_mobile(api, team, mobile) == 0


@pytest.fixture(scope="module")
def own_customer(api, team):
    return ok(call(api, team.A, "POST", "/customers",
                   json={"name": "韩梅梅", "mobile": unique_mobile()}), 201)


@pytest.mark.parametrize("field, value", CUSTOMER_FIELDS)
def test_a_customer_change_takes_no_field_the_caller_may_not_set(api, team, own_customer,
                                                                  field, value):
    path = f"/customers/{own_customer['id']}"
    before = ok(call(api, team.admin, "GET", path))
    for who in (team.A, team.S, team.admin):
        refused = call(api, who, "PATCH", path, json={field: value, "email": "x@example.com"})
        assert refused.status_code == 422, (field, refused.get_json())
        assert field in refused.get_json()["error"]["details"]
    assert ok(call(api, team.admin, "GET", path)) == before


@pytest.fixture(scope="module")
def lease(api, team, own_customer):
    unit = ok(call(api, team.admin, "POST", "/units", json={
        "code": unique_tag("U"), "building": "锦江公寓 A 栋", "district": "锦江区",
        "layout": "1室1厅", "area_sqm": "45.50", "floor": 3, "monthly_rent": "3500.00"}), 201)
    start = date.today()
    return ok(call(api, team.A, "POST", "/leases", json={
        "customer_id": own_customer["id"], "unit_id": unit["id"],
        "start_date": start.isoformat(), "end_date": (start + timedelta(days=180)).isoformat(),
        "monthly_rent": "3500.00", "deposit": "3500.00", "payment_cycle": "monthly"}), 201)


@pytest.fixture(scope="module")
def ticket(api, team, own_customer):
    return ok(call(api, team.A, "POST", "/tickets", json={
        "customer_id": own_customer["id"], "type": "repair", "channel": "phone",
        "description": "空调不制冷"}), 201)


def _state(api, team, customer, lease):
    """What the sales and service-desk routes below could have changed."""
    customer_id = customer["id"]
    return {
        "opportunities": ok(call(api, team.admin, "GET", "/opportunities",
                                 query_string={"customer_id": customer_id}))["items"],
        "leases": ok(call(api, team.admin, "GET", "/leases",
                          query_string={"customer_id": customer_id}))["items"],
        "bills": ok(call(api, team.admin, "GET", "/bills",
                         query_string={"customer_id": customer_id, "per_page": 200}))["items"],
        "tickets": ok(call(api, team.admin, "GET", "/tickets",
                           query_string={"customer_id": customer_id}))["items"],
        "tasks": ok(call(api, team.admin, "GET", "/tasks",
                         query_string={"customer_id": customer_id}))["items"],
        "lease": ok(call(api, team.admin, "GET", f"/leases/{lease['id']}")),
    }


def _writes(customer, lease, ticket):
    """(route, a valid body, the fields a client may not set there)."""
    bill = lease["bills"][1]
    today = date.today()
    return [
        ("POST /opportunities", {"customer_id": customer["id"], "source": "website"},
         {"stage": "won", "probability": "0.90", "lease_id": lease["id"], "stagnant": True,
          "kind": "renewal", "plan_steps": []}),
        ("POST /leases", {"customer_id": customer["id"], "unit_id": lease["unit_id"],
                          "start_date": (today + timedelta(days=400)).isoformat(),
                          "end_date": (today + timedelta(days=500)).isoformat(),
                          "monthly_rent": "3500.00", "deposit": "3500.00",
                          "payment_cycle": "monthly"},
         {"status": "ended", "term_rent": "1.00", "bills": [], "renewed_from_id": lease["id"],
          "signed_at": now_iso()}),
        (f"POST /leases/{lease['id']}/renew",
         {"end_date": (today + timedelta(days=400)).isoformat(), "monthly_rent": "3600.00"},
         {"deposit": "0.00", "status": "active", "start_date": today.isoformat()}),
        (f"POST /leases/{lease['id']}/charges",
         {"kind": "utilities", "amount": "88.50", "due_date": today.isoformat(),
          "description": "水电费"},
         {"status": "paid", "paid": "88.50", "balance": "0.00", "lease_id": "other"}),
        ("POST /payments", {"bill_id": bill["id"], "amount": "1.00", "paid_at": now_iso(),
                            "method": "cash"},
         {"status": "paid", "balance": "0.00", "paid": bill["amount"]}),
        ("POST /tickets", {"customer_id": customer["id"], "type": "repair", "channel": "phone",
                           "description": "漏水"},
         {"status": "closed", "assignee_id": "someone", "sla": {}, "breached": False,
          "number": "T-1", "feedback": {"rating": 5}}),
        (f"POST /tickets/{ticket['id']}/status", {"status": "in_progress"},
         {"assignee_id": "someone", "breached": False}),
        ("POST /tasks", {"title": "回访", "due_at": now_iso(days=1)},
         {"status": "done", "urge_count": 0, "done_at": now_iso()}),
    ]


def test_no_sales_or_service_desk_route_takes_a_field_it_may_not(api, team, own_customer,
                                                                 lease, ticket):
    before = _state(api, team, own_customer, lease)
    for route, body, forbidden in _writes(own_customer, lease, ticket):
        method, path = route.split(" ", 1)
        for field, value in forbidden.items():
            for who in (team.A, team.admin):
                refused = call(api, who, method, path, json={**body, field: value})
                assert refused.status_code == 422, (route, field, refused.get_json())
                assert field in refused.get_json()["error"]["details"], (route, field)
    assert _state(api, team, own_customer, lease) == before
    after = ok(call(api, team.admin, "GET", f"/tickets/{ticket['id']}"))
    assert after["status"] == ticket["status"] and after["history"] == ticket["history"]


def test_staff_fields_are_the_admins_and_never_a_hash(api, team):
    body = {"username": unique_tag("hash"), "password": STAFF_PASSWORD,
            "display_name": "某人", "roles": ["customer_manager"]}
    for field, value in (("password_hash", "scrypt:32768:8:1$x$y"), ("token_version", 1),
                         ("active", False), ("id", "chosen")):
        refused = call(api, team.admin, "POST", "/staff", json={**body, field: value})
        assert refused.status_code == 422, field
        assert field in refused.get_json()["error"]["details"]
    created = ok(call(api, team.admin, "POST", "/staff", json=body), 201)
    for field, value in (("password_hash", "x"), ("token_version", 0), ("username", "other")):
        refused = call(api, team.admin, "PATCH", f"/staff/{created['id']}", json={field: value})
        assert refused.status_code == 422, field
        assert field in refused.get_json()["error"]["details"]


# ---------------------------------------------------------------- no password hashes out

HASH_LIKE = re.compile(r"scrypt|pbkdf2|argon|bcrypt|\$[0-9a-z]+\$|[0-9a-f]{40,}", re.I)


def _stored_hash(api, staff_id):
    sessions = api.app.extensions["crm_gateway"]["sessions"]
    with sessions() as session:
        return session.scalar(select(Staff.password_hash).where(Staff.id == staff_id))


def test_staff_answers_never_carry_a_password_hash(api, team):
    username = unique_tag("nohash")
    created = call(api, team.admin, "POST", "/staff", json={
        "username": username, "password": STAFF_PASSWORD, "display_name": "某人",
        "roles": ["customer_manager"], "supervisor_id": team.ids["S"]})
    staff_id = created.get_json()["id"]
    token = api.token(username, STAFF_PASSWORD)
    answers = [
        created,
        call(api, team.admin, "GET", f"/staff/{staff_id}"),
        call(api, team.S, "GET", "/staff", query_string={"q": username}),
        call(api, team.admin, "PATCH", f"/staff/{staff_id}",
             json={"password": "another-password-2", "display_name": "某人甲"}),
        call(api, team.admin, "PATCH", f"/staff/{staff_id}", json={"district": "锦江区"}),
        call(api, api.token(username, "another-password-2"), "GET", "/me"),
        call(api, team.admin, "GET", "/me"),
    ]
    stored = _stored_hash(api, staff_id)
    assert stored and HASH_LIKE.search(stored)  # what must not leak does look like this
    for response in answers:
        assert response.status_code in (200, 201), response.get_json()
        text = response.get_data(as_text=True)
        assert stored not in text and "password" not in text
        assert not HASH_LIKE.search(text), text
    assert call(api, token, "GET", "/me").status_code == 401  # the old password's token


# ---------------------------------------------------------------- masking

@pytest.fixture(scope="module")
def personal(api, team):
    """A's person with an ID number and a twin sharing it; A's company with a contact."""
    id_number = resident_id()
    mobile, twin_mobile, contact_mobile = unique_mobile(), unique_mobile(), unique_mobile()
    tag = unique_tag("mask")
    person = ok(call(api, team.A, "POST", "/customers", json={
        "name": "张伟", "mobile": mobile, "id_number": id_number, "tags": [tag]}), 201)
    twin = ok(call(api, team.A, "POST", "/customers", json={
        "name": "张伟", "mobile": twin_mobile, "id_number": id_number, "tags": [tag]}), 201)
    company = ok(call(api, team.A, "POST", "/customers", json={
        "kind": "company", "name": "天府科技", "mobile": unique_mobile(), "tags": [tag],
        "contacts": [{"name": "李经理", "mobile": contact_mobile, "is_primary": True}]}), 201)
    return SimpleNamespace(person=person, twin=twin, company=company, tag=tag,
                           secrets=[id_number, mobile, twin_mobile, contact_mobile],
                           id_number=id_number, mobile=mobile, contact_mobile=contact_mobile)


def _customer_answers(api, token, personal, with_export):
    person = personal.person["id"]
    answers = {
        "list": call(api, token, "GET", "/customers", query_string={"tag": personal.tag}),
        "record": call(api, token, "GET", f"/customers/{person}"),
        "company": call(api, token, "GET", f"/customers/{personal.company['id']}"),
        "360": call(api, token, "GET", f"/customers/{person}/360"),
    }
    if with_export:
        answers["export"] = call(api, token, "GET", "/customers/export",
                                 query_string={"tag": personal.tag})
        answers["duplicates"] = call(api, token, "GET", f"/customers/{person}/duplicates")
    return answers


@pytest.mark.parametrize("role, with_export", [("executive", True), ("marketer", False),
                                               ("admin", True)])
def test_personal_data_is_masked_on_every_route_for_whom_may_not_see_it(api, team, personal,
                                                                        role, with_export):
    token = team.admin if role == "admin" else api.role_token(role)
    answers = _customer_answers(api, token, personal, with_export)
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.get_data(as_text=True)[:300])
        text = response.get_data(as_text=True)
        for secret in personal.secrets:
            assert secret not in text, (role, name)
    assert answers["record"].get_json()["mobile"] == masked_mobile(personal.mobile)
    assert answers["record"].get_json()["id_number"] == masked_id_number(personal.id_number)
    assert answers["company"].get_json()["contacts"][0]["mobile"] == masked_mobile(
        personal.contact_mobile)
    assert answers["360"].get_json()["profile"]["id_number"] == masked_id_number(
        personal.id_number)
    listed = {c["id"]: c for c in answers["list"].get_json()["items"]}
    assert listed[personal.person["id"]]["mobile"] == masked_mobile(personal.mobile)
    if with_export:
        rows = {row["id"]: row for row in csv.DictReader(io.StringIO(
            answers["export"].get_data(as_text=True).removeprefix("\ufeff")))}
        assert rows[personal.person["id"]]["mobile"] == masked_mobile(personal.mobile)
        assert rows[personal.person["id"]]["id_number"] == masked_id_number(personal.id_number)
        [duplicate] = answers["duplicates"].get_json()
        assert duplicate["customer"]["id"] == personal.twin["id"]
        assert duplicate["customer"]["id_number"] == masked_id_number(personal.id_number)


def test_the_owner_and_her_supervisor_see_them_in_full(api, team, personal):
    for token, with_export in ((team.A, False), (team.S, True)):
        answers = _customer_answers(api, token, personal, with_export)
        assert all(response.status_code == 200 for response in answers.values())
        assert answers["record"].get_json()["id_number"] == personal.id_number
        assert answers["record"].get_json()["mobile"] == personal.mobile
        assert answers["company"].get_json()["contacts"][0]["mobile"] == personal.contact_mobile
