"""Marketing payloads (the marketing service): segments, campaigns and their responses, care
rules, the delivery log (messages) and its receipts.

Input: as for customers and leasing (see ``schemas/customers.py``), the marketing service is the
one authority on values: the gateway's input schemas describe the fields for the OpenAPI
document, check only their JSON types, and pass the body on (``unknown = INCLUDE``), so one 422
from the service names every bad field at once (a placeholder that is no customer field on
``template``, an unknown segment rule on ``rules.<key>``, an unknown field). The body of
``POST /care-rules/run``, whose one value the RPC takes alone (``today``), refuses unknown fields
here: they could not reach the service.

Money (a campaign's ``cost``) is a decimal string in CNY with two places (``"3500.00"``) in and
out, never a float (``Money`` of ``schemas/leasing.py``). Dates and instants are strings checked
by the service.

Query strings: enumerations are checked here (a value the service would silently match nothing
with is a 422 naming the parameter).

The delivery log names where each message went (``recipient``): for an SMS that is the
customer's mobile, masked by role like every customer the gateway answers
(``permissions.FULL_MOBILE``).
"""
from flask import has_request_context
from marshmallow import fields, validate

from crm_gateway.permissions import FULL_MOBILE, mask_mobile
from crm_gateway.schemas.common import (Body, DictSchema, Id, PageQuery, Value, date_field,
                                         instant_field, int_field, one_of_text, page_of,
                                         text_field)
from crm_gateway.schemas.leasing import Money

#: the channels a campaign or a care rule sends on (api.md "Marketing")
MARKETING_CHANNELS = ("sms", "email", "wechat", "in_app")
CAMPAIGN_STATUSES = ("draft", "scheduled", "launching", "sending", "completed")
CARE_KINDS = ("birthday", "holiday", "move_in", "lease_anniversary", "renewal_reminder")
HOLIDAYS = ("spring_festival", "dragon_boat", "mid_autumn", "custom")
MESSAGE_STATUSES = ("queued", "sent", "delivered", "failed", "skipped")
RECEIPT_STATUSES = ("delivered", "failed")
SEGMENT_RULES = ("tags", "stage", "value_tier", "rfm_segment", "district", "city", "industry",
                 "source", "gender", "member_tier", "lease_ends_within_days",
                 "has_active_lease")
TEMPLATE_TEXT = ("text with {field} placeholders naming customer fields, e.g. {name}您好 "
                 "(a placeholder that is no customer field → 422 on template)")


# ---------------------------------------------------------------- input: segments

class SegmentCreateSchema(Body):
    name = text_field("required; unique (a taken name → 409)")
    description = text_field()
    rules = fields.Dict(keys=fields.String(), allow_none=True, metadata={
        "description": "required; every key narrows the audience (AND), a list matches any of "
                       "its values (OR): " + ", ".join(SEGMENT_RULES) + " (lists of strings, "
                       "but lease_ends_within_days: 0-366 and has_active_lease: a boolean); an "
                       "unknown key or a bad value → 422 on rules.<key>",
        "example": {"tags": ["高端"], "stage": ["intent", "first_time"],
                    "district": ["锦江区"]}})


class SegmentQuerySchema(PageQuery):
    q = fields.String(metadata={"description": "part of the name"})


# ---------------------------------------------------------------- input: campaigns

class CampaignCreateSchema(Body):
    name = text_field("required")
    segment_id = text_field("required; an existing segment (422 otherwise)")
    channel = text_field("required; " + one_of_text(MARKETING_CHANNELS))
    template = text_field("required; " + TEMPLATE_TEXT)
    scheduled_at = instant_field("when to launch by itself (then scheduled, else draft)")
    cost = Money("what the campaign costs, for its cost per lease", allow_none=True)


class CampaignQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
    channel = fields.String(validate=validate.OneOf(MARKETING_CHANNELS))
    segment_id = fields.String()


class ResponseInSchema(Body):
    customer_id = text_field("required; a recipient of the campaign (422 otherwise); one "
                             "response per customer (409)")
    response = text_field("what the customer said or did")


# ---------------------------------------------------------------- input: care rules

class CareRuleChangesSchema(Body):
    """The facts of a care rule; all optional here (PATCH)."""

    kind = text_field("required on create; " + one_of_text(CARE_KINDS))
    name = text_field()
    channel = text_field("required on create; " + one_of_text(MARKETING_CHANNELS))
    template = text_field("required on create; " + TEMPLATE_TEXT + "; each occasion adds its "
                          "own fields (holiday_name, move_in_date, years, lease_end_date, "
                          "days_left)")
    active = fields.Boolean(allow_none=True, metadata={"description": "default true"})
    holiday = text_field("holiday rules: " + one_of_text(HOLIDAYS))
    holiday_name = text_field("a custom holiday's name, e.g. 国庆节")
    holiday_date = text_field("a custom holiday's day, MM-DD")
    days_before = int_field("renewal reminders: days before the lease ends")


class CareRuleCreateSchema(CareRuleChangesSchema):
    """A new care rule (客户关怀): ``kind``, ``channel`` and ``template`` are required (by the
    service), and what the kind needs (a holiday, days before)."""


class CareRuleQuerySchema(PageQuery):
    kind = fields.String(validate=validate.OneOf(CARE_KINDS))
    active = fields.Boolean()


class CareRunInSchema(Value):
    today = date_field("the day to run for (YYYY-MM-DD); default: today in the service's "
                       "time zone")


# ---------------------------------------------------------------- input: messages

