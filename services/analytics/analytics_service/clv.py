"""Customer lifetime value (domain.md, [001] 篇2): V = (P0 − C0) + Σ_{t=1..N} R / (1 + r)^t.

``compute(payments, customers, parameters, as_of)`` is pure (no database, no messaging).

Decisions
---------
- Payment dates, ``as_of`` and "12 months" follow ``rfm``: a payment's date is its date in
  ``BUSINESS_TIMEZONE`` (Asia/Shanghai); payments dated after ``as_of`` are ignored. "One year
  after day d" is the same day a year later, 29 February → 28 February.
- **P0, the first purchase**: what the customer paid in their first 12 months, from the date of
  their first payment d0 to the day before its anniversary ([d0, d0 + 1 year), cut at ``as_of``).
  A long-term tenant's "purchase" is a year of rent, not a single bill.
- **C0, the acquisition cost**: ``acquisition_cost`` (default 800.00), the same for every customer.
- **R, the expected yearly revenue**: what the customer paid in the 12 months up to ``as_of``
  ((as_of − 1 year, as_of]) if the relationship is active, else 0. Active = at least one payment in
  those 12 months and not churned since: a customer whose churn was confirmed (``churned_at``, its
  local date ≤ ``as_of``) on or after their last payment has R = 0; a payment after the churn date
  means they came back. So a customer with no payment for more than 12 months has R = 0 and
  V = P0 − C0. R is not annualised: a customer in their first year has R = P0 (what they paid so
  far), which never inflates a one-month payer to a year's worth.
- **r** = ``discount_rate`` (default 0.08, the cost of capital), **N** = ``horizon_years``
  (default 3).
- **A customer with no payment** (a lead) has V = 0, not −C0: the acquisition cost is spent on
  customers who were acquired, and a lead worth −800 would drag every total down.
- Exact: Σ 1/(1+r)^t is one exact fraction a/b (``fractions.Fraction`` from the decimal strings);
  each customer's V = ((P0 − C0)·b + R·a) / b in integer cents is rounded once, half-up (away from
  zero, as ``decimal.ROUND_HALF_UP``), to the cent. Result: int64 cents.

Parameters (``check_parameters``): decimal strings for money and rates, never floats —
``acquisition_cost`` money ≥ 0 (string or integer, at most two decimals), ``discount_rate`` 0…1
(string, at most 6 decimals), ``horizon_years`` integer 1…30, ``tier_shares`` the value-tier
boundaries (``tiers.check_shares``), all stored together (Setting "clv_parameters").
"""
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np
import pandas as pd
from marshmallow import ValidationError, fields, validate

from analytics_service import rfm, tiers
from crm_kit.errors import InvalidInput
from crm_kit.validation import MoneyField, StrictSchema, load

DEFAULT_PARAMETERS = {
    "acquisition_cost": "800.00",
    "discount_rate": "0.08",
    "horizon_years": 3,
    "tier_shares": dict(tiers.DEFAULT_SHARES_TEXT),
}

MAX_HORIZON_YEARS = 30


class RateField(fields.Field):
    """A rate 0…1 as a decimal string (at most 6 decimals); floats are refused."""

    default_error_messages = {
        "invalid": "must be a decimal string like \"0.08\" (at most 6 decimals)",
        "range": "must be between 0 and 1",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (str, Decimal)):
            raise self.make_error("invalid")
        try:
            rate = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.make_error("invalid") from None
        if not rate.is_finite() or rate.as_tuple().exponent < -6:
            raise self.make_error("invalid")
        if not Decimal("0") <= rate <= Decimal("1"):
            raise self.make_error("range")
        return rate


class SharesField(fields.Field):
    """The value-tier boundaries ``{key, important, ordinary}`` (``tiers.check_shares``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return tiers.check_shares(value)
        except InvalidInput as exc:
            raise ValidationError(exc.details) from None


class YearsField(fields.Integer):
    """A whole number of years: an integer, not a string, float or boolean."""

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class ParametersSchema(StrictSchema):
    acquisition_cost = MoneyField(required=True)
    discount_rate = RateField(required=True)
    horizon_years = YearsField(
        required=True, strict=True,
        validate=validate.Range(1, MAX_HORIZON_YEARS,
                                error=f"must be a whole number of years 1…{MAX_HORIZON_YEARS}"))
    tier_shares = SharesField(required=True)


parameters_schema = ParametersSchema()


def check_parameters(data, base=None):
    """``base`` (default ``DEFAULT_PARAMETERS``) updated with ``data``, validated: the stored,
    JSON-ready form ``{acquisition_cost: "800.00", discount_rate: "0.08", horizon_years: 3,
    tier_shares: {key: "0.5", important: "0.8", ordinary: "0.95"}}``. A partial ``data`` keeps
    the other values of ``base``. Raises ``InvalidInput`` naming each bad field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput({"_schema": ["must be an object"]})
    merged = dict(DEFAULT_PARAMETERS if base is None else base)
    merged.update(data)
    loaded = load(parameters_schema, merged)
    return {"acquisition_cost": f"{loaded['acquisition_cost']:.2f}",
            "discount_rate": str(loaded["discount_rate"]),
            "horizon_years": loaded["horizon_years"],
            "tier_shares": tiers.shares_text(loaded["tier_shares"])}


