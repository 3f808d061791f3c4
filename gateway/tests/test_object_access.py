"""Object-level access (OWASP API1, ``crm_gateway.scopes``) in front of the REAL customer, sales,
service-desk and marketing services on the real broker — no stubs.

The people: customer managers A and B in supervisor S's team, supervisor T with customer
manager C in hers, an executive X and the admin. The customers: A's, B's, C's and one with no
owner (U). A's and B's customers each have an interaction, an opportunity with a viewing, a
lease with its bills, a ticket, a task of their manager and a campaign response; every customer
got the module's campaign message.

What must hold: A reaches only A's records (B's answer 404 exactly as records that do not
exist, lists leave them out, writes on them are refused and change nothing — read back as the
admin); S reaches A's, B's and U; T neither A's nor B's (her own team's and U); the executive
and the admin read everything.

The services run for this module on its own RabbitMQ vhost (as the other route modules do).
"""
import json
import os
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from crm_kit.testing import ServiceProcess, wait_until
from gateway_support import (module_vhost, CUSTOMER_SPEC, STAFF_PASSWORD, Api, make_app, rpc_calls_served,
                             unique_mobile, unique_tag)

SALES_SPEC = "sales_service.service:SalesService"
SERVICE_DESK_SPEC = "service_desk_service.service:ServiceDeskService"
MARKETING_SPEC = "marketing_service.service:MarketingService"
SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
API = "/api/v1"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def access_uri(vhost):
    yield from module_vhost(vhost, "object-access")


@pytest.fixture(scope="module")
def services(access_uri, tmp_path_factory):
    """The real customer, sales, service-desk and marketing services (marketing dispatches
    every 0.2 s), as ``make up`` starts them."""
    data_dir = tmp_path_factory.mktemp("object-access-services")
    python_path = os.pathsep.join(filter(None, (
        str(SERVICES_DIR / "service-desk"), str(SERVICES_DIR / "marketing"),
        os.environ.get("PYTHONPATH"))))
    started = {}
    try:
        for name, spec, env in (
                ("customer", CUSTOMER_SPEC, {}), ("sales", SALES_SPEC, {}),
                ("service_desk", SERVICE_DESK_SPEC, {"PYTHONPATH": python_path}),
                ("marketing", MARKETING_SPEC, {"PYTHONPATH": python_path,
                                               "CRM_MARKETING_DISPATCH_SECONDS": "0.2"})):
            url = f"sqlite:///{data_dir / (name + '.db')}"
            service = ServiceProcess(spec, access_uri, url, data_dir, name=name, env=env)
            service.database_url = url
            started[name] = service.start()
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


@pytest.fixture(scope="module")
def api(services, access_uri, tmp_path_factory):
    return Api(make_app(tmp_path_factory.mktemp("object-access-gateway"), access_uri,
                        RPC_TIMEOUT=5))


# ---------------------------------------------------------------- helpers

def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def now_iso(**delta):
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


class People:
    """Staff by letter, with their tokens."""

    def __init__(self, api):
        self.api = api
        self.ids = {"admin": None}
        self.tokens = {"admin": api.admin_token()}

    def add(self, key, roles, **fields):
        record = self.api.create_staff(unique_tag(f"access-{key.lower()}"), roles, **fields)
        self.ids[key] = record["id"]
        self.tokens[key] = self.api.token(record["username"], STAFF_PASSWORD)
        return record["id"]

    def call(self, who, method, path, **kwargs):
        return self.api.request(method, f"{API}{path}", token=self.tokens[who], **kwargs)

    def get(self, who, path, status=200, **query):
        return ok(self.call(who, "GET", path, query_string=query), status)

    def post(self, who, path, body=None, status=201):
        return ok(self.call(who, "POST", path, json=body or {}), status)


def _unit(people, code_prefix="U"):
    return people.post("admin", "/units", {
        "code": unique_tag(code_prefix), "building": "锦江公寓 A 栋", "district": "锦江区",
        "layout": "1室1厅", "area_sqm": "45.50", "floor": 9, "monthly_rent": "3500.00"})


