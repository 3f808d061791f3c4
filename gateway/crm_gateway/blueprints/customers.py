"""Customers, their stagnation alerts and stage limits: thin calls to the customer service.

Each view validates the request (marshmallow), adds who is asking (``actor``), calls one RPC
(docs/rpc-contracts.md) and dumps the answer through a schema, which masks personal data by
role. The service's NotFound/Conflict/InvalidInput become 404/409/422 (crm_gateway.errors).
Which customers a caller reaches (a customer manager their own …) is ``crm_gateway.scopes``.
"""
import csv
import io
from datetime import datetime, timezone

from flask import Response, request
from flask_smorest import Blueprint

from crm_kit.errors import InvalidInput
from crm_gateway import customer_360, db, rpc, scopes
from crm_gateway.auth import current_caller
from crm_gateway.blueprints import (AUTH_ERRORS, RPC_ERRORS, actor, error_responses,
                                     given_filters, require_active_staff)
from crm_gateway.errors import BadRequest, Forbidden, error_response
from crm_gateway.models import Staff
from crm_gateway.permissions import CUSTOMER_MANAGER
from crm_gateway.schemas.customers import (
    AlertPageSchema, AlertQuerySchema, AlertSchema, ChurnDecisionInSchema, Customer360Schema,
    CustomerChangesSchema, CustomerCreateSchema, CustomerPageSchema, CustomerQuerySchema,
    CustomerSchema, DuplicateSchema, ExportQuerySchema, HandoverInSchema, HandoverSchema,
    ImportResultSchema, InteractionInSchema, InteractionPageSchema, InteractionSchema,
    MergeInSchema, PointsInSchema, StageChangeInSchema, StageChangeSchema, StageLimitsSchema,
    TagsInSchema,
)
from crm_gateway.schemas.common import PageQuery

blp = Blueprint("customers", __name__, url_prefix="/api/v1",
                description="Customers (the customer service): records, lifecycle, tags, "
                            "interactions, duplicates, import/export, the 360 view, alerts")

CUSTOMER = "customer"
FILTERS = ("q", "stage", "tag", "owner_id", "value_tier", "district")
# bulk calls move many records in one message: they get longer than the default timeout
BULK_TIMEOUT = 60.0
CSV_TYPES = ("text/csv", "application/csv", "text/plain")


def _require_staff(field, staff_id):
    if db.session().get(Staff, staff_id) is None:
        raise InvalidInput({field: ["is not a staff member"]})


# ---------------------------------------------------------------- the record

@blp.route("/customers", methods=["POST"])
@blp.arguments(CustomerCreateSchema)
@blp.response(201, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 409, *RPC_ERRORS)
def create_customer(data):
    """Create a customer (stage ``potential``). Same mobile again → 409 naming the existing id.

    A customer manager who names no owner becomes the owner.
    """
    caller = current_caller()
    if not data.get("owner_id") and caller.has_role(CUSTOMER_MANAGER):
        data["owner_id"] = caller.id
    if data.get("owner_id") is not None:
        scopes.check_owner("owner_id", data["owner_id"])
    require_active_staff("owner_id", data.get("owner_id"))
    return rpc.call(CUSTOMER, "create_customer", data, actor())


@blp.route("/customers", methods=["GET"])
@blp.arguments(CustomerQuerySchema, location="query")
@blp.response(200, CustomerPageSchema)
@error_responses(blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_customers(query):
    """Search customers by text (name, mobile, email), stage, tag, owner, value tier, district."""
    filters = scopes.customer_filters(given_filters(query, FILTERS))
    return rpc.call(CUSTOMER, "list_customers", filters, query["page"], query["per_page"])


@blp.route("/customers/<customer_id>", methods=["GET"])
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_customer(customer_id):
    """One customer."""
    return scopes.check_customer(rpc.call(CUSTOMER, "get_customer", customer_id))


@blp.route("/customers/<customer_id>", methods=["PATCH"])
@blp.arguments(CustomerChangesSchema)
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def update_customer(changes, customer_id):
    """Change profile fields (not stage, points or value tier: they have their own calls)."""
    if not changes:
        raise InvalidInput({"_schema": ["give at least one field to change"]})
    if "owner_id" in changes:
        scopes.check_owner("owner_id", changes["owner_id"])
        require_active_staff("owner_id", changes["owner_id"])
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "update_customer", customer_id, changes, actor())


@blp.route("/customers/<customer_id>", methods=["DELETE"])
@blp.response(204)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def archive_customer(customer_id):
    """Archive a customer: hidden from lists, kept for history."""
    scopes.require_customer(customer_id)
    rpc.call(CUSTOMER, "archive_customer", customer_id, actor())


