"""Shapes and validation of what the analytics service accepts (marshmallow).

A load error becomes ``InvalidInput`` (422 at the gateway) naming every bad field.
"""
from datetime import date

from marshmallow import ValidationError, fields, validate, validates_schema

from crm_kit.validation import StrictSchema, id_field, load, load_filters  # noqa: F401

from analytics_service.clock import business_today

TIERS = ("key", "important", "ordinary", "small")
GRANULARITIES = ("month", "quarter", "year")
COMPOSITION_BY = ("district", "industry", "source", "age_band", "value_tier", "stage")
WARNING_STATUSES = ("open", "kept", "churned")
MAX_PERIOD_DAYS = 366 * 10
#: the days a report's period may name (its instants must fit pandas' nanosecond clock)
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
_CALENDAR = validate.Range(FIRST_DAY, LAST_DAY, error=f"must be from {FIRST_DAY} to {LAST_DAY}")


class PeriodFilters(StrictSchema):
    """``from``/``to`` (inclusive dates); defaults: the 12 months up to today."""

    date_from = fields.Date(data_key="from", validate=_CALENDAR)
    date_to = fields.Date(data_key="to", validate=_CALENDAR)

    @validates_schema
    def _order(self, data, **_):
        if data.get("date_from") and data.get("date_to"):
            if data["date_to"] < data["date_from"]:
                raise ValidationError("must not be before from", "to")
            if (data["date_to"] - data["date_from"]).days > MAX_PERIOD_DAYS:
                raise ValidationError("a period is at most ten years", "to")
        elif data.get("date_from"):  # ``to`` is today (the business clock): the same rules
            today = business_today()
            if data["date_from"] > today:
                raise ValidationError("must not be after to (default: today)", "from")
            if (today - data["date_from"]).days > MAX_PERIOD_DAYS:
                raise ValidationError("a period is at most ten years (to defaults to today)",
                                      "from")


class TrendFilters(PeriodFilters):
    granularity = fields.String(load_default="month", validate=validate.OneOf(GRANULARITIES))


class RfmFilters(StrictSchema):
    segment = fields.String(validate=validate.Length(1, 32))
    value_tier = fields.String(validate=validate.OneOf(TIERS))
    r = fields.Integer(strict=True, validate=validate.Range(1, 5))
    f = fields.Integer(strict=True, validate=validate.Range(1, 5))
    m = fields.Integer(strict=True, validate=validate.Range(1, 5))


class ClvFilters(StrictSchema):
    value_tier = fields.String(validate=validate.OneOf(TIERS))


class WarningFilters(StrictSchema):
    status = fields.String(validate=validate.OneOf(WARNING_STATUSES))
    customer_id = id_field()


class ClusterRequest(StrictSchema):
    features = fields.List(fields.String(validate=validate.Length(1, 32)), required=True,
                           validate=validate.Length(1, 10))
    k = fields.Integer(strict=True, load_default=None, allow_none=True,
                       validate=validate.Range(2, 20))
    k_min = fields.Integer(strict=True, load_default=2, validate=validate.Range(2, 20))
    k_max = fields.Integer(strict=True, load_default=8, validate=validate.Range(2, 20))

    @validates_schema
    def _range(self, data, **_):
        if data.get("k_min") and data.get("k_max") and data["k_max"] < data["k_min"]:
            raise ValidationError("must not be below k_min", "k_max")


period_filters = PeriodFilters()
trend_filters = TrendFilters()
rfm_filters = RfmFilters()
clv_filters = ClvFilters()
warning_filters = WarningFilters()
cluster_request = ClusterRequest()