def lease_body(customer_id, unit_id, **fields):
    start = date.today()
    return {"customer_id": customer_id, "unit_id": unit_id, "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": "3500.00",
            "deposit": "3500.00", "payment_cycle": "monthly", **fields}


@pytest.fixture(scope="module")
def world(api):
    people = People(api)
    people.add("S", ["sales_supervisor"])
    people.add("A", ["customer_manager"], supervisor_id=people.ids["S"])
    people.add("B", ["customer_manager"], supervisor_id=people.ids["S"])
    people.add("T", ["sales_supervisor"])
    people.add("C", ["customer_manager"], supervisor_id=people.ids["T"])
    people.add("X", ["executive"])
    people.add("agent", ["service_agent"])
    tag = unique_tag("access")

    records, mobiles = {}, {}  # (the admin sees mobiles masked: keep them)
    for key, owner in (("a", "A"), ("b", "B"), ("c", "C"), ("u", None)):
        body = {"name": f"客户{key.upper()}", "mobile": unique_mobile(), "tags": [tag],
                "consent": {"sms": True}}
        if owner:
            body["owner_id"] = people.ids[owner]
        records[key] = {"customer": people.post("admin", "/customers", body)}
        mobiles[key] = body["mobile"]

    for key in ("a", "b"):
        mine = records[key]
        customer_id = mine["customer"]["id"]
        owner_id = mine["customer"]["owner_id"]
        people.post("admin", f"/customers/{customer_id}/interactions",
                    {"channel": "phone", "summary": "问两室一厅"})
        mine["opportunity"] = people.post("admin", "/opportunities", {
            "customer_id": customer_id, "source": "website", "expected_value": "12000.00"})
        assert mine["opportunity"]["owner_id"] == owner_id  # the customer's owner
        mine["viewing"] = people.post("admin", "/viewings", {
            "opportunity_id": mine["opportunity"]["id"], "unit_id": _unit(people)["id"],
            "scheduled_at": now_iso(days=2), "staff_id": owner_id})
        mine["lease"] = people.post("admin", "/leases",
                                    lease_body(customer_id, _unit(people)["id"]))
        mine["bill"] = mine["lease"]["bills"][0]
        mine["ticket"] = people.post("admin", "/tickets", {
            "customer_id": customer_id, "type": "repair", "channel": "phone",
            "description": "卫生间水龙头漏水"})
        mine["task"] = people.post("admin", "/tasks", {
            "owner_id": owner_id, "title": "回访", "due_at": now_iso(days=1),
            "customer_id": customer_id})

    # the campaign: every customer of the module gets its message
    segment = people.post("admin", "/segments", {"name": unique_tag("细分"),
                                                  "rules": {"tags": [tag]}})
    wait_until(lambda: people.get("admin", f"/segments/{segment['id']}/preview")["total"] == 4,
               timeout=15, interval=0.1, message="marketing to know the customers")
    campaign = people.post("admin", "/campaigns", {
        "name": unique_tag("活动"), "segment_id": segment["id"], "channel": "sms",
        "template": "{name}您好，新房源上线"})
    people.post("admin", f"/campaigns/{campaign['id']}/launch", status=202)

    def sent():
        items = people.get("admin", "/messages", campaign_id=campaign["id"])["items"]
        return items if len(items) == 4 else None

    for message in wait_until(sent, timeout=15, interval=0.1, message="the campaign's messages"):
        key = next(k for k, r in records.items() if r["customer"]["id"] == message["customer_id"])
        records[key]["message"] = message
    for key in ("a", "b"):
        records[key]["response"] = people.post(
            "admin", f"/campaigns/{campaign['id']}/responses",
            {"customer_id": records[key]["customer"]["id"], "response": "想看房"})
    return SimpleNamespace(people=people, records=records, mobiles=mobiles, tag=tag,
                           campaign=campaign)


#: whose customers each caller reaches
REACHES = {"A": {"a"}, "B": {"b"}, "S": {"a", "b", "u"}, "T": {"c", "u"},
           "X": {"a", "b", "c", "u"}, "admin": {"a", "b", "c", "u"}}

