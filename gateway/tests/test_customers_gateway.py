"""Customer routes in front of the real customer service: validation at the gateway (a rejected
request never reaches the service), what the service records of each request (data, actor,
request id), masking in every response, CSV, alert scoping, stage limits, business errors."""
import csv
import io

import pytest

from crm_kit.testing import EventTap
from gateway_support import (STAFF_PASSWORD, masked_id_number, masked_mobile,
                             move_stage_entry_back, resident_id, unique_mobile, unique_tag)

STAGES = ("potential", "intent", "first_time", "repeat", "churn_warning", "churned")


def to_stage(api, customer_id, stage):
    response = api.request("POST", f"/api/v1/customers/{customer_id}/stage",
                           role="sales_supervisor", json={"stage": stage, "reason": "test"})
    assert response.status_code == 200, response.json


def found(api, mobile, role="sales_supervisor"):
    """The customers a search by this (unique) mobile finds."""
    response = api.request("GET", f"/api/v1/customers?q={mobile}", role=role)
    assert response.status_code == 200, response.json
    return response.json["items"]


def customer_total(api):
    response = api.request("GET", "/api/v1/customers?per_page=1", role="executive")
    assert response.status_code == 200, response.json
    return response.json["total"]


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
def test_create_validation_names_each_field(module_api, body, fields):
    before = customer_total(module_api)
    response = module_api.request("POST", "/api/v1/customers", role="customer_manager", json=body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert set(response.json["error"]["details"]) == fields
    assert customer_total(module_api) == before  # a rejected request changes nothing


@pytest.mark.parametrize("query, field", [
    ("per_page=201", "per_page"), ("page=0", "page"), ("stage=sleeping", "stage"),
    ("value_tier=gold", "value_tier"), ("per_page=ten", "per_page"),
])
def test_list_query_validation(module_api, customer_calls, query, field):
    module_api.role_token("marketer")
    before = customer_calls()
    response = module_api.request("GET", f"/api/v1/customers?{query}", role="marketer")
    assert response.status_code == 422
    assert field in response.json["error"]["details"]
    assert customer_calls() == before


def test_list_passes_filters_and_paging(module_api):
    word, tag = unique_tag("wang"), unique_tag("vip")
    match = module_api.create_customer(name=f"Wang {word}", tags=[tag])
    to_stage(module_api, match["id"], "intent")
    module_api.create_customer(name=f"Wang {word}", tags=[tag])  # still potential
    untagged = module_api.create_customer(name=f"Wang {word}")
    to_stage(module_api, untagged["id"], "intent")
    other_name = module_api.create_customer(name="Li Lei", tags=[tag])
    to_stage(module_api, other_name["id"], "intent")
    query = f"q={word}&stage=intent&tag={tag}"

    response = module_api.request("GET", f"/api/v1/customers?{query}&per_page=200&page=2&ignored=1",
                                  role="executive")
    assert response.status_code == 200
    assert response.json["page"] == 2 and response.json["per_page"] == 200
    assert response.json["total"] == 1 and response.json["items"] == []  # page 2 of one

    response = module_api.request("GET", f"/api/v1/customers?{query}", role="executive")
    assert response.status_code == 200
    assert [c["id"] for c in response.json["items"]] == [match["id"]]
    assert response.json["total"] == 1 and response.json["page"] == 1


# ---------------------------------------------------------------- what the service records


def test_create_sends_data_actor_and_request_id(module_api, broker_uri):
    tap = EventTap(broker_uri, "customer", ["customer.created"])
    try:
        mobile = unique_mobile()
        response = module_api.request("POST", "/api/v1/customers", role="service_agent",
                                      headers={"X-Request-ID": "req-create-1"},
                                      json={"name": "王芳", "mobile": mobile,
                                            "birthday": "1998-05-06", "consent": {"sms": True}})
        assert response.status_code == 201
        assert response.headers["X-Request-ID"] == "req-create-1"
        customer_id = response.json["id"]

        stored = module_api.customer(customer_id)
        assert (stored["name"], stored["mobile"]) == ("王芳", mobile)
        assert stored["birthday"] == "1998-05-06"
        assert stored["consent"]["sms"] is True and stored["consent"]["email"] is False
        assert stored["owner_id"] is None  # only a customer manager becomes owner by default
        # the actor: who created it is in the stage history
        [created] = module_api.stage_history(customer_id)
        assert (created["trigger"], created["to_stage"]) == ("created", "potential")
        assert created["actor_id"] == module_api.role_id("service_agent")
        # the request id: the service's event about it carries it
        events = tap.wait_for(lambda e: e["data"]["id"] == customer_id, message="customer.created")
        assert {e["correlation_id"] for e in events} == {"req-create-1"}
    finally:
        tap.close()


def test_customer_manager_becomes_owner_by_default(module_api):
    created = module_api.create_customer(role="customer_manager")
    assert module_api.customer(created["id"])["owner_id"] == module_api.role_id("customer_manager")


def test_owner_must_be_an_active_staff_member(module_api, customer_calls):
    existing = module_api.create_customer()
    module_api.role_token("sales_supervisor")
    before = customer_calls()
    response = module_api.request("POST", "/api/v1/customers", role="sales_supervisor",
                                  json={"name": "王芳", "mobile": unique_mobile(),
                                        "owner_id": "nobody"})
    assert response.status_code == 422
    assert "owner_id" in response.json["error"]["details"]
    response = module_api.request("PATCH", f"/api/v1/customers/{existing['id']}",
                                  role="sales_supervisor", json={"owner_id": "nobody"})
    assert response.status_code == 422
    assert customer_calls() == before
    assert module_api.customer(existing["id"])["owner_id"] is None

    owner = module_api.role_id("customer_manager")
    response = module_api.request("POST", "/api/v1/customers", role="sales_supervisor",
                                  json={"name": "王芳", "mobile": unique_mobile(),
                                        "owner_id": owner})
    assert response.status_code == 201
    assert module_api.customer(response.json["id"])["owner_id"] == owner


def test_request_id_is_generated_when_missing_or_unsafe(module_api, broker_uri):
    customer = module_api.managed_customer()
    path = f"/api/v1/customers/{customer['id']}"
    response = module_api.request("GET", path, role="technician")
    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 36
    unsafe = "<script>" + "x" * 200
    response = module_api.request("GET", path, role="technician", headers={"X-Request-ID": unsafe})
    assert response.headers["X-Request-ID"] != unsafe
    assert len(response.headers["X-Request-ID"]) == 36

    # the generated id is the one that travels to the service (its events carry it)
    tap = EventTap(broker_uri, "customer", ["customer.updated"])
    try:
        for n, headers in enumerate([{}, {"X-Request-ID": unsafe}]):
            email = f"request-id-{n}@example.com"
            response = module_api.request("PATCH", path, role="customer_manager", headers=headers,
                                          json={"email": email})
            assert response.status_code == 200, response.json
            generated = response.headers["X-Request-ID"]
            assert len(generated) == 36 and generated != unsafe
            events = tap.wait_for(lambda e: e["data"]["id"] == customer["id"]
                                  and e["data"]["email"] == email, message="customer.updated")
            assert {e["correlation_id"] for e in events} == {generated}
    finally:
        tap.close()


def test_handover_checks_both_owners(module_api, customer_calls):
    manager = module_api.role_id("customer_manager")
    module_api.role_token("sales_supervisor")
    before = customer_calls()
    response = module_api.request("POST", "/api/v1/customers/handover", role="sales_supervisor",
                                  json={"from_owner_id": manager, "to_owner_id": "ghost",
                                        "reason": "leaving"})
    assert response.status_code == 422
    assert "to_owner_id" in response.json["error"]["details"]
    response = module_api.request("POST", "/api/v1/customers/handover", role="sales_supervisor",
                                  json={"from_owner_id": manager, "to_owner_id": manager,
                                        "reason": "x"})
    assert response.status_code == 422
    assert customer_calls() == before


def test_handover_is_recorded_with_its_actor(module_api, service_rpc):
    manager = module_api.role_id("customer_manager")
    successor = module_api.create_staff("successor", ["customer_manager"],
                                        supervisor_id=module_api.role_id("sales_supervisor"))
    customer = module_api.create_customer(role="customer_manager")
    response = module_api.request("POST", "/api/v1/customers/handover", role="sales_supervisor",
                                  json={"from_owner_id": manager, "to_owner_id": successor["id"],
                                        "customer_ids": [customer["id"]], "reason": "leaving"})
    assert response.status_code == 200, response.json
    assert response.json == {"moved": 1, "customer_ids": [customer["id"]]}
    assert module_api.customer(customer["id"])["owner_id"] == successor["id"]
    [change] = service_rpc.call("customer", "owner_history", customer["id"])
    assert (change["from_owner_id"], change["to_owner_id"]) == (manager, successor["id"])
    assert change["reason"] == "leaving"
    assert change["actor_id"] == module_api.role_id("sales_supervisor")


def test_points_need_a_non_zero_delta_and_a_reason(module_api, customer_calls):
    customer = module_api.create_customer()
    module_api.role_token("admin")
    before = customer_calls()
    response = module_api.request("POST", f"/api/v1/customers/{customer['id']}/points",
                                  role="admin", json={"delta": 0})
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"delta", "reason"}
    assert customer_calls() == before


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize("role, full_mobile, full_id_number", [
    ("customer_manager", True, True),
    ("service_agent", True, False),
    ("marketer", False, False),
    ("executive", False, False),
])
def test_every_customer_response_is_masked_by_role(module_api, role, full_mobile,
                                                    full_id_number):
    id_number = resident_id()
    customer = module_api.managed_customer(id_number=id_number)
    twin = module_api.managed_customer(id_number=id_number)  # same ID, another mobile: a duplicate

    def expected(created):
        return {"mobile": created["mobile"] if full_mobile else masked_mobile(created["mobile"]),
                "id_number": id_number if full_id_number else masked_id_number(id_number)}

    one = module_api.request("GET", f"/api/v1/customers/{customer['id']}", role=role).json
    [listed] = found(module_api, customer["mobile"], role=role)
    seen = [(one, customer), (listed, customer)]
    duplicates = module_api.request("GET", f"/api/v1/customers/{customer['id']}/duplicates",
                                    role=role)
    if role in ("customer_manager", "executive"):  # the others may not ask for duplicates
        assert duplicates.status_code == 200
        [duplicate] = duplicates.json
        assert duplicate["matched_on"] == ["id_number"]
        seen.append((duplicate["customer"], twin))
    else:
        assert duplicates.status_code == 403
    for shown, created in seen:
        assert shown["id"] == created["id"]
        assert {"mobile": shown["mobile"], "id_number": shown["id_number"]} == expected(created)
        if not full_mobile:
            assert created["mobile"] not in str(shown)
        if not full_id_number:
            assert id_number not in str(shown)


