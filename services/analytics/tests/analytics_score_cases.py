"""Builders of the frames that rfm, clv and tiers read (the ``frames`` contract), without a
database: small hand-written cases and large random ones."""
from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np
import pandas as pd

SHANGHAI_NOON = 4  # 12:00 in Chengdu is 04:00 UTC: the same date in both zones


def instant(value, hour=SHANGHAI_NOON):
    """"YYYY-MM-DD" or a date → an aware UTC instant on that date (noon in Chengdu); an aware
    datetime stays as it is."""
    if isinstance(value, datetime):
        return value
    value = date.fromisoformat(value) if isinstance(value, str) else value
    return datetime(value.year, value.month, value.day, hour, tzinfo=timezone.utc)


def payments_frame(rows):
    """``[(customer_id, "amount", when), ...]`` → the frame of ``frames.payments``."""
    return pd.DataFrame({
        "payment_id": [f"p{i}" for i in range(len(rows))],
        "customer_id": pd.array([row[0] for row in rows], dtype="str"),
        "amount_cents": np.array([int(Decimal(row[1]) * 100) for row in rows], dtype=np.int64),
        "paid_at": pd.to_datetime([instant(row[2]) for row in rows], utc=True),
    })


def customers_frame(ids, churned=None):
    """The frame of ``frames.customers`` (the columns clv reads); ``churned``: id → when."""
    churned = churned or {}
    return pd.DataFrame({
        "customer_id": pd.array(list(ids), dtype="str"),
        "churned_at": pd.to_datetime([instant(churned[i]) if i in churned else None
                                      for i in ids], utc=True),
    })


def random_book(n_customers, n_payments, seed, start="2021-01-01", years=5, churn_share=0.1,
                idle_share=0.05):
    """Random customers and payments: ``(payments, customers)``. About ``idle_share`` of the
    customers never pay; payment instants are spread over ``years`` from ``start`` at any second
    (so some fall near midnight in Chengdu); amounts 0.01 … 8,000.00, many repeated so ties
    happen; about ``churn_share`` of the customers have a ``churned_at``."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:08x}-{seed:04x}-4000-8000-{i * 7919:012x}"
                    for i in rng.permutation(n_customers)], dtype=object)
    payers = max(1, int(n_customers * (1 - idle_share)))
    owner = rng.integers(0, payers, n_payments)
    first = np.datetime64(start, "s").astype(np.int64)
    span = int(years * 365.25 * 86400)
    seconds = first + rng.integers(0, span, n_payments)
    amounts = np.where(rng.random(n_payments) < 0.5,
                       rng.choice([150000, 250000, 300000, 350000], n_payments),
                       rng.integers(1, 800_001, n_payments)).astype(np.int64)
    payments = pd.DataFrame({
        "payment_id": np.arange(n_payments),
        "customer_id": pd.array(ids[owner], dtype="str"),
        "amount_cents": amounts,
        "paid_at": pd.to_datetime(seconds, unit="s", utc=True),
    })
    churn_seconds = first + rng.integers(0, span, n_customers)
    churned = rng.random(n_customers) < churn_share
    customers = pd.DataFrame({
        "customer_id": pd.array(ids, dtype="str"),
        "churned_at": pd.to_datetime(
            np.where(churned, churn_seconds, np.iinfo(np.int64).min).astype("datetime64[s]"),
            utc=True),
    })
    return payments, customers