DETAIL_ROUTES = [
    ("/customers/{customer}", "customer"),
    ("/customers/{customer}/360", "customer"),
    ("/customers/{customer}/interactions", "customer"),
    ("/customers/{customer}/stage-history", "customer"),
    ("/customers/{customer}/duplicates", "customer"),
    ("/analytics/customers/{customer}/scores", "customer"),
    ("/opportunities/{opportunity}", "opportunity"),
    ("/leases/{lease}", "lease"),
    ("/leases/{lease}/bills", "lease"),
    ("/bills/{bill}", "bill"),
    ("/tickets/{ticket}", "ticket"),
    ("/messages/{message}", "message"),
]


def _path(template, records):
    return template.format(**{kind: record["id"] for kind, record in records.items()})


def _not_found_as_unknown(people, who, template, kind, records):
    """The 404 of an out-of-reach record, equal to the 404 of an id that names nothing."""
    path = _path(template, records)
    refused = people.call(who, "GET", path)
    assert refused.status_code == 404, (who, path, refused.get_json())
    unknown_id = str(uuid.uuid4())
    unknown = people.call(who, "GET", _path(template, {**records, kind: {"id": unknown_id}}))
    assert unknown.status_code == 404
    expected = json.loads(json.dumps(unknown.get_json()).replace(unknown_id,
                                                                 records[kind]["id"]))
    assert refused.get_json() == expected


# ---------------------------------------------------------------- reading one record

@pytest.mark.parametrize("template, kind", DETAIL_ROUTES)
@pytest.mark.parametrize("who", sorted(REACHES))
def test_a_record_is_read_only_by_who_reaches_its_customer(world, who, template, kind):
    for key in ("a", "b"):
        records = {name: record for name, record in world.records[key].items()
                   if isinstance(record, dict)}
        if key in REACHES[who]:
            response = world.people.call(who, "GET", _path(template, records))
            # analytics does not run here: whoever may read the scores reaches the service
            expected = 503 if "/analytics/" in template else 200
            assert response.status_code == expected, (who, key, template, response.get_json())
        else:
            _not_found_as_unknown(world.people, who, template, kind, records)


def test_an_opportunity_is_reached_through_its_own_owner_too(world):
    """A's opportunity on B's customer: A reads it and lists it; B's customer stays hidden."""
    people, b = world.people, world.records["b"]
    mine = people.post("admin", "/opportunities", {"customer_id": b["customer"]["id"],
                                                   "source": "referral",
                                                   "owner_id": people.ids["A"]})
    assert people.get("A", f"/opportunities/{mine['id']}")["id"] == mine["id"]
    listed = {o["id"] for o in people.get("A", "/opportunities", per_page=200)["items"]}
    assert mine["id"] in listed and b["opportunity"]["id"] not in listed
    assert people.call("A", "GET", f"/customers/{b['customer']['id']}").status_code == 404
    assert people.call("T", "GET", f"/opportunities/{mine['id']}").status_code == 404


# ---------------------------------------------------------------- lists

LISTS = [
    ("/customers", "customer"),
    ("/opportunities", "opportunity"),
    ("/viewings", "viewing"),
    ("/leases", "lease"),
    ("/bills", "bill"),
    ("/tickets", "ticket"),
    ("/tasks", "task"),
    ("/messages", "message"),
    ("/campaigns/{campaign}/responses", "response"),
]


@pytest.mark.parametrize("path, kind", LISTS)
@pytest.mark.parametrize("who", sorted(REACHES))
def test_lists_hold_only_what_the_caller_reaches(world, who, path, kind):
    query = {"per_page": 200}
    if kind == "customer":
        query["tag"] = world.tag
    if kind == "message":
        query["campaign_id"] = world.campaign["id"]
    page = world.people.get(who, path.format(campaign=world.campaign["id"]), **query)
    ours = {key: record[kind]["id"] for key, record in world.records.items() if kind in record}
    listed = {item["id"] for item in page["items"]} & set(ours.values())
    assert listed == {ours[key] for key in REACHES[who] if key in ours}, (who, kind)


@pytest.mark.parametrize("path", ["/leases", "/bills", "/tickets", "/opportunities", "/viewings",
                                  "/messages", "/tasks"])
