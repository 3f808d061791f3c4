"""Who may call what, and what they may see: the one place the gateway's access rules live.

``ROUTES`` maps every route (``"METHOD /rule"``, as in Flask's url_map) to the roles allowed
to call it, or ``PUBLIC``. One ``before_request`` hook (``crm_gateway.auth``) applies it to every
request, so no view can forget a check, and a test fails when a route has no entry here.
A route missing from the table is refused (fail closed).

Object-level limits (a customer manager only touching their own customers, a supervisor their
team's) are in ``crm_gateway.scopes``.
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
# leasing (the sales service)
SALES_WRITERS = frozenset({ADMIN, SALES_SUPERVISOR, CUSTOMER_MANAGER})
SALES_MANAGERS = frozenset({ADMIN, SALES_SUPERVISOR})  # assign, limits, deposit refund, urge
UNIT_EDITORS = SALES_WRITERS | {TECHNICIAN}  # technicians only switch vacant ↔ maintenance
PIPELINE_READERS = SALES_WRITERS | {EXECUTIVE}  # opportunities, viewings, plan steps
PIPELINE_SETTINGS_READERS = SALES_MANAGERS | {EXECUTIVE}
LEASE_READERS = SALES_WRITERS | {EXECUTIVE, SERVICE_AGENT}  # leases and bills
FORECAST_READERS = frozenset({ADMIN, EXECUTIVE, SALES_SUPERVISOR, CUSTOMER_MANAGER})
TASK_WRITERS = EVERYONE - {EXECUTIVE}  # executives change nothing, not even a to-do
# the service desk (the service_desk service)
TICKET_WRITERS = frozenset({ADMIN, SALES_SUPERVISOR, CUSTOMER_MANAGER, SERVICE_AGENT,
                            TECHNICIAN})  # open, comment on, move tickets along
TICKET_READERS = TICKET_WRITERS | {EXECUTIVE}
TICKET_DISPATCHERS = frozenset({ADMIN, SALES_SUPERVISOR, SERVICE_AGENT})  # assign, reopen
APPOINTMENT_BOOKERS = frozenset({ADMIN, SALES_SUPERVISOR, SERVICE_AGENT, TECHNICIAN})
FEEDBACK_RECORDERS = frozenset({ADMIN, CUSTOMER_MANAGER, SERVICE_AGENT})
KB_WRITERS = frozenset({ADMIN, SALES_SUPERVISOR, SERVICE_AGENT, TECHNICIAN})
SERVICE_DESK_MANAGERS = frozenset({ADMIN, SALES_SUPERVISOR})  # agents registry, SLA policy
SERVICE_DESK_SETTINGS_READERS = SERVICE_DESK_MANAGERS | {EXECUTIVE}
# marketing (the marketing service). A delivery provider's integration posts its receipts
# with a marketer account of its own (a staff account holding only the marketer role).
MARKETING_WRITERS = frozenset({ADMIN, MARKETER})  # segments, campaigns, care rules, receipts
MARKETING_READERS = MARKETING_WRITERS | {EXECUTIVE, SALES_SUPERVISOR}
RESPONSE_RECORDERS = frozenset({ADMIN, MARKETER, SALES_SUPERVISOR, CUSTOMER_MANAGER})
RESPONSE_READERS = MARKETING_READERS | {CUSTOMER_MANAGER}
MESSAGE_READERS = MARKETING_READERS | {CUSTOMER_MANAGER, SERVICE_AGENT}  # the delivery log
# analytics (the analytics service): the people who steer the business read the figures;
# those who talk to a customer also read that customer's scores
ANALYTICS_READERS = frozenset({ADMIN, EXECUTIVE, SALES_SUPERVISOR, MARKETER})
SCORE_READERS = ANALYTICS_READERS | {CUSTOMER_MANAGER, SERVICE_AGENT}
CLUSTER_WRITERS = frozenset({ADMIN, MARKETER})  # segmentation is marketing's tool
ANALYTICS_MANAGERS = frozenset({ADMIN})  # recompute now, the CLV parameters

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
    # units: every staff member reads (availability); sales staff create and edit; a
    # technician may PATCH, and only the status (vacant ↔ maintenance: checked in the view)
    f"POST {API}/units": SALES_WRITERS,
    f"GET {API}/units": EVERYONE,
    f"GET {API}/units/<unit_id>": EVERYONE,
    f"PATCH {API}/units/<unit_id>": UNIT_EDITORS,
    # opportunities and their development plans: sales staff write, executives read;
    # assigning an owner is a supervisor's call
    f"POST {API}/opportunities": SALES_WRITERS,
    f"GET {API}/opportunities": PIPELINE_READERS,
    f"GET {API}/opportunities/<opportunity_id>": PIPELINE_READERS,
    f"POST {API}/opportunities/<opportunity_id>/stage": SALES_WRITERS,
    f"POST {API}/opportunities/<opportunity_id>/assign": SALES_MANAGERS,
    f"POST {API}/opportunities/<opportunity_id>/plan-steps": SALES_WRITERS,
    f"POST {API}/opportunities/<opportunity_id>/plan-steps/<step_id>/done": SALES_WRITERS,
    # the sales forecast (Σ expected value × probability)
    f"GET {API}/opportunities/forecast": FORECAST_READERS,
    # stagnation limits of the pipeline: supervisors set them, executives read them
    f"GET {API}/opportunity-settings/stage-limits": PIPELINE_SETTINGS_READERS,
    f"PUT {API}/opportunity-settings/stage-limits": SALES_MANAGERS,
    # viewings (带看): as opportunities
    f"POST {API}/viewings": SALES_WRITERS,
    f"GET {API}/viewings": PIPELINE_READERS,
    f"PATCH {API}/viewings/<viewing_id>": SALES_WRITERS,
    # leases: sales staff sign, renew, terminate and add charges; executives and service
    # agents (a tenant calling about a repair or a bill) read; the deposit refund at move-out
    # is a supervisor's call
    f"POST {API}/leases": SALES_WRITERS,
    f"GET {API}/leases": LEASE_READERS,
    f"GET {API}/leases/<lease_id>": LEASE_READERS,
    f"POST {API}/leases/<lease_id>/renew": SALES_WRITERS,
    f"POST {API}/leases/<lease_id>/terminate": SALES_WRITERS,
    f"GET {API}/leases/<lease_id>/bills": LEASE_READERS,
    f"POST {API}/leases/<lease_id>/charges": SALES_WRITERS,
    f"POST {API}/leases/<lease_id>/deposit-refund": SALES_MANAGERS,
    # bills: read as leases; payments are taken by sales staff
    f"GET {API}/bills": LEASE_READERS,
    f"GET {API}/bills/<bill_id>": LEASE_READERS,
    f"POST {API}/payments": SALES_WRITERS,
    # tasks (工作日历): every staff member lists, creates and completes tasks (their own:
    # see crm_gateway.scopes), but executives only read; urging (催办) an overdue
    # task is a supervisor's call
    f"POST {API}/tasks": TASK_WRITERS,
    f"GET {API}/tasks": EVERYONE,
    f"POST {API}/tasks/<task_id>/done": TASK_WRITERS,
    f"POST {API}/tasks/<task_id>/urge": SALES_MANAGERS,
    # tickets (工单): the service desk's staff, technicians, customer managers (their
    # customers call them) and supervisors open, comment on and move tickets along;
    # executives read. Assigning and reopening are a dispatcher's call (agents, supervisors);
    # technicians book their visits; feedback is the customer's rating, recorded by the staff
    # who talk to customers (agents on the return call, customer managers)
    f"POST {API}/tickets": TICKET_WRITERS,
    f"GET {API}/tickets": TICKET_READERS,
    f"GET {API}/tickets/<ticket_id>": TICKET_READERS,
    f"POST {API}/tickets/<ticket_id>/assign": TICKET_DISPATCHERS,
    f"POST {API}/tickets/<ticket_id>/status": TICKET_WRITERS,
    f"POST {API}/tickets/<ticket_id>/comments": TICKET_WRITERS,
    f"POST {API}/tickets/<ticket_id>/appointment": APPOINTMENT_BOOKERS,
    f"POST {API}/tickets/<ticket_id>/feedback": FEEDBACK_RECORDERS,
    f"POST {API}/tickets/<ticket_id>/reopen": TICKET_DISPATCHERS,
    # the knowledge base (知识库): every staff member reads and searches (answering a
    # customer); the people who solve problems write articles, also from a solved ticket
    f"POST {API}/kb/articles": KB_WRITERS,
    f"GET {API}/kb/articles": EVERYONE,
    f"GET {API}/kb/articles/<article_id>": EVERYONE,
    f"GET {API}/kb/search": EVERYONE,
    f"POST {API}/tickets/<ticket_id>/to-article": KB_WRITERS,
    # the service desk's settings: the assignment registry and the SLA policy are set by
    # supervisors and admins, read by executives too
    f"GET {API}/service-desk/agents": SERVICE_DESK_SETTINGS_READERS,
    f"PUT {API}/service-desk/agents/<staff_id>": SERVICE_DESK_MANAGERS,
    f"GET {API}/service-desk/sla-policy": SERVICE_DESK_SETTINGS_READERS,
    f"PUT {API}/service-desk/sla-policy": SERVICE_DESK_MANAGERS,
    # segments and campaigns (营销): marketers (and admins) define audiences, write, launch
    # and measure campaigns; executives and sales supervisors read them, their previews and
    # their figures. A customer's answer to a campaign is recorded by whoever hears it
    # (marketers, customer managers, supervisors): it opens an opportunity
    f"POST {API}/segments": MARKETING_WRITERS,
    f"GET {API}/segments": MARKETING_READERS,
    f"GET {API}/segments/<segment_id>": MARKETING_READERS,
    f"GET {API}/segments/<segment_id>/preview": MARKETING_READERS,
    f"POST {API}/campaigns": MARKETING_WRITERS,
    f"GET {API}/campaigns": MARKETING_READERS,
    f"GET {API}/campaigns/<campaign_id>": MARKETING_READERS,
    f"POST {API}/campaigns/<campaign_id>/launch": MARKETING_WRITERS,
    f"GET {API}/campaigns/<campaign_id>/stats": MARKETING_READERS,
    f"POST {API}/campaigns/<campaign_id>/responses": RESPONSE_RECORDERS,
    f"GET {API}/campaigns/<campaign_id>/responses": RESPONSE_READERS,
    # care rules (客户关怀): as campaigns; running them by hand too (the service's timer
    # runs them every day anyway)
    f"POST {API}/care-rules": MARKETING_WRITERS,
    f"GET {API}/care-rules": MARKETING_READERS,
    f"PATCH {API}/care-rules/<rule_id>": MARKETING_WRITERS,
    f"POST {API}/care-rules/run": MARKETING_WRITERS,
    # the delivery log: marketing's readers, and the staff who talk to customers ("did you
    # get our message?"); receipts come from the delivery provider's integration, which signs
    # in with a marketer account
    f"GET {API}/messages": MESSAGE_READERS,
    f"GET {API}/messages/<message_id>": MESSAGE_READERS,
    f"POST {API}/messages/<message_id>/receipts": MARKETING_WRITERS,
    # analytics (分析): scores, RFM and CLV, churn warnings, clusters and every report are read
    # by admins, executives, sales supervisors and marketers; a customer's own scores also by
    # the staff who serve that customer. Recomputing and the CLV parameters are an admin's
    # call (the service recomputes on its own every hour); marketers run clusterings
    f"GET {API}/analytics/customers/<customer_id>/scores": SCORE_READERS,
    f"GET {API}/analytics/rfm": ANALYTICS_READERS,
    f"GET {API}/analytics/clv": ANALYTICS_READERS,
    f"GET {API}/analytics/clv/parameters": ANALYTICS_READERS,
    f"PUT {API}/analytics/clv/parameters": ANALYTICS_MANAGERS,
    f"POST {API}/analytics/recompute": ANALYTICS_MANAGERS,
    f"GET {API}/analytics/runs/<run_id>": ANALYTICS_READERS,
    f"POST {API}/analytics/clusters": CLUSTER_WRITERS,
    f"GET {API}/analytics/clusters": ANALYTICS_READERS,
    f"GET {API}/analytics/clusters/<run_id>": ANALYTICS_READERS,
    f"GET {API}/analytics/churn/warnings": ANALYTICS_READERS,
    f"GET {API}/analytics/churn/analysis": ANALYTICS_READERS,
    f"GET {API}/analytics/funnel": ANALYTICS_READERS,
    f"GET {API}/analytics/sales/trend": ANALYTICS_READERS,
    f"GET {API}/analytics/sales/business": ANALYTICS_READERS,
    f"GET {API}/analytics/staff/performance": ANALYTICS_READERS,
    f"GET {API}/analytics/service/composition": ANALYTICS_READERS,
    f"GET {API}/analytics/customers/composition": ANALYTICS_READERS,
    f"GET {API}/analytics/contribution": ANALYTICS_READERS,
    f"GET {API}/analytics/reviews/sentiment": ANALYTICS_READERS,
    # the audit trail (who changed customer data, money or permissions): admins and executives
    f"GET {API}/audit": {ADMIN, EXECUTIVE},
}


def markdown_table():
    """``ROUTES`` as a Markdown matrix, route by role (``docs/permissions.md`` is this output:
    ``python -m crm_gateway.permissions > docs/permissions.md``)."""
    lines = ["# Who may call what", "",
             "Generated from `gateway/crm_gateway/permissions.py` (`ROUTES`) by",
             "`python -m crm_gateway.permissions`; a test fails when this page and the code differ.",
             "✓ = allowed; *public* = no token. Which records a caller then sees is decided by",
             "`scopes.py` (docs/security.md).", "",
             "| route | " + " | ".join(ROLES) + " |",
             "| --- |" + " :---: |" * len(ROLES)]
    for key, allowed in ROUTES.items():
        method, rule = key.split(" ", 1)
        cells = (["*public*"] * len(ROLES) if allowed == PUBLIC
                 else ["✓" if role in allowed else "" for role in ROLES])
        lines.append(f"| `{method} {rule}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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


if __name__ == "__main__":
    print(markdown_table(), end="")
