"""Customer routes' gateway-side behaviour, with the RPC client stubbed: validation, what is
sent to the customer service, masking in every response, CSV, alert scoping.
(The routes against the real customer service are tested in the repository's tests/.)"""
import csv
import io

import pytest

from gateway_support import a_customer
from crm_kit.rpc_client import RemoteError


@pytest.fixture
def customer_service(stub_rpc):
    """The stub answering the customer service's methods with one customer."""
    customer = a_customer()
    stub_rpc.on("customer", "get_customer", customer)
    stub_rpc.on("customer", "create_customer", lambda data, actor: {**customer, **data})
    stub_rpc.on("customer", "list_customers",
                lambda filters, page, per_page: {"items": [customer], "total": 1, "page": page,
                                                 "per_page": per_page})
    stub_rpc.on("customer", "export_customers", lambda filters: [customer, a_customer(
        id="c-2", name="=HYPERLINK(\"http://x\")", mobile="13900001111", id_number=None,
        tags=["a", "b"])])
    stub_rpc.on("customer", "find_duplicates", [{"customer": customer, "matched_on": ["mobile"]}])
    return stub_rpc


NEW_CUSTOMER = {"name": "王芳", "mobile": "13912345678"}


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("body, fields", [
    ({}, {"name", "mobile"}),
    ({"name": "A", "mobile": "23812345678"}, {"mobile"}),
    ({"name": "A", "mobile": "1381234567"}, {"mobile"}),
    ({"name": "A", "mobile": "13812345678", "email": "not-an-email"}, {"email"}),
    ({"name": "A", "mobile": "13812345678", "birthday": "1990-13-01"}, {"birthday"}),
    ({"name": "A", "mobile": "13812345678", "id_number": "12345"}, {"id_number"}),
    ({"name": "A", "mobile": "13812345678", "stage": "intent"}, {"stage"}),
    ({"name": "A", "mobile": "13812345678", "consent": {"sms": "perhaps"}}, {"consent"}),
    ({"name": "A", "mobile": "13812345678", "tags": "vip"}, {"tags"}),
    ({"name": "", "mobile": "13812345678", "kind": "alien"}, {"name", "kind"}),
])
def test_create_validation_names_each_field(module_api, customer_service, body, fields):
    response = module_api.request("POST", "/api/v1/customers", role="customer_manager", json=body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert set(response.json["error"]["details"]) == fields
    assert customer_service.calls == []  # a rejected request changes nothing


@pytest.mark.parametrize("query, field", [
    ("per_page=201", "per_page"), ("page=0", "page"), ("stage=sleeping", "stage"),
    ("value_tier=gold", "value_tier"), ("per_page=ten", "per_page"),
])
def test_list_query_validation(module_api, customer_service, query, field):
    response = module_api.request("GET", f"/api/v1/customers?{query}", role="marketer")
    assert response.status_code == 422
    assert field in response.json["error"]["details"]


def test_list_passes_filters_and_paging(module_api, customer_service):
    response = module_api.request(
        "GET", "/api/v1/customers?q=wang&stage=intent&tag=vip&per_page=200&page=2&ignored=1",
        role="executive")
    assert response.status_code == 200
    assert response.json["page"] == 2 and response.json["per_page"] == 200
    call = customer_service.calls_to("list_customers")[0]
    assert call.args == ({"q": "wang", "stage": "intent", "tag": "vip"}, 2, 200)


# ---------------------------------------------------------------- what reaches the service


def test_create_sends_data_actor_and_request_id(module_api, customer_service):
    response = module_api.request("POST", "/api/v1/customers", role="service_agent",
                                  headers={"X-Request-ID": "req-create-1"},
                                  json=dict(NEW_CUSTOMER, birthday="1998-05-06",
                                            consent={"sms": True}))
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "req-create-1"
    call = customer_service.calls_to("create_customer")[0]
    data, actor = call.args
    assert data["birthday"].isoformat() == "1998-05-06"
    assert actor == {"id": module_api.role_id("service_agent"), "roles": ["service_agent"]}
    assert call.correlation_id == "req-create-1"
    assert "owner_id" not in data  # only a customer manager becomes owner by default


def test_customer_manager_becomes_owner_by_default(module_api, customer_service):
    module_api.request("POST", "/api/v1/customers", role="customer_manager", json=NEW_CUSTOMER)
    data, _actor = customer_service.calls_to("create_customer")[-1].args
    assert data["owner_id"] == module_api.role_id("customer_manager")


def test_owner_must_be_an_active_staff_member(module_api, customer_service):
    response = module_api.request("POST", "/api/v1/customers", role="sales_supervisor",
                                  json=dict(NEW_CUSTOMER, owner_id="nobody"))
    assert response.status_code == 422
    assert "owner_id" in response.json["error"]["details"]
    response = module_api.request("PATCH", "/api/v1/customers/c-1", role="sales_supervisor",
                                  json={"owner_id": "nobody"})
    assert response.status_code == 422
    assert customer_service.calls == []

    owner = module_api.role_id("customer_manager")
    response = module_api.request("POST", "/api/v1/customers", role="sales_supervisor",
                                  json=dict(NEW_CUSTOMER, owner_id=owner))
    assert response.status_code == 201


def test_request_id_is_generated_when_missing_or_unsafe(module_api, customer_service):
    response = module_api.request("GET", "/api/v1/customers/c-1", role="technician")
    generated = response.headers["X-Request-ID"]
    assert len(generated) == 36
    assert customer_service.calls[-1].correlation_id == generated
    response = module_api.request("GET", "/api/v1/customers/c-1", role="technician",
                                  headers={"X-Request-ID": "<script>" + "x" * 200})
    assert response.headers["X-Request-ID"] != "<script>" + "x" * 200
    assert len(response.headers["X-Request-ID"]) == 36


def test_handover_checks_both_owners(module_api, customer_service):
    manager = module_api.role_id("customer_manager")
    response = module_api.request("POST", "/api/v1/customers/handover", role="sales_supervisor",
                                  json={"from_owner_id": manager, "to_owner_id": "ghost",
                                        "reason": "leaving"})
    assert response.status_code == 422
    assert "to_owner_id" in response.json["error"]["details"]
    response = module_api.request("POST", "/api/v1/customers/handover", role="sales_supervisor",
                                  json={"from_owner_id": manager, "to_owner_id": manager,
                                        "reason": "x"})
    assert response.status_code == 422


def test_points_need_a_non_zero_delta_and_a_reason(module_api, customer_service):
    response = module_api.request("POST", "/api/v1/customers/c-1/points", role="admin",
                                  json={"delta": 0})
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"delta", "reason"}


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize("role, mobile, id_number", [
    ("customer_manager", "13812345678", "510104199504021234"),
    ("service_agent", "13812345678", "5101**********1234"),
    ("marketer", "138****5678", "5101**********1234"),
    ("executive", "138****5678", "5101**********1234"),
])
def test_every_customer_response_is_masked_by_role(module_api, customer_service, role, mobile,
                                                    id_number):
    one = module_api.request("GET", "/api/v1/customers/c-1", role=role).json
    listed = module_api.request("GET", "/api/v1/customers", role=role).json["items"][0]
    duplicate = module_api.request("GET", "/api/v1/customers/c-1/duplicates",
                                   role=role).json
    for customer in [one, listed] + ([duplicate[0]["customer"]] if isinstance(duplicate, list)
                                     else []):
        assert customer["mobile"] == mobile
        assert customer["id_number"] == id_number


