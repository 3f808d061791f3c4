"""Leasing payloads (the sales service): units, opportunities, viewings, leases, bills,
payments, tasks.

Input: as for customers (see ``schemas/customers.py``), the sales service is the one authority
on values (its ``schemas.py``): the gateway's input schemas describe the fields for the OpenAPI
document, check only their JSON types, and pass the body on (``unknown = INCLUDE``), so one 422
from the service names every bad field at once (missing, out of range, unknown).

Money is a decimal string in CNY with two places (``"3500.00"``) in and out: ``Money`` is a
``fields.String``, so the gateway never turns an amount into a float; a JSON number is refused.
Dates (``YYYY-MM-DD``) and instants (ISO 8601 with offset) are strings checked by the service.

Query strings: enumerations are checked here (a query value the service would silently match
nothing with is a 422 naming the parameter); amounts (``max_rent``) by the service.
"""
import marshmallow as ma
from marshmallow import fields, validate

from crm_gateway.schemas.common import (Body, DictSchema, Id, PageQuery, Value, date_field,
                                         instant_field, int_field, one_of_text, page_of,
                                         text_field)

UNIT_STATUSES = ("vacant", "reserved", "leased", "maintenance")
OPPORTUNITY_STAGES = ("new", "contacted", "viewing_booked", "viewed", "negotiating", "won", "lost")
OPPORTUNITY_KINDS = ("new", "renewal")
LOSS_REASONS = ("price", "location", "layout", "competitor", "timing", "no_response",
                "not_qualified", "other")
OPPORTUNITY_SOURCES = ("walk_in", "referral", "website", "wechat", "weibo", "agent", "campaign",
                       "renewal", "phone", "other")
VIEWING_STATUSES = ("scheduled", "completed", "cancelled")
VIEWING_RESULTS = ("interested", "not_interested", "no_show", "needs_second_viewing")
LEASE_STATUSES = ("active", "ended", "terminated", "renewed")
PAYMENT_CYCLES = ("monthly", "quarterly", "half_yearly", "yearly")
BILL_STATUSES = ("unpaid", "partially_paid", "paid", "overdue")
BILL_KINDS = ("rent", "deposit", "utilities", "service_fee", "late_fee", "other")
EXTRA_BILL_KINDS = ("utilities", "service_fee", "other")
PAYMENT_METHODS = ("cash", "bank_transfer", "wechat_pay", "alipay", "card", "other")
TASK_STATUSES = ("open", "done")
TASK_KINDS = ("task", "reminder", "appointment", "collection", "renewal", "stagnation")


class Money(fields.String):
    """An amount in CNY as a decimal string with at most two places, e.g. ``"3500.00"``."""

    default_error_messages = {
        "invalid": 'must be an amount as a decimal string, like "3500.00" (never a number)'}

    def __init__(self, description=None, **kwargs):
        metadata = {"example": "3500.00", "pattern": r"^\d+(\.\d{1,2})?$"}
        if description:
            metadata["description"] = description
        super().__init__(metadata=metadata, **kwargs)


# ---------------------------------------------------------------- input: units

class UnitChangesSchema(Body):
    """The facts of a unit; all optional here (PATCH). ``status``: staff may switch
    ``vacant`` ↔ ``maintenance`` only (409 otherwise); reserved/leased follow leases."""

    code = text_field("required on create; 1-32 characters without spaces; unique")
    building = text_field("required on create; up to 100 characters")
    district = text_field("required on create; up to 64 characters")
    layout = text_field("required on create; e.g. 1室1厅; up to 32 characters")
    area_sqm = Money("required on create; square metres as a decimal string, e.g. \"45.50\"",
                     allow_none=True)
    floor = int_field("required on create; -5 to 200")
    monthly_rent = Money("required on create; more than 0.00", allow_none=True)
    amenities = fields.List(fields.String(), allow_none=True,
                            metadata={"description": "up to 50, 1-64 characters each"})
    status = text_field("vacant (default) or maintenance")


class UnitCreateSchema(UnitChangesSchema):
    """A new unit: every field but ``amenities`` and ``status`` is required (by the service)."""


class UnitQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(UNIT_STATUSES))
    district = fields.String()
    layout = fields.String()
    max_rent = Money("monthly rent at most")
    q = fields.String(metadata={"description": "part of the code or the building's name"})


# ---------------------------------------------------------------- input: opportunities

class OpportunityCreateSchema(Body):
    customer_id = text_field("required; an existing customer (422 otherwise)")
    source = text_field("required; " + one_of_text(OPPORTUNITY_SOURCES))
    campaign_id = text_field()
    budget = Money("monthly budget; more than 0.00", allow_none=True)
    district = text_field("up to 64 characters")
    layout = text_field("up to 32 characters")
    move_in_date = date_field()
    expected_value = Money("the lease's value hoped for; default 12 × budget", allow_none=True)
    expected_close = date_field()
    owner_id = text_field("an active staff member; default: the caller when a customer manager, "
                     "else the customer's owner")


