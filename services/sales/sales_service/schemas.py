"""Shapes and validation of what the sales service accepts (marshmallow).

A load error becomes ``InvalidInput`` (422 at the gateway) naming every bad field. Money is a
decimal string (or integer) with at most two places; floats are refused so no binary rounding
can creep in.
"""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from crm_kit.validation import (  # noqa: F401  (schemas.load & co. are what the logic calls)
    MoneyField, StrictSchema, id_field, load, load_filters, text_field)
from sales_service import vocabulary as v

def positive(error="must be more than 0.00"):
    return validate.Range(min=Decimal("0.01"), error=error)


# -- leases --------------------------------------------------------------------------------
class LeaseSchema(StrictSchema):
    customer_id = fields.String(required=True, validate=validate.Length(1, 36))
    unit_id = fields.String(required=True, validate=validate.Length(1, 36))
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    monthly_rent = MoneyField(required=True, validate=positive())
    deposit = MoneyField(required=True)
    payment_cycle = fields.String(required=True, validate=validate.OneOf(v.PAYMENT_CYCLES))
    opportunity_id = fields.String(load_default=None, allow_none=True)
    owner_id = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _term(self, data, **_):
        if data.get("start_date") and data.get("end_date"):
            if data["end_date"] < data["start_date"]:
                raise ValidationError("must not be before start_date", "end_date")
            if (data["end_date"] - data["start_date"]).days > 366 * 10:
                raise ValidationError("a lease lasts at most ten years", "end_date")


class RenewalSchema(StrictSchema):
    end_date = fields.Date(required=True)
    monthly_rent = MoneyField(required=True, validate=positive())
    payment_cycle = fields.String(load_default=None, validate=validate.OneOf(v.PAYMENT_CYCLES))


class TerminationSchema(StrictSchema):
    date = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class DeductionSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 200))
    amount = MoneyField(required=True, validate=positive())


class DepositRefundSchema(StrictSchema):
    deductions = fields.List(fields.Nested(DeductionSchema), load_default=list,
                             validate=validate.Length(max=50))


# -- bills and payments --------------------------------------------------------------------
class ChargeSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(v.EXTRA_BILL_KINDS))
    amount = MoneyField(required=True, validate=positive())
    due_date = fields.Date(required=True)
    description = fields.String(required=True, validate=validate.Length(1, 200))


class PaymentSchema(StrictSchema):
    bill_id = fields.String(required=True, validate=validate.Length(1, 36))
    amount = MoneyField(required=True, validate=positive())
    paid_at = fields.AwareDateTime(required=True)
    method = fields.String(required=True, validate=validate.OneOf(v.PAYMENT_METHODS))

    @validates("paid_at")
    def _not_in_the_future(self, value, **_):
        # a few minutes of clock skew between a till and the server are tolerated
        if value > datetime.now(timezone.utc) + timedelta(minutes=5):
            raise ValidationError("cannot be in the future")


lease_schema = LeaseSchema()
renewal_schema = RenewalSchema()
termination_schema = TerminationSchema()
deposit_refund_schema = DepositRefundSchema()
charge_schema = ChargeSchema()
payment_schema = PaymentSchema()

# -- units, opportunities, viewings, tasks: below ------------------------------------------
VIEWING_STATUSES = ("scheduled", "completed", "cancelled")
TASK_STATUSES = ("open", "done")
OPPORTUNITY_KINDS = ("new", "renewal")


# -- units ---------------------------------------------------------------------------------
class UnitSchema(StrictSchema):
    """Create (all rules) and update (``partial=True``) of a unit."""

    code = fields.String(required=True, validate=validate.Regexp(
        r"^\S{1,32}$", error="1-32 characters without spaces"))
    building = text_field(100, required=True)
    district = text_field(64, required=True)
    layout = text_field(32, required=True)
    area_sqm = MoneyField(required=True, validate=positive("must be more than 0"))
    floor = fields.Integer(required=True, validate=validate.Range(-5, 200))
    monthly_rent = MoneyField(required=True, validate=positive())
    amenities = fields.List(text_field(64), allow_none=True, validate=validate.Length(max=50))
    status = fields.String(allow_none=True, validate=validate.OneOf(v.UNIT_STATUSES))


class UnitFilterSchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(v.UNIT_STATUSES))
    district = fields.String(validate=validate.Length(max=64))
    layout = fields.String(validate=validate.Length(max=32))
    max_rent = MoneyField()
    q = fields.String(validate=validate.Length(max=100))


# -- opportunities -------------------------------------------------------------------------
class OpportunitySchema(StrictSchema):
    customer_id = id_field(required=True)
    source = fields.String(required=True, validate=validate.OneOf(v.OPPORTUNITY_SOURCES))
    campaign_id = id_field(allow_none=True)
    budget = MoneyField(allow_none=True, validate=positive())
    district = fields.String(allow_none=True, validate=validate.Length(max=64))
    layout = fields.String(allow_none=True, validate=validate.Length(max=32))
    move_in_date = fields.Date(allow_none=True)
    expected_value = MoneyField(allow_none=True)
    expected_close = fields.Date(allow_none=True)
    owner_id = id_field(allow_none=True)


