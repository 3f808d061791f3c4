"""RFM: recency, frequency and monetary value per customer from payments, scored 1-5, and named
segments (domain.md, [001] 篇4).

``compute(payments, customer_ids, as_of)`` is pure (no database, no messaging) and vectorised.

Rules
-----
- A payment's *date* is its ``paid_at`` instant as a date in the business's time zone
  (``BUSINESS_TIMEZONE``, Asia/Shanghai: the operator is in Chengdu), so a payment at 23:30 in
  Chengdu counts on that day, not on the UTC day. Payments dated after ``as_of`` are ignored, as
  are payments of customers not in ``customer_ids``.
- ``recency_days`` = ``as_of`` − the date of the last payment, in days (0 = paid on ``as_of``);
  NA for a customer with no payment. ``frequency`` = number of payments, ``monetary_cents`` =
  their sum in integer cents (exact).
- Scores ``r``, ``f``, ``m`` (1-5) are quintiles among the customers *with* payments (NA for the
  others). Each measure ranks the customers in ascending order — R by the date of the last payment
  (more recent = higher), F by ``frequency``, M by ``monetary_cents`` — ties broken by
  ``customer_id`` (the smaller id ranks lower), so every customer has a distinct position ``p``
  (0 … n−1) and the quintiles have equal sizes (± 1 when n is not a multiple of 5). The score is
  the quintile holding the middle of the customer's rank: ``⌊(p + ½) × 5 / n⌋ + 1``. This is the
  usual equal-size quintile split for any n, symmetric (reversing the order turns s into 6 − s), and
  a lone customer scores 3, not 1 or 5.
- ``segment`` is read from R and FM = ⌈(F + M) / 2⌉ (frequency and money weigh the same) in the
  table below, the well-known RFM segment map (R × F grid) with "lost" split off the bottom of
  "hibernating". Customers without payments are ``no_purchase``.

  ====  ==============  ==================  ==================  =========  =========
  R\\FM  1               2                   3                   4          5
  ====  ==============  ==================  ==================  =========  =========
  5     new_customers   potential_loyalist  potential_loyalist  champions  champions
  4     promising       potential_loyalist  potential_loyalist  loyal      loyal
  3     about_to_sleep  about_to_sleep      need_attention      loyal      loyal
  2     hibernating     hibernating         at_risk             at_risk    cant_lose
  1     lost            lost                at_risk             at_risk    cant_lose
  ====  ==============  ==================  ==================  =========  =========
"""
from datetime import date

import numpy as np
import pandas as pd

from analytics_service.clock import BUSINESS_TIMEZONE  # noqa: F401  (clv and callers use rfm's)

NO_PURCHASE = "no_purchase"

