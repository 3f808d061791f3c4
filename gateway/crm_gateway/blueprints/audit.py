"""The audit trail: ``GET /api/v1/audit`` (admins and executives).

Every change of customer data (the customer service), of money (sales) and of staff accounts
and permissions (the gateway's own), who made it, when, before and after; erased customers'
entries keep the fact and lose the data. ``crm_gateway.audit_trail`` reads and merges.
"""
from flask_smorest import Blueprint

from crm_gateway import audit_trail, db
from crm_gateway.auth import current_caller
from crm_gateway.blueprints import AUTH_ERRORS, RPC_ERRORS, error_responses, given_filters
from crm_gateway.schemas.audit import AuditPageSchema, AuditQuerySchema

blp = Blueprint("audit", __name__, url_prefix="/api/v1",
                description="The audit trail of customer data, money and permissions")

FILTERS = ("entity", "entity_id", "action", "actor_id", "subject_id")


@blp.route("/audit", methods=["GET"])
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditPageSchema)
@error_responses(blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def list_audit_entries(query):
    """Audit entries, newest first: one ``source`` (customer, sales, gateway) or all merged
    (then ``page × per_page`` ≤ 1000), filtered by entity, entity id, action, actor, subject
    (the customer an entry is about), ``since`` and ``until``. Mobile and ID numbers in customer
    data are masked as on the customer routes."""
    filters = given_filters(query, FILTERS)
    for name in ("since", "until"):
        if name in query:
            filters[name] = query[name].isoformat()
    return audit_trail.read(db.session(), filters, query.get("source"), query["page"],
                            query["per_page"], current_caller().roles)
