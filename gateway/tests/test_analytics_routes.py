"""Analytics routes (scores, RFM and CLV, recomputes, clusters, churn warnings, every report as
JSON, CSV and PNG) in front of the REAL customer, sales, service-desk and analytics services on
the real broker — no stubs.

The four services run for this module (``crm_kit.testing.ServiceProcess``, SQLite in a temporary
folder) on the module's own RabbitMQ vhost, a child of the session's, removed afterwards — as
``test_marketing_routes.py`` does, for the same reasons. Analytics builds its store from the
other services' events, so it runs before any customer of this module is created; its worker
takes a requested recompute every 0.2 s (not every 2 s).

The store is the module's (``business``): three customers, two leases, payments, tickets with
ratings, entered through the gateway as staff would, then scored by ``POST
/analytics/recompute``. Its reports are over the whole store, so no other test of the module
creates business data: they read it, change the CLV parameters back as they were, cluster it.
"""
import base64
import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest

from crm_kit.rpc_client import RpcClient
from crm_kit.testing import ServiceProcess, wait_until
from crm_gateway import rpc
from gateway_support import (CUSTOMER_SPEC, Api, add_vhost, delete_vhost, make_app,
                             rpc_calls_served, unique_tag)

SALES_SPEC = "sales_service.service:SalesService"
SERVICE_DESK_SPEC = "service_desk_service.service:ServiceDeskService"
ANALYTICS_SPEC = "analytics_service.service:AnalyticsService"
API = "/api/v1"
CSV_TYPE, PNG_TYPE = "text/csv", "image/png"
BOM = "\ufeff"
#: the business's clock (Chengdu, UTC+8 all year): its "today" is analytics' and sales' one,
#: a day ahead of UTC's for eight hours a day
BUSINESS_TZ = timezone(timedelta(hours=8))

#: route → (report name, the reports with a chart)
REPORTS = {
    "/analytics/funnel": "funnel",
    "/analytics/sales/trend": "sales_trend",
    "/analytics/sales/business": "sales_business",
    "/analytics/staff/performance": "staff_performance",
    "/analytics/service/composition": "service_composition",
    "/analytics/customers/composition": "customer_composition",
    "/analytics/contribution": "contribution",
    "/analytics/churn/analysis": "churn_analysis",
    "/analytics/reviews/sentiment": "review_sentiment",
}
CHARTS = {"funnel", "sales_trend", "contribution", "customer_composition",
          "service_composition", "churn_analysis"}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def analytics_uri(vhost):
    from crm_kit.pytest_plugin import BROKER_HOST

    name = f"{vhost}-analytics"
    add_vhost(name)
    yield f"amqp://guest:guest@{BROKER_HOST}:5672/{name}"
    rpc.close_all()  # before the vhost goes: the process-wide clients would try to reconnect
    delete_vhost(name)


@pytest.fixture(scope="module")
def services(analytics_uri, tmp_path_factory):
    """The real customer, sales, service-desk and analytics services, as ``make up`` starts
    them; analytics' worker looks for requested recomputes every 0.2 s."""
    data_dir = tmp_path_factory.mktemp("analytics-services")
    started = {}
    try:
        for name, spec, env in (
                ("customer", CUSTOMER_SPEC, None), ("sales", SALES_SPEC, None),
                ("service_desk", SERVICE_DESK_SPEC, None),
                ("analytics", ANALYTICS_SPEC, {"CRM_ANALYTICS_WORKER_SECONDS": "0.2"})):
            url = f"sqlite:///{data_dir / (name + '.db')}"
            service = ServiceProcess(spec, analytics_uri, url, data_dir, name=name, env=env)
            started[name] = service.start()
        yield started
    finally:
        for service in reversed(list(started.values())):
            service.stop()


@pytest.fixture(scope="module")
def api(services, analytics_uri, tmp_path_factory):
    """One gateway for the module (role tokens are costly: scrypt), with the deployed RPC
    timeout; its analytics budget is lifted (the module makes hundreds of analytics calls a
    minute as one role; test_limits.py shows the limit)."""
    return Api(make_app(tmp_path_factory.mktemp("analytics-gateway"), analytics_uri,
                        RPC_TIMEOUT=5, RATE_LIMIT_ANALYTICS="100000 per minute"))


@pytest.fixture(scope="module")
def analytics_rpc(services, analytics_uri):
    """The tests' own RPC client, to compare what the gateway answers with what the service
    says."""
    with RpcClient(analytics_uri, timeout=30, client_name="analytics-tests") as client:
        yield client


@pytest.fixture
def analytics_calls(services):
    """``analytics_calls()``: RPCs the analytics service has run so far."""
    return lambda: rpc_calls_served(services["analytics"])


# ---------------------------------------------------------------- helpers

def now_iso():
    return datetime.now(timezone.utc).isoformat()


