"""Leasing (the sales service): units, opportunities and viewings, leases, bills and payments,
tasks — four blueprints (one per resource group in the OpenAPI document), thin calls.

Each view checks the request's JSON types (marshmallow; the service checks the values and names
every bad field in one 422), checks that a staff id it is given names an active staff member,
adds who is asking (``actor``), calls one RPC (docs/rpc-contracts.md, section "sales") and
dumps the answer through a schema. The service's NotFound/Conflict/InvalidInput become
404/409/422 with their details (crm_gateway.errors). Money stays a decimal string end to end.

Who may call what is in ``permissions.ROUTES``; the one finer rule here: a technician may
PATCH a unit's ``status`` only (to put it under maintenance and back). Which records a caller
reaches (a customer manager's own customers, opportunities and tasks, a supervisor's team) is
``crm_gateway.scopes``: detail routes answer 404 beyond it, lists are filtered to it.
"""
from flask_smorest import Blueprint

from crm_gateway import rpc, scopes
from crm_gateway.auth import current_caller
from crm_gateway.blueprints import (AUTH_ERRORS, RPC_ERRORS, actor, error_responses,
                                     given_filters, require_active_staff)
from crm_gateway.errors import Forbidden
from crm_gateway.permissions import CUSTOMER_MANAGER, SALES_WRITERS
from crm_gateway.schemas.leasing import (
    AssignInSchema, BillPageSchema, BillQuerySchema, BillSchema, ChargeInSchema,
    DepositRefundInSchema, DepositRefundSchema, ForecastQuerySchema, ForecastSchema,
    IdempotencyHeaderSchema, LeaseBillQuerySchema, LeaseCreateSchema, LeasePageSchema,
    LeaseQuerySchema, LeaseSchema, OpportunityCreateSchema, OpportunityPageSchema,
    OpportunityQuerySchema, OpportunitySchema, OpportunityStageInSchema,
    OpportunityStageLimitsSchema, PaymentInSchema, PaymentResultSchema, PlanStepDoneInSchema,
    PlanStepInSchema, RenewalInSchema, TaskCreateSchema, TaskDoneInSchema, TaskPageSchema,
    TaskQuerySchema, TaskSchema, TerminationInSchema, UnitChangesSchema, UnitCreateSchema,
    UnitPageSchema, UnitQuerySchema, UnitSchema, ViewingCreateSchema, ViewingOutcomeInSchema,
    ViewingPageSchema, ViewingQuerySchema, ViewingSchema,
)

SALES = "sales"
API = "/api/v1"

units_blp = Blueprint("units", __name__, url_prefix=API,
                      description="Units (房源), the sales service: the catalogue and its "
                                  "availability")
opportunities_blp = Blueprint("opportunities", __name__, url_prefix=API,
                              description="Opportunities (销售机会) and viewings (带看), the sales "
                                          "service: the pipeline, development plans, the "
                                          "forecast, stagnation limits")
leases_blp = Blueprint("leases", __name__, url_prefix=API,
                       description="Leases (租约), bills and payments, the sales service: "
                                   "signing with the bill schedule, renewal, termination, extra "
                                   "charges, payments, the deposit refund")
tasks_blp = Blueprint("tasks", __name__, url_prefix=API,
                      description="Tasks (工作日历), the sales service: staff to-dos, "
                                  "reminders, collection (催缴) and urging (催办)")

BLUEPRINTS = (units_blp, opportunities_blp, leases_blp, tasks_blp)


def _page(method, query, names):
    return rpc.call(SALES, method, given_filters(query, names), query["page"], query["per_page"])


# ================================================================ units

@units_blp.route("/units", methods=["POST"])
@units_blp.arguments(UnitCreateSchema)
@units_blp.response(201, UnitSchema)
@error_responses(units_blp, *AUTH_ERRORS, 409, *RPC_ERRORS)
def create_unit(data):
    """Add a unit to the catalogue (``vacant``, or ``maintenance``). A taken ``code`` → 409."""
    return rpc.call(SALES, "create_unit", data, actor())