class OpportunityQuerySchema(PageQuery):
    customer_id = fields.String()
    stage = fields.String(validate=validate.OneOf(OPPORTUNITY_STAGES))
    owner_id = fields.String()
    kind = fields.String(validate=validate.OneOf(OPPORTUNITY_KINDS))
    stagnant = fields.Boolean(metadata={"description": "past its stage's time limit"})


class OpportunityStageInSchema(Body):
    stage = text_field("required; " + one_of_text(OPPORTUNITY_STAGES) + "; won and lost are final")
    reason = text_field("required unless the stage is lost")
    loss_reason = text_field("required for lost; " + one_of_text(LOSS_REASONS))
    loss_note = text_field("for lost; up to 2000 characters")


class AssignInSchema(Value):
    owner_id = text_field("required; an active staff member")


class PlanStepInSchema(Body):
    title = text_field("required; up to 200 characters")
    due_date = date_field("required")


class PlanStepDoneInSchema(Value):
    result = text_field("required; what the step achieved, up to 2000 characters")


class ForecastQuerySchema(ma.Schema):
    owner_id = fields.String()
    kind = fields.String(validate=validate.OneOf(OPPORTUNITY_KINDS))


class OpportunityStageLimitsSchema(Body):
    """Days an opportunity may stay in each open stage before it is flagged stagnant (its owner
    gets a task); ``0`` or ``null``: no limit. A stage left out keeps its limit."""

    new = int_field("0-3650")
    contacted = int_field("0-3650")
    viewing_booked = int_field("0-3650")
    viewed = int_field("0-3650")
    negotiating = int_field("0-3650")


# ---------------------------------------------------------------- input: viewings

class ViewingCreateSchema(Body):
    opportunity_id = text_field("required; an open opportunity")
    unit_id = text_field("required; a unit not under maintenance")
    scheduled_at = instant_field("required; from 30 days ago to a year ahead")
    staff_id = text_field("an active staff member; default: the caller")
    duration_minutes = int_field("15-240, default 60")


class ViewingOutcomeInSchema(Body):
    result = text_field("required; " + one_of_text(VIEWING_RESULTS))
    outcome = text_field("what happened, up to 4000 characters")


class ViewingQuerySchema(PageQuery):
    class Meta:
        include = {"from": fields.String(metadata={"format": "date-time",
                                                   "description": "scheduled at or after"}),
                   "to": fields.String(metadata={"format": "date-time",
                                                 "description": "scheduled before"})}

    opportunity_id = fields.String()
    staff_id = fields.String()
    unit_id = fields.String()
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf(VIEWING_STATUSES))


# ---------------------------------------------------------------- input: leases, bills, payments

class LeaseCreateSchema(Body):
    customer_id = text_field("required; an existing customer (422 otherwise)")
    unit_id = text_field("required; free for the whole term (409 otherwise)")
    start_date = date_field("required; may lie in the past (a lease entered after the fact)")
    end_date = date_field("required; the last day of occupancy; at most ten years after the start")
    monthly_rent = Money("required; more than 0.00", allow_none=True)
    deposit = Money("required; 0.00 for none", allow_none=True)
    payment_cycle = text_field("required; " + one_of_text(PAYMENT_CYCLES))
    opportunity_id = text_field("the customer's open opportunity this lease wins")
    owner_id = text_field("an active staff member; default: the opportunity's or the customer's "
                     "owner, else the caller")


class LeaseQuerySchema(PageQuery):
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf(LEASE_STATUSES))
    unit_id = fields.String()
    owner_id = fields.String()


class RenewalInSchema(Body):
    end_date = date_field("required; the new lease runs from the day after the old end to this day")
    monthly_rent = Money("required; more than 0.00", allow_none=True)
    payment_cycle = text_field("default: the old lease's; " + one_of_text(PAYMENT_CYCLES))


class TerminationInSchema(Body):
    date = date_field("required; the move-out day, inside the term")
    reason = text_field("required; up to 1000 characters")


class ChargeInSchema(Body):
    kind = text_field("required; " + one_of_text(EXTRA_BILL_KINDS))
    amount = Money("required; more than 0.00", allow_none=True)
    due_date = date_field("required")
    description = text_field("required; up to 200 characters")


class DeductionInSchema(Body):
    reason = text_field("required; up to 200 characters")
    amount = Money("required; more than 0.00", allow_none=True)


class DepositRefundInSchema(Body):
    deductions = fields.List(fields.Nested(DeductionInSchema), allow_none=True,
                             metadata={"description": "damage, cleaning …; up to 50. Unpaid "
                                                      "bills are deducted too, by the service"})


class BillQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(BILL_STATUSES), metadata={
        "description": "overdue: unpaid or partly paid past its due date (then not listed "
                       "under unpaid or partially_paid)"})
    customer_id = fields.String()
    lease_id = fields.String()
    owner_id = fields.String()
    kind = fields.String(validate=validate.OneOf(BILL_KINDS))


class LeaseBillQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(BILL_STATUSES))
    kind = fields.String(validate=validate.OneOf(BILL_KINDS))


class PaymentInSchema(Body):
    bill_id = text_field("required")
    amount = Money("required; more than 0.00 and at most the bill's balance (422 otherwise)",
                   allow_none=True)
    paid_at = instant_field("required; not in the future")
    method = text_field("required; " + one_of_text(PAYMENT_METHODS))


class IdempotencyHeaderSchema(ma.Schema):
    idempotency_key = fields.String(data_key="Idempotency-Key", metadata={
        "description": "1-100 characters, e.g. a UUID made by the client: a retry with the same "
                       "key and body pays once and answers the same payment; the same key with "
                       "another bill or amount is a 409"})


# ---------------------------------------------------------------- input: tasks

class TaskCreateSchema(Body):
    owner_id = text_field("an active staff member; default: the caller")
    title = text_field("required; up to 200 characters")
    due_at = instant_field("required")
    remind_at = instant_field("not after due_at")
    customer_id = text_field()
    opportunity_id = text_field("an existing opportunity; the task takes its customer")
    kind = text_field("default task; " + one_of_text(TASK_KINDS))


class TaskQuerySchema(PageQuery):
    owner_id = fields.String()
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    overdue = fields.Boolean(metadata={"description": "open and past its due time"})
    urged = fields.Boolean(metadata={"description": "urged at least once"})
    kind = fields.String(validate=validate.OneOf(TASK_KINDS))
    customer_id = fields.String()
    opportunity_id = fields.String()
    lease_id = fields.String()
    bill_id = fields.String()


class TaskDoneInSchema(Value):
    result = text_field("what was done, up to 2000 characters")


# ---------------------------------------------------------------- output

class UnitSchema(DictSchema):
    id = Id(required=True)
    code = fields.String()
    building = fields.String()
    district = fields.String()
    layout = fields.String()
    area_sqm = Money("square metres")
    floor = fields.Integer()
    monthly_rent = Money()
    amenities = fields.List(fields.String())
    status = fields.String(metadata={"enum": list(UNIT_STATUSES)})
    created_at = instant_field()
    updated_at = instant_field()


UnitPageSchema = page_of(UnitSchema, "UnitPage")


class PlanStepSchema(DictSchema):
    id = Id()
    title = fields.String()
    due_date = date_field()
    done = fields.Boolean()
    done_at = instant_field()
    done_by = fields.String(allow_none=True)
    result = fields.String(allow_none=True)


class OpportunityHistorySchema(DictSchema):
    from_stage = fields.String(allow_none=True)
    to_stage = fields.String()
    trigger = fields.String(metadata={"description": "created, manual, viewing_booked, "
                                                     "viewing_completed, lease_signed, "
                                                     "assigned …"})
    actor_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    occurred_at = instant_field()


class OpportunitySchema(DictSchema):
    id = Id(required=True)
    customer_id = fields.String()
    kind = fields.String(metadata={"enum": list(OPPORTUNITY_KINDS)})
    source = fields.String()
    campaign_id = fields.String(allow_none=True)
    budget = Money(allow_none=True)
    district = fields.String(allow_none=True)
    layout = fields.String(allow_none=True)
    move_in_date = date_field()
    expected_value = Money(allow_none=True)
    probability = fields.String(metadata={"description": "of winning, by stage: \"0.40\""})
    expected_close = date_field()
    owner_id = fields.String(allow_none=True)
    stage = fields.String(metadata={"enum": list(OPPORTUNITY_STAGES)})
    stage_entered_at = instant_field()
    loss_reason = fields.String(allow_none=True)
    loss_note = fields.String(allow_none=True)
    lease_id = fields.String(allow_none=True)
    renewal_of_lease_id = fields.String(allow_none=True)
    stagnant = fields.Boolean()
    stagnant_since = instant_field()
    plan_steps = fields.List(fields.Nested(PlanStepSchema))
    history = fields.List(fields.Nested(OpportunityHistorySchema),
                          metadata={"description": "GET /opportunities/{id} only"})
    created_at = instant_field()
    updated_at = instant_field()


OpportunityPageSchema = page_of(OpportunitySchema, "OpportunityPage")


class ForecastOwnerSchema(DictSchema):
    owner_id = fields.String(allow_none=True)
    value = Money()
    count = fields.Integer()