def test_asking_for_another_managers_customer_finds_nothing(world, path):
    b = world.records["b"]["customer"]
    page = world.people.get("A", path, customer_id=b["id"])
    if path == "/opportunities":  # only those A owns (test_an_opportunity_is_reached_…)
        assert {o["owner_id"] for o in page["items"]} <= {world.people.ids["A"]}
    else:
        assert (page["items"], page["total"]) == ([], 0)
    assert world.people.get("S", path, customer_id=b["id"])["total"] >= 1


def test_asking_for_another_owner_finds_nothing(world):
    people = world.people
    for path in ("/customers", "/leases", "/bills", "/tasks", "/opportunities"):
        page = people.get("A", path, owner_id=people.ids["B"])
        assert page["total"] == 0, path
    forecast = people.get("A", "/opportunities/forecast")
    assert {row["owner_id"] for row in forecast["by_owner"]} <= {people.ids["A"]}
    forecast = people.get("S", "/opportunities/forecast")
    assert {row["owner_id"] for row in forecast["by_owner"]} == {people.ids["A"],
                                                                 people.ids["B"]}


def test_the_export_holds_only_the_supervisors_customers(world):
    people = world.people
    for who in ("S", "T", "X"):
        response = people.call(who, "GET", "/customers/export", query_string={"tag": world.tag})
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        shown = {key for key, record in world.records.items()
                 if record["customer"]["id"] in text}
        assert shown == REACHES[who], who


# ---------------------------------------------------------------- writes on another's records

def _read_back(people, b):
    """B's records as the admin reads them (to show a refused write changed nothing)."""
    customer_id = b["customer"]["id"]
    return {
        "customer": people.get("admin", f"/customers/{customer_id}"),
        "interactions": people.get("admin", f"/customers/{customer_id}/interactions")["total"],
        "opportunity": people.get("admin", f"/opportunities/{b['opportunity']['id']}"),
        "viewing": people.get("admin", "/viewings",
                              opportunity_id=b["opportunity"]["id"])["items"],
        "lease": people.get("admin", f"/leases/{b['lease']['id']}"),
        "bill": people.get("admin", f"/bills/{b['bill']['id']}"),
        "ticket": people.get("admin", f"/tickets/{b['ticket']['id']}"),
        "tasks": people.get("admin", "/tasks", customer_id=customer_id)["items"],
        "leases": people.get("admin", "/leases", customer_id=customer_id)["total"],
        "tickets": people.get("admin", "/tickets", customer_id=customer_id)["total"],
        "opportunities": people.get("admin", "/opportunities",
                                    customer_id=customer_id)["total"],
    }


def _writes_on(b, tag):
    customer = b["customer"]["id"]
    return [
        ("PATCH", f"/customers/{customer}", {"email": "taken-over@example.com"}),
        ("POST", f"/customers/{customer}/interactions", {"channel": "phone", "summary": "x"}),
        ("POST", f"/customers/{customer}/tags", {"tags": ["抢客户"]}),
        ("DELETE", f"/customers/{customer}/tags/{tag}", None),
        ("POST", f"/customers/{customer}/stage", {"stage": "intent", "reason": "x"}),
        ("POST", f"/customers/{customer}/churn-decision",
         {"decision": "keep_trying", "reason": "x"}),
        ("POST", f"/opportunities/{b['opportunity']['id']}/stage",
         {"stage": "contacted", "reason": "x"}),
        ("POST", f"/opportunities/{b['opportunity']['id']}/plan-steps",
         {"title": "x", "due_date": date.today().isoformat()}),
        ("PATCH", f"/viewings/{b['viewing']['id']}", {"result": "interested", "outcome": "x"}),
        ("POST", f"/leases/{b['lease']['id']}/renew",
         {"end_date": (date.today() + timedelta(days=800)).isoformat(),
          "monthly_rent": "1.00"}),
        ("POST", f"/leases/{b['lease']['id']}/terminate",
         {"date": (date.today() + timedelta(days=10)).isoformat(), "reason": "x"}),
        ("POST", f"/leases/{b['lease']['id']}/charges",
         {"kind": "other", "amount": "9.99", "due_date": date.today().isoformat(),
          "description": "x"}),
        ("POST", f"/tickets/{b['ticket']['id']}/status", {"status": "in_progress"}),
        ("POST", f"/tickets/{b['ticket']['id']}/comments", {"body": "x"}),
        ("POST", f"/tickets/{b['ticket']['id']}/feedback", {"rating": 1}),
        ("POST", f"/tasks/{b['task']['id']}/done", {"result": "x"}),
    ]


