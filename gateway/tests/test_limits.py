"""Resource limits (issue 7): rate limits per client (429 with Retry-After) and the body size
(413), on real gateways whose limits are set low for the test, in front of the real customer
service. Each test has its own gateway, so its counters start at zero; its staff accounts and
tokens are made on a twin gateway with the default limits (same database and secret)."""
import pytest

from crm_gateway.app import create_app
from crm_gateway.settings import load
from gateway_support import STAFF_PASSWORD, Api, make_app

ADDRESS_A = {"REMOTE_ADDR": "192.0.2.10"}  # WSGI environ values only: no traffic goes anywhere
ADDRESS_B = {"REMOTE_ADDR": "192.0.2.20"}


@pytest.fixture
def limited(tmp_path, broker_uri):
    """``limited(**settings)``: (a gateway with those settings, a twin with the defaults)."""
    def make(**overrides):
        return Api(make_app(tmp_path, broker_uri, **overrides)), Api(make_app(tmp_path, broker_uri))
    return make


def assert_rate_limited(response, limit):
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert set(response.json) == {"error"} and set(error) == {"code", "message", "details"}
    assert error["code"] == "rate_limited"
    assert error["details"]["limit"] == limit
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["details"]["retry_after"] == retry_after
    assert response.headers["X-Request-ID"]
    return error


def test_the_fourth_call_in_a_minute_is_429_and_others_go_on(limited):
    api, setup = limited(RATE_LIMIT="3 per minute")
    first, second = setup.role_token("marketer"), setup.role_token("executive")
    for _ in range(3):
        assert api.request("GET", "/api/v1/me", token=first).status_code == 200
    assert_rate_limited(api.request("GET", "/api/v1/me", token=first), "3 per 1 minute")
    # another route, another address: the same staff member, the same budget
    response = api.request("GET", "/api/v1/customers", token=first, environ_base=ADDRESS_B)
    assert_rate_limited(response, "3 per 1 minute")
    # another staff member is not limited by the first one's calls
    response = api.request("GET", "/api/v1/me", token=second)
    assert response.status_code == 200 and response.json["id"] == setup.role_id("executive")


def test_callers_without_a_valid_token_are_counted_by_address(limited):
    api, setup = limited(RATE_LIMIT="3 per minute")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {}):
        response = api.client.get("/api/v1/me", headers=headers, environ_base=ADDRESS_A)
        assert response.status_code == 401
    assert_rate_limited(api.client.get("/api/v1/me", environ_base=ADDRESS_A), "3 per 1 minute")
    assert api.client.get("/api/v1/me", environ_base=ADDRESS_B).status_code == 401
    # a signed-in caller at that address has a budget of its own
    token = setup.role_token("marketer")
    response = api.request("GET", "/api/v1/me", token=token, environ_base=ADDRESS_A)
    assert response.status_code == 200


def test_sign_in_attempts_are_limited_per_address(limited):
    api, setup = limited(RATE_LIMIT_LOGIN="3 per minute")
    staff = setup.create_staff("li.na", ["marketer"])
    wrong = {"username": staff["username"], "password": "not-the-password"}
    right = {"username": staff["username"], "password": STAFF_PASSWORD}
    for _ in range(3):
        response = api.client.post("/api/v1/auth/token", json=wrong, environ_base=ADDRESS_A)
        assert response.status_code == 401
    response = api.client.post("/api/v1/auth/token", json=right, environ_base=ADDRESS_A)
    assert_rate_limited(response, "3 per 1 minute")
    response = api.client.post("/api/v1/auth/token", json=right, environ_base=ADDRESS_B)
    assert response.status_code == 200 and response.json["access_token"]
    # only signing in has that limit: the address may still call the rest of the API
    token = response.json["access_token"]
    response = api.request("GET", "/api/v1/me", token=token, environ_base=ADDRESS_A)
    assert response.status_code == 200


def test_analytics_share_a_stricter_budget_except_the_cheap_reads(limited):
    api, setup = limited(RATE_LIMIT_ANALYTICS="2 per minute")
    token = setup.role_token("executive")
    # 422 at the gateway (a bad query string): no analytics service is needed to count
    bad_trend = api.request("GET", "/api/v1/analytics/sales/trend?granularity=weekly",
                            token=token)
    assert bad_trend.status_code == 422
    bad_funnel = api.request("GET", "/api/v1/analytics/funnel?from=yesterday", token=token)
    assert bad_funnel.status_code == 422
    response = api.request("POST", "/api/v1/analytics/clusters", token=token, json={})
    assert_rate_limited(response, "2 per 1 minute")
    response = api.request("GET", "/api/v1/analytics/funnel", token=token,
                           headers={"Accept": "text/csv"})
    assert_rate_limited(response, "2 per 1 minute")
    # a customer's scores and a run's status are not counted (analytics does not run here: 503)
    for _ in range(3):
        scores = api.request("GET", "/api/v1/analytics/customers/c-1/scores", token=token)
        assert scores.status_code == 503
        run = api.request("GET", "/api/v1/analytics/runs/not-a-number", token=token)
        assert run.status_code == 404
    # nor is the rest of the API, nor another staff member's analytics
    assert api.request("GET", "/api/v1/me", token=token).status_code == 200
    other = setup.role_token("sales_supervisor")
    response = api.request("GET", "/api/v1/analytics/funnel?from=yesterday", token=other)
    assert response.status_code == 422


