"""Health, readiness, metrics, the OpenAPI document and the interactive docs."""
import re
import time

from openapi_spec_validator import validate

from gateway_support import RPC_TIMEOUT, make_app
from crm_gateway.permissions import PUBLIC, ROUTES

# the documentation routes themselves are not part of the API they document
UNDOCUMENTED = {"GET /api/v1/openapi.json", "GET /docs", "GET /docs/assets/<path:filename>"}


def test_healthz(module_api):
    response = module_api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "service": "gateway", "version": "0.1.0"}


def test_readyz_is_503_with_detail_when_the_customer_service_is_down(idle_api):
    response = idle_api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not_ready"
    assert response.json["broker"] == "ok"
    assert response.json["services"]["customer"] == {"status": "unavailable", "latency_ms": None}


def test_readyz_is_200_when_every_needed_service_answers(module_api, customer_service):
    response = module_api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["services"]["customer"]["status"] == "ok"
    assert response.json["services"]["customer"]["latency_ms"] >= 0


def test_readyz_waits_a_second_for_a_service_not_the_rpc_timeout(spare_api,
                                                                  paused_customer_service):
    started = time.monotonic()
    response = spare_api.client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json["services"]["customer"] == {"status": "timeout", "latency_ms": None}
    assert 1.0 <= elapsed < RPC_TIMEOUT, elapsed  # the ping's own 1 s timeout


def test_readyz_reports_an_unreachable_broker(tmp_path):
    app = make_app(tmp_path, "amqp://guest:guest@127.0.0.1:1/")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["broker"] == "unreachable"
    assert response.json["services"]["customer"]["status"] == "unavailable"


def test_metrics_label_routes_by_rule_not_raw_path(module_api):
    customer_id = module_api.create_customer()["id"]
    assert module_api.request("GET", f"/api/v1/customers/{customer_id}",
                              role="admin").status_code == 200
    module_api.client.get(f"/api/v1/customers/{customer_id}")  # 401
    response = module_api.client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert re.search(r'crm_http_requests_total\{method="GET",route="/api/v1/customers/<customer_id>",'
                     r'status="200"\} [1-9]', text)
    assert 'status="401"' in text
    assert "crm_http_request_duration_seconds_bucket" in text
    from crm_gateway import __version__
    assert f'crm_build_info{{service="gateway",version="{__version__}"}} 1.0' in text
    assert re.search(r'crm_rpc_client_calls_total\{method="get_customer",outcome="ok",'
                     r'service="customer"\}', text)
    assert customer_id not in text  # never an id in a label


def test_openapi_is_valid_and_documents_every_route(module_api):
    response = module_api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)

    documented = {f"{method.upper()} {path}" for path, item in spec["paths"].items()
                  for method in item if method != "parameters"}
    expected = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", key) for key in ROUTES
                if key not in UNDOCUMENTED}
    assert documented == expected

    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert spec["security"] == [{"bearerAuth": []}]
    error_schema = spec["components"]["schemas"]["Error"]
    assert error_schema["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}

    for key, roles in ROUTES.items():
        if key in UNDOCUMENTED:
            continue
        method, rule = key.split(" ", 1)
        operation = spec["paths"][re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)][method.lower()]
        if roles == PUBLIC:
            assert operation["security"] == [], key
        else:
            assert "security" not in operation, key  # the global bearer requirement applies
            assert {"401", "403"} <= set(operation["responses"]), key
        assert "default" in operation["responses"], key
        if "requestBody" in operation and "application/json" in operation["requestBody"]["content"]:
            assert "422" in operation["responses"], key


def test_openapi_documents_the_csv_routes(module_api):
    spec = module_api.client.get("/api/v1/openapi.json").json
    import_body = spec["paths"]["/api/v1/customers/import"]["post"]["requestBody"]
    assert "text/csv" in import_body["content"]
    export = spec["paths"]["/api/v1/customers/export"]["get"]["responses"]["200"]
    assert "text/csv" in export["content"]


def test_docs_page_uses_only_local_assets(module_api):
    response = module_api.client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/api/v1/openapi.json" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # no CDN
    assets = re.findall(r"(?:src|href)=\"(/docs/assets/[^\"]+)\"", html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        served = module_api.client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.get_data()) > 0
    assert module_api.client.get("/docs/assets/../../../etc/passwd").status_code == 404
