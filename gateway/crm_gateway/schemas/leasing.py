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

from crm_gateway.schemas.common import DictSchema, Id, PageQuery, page_of

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


def _one_of(values):
    return "one of: " + ", ".join(values)


class Money(fields.String):
    """An amount in CNY as a decimal string with at most two places, e.g. ``"3500.00"``."""

    default_error_messages = {
        "invalid": 'must be an amount as a decimal string, like "3500.00" (never a number)'}

    def __init__(self, description=None, **kwargs):
        metadata = {"example": "3500.00", "pattern": r"^\d+(\.\d{1,2})?$"}
        if description:
            metadata["description"] = description
        super().__init__(metadata=metadata, **kwargs)


def _text(description=None, **kwargs):
    return fields.String(allow_none=True, metadata={"description": description} if description
                         else {}, **kwargs)


def _date(description=None, **kwargs):
    metadata = {"format": "date"}
    if description:
        metadata["description"] = description
    return fields.String(allow_none=True, metadata=metadata, **kwargs)


def _instant(description=None, **kwargs):
    metadata = {"format": "date-time"}
    if description:
        metadata["description"] = description
    return fields.String(allow_none=True, metadata=metadata, **kwargs)


def _int(description=None, **kwargs):
    return fields.Integer(strict=True, allow_none=True,
                          metadata={"description": description} if description else {},
                          **kwargs)


class _Body(DictSchema):
    """A request body: JSON types here, values and unknown fields by the sales service."""

    class Meta:
        unknown = ma.INCLUDE


class _Value(DictSchema):
    """A body whose one value the RPC takes alone (not the body): unknown fields could not
    reach the service, so they are refused here."""

    class Meta:
        unknown = ma.RAISE


# ---------------------------------------------------------------- input: units

class UnitChangesSchema(_Body):
    """The facts of a unit; all optional here (PATCH). ``status``: staff may switch
    ``vacant`` ↔ ``maintenance`` only (409 otherwise); reserved/leased follow leases."""

    code = _text("required on create; 1-32 characters without spaces; unique")
    building = _text("required on create; up to 100 characters")
    district = _text("required on create; up to 64 characters")
    layout = _text("required on create; e.g. 1室1厅; up to 32 characters")
    area_sqm = Money("required on create; square metres as a decimal string, e.g. \"45.50\"",
                     allow_none=True)
    floor = _int("required on create; -5 to 200")
    monthly_rent = Money("required on create; more than 0.00", allow_none=True)
    amenities = fields.List(fields.String(), allow_none=True,
                            metadata={"description": "up to 50, 1-64 characters each"})
    status = _text("vacant (default) or maintenance")


class UnitCreateSchema(UnitChangesSchema):
    """A new unit: every field but ``amenities`` and ``status`` is required (by the service)."""


class UnitQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(UNIT_STATUSES))
    district = fields.String()
    layout = fields.String()
    max_rent = Money("monthly rent at most")
    q = fields.String(metadata={"description": "part of the code or the building's name"})


# ---------------------------------------------------------------- input: opportunities

class OpportunityCreateSchema(_Body):
    customer_id = _text("required; an existing customer (422 otherwise)")
    source = _text("required; " + _one_of(OPPORTUNITY_SOURCES))
    campaign_id = _text()
    budget = Money("monthly budget; more than 0.00", allow_none=True)
    district = _text("up to 64 characters")
    layout = _text("up to 32 characters")
    move_in_date = _date()
    expected_value = Money("the lease's value hoped for; default 12 × budget", allow_none=True)
    expected_close = _date()
    owner_id = _text("an active staff member; default: the caller when a customer manager, "
                     "else the customer's owner")


class OpportunityQuerySchema(PageQuery):
    customer_id = fields.String()
    stage = fields.String(validate=validate.OneOf(OPPORTUNITY_STAGES))
    owner_id = fields.String()
    kind = fields.String(validate=validate.OneOf(OPPORTUNITY_KINDS))
    stagnant = fields.Boolean(metadata={"description": "past its stage's time limit"})


class OpportunityStageInSchema(_Body):
    stage = _text("required; " + _one_of(OPPORTUNITY_STAGES) + "; won and lost are final")
    reason = _text("required unless the stage is lost")
    loss_reason = _text("required for lost; " + _one_of(LOSS_REASONS))
    loss_note = _text("for lost; up to 2000 characters")


class AssignInSchema(_Value):
    owner_id = _text("required; an active staff member")


class PlanStepInSchema(_Body):
    title = _text("required; up to 200 characters")
    due_date = _date("required")


