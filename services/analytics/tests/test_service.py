"""The analytics service as it runs, beside the real customer, sales and service-desk services,
on the real RabbitMQ with SQLite and PostgreSQL: its store fills from their events, a recompute
scores customers and writes the scores back (value tier on the customer record, a churn warning
that moves the customer to churn_warning), the owner's decision comes back, and the store
rebuilt from the event history gives the same scores."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from crm_kit.testing import wait_until

STAFF = {"id": "staff-1", "roles": ["sales_supervisor"]}


@pytest.fixture
def services(start_service, database_url, postgres_database, tmp_path):
    def url(name):
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / (name + '.db')}"
        return postgres_database(name)

    start_service("customer_service.service:CustomerService", url("customer"), name="customer")
    start_service("sales_service.service:SalesService", url("sales"), name="sales")
    start_service("service_desk_service.service:ServiceDeskService", url("service_desk"),
                  name="service_desk")
    return start_service("analytics_service.service:AnalyticsService", database_url,
                         name="analytics")


@pytest.fixture
def rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as proxy:
        yield proxy


def tenant(rpc, name, mobile, code, days_ago):
    customer = rpc.customer.create_customer({"name": name, "mobile": mobile,
                                             "owner_id": "staff-1", "district": "高新区"}, STAFF)
    unit = rpc.sales.create_unit({"code": code, "building": "A栋", "district": "高新区",
                                  "layout": "1b1b", "area_sqm": "40.00", "floor": 3,
                                  "monthly_rent": "3000.00"}, STAFF)
    start = date.today() - timedelta(days=days_ago)
    lease = rpc.sales.sign_lease({
        "customer_id": customer["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": "3000.00",
        "deposit": "3000.00", "payment_cycle": "monthly"}, STAFF)
    return customer, lease


def pay(rpc, bill):
    rpc.sales.record_payment({"bill_id": bill["id"], "amount": bill["amount"],
                              "paid_at": datetime.now(timezone.utc).isoformat(),
                              "method": "wechat_pay"}, f"pay-{bill['id']}", STAFF)


def scored(rpc, customer_id, check):
    def attempt():
        rpc.analytics.recompute()
        try:
            scores = rpc.analytics.get_scores(customer_id)
        except Exception:
            return None
        return scores if check(scores) else None
    return wait_until(attempt, timeout=30, interval=0.5, message="scores from the events")


def test_scores_warnings_and_a_rebuilt_store(services, rpc):
    good, good_lease = tenant(rpc, "按时交租", "13811110001", "GX-0101", days_ago=70)
    due = [b for b in good_lease["bills"] if date.fromisoformat(b["due_date"]) <= date.today()]
    for bill in due:
        pay(rpc, bill)
    rent = [b for b in due if b["kind"] == "rent"]
    risky, _ = tenant(rpc, "拖欠投诉", "13811110002", "GX-0102", days_ago=45)
    for text in ("热水器坏了三天没人修", "维修太慢，很不满意"):
        ticket = rpc.service_desk.create_ticket({"customer_id": risky["id"], "type": "complaint",
                                                 "channel": "phone", "description": text},
                                                STAFF)
    rpc.service_desk.assign_ticket(ticket["id"], "agent-1", STAFF)
    rpc.service_desk.change_ticket_status(ticket["id"], "resolved", "已修好", STAFF)
    rpc.service_desk.record_feedback(ticket["id"], {"rating": 1, "comment": "服务太差，很不满意"},
                                     STAFF)

    # RFM and CLV from the payments (the deposit is not revenue)
    scores = scored(rpc, good["id"], lambda s: s["rfm"]["frequency"] == len(rent))
    assert scores["rfm"]["monetary"] == f"{sum(Decimal(b['amount']) for b in rent):.2f}"
    assert scores["rfm"]["recency_days"] == 0 and scores["value_tier"] == "key"
    assert Decimal(scores["clv"]) > 0
    wait_until(lambda: rpc.customer.get_customer(good["id"])["value_tier"] == "key",
               message="customer.scored reached the customer record")

    # the risky tenant: overdue bills, two complaints and a rating of 1 → a churn warning
    risk = scored(rpc, risky["id"], lambda s: s["churn_risk"]["score"] >= 60)["churn_risk"]
    assert {"overdue_bills", "complaints", "low_rating"} <= {r["code"] for r in risk["reasons"]}
    ours = {good["id"], risky["id"]}
    warnings = rpc.analytics.list_churn_warnings({"status": "open"}, 1, 200)["items"]
    assert [w["customer_id"] for w in warnings if w["customer_id"] in ours] == [risky["id"]]
    wait_until(lambda: rpc.customer.get_customer(risky["id"])["stage"] == "churn_warning",
               message="churn.warning_raised moved the customer")
    rpc.customer.churn_decision(risky["id"], "keep_trying", "承诺下周补缴", None, STAFF)
    wait_until(lambda: rpc.analytics.list_churn_warnings(
        {"status": "kept", "customer_id": risky["id"]}, 1, 50)["total"] == 1,
        message="the owner's decision reflected back")
    rpc.analytics.recompute()  # still at risk, but the owner decided: no second warning
    assert rpc.analytics.list_churn_warnings({"customer_id": risky["id"]}, 1, 50)["total"] == 1

    # reports over the same store, as JSON, CSV and PNG
    trend = rpc.analytics.sales_trend({"granularity": "month"})
    assert sum(Decimal(i["revenue"]) for i in trend["items"]) == Decimal(scores["rfm"]["monetary"])
    csv = rpc.analytics.export_report("sales_trend", {"granularity": "month"}, "csv")
    assert csv["content_type"].startswith("text/csv")
    png = rpc.analytics.export_report("funnel", None, "png")
    assert png["content_type"] == "image/png"

    # the store rebuilt from the services' event history scores the same
    before = rpc.analytics.get_scores(good["id"])
    rebuilt = rpc.analytics.rebuild_store()
    assert rebuilt["events"]["sales"] > 0 and rebuilt["events"]["customer"] > 0
    rpc.analytics.recompute()
    after = rpc.analytics.get_scores(good["id"])
    assert (after["rfm"], after["clv"], after["value_tier"]) == (
        before["rfm"], before["clv"], before["value_tier"])