def test_health_metrics_and_docs_are_never_limited(limited):
    api, _setup = limited(RATE_LIMIT="2 per minute", RATE_LIMIT_LOGIN="2 per minute")
    for _ in range(4):
        assert api.client.get("/healthz").status_code == 200
        assert api.client.get("/readyz").status_code in (200, 503)
        assert api.client.get("/metrics").status_code == 200
        assert api.client.get("/api/v1/openapi.json").status_code == 200
        assert api.client.get("/docs").status_code == 200
    # none of them was counted: the address still has its 2 calls
    assert api.client.get("/api/v1/me").status_code == 401
    assert api.client.get("/api/v1/me").status_code == 401
    assert_rate_limited(api.client.get("/api/v1/me"), "2 per 1 minute")
    assert api.client.get("/healthz").status_code == 200


def test_the_openapi_document_lists_429(module_api):
    spec = module_api.client.get("/api/v1/openapi.json").json
    for path, method in (("/api/v1/auth/token", "post"), ("/api/v1/analytics/funnel", "get"),
                         ("/api/v1/customers", "post"), ("/api/v1/me", "get")):
        assert "429" in spec["paths"][path][method]["responses"], (path, method)
    assert "429" not in spec["paths"]["/healthz"]["get"]["responses"]


def test_an_oversized_body_is_413_and_nothing_is_created(limited, customer_calls):
    api, setup = limited(MAX_BODY_BYTES=2048)
    token = setup.role_token("sales_supervisor")
    body = {"name": "王芳", "mobile": "13900000000", "notes": "x" * 4096}
    before = customer_calls()
    response = api.request("POST", "/api/v1/customers", token=token, json=body)
    assert response.status_code == 413, response.get_data(as_text=True)
    error = response.json["error"]
    assert error["code"] == "payload_too_large" and error["details"] == {"max_bytes": 2048}
    response = api.request("POST", "/api/v1/customers/import", token=token,
                           data=b"name,mobile\n" + b"x" * 4096, content_type="text/csv")
    assert response.status_code == 413
    assert customer_calls() == before  # the customer service was never asked
    assert api.request("GET", "/api/v1/me", token=token).status_code == 200


def test_limits_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_RATE_LIMIT", "5 per second")
    monkeypatch.setenv("CRM_RATE_LIMIT_ANALYTICS", "7 per hour")
    monkeypatch.setenv("CRM_RATE_LIMIT_LOGIN", "9 per minute")
    monkeypatch.setenv("CRM_RATE_LIMIT_STORAGE", "memory://")
    monkeypatch.setenv("CRM_MAX_BODY_BYTES", "4096")
    settings = load({"DATA_DIR": str(tmp_path), "JWT_SECRET": "x" * 40})
    assert (settings.rate_limit, settings.rate_limit_analytics, settings.rate_limit_login,
            settings.rate_limit_storage, settings.max_body_bytes) == (
        "5 per second", "7 per hour", "9 per minute", "memory://", 4096)
    for name in ("CRM_RATE_LIMIT", "CRM_RATE_LIMIT_ANALYTICS", "CRM_RATE_LIMIT_LOGIN",
                 "CRM_MAX_BODY_BYTES"):
        monkeypatch.delenv(name)
    defaults = load({"DATA_DIR": str(tmp_path), "JWT_SECRET": "x" * 40})
    assert (defaults.rate_limit, defaults.rate_limit_analytics, defaults.rate_limit_login,
            defaults.max_body_bytes) == (
        "1200 per minute", "60 per minute", "20 per minute", 20 * 1024 * 1024)


def test_a_limit_that_does_not_parse_stops_the_start(tmp_path):
    with pytest.raises(ValueError):
        create_app({"DATA_DIR": str(tmp_path), "JWT_SECRET": "x" * 40,
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
                    "ADMIN_PASSWORD": "admin-password-1", "RATE_LIMIT": "lots"})


def _list_operations(spec):
    """Every GET that answers a page (``items`` and ``total``), with its path."""
    schemas = spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if not get:
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if {"items", "total"} <= set(properties):
            yield path, get


def test_every_list_caps_per_page_at_200(module_api):
    """Page-size limit, route by route: documented as at most 200 and refused above it with a
    422 naming ``per_page`` (checked at the gateway, before any service is asked)."""
    spec = module_api.client.get("/api/v1/openapi.json").json
    token = module_api.admin_token()
    lists = list(_list_operations(spec))
    assert len(lists) >= 20, [path for path, _ in lists]
    for path, get in lists:
        per_page = {p["name"]: p for p in get.get("parameters", []) if p["in"] == "query"}.get(
            "per_page")
        assert per_page is not None, path
        assert per_page["schema"]["maximum"] == 200, path
        url = path.replace("{", "").replace("}", "")  # any id: validation comes first
        response = module_api.client.get(f"{url}?per_page=201", headers=module_api.auth(token))
        assert response.status_code == 422, (path, response.status_code)
        assert "per_page" in response.json["error"]["details"], path


def test_memory_counters_restart_their_expiry_timer_one_thread_at_a_time(tmp_path, broker_uri):
    """limits 5.8.0's memory storage could start one expiry timer twice from two request
    threads (a 500, "threads can only be started once"); the gateway's storage takes a lock
    around that step. While the lock is held, a request thread's count waits for it."""
    import threading

    from crm_gateway.rate_limits import ThreadSafeMemoryStorage

    app = make_app(tmp_path, broker_uri)
    storage = app.extensions["crm_gateway"]["limiter"].storage
    assert isinstance(storage, ThreadSafeMemoryStorage)  # for the default memory:// setting
    counted = threading.Event()

    def count():
        storage.incr("crm-test", expiry=1)
        counted.set()

    with storage._timer_lock:
        request_thread = threading.Thread(target=count)
        request_thread.start()
        assert not counted.wait(0.3), "the count went ahead without the timer lock"
    assert counted.wait(10)
    request_thread.join(10)
    assert storage.get("crm-test") == 1
