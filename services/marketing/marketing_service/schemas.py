"""Shapes and validation of what the marketing service accepts (marshmallow).

A load error becomes ``InvalidInput`` (422 at the gateway) naming every bad field.
"""
from datetime import datetime, timezone

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from crm_kit.validation import (  # noqa: F401  (schemas.load & co. are what the logic calls)
    MoneyField, StrictSchema, id_field, load, load_filters, text_field)
from marketing_service import templates
from marketing_service import vocabulary as v

MONTH_DAY = validate.Regexp(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                            error="must be a month and day like \"10-01\"")


def strings(max_length=64):
    return fields.List(fields.String(validate=validate.Length(1, max_length)),
                       validate=validate.Length(1, 100))


# -- segments ------------------------------------------------------------------------------
class RulesSchema(StrictSchema):
    """A segment's rules: every key narrows (AND), a list matches any of its values (OR)."""

    tags = strings()
    stage = strings()
    value_tier = strings()
    rfm_segment = strings()
    district = strings()
    city = strings()
    industry = strings(100)
    source = strings()
    gender = strings()
    member_tier = strings()
    lease_ends_within_days = fields.Integer(strict=True, validate=validate.Range(0, 366))
    has_active_lease = fields.Boolean()


class SegmentSchema(StrictSchema):
    name = text_field(100, required=True)
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=2000))
    rules = fields.Nested(RulesSchema, required=True)


class SegmentFilters(StrictSchema):
    q = fields.String(validate=validate.Length(1, 100))


# -- campaigns -----------------------------------------------------------------------------
def template_field(allowed, **kwargs):
    def check(value):
        found = templates.problems(value, allowed)
        if found:
            raise ValidationError(found)

    return fields.String(validate=validate.And(validate.Length(1, templates.MAX_LENGTH), check),
                         **kwargs)


class CampaignSchema(StrictSchema):
    name = text_field(200, required=True)
    segment_id = id_field(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(v.CHANNELS))
    template = template_field(v.CUSTOMER_FIELDS, required=True)
    scheduled_at = fields.AwareDateTime(load_default=None, allow_none=True)
    cost = MoneyField(load_default=None, allow_none=True)

    @validates("scheduled_at")
    def _future(self, value, **_):
        if value is not None and value <= datetime.now(timezone.utc):
            raise ValidationError("must be in the future (or leave it out and launch now)")


class CampaignFilters(StrictSchema):
    status = fields.String(validate=validate.OneOf(v.CAMPAIGN_STATUSES))
    channel = fields.String(validate=validate.OneOf(v.CHANNELS))
    segment_id = id_field()


class ResponseSchema(StrictSchema):
    customer_id = id_field(required=True)
    response = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=1000))


# -- care rules ----------------------------------------------------------------------------
class CareRuleSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(v.CARE_KINDS))
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100))
    channel = fields.String(required=True, validate=validate.OneOf(v.CHANNELS))
    template = fields.String(required=True, validate=validate.Length(1, templates.MAX_LENGTH))
    active = fields.Boolean(load_default=True)
    holiday = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(v.HOLIDAYS))
    holiday_name = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(1, 64))
    holiday_date = fields.String(load_default=None, allow_none=True, validate=MONTH_DAY)
    days_before = fields.Integer(load_default=None, allow_none=True, strict=True,
                                 validate=validate.Range(1, 180))

    @validates_schema(skip_on_field_errors=False)  # one 422 names every bad field
    def _per_kind(self, data, **_):
        kind = data.get("kind")
        if kind is None:
            return
        errors = {}
        if "template" in data:
            allowed = v.CUSTOMER_FIELDS + v.OCCASION_FIELDS[kind]
            found = templates.problems(data["template"], allowed)
            if found:
                errors["template"] = found
        if kind == "holiday":
            if not data.get("holiday"):
                errors["holiday"] = ["is required for a holiday rule: one of "
                                     + ", ".join(v.HOLIDAYS)]
            elif data["holiday"] == "custom":
                for field in ("holiday_name", "holiday_date"):
                    if not data.get(field):
                        errors[field] = ["is required for a custom holiday"]
            elif data.get("holiday_date"):
                errors["holiday_date"] = ["only a custom holiday has a date: "
                                          f"{data['holiday']} follows the lunar calendar"]
        else:
            for field in ("holiday", "holiday_name", "holiday_date"):
                if data.get(field):
                    errors[field] = [f"only a holiday rule has a {field}"]
        if kind != "renewal_reminder" and data.get("days_before") is not None:
            errors["days_before"] = ["only a renewal_reminder rule has days_before"]
        if errors:
            raise ValidationError(errors)


class CareRuleFilters(StrictSchema):
    kind = fields.String(validate=validate.OneOf(v.CARE_KINDS))
    active = fields.Boolean()


# -- the delivery log ----------------------------------------------------------------------
class MessageFilters(StrictSchema):
    customer_id = id_field()
    campaign_id = id_field()
    care_rule_id = id_field()
    status = fields.String(validate=validate.OneOf(v.MESSAGE_STATUSES))
    channel = fields.String(validate=validate.OneOf(v.CHANNELS))
    customer_ids = fields.List(fields.String())  # the caller's customers (gateway scopes)


class ReceiptSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(v.RECEIPT_STATUSES))
    error = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


segment_schema = SegmentSchema()
segment_filters = SegmentFilters()
campaign_schema = CampaignSchema()
campaign_filters = CampaignFilters()
response_schema = ResponseSchema()
care_rule_schema = CareRuleSchema()
care_rule_filters = CareRuleFilters()
message_filters = MessageFilters()
receipt_schema = ReceiptSchema()