def _supervisor_writes_on(b, a, staff_id):
    customer = b["customer"]["id"]
    return [
        ("DELETE", f"/customers/{customer}", None),
        ("POST", f"/customers/{customer}/points", {"delta": 100, "reason": "x"}),
        ("POST", f"/customers/{customer}/merge", {"duplicate_id": a["customer"]["id"]}),
        ("POST", f"/customers/{a['customer']['id']}/merge", {"duplicate_id": customer}),
        ("POST", f"/opportunities/{b['opportunity']['id']}/assign", {"owner_id": staff_id}),
        ("POST", f"/leases/{b['lease']['id']}/deposit-refund", {}),
        ("POST", f"/tickets/{b['ticket']['id']}/assign", {"assignee_id": staff_id}),
        ("POST", f"/tickets/{b['ticket']['id']}/reopen", {"reason": "x"}),
        ("POST", f"/tickets/{b['ticket']['id']}/appointment", {"scheduled_at": now_iso(days=3)}),
        ("POST", f"/tickets/{b['ticket']['id']}/to-article", {}),
        ("POST", f"/tasks/{b['task']['id']}/urge", None),
    ]


def test_a_manager_changes_nothing_of_another_managers_records(world):
    people, b = world.people, world.records["b"]
    before = _read_back(people, b)
    for method, path, body in _writes_on(b, world.tag):
        kwargs = {"json": body} if body is not None else {}
        response = people.call("A", method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.get_json())
        assert response.get_json()["error"]["code"] == "not_found"
    assert _read_back(people, b) == before


def test_a_supervisor_changes_nothing_of_another_team(world):
    people, a, b = world.people, world.records["a"], world.records["b"]
    before = _read_back(people, b), _read_back(people, a)
    writes = _writes_on(b, world.tag) + _supervisor_writes_on(b, a, people.ids["C"])
    for method, path, body in writes:
        if path.endswith("/feedback"):
            continue  # a supervisor records no feedback at all (permissions.ROUTES)
        kwargs = {"json": body} if body is not None else {}
        response = people.call("T", method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.get_json())
    assert (_read_back(people, b), _read_back(people, a)) == before


def _same_as_unknown(people, who, method, path, body, field, real_id):
    """The answer to ``body`` equals the answer with an id that names nothing in ``field``."""
    refused = people.call(who, method, path, json=body)
    unknown_id = str(uuid.uuid4())
    unknown = people.call(who, method, path, json={**body, field: unknown_id})
    assert refused.status_code == unknown.status_code, (path, refused.get_json(),
                                                        unknown.get_json())
    assert refused.status_code in (404, 422), (path, refused.get_json())
    expected = json.loads(json.dumps(unknown.get_json()).replace(unknown_id, real_id))
    assert refused.get_json() == expected, path
    return refused.get_json()