def today():
    """Today on the business's clock."""
    return datetime.now(BUSINESS_TZ).date()


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def error(response, status):
    assert response.status_code == status, (response.status_code, response.get_data()[:500])
    body = response.get_json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def get(api, path, role="executive", **query):
    return ok(api.request("GET", f"{API}{path}", role=role, query_string=query))


def post(api, path, body=None, role="admin", status=201):
    response = api.request("POST", f"{API}{path}", role=role, json=body or {})
    return ok(response, status) if status < 400 else error(response, status)


def put(api, path, body, role="admin", status=200):
    response = api.request("PUT", f"{API}{path}", role=role, json=body)
    return ok(response, status) if status < 400 else error(response, status)


def download(api, path, accept, role="executive", **query):
    response = api.request("GET", f"{API}{path}", role=role, query_string=query,
                           headers={"Accept": accept})
    assert response.status_code == 200, (path, accept, response.get_data()[:500])
    return response


def csv_rows(response):
    """The rows of a CSV answer as dicts (UTF-8 with a byte-order mark, as Excel wants it)."""
    text = response.get_data().decode("utf-8")
    assert text.startswith(BOM)
    return list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))


def with_string_ids(scores):
    """The service's scores as the gateway answers them (ids are strings, api.md)."""
    return {**scores, "run_id": str(scores["run_id"])}


def recomputed(api, role="admin", **body):
    """``POST /analytics/recompute`` (202) and the run once done."""
    run = post(api, "/analytics/recompute", body, role=role, status=202)
    assert run["status"] == "requested" and isinstance(run["run_id"], str)

    def done():
        current = get(api, f"/analytics/runs/{run['run_id']}")
        assert current["status"] in ("requested", "running", "done"), current
        return current if current["status"] == "done" else None

    return run, wait_until(done, timeout=30, interval=0.1, message="the recompute to finish")


