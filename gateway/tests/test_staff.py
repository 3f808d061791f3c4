"""Staff accounts: create, list, read, change; validation and conflicts."""
import pytest

from gateway_support import STAFF_PASSWORD


def post_staff(api, body):
    return api.client.post("/api/v1/staff", json=body, headers=api.auth(api.admin_token()))


def patch_staff(api, staff_id, body):
    return api.client.patch(f"/api/v1/staff/{staff_id}", json=body,
                            headers=api.auth(api.admin_token()))


def test_create_read_and_list(api):
    supervisor = api.create_staff("zhou.supervisor", ["sales_supervisor"], district="Gaoxin")
    response = post_staff(api, {"username": "Li.Na", "password": "long-enough-pw",
                                "display_name": "李娜", "roles": ["customer_manager"],
                                "district": "Gaoxin", "supervisor_id": supervisor["id"]})
    assert response.status_code == 201
    created = response.json
    assert created["username"] == "li.na"  # usernames are case-insensitive, kept lower case
    assert created["display_name"] == "李娜"
    assert created["roles"] == ["customer_manager"]
    assert created["supervisor_id"] == supervisor["id"] and created["active"] is True
    assert "password" not in created and "password_hash" not in created
    assert created["created_at"].endswith("+00:00")

    fetched = api.client.get(f"/api/v1/staff/{created['id']}", headers=api.auth(api.admin_token()))
    assert fetched.status_code == 200 and fetched.json == created

    team = api.client.get(f"/api/v1/staff?supervisor_id={supervisor['id']}",
                          headers=api.auth(api.admin_token()))
    assert [member["username"] for member in team.json["items"]] == ["li.na"]
    managers = api.client.get("/api/v1/staff?role=customer_manager&per_page=1",
                              headers=api.auth(api.admin_token())).json
    assert managers["total"] == 1 and managers["per_page"] == 1 and managers["page"] == 1
    everyone = api.client.get("/api/v1/staff", headers=api.auth(api.admin_token())).json
    assert everyone["total"] == 3  # admin, supervisor, manager
    assert all("password_hash" not in member for member in everyone["items"])


def test_validation_names_each_bad_field(api):
    response = post_staff(api, {"username": "x", "password": "short", "roles": ["boss", "admin"]})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]) == {"username", "password", "display_name", "roles"}
    assert "10" in " ".join(error["details"]["password"])


def test_roles_must_be_known_unique_and_not_empty(api):
    base = {"username": "roles.test", "password": "long-enough-pw", "display_name": "R"}
    for roles in ([], ["admin", "admin"], ["janitor"]):
        response = post_staff(api, dict(base, roles=roles))
        assert response.status_code == 422, roles
        assert "roles" in response.json["error"]["details"]


def test_unknown_field_is_rejected(api):
    response = post_staff(api, {"username": "extra.field", "password": "long-enough-pw",
                                "display_name": "E", "roles": ["marketer"], "salary": 1})
    assert response.status_code == 422
    assert "salary" in response.json["error"]["details"]


def test_taken_username_is_409(api):
    api.create_staff("wang.fang", ["marketer"])
    response = post_staff(api, {"username": "WANG.FANG", "password": "long-enough-pw",
                                "display_name": "Another", "roles": ["marketer"]})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert "username" in response.json["error"]["details"]


def test_supervisor_must_exist(api):
    response = post_staff(api, {"username": "orphan", "password": "long-enough-pw",
                                "display_name": "O", "roles": ["customer_manager"],
                                "supervisor_id": "no-such-id"})
    assert response.status_code == 422
    assert "supervisor_id" in response.json["error"]["details"]


def test_patch_changes_what_is_given(api):
    staff = api.create_staff("chen.jie", ["service_agent"])
    supervisor = api.create_staff("sun.li", ["sales_supervisor"])
    response = patch_staff(api, staff["id"], {"display_name": "陈杰", "roles": ["technician"],
                                              "district": "Jinjiang",
                                              "supervisor_id": supervisor["id"]})
    assert response.status_code == 200
    assert response.json["display_name"] == "陈杰"
    assert response.json["roles"] == ["technician"]
    assert response.json["district"] == "Jinjiang"
    assert response.json["supervisor_id"] == supervisor["id"]
    assert response.json["username"] == "chen.jie"

    cleared = patch_staff(api, staff["id"], {"supervisor_id": None, "district": None})
    assert cleared.json["supervisor_id"] is None and cleared.json["district"] is None


@pytest.mark.parametrize("body, field", [
    ({"password": "short"}, "password"),
    ({"roles": ["nobody"]}, "roles"),
    ({"active": "maybe"}, "active"),
    ({"username": "renamed"}, "username"),  # usernames do not change
    ({}, "_schema"),
])
def test_patch_validation(api, body, field):
    staff = api.create_staff("patch.target", ["marketer"])
    response = patch_staff(api, staff["id"], body)
    assert response.status_code == 422
    assert field in response.json["error"]["details"]


def test_patch_supervisor_cannot_be_self(api):
    staff = api.create_staff("self.sup", ["sales_supervisor"])
    response = patch_staff(api, staff["id"], {"supervisor_id": staff["id"]})
    assert response.status_code == 422


def test_unknown_staff_is_404(api):
    headers = api.auth(api.admin_token())
    assert api.client.get("/api/v1/staff/nope", headers=headers).status_code == 404
    response = api.client.patch("/api/v1/staff/nope", json={"active": False}, headers=headers)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_the_last_admin_cannot_be_removed(api):
    admin_id = api.client.get("/api/v1/me", headers=api.auth(api.admin_token())).json["id"]
    response = patch_staff(api, admin_id, {"active": False})
    assert response.status_code == 409
    response = patch_staff(api, admin_id, {"roles": ["executive"]})
    assert response.status_code == 409
    # with a second admin it is fine
    api.create_staff("second.admin", ["admin"])
    assert patch_staff(api, admin_id, {"roles": ["executive"]}).status_code == 200


def test_list_pagination_limits(api):
    headers = api.auth(api.admin_token())
    response = api.client.get("/api/v1/staff?per_page=201", headers=headers)
    assert response.status_code == 422
    assert "per_page" in response.json["error"]["details"]
    assert api.client.get("/api/v1/staff?page=0", headers=headers).status_code == 422
    assert api.client.get("/api/v1/staff?per_page=200", headers=headers).status_code == 200


def test_new_staff_can_sign_in(api):
    api.create_staff("new.hire", ["customer_manager"])
    assert api.token("new.hire", STAFF_PASSWORD)


def test_supervisor_reads_staff_but_cannot_create(api):
    headers = api.as_role("sales_supervisor")
    assert api.client.get("/api/v1/staff", headers=headers).status_code == 200
    response = api.client.post("/api/v1/staff", headers=headers, json={
        "username": "sneaky", "password": "long-enough-pw", "display_name": "S",
        "roles": ["admin"]})
    assert response.status_code == 403