class OpportunityStageSchema(StrictSchema):
    stage = fields.String(required=True, validate=validate.OneOf(v.OPPORTUNITY_STAGES))
    reason = text_field(1000, allow_none=True, load_default=None)
    loss_reason = fields.String(allow_none=True, load_default=None,
                                validate=validate.OneOf(v.LOSS_REASONS))
    loss_note = fields.String(allow_none=True, load_default=None,
                              validate=validate.Length(max=2000))

    @validates_schema
    def _reasons(self, data, **_):
        errors = {}
        if data["stage"] == "lost":
            if not data.get("loss_reason"):
                errors["loss_reason"] = ["required when the stage is lost"]
        else:
            if not data.get("reason"):
                errors["reason"] = ["say why the stage changes"]
            for name in ("loss_reason", "loss_note"):
                if data.get(name):
                    errors[name] = ["only for the stage lost"]
        if errors:
            raise ValidationError(errors)


class AssignSchema(StrictSchema):
    owner_id = id_field(required=True)


class PlanStepSchema(StrictSchema):
    title = text_field(200, required=True)
    due_date = fields.Date(required=True)


class PlanStepDoneSchema(StrictSchema):
    result = text_field(2000, required=True)


class VisibleToSchema(StrictSchema):
    """A scoped caller's reach (the gateway's object-level limits): these owners' records and
    these customers' records."""

    owner_ids = fields.List(fields.String(), load_default=list)
    customer_ids = fields.List(fields.String(), load_default=list)


class OpportunityFilterSchema(StrictSchema):
    customer_id = id_field()
    stage = fields.String(validate=validate.OneOf(v.OPPORTUNITY_STAGES))
    owner_id = id_field()
    owner_ids = fields.List(fields.String())
    visible_to = fields.Nested(VisibleToSchema)
    kind = fields.String(validate=validate.OneOf(OPPORTUNITY_KINDS))
    stagnant = fields.Boolean()
    campaign_id = id_field()
    renewal_of_lease_id = id_field()


class ForecastFilterSchema(StrictSchema):
    owner_id = id_field()
    owner_ids = fields.List(fields.String())
    kind = fields.String(validate=validate.OneOf(OPPORTUNITY_KINDS))


def _limit():
    return fields.Integer(allow_none=True, validate=validate.Range(0, 3650))


class OpportunityStageLimitsSchema(StrictSchema):
    """``{stage: days}`` for open stages; 0 or null: no limit."""

    new = _limit()
    contacted = _limit()
    viewing_booked = _limit()
    viewed = _limit()
    negotiating = _limit()


# -- viewings ------------------------------------------------------------------------------
class ViewingSchema(StrictSchema):
    opportunity_id = id_field(required=True)
    unit_id = id_field(required=True)
    scheduled_at = fields.AwareDateTime(required=True)
    staff_id = id_field(allow_none=True, load_default=None)
    duration_minutes = fields.Integer(load_default=60, validate=validate.Range(15, 240))


class ViewingOutcomeSchema(StrictSchema):
    result = fields.String(required=True, validate=validate.OneOf(v.VIEWING_RESULTS))
    outcome = fields.String(allow_none=True, load_default=None,
                            validate=validate.Length(max=4000))


class ViewingCancelSchema(StrictSchema):
    reason = text_field(1000, required=True)


class ViewingFilterSchema(StrictSchema):
    class Meta(StrictSchema.Meta):
        include = {"from": fields.AwareDateTime(), "to": fields.AwareDateTime()}

    opportunity_id = id_field()
    staff_id = id_field()
    unit_id = id_field()
    customer_id = id_field()
    status = fields.String(validate=validate.OneOf(VIEWING_STATUSES))
    visible_to = fields.Nested(VisibleToSchema)


# -- tasks ---------------------------------------------------------------------------------
class TaskSchema(StrictSchema):
    owner_id = id_field(required=True)
    title = text_field(200, required=True)
    due_at = fields.AwareDateTime(required=True)
    remind_at = fields.AwareDateTime(allow_none=True, load_default=None)
    customer_id = id_field(allow_none=True, load_default=None)
    opportunity_id = id_field(allow_none=True, load_default=None)
    kind = fields.String(load_default="task", validate=validate.OneOf(v.TASK_KINDS))

    @validates_schema
    def _remind_before_due(self, data, **_):
        if data.get("remind_at") and data["remind_at"] > data["due_at"]:
            raise ValidationError("must not be after due_at", "remind_at")


class TaskDoneSchema(StrictSchema):
    result = fields.String(allow_none=True, load_default=None,
                           validate=validate.Length(max=2000))


class TaskFilterSchema(StrictSchema):
    owner_id = id_field()
    owner_ids = fields.List(fields.String())
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    overdue = fields.Boolean()
    urged = fields.Boolean()
    kind = fields.String(validate=validate.OneOf(v.TASK_KINDS))
    customer_id = id_field()
    opportunity_id = id_field()
    bill_id = id_field()
    lease_id = id_field()


unit_schema = UnitSchema()
unit_filter_schema = UnitFilterSchema()
opportunity_schema = OpportunitySchema()
opportunity_stage_schema = OpportunityStageSchema()
assign_schema = AssignSchema()
plan_step_schema = PlanStepSchema()
plan_step_done_schema = PlanStepDoneSchema()
opportunity_filter_schema = OpportunityFilterSchema()
forecast_filter_schema = ForecastFilterSchema()
opportunity_stage_limits_schema = OpportunityStageLimitsSchema()
viewing_schema = ViewingSchema()
viewing_outcome_schema = ViewingOutcomeSchema()
viewing_cancel_schema = ViewingCancelSchema()
viewing_filter_schema = ViewingFilterSchema()
task_schema = TaskSchema()
task_done_schema = TaskDoneSchema()
task_filter_schema = TaskFilterSchema()