def test_360_profile_is_masked(module_api):
    id_number = resident_id()
    customer = module_api.create_customer(id_number=id_number)
    response = module_api.request("GET", f"/api/v1/customers/{customer['id']}/360",
                                  role="marketer")
    assert response.status_code == 200
    view = response.json
    assert view["profile"]["id"] == customer["id"]
    assert view["profile"]["mobile"] == masked_mobile(customer["mobile"])
    assert view["profile"]["id_number"] == masked_id_number(id_number)
    assert customer["mobile"] not in response.get_data(as_text=True)
    assert id_number not in response.get_data(as_text=True)


# ---------------------------------------------------------------- CSV


def test_export_is_excel_friendly_csv_masked_by_role(module_api):
    tag = unique_tag()
    id_number = resident_id()
    first = module_api.create_customer(name="张伟", id_number=id_number, tags=[tag],
                                       consent={"sms": True})
    second = module_api.create_customer(name="=HYPERLINK(\"http://x\")", tags=["a", "b", tag])
    moved_on = module_api.create_customer(tags=[tag])
    to_stage(module_api, moved_on["id"], "intent")  # not potential: not exported
    module_api.create_customer()  # potential but without the tag: not exported

    response = module_api.request("GET", f"/api/v1/customers/export?stage=potential&tag={tag}",
                                  role="executive")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == [first["id"], second["id"]]
    assert rows[0]["name"] == "张伟"
    assert rows[0]["mobile"] == masked_mobile(first["mobile"])
    assert rows[0]["id_number"] == masked_id_number(id_number)
    assert rows[0]["consent_sms"] == "yes" and rows[0]["member_points"] == "0"
    assert rows[0]["stage"] == "potential"
    assert rows[1]["tags"] == f"a;b;{tag}"
    assert rows[1]["id_number"] == ""
    assert rows[1]["name"].startswith("'=")  # never a live formula in Excel
    assert first["mobile"] not in body.decode("utf-8-sig")


