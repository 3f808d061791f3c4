"""``GET /api/v1/audit`` in front of the REAL customer (and, for the merged view, sales)
service: who changed what and when, before and after; staff roles and passwords audited without
hashes; personal data masked as on the customer routes; erasure leaves the facts and no data;
admins and executives only."""
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from crm_kit.config import normalize_database_url
from crm_kit.testing import appears_in, wait_until
from gateway_support import ALL_ROLES, STAFF_PASSWORD, Api, make_app, masked_mobile, resident_id

AUDIT = "/api/v1/audit"
READERS = {"admin", "executive"}


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def audit(api, role="admin", **query):
    return ok(api.request("GET", AUDIT, role=role, query_string=query))


def cells(engine):
    """Every cell of a database's audit table as text (what someone reading it raw sees)."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM audit_entries")).all()
    return "\n".join(str(cell) for row in rows for cell in row)



@pytest.mark.parametrize("role", ALL_ROLES)
def test_admins_and_executives_read_the_trail_no_one_else(module_api, role):
    response = module_api.request("GET", AUDIT, role=role, query_string={"source": "gateway"})
    if role in READERS:
        body = ok(response)
        assert set(body) == {"items", "total", "page", "per_page"}
    else:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"


def test_staff_changes_are_audited_without_hashes_or_passwords(api):
    admin_id = audit(api, source="gateway", action="staff.created")["items"][-1]["entity_id"]
    first = audit(api, source="gateway", entity_id=admin_id)["items"][-1]
    assert (first["actor_id"], first["after"]["roles"]) == ("system", ["admin"])  # at start

    supervisor = api.create_staff("audit.sup", ["sales_supervisor"])
    member = api.create_staff("audit.member", ["technician"], district="Gaoxin")
    headers = api.auth(api.admin_token())
    ok(api.client.patch(f"/api/v1/staff/{member['id']}", headers=headers,
                        json={"roles": ["customer_manager", "service_agent"],
                              "supervisor_id": supervisor["id"]}))
    ok(api.client.patch(f"/api/v1/staff/{member['id']}", headers=headers,
                        json={"password": "a-brand-new-secret-9"}))
    ok(api.client.patch(f"/api/v1/staff/{member['id']}", headers=headers,
                        json={"active": False}))

    entries = audit(api, source="gateway", entity="staff", entity_id=member["id"])["items"]
    assert [e["action"] for e in entries] == ["staff.updated"] * 3 + ["staff.created"]
    deactivated, password, roles, created = entries
    assert created["before"] is None
    assert created["after"] == {"username": "audit.member", "display_name": "Audit.Member",
                                "roles": ["technician"], "district": "Gaoxin",
                                "supervisor_id": None, "active": True}
    assert roles["before"] == {"roles": ["technician"], "supervisor_id": None}
    assert roles["after"] == {"roles": ["customer_manager", "service_agent"],
                              "supervisor_id": supervisor["id"]}
    assert (password["before"], password["after"]) == ({}, {"password": "changed"})
    assert (deactivated["before"], deactivated["after"]) == ({"active": True}, {"active": False})
    admin = api.client.get("/api/v1/me", headers=headers).get_json()
    assert all(e["actor_id"] == admin["id"] and e["actor_roles"] == ["admin"]
               and e["source"] == "gateway" for e in entries)
    assert all(e["correlation_id"] for e in entries)

    raw = cells(api.app.extensions["crm_gateway"]["engine"])
    for secret in ("scrypt", "a-brand-new-secret-9", STAFF_PASSWORD, "password_hash"):
        assert secret not in raw
    # the staff list says nothing new; the audit table is append-only here too
    with api.app.extensions["crm_gateway"]["engine"].connect() as connection:
        with pytest.raises(Exception, match="append-only"):
            connection.execute(text("DELETE FROM audit_entries"))


def test_the_staff_trail_on_postgresql(tmp_path, broker_uri, postgres_database):
    """As deployed (docker-compose.yml): the gateway's migrations, triggers included, on
    PostgreSQL."""
    api = Api(make_app(tmp_path, broker_uri, DATABASE_URL=postgres_database("gateway")))
    member = api.create_staff("pg.member", ["marketer"])
    ok(api.client.patch(f"/api/v1/staff/{member['id']}", headers=api.auth(api.admin_token()),
                        json={"roles": ["marketer", "admin"], "password": "another-secret-77"}))
    changed, created = audit(api, source="gateway", entity_id=member["id"])["items"]
    assert created["action"] == "staff.created"
    assert changed["before"] == {"roles": ["marketer"]}
    assert changed["after"] == {"roles": ["marketer", "admin"], "password": "changed"}
    engine = api.app.extensions["crm_gateway"]["engine"]
    assert engine.dialect.name == "postgresql"
    assert "scrypt" not in cells(engine) and "another-secret-77" not in cells(engine)
    for sql in ("DELETE FROM audit_entries", "UPDATE audit_entries SET actor_id = 'x'",
                "TRUNCATE audit_entries"):
        with engine.connect() as connection:
            with pytest.raises(Exception, match="append-only"):
                connection.execute(text(sql))
    engine.dispose()


def test_customer_changes_show_masked_as_the_reader_may_see_them(api):
    mobile, id_number = "13912340001", resident_id()
    customer = api.create_customer(role="admin", mobile=mobile, id_number=id_number)
    ok(api.request("PATCH", f"/api/v1/customers/{customer['id']}", role="admin",
                   json={"mobile": "13912340002", "occupation": "engineer"}))
    for role in ("admin", "executive"):  # neither sees a full mobile or ID number elsewhere
        updated, created = audit(api, role=role, source="customer",
                                 subject_id=customer["id"])["items"]
        assert (updated["action"], created["action"]) == ("customer.updated",
                                                          "customer.created")
        assert updated["before"] == {"mobile": masked_mobile(mobile), "occupation": None}
        assert updated["after"] == {"mobile": masked_mobile("13912340002"),
                                    "occupation": "engineer"}
        assert created["after"]["mobile"] == masked_mobile(mobile)
        assert created["after"]["id_number"] == id_number[:4] + "*" * 10 + id_number[-4:]
        assert created["after"]["name"] == customer["name"]
        assert updated["source"] == "customer" and updated["entity_id"] == customer["id"]


def test_erasure_keeps_the_facts_and_leaves_no_personal_data(api, customer_service):
    name, mobile = "司马相如", "13912340003"
    customer = api.create_customer(role="admin", name=name, mobile=mobile,
                                   email="sima@example.com")
    ok(api.request("POST", f"/api/v1/customers/{customer['id']}/interactions", role="admin",
                   json={"channel": "phone", "direction": "inbound",
                         "summary": f"{name} asked for a quiet flat"}), 201)
    engine = create_engine(normalize_database_url(customer_service.database_url))
    try:
        assert appears_in(name, cells(engine)) and appears_in(mobile, cells(engine))
        ok(api.request("POST", f"/api/v1/customers/{customer['id']}/erase", role="admin"))
        raw = cells(engine)
    finally:
        engine.dispose()
    for value in (name, mobile, "sima@example.com", "quiet flat"):
        assert not appears_in(value, raw), value

    entries = audit(api, role="executive", source="customer",
                    subject_id=customer["id"])["items"]
    assert [e["action"] for e in entries] == ["customer.erased", "interaction.added",
                                              "customer.created"]
    erased = entries[0]
    assert (erased["before"], erased["after"]) == ({"erased": False}, {"erased": True})
    assert erased["redacted_at"] is None and erased["actor_roles"] == ["admin"]
    for entry in entries[1:]:
        assert entry["before"] is None and entry["after"] is None and entry["redacted_at"]


def test_query_is_checked(module_api):
    for query in ({"source": "marketing"}, {"since": "yesterday"}, {"per_page": 201},
                  {"page": 0}, {"entity_id": "x" * 65}):
        response = module_api.request("GET", AUDIT, role="admin", query_string=query)
        assert response.status_code == 422, query
    page = audit(module_api, source="gateway", per_page=1, page=2)
    assert (page["page"], page["per_page"], len(page["items"])) == (2, 1, 1)
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert audit(module_api, source="gateway", since=later)["total"] == 0  # no offset: UTC
    assert audit(module_api, source="gateway", until=later)["total"] >= 2


def test_all_sources_merged_newest_first(sales_service, customer_service, tmp_path, broker_uri):
    api = Api(make_app(tmp_path / "merged", broker_uri, RPC_TIMEOUT=5))
    customer = api.create_customer(role="admin")
    unit = ok(api.request("POST", "/api/v1/units", role="admin", json={
        "code": f"AU-{customer['id'][:8]}", "building": "锦江公寓 A 栋", "district": "锦江区",
        "layout": "1室1厅", "area_sqm": "45.50", "floor": 3, "monthly_rent": "3500.00"}), 201)
    start = date.today()
    lease = ok(api.request("POST", "/api/v1/leases", role="admin", json={
        "customer_id": customer["id"], "unit_id": unit["id"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=59)).isoformat(), "monthly_rent": "3500.00",
        "deposit": "3500.00", "payment_cycle": "monthly"}), 201)
    # the customer service's reaction to lease.signed lands in its trail too: wait for it
    wait_until(lambda: api.customer(customer["id"], role="admin")["stage"] == "first_time",
               message="lease.signed → first_time")

    about = audit(api, role="executive", subject_id=customer["id"])  # all three sources
    sources = [e["source"] for e in about["items"]]
    assert set(sources) == {"customer", "sales"}
    assert about["total"] == len(about["items"])
    moments = [datetime.fromisoformat(e["at"]) for e in about["items"]]
    assert moments == sorted(moments, reverse=True)
    [signed] = [e for e in about["items"] if e["action"] == "lease.signed"]
    assert signed["entity_id"] == lease["id"] and signed["after"]["monthly_rent"] == "3500.00"

    everything = audit(api, per_page=5)
    assert {e["source"] for e in everything["items"]} <= {"customer", "sales", "gateway"}
    assert everything["total"] == sum(audit(api, source=s, per_page=1)["total"]
                                      for s in ("customer", "sales", "gateway"))
    second = audit(api, per_page=2, page=2)["items"]
    assert second == audit(api, per_page=4)["items"][2:]
    too_deep = api.request("GET", AUDIT, role="admin", query_string={"per_page": 200, "page": 6})
    assert too_deep.status_code == 422 and "page" in too_deep.get_json()["error"]["details"]
    # one source is not deployed: the merged view says so rather than leave it out
    sales_service.kill()
    gone = api.request("GET", AUDIT, role="admin")
    assert gone.status_code in (503, 504)
    assert gone.get_json()["error"]["details"]["service"] == "sales"