#: SEGMENT_TABLE[r][fm] for r, fm in 1..5 (row 0 and column 0 unused)
_ROWS = {
    5: ("new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "lost", "at_risk", "at_risk", "cant_lose"),
}
SEGMENT_TABLE = np.full((6, 6), NO_PURCHASE, dtype=object)
for _r, _row in _ROWS.items():
    SEGMENT_TABLE[_r, 1:] = _row

#: every segment name, best first (for reports and filters)
SEGMENTS = ("champions", "loyal", "potential_loyalist", "new_customers", "promising",
            "need_attention", "about_to_sleep", "at_risk", "cant_lose", "hibernating", "lost",
            NO_PURCHASE)

_EPOCH = np.datetime64("1970-01-01", "D")


def segment_of(r, fm):
    """The segment of one (R, FM) pair of scores 1-5."""
    return SEGMENT_TABLE[r, fm]


def day_number(value, timezone=BUSINESS_TIMEZONE):
    """A date (``date``, ``"YYYY-MM-DD"``, naive or aware datetime/Timestamp) as days since
    1970-01-01. An aware instant is first turned into a date in ``timezone``."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(timezone).tz_localize(None)
    return int((np.datetime64(stamp.date(), "D") - _EPOCH).astype(np.int64))


def local_days(instants, timezone=BUSINESS_TIMEZONE):
    """UTC instants (a Series of aware datetime64; naive values are taken as UTC) → int64 array
    of their dates in ``timezone`` as days since 1970-01-01."""
    instants = pd.to_datetime(instants, utc=True)
    if len(instants) == 0:
        return np.zeros(0, dtype=np.int64)
    local = instants.dt.tz_convert(timezone).dt.tz_localize(None)
    return local.to_numpy().astype("datetime64[D]").astype(np.int64)


def customer_positions(payments, ids, as_day, timezone=BUSINESS_TIMEZONE):
    """The payments that count, as parallel arrays ``(position, day, amount_cents)``:
    ``position`` indexes ``ids`` (payments of other customers and dated after ``as_day`` are
    dropped)."""
    if len(payments) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    position = ids.get_indexer(payments["customer_id"])
    days = local_days(payments["paid_at"], timezone)
    amounts = payments["amount_cents"].to_numpy(dtype=np.int64)
    keep = (position >= 0) & (days <= as_day)
    return position[keep].astype(np.int64), days[keep], amounts[keep]


def id_ranks(ids):
    """Rank of each id in ascending order (0 … n−1): the deterministic tie-break."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = np.arange(len(ids))
    return ranks


def quintiles(values, tie_ranks):
    """Scores 1-5 of ``values`` ranked ascending, ties by ``tie_ranks``: the quintile holding the
    middle of each rank, ⌊(p + ½) × 5 / n⌋ + 1 = ⌊(2p + 1) × 5 / 2n⌋ + 1 (integer arithmetic)."""
    n = len(values)
    order = np.lexsort((tie_ranks, values))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    return (2 * position + 1) * 5 // (2 * n) + 1 if n else position


def compute(payments, customer_ids, as_of, timezone=BUSINESS_TIMEZONE):
    """RFM of every customer of ``customer_ids`` as of the date ``as_of``.

    ``payments``: the frame of ``frames.payments`` (``customer_id``, ``amount_cents``,
    ``paid_at``). Returns a DataFrame indexed by ``customer_id`` (the order of ``customer_ids``,
    duplicates dropped) with columns ``recency_days`` (Int64), ``frequency`` (int64),
    ``monetary_cents`` (int64), ``r``, ``f``, ``m`` (Int64, NA without payments) and ``segment``
    (str). Rules in the module docstring.
    """
    ids = pd.Index(list(customer_ids), name="customer_id").drop_duplicates()
    n = len(ids)
    as_day = day_number(as_of, timezone)
    position, days, amounts = customer_positions(payments, ids, as_day, timezone)

    frequency = np.bincount(position, minlength=n).astype(np.int64)
    monetary = np.zeros(n, dtype=np.int64)
    np.add.at(monetary, position, amounts)
    last_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_day, position, days)

    paid = frequency > 0
    recency = np.zeros(n, dtype=np.int64)
    recency[paid] = as_day - last_day[paid]
    r = np.zeros(n, dtype=np.int64)
    f = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    if paid.any():
        ties = id_ranks(ids[paid])
        r[paid] = quintiles(last_day[paid], ties)
        f[paid] = quintiles(frequency[paid], ties)
        m[paid] = quintiles(monetary[paid], ties)
    fm = (f + m + 1) // 2
    segment = SEGMENT_TABLE[r, fm]  # row/column 0 hold no_purchase

    missing = ~paid
    return pd.DataFrame({
        "recency_days": pd.arrays.IntegerArray(recency, missing.copy()),
        "frequency": frequency,
        "monetary_cents": monetary,
        "r": pd.arrays.IntegerArray(r, missing.copy()),
        "f": pd.arrays.IntegerArray(f, missing.copy()),
        "m": pd.arrays.IntegerArray(m, missing.copy()),
        "segment": pd.array(segment, dtype="str"),
    }, index=ids)