def test_import_takes_csv_and_strips_the_bom(module_api):
    people = [("王芳", unique_mobile()), ("李雷", unique_mobile())]
    text = "name,mobile\n" + "".join(f"{name},{mobile}\n" for name, mobile in people)
    response = module_api.request("POST", "/api/v1/customers/import", role="admin",
                                  data=("\ufeff" + text).encode("utf-8"),
                                  content_type="text/csv")
    assert response.status_code == 200
    assert response.json == {"created": 2, "updated": 0, "errors": []}
    for name, mobile in people:
        [customer] = found(module_api, mobile)
        assert (customer["name"], customer["mobile"]) == (name, mobile)
        [created] = module_api.stage_history(customer["id"])
        assert created["actor_id"] == module_api.role_id("admin")


def test_import_rejects_other_content(module_api, customer_calls):
    module_api.role_token("admin")
    before = customer_calls()
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
    assert customer_calls() == before


# ---------------------------------------------------------------- alerts and stage limits


def stagnating(api, customer_service, service_rpc, owner_id):
    """A customer of ``owner_id`` stuck in ``potential`` for 40 days, and its alert (as the
    service's stagnation scan opens it)."""
    customer = api.create_customer(role="admin", owner_id=owner_id)
    move_stage_entry_back(customer_service.database_url, customer["id"], days=40)
    service_rpc.call("customer", "scan_stagnation")
    [alert] = service_rpc.call("customer", "list_alerts", {"customer_id": customer["id"]},
                                1, 50)["items"]
    assert (alert["owner_id"], alert["status"]) == (owner_id, "open")
    return alert