def lease_with_bills(api, customer, district, layout, rent, days_ago):
    unit = post(api, "/units", {"code": unique_tag("U"), "building": "天府公寓 B 栋",
                                "district": district, "layout": layout, "area_sqm": "45.50",
                                "floor": 8, "monthly_rent": rent}, role="sales_supervisor")
    start = today() - timedelta(days=days_ago)
    return post(api, "/leases", {
        "customer_id": customer["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": rent,
        "deposit": rent, "payment_cycle": "monthly"}, role="customer_manager")


def pay(api, bill):
    return post(api, "/payments", {"bill_id": bill["id"], "amount": bill["amount"],
                                   "paid_at": now_iso(), "method": "wechat_pay"},
                role="customer_manager")


def rated_ticket(api, customer, kind, description, rating=None, comment=None):
    ticket = post(api, "/tickets", {"customer_id": customer["id"], "type": kind,
                                    "channel": "phone", "description": description},
                  role="customer_manager")
    if rating is None:
        return ticket
    post(api, f"/tickets/{ticket['id']}/assign",
         {"assignee_id": api.role_id("service_agent")}, role="service_agent", status=200)
    post(api, f"/tickets/{ticket['id']}/status", {"status": "resolved", "note": "已处理"},
         role="service_agent", status=200)
    post(api, f"/tickets/{ticket['id']}/feedback", {"rating": rating, "comment": comment},
         role="customer_manager", status=200)
    return ticket


# ---------------------------------------------------------------- the module's business

@pytest.fixture(scope="module")
def business(api):
    """Four customers of one customer manager: 张伟 pays every bill due (deposit too) of his
    lease in 锦江区; 李娜 pays nothing on hers in 高新区 and complains twice, rating the service
    1 — a churn risk; 赵磊 has just signed in 武侯区 (nothing due before today); 王芳 has no
    lease. Once analytics' store holds all of it (its reports say so), a recompute through the
    gateway scores them."""
    owner = api.role_id("customer_manager")
    zhang = api.create_customer(name="张伟", district="锦江区", industry="互联网",
                                source="website", owner_id=owner)
    li = api.create_customer(name="李娜", district="高新区", industry="金融", source="wechat",
                             owner_id=owner)
    wang = api.create_customer(name="王芳", district="锦江区", source="website",
                               owner_id=owner)
    zhao = api.create_customer(name="赵磊", district="武侯区", source="website",
                               owner_id=owner)

    zhang_lease = lease_with_bills(api, zhang, "锦江区", "1室1厅", "3000.00", days_ago=75)
    li_lease = lease_with_bills(api, li, "高新区", "2室1厅", "2500.00", days_ago=75)
    zhao_lease = lease_with_bills(api, zhao, "武侯区", "1室0厅", "2000.00", days_ago=0)
    due = [b for b in zhang_lease["bills"] if date.fromisoformat(b["due_date"]) <= today()]
    for bill in due:
        pay(api, bill)
    rent = [b for b in due if b["kind"] == "rent"]
    assert len(rent) >= 2 and any(b["kind"] == "deposit" for b in due)
    li_due = [b for b in li_lease["bills"] if date.fromisoformat(b["due_date"]) < today()]
    assert len(li_due) >= 2  # overdue, unpaid

    praised = rated_ticket(api, zhang, "repair", "空调不制冷", rating=5,
                           comment="师傅很专业，非常满意")
    complained = rated_ticket(api, li, "complaint", "热水器坏了三天没人修", rating=1,
                              comment="维修太慢，很不满意")
    rated_ticket(api, li, "complaint", "楼道太吵")

    revenue = sum(Decimal(b["amount"]) for b in rent)
    contract_value = sum(Decimal(b["amount"]) for lease in (zhang_lease, li_lease, zhao_lease)
                         for b in lease["bills"] if b["kind"] == "rent")

    def store_has_everything():
        return (get(api, "/analytics/contribution")["revenue"] == f"{revenue:.2f}"
                and get(api, "/analytics/sales/business")["leases_signed"] == 3
                and get(api, "/analytics/service/composition")["satisfaction"]["rated"] == 2
                and sum(g["customers"] for g in get(
                    api, "/analytics/customers/composition")["items"]) == 4)

    wait_until(store_has_everything, timeout=30, interval=0.2,
               message="analytics' store to hold the module's business")
    run, done = recomputed(api)
    return SimpleNamespace(owner=owner, zhang=zhang, li=li, wang=wang, zhao=zhao,
                           zhang_lease=zhang_lease,
                           li_lease=li_lease, rent=rent, revenue=revenue,
                           contract_value=contract_value, praised=praised,
                           complained=complained, run=run, done=done)


# ---------------------------------------------------------------- scores

def test_a_recompute_scores_every_customer(api, business, analytics_rpc):
    b = business
    assert b.done["run_id"] == b.run["run_id"] and b.done["customers"] == 4
    assert b.done["finished_at"] and b.done["error"] is None
    assert b.done["as_of"] == b.run["as_of"]

    # the one tenant who paid: frequency and money from the rent (the deposit is no revenue)
    zhang = get(api, f"/analytics/customers/{b.zhang['id']}/scores", role="customer_manager")
    assert zhang == with_string_ids(analytics_rpc.call("analytics", "get_scores",
                                                       b.zhang["id"]))
    assert (zhang["customer_id"], zhang["run_id"]) == (b.zhang["id"], b.run["run_id"])
    assert zhang["rfm"]["frequency"] == len(b.rent)
    assert zhang["rfm"]["monetary"] == f"{b.revenue:.2f}"
    assert zhang["rfm"]["recency_days"] == 0
    # a lone paying customer scores 3 on each measure: R 3, FM 3 → need_attention
    assert (zhang["rfm"]["r"], zhang["rfm"]["f"], zhang["rfm"]["m"]) == (3, 3, 3)
    assert zhang["rfm"]["segment"] == "need_attention"
    assert zhang["value_tier"] == "key" and Decimal(zhang["clv"]) > 0

    # the tenant who pays nothing and complains: a churn risk with its reasons
    li = get(api, f"/analytics/customers/{b.li['id']}/scores", role="service_agent")
    assert li["rfm"]["segment"] == "no_purchase" and li["rfm"]["frequency"] == 0
    assert li["churn_risk"]["score"] >= 60
    assert {"overdue_bills", "complaints", "low_rating"} <= {
        reason["code"] for reason in li["churn_risk"]["reasons"]}
    assert all(reason["detail"] for reason in li["churn_risk"]["reasons"])

    wang = get(api, f"/analytics/customers/{b.wang['id']}/scores")
    assert (wang["rfm"]["segment"], wang["rfm"]["recency_days"], wang["rfm"]["r"]) == (
        "no_purchase", None, None)
    assert wang["churn_risk"] == {"score": 0, "reasons": []}
    zhao = get(api, f"/analytics/customers/{b.zhao['id']}/scores")
    assert zhao["rfm"]["segment"] == "no_purchase" and zhao["churn_risk"]["score"] == 0

    # the 360 view shows the same scores (the real analytics service behind it; it passes the
    # section on as the service answers it, so the run's id is a number there)
    view = get(api, f"/customers/{b.zhang['id']}/360", role="sales_supervisor")
    assert view["scores"]["available"] is True
    assert with_string_ids(view["scores"]["data"]) == zhang

    # customer.scored reached the customer record: the value tier is on it
    wait_until(lambda: api.customer(b.zhang["id"])["value_tier"] == "key", timeout=15,
               interval=0.1, message="customer.scored to reach the customer service")


def test_rfm_and_clv_lists(api, business):
    b = business
    rfm = get(api, "/analytics/rfm", role="marketer")
    assert (rfm["total"], rfm["page"], rfm["per_page"]) == (4, 1, 50)
    assert rfm["as_of"] == b.done["as_of"]
    assert rfm["segments"] == {"need_attention": 1, "no_purchase": 3}
    assert {item["customer_id"] for item in rfm["items"]} == {
        b.zhang["id"], b.li["id"], b.wang["id"], b.zhao["id"]}
    zhang = next(i for i in rfm["items"] if i["customer_id"] == b.zhang["id"])
    assert zhang["monetary"] == f"{b.revenue:.2f}" and zhang["segment"] == "need_attention"

    # filters: a segment, a tier, a score; pages
    unpaid = get(api, "/analytics/rfm", segment="no_purchase")
    assert {i["customer_id"] for i in unpaid["items"]} == {b.li["id"], b.wang["id"],
                                                           b.zhao["id"]}
    assert [i["customer_id"] for i in get(api, "/analytics/rfm", value_tier="key",
                                          r=3)["items"]] == [b.zhang["id"]]
    assert get(api, "/analytics/rfm", r=5)["items"] == []
    second = get(api, "/analytics/rfm", page=2, per_page=3)
    assert (second["total"], len(second["items"])) == (4, 1)

    clv = get(api, "/analytics/clv", role="sales_supervisor")
    assert clv["total"] == 4 and clv["items"][0]["customer_id"] == b.zhang["id"]
    values = [Decimal(item["clv"]) for item in clv["items"]]
    assert values == sorted(values, reverse=True)
    assert clv["parameters"] == get(api, "/analytics/clv/parameters")
    assert clv["tiers"]["key"]["customers"] == 1
    assert clv["tiers"]["key"]["value"] == clv["items"][0]["clv"]
    keys = get(api, "/analytics/clv", value_tier="key")
    assert [i["customer_id"] for i in keys["items"]] == [b.zhang["id"]]


def test_the_churn_warning_and_the_owners_decision(api, business):
    b = business
    open_ = get(api, "/analytics/churn/warnings", role="sales_supervisor", status="open")
    [warning] = open_["items"]
    assert (warning["customer_id"], warning["owner_id"], warning["status"]) == (
        b.li["id"], b.owner, "open")
    assert warning["score"] >= 60 and warning["raised_at"] and warning["decided_at"] is None
    assert {"overdue_bills", "complaints", "low_rating"} <= {r["code"]
                                                             for r in warning["reasons"]}
    mine = get(api, "/analytics/churn/warnings", customer_id=b.li["id"])
    assert [w["id"] for w in mine["items"]] == [warning["id"]]
    assert get(api, "/analytics/churn/warnings", customer_id=b.zhang["id"])["items"] == []

    # churn.warning_raised moved her to churn_warning; her manager confirms she left
    wait_until(lambda: api.customer(b.li["id"])["stage"] == "churn_warning", timeout=15,
               interval=0.1, message="the warning to reach the customer service")
    post(api, f"/customers/{b.li['id']}/churn-decision",
         {"decision": "confirm_churn", "reason": "价格太高", "competitor": "自如"},
         role="customer_manager", status=200)

    def decided():
        page = get(api, "/analytics/churn/warnings", status="churned")
        return page["items"] if page["total"] == 1 else None

    [churned] = wait_until(decided, timeout=15, interval=0.1,
                           message="the owner's decision to reach analytics")
    assert churned["id"] == warning["id"] and churned["decided_at"]
    assert get(api, "/analytics/churn/warnings", status="open")["items"] == []

    # the churn analysis counts her, with her reason and competitor
    def analysed():
        report = get(api, "/analytics/churn/analysis")
        return report if report["churned"] == 1 else None

    report = wait_until(analysed, timeout=15, interval=0.1, message="the churn in the store")
    assert report["by_reason"] == [{"reason": "价格太高", "customers": 1, "share": 1.0}]
    assert report["by_competitor"] == [{"competitor": "自如", "customers": 1, "share": 1.0}]
    district = {g["group"]: g for g in report["by"]["district"]}
    assert (district["高新区"]["churned"], district["高新区"]["rate"]) == (1, 1.0)
    assert report["to"] == date.fromisoformat(report["to"]).isoformat()


# ---------------------------------------------------------------- reports as JSON

def test_reports_as_json(api, business, analytics_rpc):
    b = business
    trend = get(api, "/analytics/sales/trend", granularity="month", role="sales_supervisor")
    assert trend["granularity"] == "month" and len(trend["items"]) >= 12
    assert sum(Decimal(i["revenue"]) for i in trend["items"]) == b.revenue
    assert sum(i["payments"] for i in trend["items"]) == len(b.rent)
    assert sum(i["leases_signed"] for i in trend["items"]) == 3
    assert trend == analytics_rpc.call("analytics", "sales_trend", {"granularity": "month"})
    quarters = get(api, "/analytics/sales/trend", granularity="quarter",
                   **{"from": "2025-01-01", "to": "2025-12-31"})
    assert [i["period"] for i in quarters["items"]] == ["2025-Q1", "2025-Q2", "2025-Q3",
                                                        "2025-Q4"]

    business_report = get(api, "/analytics/sales/business", role="marketer")
    assert (business_report["leases_signed"], business_report["renewals"],
            business_report["terminations"]) == (3, 0, 0)
    assert business_report["contract_value"] == f"{b.contract_value:.2f}"
    assert business_report["average_rent"] == "2500.00"
    assert {g["group"]: g["leases_signed"] for g in business_report["by_district"]} == {
        "锦江区": 1, "高新区": 1, "武侯区": 1}

    staff = get(api, "/analytics/staff/performance")
    assert sum(i["leases_signed"] for i in staff["items"]) == 3
    assert sum(Decimal(i["revenue"]) for i in staff["items"]) == b.revenue
    assert staff == analytics_rpc.call("analytics", "staff_performance", None)

    funnel = get(api, "/analytics/funnel")
    potential = funnel["lifecycle"][0]
    assert (potential["stage"], potential["entered"], potential["converted"]) == (
        "potential", 4, 3)
    assert [s["stage"] for s in funnel["pipeline"]] == [
        "new", "contacted", "viewing_booked", "viewed", "negotiating", "won"]
    assert funnel == analytics_rpc.call("analytics", "funnel", None)

    service = get(api, "/analytics/service/composition")
    assert service["tickets"] == 3
    by_type = {g["group"]: g["tickets"] for g in service["by_type"]}
    assert (by_type["complaint"], by_type["repair"], by_type["cleaning"]) == (2, 1, 0)
    assert service["satisfaction"] == {"rated": 2, "average": 3.0, "distribution": {
        "1": 1, "2": 0, "3": 0, "4": 0, "5": 1}}
    assert service["sentiment"] == {"positive": 1, "neutral": 0, "negative": 1}

    reviews = get(api, "/analytics/reviews/sentiment")
    assert reviews["totals"] == {"reviews": 2, "positive": 1, "neutral": 0, "negative": 1}
    sentiment = {i["ticket_id"]: (i["rating"], i["sentiment"]) for i in reviews["items"]}
    assert sentiment == {b.praised["id"]: (5, "positive"), b.complained["id"]: (1, "negative")}

    districts = get(api, "/analytics/customers/composition")
    assert districts["by"] == "district"
    assert districts["items"][0] == {"group": "锦江区", "customers": 2, "share": 0.5}
    assert {g["group"]: g["customers"] for g in districts["items"]} == {
        "锦江区": 2, "高新区": 1, "武侯区": 1}
    sources = get(api, "/analytics/customers/composition", by="source")
    assert {g["group"]: g["customers"] for g in sources["items"]} == {"website": 3, "wechat": 1}
    tiers = get(api, "/analytics/customers/composition", by="value_tier")
    assert {g["group"]: g["customers"] for g in tiers["items"]}["key"] == 1

    contribution = get(api, "/analytics/contribution")
    assert (contribution["customers"], contribution["revenue"]) == (1, f"{b.revenue:.2f}")
    assert len(contribution["curve"]) == 21 and contribution["curve"][-1] == {
        "customer_share": 1.0, "revenue_share": 1.0}
    assert contribution == analytics_rpc.call("analytics", "contribution")

    # every report the gateway answers is the service's, nothing dropped on the way
    for path, name in REPORTS.items():
        args = ("district",) if name == "customer_composition" else \
            () if name == "contribution" else ({},)
        assert get(api, path) == analytics_rpc.call("analytics", name, *args), path


# ---------------------------------------------------------------- reports as CSV and PNG

@pytest.mark.parametrize("path, name", sorted(REPORTS.items()))
def test_every_report_as_csv(api, business, path, name):
    response = download(api, path, "text/csv")
    assert response.content_type.startswith(CSV_TYPE)
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}.csv"'
    assert "Accept" in response.headers["Vary"]
    rows = csv_rows(response)
    assert rows and all(rows[0].keys())