class PlanStepDoneInSchema(_Value):
    result = _text("required; what the step achieved, up to 2000 characters")


class ForecastQuerySchema(ma.Schema):
    owner_id = fields.String()
    kind = fields.String(validate=validate.OneOf(OPPORTUNITY_KINDS))


class OpportunityStageLimitsSchema(_Body):
    """Days an opportunity may stay in each open stage before it is flagged stagnant (its owner
    gets a task); ``0`` or ``null``: no limit. A stage left out keeps its limit."""

    new = _int("0-3650")
    contacted = _int("0-3650")
    viewing_booked = _int("0-3650")
    viewed = _int("0-3650")
    negotiating = _int("0-3650")


# ---------------------------------------------------------------- input: viewings

class ViewingCreateSchema(_Body):
    opportunity_id = _text("required; an open opportunity")
    unit_id = _text("required; a unit not under maintenance")
    scheduled_at = _instant("required; from 30 days ago to a year ahead")
    staff_id = _text("an active staff member; default: the caller")
    duration_minutes = _int("15-240, default 60")


class ViewingOutcomeInSchema(_Body):
    result = _text("required; " + _one_of(VIEWING_RESULTS))
    outcome = _text("what happened, up to 4000 characters")


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

class LeaseCreateSchema(_Body):
    customer_id = _text("required; an existing customer (422 otherwise)")
    unit_id = _text("required; free for the whole term (409 otherwise)")
    start_date = _date("required; may lie in the past (a lease entered after the fact)")
    end_date = _date("required; the last day of occupancy; at most ten years after the start")
    monthly_rent = Money("required; more than 0.00", allow_none=True)
    deposit = Money("required; 0.00 for none", allow_none=True)
    payment_cycle = _text("required; " + _one_of(PAYMENT_CYCLES))
    opportunity_id = _text("the customer's open opportunity this lease wins")
    owner_id = _text("an active staff member; default: the opportunity's or the customer's "
                     "owner, else the caller")


class LeaseQuerySchema(PageQuery):
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf(LEASE_STATUSES))
    unit_id = fields.String()
    owner_id = fields.String()


class RenewalInSchema(_Body):
    end_date = _date("required; the new lease runs from the day after the old end to this day")
    monthly_rent = Money("required; more than 0.00", allow_none=True)
    payment_cycle = _text("default: the old lease's; " + _one_of(PAYMENT_CYCLES))


class TerminationInSchema(_Body):
    date = _date("required; the move-out day, inside the term")
    reason = _text("required; up to 1000 characters")


class ChargeInSchema(_Body):
    kind = _text("required; " + _one_of(EXTRA_BILL_KINDS))
    amount = Money("required; more than 0.00", allow_none=True)
    due_date = _date("required")
    description = _text("required; up to 200 characters")


class DeductionInSchema(_Body):
    reason = _text("required; up to 200 characters")
    amount = Money("required; more than 0.00", allow_none=True)


class DepositRefundInSchema(_Body):
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


class PaymentInSchema(_Body):
    bill_id = _text("required")
    amount = Money("required; more than 0.00 and at most the bill's balance (422 otherwise)",
                   allow_none=True)
    paid_at = _instant("required; not in the future")
    method = _text("required; " + _one_of(PAYMENT_METHODS))


class IdempotencyHeaderSchema(ma.Schema):
    idempotency_key = fields.String(data_key="Idempotency-Key", metadata={
        "description": "1-100 characters, e.g. a UUID made by the client: a retry with the same "
                       "key and body pays once and answers the same payment; the same key with "
                       "another bill or amount is a 409"})


# ---------------------------------------------------------------- input: tasks

class TaskCreateSchema(_Body):
    owner_id = _text("an active staff member; default: the caller")
    title = _text("required; up to 200 characters")
    due_at = _instant("required")
    remind_at = _instant("not after due_at")
    customer_id = _text()
    opportunity_id = _text("an existing opportunity; the task takes its customer")
    kind = _text("default task; " + _one_of(TASK_KINDS))


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


class TaskDoneInSchema(_Value):
    result = _text("what was done, up to 2000 characters")


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
    created_at = _instant()
    updated_at = _instant()


UnitPageSchema = page_of(UnitSchema, "UnitPage")


class PlanStepSchema(DictSchema):
    id = Id()
    title = fields.String()
    due_date = _date()
    done = fields.Boolean()
    done_at = _instant()
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
    occurred_at = _instant()