def test_a_write_naming_another_managers_record_is_answered_as_for_an_unknown_one(world):
    people, b = world.people, world.records["b"]
    customer = b["customer"]["id"]
    unit = _unit(people)
    before = _read_back(people, b)
    cases = [
        ("/leases", lease_body(customer, unit["id"]), "customer_id", customer),
        # other bad fields too: the same fields are named as for an unknown customer
        ("/leases", lease_body(customer, unit["id"], monthly_rent="0.00",
                               payment_cycle="weekly"), "customer_id", customer),
        ("/leases", lease_body(world.records["a"]["customer"]["id"], unit["id"],
                               opportunity_id=b["opportunity"]["id"]),
         "opportunity_id", b["opportunity"]["id"]),
        ("/tickets", {"customer_id": customer, "type": "repair", "channel": "phone",
                      "description": "漏水"}, "customer_id", customer),
        ("/tickets", {"customer_id": world.records["a"]["customer"]["id"], "type": "repair",
                      "channel": "phone", "description": "漏水", "lease_id": b["lease"]["id"]},
         "lease_id", b["lease"]["id"]),
        ("/opportunities", {"customer_id": customer, "source": "website"}, "customer_id",
         customer),
        ("/tasks", {"title": "回访", "due_at": now_iso(days=1), "customer_id": customer},
         "customer_id", customer),
        ("/tasks", {"title": "回访", "due_at": now_iso(days=1),
                    "opportunity_id": b["opportunity"]["id"]},
         "opportunity_id", b["opportunity"]["id"]),
        ("/viewings", {"opportunity_id": b["opportunity"]["id"], "unit_id": unit["id"],
                       "scheduled_at": now_iso(days=5)}, "opportunity_id",
         b["opportunity"]["id"]),
        ("/payments", {"bill_id": b["bill"]["id"], "amount": "1.00", "paid_at": now_iso(),
                       "method": "cash"}, "bill_id", b["bill"]["id"]),
        (f"/campaigns/{world.campaign['id']}/responses",
         {"customer_id": customer, "response": "想看房"}, "customer_id", customer),
    ]
    for path, body, field, real_id in cases:
        _same_as_unknown(people, "A", "POST", path, body, field, real_id)
    assert _read_back(people, b) == before
    assert people.get("admin", f"/units/{unit['id']}")["status"] == "vacant"
    responses = people.get("admin", f"/campaigns/{world.campaign['id']}/responses")
    assert responses["total"] == 2  # the two of the setup, nothing more


def test_the_same_writes_work_on_the_managers_own_records(world):
    """The control: what A may not do to B's customer, A does to A's own."""
    people, a = world.people, world.records["a"]
    customer = a["customer"]["id"]
    changed = ok(people.call("A", "PATCH", f"/customers/{customer}",
                             json={"email": "a-own@example.com"}))
    assert changed["email"] == "a-own@example.com"
    ok(people.call("A", "POST", f"/customers/{customer}/interactions",
                   json={"channel": "phone", "summary": "回访"}), 201)
    ticket = ok(people.call("A", "POST", "/tickets", json={
        "customer_id": customer, "type": "consultation", "channel": "phone",
        "description": "怎么交水费"}), 201)
    assert ticket["customer_id"] == customer
    task = ok(people.call("A", "POST", "/tasks", json={
        "title": "回访", "due_at": now_iso(days=1), "customer_id": customer}), 201)
    assert ok(people.call("A", "POST", f"/tasks/{task['id']}/done", json={}))["status"] == "done"
    assert people.get("S", f"/tickets/{ticket['id']}")["id"] == ticket["id"]
    assert people.call("B", "GET", f"/tickets/{ticket['id']}").status_code == 404


# ---------------------------------------------------------------- the team and what follows

def test_duplicates_show_only_the_callers_customers(world):
    people = world.people
    mobile_a, mobile_b = unique_mobile(), unique_mobile()
    email = f"{unique_tag('dup')}@example.com"
    mine = people.post("admin", "/customers", {"name": "重复甲", "mobile": mobile_a,
                                               "email": email, "owner_id": people.ids["A"]})
    theirs = people.post("admin", "/customers", {"name": "重复乙", "mobile": mobile_b,
                                                 "email": email, "owner_id": people.ids["B"]})
    assert people.get("A", f"/customers/{mine['id']}/duplicates") == []
    [found] = people.get("S", f"/customers/{mine['id']}/duplicates")
    assert found["customer"]["id"] == theirs["id"]
    [found] = people.get("X", f"/customers/{mine['id']}/duplicates")
    assert found["customer"]["id"] == theirs["id"]


def test_a_supervisor_hands_over_only_her_teams_customers(world):
    people, a = world.people, world.records["a"]
    refused = people.call("T", "POST", "/customers/handover", json={
        "from_owner_id": people.ids["A"], "to_owner_id": people.ids["C"], "reason": "抢客户"})
    assert refused.status_code == 403
    assert set(refused.get_json()["error"]["details"]) == {"from_owner_id"}
    assert people.get("admin", f"/customers/{a['customer']['id']}")["owner_id"] == people.ids["A"]


