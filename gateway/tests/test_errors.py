"""Every error, whoever raises it, comes back in the api.md format."""
import pytest

from crm_kit.rpc_client import RemoteError, ServiceTimeout, ServiceUnavailable


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_unknown_path_is_404(module_api):
    assert_error(module_api.client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(module_api.client.get("/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_with_allow(module_api):
    response = module_api.request("PUT", "/api/v1/me", role="admin")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_400(module_api):
    response = module_api.request("POST", "/api/v1/staff", role="admin", data="{not json",
                                  content_type="application/json")
    assert_error(response, 400, "bad_request")
    response = module_api.client.post("/api/v1/auth/token", data="{", content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_validation_error_names_fields(module_api):
    response = module_api.client.post("/api/v1/auth/token", json={"username": "admin"})
    error = assert_error(response, 422, "validation_error")
    assert error["details"] == {"password": ["Missing data for required field."]}


def test_body_too_large_is_413(module_api):
    response = module_api.request("POST", "/api/v1/customers/import", role="admin",
                                  data=b"x" * (21 * 1024 * 1024), content_type="text/csv")
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("raised, status, code, details", [
    (RemoteError("NotFound", ["Customer c-1 does not exist.", {"id": "c-1"}]), 404, "not_found",
     {"id": "c-1"}),
    (RemoteError("Conflict", ["Alert is acknowledged.", {"status": "acknowledged"}]), 409,
     "conflict", {"status": "acknowledged"}),
    (RemoteError("InvalidInput", ["Some fields are invalid.", {"id_number": ["bad check digit"]}]),
     422, "validation_error", {"id_number": ["bad check digit"]}),
    (ServiceUnavailable("The customer service is not running.", "customer", "get_customer"), 503,
     "service_unavailable", {"service": "customer"}),
    (ServiceTimeout("The customer service did not answer.", "customer", "get_customer"), 504,
     "service_timeout", {"service": "customer"}),
])
def test_rpc_failures_map_to_http(module_api, stub_rpc, raised, status, code, details):
    stub_rpc.on("customer", "get_customer", raised)
    error = assert_error(module_api.request("GET", "/api/v1/customers/c-1", role="marketer"),
                         status, code)
    assert error["details"] == details


def test_a_service_bug_is_500_without_internals(module_api, stub_rpc):
    stub_rpc.on("customer", "get_customer", RemoteError(
        "KeyError", ["'secret_column' at /srv/customer_service/customers.py"],
        "KeyError: 'secret_column'"))
    response = module_api.request("GET", "/api/v1/customers/c-1", role="marketer")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert error["details"] == {}


def test_a_gateway_bug_is_500_without_internals(module_api, stub_rpc):
    stub_rpc.on("customer", "get_customer", RuntimeError("password=hunter2"))
    response = module_api.request("GET", "/api/v1/customers/c-1", role="marketer")
    assert_error(response, 500, "internal_error")
    assert "hunter2" not in response.get_data(as_text=True)


def test_errors_carry_the_request_id(module_api):
    response = module_api.client.get("/api/v1/me", headers={"X-Request-ID": "trace-me-1"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["X-Request-ID"] == "trace-me-1"
