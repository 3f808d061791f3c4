"""Marketing routes (segments, campaigns and their responses, care rules, the delivery log and
its receipts) in front of the REAL customer, sales and marketing services on the real broker —
no stubs.

The three services run for this module (``crm_kit.testing.ServiceProcess``, SQLite in a
temporary folder) on the module's own RabbitMQ vhost, a child of the session's (``vhost`` of
``crm_kit.pytest_plugin``), removed afterwards — as ``test_leasing_routes.py`` and
``test_service_desk_routes.py`` do, for the same reasons (other suites' durable queues; the 360
stand-in of marketing in ``other_services.py`` on the gateway tests' vhost). Marketing keeps its
own copy of the customers from the customer service's events, so it runs before any customer
of this module is created.

E-mail goes to a delivery provider's relay (``CRM_MARKETING_WEBHOOK_URL``): a real HTTP server
of this module that takes every message (``provider``), as an SMS or e-mail provider would;
its receipts come back through ``POST /messages/{id}/receipts``, as the provider's
integration would post them with a marketer account. The other channels stay on the service's
log channel (delivered when written).

Tests share the services, never data: each makes its own customers (unique mobiles) under a
tag of its own, so each segment reaches only that test's customers, and reads back only those.
"""
import json
import os
import threading
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crm_kit.testing import ServiceProcess, wait_until
from gateway_support import (module_vhost, CUSTOMER_SPEC, Api, make_app, masked_mobile, rpc_calls_served,
                             unique_tag)

SALES_SPEC = "sales_service.service:SalesService"
MARKETING_SPEC = "marketing_service.service:MarketingService"
MARKETING_DIR = Path(__file__).resolve().parents[2] / "services" / "marketing"
API = "/api/v1"
TEMPLATE = "{name}您好，锦江区新房源上线，回复1预约看房"


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def marketing_uri(vhost):
    yield from module_vhost(vhost, "marketing")


class Provider:
    """A delivery provider's relay: a real HTTP server that takes every message POSTed to it
    (answering 202, i.e. sent; delivery is confirmed later by a receipt)."""

    def __init__(self):
        self.received = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def message(self, message_id):
        return next((m for m in list(self.received) if m["message_id"] == message_id), None)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def provider():
    relay = Provider()
    yield relay
    relay.close()


def _python_path():
    """The marketing package, importable whether or not it is installed into the venv."""
    return os.pathsep.join(filter(None, (str(MARKETING_DIR), os.environ.get("PYTHONPATH"))))


@pytest.fixture(scope="module")
def services(marketing_uri, provider, tmp_path_factory):
    """The real customer, sales and marketing services, as ``make up`` starts them; marketing
    dispatches every 0.2 s (not every second) and sends e-mail to the provider's relay."""
    data_dir = tmp_path_factory.mktemp("marketing-services")
    marketing_env = {"PYTHONPATH": _python_path(), "CRM_MARKETING_DISPATCH_SECONDS": "0.2",
                     "CRM_MARKETING_WEBHOOK_URL": provider.url,
                     "CRM_MARKETING_WEBHOOK_CHANNELS": "email"}
    started = {}
    try:
        for name, spec, env in (("customer", CUSTOMER_SPEC, None), ("sales", SALES_SPEC, None),
                                ("marketing", MARKETING_SPEC, marketing_env)):
            url = f"sqlite:///{data_dir / (name + '.db')}"
            service = ServiceProcess(spec, marketing_uri, url, data_dir, name=name, env=env)
            service.database_url = url
            started[name] = service.start()
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


@pytest.fixture(scope="module")
def api(services, marketing_uri, tmp_path_factory):
    """One gateway for the module (role tokens are costly: scrypt), with the deployed RPC
    timeout."""
    return Api(make_app(tmp_path_factory.mktemp("marketing-gateway"), marketing_uri,
                        RPC_TIMEOUT=5))


@pytest.fixture
def marketing_calls(services):
    """``marketing_calls()``: RPCs the marketing service has run so far."""
    return lambda: rpc_calls_served(services["marketing"])


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