def annuity_factor(discount_rate, horizon_years):
    """Σ_{t=1..N} 1 / (1 + r)^t as an exact Fraction."""
    growth = 1 + Fraction(Decimal(str(discount_rate)))
    return sum((1 / growth ** t for t in range(1, int(horizon_years) + 1)), Fraction(0))


def _anniversaries(days):
    """Days since 1970-01-01 → the same day one year later (29 Feb → 28 Feb)."""
    if len(days) == 0:
        return days
    stamps = pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[s]"))
    later = stamps + pd.DateOffset(years=1)
    return later.to_numpy().astype("datetime64[D]").astype(np.int64)


def _churn_days(customers, ids, timezone):
    """Local date (days) of ``churned_at`` per id; a huge number where there is none."""
    never = np.iinfo(np.int64).max
    result = np.full(len(ids), never, dtype=np.int64)
    if "churned_at" not in customers.columns or len(customers) == 0:
        return result
    churned = customers[["customer_id", "churned_at"]].dropna()
    if len(churned):
        position = ids.get_indexer(churned["customer_id"])
        days = rfm.local_days(churned["churned_at"], timezone)
        keep = position >= 0
        result[position[keep]] = days[keep]
    return result


def _round_half_up(numerator, denominator):
    """The exact ``numerator / denominator`` (Python ints, denominator > 0) → the nearest
    integer, halves away from zero (``decimal.ROUND_HALF_UP``)."""
    whole = (2 * abs(numerator) + denominator) // (2 * denominator)
    return whole if numerator >= 0 else -whole


def _year_before(as_of, timezone):
    """The date one year before ``as_of`` (29 Feb → 28 Feb)."""
    as_day = rfm.day_number(as_of, timezone)
    return (pd.Timestamp(np.datetime64(as_day, "D")) - pd.DateOffset(years=1)).date()


def components(payments, customers, parameters, as_of, timezone=rfm.BUSINESS_TIMEZONE):
    """The CLV of every customer with its parts: DataFrame indexed by ``customer_id`` (the order
    of ``customers``) with ``first_year_cents`` (P0), ``last_year_cents`` (paid in the 12 months
    up to ``as_of``), ``active`` (bool), ``yearly_cents`` (R: last_year_cents if active else 0)
    and ``clv_cents``, the amounts int64 cents."""
    params = check_parameters(parameters)
    ids = pd.Index(list(customers["customer_id"]), name="customer_id").drop_duplicates()
    n = len(ids)
    as_day = rfm.day_number(as_of, timezone)
    position, days, amounts = rfm.customer_positions(payments, ids, as_day, timezone)

    first_day = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_day, position, days)
    last_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_day, position, days)
    paid = np.bincount(position, minlength=n) > 0

    anniversary = np.zeros(n, dtype=np.int64)
    anniversary[paid] = _anniversaries(first_day[paid])
    first_year = np.zeros(n, dtype=np.int64)
    in_first = days < anniversary[position]
    np.add.at(first_year, position[in_first], amounts[in_first])

    year_ago = rfm.day_number(_year_before(as_of, timezone))
    last_year = np.zeros(n, dtype=np.int64)
    in_last = days > year_ago
    np.add.at(last_year, position[in_last], amounts[in_last])

    churn_day = _churn_days(customers, ids, timezone)
    active = (last_day > year_ago) & ~((churn_day <= as_day) & (churn_day >= last_day))
    yearly = np.where(active, last_year, 0).astype(np.int64)

    acquisition = int(Decimal(params["acquisition_cost"]) * 100)
    factor = annuity_factor(params["discount_rate"], params["horizon_years"])
    a, b = factor.numerator, factor.denominator
    base = first_year - acquisition  # P0 − C0 in cents (int64)
    # V = ((P0 − C0)·b + R·a) / b, rounded once; customers share (P0 − C0, R) pairs often
    # (the same rent), so each pair is computed once
    rounded = {}
    for k, y in zip(base[paid].tolist(), yearly[paid].tolist()):
        if (k, y) not in rounded:
            rounded[k, y] = _round_half_up(k * b + y * a, b)
    clv = np.zeros(n, dtype=np.int64)
    clv[paid] = [rounded[k, y] for k, y in zip(base[paid].tolist(), yearly[paid].tolist())]

    return pd.DataFrame({"first_year_cents": first_year, "last_year_cents": last_year,
                         "active": active, "yearly_cents": yearly, "clv_cents": clv},
                        index=ids)


def compute(payments, customers, parameters, as_of, timezone=rfm.BUSINESS_TIMEZONE):
    """Series ``customer_id`` → CLV in int64 cents (name ``clv_cents``), every customer of
    ``customers`` (the frame of ``frames.customers``: ``customer_id``, ``churned_at``).
    ``parameters`` as stored (``check_parameters``; None or missing keys take
    ``DEFAULT_PARAMETERS``)."""
    return components(payments, customers, parameters, as_of, timezone)["clv_cents"]
