"""Shapes and validation of what the customer service accepts (marshmallow).

A load error becomes ``InvalidInput`` (422 at the gateway) naming every bad field.
"""
import re
from datetime import date

from marshmallow import (RAISE, Schema, ValidationError, fields, validate, validates,
                         validates_schema)

from crm_kit.validation import load  # noqa: F401  (schemas.load is what the logic calls)
from customer_service import vocabulary as v

MOBILE = re.compile(r"^1[3-9]\d{9}$")
TAG = validate.Regexp(r"^[^\s,;|][^,;|]{0,31}$",
                      error="1-32 characters, no comma, semicolon or bar, not starting blank")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def valid_id_number(value):
    """Mainland resident ID (GB 11643): 17 digits and a check character, with a real birth date."""
    value = value.upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS))
    return ID_CHECK[total % 11] == value[17]


def mobile_field(**kwargs):
    return fields.String(validate=validate.Regexp(
        MOBILE, error="must be a mainland China mobile number: 11 digits starting with 1"),
        **kwargs)


class ContactSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 100))
    mobile = mobile_field(allow_none=True)
    email = fields.Email(allow_none=True)
    title = fields.String(allow_none=True, validate=validate.Length(max=64))
    is_primary = fields.Boolean(load_default=False)


class ConsentSchema(Schema):
    class Meta:
        unknown = RAISE

    sms = fields.Boolean()
    email = fields.Boolean()
    wechat = fields.Boolean()
    phone = fields.Boolean()
    in_app = fields.Boolean()


def _custom_value(value):
    return value is None or isinstance(value, (str, int, bool)) and not (
        isinstance(value, str) and len(value) > 500)


class CustomerSchema(Schema):
    """Create (all rules) and update (``partial=True``) of a customer record."""

    class Meta:
        unknown = RAISE

    kind = fields.String(load_default="person", validate=validate.OneOf(v.KINDS))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    mobile = mobile_field(required=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    wechat_id = fields.String(allow_none=True, validate=validate.Length(1, 64))
    gender = fields.String(allow_none=True, validate=validate.OneOf(v.GENDERS))
    birthday = fields.Date(allow_none=True)
    id_number = fields.String(allow_none=True)
    occupation = fields.String(allow_none=True, validate=validate.Length(max=64))
    industry = fields.String(allow_none=True, validate=validate.Length(max=64))
    employer = fields.String(allow_none=True, validate=validate.Length(max=128))
    education = fields.String(allow_none=True, validate=validate.OneOf(v.EDUCATION))
    income_band = fields.String(allow_none=True, validate=validate.OneOf(v.INCOME_BANDS))
    hometown = fields.String(allow_none=True, validate=validate.Length(max=64))
    city = fields.String(allow_none=True, validate=validate.Length(max=64))
    district = fields.String(allow_none=True, validate=validate.Length(max=64))
    source = fields.String(allow_none=True, validate=validate.OneOf(v.SOURCES))
    owner_id = fields.String(allow_none=True, validate=validate.Length(1, 36))
    tags = fields.List(fields.String(validate=TAG), validate=validate.Length(max=50))
    consent = fields.Nested(ConsentSchema)
    custom_fields = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                                validate=validate.Length(max=50))
    contacts = fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=50))

    @validates("birthday")
    def _birthday(self, value, **_):
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValidationError("must be a past date after 1900-01-01")

    @validates("id_number")
    def _id_number(self, value, **_):
        if value is not None and not valid_id_number(value):
            raise ValidationError("is not a valid 18-character resident ID number")

    @validates("custom_fields")
    def _custom_fields(self, value, **_):
        bad = [key for key, item in value.items() if not _custom_value(item)]
        if bad:
            raise ValidationError(
                f"values must be text (≤500 chars), whole numbers, true/false or null: {bad}")

    @validates_schema
    def _contacts_for_companies(self, data, **_):
        if data.get("contacts") and data.get("kind", "person") != "company":
            raise ValidationError("only company customers have contacts", "contacts")


class InteractionSchema(Schema):
    class Meta:
        unknown = RAISE

    channel = fields.String(required=True, validate=validate.OneOf(v.CHANNELS))
    direction = fields.String(load_default="inbound", validate=validate.OneOf(v.DIRECTIONS))
    summary = fields.String(required=True, validate=validate.Length(1, 4000))
    occurred_at = fields.AwareDateTime(load_default=None, allow_none=True)


class StageChangeSchema(Schema):
    class Meta:
        unknown = RAISE

    stage = fields.String(required=True, validate=validate.OneOf(v.STAGES))
    reason = fields.String(required=True, validate=validate.Length(1, 1000))
    approver_id = fields.String(allow_none=True, load_default=None)


class ChurnDecisionSchema(Schema):
    class Meta:
        unknown = RAISE

    decision = fields.String(required=True, validate=validate.OneOf(v.CHURN_DECISIONS))
    reason = fields.String(required=True, validate=validate.Length(1, 1000))
    competitor = fields.String(allow_none=True, load_default=None,
                               validate=validate.Length(max=100))


class HandoverSchema(Schema):
    class Meta:
        unknown = RAISE

    from_owner_id = fields.String(required=True, validate=validate.Length(1, 36))
    to_owner_id = fields.String(required=True, validate=validate.Length(1, 36))
    customer_ids = fields.List(fields.String(), load_default=None, allow_none=True)
    reason = fields.String(required=True, validate=validate.Length(1, 1000))

    @validates_schema
    def _different_owners(self, data, **_):
        if data.get("from_owner_id") == data.get("to_owner_id"):
            raise ValidationError("must differ from from_owner_id", "to_owner_id")


class StageLimitsSchema(Schema):
    """``{stage: days}``; ``null`` removes a stage's limit."""

    class Meta:
        unknown = RAISE

    potential = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    intent = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    first_time = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    repeat = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    churn_warning = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    churned = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))


class PointsAdjustmentSchema(Schema):
    class Meta:
        unknown = RAISE

    delta = fields.Integer(required=True, validate=validate.Range(-1_000_000, 1_000_000))
    reason = fields.String(required=True, validate=validate.Length(1, 200))


customer_schema = CustomerSchema()
interaction_schema = InteractionSchema()
stage_change_schema = StageChangeSchema()
churn_decision_schema = ChurnDecisionSchema()
handover_schema = HandoverSchema()
stage_limits_schema = StageLimitsSchema()
points_schema = PointsAdjustmentSchema()