def get(api, path, role="marketer", **query):
    return ok(api.request("GET", f"{API}{path}", role=role, query_string=query))


def post(api, path, body=None, role="marketer", status=201):
    response = api.request("POST", f"{API}{path}", role=role, json=body or {})
    return ok(response, status) if status < 400 else error(response, status)


def patch(api, path, body, role="marketer", status=200):
    response = api.request("PATCH", f"{API}{path}", role=role, json=body)
    return ok(response, status) if status < 400 else error(response, status)


def new_customer(api, tag, name, consent=("sms",), **fields):
    """A customer of the test's own tag, consenting to marketing on ``consent``."""
    return api.create_customer(name=name, tags=[tag],
                               consent={channel: True for channel in consent}, **fields)


def new_segment(api, tag, role="marketer", **fields):
    body = {"name": unique_tag("细分"), "rules": {"tags": [tag]}, **fields}
    return post(api, "/segments", body, role=role)


def members_known(api, segment_id, count):
    """Until marketing's copy of the customers (kept from the customer service's events) puts
    ``count`` customers in the segment; answers the preview."""
    def known():
        preview = get(api, f"/segments/{segment_id}/preview")
        return preview if preview["total"] == count else None

    return wait_until(known, timeout=15, interval=0.1, message="marketing to know the customers")


def new_campaign(api, segment_id, role="marketer", status=201, **fields):
    body = {"name": unique_tag("活动"), "segment_id": segment_id, "channel": "sms",
            "template": TEMPLATE, **fields}
    return post(api, "/campaigns", body, role=role, status=status)


def recorded(api, campaign_id, recipients):
    """Until the service has recorded the launched campaign's recipients (in the background)
    and sent them; answers the stats."""
    def done():
        stats = get(api, f"/campaigns/{campaign_id}/stats")
        if stats["status"] in ("sending", "completed") and stats["recipients"] == recipients \
                and stats["queued"] == 0:
            return stats
        return None

    return wait_until(done, timeout=15, interval=0.1, message="the recipients to be recorded")


def launched(api, segment_id, recipients, **fields):
    campaign = new_campaign(api, segment_id, **fields)
    post(api, f"/campaigns/{campaign['id']}/launch", status=202)
    return campaign, recorded(api, campaign["id"], recipients)


def messages_of(api, role="marketer", **query):
    return get(api, "/messages", role=role, per_page=200, **query)["items"]


def by_customer(messages):
    return {message["customer_id"]: message for message in messages}


def unit_and_lease(api, customer_id, opportunity_id):
    unit = post(api, "/units", {"code": unique_tag("U"), "building": "锦江公寓 A 栋",
                                "district": "锦江区", "layout": "1室1厅", "area_sqm": "45.50",
                                "floor": 12, "monthly_rent": "3500.00"},
                role="sales_supervisor")
    start = date.today()
    return post(api, "/leases", {
        "customer_id": customer_id, "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": "3500.00",
        "deposit": "3500.00", "payment_cycle": "monthly", "opportunity_id": opportunity_id},
        role="customer_manager")


# ---------------------------------------------------------------- the whole flow