@blp.route("/customers/<customer_id>/360", methods=["GET"])
@blp.response(200, Customer360Schema)
@error_responses(blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def customer_360_view(customer_id):
    """Everything about a customer in one call: profile, stage history, interactions,
    opportunities, leases with bills, tickets, campaign messages, scores.

    A section whose service is down or not deployed is ``{"available": false, "reason": …}``;
    the rest still comes back.
    """
    view = customer_360.gather(customer_id, current_caller())
    scopes.check_customer(view["profile"])
    return view


# ---------------------------------------------------------------- interactions, tags, lifecycle

@blp.route("/customers/<customer_id>/interactions", methods=["POST"])
@blp.arguments(InteractionInSchema)
@blp.response(201, InteractionSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def add_interaction(data, customer_id):
    """Log a contact with the customer on any channel."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "add_interaction", customer_id, data, actor())


@blp.route("/customers/<customer_id>/interactions", methods=["GET"])
@blp.arguments(PageQuery, location="query")
@blp.response(200, InteractionPageSchema)
@error_responses(blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def list_interactions(query, customer_id):
    """The customer's interaction log, newest first."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "list_interactions", customer_id, query["page"], query["per_page"])


@blp.route("/customers/<customer_id>/tags", methods=["POST"])
@blp.arguments(TagsInSchema)
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def add_tags(data, customer_id):
    """Add tags (already present ones are kept once)."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "add_tags", customer_id, data["tags"], actor())


@blp.route("/customers/<customer_id>/tags/<tag>", methods=["DELETE"])
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def remove_tag(customer_id, tag):
    """Remove one tag."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "remove_tag", customer_id, tag, actor())


@blp.route("/customers/<customer_id>/stage", methods=["POST"])
@blp.arguments(StageChangeInSchema)
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def change_stage(data, customer_id):
    """Move the customer to another lifecycle stage, with the reason (recorded in the history)."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "change_stage", customer_id, data["stage"], data["reason"],
                    actor(), data.get("approver_id"))


@blp.route("/customers/<customer_id>/stage-history", methods=["GET"])
@blp.response(200, StageChangeSchema(many=True))
@error_responses(blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def stage_history(customer_id):
    """Every stage transition with its trigger, actor and approver."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "stage_history", customer_id)


@blp.route("/customers/<customer_id>/churn-decision", methods=["POST"])
@blp.arguments(ChurnDecisionInSchema)
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def churn_decision(data, customer_id):
    """On a churn warning: keep trying, or confirm the churn (with reason and competitor)."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "churn_decision", customer_id, data["decision"], data["reason"],
                    data.get("competitor"), actor())


@blp.route("/customers/<customer_id>/points", methods=["POST"])
@blp.arguments(PointsInSchema)
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def adjust_points(data, customer_id):
    """Add or take member points by hand, with the reason (admin, sales supervisor)."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "adjust_points", customer_id, data["delta"], data["reason"],
                    actor())


# ---------------------------------------------------------------- owners, duplicates, erasure

@blp.route("/customers/handover", methods=["POST"])
@blp.arguments(HandoverInSchema)
@blp.response(200, HandoverSchema)
@error_responses(blp, *AUTH_ERRORS, *RPC_ERRORS)
def handover(data):
    """Move some or all customers of one owner to another (e.g. a manager leaving)."""
    _require_staff("from_owner_id", data["from_owner_id"])  # may have left: inactive is fine
    scopes.check_team_member("from_owner_id", data["from_owner_id"])
    require_active_staff("to_owner_id", data["to_owner_id"])
    return rpc.call(CUSTOMER, "handover", data["from_owner_id"], data["to_owner_id"],
                    data.get("customer_ids"), data["reason"], actor())


@blp.route("/customers/<customer_id>/duplicates", methods=["GET"])
@blp.response(200, DuplicateSchema(many=True))
@error_responses(blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def find_duplicates(customer_id):
    """Other customers with the same mobile, email or ID number (those the caller reaches)."""
    scopes.require_customer(customer_id)
    return [duplicate for duplicate in rpc.call(CUSTOMER, "find_duplicates", customer_id)
            if scopes.customer_visible(duplicate["customer"])]


@blp.route("/customers/<customer_id>/merge", methods=["POST"])
@blp.arguments(MergeInSchema)
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def merge(data, customer_id):
    """Merge a duplicate into this customer; returns the surviving customer."""
    scopes.require_customer(customer_id)
    scopes.require_customer(data["duplicate_id"])
    return rpc.call(CUSTOMER, "merge_customers", customer_id, data["duplicate_id"], actor())


@blp.route("/customers/<customer_id>/erase", methods=["POST"])
@blp.response(200, CustomerSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def erase(customer_id):
    """Erase the person on request: anonymised here and, through events, in every service."""
    scopes.require_customer(customer_id)
    return rpc.call(CUSTOMER, "erase_customer", customer_id, actor())


# ---------------------------------------------------------------- CSV import and export

@blp.route("/customers/import", methods=["POST"])
@blp.doc(requestBody={
    "required": True,
    "description": "UTF-8 CSV (a BOM is fine) with a header row of field names "
                   "(name, mobile, email, …, tags, consent_sms …) or their Chinese labels.",
    "content": {"text/csv": {"schema": {"type": "string"}}},
})
@blp.response(200, ImportResultSchema)
@error_responses(blp, 400, *AUTH_ERRORS, 415, 422, *RPC_ERRORS)
def import_customers():
    """Create or update customers from CSV; each bad row is reported, good rows are kept."""
    if request.mimetype not in CSV_TYPES:
        return _unsupported_media_type()
    try:
        text = request.get_data().decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The CSV is not UTF-8 text.")
    text = text.removeprefix("\ufeff")  # Excel writes a BOM
    if not text.strip():
        raise InvalidInput({"_schema": ["the CSV is empty"]})
    reach = scopes.current()
    return rpc.call(CUSTOMER, "import_csv", text, actor(),
                    reach.owner_ids if reach is not None else None, timeout=BULK_TIMEOUT)


def _unsupported_media_type():
    return error_response(415, "Send the customers as text/csv.")


EXPORT_COLUMNS = ("id", "kind", "name", "mobile", "email", "wechat_id", "gender", "birthday",
                  "id_number", "occupation", "industry", "employer", "education", "income_band",
                  "hometown", "city", "district", "source", "owner_id", "stage", "value_tier",
                  "member_tier", "member_points", "tags", "consent_sms", "consent_email",
                  "consent_wechat", "consent_phone", "consent_in_app", "created_at", "updated_at")
# a cell starting like a formula would run in Excel: keep it text
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_row(customer):
    member = customer.get("member") or {}
    consent = customer.get("consent") or {}
    row = dict(customer, member_tier=member.get("tier"), member_points=member.get("points"),
               tags=";".join(customer.get("tags") or []),
               **{f"consent_{channel}": consent.get(channel)
                  for channel in ("sms", "email", "wechat", "phone", "in_app")})
    return [_csv_cell(row.get(column)) for column in EXPORT_COLUMNS]


@blp.route("/customers/export", methods=["GET"])
@blp.arguments(ExportQuerySchema, location="query")
@blp.response(200, {"type": "string"}, content_type="text/csv",
              description="UTF-8 CSV with a BOM (opens in Excel), masked by role")
@error_responses(blp, *AUTH_ERRORS, *RPC_ERRORS)
def export_customers(query):
    """All customers matching the filters as CSV."""
    filters = scopes.customer_filters(given_filters(query, FILTERS))
    customers = rpc.call(CUSTOMER, "export_customers", filters, timeout=BULK_TIMEOUT)
    masked = CustomerSchema(many=True).dump(customers)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(_csv_row(customer) for customer in masked)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    return Response(out.getvalue(), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="customers-{stamp}.csv"'})


# ---------------------------------------------------------------- stagnation alerts, limits

@blp.route("/customer-alerts", methods=["GET"])
@blp.arguments(AlertQuerySchema, location="query")
@blp.response(200, AlertPageSchema)
@error_responses(blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_alerts(query):
    """Customers stuck in a stage past its limit.

    A customer manager sees their own; a sales supervisor their own and their team's (staff
    whose supervisor they are); executives and admins everyone's.
    """
    filters = {"status": query["status"]} if query.get("status") else {}
    owner_id = query.get("owner_id")
    reach = scopes.current()
    if reach is None:
        if owner_id:
            filters["owner_id"] = owner_id
    else:
        if owner_id:
            if owner_id not in reach.staff_ids:
                raise Forbidden("You may only see alerts of yourself and your team.")
            filters["owner_id"] = owner_id
        else:
            filters["owner_ids"] = sorted(reach.staff_ids)
    return rpc.call(CUSTOMER, "list_alerts", filters, query["page"], query["per_page"])


@blp.route("/customer-alerts/<alert_id>/ack", methods=["POST"])
@blp.response(200, AlertSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def acknowledge_alert(alert_id):
    """Acknowledge an open alert (409 when it is no longer open); an alert of a customer the
    caller does not reach is answered as one that does not exist."""
    reach = scopes.current()
    owner_ids = sorted(reach.staff_ids) if reach is not None else None
    return rpc.call(CUSTOMER, "acknowledge_alert", alert_id, actor(), owner_ids)


@blp.route("/customer-settings/stage-limits", methods=["GET"])
@blp.response(200, StageLimitsSchema)
@error_responses(blp, *AUTH_ERRORS, *RPC_ERRORS)
def get_stage_limits():
    """Days a customer may stay in each stage before its owner and supervisor are alerted."""
    return rpc.call(CUSTOMER, "get_stage_limits")


@blp.route("/customer-settings/stage-limits", methods=["PUT"])
@blp.arguments(StageLimitsSchema)
@blp.response(200, StageLimitsSchema)
@error_responses(blp, *AUTH_ERRORS, *RPC_ERRORS)
def set_stage_limits(limits):
    """Set stage limits (a stage left out keeps its limit; ``null`` removes it)."""
    if not limits:
        raise InvalidInput({"_schema": ["give at least one stage"]})
    return rpc.call(CUSTOMER, "set_stage_limits", limits, actor())
