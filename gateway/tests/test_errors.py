"""Every error, whoever raises it, comes back in the api.md format."""
import sqlite3
import time

from gateway_support import RPC_TIMEOUT, unique_mobile


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


# ---------------------------------------------------------------- what the services answer
# (the real customer service; one that never ran, one that hangs, one whose database broke)


def test_service_not_found_is_404(module_api):
    error = assert_error(module_api.request("GET", "/api/v1/customers/c-1", role="marketer"),
                         404, "not_found")
    assert error["details"] == {"customer_id": "c-1"}


def test_service_conflict_is_409(module_api):
    customer = module_api.create_customer()
    response = module_api.request("POST", f"/api/v1/customers/{customer['id']}/stage",
                                  role="sales_supervisor",
                                  json={"stage": "potential", "reason": "again"})
    error = assert_error(response, 409, "conflict")
    assert error["details"] == {"stage": "potential"}


def test_service_invalid_input_is_422(module_api):
    response = module_api.request("POST", "/api/v1/customers", role="customer_manager",
                                  json={"name": "王芳", "mobile": unique_mobile(),
                                        "id_number": "110105194912310021"})  # bad check digit
    error = assert_error(response, 422, "validation_error")
    assert error["details"] == {"id_number": ["is not a valid 18-character resident ID number"]}


def test_service_not_running_is_503(idle_api):
    error = assert_error(idle_api.request("GET", "/api/v1/customers/c-1", role="marketer"),
                         503, "service_unavailable")
    assert error["details"] == {"service": "customer"}


def test_service_not_answering_in_time_is_504(spare_api, paused_customer_service):
    started = time.monotonic()
    response = spare_api.request("GET", "/api/v1/customers/c-1", role="marketer")
    assert time.monotonic() - started >= RPC_TIMEOUT
    error = assert_error(response, 504, "service_timeout")
    assert error["details"] == {"service": "customer"}


def test_a_service_bug_is_500_without_internals(spare_api, spare_customer_service):
    # the service's database loses its main table under it: every read fails inside
    with sqlite3.connect(spare_customer_service.database_url[len("sqlite:///"):]) as db:
        db.execute("DROP TABLE customers")
    response = spare_api.request("GET", "/api/v1/customers/secret-customer-42", role="marketer")
    error = assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    for internal in ("secret", "no such table", "customers", "OperationalError", "SELECT"):
        assert internal not in text, internal
    assert error["details"] == {}


def test_a_gateway_bug_is_500_without_internals(api):
    admin = api.admin_token()
    # the gateway's own database loses its staff table under it
    database = api.app.config["CRM_SETTINGS"].database_url[len("sqlite:///"):]
    with sqlite3.connect(database) as db:
        db.execute("DROP TABLE staff")
    response = api.request("POST", "/api/v1/staff", token=admin, json={
        "username": "new.one", "password": "password=hunter2", "display_name": "New One",
        "roles": ["marketer"]})
    error = assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    for internal in ("hunter2", "no such table", "staff", "OperationalError", "INSERT", "SELECT"):
        assert internal not in text, internal
    assert error["details"] == {}


def test_errors_carry_the_request_id(module_api):
    response = module_api.client.get("/api/v1/me", headers={"X-Request-ID": "trace-me-1"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["X-Request-ID"] == "trace-me-1"