def test_segment_to_campaign_to_response_to_lease(api):
    tag = unique_tag("活动客户")
    zhang = new_customer(api, tag, "张伟", district="锦江区",
                         owner_id=api.role_id("customer_manager"))  # whom the manager reaches
    li = new_customer(api, tag, "李娜")
    wang = new_customer(api, tag, "王芳", consent=())  # no consent to marketing
    new_customer(api, unique_tag("别的"), "赵磊")  # not in the segment

    # a segment of the tag, read back by marketing's readers
    segment = new_segment(api, tag, description="锦江区意向客户")
    assert segment["rules"] == {"tags": [tag]}
    assert segment["created_by"] == api.role_id("marketer")
    assert get(api, f"/segments/{segment['id']}", role="executive") == segment
    found = get(api, "/segments", role="sales_supervisor", q=segment["name"])
    assert [s["id"] for s in found["items"]] == [segment["id"]] and found["total"] == 1
    preview = members_known(api, segment["id"], 3)
    assert {m["customer_id"] for m in preview["items"]} == {zhang["id"], li["id"], wang["id"]}
    assert by_customer(preview["items"])[zhang["id"]]["tags"] == [tag]
    assert by_customer(preview["items"])[zhang["id"]]["district"] == "锦江区"
    paged = get(api, f"/segments/{segment['id']}/preview", per_page=2, page=2)
    assert (paged["total"], paged["page"], paged["per_page"], len(paged["items"])) == (3, 2, 2, 1)

    # a campaign with its cost as a decimal string
    campaign = new_campaign(api, segment["id"], cost="1200.00")
    assert (campaign["status"], campaign["cost"], campaign["channel"]) == ("draft", "1200.00",
                                                                          "sms")
    assert get(api, f"/campaigns/{campaign['id']}", role="executive") == campaign
    listed = get(api, "/campaigns", role="sales_supervisor", segment_id=segment["id"],
                 status="draft", channel="sms")
    assert [c["id"] for c in listed["items"]] == [campaign["id"]]

    # launch: 202 with the campaign, recipients recorded in the background; once only
    accepted = post(api, f"/campaigns/{campaign['id']}/launch", status=202)
    assert accepted["id"] == campaign["id"] and accepted["status"] == "launching"
    again = post(api, f"/campaigns/{campaign['id']}/launch", status=409)
    assert again["code"] == "conflict"
    stats = recorded(api, campaign["id"], 2)
    assert stats["audience"] == 3
    assert stats["skipped"] == {"no_consent": 1}
    assert (stats["sent"], stats["delivered"], stats["failed"]) == (2, 2, 0)
    assert stats["delivery_rate"] == 1.0
    assert (stats["cost"], stats["cost_per_lease"]) == ("1200.00", None)

    # the delivery log: each body personalised; the one without consent skipped, no body
    log = by_customer(messages_of(api, campaign_id=campaign["id"]))
    assert set(log) == {zhang["id"], li["id"], wang["id"]}
    assert log[zhang["id"]]["body"] == "张伟您好，锦江区新房源上线，回复1预约看房"
    assert log[li["id"]]["body"] == "李娜您好，锦江区新房源上线，回复1预约看房"
    assert log[zhang["id"]]["status"] == "delivered" and log[zhang["id"]]["channel"] == "sms"
    assert (log[wang["id"]]["status"], log[wang["id"]]["skip_reason"],
            log[wang["id"]]["body"]) == ("skipped", "no_consent", None)
    # the SMS went to the mobile, which a marketer sees masked and a customer manager in full
    assert log[zhang["id"]]["recipient"] == masked_mobile(zhang["mobile"])
    own = messages_of(api, role="customer_manager", customer_id=zhang["id"])
    assert [m["id"] for m in own] == [log[zhang["id"]]["id"]]
    assert own[0]["recipient"] == zhang["mobile"]
    one = get(api, f"/messages/{own[0]['id']}", role="service_agent")
    assert one["body"] == log[zhang["id"]]["body"] and one["campaign_id"] == campaign["id"]
    skipped = messages_of(api, role="sales_supervisor", campaign_id=campaign["id"],
                          status="skipped")
    assert [m["customer_id"] for m in skipped] == [wang["id"]]

    # the 360 view shows the campaign message (the real marketing service behind it)
    view = get(api, f"/customers/{zhang['id']}/360", role="sales_supervisor")
    assert view["messages"]["available"] is True
    assert [m["body"] for m in view["messages"]["items"]] == [log[zhang["id"]]["body"]]
    assert view["messages"]["items"][0]["recipient"] == zhang["mobile"]
    # a marketer sees the SMS's address masked there too, as on the customer record
    seen = get(api, f"/customers/{zhang['id']}/360", role="marketer")
    assert seen["messages"]["items"][0]["recipient"] == seen["profile"]["mobile"] != zhang["mobile"]

    # a response, heard by the customer manager, opens an opportunity in the sales service
    response = post(api, f"/campaigns/{campaign['id']}/responses",
                    {"customer_id": zhang["id"], "response": "想看两室一厅"},
                    role="customer_manager")
    assert (response["campaign_id"], response["customer_id"], response["recorded_by"]) == (
        campaign["id"], zhang["id"], api.role_id("customer_manager"))
    twice = post(api, f"/campaigns/{campaign['id']}/responses",
                 {"customer_id": zhang["id"], "response": "再说一次"}, status=409)
    assert twice["details"] == {"response_id": response["id"]}
    not_sent = post(api, f"/campaigns/{campaign['id']}/responses",
                    {"customer_id": wang["id"]}, role="sales_supervisor", status=422)
    assert set(not_sent["details"]) == {"customer_id"}
    responses = get(api, f"/campaigns/{campaign['id']}/responses", role="customer_manager")
    assert [r["id"] for r in responses["items"]] == [response["id"]]

    def opportunity():
        page = get(api, "/opportunities", role="sales_supervisor", customer_id=zhang["id"])
        return page["items"][0] if page["items"] else None

    lead = wait_until(opportunity, timeout=15, interval=0.1,
                      message="the opportunity of the campaign response")
    assert (lead["source"], lead["campaign_id"]) == ("campaign", campaign["id"])
    wait_until(lambda: get(api, f"/campaigns/{campaign['id']}/stats")["opportunities"] == 1,
               timeout=15, interval=0.1, message="marketing to hear of the opportunity")

    # the lead is won: the campaign's figures count it, with its cost per lease
    unit_and_lease(api, zhang["id"], lead["id"])

    def won():
        figures = get(api, f"/campaigns/{campaign['id']}/stats", role="executive")
        return figures if figures["leases_won"] == 1 else None

    figures = wait_until(won, timeout=15, interval=0.1, message="the lease won to be counted")
    assert (figures["responses"], figures["opportunities"]) == (1, 1)
    assert (figures["cost"], figures["cost_per_lease"]) == ("1200.00", "1200.00")