def test_360_profile_is_masked(module_api, customer_service):
    customer_service.on("customer", "stage_history", [])
    customer_service.on("customer", "list_interactions",
                        {"items": [], "total": 0, "page": 1, "per_page": 20})
    view = module_api.request("GET", "/api/v1/customers/c-1/360", role="marketer").json
    assert view["profile"]["mobile"] == "138****5678"
    assert view["profile"]["id_number"] == "5101**********1234"


# ---------------------------------------------------------------- CSV


def test_export_is_excel_friendly_csv_masked_by_role(module_api, customer_service):
    response = module_api.request("GET", "/api/v1/customers/export?stage=potential",
                                  role="executive")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == ["c-1", "c-2"]
    assert rows[0]["name"] == "张伟"
    assert rows[0]["mobile"] == "138****5678"
    assert rows[0]["id_number"] == "5101**********1234"
    assert rows[0]["consent_sms"] == "yes" and rows[0]["member_points"] == "0"
    assert rows[1]["tags"] == "a;b"
    assert rows[1]["name"].startswith("'=")  # never a live formula in Excel
    assert customer_service.calls_to("export_customers")[0].args == ({"stage": "potential"},)


def test_import_takes_csv_and_strips_the_bom(module_api, stub_rpc):
    stub_rpc.on("customer", "import_csv",
                lambda text, actor: {"created": text.count("\n") - 1, "updated": 0, "errors": []})
    text = "name,mobile\n王芳,13912345678\n李雷,13912345679\n"
    response = module_api.request("POST", "/api/v1/customers/import", role="admin",
                                  data=("\ufeff" + text).encode("utf-8"),
                                  content_type="text/csv")
    assert response.status_code == 200
    assert response.json == {"created": 2, "updated": 0, "errors": []}
    sent_text, actor = stub_rpc.calls_to("import_csv")[0].args
    assert sent_text == text
    assert actor["id"] == module_api.role_id("admin")


