"""Loading a request's data through a marshmallow schema, the same way in every service."""
from decimal import Decimal, InvalidOperation

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from crm_kit.errors import InvalidInput


def load(schema, data, partial=False):
    """Validate ``data`` or raise InvalidInput naming each bad field (422 at the gateway)."""
    if not isinstance(data, dict):
        raise InvalidInput({"_schema": ["must be an object"]})
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise InvalidInput(exc.messages) from None


class StrictSchema(Schema):
    """A payload schema that refuses unknown fields (by name, in the same 422)."""

    class Meta:
        unknown = RAISE


def text_field(max_length, **kwargs):
    """Text of 1..max_length characters, not only blanks."""
    return fields.String(validate=validate.And(
        validate.Length(1, max_length),
        validate.Regexp(r"\s*\S", error="must not be blank")), **kwargs)


def id_field(**kwargs):
    """An opaque id (a uuid, or another service's id)."""
    return fields.String(validate=validate.Length(1, 36), **kwargs)


def load_filters(schema, filters):
    """Validate a list's filters; absent, null and empty values are dropped first (an empty
    list stays: ``owner_ids=[]`` matches nothing)."""
    if filters is None:
        filters = {}  # still through the schema: its defaults apply
    if not isinstance(filters, dict):
        raise InvalidInput({"filters": ["must be an object"]})
    return load(schema, {key: value for key, value in filters.items()
                         if value is not None and value != ""})


def page(page_number, per_page, default=50, most=200):
    """``(page, per_page)`` of a list call, clamped to 1.. and 1..``most``."""
    return max(int(page_number or 1), 1), min(max(int(per_page or default), 1), most)


MAX_MONEY = Decimal("99999999.99")


class MoneyField(fields.Field):
    """A non-negative amount with at most two decimal places, from a string or an integer."""

    default_error_messages = {
        "invalid": "must be an amount like \"3500.00\" (a string, at most two decimals)",
        "range": "must be between 0.00 and 99,999,999.99",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.make_error("invalid") from None
        if not amount.is_finite() or amount.as_tuple().exponent < -2:
            raise self.make_error("invalid")
        if not Decimal("0") <= amount <= MAX_MONEY:
            raise self.make_error("range")
        return amount.quantize(Decimal("0.01"))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value:.2f}"
