"""Customer payloads.

Input: the customer service is the one authority on a customer record's values (its
``schemas.py``): the gateway's input schemas describe the fields for the OpenAPI document and
check only their JSON types, and pass the body on, so one 422 names every bad field at once
(mobile format, vocabularies, ID check digit, unknown or forbidden fields such as ``stage``)
instead of some fields at the gateway and the rest on the next try.
"""
import marshmallow as ma
from flask import has_request_context
from marshmallow import fields, post_dump, validate, validates

from crm_gateway.permissions import mask_customer
from crm_gateway.schemas.common import CHANNELS, DictSchema, Id, PageQuery, page_of

STAGES = ("potential", "intent", "first_time", "repeat", "churn_warning", "churned")
VALUE_TIERS = ("key", "important", "ordinary", "small")
KINDS = ("person", "company")
CHURN_DECISIONS = ("keep_trying", "confirm_churn")
ALERT_STATUSES = ("open", "acknowledged", "resolved")


def tag_field():
    return fields.String(validate=validate.Length(1, 32))


def _text(description=None, **kwargs):
    return fields.String(allow_none=True, metadata={"description": description} if description
                         else {}, **kwargs)


# ---------------------------------------------------------------- input

class ConsentInSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE  # the service names unknown channels

    sms = fields.Boolean()
    email = fields.Boolean()
    wechat = fields.Boolean()
    phone = fields.Boolean()
    in_app = fields.Boolean()


class ContactInSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    name = _text("required, 1-100 characters")
    mobile = _text("11-digit mainland mobile")
    email = _text("an email address")
    title = _text("up to 64 characters")
    is_primary = fields.Boolean()


class CustomerChangesSchema(ma.Schema):
    """The fields of a customer record; all optional here (PATCH). ``null`` clears a field.
    Values are checked by the customer service (docs/customer.md)."""

    class Meta:
        unknown = ma.INCLUDE  # the service refuses unknown and forbidden fields, by name

    kind = _text("person (default) or company")
    name = _text("1-100 characters; required on create")
    mobile = _text("11-digit mainland mobile (1[3-9]…); required on create; unique")
    email = _text("an email address")
    wechat_id = _text("up to 64 characters")
    gender = _text("male, female or other")
    birthday = _text("YYYY-MM-DD, in the past")
    id_number = _text("18-character resident ID with a valid check character (sensitive)")
    occupation = _text("up to 64 characters")
    industry = _text("up to 64 characters")
    employer = _text("up to 128 characters")
    education = _text("high_school, associate, bachelor, master, doctorate or other")
    income_band = _text("monthly CNY: below_5k, 5k_10k, 10k_20k, 20k_30k or above_30k")
    hometown = _text("up to 64 characters")
    city = _text("up to 64 characters")
    district = _text("up to 64 characters")
    source = _text("walk_in, referral, website, wechat, weibo, agent, campaign, corporate, "
                   "phone or other")
    owner_id = _text("an active staff member's id")
    tags = fields.List(fields.String(), metadata={"description": "up to 50, 1-32 characters each"})
    consent = fields.Nested(ConsentInSchema)
    custom_fields = fields.Dict(keys=fields.String(),
                                metadata={"description": "up to 50 keys; text, numbers, booleans"})
    contacts = fields.List(fields.Nested(ContactInSchema),
                           metadata={"description": "company customers only"})


class CustomerCreateSchema(CustomerChangesSchema):
    """A new customer: ``name`` and ``mobile`` are required (checked by the service)."""


class CustomerQuerySchema(PageQuery):
    q = fields.String(metadata={"description": "name, mobile or email contains"})
    stage = fields.String(validate=validate.OneOf(STAGES))
    tag = fields.String()
    owner_id = fields.String()
    value_tier = fields.String(validate=validate.OneOf(VALUE_TIERS))
    district = fields.String()


class ExportQuerySchema(ma.Schema):
    q = fields.String()
    stage = fields.String(validate=validate.OneOf(STAGES))
    tag = fields.String()
    owner_id = fields.String()
    value_tier = fields.String(validate=validate.OneOf(VALUE_TIERS))
    district = fields.String()


class InteractionInSchema(ma.Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    direction = fields.String(validate=validate.OneOf(("inbound", "outbound")),
                              metadata={"description": "default inbound"})
    summary = fields.String(required=True, validate=validate.Length(1, 4000))
    occurred_at = fields.AwareDateTime(allow_none=True,
                                       metadata={"description": "default: now"})


class TagsInSchema(ma.Schema):
    tags = fields.List(tag_field(), required=True, validate=validate.Length(1, 50))


class StageChangeInSchema(ma.Schema):
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    reason = fields.String(required=True, validate=validate.Length(1, 1000))
    approver_id = fields.String(allow_none=True, validate=validate.Length(1, 36))


class ChurnDecisionInSchema(ma.Schema):
    decision = fields.String(required=True, validate=validate.OneOf(CHURN_DECISIONS))
    reason = fields.String(required=True, validate=validate.Length(1, 1000))
    competitor = fields.String(allow_none=True, validate=validate.Length(max=100))


class HandoverInSchema(ma.Schema):
    from_owner_id = fields.String(required=True, validate=validate.Length(1, 36))
    to_owner_id = fields.String(required=True, validate=validate.Length(1, 36))
    customer_ids = fields.List(fields.String(), allow_none=True,
                               metadata={"description": "default: all of from_owner_id's"})
    reason = fields.String(required=True, validate=validate.Length(1, 1000))

    @ma.validates_schema
    def _different_owners(self, data, **_):
        if data.get("from_owner_id") == data.get("to_owner_id"):
            raise ma.ValidationError("must differ from from_owner_id", "to_owner_id")


class MergeInSchema(ma.Schema):
    duplicate_id = fields.String(required=True, validate=validate.Length(1, 36))


class PointsInSchema(ma.Schema):
    delta = fields.Integer(required=True, validate=validate.Range(-1_000_000, 1_000_000))
    reason = fields.String(required=True, validate=validate.Length(1, 200))

    @validates("delta")
    def _not_zero(self, value, **_):
        if value == 0:
            raise ma.ValidationError("must not be 0")


class AlertQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(ALERT_STATUSES))
    owner_id = fields.String()