class MessageQuerySchema(PageQuery):
    customer_id = fields.String()
    campaign_id = fields.String()
    care_rule_id = fields.String()
    status = fields.String(validate=validate.OneOf(MESSAGE_STATUSES))
    channel = fields.String(validate=validate.OneOf(MARKETING_CHANNELS))


class ReceiptInSchema(Body):
    status = text_field("required; " + one_of_text(RECEIPT_STATUSES))
    error = text_field("why it failed, as the provider says")


# ---------------------------------------------------------------- output

class SegmentSchema(DictSchema):
    id = Id(required=True)
    name = fields.String()
    description = fields.String(allow_none=True)
    rules = fields.Dict(keys=fields.String())
    created_by = fields.String(allow_none=True)
    created_at = instant_field()
    updated_at = instant_field()


SegmentPageSchema = page_of(SegmentSchema, "SegmentPage")


class SegmentMemberSchema(DictSchema):
    customer_id = fields.String()
    name = fields.String(allow_none=True)
    stage = fields.String(allow_none=True)
    value_tier = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    erased = fields.Boolean(metadata={"description": "in the segment, but a campaign skips them"})
    archived = fields.Boolean(metadata={"description": "in the segment, but a campaign skips "
                                                       "them"})


SegmentPreviewSchema = page_of(SegmentMemberSchema, "SegmentPreview")


class CampaignSchema(DictSchema):
    id = Id(required=True)
    name = fields.String()
    segment_id = fields.String()
    channel = fields.String(metadata={"enum": list(MARKETING_CHANNELS)})
    template = fields.String()
    scheduled_at = instant_field()
    cost = Money(allow_none=True)
    status = fields.String(metadata={"enum": list(CAMPAIGN_STATUSES)})
    audience = fields.Integer(allow_none=True, metadata={
        "description": "customers recorded for it, skipped ones included (null before the "
                       "launch, final once recorded_at is set)"})
    launched_at = instant_field()
    recorded_at = instant_field(description="when every recipient was recorded")
    completed_at = instant_field()
    created_by = fields.String(allow_none=True)
    created_at = instant_field()
    updated_at = instant_field()


CampaignPageSchema = page_of(CampaignSchema, "CampaignPage")


class CampaignStatsSchema(DictSchema):
    campaign_id = fields.String()
    status = fields.String(metadata={"enum": list(CAMPAIGN_STATUSES)})
    audience = fields.Integer(allow_none=True, metadata={
        "description": "customers recorded for the campaign, skipped ones included"})
    recipients = fields.Integer(metadata={"description": "customers messaged (audience − "
                                                         "skipped)"})
    skipped = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "reason → customers skipped"})
    queued = fields.Integer()
    sent = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    delivery_rate = fields.Float(allow_none=True, metadata={
        "description": "delivered / recipients, 0-1 (null without recipients)"})
    responses = fields.Integer()
    opportunities = fields.Integer()
    leases_won = fields.Integer()
    cost = Money(allow_none=True)
    cost_per_lease = Money(allow_none=True)


class ResponseSchema(DictSchema):
    id = Id(required=True)
    campaign_id = fields.String()
    customer_id = fields.String()
    response = fields.String(allow_none=True)
    recorded_by = fields.String(allow_none=True)
    received_at = instant_field()


ResponsePageSchema = page_of(ResponseSchema, "ResponsePage")


class CareRuleSchema(DictSchema):
    id = Id(required=True)
    kind = fields.String(metadata={"enum": list(CARE_KINDS)})
    name = fields.String(allow_none=True)
    channel = fields.String(metadata={"enum": list(MARKETING_CHANNELS)})
    template = fields.String()
    active = fields.Boolean()
    holiday = fields.String(allow_none=True)
    holiday_name = fields.String(allow_none=True)
    holiday_date = fields.String(allow_none=True)
    days_before = fields.Integer(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = instant_field()
    updated_at = instant_field()


CareRulePageSchema = page_of(CareRuleSchema, "CareRulePage")

#: ``POST /care-rules/run`` answers the RPC's mapping as it is (its keys are rule ids)
CARE_RUN_RESULT = {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "care rule id → messages recorded by this run",
                   "example": {"0b6e7c1e-5d0a-4c1b-9f3e-2a7d8c9e0f11": 2}}


class _Recipient(fields.String):
    """Where the message went: an SMS's is the customer's mobile, masked by role."""

    def _serialize(self, value, attr, obj, **kwargs):
        value = super()._serialize(value, attr, obj, **kwargs)
        if not value or obj.get("channel") != "sms":
            return value
        from crm_gateway.auth import current_caller

        caller = current_caller() if has_request_context() else None
        if caller is not None and set(caller.roles) & FULL_MOBILE:
            return value
        return mask_mobile(value)


class MessageSchema(DictSchema):
    id = Id(required=True)
    customer_id = fields.String()
    campaign_id = fields.String(allow_none=True)
    care_rule_id = fields.String(allow_none=True)
    occasion = fields.String(metadata={"description": "campaign:<id>, birthday:<year> …"})
    channel = fields.String(metadata={"enum": list(MARKETING_CHANNELS)})
    recipient = _Recipient(allow_none=True, metadata={
        "description": "the address it went to (an SMS's mobile masked by role)"})
    body = fields.String(allow_none=True, metadata={"description": "the text as sent"})
    status = fields.String(metadata={"enum": list(MESSAGE_STATUSES)})
    skip_reason = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = instant_field()
    sent_at = instant_field()
    delivered_at = instant_field()


MessagePageSchema = page_of(MessageSchema, "MessagePage")