def test_a_scheduled_campaign_waits_for_its_time_or_a_launch(api):
    tag = unique_tag("定时")
    customer = new_customer(api, tag, "孙丽")
    segment = new_segment(api, tag)
    members_known(api, segment["id"], 1)
    campaign = new_campaign(api, segment["id"], scheduled_at=now_iso(days=3))
    assert campaign["status"] == "scheduled" and campaign["scheduled_at"]
    scheduled = get(api, "/campaigns", status="scheduled", segment_id=segment["id"])
    assert [c["id"] for c in scheduled["items"]] == [campaign["id"]]
    past = new_campaign(api, segment["id"], scheduled_at=now_iso(days=-1), status=422)
    assert set(past["details"]) == {"scheduled_at"}

    post(api, f"/campaigns/{campaign['id']}/launch", status=202)
    recorded(api, campaign["id"], 1)
    [message] = messages_of(api, campaign_id=campaign["id"])
    assert (message["customer_id"], message["body"]) == (
        customer["id"], "孙丽您好，锦江区新房源上线，回复1预约看房")


def test_receipts_from_the_delivery_provider(api, provider):
    tag = unique_tag("邮件")
    customer = new_customer(api, tag, "周杰", consent=("email",), email="zhoujie@example.com")
    segment = new_segment(api, tag)
    members_known(api, segment["id"], 1)
    campaign, stats = launched(api, segment["id"], 1, channel="email",
                               template="{name}，您好：本月开放日欢迎参观。")
    assert (stats["sent"], stats["delivered"]) == (1, 0)
    [message] = messages_of(api, campaign_id=campaign["id"])
    assert (message["status"], message["recipient"]) == ("sent", "zhoujie@example.com")
    # the provider got the personalised message
    relayed = provider.message(message["id"])
    assert relayed["body"] == "周杰，您好：本月开放日欢迎参观。"
    assert relayed["to"] == "zhoujie@example.com" and relayed["customer_id"] == customer["id"]

    # its integration (a marketer account) confirms delivery
    bad = post(api, f"/messages/{message['id']}/receipts", {"status": "bounced"}, status=422)
    assert set(bad["details"]) == {"status"}
    delivered = post(api, f"/messages/{message['id']}/receipts", {"status": "delivered"},
                     status=200)
    assert delivered["status"] == "delivered" and delivered["delivered_at"]
    assert get(api, f"/messages/{message['id']}")["status"] == "delivered"
    figures = get(api, f"/campaigns/{campaign['id']}/stats")
    assert (figures["delivered"], figures["delivery_rate"]) == (1, 1.0)
    # a receipt that contradicts it is a conflict (only a sent message takes one)
    late = post(api, f"/messages/{message['id']}/receipts",
                {"status": "failed", "error": "mailbox full"}, status=409)
    assert late["details"] == {"status": "delivered"}
    assert post(api, "/messages/999999999/receipts", {"status": "delivered"},
                status=404)["code"] == "not_found"


