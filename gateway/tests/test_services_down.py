"""With the real RPC client on the real broker, where the customer service and the other
services are not running: a clear 503 at once, and a 360 view that says which parts are
missing."""
import time

import pytest

from gateway_support import RPC_TIMEOUT, a_customer
from crm_kit.rpc_client import RemoteError, ServiceTimeout
from crm_gateway import rpc

SECTIONS = ("opportunities", "leases", "tickets", "messages", "scores")


def test_customer_service_not_running_is_503_fast(module_api):
    for method, path, body in [
        ("GET", "/api/v1/customers/c-1", None),
        ("GET", "/api/v1/customers?per_page=10", None),
        ("POST", "/api/v1/customers", {"name": "王芳", "mobile": "13912345678"}),
        ("GET", "/api/v1/customers/c-1/360", None),
    ]:
        started = time.monotonic()
        response = module_api.request(method, path, role="sales_supervisor", json=body)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, (path, response.json)
        assert response.json["error"]["code"] == "service_unavailable"
        assert response.json["error"]["details"] == {"service": "customer"}
        assert response.headers["Retry-After"]
        # not deployed: answered at once; deployed but stopped: within the RPC timeout
        assert elapsed < RPC_TIMEOUT + 1.0, (path, elapsed)


class CustomerFromStub:
    """The customer service from the stub; every other service over the real broker."""

    def __init__(self, stub, real):
        self.stub, self.real = stub, real
        self.connected = True

    def call(self, service, method, *args, **kwargs):
        client = self.stub if service == "customer" else self.real
        return client.call(service, method, *args, **kwargs)


@pytest.fixture
def customer_only(stub_rpc, monkeypatch, broker_uri):
    stub_rpc.on("customer", "get_customer", a_customer())
    stub_rpc.on("customer", "stage_history", [
        {"from_stage": None, "to_stage": "potential", "trigger": "created", "event_id": None,
         "actor_id": "s-1", "approver_id": None, "reason": None,
         "occurred_at": "2025-01-02T03:04:05+00:00"}])
    stub_rpc.on("customer", "list_interactions", lambda customer_id, page, per_page: {
        "items": [{"id": 1, "customer_id": customer_id, "channel": "wechat",
                   "direction": "inbound", "summary": "asked about a 1-bedroom",
                   "staff_id": "s-1", "occurred_at": "2025-01-03T00:00:00+00:00",
                   "created_at": "2025-01-03T00:00:00+00:00"}],
        "total": 1, "page": page, "per_page": per_page})
    real = rpc.client_for(broker_uri, RPC_TIMEOUT)
    monkeypatch.setattr(rpc, "get_client", lambda: CustomerFromStub(stub_rpc, real))
    return stub_rpc


def test_360_marks_services_that_do_not_run(module_api, customer_only):
    started = time.monotonic()
    response = module_api.request("GET", "/api/v1/customers/c-1/360", role="customer_manager")
    assert time.monotonic() - started < RPC_TIMEOUT + 1.0
    assert response.status_code == 200
    view = response.json
    assert view["profile"]["id"] == "c-1"
    assert view["stage_history"][0]["to_stage"] == "potential"
    assert view["interactions"]["items"][0]["id"] == "1"
    for section in SECTIONS:
        assert view[section]["available"] is False, section
        assert view[section]["reason"] == "service_unavailable"
        assert view[section]["message"]


def test_360_keeps_what_answers_and_masks_it(module_api, customer_only, monkeypatch):
    """Every service from the stub here: answers, a timeout, a bug, "not scored yet"."""
    answers = {
        ("sales", "list_leases"): {"items": [{"id": "l-1", "status": "active"}], "total": 1},
        ("sales", "list_bills"): {"items": [{"id": "b-1", "lease_id": "l-1", "status": "unpaid"},
                                           {"id": "b-2", "lease_id": "l-9", "status": "paid"}]},
        ("service_desk", "list_tickets"): ServiceTimeout("slow", "service_desk", "list_tickets"),
        ("marketing", "list_messages"): RemoteError("KeyError", ["boom"], service="marketing"),
        ("analytics", "get_scores"): RemoteError("NotFound", ["not scored", {}]),
    }
    for (service, method), answer in answers.items():
        customer_only.on(service, method, answer)
    # a record of another service that repeats the customer's mobile
    customer_only.on("sales", "list_opportunities", {"items": [
        {"id": "o-1", "stage": "viewed", "contact": {"mobile": "13812345678"}}]})
    monkeypatch.setattr(rpc, "get_client", lambda: customer_only)

    view = module_api.request("GET", "/api/v1/customers/c-1/360", role="marketer").json
    assert view["opportunities"]["available"] is True
    assert view["opportunities"]["items"][0]["contact"]["mobile"] == "138****5678"
    assert view["leases"]["available"] is True
    assert view["leases"]["items"] == [{"id": "l-1", "status": "active", "bills": [
        {"id": "b-1", "lease_id": "l-1", "status": "unpaid"}]}]
    assert view["tickets"] == {"available": False, "reason": "service_timeout",
                               "message": "The service_desk service did not answer in time."}
    assert view["messages"]["reason"] == "service_error"
    assert "boom" not in str(view["messages"])
    assert view["scores"] == {"available": True, "data": None}
    # each section was asked for this customer, with the request's correlation id
    call = customer_only.calls_to("list_tickets")[0]
    assert call.args[0] == {"customer_id": "c-1"}
    assert call.correlation_id == customer_only.calls_to("get_customer")[0].correlation_id


def test_360_of_an_unknown_customer_is_404(module_api, customer_only):
    customer_only.on("customer", "get_customer", RemoteError(
        "NotFound", ["Customer nope does not exist.", {"customer_id": "nope"}]))
    response = module_api.request("GET", "/api/v1/customers/nope/360", role="admin")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
