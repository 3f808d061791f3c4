"""What fuzzing the whole API with schemathesis found (tests/test_fuzz.py, issue 7), each kept as
a test of its own: the gateway in front of the real services, no stubs."""
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest
import requests

from crm_kit.testing import free_port, http_get, wait_until
from crm_gateway.schemas.common import MAX_PAGE
from gateway_support import ADMIN_PASSWORD, ROOT, unique_mobile

API = "/api/v1"


def assert_refused(response, status, fields=()):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert set(fields) <= set(error["details"]), error
    return error


def spec_of(api):
    response = api.client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    return response.json


# ---------------------------------------------------------------- a page past every database

@pytest.mark.parametrize("path", ["/customers", "/customer-alerts", "/staff"])
def test_a_page_number_too_large_for_an_sql_offset_is_422_not_500(module_api, path):
    # page=10**20 made the customer service's OFFSET overflow SQLite's integer: 500
    for page in (10**20, MAX_PAGE + 1):
        response = module_api.request("GET", API + path, role="admin",
                                      query_string={"page": page})
        assert assert_refused(response, 422, {"page"})["details"]["page"]
    last = module_api.request("GET", API + path, role="admin", query_string={"page": MAX_PAGE})
    assert last.status_code == 200, last.json
    assert last.json["items"] == [] and last.json["page"] == MAX_PAGE


def test_the_openapi_says_how_large_a_page_may_be(module_api):
    parameters = spec_of(module_api)["paths"][f"{API}/customers"]["get"]["parameters"]
    page = next(parameter for parameter in parameters if parameter["name"] == "page")
    assert page["schema"]["minimum"] == 1 and page["schema"]["maximum"] == MAX_PAGE


# ---------------------------------------------------------------- undocumented statuses

def test_every_route_taking_json_documents_its_400_for_a_body_that_is_not_json(module_api):
    # the 400 of a malformed body (errors.py) was answered by every such route, documented by none
    spec = spec_of(module_api)
    taking_json = {f"{method.upper()} {path}": operation
                   for path, item in spec["paths"].items() for method, operation in item.items()
                   if method != "parameters"
                   and "application/json" in operation.get("requestBody", {}).get("content", {})}
    assert len(taking_json) > 40
    assert [key for key, operation in taking_json.items()
            if "400" not in operation["responses"]] == []
    assert taking_json[f"POST {API}/customers"]["responses"]["400"] == {
        "$ref": "#/components/responses/BAD_REQUEST"}
    response = module_api.request("POST", f"{API}/customers", role="admin", data="{",
                                  content_type="application/json")
    assert_refused(response, 400)


def test_a_customer_that_can_no_longer_change_is_a_documented_409(module_api):
    # archive, tags and interactions of an erased customer: 409, documented by none of the four
    paths = spec_of(module_api)["paths"]
    customer = f"{API}/customers/{{customer_id}}"
    for path, method in ((customer, "delete"), (f"{customer}/interactions", "post"),
                         (f"{customer}/tags", "post"), (f"{customer}/tags/{{tag}}", "delete")):
        assert "409" in paths[path][method]["responses"], (method, path)
    erased = module_api.create_customer(role="admin", tags=["fuzz"])["id"]
    assert module_api.request("POST", f"{API}/customers/{erased}/erase",
                              role="admin").status_code == 200
    for method, path, body in (
            ("DELETE", "", None), ("POST", "/interactions",
                                   {"channel": "phone", "direction": "inbound", "summary": "x"}),
            ("POST", "/tags", {"tags": ["vip"]}), ("DELETE", "/tags/fuzz", None)):
        response = module_api.request(method, f"{API}/customers/{erased}{path}", role="admin",
                                      json=body)
        assert assert_refused(response, 409)["code"] == "conflict", (method, path)


def test_the_csv_import_documents_its_422_for_an_empty_csv(module_api):
    responses = spec_of(module_api)["paths"][f"{API}/customers/import"]["post"]["responses"]
    assert "422" in responses
    response = module_api.request("POST", f"{API}/customers/import", role="admin", data="",
                                  content_type="text/csv")
    assert assert_refused(response, 422)["details"] == {"_schema": ["the CSV is empty"]}