class OpportunitySchema(DictSchema):
    id = Id(required=True)
    customer_id = fields.String()
    kind = fields.String(metadata={"enum": list(OPPORTUNITY_KINDS)})
    source = fields.String()
    campaign_id = fields.String(allow_none=True)
    budget = Money(allow_none=True)
    district = fields.String(allow_none=True)
    layout = fields.String(allow_none=True)
    move_in_date = _date()
    expected_value = Money(allow_none=True)
    probability = fields.String(metadata={"description": "of winning, by stage: \"0.40\""})
    expected_close = _date()
    owner_id = fields.String(allow_none=True)
    stage = fields.String(metadata={"enum": list(OPPORTUNITY_STAGES)})
    stage_entered_at = _instant()
    loss_reason = fields.String(allow_none=True)
    loss_note = fields.String(allow_none=True)
    lease_id = fields.String(allow_none=True)
    renewal_of_lease_id = fields.String(allow_none=True)
    stagnant = fields.Boolean()
    stagnant_since = _instant()
    plan_steps = fields.List(fields.Nested(PlanStepSchema))
    history = fields.List(fields.Nested(OpportunityHistorySchema),
                          metadata={"description": "GET /opportunities/{id} only"})
    created_at = _instant()
    updated_at = _instant()


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
    scheduled_at = _instant()
    ends_at = _instant()
    duration_minutes = fields.Integer()
    status = fields.String(metadata={"enum": list(VIEWING_STATUSES)})
    result = fields.String(allow_none=True, metadata={"enum": list(VIEWING_RESULTS)})
    outcome = fields.String(allow_none=True)
    created_at = _instant()
    completed_at = _instant()


ViewingPageSchema = page_of(ViewingSchema, "ViewingPage")


class PaymentSchema(DictSchema):
    id = Id()
    bill_id = fields.String()
    amount = Money()
    paid_at = _instant()
    method = fields.String(metadata={"description": _one_of(PAYMENT_METHODS) +
                                     ", or deposit (settled from the deposit at move-out)"})
    recorded_by = fields.String(allow_none=True)


class BillSchema(DictSchema):
    id = Id(required=True)
    lease_id = fields.String()
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(BILL_KINDS)})
    description = fields.String(allow_none=True)
    period_start = _date()
    period_end = _date()
    due_date = _date()
    amount = Money()
    paid = Money()
    balance = Money()
    status = fields.String(metadata={"enum": list(BILL_STATUSES)})
    days_overdue = fields.Integer()
    payments = fields.List(fields.Nested(PaymentSchema),
                           metadata={"description": "GET /bills/{id} only"})
    created_at = _instant()


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
    refunded_at = _instant()


class LeaseSchema(DictSchema):
    id = Id(required=True)
    customer_id = fields.String()
    unit_id = fields.String()
    opportunity_id = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    start_date = _date()
    end_date = _date()
    monthly_rent = Money()
    deposit = Money()
    payment_cycle = fields.String(metadata={"enum": list(PAYMENT_CYCLES)})
    status = fields.String(metadata={"enum": list(LEASE_STATUSES)})
    term_rent = Money("the rent of the whole term; the rent bills sum to it exactly")
    renewed_from_id = fields.String(allow_none=True)
    renewed_to_id = fields.String(allow_none=True)
    terminated_on = _date()
    termination_reason = fields.String(allow_none=True)
    signed_at = _instant()
    bills = fields.List(fields.Nested(BillSchema), metadata={
        "description": "the deposit and rent schedule (on sign, renew and GET /leases/{id})"})
    deposit_refund = fields.Nested(DepositRefundSchema, allow_none=True,
                                   metadata={"description": "GET /leases/{id} only"})
    created_at = _instant()
    updated_at = _instant()


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
    occurred_at = _instant()


class TaskSchema(DictSchema):
    id = Id(required=True)
    owner_id = fields.String()
    kind = fields.String(metadata={"enum": list(TASK_KINDS)})
    title = fields.String()
    due_at = _instant()
    remind_at = _instant()
    reminded_at = _instant()
    customer_id = fields.String(allow_none=True)
    opportunity_id = fields.String(allow_none=True)
    bill_id = fields.String(allow_none=True)
    lease_id = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(TASK_STATUSES)})
    overdue = fields.Boolean()
    result = fields.String(allow_none=True)
    done_at = _instant()
    urge_count = fields.Integer()
    urged_at = _instant()
    urged_by = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    history = fields.List(fields.Nested(TaskHistorySchema))
    created_at = _instant()


TaskPageSchema = page_of(TaskSchema, "TaskPage")
