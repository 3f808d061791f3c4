"""Lockout after repeated failed sign-ins, and no weak first-admin password (OWASP API2)."""
import pytest

from crm_gateway.auth import WeakAdminPassword
from crm_gateway.models import LoginFailure
from gateway_support import ADMIN_PASSWORD, STAFF_PASSWORD, Api, make_app

SIGN_IN = "/api/v1/auth/token"


@pytest.fixture
def strict(tmp_path, broker_uri):
    """A gateway that locks a username after 3 failures for 60 s (generous per-address limit,
    so the lockout is what answers)."""
    return Api(make_app(tmp_path, broker_uri, LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=60,
                        RATE_LIMIT_LOGIN="1000 per minute"))


def sign_in(api, username, password):
    return api.client.post(SIGN_IN, json={"username": username, "password": password})


def test_the_third_failure_locks_the_username_even_for_the_right_password(strict):
    strict.create_staff("mei", ["customer_manager"])
    assert [sign_in(strict, "mei", "wrong-password").status_code for _ in range(2)] == [401, 401]
    third = sign_in(strict, "mei", "wrong-password")
    assert third.status_code == 429
    assert third.json["error"]["code"] == "too_many_failures"
    assert 55 <= int(third.headers["Retry-After"]) <= 60
    assert third.json["error"]["details"]["retry_after"] == int(third.headers["Retry-After"])
    locked = sign_in(strict, "MEI", STAFF_PASSWORD)  # usernames are case-insensitive
    assert locked.status_code == 429 and "access_token" not in locked.json
    # other accounts are not affected
    assert sign_in(strict, "admin", ADMIN_PASSWORD).status_code == 200


def test_a_success_clears_the_count(strict):
    strict.create_staff("lin", ["customer_manager"])
    for _ in range(2):
        assert sign_in(strict, "lin", "wrong-password").status_code == 401
    assert sign_in(strict, "lin", STAFF_PASSWORD).status_code == 200
    for _ in range(2):
        assert sign_in(strict, "lin", "wrong-password").status_code == 401
    assert sign_in(strict, "lin", STAFF_PASSWORD).status_code == 200


def test_unknown_usernames_lock_the_same_way(strict):
    """Nothing in the answers tells a username that exists from one that does not."""
    strict.create_staff("zhou", ["customer_manager"])
    known = [sign_in(strict, "zhou", "wrong-password") for _ in range(3)]
    unknown = [sign_in(strict, "nobody-here", "wrong-password") for _ in range(3)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 429]
    assert known[0].json == unknown[0].json
    assert known[2].json["error"]["code"] == unknown[2].json["error"]["code"]


def test_an_admin_setting_a_new_password_lifts_the_lock(strict):
    staff = strict.create_staff("wang", ["customer_manager"])
    for _ in range(3):
        sign_in(strict, "wang", "wrong-password")
    assert sign_in(strict, "wang", STAFF_PASSWORD).status_code == 429
    changed = strict.client.patch(f"/api/v1/staff/{staff['id']}",
                                  json={"password": "brand-new-password-2"},
                                  headers=strict.auth(strict.admin_token()))
    assert changed.status_code == 200
    assert sign_in(strict, "wang", "brand-new-password-2").status_code == 200


def test_the_lock_ends_after_its_time(strict):
    """The lock and the count are kept in the database (shared by every worker); moving the
    lock's end into the past stands in for waiting 60 seconds."""
    from datetime import timedelta

    strict.create_staff("chen", ["customer_manager"])
    for _ in range(3):
        sign_in(strict, "chen", "wrong-password")
    sessions = strict.app.extensions["crm_gateway"]["sessions"]
    with sessions() as session:
        entry = session.get(LoginFailure, "chen")
        assert entry.failures == 3 and entry.locked_until is not None
        entry.locked_until -= timedelta(seconds=61)
        entry.last_failed_at -= timedelta(seconds=61)
        session.commit()
    assert sign_in(strict, "chen", STAFF_PASSWORD).status_code == 200
    with sessions() as session:
        assert session.get(LoginFailure, "chen") is None


def test_sign_in_documents_the_lockout(module_api):
    spec = module_api.client.get("/api/v1/openapi.json").json
    assert "429" in spec["paths"]["/api/v1/auth/token"]["post"]["responses"]


@pytest.mark.parametrize("password", ["short", "admin"])
def test_a_weak_configured_admin_password_stops_the_start(tmp_path, broker_uri, password):
    with pytest.raises(WeakAdminPassword, match="CRM_ADMIN_PASSWORD"):
        make_app(tmp_path, broker_uri, ADMIN_PASSWORD=password)


def test_the_username_as_password_stops_the_start(tmp_path, broker_uri):
    with pytest.raises(WeakAdminPassword):
        make_app(tmp_path, broker_uri, ADMIN_USERNAME="administrator",
                 ADMIN_PASSWORD="Administrator")