def test_alerts_are_scoped_to_the_callers_team(api, customer_service, service_rpc):
    supervisor = api.create_staff("team.lead", ["sales_supervisor"])
    member = api.create_staff("team.member", ["customer_manager"],
                              supervisor_id=supervisor["id"])
    outsider = api.create_staff("outsider", ["customer_manager"])
    lead_alert, member_alert, member_acked, outsider_alert = (
        str(stagnating(api, customer_service, service_rpc, owner)["id"])
        for owner in (supervisor["id"], member["id"], member["id"], outsider["id"]))

    member_token = api.token("team.member", STAFF_PASSWORD)
    acked = api.request("POST", f"/api/v1/customer-alerts/{member_acked}/ack", token=member_token)
    assert acked.status_code == 200, acked.json

    def seen(query="", **caller):
        response = api.request("GET", f"/api/v1/customer-alerts?per_page=200{query}", **caller)
        assert response.status_code == 200, response.json
        return {alert["id"] for alert in response.json["items"]}

    assert seen("&status=open", token=member_token) == {member_alert}
    assert seen(token=member_token) == {member_alert, member_acked}

    lead_token = api.token("team.lead", STAFF_PASSWORD)
    assert seen(token=lead_token) == {lead_alert, member_alert, member_acked}
    assert seen(f"&owner_id={member['id']}", token=lead_token) == {member_alert, member_acked}
    refused = api.request("GET", f"/api/v1/customer-alerts?owner_id={outsider['id']}",
                          token=lead_token)
    assert refused.status_code == 403

    assert {lead_alert, member_alert, member_acked, outsider_alert} <= seen(role="executive")
    assert seen(f"&owner_id={outsider['id']}", role="executive") == {outsider_alert}
    bad = api.request("GET", "/api/v1/customer-alerts?status=snoozed", role="admin")
    assert bad.status_code == 422