def test_care_rules_greet_once_per_occasion(api):
    tag = unique_tag("关怀")
    birthday = date(1990, 6, 15) if date.today().strftime("%m-%d") != "06-15" \
        else date(1990, 6, 16)
    customer = new_customer(api, tag, "陈静", birthday=birthday.isoformat())
    members_known(api, new_segment(api, tag)["id"], 1)

    rule = post(api, "/care-rules", {"kind": "birthday", "name": unique_tag("生日"),
                                     "channel": "sms", "template": "{name}，生日快乐！"})
    assert (rule["kind"], rule["active"], rule["channel"]) == ("birthday", True, "sms")
    listed = get(api, "/care-rules", role="executive", kind="birthday", active="true")
    assert rule["id"] in {r["id"] for r in listed["items"]}

    day = birthday.replace(year=2031).isoformat()  # a day of the customer's birthday, not today
    first = ok(api.request("POST", f"{API}/care-rules/run", role="marketer",
                           json={"today": day}))
    assert first[rule["id"]] == 1
    [greeting] = messages_of(api, care_rule_id=rule["id"])
    assert (greeting["customer_id"], greeting["body"], greeting["occasion"]) == (
        customer["id"], "陈静，生日快乐！", "birthday:2031")
    # once per occasion, however often the rules run
    second = ok(api.request("POST", f"{API}/care-rules/run", role="admin", json={"today": day}))
    assert second.get(rule["id"], 0) == 0
    assert len(messages_of(api, care_rule_id=rule["id"])) == 1

    # paused: it greets nobody
    paused = patch(api, f"/care-rules/{rule['id']}", {"active": False})
    assert paused["active"] is False and paused["id"] == rule["id"]
    inactive = get(api, "/care-rules", kind="birthday", active="false")
    assert rule["id"] in {r["id"] for r in inactive["items"]}
    next_year = birthday.replace(year=2032).isoformat()
    third = ok(api.request("POST", f"{API}/care-rules/run", role="marketer",
                           json={"today": next_year}))
    assert third.get(rule["id"], 0) == 0

    # the service names what is wrong, the gateway what could never reach it
    bad_day = error(api.request("POST", f"{API}/care-rules/run", role="marketer",
                                json={"today": "2031-13-01"}), 422)
    assert set(bad_day["details"]) == {"today"}
    unknown = error(api.request("POST", f"{API}/care-rules/run", role="marketer",
                                json={"today": day, "rule_id": rule["id"]}), 422)
    assert set(unknown["details"]) == {"rule_id"}
    assert patch(api, "/care-rules/no-such-rule", {"active": True}, status=404)["code"] == \
        "not_found"


@pytest.mark.parametrize("body, fields", [
    ({"kind": "anniversary", "channel": "sms", "template": "{name}"}, {"kind"}),
    ({"kind": "birthday", "channel": "fax", "template": "{name}, {years}"},
     {"channel", "template"}),
    ({"kind": "holiday", "channel": "sms", "template": "{name}{holiday_name}快乐"}, {"holiday"}),
    ({"kind": "birthday", "channel": "sms", "template": "{name}", "colour": "red"}, {"colour"}),
])
def test_one_422_names_every_bad_field_of_a_care_rule(api, body, fields):
    refused = post(api, "/care-rules", body, status=422)
    assert set(refused["details"]) == fields