def test_a_supervisor_hands_out_customers_without_an_owner(world):
    people = world.people
    lead = people.post("admin", "/customers", {"name": "新线索", "mobile": unique_mobile()})
    assert people.get("S", f"/customers/{lead['id']}")["owner_id"] is None
    assert people.call("A", "GET", f"/customers/{lead['id']}").status_code == 404
    given = ok(people.call("S", "PATCH", f"/customers/{lead['id']}",
                           json={"owner_id": people.ids["A"]}))
    assert given["owner_id"] == people.ids["A"]
    assert people.get("A", f"/customers/{lead['id']}")["id"] == lead["id"]
    assert people.call("T", "GET", f"/customers/{lead['id']}").status_code == 404


def test_an_import_does_not_touch_another_teams_customers(world):
    people, b = world.people, world.records["b"]
    mobile = world.mobiles["b"]
    csv_text = f"name,mobile,email\n改名,{mobile},stolen@example.com\n"
    response = people.call("T", "POST", "/customers/import", data=csv_text.encode(),
                           content_type="text/csv")
    result = ok(response)
    assert (result["created"], result["updated"]) == (0, 0)
    assert result["errors"] == [{"row": 2, "message": "mobile: belongs to a customer outside "
                                                      "your team"}]
    after = people.get("admin", f"/customers/{b['customer']['id']}")
    assert (after["name"], after["email"]) == (b["customer"]["name"], b["customer"]["email"])
    # her own supervisor imports it
    result = ok(people.call("S", "POST", "/customers/import",
                            data=f"name,mobile\n{b['customer']['name']},{mobile}\n".encode(),
                            content_type="text/csv"))
    assert (result["updated"], result["errors"]) == (1, []), result


def test_the_executive_reads_everything_and_changes_nothing(world):
    people, b = world.people, world.records["b"]
    for path in (f"/customers/{b['customer']['id']}", f"/leases/{b['lease']['id']}",
                 f"/tickets/{b['ticket']['id']}", f"/opportunities/{b['opportunity']['id']}"):
        people.get("X", path)
    refused = people.call("X", "PATCH", f"/customers/{b['customer']['id']}",
                          json={"email": "x@example.com"})
    assert refused.status_code == 403


def test_unlimited_callers_pay_no_extra_rpc(world, services):
    """A lease read by the admin or a service agent is one RPC to sales, none to the customer
    service; by a customer manager, its customer is looked up once."""
    people, a = world.people, world.records["a"]
    customer_calls = lambda: rpc_calls_served(services["customer"])  # noqa: E731
    for who in ("admin", "agent", "X"):
        before = customer_calls()
        people.get(who, f"/leases/{a['lease']['id']}")
        assert customer_calls() == before, who
    before = customer_calls()
    people.get("A", f"/leases/{a['lease']['id']}")
    assert customer_calls() == before + 1


def test_alerts_of_another_owner_are_not_acknowledged(world, services):
    """A stagnation alert of B's customer: A cannot acknowledge it (as if there were none),
    B can."""
    from crm_kit.rpc_client import RpcClient
    from gateway_support import move_stage_entry_back

    people = world.people
    stuck = people.post("admin", "/customers", {"name": "停滞", "mobile": unique_mobile(),
                                                "owner_id": people.ids["B"]})
    move_stage_entry_back(services["customer"].database_url, stuck["id"], 400)
    with RpcClient(services["customer"].env["CRM_AMQP_URI"], timeout=10,
                   client_name="object-access-tests") as client:
        alerts = client.call("customer", "scan_stagnation")
    [alert] = [a for a in alerts if a["customer_id"] == stuck["id"]]
    alert_id = str(alert["id"])
    refused = people.call("A", "POST", f"/customer-alerts/{alert_id}/ack")
    assert refused.status_code == 404
    assert refused.get_json()["error"]["details"] == {"alert_id": alert_id}
    assert ok(people.call("B", "POST", f"/customer-alerts/{alert_id}/ack"))["status"] \
        == "acknowledged"