def test_alert_ids_are_strings(module_api, customer_service, service_rpc):
    manager = module_api.role_id("customer_manager")
    alert = stagnating(module_api, customer_service, service_rpc, manager)
    response = module_api.request("POST", f"/api/v1/customer-alerts/{alert['id']}/ack",
                                  role="customer_manager")
    assert response.status_code == 200, response.json
    assert response.json["id"] == str(alert["id"])
    assert response.json["status"] == "acknowledged"
    assert response.json["acknowledged_by"] == manager
    again = module_api.request("POST", f"/api/v1/customer-alerts/{alert['id']}/ack",
                               role="customer_manager")
    assert again.status_code == 409
    assert again.json["error"]["details"] == {"status": "acknowledged"}


@pytest.mark.parametrize("alert_id", ["999999999", "abc", "99999999999999999999"])
def test_an_alert_id_that_names_no_alert_is_404(module_api, alert_id):
    response = module_api.request("POST", f"/api/v1/customer-alerts/{alert_id}/ack",
                                  role="customer_manager")
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.json["error"]["code"] == "not_found"


def test_an_alert_id_that_names_no_alert_is_404_on_postgresql(
        spare_api, spare_customer_service_on_postgresql):
    """Ids are opaque strings (api.md): one that is not a number names no alert, as on SQLite."""
    for alert_id in ("999999999", "abc", "99999999999999999999"):
        response = spare_api.request("POST", f"/api/v1/customer-alerts/{alert_id}/ack",
                                     role="customer_manager")
        assert response.status_code == 404, (alert_id, response.get_data(as_text=True))
        assert response.json["error"]["code"] == "not_found"


def test_stage_limits_validation(module_api, customer_calls):
    path = "/api/v1/customer-settings/stage-limits"
    before = module_api.request("GET", path, role="admin").json
    assert before["potential"] and before["intent"]
    try:
        ok = module_api.request("PUT", path, role="sales_supervisor",
                                json={"potential": before["potential"] + 1, "intent": None})
        assert ok.status_code == 200, ok.json
        expected = {**before, "potential": before["potential"] + 1}
        del expected["intent"]  # null: no limit any more
        assert ok.json == expected
        assert module_api.request("GET", path, role="executive").json == expected
    finally:  # the limits are the shared service's: put them back
        restored = module_api.request("PUT", path, role="admin",
                                      json={stage: before.get(stage) for stage in STAGES})
        assert restored.status_code == 200 and restored.json == before

    calls = customer_calls()
    bad = module_api.request("PUT", path, role="admin", json={"potential": 0, "sleeping": 3})
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]) == {"potential", "sleeping"}
    assert customer_calls() == calls


# ---------------------------------------------------------------- business errors of the service


def test_service_conflict_keeps_its_details(module_api):
    existing = module_api.create_customer()
    response = module_api.request("POST", "/api/v1/customers", role="admin",
                                  json={"name": "王芳", "mobile": existing["mobile"]})
    assert response.status_code == 409
    assert response.json["error"] == {
        "code": "conflict",
        "message": f"mobile already belongs to customer {existing['id']}",
        "details": {"existing_id": existing["id"], "field": "mobile"}}
