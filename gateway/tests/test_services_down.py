"""Services that do not run, for real: a clear 503 at once when the customer service was never
deployed (a vhost where it never ran), within the RPC timeout when it was deployed and has
stopped; and a 360 view, from the real customer service, that says which parts are missing
(when sales, service_desk, marketing and analytics do not run) or what each other service
answered (the real sales, service-desk and analytics services; stand-ins, ``other_services.py``,
for what no real service answers: a slow or broken marketing, scores with personal data in
them)."""
import time
from datetime import date, timedelta

from crm_kit.testing import wait_until
from gateway_support import RPC_TIMEOUT, masked_id_number, masked_mobile, resident_id

SECTIONS = ("opportunities", "leases", "tickets", "messages", "scores")
REQUESTS = [
    ("GET", "/api/v1/customers/c-1", None),
    ("GET", "/api/v1/customers?per_page=10", None),
    ("POST", "/api/v1/customers", {"name": "王芳", "mobile": "13912345678"}),
    ("GET", "/api/v1/customers/c-1/360", None),
]


def assert_503_within(api, limit):
    for method, path, body in REQUESTS:
        started = time.monotonic()
        response = api.request(method, path, role="sales_supervisor", json=body)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, (path, response.json)
        assert response.json["error"]["code"] == "service_unavailable"
        assert response.json["error"]["details"] == {"service": "customer"}
        assert response.headers["Retry-After"]
        assert elapsed < limit, (path, elapsed)


def test_customer_service_never_deployed_is_503_at_once(idle_api):
    idle_api.role_token("sales_supervisor")
    assert_503_within(idle_api, 0.5)  # the broker returns the call: nobody to route it to


def test_customer_service_stopped_is_503_within_the_rpc_timeout(spare_api,
                                                                spare_customer_service):
    spare_api.role_token("sales_supervisor")
    assert spare_api.request("GET", "/api/v1/customers?per_page=1",
                             role="sales_supervisor").status_code == 200
    spare_customer_service.kill()  # its queue stays, nobody consumes it
    started = time.monotonic()
    assert_503_within(spare_api, RPC_TIMEOUT + 1.0)
    assert time.monotonic() - started < 2 * RPC_TIMEOUT + 1.0  # found out once, not per call


def test_360_marks_services_that_do_not_run(module_api):
    customer = module_api.create_customer(role="customer_manager")
    logged = module_api.request("POST", f"/api/v1/customers/{customer['id']}/interactions",
                                role="customer_manager",
                                json={"channel": "wechat", "summary": "asked about a 1-bedroom"})
    assert logged.status_code == 201, logged.json

    started = time.monotonic()
    response = module_api.request("GET", f"/api/v1/customers/{customer['id']}/360",
                                  role="customer_manager")
    assert time.monotonic() - started < RPC_TIMEOUT + 1.0
    assert response.status_code == 200
    view = response.json
    assert view["profile"]["id"] == customer["id"]
    assert view["profile"]["mobile"] == customer["mobile"]
    assert view["stage_history"][0]["to_stage"] == "potential"
    assert view["stage_history"][0]["actor_id"] == module_api.role_id("customer_manager")
    [interaction] = view["interactions"]["items"]
    assert interaction["id"] == logged.json["id"] and isinstance(interaction["id"], str)
    assert interaction["summary"] == "asked about a 1-bedroom"
    for section in SECTIONS:
        assert view[section]["available"] is False, section
        assert view[section]["reason"] == "service_unavailable"
        assert view[section]["message"]


def leased(service_rpc, customer_id):
    """A real unit, opportunity and signed lease (with its bills) of the customer in sales."""
    actor = {"id": "staff-1", "roles": ["customer_manager"]}
    unit = service_rpc.call("sales", "create_unit", {
        "code": "GX-1203", "building": "天府软件园公寓A栋", "district": "高新区", "layout": "1b1b",
        "area_sqm": "38.50", "floor": 12, "monthly_rent": "3500.00"}, actor)
    opportunity = service_rpc.call("sales", "create_opportunity",
                                   {"customer_id": customer_id, "source": "website"}, actor)
    start = date.today()
    lease = service_rpc.call("sales", "sign_lease", {
        "customer_id": customer_id, "unit_id": unit["id"], "opportunity_id": opportunity["id"],
        "start_date": start.isoformat(), "end_date": (start + timedelta(days=364)).isoformat(),
        "monthly_rent": "3500.00", "deposit": "3500.00", "payment_cycle": "quarterly"}, actor)
    return opportunity, lease