# ---------------------------------------------------------------- validation, 404

def test_one_422_names_every_bad_field_of_a_segment_or_campaign(api, marketing_calls):
    tag = unique_tag("校验")
    segment = new_segment(api, tag)

    unknown_rule = post(api, "/segments", {"name": unique_tag("细分"),
                                           "rules": {"tags": [tag], "favourite_colour": ["红"]}},
                        status=422)
    assert set(unknown_rule["details"]) == {"rules.favourite_colour"}
    bad_value = post(api, "/segments", {"name": unique_tag("细分"),
                                        "rules": {"lease_ends_within_days": 400}}, status=422)
    assert set(bad_value["details"]) == {"rules.lease_ends_within_days"}
    taken = post(api, "/segments", {"name": segment["name"], "rules": {"tags": [tag]}},
                 status=409)
    assert taken["details"] == {"existing_id": segment["id"]}

    # a placeholder that is no customer field, a channel, an unknown segment: one 422
    refused = post(api, "/campaigns", {"name": "双十一", "segment_id": "no-such-segment",
                                       "channel": "fax", "template": "{name}的工资{salary}"},
                   status=422)
    assert set(refused["details"]) == {"template", "channel", "segment_id"}
    assert "salary" in " ".join(refused["details"]["template"])
    missing = post(api, "/campaigns", {"segment_id": segment["id"], "colour": "red"}, status=422)
    assert set(missing["details"]) == {"name", "channel", "template", "colour"}
    # money is a decimal string: the service refuses a bad one, the gateway a JSON number
    for cost in ("12.345", "-1.00"):
        bad_cost = new_campaign(api, segment["id"], cost=cost, status=422)
        assert set(bad_cost["details"]) == {"cost"}
    before = marketing_calls()
    number = new_campaign(api, segment["id"], cost=1200.5, status=422)
    assert set(number["details"]) == {"cost"}
    assert marketing_calls() == before  # refused at the gateway

    # enumerations of the query strings and the page size are checked at the gateway
    for path, query, field in (("/campaigns", {"status": "running"}, "status"),
                               ("/campaigns", {"channel": "fax"}, "channel"),
                               ("/messages", {"status": "lost"}, "status"),
                               ("/care-rules", {"kind": "wedding"}, "kind"),
                               ("/messages", {"per_page": 201}, "per_page"),
                               (f"/segments/{segment['id']}/preview", {"per_page": 0},
                                "per_page")):
        bad = error(api.request("GET", f"{API}{path}", role="marketer", query_string=query), 422)
        assert set(bad["details"]) == {field}, path
    assert marketing_calls() == before
    assert get(api, "/messages", per_page=200)["per_page"] == 200


@pytest.mark.parametrize("method, path", [
    ("GET", "/campaigns/no-such-campaign"),
    ("POST", "/campaigns/no-such-campaign/launch"),
    ("GET", "/campaigns/no-such-campaign/stats"),
    ("GET", "/campaigns/no-such-campaign/responses"),
    ("POST", "/campaigns/no-such-campaign/responses"),
    ("GET", "/segments/no-such-segment"),
    ("GET", "/segments/no-such-segment/preview"),
    ("GET", "/messages/no-such-message"),
    ("GET", "/messages/999999999"),
])
def test_unknown_records_are_404(api, method, path):
    kwargs = {"json": {"customer_id": "c-1"}} if method == "POST" else {}
    missing = error(api.request(method, f"{API}{path}", role="admin", **kwargs), 404)
    assert missing["code"] == "not_found"


# ---------------------------------------------------------------- roles