@units_blp.route("/units", methods=["GET"])
@units_blp.arguments(UnitQuerySchema, location="query")
@units_blp.response(200, UnitPageSchema)
@error_responses(units_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_units(query):
    """Find units by status (e.g. ``vacant``), district, layout, rent at most, code or
    building; ordered by code."""
    return _page("list_units", query, ("status", "district", "layout", "max_rent", "q"))


@units_blp.route("/units/<unit_id>", methods=["GET"])
@units_blp.response(200, UnitSchema)
@error_responses(units_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_unit(unit_id):
    """One unit."""
    return rpc.call(SALES, "get_unit", unit_id)


@units_blp.route("/units/<unit_id>", methods=["PATCH"])
@units_blp.arguments(UnitChangesSchema)
@units_blp.response(200, UnitSchema)
@error_responses(units_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def update_unit(changes, unit_id):
    """Change a unit's facts. ``status`` goes ``vacant`` ↔ ``maintenance`` only (409
    otherwise: reserved and leased follow leases). A technician may change the status only."""
    if not current_caller().has_role(*SALES_WRITERS):
        others = sorted(set(changes) - {"status"})
        if others:
            raise Forbidden("A technician may only change a unit's status "
                            "(vacant ↔ maintenance).", {"fields": others})
    return rpc.call(SALES, "update_unit", unit_id, changes, actor())


# ================================================================ opportunities

@opportunities_blp.route("/opportunities", methods=["POST"])
@opportunities_blp.arguments(OpportunityCreateSchema)
@opportunities_blp.response(201, OpportunitySchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, *RPC_ERRORS)
def create_opportunity(data):
    """Open an opportunity (stage ``new``) for an existing customer (else 422 on
    ``customer_id``). A customer manager who names no owner becomes the owner; otherwise the
    owner defaults to the customer's."""
    caller = current_caller()
    if not data.get("owner_id") and caller.has_role(CUSTOMER_MANAGER):
        data["owner_id"] = caller.id
    if data.get("owner_id") is not None:
        scopes.check_owner("owner_id", data["owner_id"])
    require_active_staff("owner_id", data.get("owner_id"))
    with scopes.references(data, customer_id="customer") as body:
        return rpc.call(SALES, "create_opportunity", body, actor())


@opportunities_blp.route("/opportunities", methods=["GET"])
@opportunities_blp.arguments(OpportunityQuerySchema, location="query")
@opportunities_blp.response(200, OpportunityPageSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_opportunities(query):
    """Opportunities by customer, stage, owner, kind (``new``/``renewal``) and ``stagnant``
    (past their stage's limit); the newest first."""
    filters = given_filters(query, ("customer_id", "stage", "owner_id", "kind", "stagnant"))
    return rpc.call(SALES, "list_opportunities", scopes.by_owner_or_customer(filters),
                    query["page"], query["per_page"])


@opportunities_blp.route("/opportunities/forecast", methods=["GET"])
@opportunities_blp.arguments(ForecastQuerySchema, location="query")
@opportunities_blp.response(200, ForecastSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, *RPC_ERRORS)
def forecast(query):
    """The sales forecast: Σ expected value × stage probability of the open opportunities, in
    total, by owner and by expected month."""
    return rpc.call(SALES, "forecast", scopes.by_owner(given_filters(query, ("owner_id", "kind"))))


@opportunities_blp.route("/opportunities/<opportunity_id>", methods=["GET"])
@opportunities_blp.response(200, OpportunitySchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_opportunity(opportunity_id):
    """One opportunity with its plan steps and its ``history`` (every stage change and
    assignment: who, when, why)."""
    return scopes.fetch("opportunity", opportunity_id)


@opportunities_blp.route("/opportunities/<opportunity_id>/stage", methods=["POST"])
@opportunities_blp.arguments(OpportunityStageInSchema)
@opportunities_blp.response(200, OpportunitySchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def change_opportunity_stage(data, opportunity_id):
    """Move an open opportunity to another stage with a ``reason``; ``lost`` needs a
    ``loss_reason``. ``won`` and ``lost`` are final (409)."""
    scopes.require("opportunity", opportunity_id)
    return rpc.call(SALES, "change_opportunity_stage", opportunity_id, data, actor())


@opportunities_blp.route("/opportunities/<opportunity_id>/assign", methods=["POST"])
@opportunities_blp.arguments(AssignInSchema)
@opportunities_blp.response(200, OpportunitySchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def assign_opportunity(data, opportunity_id):
    """Give the opportunity to another owner (an active staff member); its open tasks follow."""
    scopes.require("opportunity", opportunity_id)
    owner_id = data.get("owner_id")
    if isinstance(owner_id, str) and owner_id:
        require_active_staff("owner_id", owner_id)
    return rpc.call(SALES, "assign_opportunity", opportunity_id, owner_id, actor())


@opportunities_blp.route("/opportunities/<opportunity_id>/plan-steps", methods=["POST"])
@opportunities_blp.arguments(PlanStepInSchema)
@opportunities_blp.response(200, OpportunitySchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def add_plan_step(data, opportunity_id):
    """Add a step to the opportunity's development plan; answers the opportunity with its
    ``plan_steps`` (the new one last). 409 when the opportunity is won or lost."""
    scopes.require("opportunity", opportunity_id)
    return rpc.call(SALES, "add_plan_step", opportunity_id, data, actor())


@opportunities_blp.route("/opportunities/<opportunity_id>/plan-steps/<step_id>/done",
                         methods=["POST"])
@opportunities_blp.arguments(PlanStepDoneInSchema)
@opportunities_blp.response(200, OpportunitySchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def complete_plan_step(data, opportunity_id, step_id):
    """Record a plan step as carried out, with its ``result`` (409 if done already)."""
    scopes.require("opportunity", opportunity_id)
    return rpc.call(SALES, "complete_plan_step", opportunity_id, step_id, data.get("result"),
                    actor())


@opportunities_blp.route("/opportunity-settings/stage-limits", methods=["GET"])
@opportunities_blp.response(200, OpportunityStageLimitsSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, *RPC_ERRORS)
def get_opportunity_stage_limits():
    """Days an opportunity may stay in each open stage before it is flagged stagnant."""
    return rpc.call(SALES, "get_opportunity_stage_limits")


@opportunities_blp.route("/opportunity-settings/stage-limits", methods=["PUT"])
@opportunities_blp.arguments(OpportunityStageLimitsSchema)
@opportunities_blp.response(200, OpportunityStageLimitsSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, *RPC_ERRORS)
def set_opportunity_stage_limits(limits):
    """Set stage limits (a stage left out keeps its limit; ``0`` or ``null`` removes it);
    answers the limits in force."""
    return rpc.call(SALES, "set_opportunity_stage_limits", limits, actor())


# ---------------------------------------------------------------- viewings

@opportunities_blp.route("/viewings", methods=["POST"])
@opportunities_blp.arguments(ViewingCreateSchema)
@opportunities_blp.response(201, ViewingSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 409, *RPC_ERRORS)
def book_viewing(data):
    """Book a viewing of a unit for an open opportunity (which moves to ``viewing_booked``).
    The staff member (default: the caller) or the unit already booked at an overlapping time
    → 409 naming the clashing viewing."""
    require_active_staff("staff_id", data.get("staff_id"))
    with scopes.references(data, opportunity_id="opportunity") as body:
        return rpc.call(SALES, "book_viewing", body, actor())


@opportunities_blp.route("/viewings", methods=["GET"])
@opportunities_blp.arguments(ViewingQuerySchema, location="query")
@opportunities_blp.response(200, ViewingPageSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_viewings(query):
    """Viewings by opportunity, staff member, unit, customer, status and time
    (``from``/``to``), in time order: a staff member's or a unit's calendar."""
    filters = given_filters(query, ("opportunity_id", "staff_id", "unit_id", "customer_id",
                                    "status", "from", "to"))
    return rpc.call(SALES, "list_viewings", scopes.by_owner_or_customer(filters),
                    query["page"], query["per_page"])


@opportunities_blp.route("/viewings/<viewing_id>", methods=["PATCH"])
@opportunities_blp.arguments(ViewingOutcomeInSchema)
@opportunities_blp.response(200, ViewingSchema)
@error_responses(opportunities_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def record_viewing_outcome(data, viewing_id):
    """Record how a scheduled viewing went (``result`` and ``outcome`` text): it is completed
    and the opportunity moves to ``viewed`` (not for a ``no_show``). 409 if not scheduled."""
    scopes.require("viewing", viewing_id)
    return rpc.call(SALES, "record_viewing_outcome", viewing_id, data, actor())


# ================================================================ leases

@leases_blp.route("/leases", methods=["POST"])
@leases_blp.arguments(LeaseCreateSchema)
@leases_blp.response(201, LeaseSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 409, *RPC_ERRORS)
def sign_lease(data):
    """Sign a lease: answers it with its bill schedule (the deposit, then rent per payment
    cycle; the rent bills sum exactly to ``term_rent``). The unit under maintenance or leased
    for part of the term → 409; an unknown customer → 422 on ``customer_id``, nothing written.
    ``start_date`` may lie in the past (leases entered after the fact)."""
    require_active_staff("owner_id", data.get("owner_id"))
    with scopes.references(data, customer_id="customer", opportunity_id="opportunity") as body:
        return rpc.call(SALES, "sign_lease", body, actor())


@leases_blp.route("/leases", methods=["GET"])
@leases_blp.arguments(LeaseQuerySchema, location="query")
@leases_blp.response(200, LeasePageSchema)
@error_responses(leases_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_leases(query):
    """Leases by customer, status, unit, owner; the latest start first (without bills)."""
    filters = given_filters(query, ("customer_id", "status", "unit_id", "owner_id"))
    return rpc.call(SALES, "list_leases", scopes.by_customer(filters), query["page"],
                    query["per_page"])


@leases_blp.route("/leases/<lease_id>", methods=["GET"])
@leases_blp.response(200, LeaseSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_lease(lease_id):
    """One lease with its bills and its ``deposit_refund`` (null until settled)."""
    return scopes.fetch("lease", lease_id)


@leases_blp.route("/leases/<lease_id>/renew", methods=["POST"])
@leases_blp.arguments(RenewalInSchema)
@leases_blp.response(201, LeaseSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def renew_lease(data, lease_id):
    """Renew an active lease: a new lease from the day after its end to ``end_date`` at the new
    rent (answered, 201, with its bill schedule; the deposit carries over); the old one
    becomes ``renewed``."""
    scopes.require("lease", lease_id)
    return rpc.call(SALES, "renew_lease", lease_id, data, actor())


@leases_blp.route("/leases/<lease_id>/terminate", methods=["POST"])
@leases_blp.arguments(TerminationInSchema)
@leases_blp.response(200, LeaseSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def terminate_lease(data, lease_id):
    """End an active lease early on ``date`` (inside the term): later unpaid rent is voided,
    the rent of the period containing the date is cut to it, the unit is freed."""
    scopes.require("lease", lease_id)
    return rpc.call(SALES, "terminate_lease", lease_id, data, actor())


@leases_blp.route("/leases/<lease_id>/bills", methods=["GET"])
@leases_blp.arguments(LeaseBillQuerySchema, location="query")
@leases_blp.response(200, BillPageSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def list_lease_bills(query, lease_id):
    """The lease's bills (deposit, rent, extra charges, late fees) by due date."""
    scopes.require("lease", lease_id)
    page = rpc.call(SALES, "list_bills", {"lease_id": lease_id,
                                          **given_filters(query, ("status", "kind"))},
                    query["page"], query["per_page"])
    if not page.get("total"):
        rpc.call(SALES, "get_lease", lease_id)  # no bills: is there such a lease? (else 404)
    return page


@leases_blp.route("/leases/<lease_id>/charges", methods=["POST"])
@leases_blp.arguments(ChargeInSchema)
@leases_blp.response(201, BillSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def add_charge(data, lease_id):
    """An extra line item on the lease (utilities, a service fee, other), as its own bill."""
    scopes.require("lease", lease_id)
    return rpc.call(SALES, "add_charge", lease_id, data, actor())


@leases_blp.route("/leases/<lease_id>/deposit-refund", methods=["POST"])
@leases_blp.arguments(DepositRefundInSchema)
@leases_blp.response(201, DepositRefundSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def refund_deposit(data, lease_id):
    """Settle the deposit at move-out (an ended or terminated lease, once; 409 otherwise): the
    deposit paid − the given deductions − what is still owed on the lease (those bills are
    settled from the deposit); more deductions than the deposit → 422."""
    scopes.require("lease", lease_id)
    return rpc.call(SALES, "refund_deposit", lease_id, data, actor())


# ---------------------------------------------------------------- bills and payments

@leases_blp.route("/bills", methods=["GET"])
@leases_blp.arguments(BillQuerySchema, location="query")
@leases_blp.response(200, BillPageSchema)
@error_responses(leases_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_bills(query):
    """Bills by status (``overdue``: unpaid or partly paid past the due date, at once),
    customer, lease, owner, kind; by due date."""
    filters = given_filters(query, ("status", "customer_id", "lease_id", "owner_id", "kind"))
    return rpc.call(SALES, "list_bills", scopes.by_customer(filters), query["page"],
                    query["per_page"])


@leases_blp.route("/bills/<bill_id>", methods=["GET"])
@leases_blp.response(200, BillSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_bill(bill_id):
    """One bill with its ``payments``."""
    return scopes.fetch("bill", bill_id)


@leases_blp.route("/payments", methods=["POST"])
@leases_blp.arguments(PaymentInSchema)
@leases_blp.arguments(IdempotencyHeaderSchema, location="headers")
@leases_blp.response(201, PaymentResultSchema)
@error_responses(leases_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def record_payment(data, headers):
    """Pay a bill in part or in full: answers the payment and the bill's new ``balance`` and
    ``status``. More than the balance → 422 on ``amount``.

    With an ``Idempotency-Key`` header a retry (same key, bill and amount) pays nothing more
    and answers the first payment, again with 201 (a client need not tell a first answer from
    a replayed one); the same key with another bill or amount → 409.
    """
    with scopes.references(data, bill_id="bill") as body:
        return rpc.call(SALES, "record_payment", body, headers.get("idempotency_key"), actor())


# ================================================================ tasks

@tasks_blp.route("/tasks", methods=["POST"])
@tasks_blp.arguments(TaskCreateSchema)
@tasks_blp.response(201, TaskSchema)
@error_responses(tasks_blp, *AUTH_ERRORS, *RPC_ERRORS)
def create_task(data):
    """A task (to-do, reminder, appointment) for a staff member; without ``owner_id`` it is
    the caller's own."""
    if not data.get("owner_id"):
        data["owner_id"] = current_caller().id
    require_active_staff("owner_id", data["owner_id"])
    with scopes.references(data, customer_id="customer", opportunity_id="opportunity") as body:
        return rpc.call(SALES, "create_task", body, actor())


@tasks_blp.route("/tasks", methods=["GET"])
@tasks_blp.arguments(TaskQuerySchema, location="query")
@tasks_blp.response(200, TaskPageSchema)
@error_responses(tasks_blp, *AUTH_ERRORS, *RPC_ERRORS)
def list_tasks(query):
    """Tasks by owner, status (``open``/``done``), ``overdue``, ``urged``, kind, customer,
    opportunity, lease, bill (e.g. a bill's collection task); the earliest due first."""
    filters = given_filters(query, ("owner_id", "status", "overdue", "urged", "kind",
                                    "customer_id", "opportunity_id", "lease_id", "bill_id"))
    return rpc.call(SALES, "list_tasks", scopes.by_owner(filters), query["page"],
                    query["per_page"])


@tasks_blp.route("/tasks/<task_id>/done", methods=["POST"])
@tasks_blp.arguments(TaskDoneInSchema)
@tasks_blp.response(200, TaskSchema)
@error_responses(tasks_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def complete_task(data, task_id):
    """Mark a task done, with an optional ``result``; it stays as history (409 if done
    already)."""
    scopes.require("task", task_id)
    return rpc.call(SALES, "complete_task", task_id, data.get("result"), actor())


@tasks_blp.route("/tasks/<task_id>/urge", methods=["POST"])
@tasks_blp.response(200, TaskSchema)
@error_responses(tasks_blp, *AUTH_ERRORS, 404, 409, *RPC_ERRORS)
def urge_task(task_id):
    """催办: urge the owner of an open task past its due time (``urge_count`` + 1, the owner is
    notified); 409 when the task is done or not yet due."""
    scopes.require("task", task_id)
    return rpc.call(SALES, "urge_task", task_id, actor())
