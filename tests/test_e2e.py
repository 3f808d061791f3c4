"""End to end: the system started as `make up` starts it, driven over HTTP like a staff app."""
import csv
import io
import subprocess
import sys

import pytest
import requests

from crm_kit.testing import free_port, http_get, wait_until

from e2e_support import ADMIN, ROOT

pytestmark = pytest.mark.e2e


class Client:
    def __init__(self, base, username, password):
        self.base = base + "/api/v1"
        response = requests.post(self.base + "/auth/token",
                                 json={"username": username, "password": password}, timeout=10)
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def __getattr__(self, method):
        def call(path, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return requests.request(method.upper(), self.base + path, headers=headers,
                                    timeout=15, **kwargs)
        return call


def test_staff_work_with_customers_through_the_gateway(system):
    admin = Client(system.url, *ADMIN)
    staff = admin.post("/staff", json={"username": "li.manager", "password": "manager-pass-1",
                                       "display_name": "李经理", "roles": ["customer_manager"]})
    assert staff.status_code == 201, staff.text
    assert "password_hash" not in staff.json() and "password" not in staff.json()
    manager = Client(system.url, "li.manager", "manager-pass-1")

    created = manager.post("/customers", json={
        "name": "王小明", "mobile": "13800138000", "email": "xm@example.com",
        "id_number": "11010519491231002X", "district": "高新区", "tags": ["vip"],
        "consent": {"sms": True}})
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["stage"] == "potential" and customer["member"] == {"tier": "standard",
                                                                       "points": 0}
    assert customer["owner_id"] == staff.json()["id"]  # a manager owns what they create
    customer_id = customer["id"]

    # the same mobile again: 409 naming the existing customer; bad values: 422 naming fields
    again = manager.post("/customers", json={"name": "x", "mobile": "13800138000"})
    assert again.status_code == 409 and customer_id in again.text
    bad = manager.post("/customers", json={"name": "", "mobile": "12", "email": "nope",
                                           "gender": "x", "stage": "repeat", "points": 9})
    assert bad.status_code == 422  # every bad or forbidden field named in one answer
    assert set(bad.json()["error"]["details"]) == {"name", "mobile", "email", "gender", "stage",
                                                   "points"}
    assert manager.get("/customers").json()["total"] == 1

    assert manager.post(f"/customers/{customer_id}/interactions", json={
        "channel": "wechat", "direction": "inbound", "summary": "asked about 2-bedroom units"}
    ).status_code == 201
    assert manager.get(f"/customers/{customer_id}/interactions").json()["total"] == 1
    moved = manager.post(f"/customers/{customer_id}/stage",
                         json={"stage": "intent", "reason": "booked a viewing"})
    assert moved.status_code == 200 and moved.json()["stage"] == "intent"
    history = manager.get(f"/customers/{customer_id}/stage-history").json()
    assert [(h["to_stage"], h["trigger"]) for h in history] == [("potential", "created"),
                                                                ("intent", "manual")]

    view = manager.get(f"/customers/{customer_id}/360")
    assert view.status_code == 200
    body = view.json()
    assert body["profile"]["id"] == customer_id
    assert body["leases"] == {"available": True, "items": []}  # no lease yet
    assert body["tickets"] == {"available": True, "items": []}  # no ticket yet

    # a marketer sees the record masked
    assert admin.post("/staff", json={"username": "zhao.marketing", "password": "marketer-pass-1",
                                      "display_name": "市场", "roles": ["marketer"]}
                      ).status_code == 201
    marketer = Client(system.url, "zhao.marketing", "marketer-pass-1")
    seen = marketer.get(f"/customers/{customer_id}").json()
    assert seen["mobile"] != "13800138000" and "****" in seen["mobile"]
    assert seen["id_number"] != "11010519491231002X"
    assert marketer.post("/customers", json={"name": "x", "mobile": "13900139000"}
                         ).status_code == 403


def test_csv_import_and_export(system):
    admin = Client(system.url, *ADMIN)
    text = ("\ufeffname,mobile,email,tags\n"
            "张三,13700137000,zs@example.com,vip;new\n"
            "bad,123,,\n")
    result = admin.post("/customers/import", data=text.encode("utf-8"),
                        headers={"Content-Type": "text/csv"})
    assert result.status_code == 200, result.text
    assert result.json()["created"] == 1 and [e["row"] for e in result.json()["errors"]] == [3]
    exported = admin.get("/customers/export")
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == ["张三"]


def test_ops_endpoints_and_metrics(system):
    assert http_get(system.url + "/healthz")[0] == 200
    status, body = http_get(system.url + "/api/v1/openapi.json")
    assert status == 200 and "/api/v1/customers" in body
    assert http_get(system.url + "/docs")[0] == 200
    Client(system.url, *ADMIN).get("/customers")
    status, metrics = http_get(system.url + "/metrics")
    assert status == 200 and "crm_http_requests_total" in metrics
    status, metrics = http_get(f"http://127.0.0.1:{system.customer_port}/metrics")
    assert 'crm_entrypoint_calls_total{entrypoint="list_customers"' in metrics


def test_ctrl_c_stops_everything_cleanly(system):
    assert system.stop() == 0
    assert http_get(system.url + "/healthz")[0] is None
    assert http_get(f"http://127.0.0.1:{system.customer_port}/healthz")[0] is None


def test_missing_broker_gets_a_clear_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CRM_DATA_DIR": str(tmp_path),
           "CRM_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "up.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Cannot reach RabbitMQ" in done.stderr
    assert "rabbitmq-server" in done.stderr


def test_leasing_through_the_gateway_moves_the_customer_and_shows_in_the_360(system):
    from datetime import date, datetime, timedelta, timezone
    from decimal import Decimal

    admin = Client(system.url, *ADMIN)
    customer = admin.post("/customers", json={"name": "陈租客", "mobile": "13500135000"}).json()
    unit = admin.post("/units", json={"code": "JJ-0801", "building": "锦江公寓", "district": "锦江区",
                                      "layout": "1b1b", "area_sqm": "40.00", "floor": 8,
                                      "monthly_rent": "3200.00"})
    assert unit.status_code == 201, unit.text
    start = date.today() - timedelta(days=45)  # entered after the fact: some rent is overdue
    lease = admin.post("/leases", json={
        "customer_id": customer["id"], "unit_id": unit.json()["id"],
        "start_date": start.isoformat(), "end_date": (start + timedelta(days=364)).isoformat(),
        "monthly_rent": "3200.00", "deposit": "3200.00", "payment_cycle": "monthly"})
    assert lease.status_code == 201, lease.text
    body = lease.json()
    rent = [b for b in body["bills"] if b["kind"] == "rent"]
    assert sum(Decimal(b["amount"]) for b in rent) == Decimal(body["term_rent"])
    overdue = admin.get("/bills", params={"status": "overdue", "customer_id": customer["id"]})
    assert overdue.json()["total"] >= 2  # the deposit and the first rent, at once

    bill = overdue.json()["items"][0]
    key = {"Idempotency-Key": "e2e-payment-1"}
    payment = {"bill_id": bill["id"], "amount": bill["balance"],
               "paid_at": datetime.now(timezone.utc).isoformat(), "method": "wechat_pay"}
    first = admin.post("/payments", json=payment, headers=key)
    assert first.status_code == 201 and first.json()["status"] == "paid"
    assert admin.post("/payments", json=payment, headers=key).json() == first.json()
    over = admin.post("/payments", json={**payment, "bill_id": overdue.json()["items"][1]["id"],
                                         "amount": "99999.00"})
    assert over.status_code == 422 and "amount" in over.json()["error"]["details"]

    points = int(Decimal(bill["balance"]) // 10)

    def settled():
        view = admin.get(f"/customers/{customer['id']}/360").json()
        return (view["profile"]["stage"] == "first_time"
                and view["profile"]["member"]["points"] == points and view)
    view = wait_until(settled, timeout=15, message="lease.signed and payment.received applied")
    assert view["leases"]["available"] and view["leases"]["items"][0]["id"] == body["id"]


def test_a_campaign_reaches_its_segment_and_a_response_becomes_a_lead(system):
    admin = Client(system.url, *ADMIN)
    people = [admin.post("/customers", json={
        "name": name, "mobile": mobile, "district": "武侯区", "tags": ["e2e-营销"],
        "consent": {"sms": consent}}).json()
        for name, mobile, consent in (("赵一", "13600136001", True), ("钱二", "13600136002", True),
                                      ("孙三", "13600136003", False))]
    segment = admin.post("/segments", json={"name": "武侯区营销", "rules": {"tags": ["e2e-营销"]}})
    assert segment.status_code == 201, segment.text
    segment_id = segment.json()["id"]
    wait_until(lambda: admin.get(f"/segments/{segment_id}/preview").json()["total"] == 3,
               timeout=15, message="marketing's copy of the customers")
    bad = admin.post("/campaigns", json={"name": "x", "segment_id": segment_id, "channel": "sms",
                                         "template": "{nickname}您好"})
    assert bad.status_code == 422 and "template" in bad.json()["error"]["details"]
    campaign = admin.post("/campaigns", json={
        "name": "武侯新盘", "segment_id": segment_id, "channel": "sms",
        "template": "{name}您好，{district}新房源开放预约", "cost": "300.00"}).json()
    assert admin.post(f"/campaigns/{campaign['id']}/launch").status_code == 202

    def completed():
        stats = admin.get(f"/campaigns/{campaign['id']}/stats").json()
        return stats["status"] == "completed" and stats
    stats = wait_until(completed, timeout=20, message="campaign sent")
    assert (stats["recipients"], stats["delivered"], stats["skipped"]) == (2, 2, {"no_consent": 1})
    sent = admin.get("/messages", params={"customer_id": people[0]["id"]}).json()["items"]
    assert [m["body"] for m in sent] == ["赵一您好，武侯区新房源开放预约"]

    answer = admin.post(f"/campaigns/{campaign['id']}/responses",
                        json={"customer_id": people[0]["id"], "response": "想预约看房"})
    assert answer.status_code == 201, answer.text
    lead = wait_until(lambda: admin.get("/opportunities", params={
        "customer_id": people[0]["id"]}).json()["items"], timeout=15, message="lead opened")[0]
    assert (lead["source"], lead["campaign_id"]) == ("campaign", campaign["id"])
    view = admin.get(f"/customers/{people[0]['id']}/360").json()
    assert view["messages"]["available"] and view["messages"]["items"][0]["body"] == sent[0]["body"]


def test_analytics_scores_reports_and_the_360(system):
    from datetime import date, datetime, timedelta, timezone
    from decimal import Decimal

    admin = Client(system.url, *ADMIN)
    customer = admin.post("/customers", json={"name": "吴分析", "mobile": "13700137001",
                                              "district": "成华区"}).json()
    unit = admin.post("/units", json={"code": "CH-0501", "building": "成华公寓",
                                      "district": "成华区", "layout": "1b1b",
                                      "area_sqm": "35.00", "floor": 5,
                                      "monthly_rent": "2800.00"}).json()
    start = date.today() - timedelta(days=40)
    lease = admin.post("/leases", json={
        "customer_id": customer["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=364)).isoformat(), "monthly_rent": "2800.00",
        "deposit": "2800.00", "payment_cycle": "monthly"}).json()
    rent = [b for b in lease["bills"] if b["kind"] == "rent"
            and date.fromisoformat(b["due_date"]) <= date.today()]
    for bill in rent:
        paid = admin.post("/payments", json={
            "bill_id": bill["id"], "amount": bill["amount"], "method": "alipay",
            "paid_at": datetime.now(timezone.utc).isoformat()},
            headers={"Idempotency-Key": f"e2e-analytics-{bill['id']}"})
        assert paid.status_code == 201, paid.text

    def scored():
        run = admin.post("/analytics/recompute", json={})
        if run.status_code == 409:
            return None
        assert run.status_code == 202, run.text
        run_id = run.json()["run_id"]
        done = wait_until(lambda: admin.get(f"/analytics/runs/{run_id}").json()["status"]
                          in ("done", "failed"), timeout=30, message="recompute finished")
        assert done
        scores = admin.get(f"/analytics/customers/{customer['id']}/scores")
        return (scores.status_code == 200 and scores.json()["rfm"]["frequency"] == len(rent)
                and scores.json())
    scores = wait_until(scored, timeout=60, interval=0.5, message="the payments scored")
    assert Decimal(scores["rfm"]["monetary"]) == sum(Decimal(b["amount"]) for b in rent)
    assert scores["value_tier"] == "key"  # the only customer with revenue
    wait_until(lambda: admin.get(f"/customers/{customer['id']}").json()["value_tier"] == "key",
               timeout=15, message="the tier written back to the customer")
    view = admin.get(f"/customers/{customer['id']}/360").json()
    assert view["scores"]["available"] and view["scores"]["data"]["value_tier"] == "key"

    trend = admin.get("/analytics/sales/trend", params={"granularity": "month"})
    assert trend.status_code == 200 and trend.json()["granularity"] == "month"
    table = admin.get("/analytics/sales/trend", headers={"Accept": "text/csv"})
    assert table.status_code == 200 and table.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert rows and "revenue" in rows[0]
    chart = admin.get("/analytics/contribution", headers={"Accept": "image/png"})
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