FORBIDDEN = [
    ("customer_manager", "POST", "/campaigns", {}),
    ("executive", "POST", "/segments", {}),
    ("sales_supervisor", "POST", "/segments", {}),
    ("service_agent", "GET", "/segments", None),
    ("customer_manager", "GET", "/segments/s-1/preview", None),
    ("executive", "POST", "/campaigns/c-1/launch", None),
    ("sales_supervisor", "POST", "/campaigns/c-1/launch", None),
    ("technician", "GET", "/campaigns", None),
    ("customer_manager", "GET", "/campaigns/c-1/stats", None),
    ("executive", "POST", "/campaigns/c-1/responses", {"customer_id": "c-1"}),
    ("service_agent", "POST", "/campaigns/c-1/responses", {"customer_id": "c-1"}),
    ("service_agent", "GET", "/campaigns/c-1/responses", None),
    ("sales_supervisor", "POST", "/care-rules", {}),
    ("customer_manager", "GET", "/care-rules", None),
    ("executive", "PATCH", "/care-rules/r-1", {"active": False}),
    ("executive", "POST", "/care-rules/run", {}),
    ("technician", "GET", "/messages", None),
    ("technician", "GET", "/messages/1", None),
    ("customer_manager", "POST", "/messages/1/receipts", {"status": "delivered"}),
    ("executive", "POST", "/messages/1/receipts", {"status": "delivered"}),
]


@pytest.mark.parametrize("role, method, path, body", FORBIDDEN)
def test_a_role_outside_the_table_is_refused_before_the_service(api, marketing_calls, role,
                                                                 method, path, body):
    api.role_token(role)
    before = marketing_calls()
    kwargs = {"json": body} if body is not None else {}
    refused = error(api.request(method, f"{API}{path}", role=role, **kwargs), 403)
    assert refused["code"] == "forbidden"
    assert marketing_calls() == before


@pytest.mark.parametrize("role, path", [
    ("executive", "/segments"), ("sales_supervisor", "/segments"), ("admin", "/campaigns"),
    ("executive", "/campaigns"), ("sales_supervisor", "/care-rules"),
    ("customer_manager", "/messages"), ("service_agent", "/messages"),
    ("executive", "/messages"),
])
def test_readers_read(api, role, path):
    page = get(api, path, role=role)
    assert set(page) == {"items", "total", "page", "per_page"}


@pytest.mark.parametrize("role, recipient", [
    ("marketer", "138****5678"), ("executive", "138****5678"), ("admin", "138****5678"),
    ("customer_manager", "13812345678"), ("sales_supervisor", "13812345678"),
    ("service_agent", "13812345678"),
])
def test_an_sms_recipient_is_masked_by_role(api, role, recipient):
    """An SMS went to the customer's mobile: masked as on the customer record; an e-mail
    address is not (nor is it on the record)."""
    from flask import g

    from crm_gateway.auth import Caller
    from crm_gateway.schemas.marketing import MessageSchema

    with api.app.test_request_context():
        g.caller = Caller("s-1", "someone", "Someone", (role,), None, None)
        sms = MessageSchema().dump({"id": 1, "channel": "sms", "recipient": "13812345678"})
        email = MessageSchema().dump({"id": 2, "channel": "email", "recipient": "a@example.com"})
    assert (sms["id"], sms["recipient"]) == ("1", recipient)
    assert email["recipient"] == "a@example.com"


def test_the_openapi_document_has_marketing(api):
    spec = ok(api.client.get(f"{API}/openapi.json"))
    assert {f"{API}/segments", f"{API}/segments/{{segment_id}}/preview", f"{API}/campaigns",
            f"{API}/campaigns/{{campaign_id}}/launch", f"{API}/campaigns/{{campaign_id}}/stats",
            f"{API}/campaigns/{{campaign_id}}/responses", f"{API}/care-rules",
            f"{API}/care-rules/{{rule_id}}", f"{API}/care-rules/run", f"{API}/messages",
            f"{API}/messages/{{message_id}}/receipts"} <= set(spec["paths"])
    assert "202" in spec["paths"][f"{API}/campaigns/{{campaign_id}}/launch"]["post"]["responses"]
    schemas = spec["components"]["schemas"]
    for name, field in (("Campaign", "cost"), ("CampaignCreate", "cost"),
                        ("CampaignStats", "cost_per_lease"), ("Message", "id")):
        assert schemas[name]["properties"][field]["type"] == "string", (name, field)