def test_csv_has_the_json_figures(api, business):
    trend = get(api, "/analytics/sales/trend", granularity="quarter")
    rows = csv_rows(download(api, "/analytics/sales/trend", "text/csv", granularity="quarter"))
    assert [(r["granularity"], r["period"], r["revenue"], r["payments"]) for r in rows] == [
        ("quarter", i["period"], i["revenue"], str(i["payments"])) for i in trend["items"]]

    # several lists: a leading section column (Chinese text intact)
    composition = get(api, "/analytics/customers/composition", by="district")
    rows = csv_rows(download(api, "/analytics/customers/composition", "text/csv",
                             by="district"))
    assert [(r["by"], r["group"], r["customers"]) for r in rows] == [
        ("district", g["group"], str(g["customers"])) for g in composition["items"]]
    funnel = csv_rows(download(api, "/analytics/funnel", "text/csv"))
    assert [r["section"] for r in funnel] == ["lifecycle"] * 4 + ["pipeline"] * 6
    assert (funnel[0]["stage"], funnel[0]["entered"]) == ("potential", "4")


@pytest.mark.parametrize("path, name", sorted((p, n) for p, n in REPORTS.items()
                                              if n in CHARTS))
def test_reports_with_a_chart_as_png(api, business, path, name):
    response = download(api, path, "image/png", role="marketer")
    assert response.content_type == PNG_TYPE
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}.png"'
    assert response.get_data().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("path, name", sorted((p, n) for p, n in REPORTS.items()
                                              if n not in CHARTS))