class StageLimitsSchema(ma.Schema):
    """Days a customer may stay in each stage before its owner is alerted; ``null``: no limit."""

    potential = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    intent = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    first_time = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    repeat = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    churn_warning = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    churned = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))


# ---------------------------------------------------------------- output

class MemberSchema(DictSchema):
    tier = fields.String(allow_none=True)
    points = fields.Integer()


class ContactSchema(DictSchema):
    id = Id()
    name = fields.String()
    mobile = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    is_primary = fields.Boolean()


def _date(**kwargs):
    return fields.String(allow_none=True, metadata={"format": "date"}, **kwargs)


def _instant(**kwargs):
    return fields.String(allow_none=True, metadata={"format": "date-time"}, **kwargs)


class CustomerSchema(DictSchema):
    """A customer as the caller may see it: ``mobile`` and ``id_number`` masked by role."""

    id = Id(required=True)
    kind = fields.String()
    name = fields.String()
    mobile = fields.String(allow_none=True, metadata={
        "description": "full for customer managers, sales supervisors, service agents and "
                       "technicians; else 138****5678"})
    email = fields.String(allow_none=True)
    wechat_id = fields.String(allow_none=True)
    gender = fields.String(allow_none=True)
    birthday = _date()
    id_number = fields.String(allow_none=True, metadata={
        "description": "full for customer managers and sales supervisors; "
                       "else 5101**********1234"})
    occupation = fields.String(allow_none=True)
    industry = fields.String(allow_none=True)
    employer = fields.String(allow_none=True)
    education = fields.String(allow_none=True)
    income_band = fields.String(allow_none=True)
    hometown = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    stage = fields.String(metadata={"enum": list(STAGES)})
    stage_entered_at = _instant()
    value_tier = fields.String(allow_none=True, metadata={"enum": list(VALUE_TIERS)})
    churn_risk = fields.Raw(allow_none=True)
    member = fields.Nested(MemberSchema)
    consent = fields.Dict(keys=fields.String(), values=fields.Boolean())
    tags = fields.List(fields.String())
    custom_fields = fields.Dict()
    contacts = fields.List(fields.Nested(ContactSchema))
    leases_signed = fields.Integer()
    merged_into = fields.String(allow_none=True)
    archived = fields.Boolean()
    erased = fields.Boolean()
    created_at = _instant()
    updated_at = _instant()

    @post_dump
    def _mask(self, data, **_):
        # every response carrying a customer goes through here, so masking cannot be forgotten
        from crm_gateway.auth import current_caller

        caller = current_caller() if has_request_context() else None
        return mask_customer(data, caller.roles if caller else ())


CustomerPageSchema = page_of(CustomerSchema, "CustomerPage")


class InteractionSchema(DictSchema):
    id = Id()
    customer_id = fields.String()
    channel = fields.String(metadata={"enum": list(CHANNELS)})
    direction = fields.String()
    summary = fields.String()
    staff_id = fields.String(allow_none=True)
    occurred_at = _instant()
    created_at = _instant()


InteractionPageSchema = page_of(InteractionSchema, "InteractionPage")


class StageChangeSchema(DictSchema):
    from_stage = fields.String(allow_none=True)
    to_stage = fields.String()
    trigger = fields.String(allow_none=True)
    event_id = fields.String(allow_none=True)
    actor_id = fields.String(allow_none=True)
    approver_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    occurred_at = _instant()


class HandoverSchema(DictSchema):
    moved = fields.Integer()
    customer_ids = fields.List(fields.String())


class DuplicateSchema(DictSchema):
    customer = fields.Nested(CustomerSchema)
    matched_on = fields.List(fields.String(), metadata={"description": "mobile, email, id_number"})


class ImportErrorSchema(DictSchema):
    row = fields.Integer()
    message = fields.String()


class ImportResultSchema(DictSchema):
    created = fields.Integer()
    updated = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorSchema))


class AlertSchema(DictSchema):
    id = Id()
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    stage = fields.String()
    stage_entered_at = _instant()
    limit_days = fields.Integer()
    status = fields.String(metadata={"enum": list(ALERT_STATUSES)})
    created_at = _instant()
    acknowledged_by = fields.String(allow_none=True)
    acknowledged_at = _instant()
    resolved_at = _instant()


AlertPageSchema = page_of(AlertSchema, "AlertPage")


# ---------------------------------------------------------------- the 360 view

class SectionSchema(DictSchema):
    """A part of the 360 view that another service provides."""

    available = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, metadata={
        "description": "when unavailable: service_unavailable, service_timeout or service_error"})
    message = fields.String(allow_none=True)
    items = fields.List(fields.Dict(), metadata={"description": "list sections"})
    data = fields.Dict(allow_none=True, metadata={"description": "the scores section"})


class Customer360Schema(DictSchema):
    profile = fields.Nested(CustomerSchema, required=True)
    stage_history = fields.List(fields.Nested(StageChangeSchema))
    interactions = fields.Nested(InteractionPageSchema)
    opportunities = fields.Nested(SectionSchema)
    leases = fields.Nested(SectionSchema, metadata={"description": "each lease with its bills"})
    tickets = fields.Nested(SectionSchema)
    messages = fields.Nested(SectionSchema, metadata={"description": "campaign messages"})
    scores = fields.Nested(SectionSchema)