def test_360_keeps_what_answers_and_masks_it(module_api, sales_service, service_desk_service,
                                             other_services, service_rpc):
    """The real sales and service-desk services; stand-ins for what no real service answers: a
    marketing that times out, and scores that repeat the customer's mobile and ID number (the
    real analytics service's never do) and echo what they were asked with."""
    other_services("slow", odd_analytics=True)
    id_number = resident_id()
    customer = module_api.create_customer(id_number=id_number)
    opportunity, lease = leased(service_rpc, customer["id"])

    response = module_api.request("GET", f"/api/v1/customers/{customer['id']}/360",
                                  role="marketer", headers={"X-Request-ID": "req-360-1"})
    assert response.status_code == 200, response.json
    view = response.json

    assert view["profile"]["id"] == customer["id"]
    assert view["opportunities"]["available"] is True
    assert [o["id"] for o in view["opportunities"]["items"]] == [opportunity["id"]]
    assert view["leases"]["available"] is True
    [shown] = view["leases"]["items"]
    assert (shown["id"], shown["customer_id"]) == (lease["id"], customer["id"])
    # each lease with its bills (asked for separately, joined by the gateway)
    assert sorted(b["id"] for b in shown["bills"]) == sorted(b["id"] for b in lease["bills"])
    assert {b["lease_id"] for b in shown["bills"]} == {lease["id"]}

    assert view["tickets"] == {"available": True, "items": []}  # the real desk: none yet
    scores = view["scores"]["data"]
    assert scores["contact"]["mobile"] == masked_mobile(customer["mobile"])
    assert scores["contact"]["id_number"] == masked_id_number(id_number)
    assert customer["mobile"] not in response.get_data(as_text=True)
    assert id_number not in response.get_data(as_text=True)
    assert view["messages"] == {"available": False, "reason": "service_timeout",
                                "message": "The marketing service did not answer in time."}
    # each section was asked for this customer, with the request's correlation id
    assert scores["asked"] == {"customer_id": customer["id"], "correlation_id": "req-360-1"}


def test_360_hides_what_a_failing_service_said(module_api, service_desk_service,
                                               analytics_service, other_services, service_rpc):
    """A broken marketing stand-in beside the real service desk and the real analytics, whose
    scores of the customer show as the service computed them."""
    other_services("broken")
    customer = module_api.managed_customer()

    def heard_of():  # analytics started before this customer: the only one in its store
        composition = service_rpc.call("analytics", "customer_composition", "district")
        return sum(group["customers"] for group in composition["items"]) == 1

    wait_until(heard_of, timeout=15, interval=0.1, message="analytics to hear of the customer")
    service_rpc.call("analytics", "recompute")
    scores = service_rpc.call("analytics", "get_scores", customer["id"])
    response = module_api.request("GET", f"/api/v1/customers/{customer['id']}/360",
                                  role="customer_manager")
    assert response.status_code == 200, response.json
    view = response.json
    assert view["messages"] == {"available": False, "reason": "service_error",
                                "message": "The marketing service failed."}
    assert "boom" not in response.get_data(as_text=True)
    assert view["tickets"] == {"available": True, "items": []}
    assert view["scores"] == {"available": True, "data": scores}
    # a customer without payments: no RFM scores, the lowest tier, no churn risk
    assert (scores["customer_id"], scores["rfm"]["segment"], scores["rfm"]["r"]) == (
        customer["id"], "no_purchase", None)
    assert scores["churn_risk"] == {"score": 0, "reasons": []}


def test_360_of_an_unknown_customer_is_404(module_api, customer_calls):
    module_api.role_token("admin")
    before = customer_calls()
    response = module_api.request("GET", "/api/v1/customers/nope/360", role="admin")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert response.json["error"]["details"] == {"customer_id": "nope"}
    # profile, stage history and interactions were all asked (the last two may land later)
    wait_until(lambda: customer_calls() == before + 3, timeout=5, message="three customer calls")