def test_a_chart_of_a_report_without_one_is_406(api, business, analytics_calls, path, name):
    before = analytics_calls()
    refused = error(api.request("GET", f"{API}{path}", role="executive",
                                headers={"Accept": "image/png"}), 406)
    assert refused["code"] == "not_acceptable"
    assert refused["details"] == {"available": ["application/json", "text/csv"]}
    assert name in refused["message"]
    assert analytics_calls() == before  # refused before the service was asked


def test_content_negotiation(api, business, analytics_rpc):
    # no Accept, any type, a browser's: JSON; a preference is honoured
    for accept in (None, "*/*", "text/html,application/xhtml+xml,*/*;q=0.8"):
        headers = {"Accept": accept} if accept else {}
        response = api.request("GET", f"{API}/analytics/contribution", role="executive",
                               headers=headers)
        assert response.status_code == 200 and response.is_json, accept
    preferred = download(api, "/analytics/contribution", "application/json;q=0.5, text/csv")
    assert preferred.content_type.startswith(CSV_TYPE)
    # what the service exports, byte for byte
    exported = analytics_rpc.call("analytics", "export_report", "contribution", None, "csv")
    assert preferred.get_data() == base64.b64decode(exported["data"])
    refused = error(api.request("GET", f"{API}/analytics/funnel", role="executive",
                                headers={"Accept": "application/pdf"}), 406)
    assert refused["details"] == {"available": ["application/json", "text/csv", "image/png"]}


