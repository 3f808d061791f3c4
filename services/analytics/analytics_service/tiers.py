"""Value tiers (domain.md, [001] 篇1): key / important / ordinary / small (大客户/重要/普通/小客户),
following the 80/20 rule.

Rules
-----
- Customers are sorted by value (CLV in cents) descending, ties by ``customer_id`` ascending, and
  walked while adding up their value. With ``total`` = the sum of the positive values and
  ``before`` = the value of the customers ahead of one in that order, a customer is
  ``key`` if before < key share × total, else ``important`` if before < important share × total,
  else ``ordinary`` if before < ordinary share × total, else ``small``. So ``key`` are the fewest
  customers that make up the first 50% of the value, and the customer that crosses a boundary
  belongs to the upper tier.
- Every customer with a value ≤ 0 (or missing) is ``small``; with no positive value at all,
  everyone is ``small``.
- Shares (default ``DEFAULT_SHARES``): key 0.50, important 0.80, ordinary 0.95 — cumulative shares
  of the total value, 0 < key < important < ordinary ≤ 1; with ordinary 1, only customers with
  value ≤ 0 are small. Comparisons are exact (fractions on integer cents, no float rounding at the
  boundaries).
"""
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np
import pandas as pd

from crm_kit.errors import InvalidInput

TIERS = ("key", "important", "ordinary", "small")
BOUNDED = TIERS[:3]  # the tiers with an upper cumulative share
DEFAULT_SHARES_TEXT = {"key": "0.5", "important": "0.8", "ordinary": "0.95"}
DEFAULT_SHARES = {tier: Decimal(text) for tier, text in DEFAULT_SHARES_TEXT.items()}


def _share(value):
    """One share as a Decimal: a decimal string, Decimal, int, or a float (internal callers)."""
    if isinstance(value, bool) or not isinstance(value, (str, Decimal, int, float)):
        raise ValueError
    share = Decimal(str(value).strip())
    if not share.is_finite() or share.as_tuple().exponent < -6:
        raise ValueError
    return share


def check_shares(shares):
    """``{key, important, ordinary}`` → the same with Decimal values, or ``InvalidInput`` naming
    the bad key: each a number 0…1 with at most 6 decimals, 0 < key < important < ordinary ≤ 1."""
    if not isinstance(shares, dict):
        raise InvalidInput({"_schema": ["must be an object {key, important, ordinary}"]})
    errors = {}
    unknown = set(shares) - set(BOUNDED)
    for name in sorted(unknown):
        errors[name] = ["unknown tier (key, important, ordinary)"]
    checked = {}
    for name in BOUNDED:
        if name not in shares:
            errors[name] = ["missing"]
            continue
        try:
            checked[name] = _share(shares[name])
        except (ValueError, InvalidOperation):
            errors[name] = ["must be a decimal like \"0.80\" (at most 6 decimals)"]
            continue
        if not Decimal(0) < checked[name] <= Decimal(1):
            errors[name] = ["must be more than 0 and at most 1"]
    if not errors:
        if not checked["key"] < checked["important"]:
            errors["important"] = ["must be more than key"]
        if not checked["important"] < checked["ordinary"]:
            errors["ordinary"] = ["must be more than important"]
    if errors:
        raise InvalidInput(errors)
    return checked


def shares_text(shares):
    """Checked shares → their stored form, decimal strings."""
    return {name: str(shares[name]) for name in BOUNDED}


def assign(values_cents, shares=None):
    """Series ``customer_id`` → tier (``key``/``important``/``ordinary``/``small``, name
    ``value_tier``, same index and order as ``values_cents``, a Series of integer cents).
    ``shares``: ``{"key": 0.5, "important": 0.8, "ordinary": 0.95}`` (decimal strings too);
    ``None`` = ``DEFAULT_SHARES``. Rules in the module docstring."""
    limits = check_shares(DEFAULT_SHARES if shares is None else shares)
    index = values_cents.index
    numeric = pd.to_numeric(values_cents, errors="coerce")
    positive = (numeric > 0).fillna(False).to_numpy(dtype=bool)
    values = np.where(positive, numeric.fillna(0).to_numpy(), 0).astype(np.int64)

    tier_number = np.full(len(values), len(TIERS) - 1, dtype=np.int64)  # small
    chosen = np.flatnonzero(positive)
    if len(chosen):
        ids = np.asarray(index[chosen], dtype=object)
        id_rank = np.empty(len(ids), dtype=np.int64)
        id_rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
        order = np.lexsort((id_rank, -values[chosen]))
        sorted_values = values[chosen][order]
        before = np.cumsum(sorted_values) - sorted_values
        total = int(sorted_values.sum())
        # before < share × total ⇔ before < ⌈share × total⌉ (before is an integer)
        ceilings = [-((-Fraction(limits[name]) * total) // 1) for name in BOUNDED]
        number = np.searchsorted(np.asarray(ceilings, dtype=np.int64), before, side="right")
        tier_number[chosen[order]] = number
    return pd.Series(np.asarray(TIERS, dtype=object)[tier_number], index=index,
                     name="value_tier", dtype="str")


def summary(values, tiers):
    """``{tier: {customers, value_cents, share}}`` for every tier (in ``TIERS`` order, also
    empty ones): ``share`` = the tier's value / the sum of all values, rounded to 4 places
    (``None`` when that sum is ≤ 0). ``values`` and ``tiers`` are Series on the same index."""
    frame = pd.DataFrame({"value": pd.to_numeric(values).fillna(0).astype(np.int64),
                          "tier": tiers.reindex(values.index)})
    total = int(frame["value"].sum())
    grouped = frame.groupby("tier")["value"].agg(["size", "sum"])
    result = {}
    for tier in TIERS:
        customers = int(grouped["size"].get(tier, 0))
        value = int(grouped["sum"].get(tier, 0))
        result[tier] = {"customers": customers, "value_cents": value,
                        "share": round(value / total, 4) if total > 0 else None}
    return result
