"""The marketing service as it runs, beside the real customer and sales services, on the real
RabbitMQ with SQLite and PostgreSQL: its copy of customers and leases comes from their events,
a campaign reaches the segment through the delivery log, a response opens a lead in sales and the
lease won with it shows in the campaign's stats; care rules greet once; erasure reaches the log."""
from datetime import date, timedelta

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from crm_kit.errors import Conflict, InvalidInput
from crm_kit.testing import EventTap, wait_until

MARKETER = {"id": "mkt-1", "roles": ["marketer"]}
MANAGER = {"id": "staff-1", "roles": ["customer_manager"]}


@pytest.fixture
def services(start_service, database_url, postgres_database, tmp_path):
    def url(name):
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / (name + '.db')}"
        return postgres_database(name)

    start_service("customer_service.service:CustomerService", url("customer"), name="customer")
    start_service("sales_service.service:SalesService", url("sales"), name="sales")
    return start_service("marketing_service.service:MarketingService", database_url,
                         name="marketing", env={"CRM_MARKETING_DISPATCH_SECONDS": "0.2"})


@pytest.fixture
def rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=15) as proxy:
        yield proxy


def customer(rpc, name, mobile, **fields):
    data = {"name": name, "mobile": mobile, "owner_id": "staff-1", "district": "高新区",
            "consent": {"sms": True, "email": True, "wechat": True, "in_app": True}, **fields}
    return rpc.customer.create_customer(data, MANAGER)


def size(rpc, segment_id):
    return rpc.marketing.preview_segment(segment_id, 1, 200)["total"]


def test_campaign_from_segment_to_lease_won(services, rpc, amqp_uri):
    tap = EventTap(amqp_uri, "marketing")
    tech = [customer(rpc, f"程序员{i}", f"1390000000{i}", industry="software", tags=["tech"])
            for i in range(4)]
    silent = customer(rpc, "不打扰", "13900000009", industry="software", tags=["tech"],
                      consent={"sms": False})
    customer(rpc, "别的行业", "13900000010", industry="finance", tags=["finance"])
    segment = rpc.marketing.create_segment({"name": "科技人", "rules": {"tags": ["tech"]}},
                                           MARKETER)
    wait_until(lambda: size(rpc, segment["id"]) == 5, message="customers copied from events")

    campaign = rpc.marketing.create_campaign({
        "name": "高新区新房源", "segment_id": segment["id"], "channel": "sms",
        "template": "{name}您好，{district}有新房源", "cost": "500.00"}, MARKETER)
    assert campaign["status"] == "draft" and campaign["cost"] == "500.00"
    launched = rpc.marketing.launch_campaign(campaign["id"], MARKETER)
    assert launched["status"] == "launching"
    with pytest.raises(Conflict):
        rpc.marketing.launch_campaign(campaign["id"], MARKETER)

    stats = wait_until(lambda: (lambda s: s if s["status"] == "completed" else None)(
        rpc.marketing.campaign_stats(campaign["id"])), message="campaign sent")
    assert (stats["audience"], stats["recipients"], stats["skipped"]) == (5, 4, {"no_consent": 1})
    assert (stats["delivered"], stats["delivery_rate"]) == (4, 1.0)
    log = rpc.marketing.list_messages({"campaign_id": campaign["id"]}, 1, 50)["items"]
    bodies = {m["customer_id"]: m["body"] for m in log}
    assert bodies[tech[0]["id"]] == "程序员0您好，高新区有新房源"
    assert bodies[silent["id"]] is None
    assert {m["status"] for m in log} == {"delivered", "skipped"}
    tap.wait_for(lambda e: e["type"] == "campaign.launched", message="campaign.launched")
    tap.wait_for(lambda e: e["type"] == "message.delivered"
                 and e["data"]["customer_id"] == tech[0]["id"], message="message.delivered")

    # a response opens a lead in sales; the lease won with it is the campaign's
    with pytest.raises(InvalidInput) as refused:
        rpc.marketing.record_response(campaign["id"], {"customer_id": silent["id"]}, MANAGER)
    assert "customer_id" in refused.value.args[1]
    rpc.marketing.record_response(campaign["id"], {"customer_id": tech[0]["id"],
                                                   "response": "想看两居室"}, MANAGER)
    with pytest.raises(Conflict):
        rpc.marketing.record_response(campaign["id"], {"customer_id": tech[0]["id"]}, MANAGER)
    lead = wait_until(lambda: rpc.sales.list_opportunities(
        {"customer_id": tech[0]["id"]}, 1, 10)["items"], message="lead opened in sales")[0]
    assert (lead["source"], lead["campaign_id"]) == ("campaign", campaign["id"])
    unit = rpc.sales.create_unit({"code": "GX-0801", "building": "A栋", "district": "高新区",
                                  "layout": "2b1b", "area_sqm": "60.00", "floor": 8,
                                  "monthly_rent": "4200.00"}, MANAGER)
    start = date.today()
    rpc.sales.sign_lease({"customer_id": tech[0]["id"], "unit_id": unit["id"],
                          "opportunity_id": lead["id"], "start_date": start.isoformat(),
                          "end_date": (start + timedelta(days=364)).isoformat(),
                          "monthly_rent": "4200.00", "deposit": "4200.00",
                          "payment_cycle": "monthly"}, MANAGER)
    stats = wait_until(lambda: (lambda s: s if s["leases_won"] == 1 else None)(
        rpc.marketing.campaign_stats(campaign["id"])), message="lease won counted")
    assert (stats["responses"], stats["opportunities"]) == (1, 1)
    assert stats["cost_per_lease"] == "500.00"

    # the lease is in marketing's copy: a lease-facts segment finds the tenant
    ending = rpc.marketing.create_segment(
        {"name": "一年内到期", "rules": {"lease_ends_within_days": 366}}, MARKETER)
    assert [m["customer_id"] for m in rpc.marketing.preview_segment(ending["id"], 1, 50)
            ["items"]] == [tech[0]["id"]]
    tap.close()