def test_a_csv_the_csv_module_cannot_read_is_reported_not_a_500(module_api):
    # a lone \r inside a field ("new-line character seen in unquoted field") and a field over
    # the csv module's size limit raised csv.Error in the customer service: 500
    def imported(text):
        response = module_api.request("POST", f"{API}/customers/import", role="admin",
                                      data=text.encode(), content_type="text/csv")
        assert response.status_code == 200, response.json
        return response.json

    lone_cr = imported("name,mobile\n*Äq\x7f;cÂ½ô(;Ù\x18j\rᓇ\x8az\x04N0*v é*\n")
    assert lone_cr["created"] == 0 and lone_cr["errors"]
    huge = "x" * 200_000
    header = imported(f'"{huge}"\n')
    assert header == {"created": 0, "updated": 0, "errors": [
        {"row": 1, "message": "not a CSV file: field larger than field limit (131072)"}]}
    mobile = unique_mobile()
    rows = imported(f'name,mobile\n王芳,{mobile}\n"{huge}",13800000000\n')
    assert rows["created"] == 1
    assert rows["errors"] == [
        {"row": 3, "message": "not CSV from here on: field larger than field limit (131072)"}]


# ---------------------------------------------------------------- report periods (analytics)

REPORTS = ("/analytics/funnel", "/analytics/sales/trend", "/analytics/sales/business",
           "/analytics/staff/performance", "/analytics/service/composition",
           "/analytics/churn/analysis", "/analytics/reviews/sentiment")


def test_a_report_period_the_reports_cannot_compute_is_422_not_500(api, analytics_service):
    future = (date.today() + timedelta(days=400)).isoformat()
    for path in REPORTS:
        # `from` after today, `to` left out (today): a ValueError in the service, 500
        error = assert_refused(api.request("GET", API + path, role="admin",
                                           query_string={"from": future}), 422, {"from"})
        assert error["details"]["from"] == ["must not be after to (default: today)"], path
        # a day before pandas' calendar: OverflowError in the service, 500
        error = assert_refused(api.request("GET", API + path, role="admin",
                                           query_string={"to": "0319-04-16"}), 422, {"to"})
        assert error["details"]["to"] == ["must be from 1900-01-01 to 2199-12-31"], path
    # `from` alone more than ten years back: the same rule as with both given
    assert_refused(api.request("GET", f"{API}/analytics/funnel", role="admin",
                               query_string={"from": "2001-01-01"}), 422, {"from"})
    # what still works: `from` alone within ten years, `to` alone, both
    for query in ({"from": (date.today() - timedelta(days=30)).isoformat()},
                  {"to": "2026-01-31"}, {"from": "2025-01-01", "to": "2025-12-31"}):
        response = api.request("GET", f"{API}/analytics/funnel", role="admin", query_string=query)
        assert response.status_code == 200, (query, response.json)


# ---------------------------------------------------------------- what gunicorn answers itself

@pytest.fixture
def served_gateway(broker_uri, tmp_path):
    """The gateway served by gunicorn with its own settings (``gunicorn_conf.py``), as ``make
    up`` serves it, on a free port."""
    port = free_port()
    env = {**os.environ, "CRM_AMQP_URI": broker_uri, "CRM_DATA_DIR": str(tmp_path),
           "CRM_GATEWAY_BIND": f"127.0.0.1:{port}", "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "CRM_GATEWAY_READY_SERVICES": "customer"}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:crm_gateway.gunicorn_conf",
             "crm_gateway.app:create_app()"], env=env, stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT)
    base = f"http://127.0.0.1:{port}"

    def up():
        assert process.poll() is None, log_path.read_text()
        return http_get(base + "/healthz")[0] == 200

    try:
        wait_until(up, timeout=30, interval=0.1, message="gunicorn")
        yield base
    finally:
        process.terminate()
        process.wait(30)


def test_a_request_line_too_long_is_a_documented_414_in_the_api_error_format(served_gateway,
                                                                             module_api):
    # gunicorn refused request lines over 4094 bytes with an HTML page (text/html, undocumented)
    long_query = requests.get(f"{served_gateway}{API}/customers", timeout=10,
                              params={"q": "x" * 7000})
    assert long_query.status_code == 401  # up to 8190 bytes the request reaches the app
    too_long = requests.get(f"{served_gateway}{API}/customers", timeout=10,
                            params={"q": "x" * 9000})
    assert too_long.status_code == 414, too_long.text
    assert too_long.headers["Content-Type"] == "application/json"
    assert too_long.json()["error"]["code"] == "uri_too_long"
    assert set(too_long.json()["error"]) == {"code", "message", "details"}
    assert "414" in spec_of(module_api)["paths"][f"{API}/customers"]["get"]["responses"]