def test_import_rejects_other_content(module_api, stub_rpc):
    response = module_api.request("POST", "/api/v1/customers/import", role="admin",
                                  json={"name": "x"})
    assert response.status_code == 415
    response = module_api.request("POST", "/api/v1/customers/import", role="admin",
                                  data=b"name\n\xff\xfe\n", content_type="text/csv")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    response = module_api.request("POST", "/api/v1/customers/import", role="admin",
                                  data=b"", content_type="text/csv")
    assert response.status_code == 422
    assert stub_rpc.calls == []


# ---------------------------------------------------------------- alerts and stage limits


def test_alerts_are_scoped_to_the_callers_team(api, stub_rpc):
    stub_rpc.on("customer", "list_alerts",
                lambda filters, page, per_page: {"items": [], "total": 0, "page": page,
                                                 "per_page": per_page})
    supervisor = api.create_staff("team.lead", ["sales_supervisor"])
    member = api.create_staff("team.member", ["customer_manager"],
                              supervisor_id=supervisor["id"])
    outsider = api.create_staff("outsider", ["customer_manager"])

    member_token = api.token("team.member", "staff-password-1")
    api.request("GET", "/api/v1/customer-alerts?status=open", token=member_token)
    assert stub_rpc.calls[-1].args[0] == {"status": "open", "owner_ids": [member["id"]]}

    lead_token = api.token("team.lead", "staff-password-1")
    api.request("GET", "/api/v1/customer-alerts", token=lead_token)
    assert stub_rpc.calls[-1].args[0] == {"owner_ids": sorted([supervisor["id"], member["id"]])}
    api.request("GET", f"/api/v1/customer-alerts?owner_id={member['id']}", token=lead_token)
    assert stub_rpc.calls[-1].args[0] == {"owner_id": member["id"]}
    refused = api.request("GET", f"/api/v1/customer-alerts?owner_id={outsider['id']}",
                          token=lead_token)
    assert refused.status_code == 403

    api.request("GET", "/api/v1/customer-alerts", role="executive")
    assert stub_rpc.calls[-1].args[0] == {}
    bad = api.request("GET", "/api/v1/customer-alerts?status=snoozed", role="admin")
    assert bad.status_code == 422


def test_alert_ids_are_strings(module_api, stub_rpc):
    stub_rpc.on("customer", "acknowledge_alert", lambda alert_id, actor: {
        "id": int(alert_id), "customer_id": "c-1", "owner_id": None, "stage": "potential",
        "stage_entered_at": "2025-01-01T00:00:00+00:00", "limit_days": 15,
        "status": "acknowledged", "created_at": "2025-01-16T00:00:00+00:00",
        "acknowledged_by": actor["id"], "acknowledged_at": "2025-01-17T00:00:00+00:00",
        "resolved_at": None})
    response = module_api.request("POST", "/api/v1/customer-alerts/7/ack", role="customer_manager")
    assert response.status_code == 200
    assert response.json["id"] == "7"


def test_stage_limits_validation(module_api, stub_rpc):
    stub_rpc.on("customer", "set_stage_limits", lambda limits, actor: limits)
    ok = module_api.request("PUT", "/api/v1/customer-settings/stage-limits", role="sales_supervisor",
                            json={"potential": 15, "intent": None})
    assert ok.status_code == 200 and ok.json == {"potential": 15, "intent": None}
    bad = module_api.request("PUT", "/api/v1/customer-settings/stage-limits", role="admin",
                             json={"potential": 0, "sleeping": 3})
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]) == {"potential", "sleeping"}


# ---------------------------------------------------------------- business errors of the service


def test_service_conflict_keeps_its_details(module_api, stub_rpc):
    stub_rpc.on("customer", "create_customer", RemoteError(
        "Conflict", ["A customer with this mobile exists.", {"existing_id": "c-9"}],
        service="customer", method="create_customer"))
    response = module_api.request("POST", "/api/v1/customers", role="admin", json=NEW_CUSTOMER)
    assert response.status_code == 409
    assert response.json["error"] == {"code": "conflict",
                                      "message": "A customer with this mobile exists.",
                                      "details": {"existing_id": "c-9"}}