# ---------------------------------------------------------------- recomputes, runs

def test_a_second_recompute_while_one_is_requested_is_409(api, business):
    first = post(api, "/analytics/recompute", {"as_of": today().isoformat()},
                 status=202)
    second = post(api, "/analytics/recompute", status=409)
    assert second["code"] == "conflict"
    assert str(second["details"]["run_id"]) == first["run_id"]

    def done():
        return get(api, f"/analytics/runs/{first['run_id']}")["status"] == "done"

    wait_until(done, timeout=30, interval=0.1, message="the recompute to finish")
    assert get(api, f"/analytics/customers/{business.zhang['id']}/scores")["run_id"] == \
        first["run_id"]


@pytest.mark.parametrize("run_id", ["abc", "0", "01", "1.5", "99999999999999999999",
                                    "999999999"])
def test_unknown_score_runs_are_404(api, services, run_id):
    missing = error(api.request("GET", f"{API}/analytics/runs/{run_id}", role="admin"), 404)
    assert missing["code"] == "not_found"


def test_recompute_input_is_checked(api, services, analytics_calls):
    before = analytics_calls()
    for body, field in (({"as_of": "2026-02-30"}, "as_of"), ({"as_of": "20260201"}, "as_of"),
                        ({"as_of": 20260201}, "as_of"), ({"today": "2026-02-01"}, "today")):
        refused = post(api, "/analytics/recompute", body, status=422)
        assert set(refused["details"]) == {field}, body
    assert analytics_calls() == before


# ---------------------------------------------------------------- CLV parameters

def test_clv_parameters_are_read_and_set_by_an_admin(api, business, analytics_calls):
    original = get(api, "/analytics/clv/parameters", role="marketer")
    assert set(original) == {"acquisition_cost", "discount_rate", "horizon_years",
                             "tier_shares"}
    assert original["acquisition_cost"] == "800.00"
    try:
        changed = put(api, "/analytics/clv/parameters",
                      {"discount_rate": "0.1", "acquisition_cost": "500.00"})
        assert changed == {**original, "discount_rate": "0.1", "acquisition_cost": "500.00"}
        assert get(api, "/analytics/clv/parameters", role="executive") == changed

        # one 422 from the service names every bad value and unknown field
        refused = put(api, "/analytics/clv/parameters",
                      {"discount_rate": "1.5", "horizon_years": 0, "colour": "red",
                       "tier_shares": {"key": "0.9", "important": "0.5", "ordinary": "0.95"}},
                      status=422)
        assert set(refused["details"]) >= {"discount_rate", "horizon_years", "colour"}
        assert get(api, "/analytics/clv/parameters") == changed  # nothing changed

        # money is a decimal string: a JSON number never reaches the service
        before = analytics_calls()
        number = put(api, "/analytics/clv/parameters", {"acquisition_cost": 500}, status=422)
        assert set(number["details"]) == {"acquisition_cost"}
        floats = put(api, "/analytics/clv/parameters",
                     {"tier_shares": {"key": 0.5}, "horizon_years": "3"}, status=422)
        assert set(floats["details"]) == {"tier_shares", "horizon_years"}
        assert analytics_calls() == before
    finally:
        put(api, "/analytics/clv/parameters", original)
    assert get(api, "/analytics/clv/parameters") == original