class ForecastMonthSchema(DictSchema):
    month = fields.String(metadata={"example": "2025-03"})
    value = Money()
    count = fields.Integer()


class ForecastSchema(DictSchema):
    """Σ expected value × probability of the open opportunities."""

    total = Money()
    count = fields.Integer()
    by_owner = fields.List(fields.Nested(ForecastOwnerSchema))
    by_month = fields.List(fields.Nested(ForecastMonthSchema))


class ViewingSchema(DictSchema):
    id = Id(required=True)
    opportunity_id = fields.String()
    customer_id = fields.String()
    unit_id = fields.String()
    staff_id = fields.String()
    scheduled_at = instant_field()
    ends_at = instant_field()
    duration_minutes = fields.Integer()
    status = fields.String(metadata={"enum": list(VIEWING_STATUSES)})
    result = fields.String(allow_none=True, metadata={"enum": list(VIEWING_RESULTS)})
    outcome = fields.String(allow_none=True)
    created_at = instant_field()
    completed_at = instant_field()


ViewingPageSchema = page_of(ViewingSchema, "ViewingPage")


class PaymentSchema(DictSchema):
    id = Id()
    bill_id = fields.String()
    amount = Money()
    paid_at = instant_field()
    method = fields.String(metadata={"description": one_of_text(PAYMENT_METHODS) +
                                     ", or deposit (settled from the deposit at move-out)"})
    recorded_by = fields.String(allow_none=True)


class BillSchema(DictSchema):
    id = Id(required=True)
    lease_id = fields.String()
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(BILL_KINDS)})
    description = fields.String(allow_none=True)
    period_start = date_field()
    period_end = date_field()
    due_date = date_field()
    amount = Money()
    paid = Money()
    balance = Money()
    status = fields.String(metadata={"enum": list(BILL_STATUSES)})
    days_overdue = fields.Integer()
    payments = fields.List(fields.Nested(PaymentSchema),
                           metadata={"description": "GET /bills/{id} only"})
    created_at = instant_field()


BillPageSchema = page_of(BillSchema, "BillPage")


class DeductionSchema(DictSchema):
    reason = fields.String()
    amount = Money()


class DepositRefundSchema(DictSchema):
    deposit_paid = Money()
    deducted = Money()
    refunded = Money()
    deductions = fields.List(fields.Nested(DeductionSchema),
                             metadata={"description": "given ones, then unpaid bills"})
    refunded_at = instant_field()


class LeaseSchema(DictSchema):
    id = Id(required=True)
    customer_id = fields.String()
    unit_id = fields.String()
    opportunity_id = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    start_date = date_field()
    end_date = date_field()
    monthly_rent = Money()
    deposit = Money()
    payment_cycle = fields.String(metadata={"enum": list(PAYMENT_CYCLES)})
    status = fields.String(metadata={"enum": list(LEASE_STATUSES)})
    term_rent = Money("the rent of the whole term; the rent bills sum to it exactly")
    renewed_from_id = fields.String(allow_none=True)
    renewed_to_id = fields.String(allow_none=True)
    terminated_on = date_field()
    termination_reason = fields.String(allow_none=True)
    signed_at = instant_field()
    bills = fields.List(fields.Nested(BillSchema), metadata={
        "description": "the deposit and rent schedule (on sign, renew and GET /leases/{id})"})
    deposit_refund = fields.Nested(DepositRefundSchema, allow_none=True,
                                   metadata={"description": "GET /leases/{id} only"})
    created_at = instant_field()
    updated_at = instant_field()


LeasePageSchema = page_of(LeaseSchema, "LeasePage")


class PaymentResultSchema(DictSchema):
    payment_id = Id(required=True)
    bill_id = fields.String()
    amount = Money()
    balance = Money("what is still owed on the bill")
    status = fields.String(metadata={"enum": list(BILL_STATUSES)})


class TaskHistorySchema(DictSchema):
    action = fields.String(metadata={"description": "created, reminded, urged, reassigned, done"})
    actor_id = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    occurred_at = instant_field()


class TaskSchema(DictSchema):
    id = Id(required=True)
    owner_id = fields.String()
    kind = fields.String(metadata={"enum": list(TASK_KINDS)})
    title = fields.String()
    due_at = instant_field()
    remind_at = instant_field()
    reminded_at = instant_field()
    customer_id = fields.String(allow_none=True)
    opportunity_id = fields.String(allow_none=True)
    bill_id = fields.String(allow_none=True)
    lease_id = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(TASK_STATUSES)})
    overdue = fields.Boolean()
    result = fields.String(allow_none=True)
    done_at = instant_field()
    urge_count = fields.Integer()
    urged_at = instant_field()
    urged_by = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    history = fields.List(fields.Nested(TaskHistorySchema))
    created_at = instant_field()


TaskPageSchema = page_of(TaskSchema, "TaskPage")
