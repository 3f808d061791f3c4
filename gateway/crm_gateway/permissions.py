"""Who may call what, and what they may see: the one place the gateway's access rules live.

``ROUTES`` maps every route (``"METHOD /rule"``, as in Flask's url_map) to the roles allowed
to call it, or ``PUBLIC``. One ``before_request`` hook (``crm_gateway.auth``) applies it to every
request, so no view can forget a check, and a test fails when a route has no entry here.
A route missing from the table is refused (fail closed).

Object-level limits (a customer manager only touching their own customers) come later.
"""
ADMIN = "admin"
EXECUTIVE = "executive"
SALES_SUPERVISOR = "sales_supervisor"
CUSTOMER_MANAGER = "customer_manager"
SERVICE_AGENT = "service_agent"
TECHNICIAN = "technician"
MARKETER = "marketer"

ROLES = (ADMIN, EXECUTIVE, SALES_SUPERVISOR, CUSTOMER_MANAGER, SERVICE_AGENT, TECHNICIAN,
         MARKETER)

PUBLIC = "public"  # no token needed

EVERYONE = frozenset(ROLES)
# executives read everything and change nothing: they are in every read group, in no write group
CUSTOMER_WRITERS = frozenset({ADMIN, SALES_SUPERVISOR, CUSTOMER_MANAGER})
CUSTOMER_CREATORS = CUSTOMER_WRITERS | {SERVICE_AGENT}
CUSTOMER_MANAGERS = frozenset({ADMIN, SALES_SUPERVISOR})  # handover, merge, import, points
TAGGERS = CUSTOMER_WRITERS | {MARKETER}
STAFF_READERS = frozenset({ADMIN, EXECUTIVE, SALES_SUPERVISOR})
ALERT_READERS = frozenset({ADMIN, EXECUTIVE, SALES_SUPERVISOR, CUSTOMER_MANAGER})

API = "/api/v1"

ROUTES = {
    # ops and docs
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/assets/<path:filename>": PUBLIC,
    f"GET {API}/openapi.json": PUBLIC,
    # auth and staff
    f"POST {API}/auth/token": PUBLIC,
    f"GET {API}/me": EVERYONE,
    f"POST {API}/staff": {ADMIN},
    f"GET {API}/staff": STAFF_READERS,
    f"GET {API}/staff/<staff_id>": STAFF_READERS,
    f"PATCH {API}/staff/<staff_id>": {ADMIN},
    # customers
    f"POST {API}/customers": CUSTOMER_CREATORS,
    f"GET {API}/customers": EVERYONE,
    f"GET {API}/customers/<customer_id>": EVERYONE,
    f"PATCH {API}/customers/<customer_id>": CUSTOMER_WRITERS,
    f"DELETE {API}/customers/<customer_id>": CUSTOMER_MANAGERS,
    f"GET {API}/customers/<customer_id>/360": EVERYONE,
    f"POST {API}/customers/<customer_id>/interactions": CUSTOMER_CREATORS,
    f"GET {API}/customers/<customer_id>/interactions": EVERYONE,
    f"POST {API}/customers/<customer_id>/tags": TAGGERS,
    f"DELETE {API}/customers/<customer_id>/tags/<tag>": TAGGERS,
    f"POST {API}/customers/<customer_id>/stage": CUSTOMER_WRITERS,
    f"GET {API}/customers/<customer_id>/stage-history": EVERYONE,
    f"POST {API}/customers/<customer_id>/churn-decision": CUSTOMER_WRITERS,
    f"GET {API}/customers/<customer_id>/duplicates": CUSTOMER_WRITERS | {EXECUTIVE},
    f"POST {API}/customers/<customer_id>/merge": CUSTOMER_MANAGERS,
    f"POST {API}/customers/<customer_id>/erase": {ADMIN},  # personal-data erasure requests
    f"POST {API}/customers/<customer_id>/points": CUSTOMER_MANAGERS,
    f"POST {API}/customers/handover": CUSTOMER_MANAGERS,
    f"POST {API}/customers/import": CUSTOMER_MANAGERS,
    f"GET {API}/customers/export": {ADMIN, EXECUTIVE, SALES_SUPERVISOR},
    # stagnation alerts and their limits (the list is further scoped to the caller's team)
    f"GET {API}/customer-alerts": ALERT_READERS,
    f"POST {API}/customer-alerts/<alert_id>/ack": CUSTOMER_WRITERS,
    f"GET {API}/customer-settings/stage-limits": {ADMIN, EXECUTIVE, SALES_SUPERVISOR},
    f"PUT {API}/customer-settings/stage-limits": {ADMIN, SALES_SUPERVISOR},
}


def route_key(method, rule):
    return f"{method} {rule}"


def allowed_roles(method, rule):
    """The roles allowed on a route, ``PUBLIC``, or ``None`` when the route is not in the table."""
    return ROUTES.get(route_key(method, rule))


def may_call(roles, method, rule):
    allowed = allowed_roles(method, rule)
    if allowed is None:
        return False
    return allowed == PUBLIC or bool(set(roles) & set(allowed))


# ---------------------------------------------------------------- masking of personal data

#: who sees a customer's full mobile number (they phone customers or visit them)
FULL_MOBILE = frozenset({CUSTOMER_MANAGER, SALES_SUPERVISOR, SERVICE_AGENT, TECHNICIAN})
#: who sees the full resident ID number (they sign leases)
FULL_ID_NUMBER = frozenset({CUSTOMER_MANAGER, SALES_SUPERVISOR})


def mask_mobile(value):
    """``13812345678`` → ``138****5678``."""
    if not value:
        return value
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_id_number(value):
    """``510104199001011234`` → ``5101**********1234``."""
    if not value:
        return value
    if len(value) < 9:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_customer(customer, roles):
    """A copy of a customer dict with what ``roles`` may not see masked (contacts included)."""
    roles = set(roles or ())
    masked = dict(customer)
    if not roles & FULL_MOBILE:
        masked["mobile"] = mask_mobile(masked.get("mobile"))
        if masked.get("contacts"):
            masked["contacts"] = [dict(contact, mobile=mask_mobile(contact.get("mobile")))
                                  for contact in masked["contacts"]]
    if not roles & FULL_ID_NUMBER:
        masked["id_number"] = mask_id_number(masked.get("id_number"))
    return masked