# ---------------------------------------------------------------- clusters

def test_clusters_of_the_scored_customers(api, business):
    run = post(api, "/analytics/clusters", {"features": ["monetary", "frequency"], "k": 2},
               role="marketer")
    assert (run["k"], run["features"], run["customers"]) == (2, ["monetary", "frequency"], 3)
    assert run["created_by"] == api.role_id("marketer") and run["created_at"]
    evaluation = run["evaluation"]
    assert sorted(s["customers"] for s in evaluation["sizes"]) == [1, 2]
    assert [p["cluster"] for p in evaluation["profiles"]] == [0, 1]
    assert all(p["description"] for p in evaluation["profiles"])
    assert [s["k"] for s in evaluation["search"]] == [2]
    assert get(api, f"/analytics/clusters/{run['id']}", role="sales_supervisor") == run
    listed = get(api, "/analytics/clusters", role="executive")
    assert listed["items"][0] == run and listed["total"] >= 1

    # the tenants (a lease or a payment): 张伟, and 李娜 and 赵磊 who paid nothing
    searched = post(api, "/analytics/clusters", {"features": ["monetary"], "k_min": 2,
                                                 "k_max": 3}, role="admin")
    assert searched["k"] == 2  # three customers, two different: at most two clusters

    # the service names what its data cannot do, the gateway what is not even the right type
    too_many = post(api, "/analytics/clusters", {"features": ["monetary"], "k": 3},
                    role="marketer", status=422)
    assert set(too_many["details"]) == {"k"}
    unknown = post(api, "/analytics/clusters", {"features": ["shoe_size"], "k": 2},
                   role="marketer", status=422)
    assert set(unknown["details"]) == {"features"}
    wrong_types = post(api, "/analytics/clusters", {"features": "monetary", "k": "2"},
                       role="marketer", status=422)
    assert set(wrong_types["details"]) == {"features", "k"}
    assert error(api.request("GET", f"{API}/analytics/clusters/no-such-run", role="admin"),
                 404)["code"] == "not_found"


# ---------------------------------------------------------------- validation, 404

@pytest.mark.parametrize("path, query, field", [
    ("/analytics/funnel", {"from": "2026-02-30"}, "from"),
    ("/analytics/funnel", {"to": "yesterday"}, "to"),
    ("/analytics/sales/trend", {"granularity": "week"}, "granularity"),
    ("/analytics/sales/trend", {"from": "2026/01/01"}, "from"),
    ("/analytics/sales/business", {"to": "2026-1-5"}, "to"),
    ("/analytics/staff/performance", {"from": "20260101"}, "from"),
    ("/analytics/service/composition", {"to": "2026-13-01"}, "to"),
    ("/analytics/customers/composition", {"by": "shoe_size"}, "by"),
    ("/analytics/churn/analysis", {"from": "soon"}, "from"),
    ("/analytics/reviews/sentiment", {"from": "2026-00-10"}, "from"),
    ("/analytics/churn/warnings", {"status": "lost"}, "status"),
    ("/analytics/rfm", {"value_tier": "gold"}, "value_tier"),
    ("/analytics/rfm", {"segment": "vip"}, "segment"),
    ("/analytics/rfm", {"r": 6}, "r"),
    ("/analytics/rfm", {"m": "high"}, "m"),
    ("/analytics/clv", {"value_tier": "platinum"}, "value_tier"),
    ("/analytics/clv", {"per_page": 201}, "per_page"),
    ("/analytics/clusters", {"page": 0}, "page"),
])
def test_query_strings_are_checked_at_the_gateway(api, services, analytics_calls, path, query,
                                                  field):
    api.role_token("executive")
    before = analytics_calls()
    for accept in ("application/json", "text/csv"):
        refused = error(api.request("GET", f"{API}{path}", role="executive",
                                    query_string=query, headers={"Accept": accept}), 422)
        assert set(refused["details"]) == {field}
    assert analytics_calls() == before


