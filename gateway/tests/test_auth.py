"""Signing in, token checks, revocation, and the first admin."""
import os
import stat
import time

import jwt

from gateway_support import ADMIN_PASSWORD, STAFF_PASSWORD, make_app


def test_good_password_gives_a_bearer_token(api):
    response = api.client.post("/api/v1/auth/token",
                               json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    assert response.json["token_type"] == "Bearer"
    assert response.json["expires_in"] == 3600
    me = api.client.get("/api/v1/me", headers=api.auth(response.json["access_token"]))
    assert me.status_code == 200
    assert me.json["username"] == "admin" and me.json["roles"] == ["admin"]
    assert "password_hash" not in me.json and "password" not in me.json


def test_token_claims(api):
    claims = jwt.decode(api.admin_token(), options={"verify_signature": False})
    assert set(claims) >= {"sub", "roles", "ver", "exp"}
    assert claims["roles"] == ["admin"]


def test_bad_password_and_unknown_user_get_the_same_401(api):
    wrong = api.client.post("/api/v1/auth/token", json={"username": "admin", "password": "nope"})
    unknown = api.client.post("/api/v1/auth/token",
                              json={"username": "nobody", "password": "whatever-123"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert wrong.json["error"]["code"] == "unauthorized"


def test_username_is_case_insensitive(api):
    assert api.token("ADMIN", ADMIN_PASSWORD)


def test_missing_or_malformed_token_is_401(api):
    missing = api.client.get("/api/v1/me")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    response = api.client.get("/api/v1/me", headers=api.auth("not.a.jwt"))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_token_signed_with_another_secret_is_401(api):
    claims = jwt.decode(api.admin_token(), options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-of-sufficient-length!!", algorithm="HS256")
    assert api.client.get("/api/v1/me", headers=api.auth(forged)).status_code == 401


def test_expired_token_is_401(api):
    secret = api.app.config["CRM_SETTINGS"].jwt_secret
    claims = jwt.decode(api.admin_token(), options={"verify_signature": False})
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    expired = jwt.encode(claims, secret, algorithm="HS256")
    response = api.client.get("/api/v1/me", headers=api.auth(expired))
    assert response.status_code == 401
    assert "expired" in response.json["error"]["message"]


def test_token_ttl_is_configurable(tmp_path, broker_uri):
    app = make_app(tmp_path, broker_uri, TOKEN_TTL=60)
    response = app.test_client().post("/api/v1/auth/token",
                                      json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.json["expires_in"] == 60


def test_password_change_revokes_older_tokens(api):
    staff = api.create_staff("mei", ["customer_manager"])
    old_token = api.token("mei", STAFF_PASSWORD)
    assert api.client.get("/api/v1/me", headers=api.auth(old_token)).status_code == 200

    changed = api.client.patch(f"/api/v1/staff/{staff['id']}", json={"password": "a-new-password"},
                               headers=api.auth(api.admin_token()))
    assert changed.status_code == 200

    assert api.client.get("/api/v1/me", headers=api.auth(old_token)).status_code == 401
    old_login = api.client.post("/api/v1/auth/token",
                                json={"username": "mei", "password": STAFF_PASSWORD})
    assert old_login.status_code == 401
    new_token = api.token("mei", "a-new-password")
    assert api.client.get("/api/v1/me", headers=api.auth(new_token)).status_code == 200


def test_deactivated_staff_cannot_use_tokens_or_sign_in(api):
    staff = api.create_staff("lei", ["service_agent"])
    token = api.token("lei", STAFF_PASSWORD)
    api.client.patch(f"/api/v1/staff/{staff['id']}", json={"active": False},
                     headers=api.auth(api.admin_token()))
    assert api.client.get("/api/v1/me", headers=api.auth(token)).status_code == 401
    login = api.client.post("/api/v1/auth/token", json={"username": "lei", "password": STAFF_PASSWORD})
    assert login.status_code == 401


def test_role_change_applies_on_the_next_request(api):
    staff = api.create_staff("bo.wang", ["admin"])
    token = api.token("bo.wang", STAFF_PASSWORD)
    assert api.client.get("/api/v1/staff", headers=api.auth(token)).status_code == 200
    api.client.patch(f"/api/v1/staff/{staff['id']}", json={"roles": ["technician"]},
                     headers=api.auth(api.admin_token()))
    assert api.client.get("/api/v1/staff", headers=api.auth(token)).status_code == 403


def test_first_admin_with_generated_password(tmp_path, broker_uri, capsys):
    app = make_app(tmp_path, broker_uri, ADMIN_PASSWORD=None)
    printed = capsys.readouterr().err
    credentials = tmp_path / "admin-credentials.txt"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    password = credentials.read_text().split("password: ")[1].strip()
    assert password in printed
    response = app.test_client().post("/api/v1/auth/token",
                                      json={"username": "admin", "password": password})
    assert response.status_code == 200

    # a restart never replaces the existing admin nor prints a password again
    again = make_app(tmp_path, broker_uri, ADMIN_PASSWORD=None)
    assert password not in capsys.readouterr().err
    response = again.test_client().post("/api/v1/auth/token",
                                        json={"username": "admin", "password": password})
    assert response.status_code == 200


def test_configured_admin_password_is_not_overwritten_later(tmp_path, broker_uri):
    make_app(tmp_path, broker_uri, ADMIN_PASSWORD="first-password-1")
    app = make_app(tmp_path, broker_uri, ADMIN_PASSWORD="second-password-2")
    client = app.test_client()
    assert client.post("/api/v1/auth/token", json={"username": "admin",
                                                   "password": "first-password-1"}).status_code == 200
    assert client.post("/api/v1/auth/token", json={"username": "admin",
                                                   "password": "second-password-2"}).status_code == 401
    assert not (tmp_path / "admin-credentials.txt").exists()


def test_generated_jwt_secret_is_kept_private_and_stable(tmp_path, broker_uri):
    first = make_app(tmp_path, broker_uri, JWT_SECRET=None)
    secret_file = tmp_path / "jwt-secret"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    second = make_app(tmp_path, broker_uri, JWT_SECRET=None)
    assert first.config["CRM_SETTINGS"].jwt_secret == second.config["CRM_SETTINGS"].jwt_secret