def test_care_rules_greet_once_and_erasure_reaches_the_log(services, rpc):
    today = date.today()
    birthday = today.replace(year=1996) if not (today.month == 2 and today.day == 29) \
        else date(1996, 2, 29)
    person = customer(rpc, "寿星", "13700000001", birthday=birthday.isoformat())
    customer(rpc, "别人", "13700000002", birthday="1990-01-01" if today.strftime("%m-%d")
             != "01-01" else "1990-01-02")
    rule = rpc.marketing.create_care_rule({"kind": "birthday", "channel": "in_app",
                                           "template": "{name}，生日快乐！"}, MARKETER)
    wait_until(lambda: rpc.marketing.resync_audience()["customers"] >= 2,
               message="customers visible to marketing")
    wait_until(lambda: rpc.marketing.run_care_rules(today.isoformat()) is not None
               and rpc.marketing.list_messages({"care_rule_id": rule["id"]}, 1, 10)["total"]
               == 1, message="birthday greeting recorded")
    assert rpc.marketing.run_care_rules(today.isoformat()) == {rule["id"]: 0}  # once
    message = wait_until(lambda: [m for m in rpc.marketing.list_messages(
        {"customer_id": person["id"]}, 1, 10)["items"] if m["status"] == "delivered"],
        message="greeting delivered")[0]
    assert message["body"] == "寿星，生日快乐！" and message["recipient"] == person["id"]

    rpc.customer.erase_customer(person["id"], {"id": "admin", "roles": ["admin"]})
    wait_until(lambda: rpc.marketing.get_message(message["id"])["body"] == "(erased)",
               message="erasure reached the delivery log")


def test_two_instances_keep_the_frequency_cap(start_service, postgres_database, tmp_path, rpc):
    """Two marketing processes on one PostgreSQL database record two campaigns launched at
    once: with a cap of one campaign message a week, each customer gets exactly one."""
    start_service("customer_service.service:CustomerService",
                  f"sqlite:///{tmp_path / 'customer.db'}", name="customer")
    url = postgres_database("marketing_twice")
    env = {"CRM_MARKETING_DISPATCH_SECONDS": "0.2", "CRM_MARKETING_CAP_MESSAGES": "1",
           "CRM_MARKETING_RECORD_CHUNK": "7"}
    for _ in range(2):
        start_service("marketing_service.service:MarketingService", url, name="marketing",
                      env=env)
    people = [customer(rpc, f"双实例{i}", f"1360000{i:04d}", tags=["twice"]) for i in range(40)]
    segment = rpc.marketing.create_segment({"name": "两个实例", "rules": {"tags": ["twice"]}},
                                           MARKETER)
    wait_until(lambda: size(rpc, segment["id"]) == len(people), message="customers copied")
    launched = [rpc.marketing.create_campaign({
        "name": f"活动{n}", "segment_id": segment["id"], "channel": "sms",
        "template": "{name}您好"}, MARKETER) for n in range(2)]
    for campaign in launched:
        rpc.marketing.launch_campaign(campaign["id"], MARKETER)

    def recorded():
        stats = [rpc.marketing.campaign_stats(c["id"]) for c in launched]
        return all(s["status"] in ("sending", "completed") for s in stats) and stats
    stats = wait_until(recorded, timeout=30, message="both campaigns recorded")
    assert [s["audience"] for s in stats] == [40, 40]
    assert stats[0]["recipients"] + stats[1]["recipients"] == 40  # one message each
    assert stats[1]["skipped"] == {"frequency_cap": stats[1]["audience"] - stats[1]["recipients"]}


def test_an_event_breaking_its_contract_is_dead_lettered_and_the_queue_flows(
        start_service, tmp_path, rpc, amqp_uri):
    from crm_kit.testing import publish_event

    from marketing_fixtures import snapshot

    start_service("marketing_service.service:MarketingService",
                  f"sqlite:///{tmp_path / 'marketing.db'}", name="marketing")
    broken = snapshot(name="坏事件")
    del broken["updated_at"]  # the version every consumer orders records by
    bad = publish_event(amqp_uri, "customer", "customer.created", broken)
    good = snapshot(name="好事件", tags=["contract"])
    publish_event(amqp_uri, "customer", "customer.created", good)
    segment = rpc.marketing.create_segment({"name": "契约", "rules": {"tags": ["contract"]}},
                                           MARKETER)
    wait_until(lambda: size(rpc, segment["id"]) == 1, message="the good event applied")
    [letter] = wait_until(lambda: rpc.marketing.list_dead_letters(), message="dead letter")
    assert letter["event_id"] == bad["event_id"]
    error = " ".join(letter["error"])
    assert "breaks its contract" in error and "updated_at" in error