def test_the_service_checks_a_period(api, business):
    backwards = error(api.request("GET", f"{API}/analytics/sales/trend", role="executive",
                                  query_string={"from": "2026-03-01", "to": "2026-01-31"}),
                      422)
    assert set(backwards["details"]) == {"to"}
    assert get(api, "/analytics/clv", per_page=200)["per_page"] == 200


def test_scores_of_an_unknown_customer_are_404(api, business):
    missing = error(api.request("GET", f"{API}/analytics/customers/no-such-customer/scores",
                                role="customer_manager"), 404)
    assert missing["code"] == "not_found"
    assert missing["details"] == {"customer_id": "no-such-customer"}


# ---------------------------------------------------------------- roles

FORBIDDEN = [
    ("executive", "POST", "/analytics/recompute", {}),
    ("marketer", "POST", "/analytics/recompute", {}),
    ("sales_supervisor", "POST", "/analytics/recompute", {}),
    ("executive", "PUT", "/analytics/clv/parameters", {"discount_rate": "0.1"}),
    ("marketer", "PUT", "/analytics/clv/parameters", {"discount_rate": "0.1"}),
    ("executive", "POST", "/analytics/clusters", {"features": ["monetary"]}),
    ("sales_supervisor", "POST", "/analytics/clusters", {"features": ["monetary"]}),
    ("customer_manager", "GET", "/analytics/rfm", None),
    ("service_agent", "GET", "/analytics/clv", None),
    ("customer_manager", "GET", "/analytics/churn/warnings", None),
    ("technician", "GET", "/analytics/customers/c-1/scores", None),
    ("customer_manager", "GET", "/analytics/runs/1", None),
    ("service_agent", "GET", "/analytics/clusters", None),
    ("technician", "GET", "/analytics/clusters/x", None),
    ("customer_manager", "GET", "/analytics/clv/parameters", None),
    *(("customer_manager", "GET", path, None) for path in REPORTS),
    ("service_agent", "GET", "/analytics/funnel", None),
    ("technician", "GET", "/analytics/contribution", None),
]


@pytest.mark.parametrize("role, method, path, body", FORBIDDEN)
def test_a_role_outside_the_table_is_refused_before_the_service(api, services, analytics_calls,
                                                                 role, method, path, body):
    api.role_token(role)
    before = analytics_calls()
    kwargs = {"json": body} if body is not None else {}
    refused = error(api.request(method, f"{API}{path}", role=role, **kwargs), 403)
    assert refused["code"] == "forbidden"
    assert analytics_calls() == before


@pytest.mark.parametrize("role", ["admin", "executive", "sales_supervisor", "marketer"])
def test_readers_read_every_report(api, business, role):
    run_id = get(api, f"/analytics/customers/{business.zhang['id']}/scores")["run_id"]
    for path in (*REPORTS, "/analytics/rfm", "/analytics/clv", "/analytics/churn/warnings",
                 "/analytics/clusters", "/analytics/clv/parameters", f"/analytics/runs/{run_id}",
                 f"/analytics/customers/{business.zhang['id']}/scores"):
        assert api.request("GET", f"{API}{path}", role=role).status_code == 200, (role, path)


def test_the_openapi_document_has_analytics(api):
    spec = ok(api.client.get(f"{API}/openapi.json"))
    paths = spec["paths"]
    assert {f"{API}{path}" for path in REPORTS} | {
        f"{API}/analytics/customers/{{customer_id}}/scores", f"{API}/analytics/rfm",
        f"{API}/analytics/clv", f"{API}/analytics/clv/parameters", f"{API}/analytics/recompute",
        f"{API}/analytics/runs/{{run_id}}", f"{API}/analytics/clusters",
        f"{API}/analytics/clusters/{{run_id}}", f"{API}/analytics/churn/warnings"} <= set(paths)
    assert "202" in paths[f"{API}/analytics/recompute"]["post"]["responses"]
    for path, name in REPORTS.items():
        responses = paths[f"{API}{path}"]["get"]["responses"]
        media = set(responses["200"]["content"])
        assert media == ({"application/json", "text/csv", "image/png"} if name in CHARTS
                         else {"application/json", "text/csv"}), path
        assert "406" in responses and "Content-Disposition" in responses["200"]["headers"]
    schemas = spec["components"]["schemas"]
    for name, field in (("Scores", "clv"), ("RfmItem", "monetary"), ("ClvItem", "clv"),
                        ("SalesTrend", "items"), ("Contribution", "revenue"),
                        ("ClvParametersIn", "acquisition_cost"), ("ScoreRun", "run_id")):
        assert field in schemas[name]["properties"], (name, field)
    assert schemas["ClvParametersIn"]["properties"]["acquisition_cost"]["type"] == "string"
    assert schemas["ScoreRun"]["properties"]["run_id"]["type"] == "string"
