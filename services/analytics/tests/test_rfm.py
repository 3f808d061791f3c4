"""RFM (analytics_service.rfm): hand-computed cases, edge cases, a pure-Python reference on random
data, and a timing smoke test at 100,000 customers / 1,000,000 payments."""
import time
from collections import defaultdict
from datetime import date, datetime, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from analytics_fixtures import add_customer, add_payment
from analytics_score_cases import payments_frame, random_book
from analytics_service import clv, frames, rfm, tiers

AS_OF = date(2025, 6, 30)
CHENGDU = ZoneInfo("Asia/Shanghai")

# The hand case, as of 2025-06-30 (c6 never pays):
#   c1  2025-04-30, 05-31, 06-30  × 1000.00   recency 0    frequency 3  monetary 300000
#   c2  2025-06-01  500.00 (+ 2025-07-01, after as_of: ignored)
#                                             recency 29   frequency 1  monetary  50000
#   c3  2024-01-10 … 2024-05-10, 5 × 2000.00  recency 416  frequency 5  monetary 1000000
#       (2024-05-10 → 2025-05-10 = 365 days, → 2025-06-30 = 21 + 30 = 51 more)
#   c4  2025-03-15, 03-16  × 200.00           recency 106  frequency 2  monetary  40000
#       (16 → 31 March = 15, April 30, May 31, June 30)
#   c5  2023-06-30  100.00                    recency 731  frequency 1  monetary  10000
#       (two years, one of them 2024 with 29 February: 365 + 366)
# n = 5, so position p scores ⌊(p + ½)·5/5⌋ + 1 = p + 1.
#   R, by last payment ascending: c5 2023-06-30, c3 2024-05-10, c4, c2, c1  → 1, 2, 3, 4, 5
#   F ascending: c2 = c5 = 1 (tie → id order: c2 then c5), c4 2, c1 3, c3 5 → c2 1, c5 2, c4 3,
#                c1 4, c3 5
#   M ascending: c5 10000, c4 40000, c2 50000, c1 300000, c3 1000000 → 1, 2, 3, 4, 5
#   FM = ⌈(F + M)/2⌉: c1 ⌈8/2⌉ = 4, c2 ⌈4/2⌉ = 2, c3 5, c4 ⌈5/2⌉ = 3, c5 ⌈3/2⌉ = 2
#   segments: c1 R5 FM4 champions, c2 R4 FM2 potential_loyalist, c3 R2 FM5 cant_lose,
#             c4 R3 FM3 need_attention, c5 R1 FM2 lost, c6 no_purchase
HAND_PAYMENTS = [
    ("c1", "1000.00", "2025-04-30"), ("c1", "1000.00", "2025-05-31"),
    ("c1", "1000.00", "2025-06-30"),
    ("c2", "500.00", "2025-06-01"), ("c2", "9999.00", "2025-07-01"),
    *[("c3", "2000.00", f"2024-0{month}-10") for month in range(1, 6)],
    ("c4", "200.00", "2025-03-15"), ("c4", "200.00", "2025-03-16"),
    ("c5", "100.00", "2023-06-30"),
    ("stranger", "50000.00", "2025-06-29"),  # not among the customers: ignored
]
HAND_EXPECTED = {
    # id: (recency_days, frequency, monetary_cents, r, f, m, segment)
    "c1": (0, 3, 300000, 5, 4, 4, "champions"),
    "c2": (29, 1, 50000, 4, 1, 3, "potential_loyalist"),
    "c3": (416, 5, 1000000, 2, 5, 5, "cant_lose"),
    "c4": (106, 2, 40000, 3, 3, 2, "need_attention"),
    "c5": (731, 1, 10000, 1, 2, 1, "lost"),
    "c6": (None, 0, 0, None, None, None, "no_purchase"),
}
COLUMNS = ["recency_days", "frequency", "monetary_cents", "r", "f", "m", "segment"]


def as_rows(result):
    """The result as {id: tuple} with None for NA, for plain comparisons."""
    return {cid: tuple(None if pd.isna(value) else value for value in row)
            for cid, row in zip(result.index, result[COLUMNS].itertuples(index=False))}


def test_hand_case():
    result = rfm.compute(payments_frame(HAND_PAYMENTS), list(HAND_EXPECTED), AS_OF)

    assert as_rows(result) == HAND_EXPECTED
    assert list(result.index) == list(HAND_EXPECTED)
    assert result.index.name == "customer_id"


def test_hand_case_from_the_store(session):
    """The same case written into the store and read back through ``frames``: the contract the
    recompute uses."""
    for cid in HAND_EXPECTED:
        add_customer(session, cid)
    for cid, amount, when in HAND_PAYMENTS:
        if cid != "stranger":
            add_payment(session, cid, amount, when)  # at 12:00 UTC = 20:00 in Chengdu

    customers = frames.customers(session)
    result = rfm.compute(frames.payments(session), customers["customer_id"], AS_OF)

    assert as_rows(result) == HAND_EXPECTED


def test_columns_and_types():
    result = rfm.compute(payments_frame(HAND_PAYMENTS), list(HAND_EXPECTED), AS_OF)

    assert list(result.columns) == COLUMNS
    assert {column: str(result[column].dtype) for column in COLUMNS} == {
        "recency_days": "Int64", "frequency": "int64", "monetary_cents": "int64",
        "r": "Int64", "f": "Int64", "m": "Int64", "segment": "str"}


def test_no_payments_at_all():
    result = rfm.compute(payments_frame([]), ["a", "b"], AS_OF)

    assert as_rows(result) == {"a": (None, 0, 0, None, None, None, "no_purchase"),
                               "b": (None, 0, 0, None, None, None, "no_purchase")}
    assert str(result["r"].dtype) == "Int64"


def test_no_customers():
    result = rfm.compute(payments_frame(HAND_PAYMENTS), [], AS_OF)

    assert len(result) == 0 and list(result.columns) == COLUMNS


def test_one_customer_scores_in_the_middle():
    # n = 1: ⌊(0 + ½)·5/1⌋ + 1 = 3 for R, F and M; FM 3 → need_attention
    result = rfm.compute(payments_frame([("a", "3000.00", "2025-06-01")]), ["a"], AS_OF)

    assert as_rows(result) == {"a": (29, 1, 300000, 3, 3, 3, "need_attention")}


def test_all_equal_values_split_by_customer_id():
    # ten customers, the same payment: every measure ties, so the id order decides and each
    # quintile holds two: ⌊(p + ½)/2⌋ + 1 → p 0,1 → 1; 2,3 → 2; … 8,9 → 5
    ids = [f"k{i}" for i in range(10)]
    payments = payments_frame([(cid, "100.00", "2025-06-01") for cid in reversed(ids)])

    result = rfm.compute(payments, ids, AS_OF)

    expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert result["r"].tolist() == expected
    assert result["f"].tolist() == expected
    assert result["m"].tolist() == expected
    # FM = R here: 1 → lost, 2 → hibernating, 3 → need_attention, 4 → loyal, 5 → champions
    assert result["segment"].tolist() == ["lost", "lost", "hibernating", "hibernating",
                                          "need_attention", "need_attention", "loyal",
                                          "loyal", "champions", "champions"]


@pytest.mark.parametrize("n", [2, 3, 4, 6, 7, 11, 99, 1000, 1003])
def test_quintiles_have_equal_sizes_and_are_symmetric(n):
    ids = [f"id{i:05d}" for i in range(n)]
    payments = payments_frame([(cid, f"{i + 1}.00", "2025-01-01") for i, cid in enumerate(ids)])

    m = rfm.compute(payments, ids, AS_OF)["m"].to_numpy(dtype=int)

    sizes = np.bincount(m, minlength=6)[1:]
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == n
    assert list(m) == sorted(m)
    assert list(6 - m[::-1]) == list(m)  # reversing the order turns s into 6 − s


def test_payments_after_as_of_are_ignored():
    payments = payments_frame([("a", "100.00", "2025-06-30"), ("a", "900.00", "2025-07-01"),
                               ("b", "700.00", "2025-07-15")])

    result = rfm.compute(payments, ["a", "b"], AS_OF)

    assert as_rows(result)["a"][:3] == (0, 1, 10000)
    assert as_rows(result)["b"] == (None, 0, 0, None, None, None, "no_purchase")


def test_a_payments_date_is_its_date_in_chengdu():
    # 2025-06-30T15:59Z is 23:59 on the 30th in Chengdu: counts, paid on as_of;
    # 2025-06-30T16:30Z is 00:30 on 1 July in Chengdu: after as_of, ignored
    payments = payments_frame([
        ("a", "100.00", datetime(2025, 6, 30, 15, 59, tzinfo=timezone.utc)),
        ("b", "100.00", datetime(2025, 6, 30, 16, 30, tzinfo=timezone.utc)),
        ("c", "100.00", datetime(2025, 6, 29, 16, 0, tzinfo=timezone.utc))])  # 30th 00:00

    chengdu = as_rows(rfm.compute(payments, ["a", "b", "c"], AS_OF))
    utc = as_rows(rfm.compute(payments, ["a", "b", "c"], AS_OF, timezone="UTC"))

    assert (chengdu["a"][0], chengdu["b"][0], chengdu["c"][0]) == (0, None, 0)
    assert (utc["a"][0], utc["b"][0], utc["c"][0]) == (0, 0, 1)


def test_leap_day():
    # 2024 is a leap year: 28 Feb → 1 March 2024 is 2 days, 29 Feb → 1 March is 1
    payments = payments_frame([("a", "100.00", "2024-02-28"), ("b", "100.00", "2024-02-29")])

    result = rfm.compute(payments, ["a", "b"], date(2024, 3, 1))

    assert result["recency_days"].tolist() == [2, 1]
    assert rfm.compute(payments, ["b"], "2025-02-28")["recency_days"].tolist() == [365]


def test_as_of_forms():
    payments = payments_frame([("a", "100.00", "2025-06-01")])
    forms = [AS_OF, "2025-06-30", datetime(2025, 6, 30, 10, 0), pd.Timestamp("2025-06-30"),
             datetime(2025, 6, 30, 15, 0, tzinfo=timezone.utc)]  # 23:00 in Chengdu

    assert {rfm.compute(payments, ["a"], when)["recency_days"].iloc[0] for when in forms} == {29}


def test_duplicate_ids_keep_their_first_place():
    result = rfm.compute(payments_frame(HAND_PAYMENTS), ["c3", "c1", "c3", "c6"], AS_OF)

    assert list(result.index) == ["c3", "c1", "c6"]
    # scores are among these two payers only: R c3 1 → 2, c1 → 4 (n = 2: ⌊(p + ½)·5/2⌋ + 1)
    assert result["r"].tolist()[:2] == [2, 4]


def test_every_cell_of_the_segment_table():
    table = {  # the module docstring's table, row by row (R = 5 … 1, FM = 1 … 5)
        5: "new_customers potential_loyalist potential_loyalist champions champions",
        4: "promising potential_loyalist potential_loyalist loyal loyal",
        3: "about_to_sleep about_to_sleep need_attention loyal loyal",
        2: "hibernating hibernating at_risk at_risk cant_lose",
        1: "lost lost at_risk at_risk cant_lose",
    }
    for r, row in table.items():
        assert [rfm.segment_of(r, fm) for fm in range(1, 6)] == row.split()
    used = {rfm.segment_of(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert used | {"no_purchase"} == set(rfm.SEGMENTS)


# -- a straightforward pure-Python reference ----------------------------------------------------
def reference_segment(r, fm):
    if r == 5 and fm >= 4:
        return "champions"
    if r in (3, 4) and fm >= 4:
        return "loyal"
    if r in (4, 5) and fm in (2, 3):
        return "potential_loyalist"
    if r == 5:
        return "new_customers"
    if r == 4:
        return "promising"
    if r == 3:
        return "need_attention" if fm == 3 else "about_to_sleep"
    if fm == 5:
        return "cant_lose"
    if fm >= 3:
        return "at_risk"
    return "hibernating" if r == 2 else "lost"


def reference_rfm(payments, customer_ids, as_of):
    ids = list(dict.fromkeys(customer_ids))
    known = set(ids)
    count, total, last = defaultdict(int), defaultdict(int), {}
    for cid, cents, paid_at in zip(payments["customer_id"], payments["amount_cents"],
                                   payments["paid_at"]):
        day = paid_at.to_pydatetime().astimezone(CHENGDU).date()
        if cid not in known or day > as_of:
            continue
        count[cid] += 1
        total[cid] += int(cents)
        last[cid] = max(last.get(cid, day), day)
    payers = [cid for cid in ids if count[cid]]

    def scores(measure):
        ranked = sorted(payers, key=lambda cid: (measure(cid), cid))
        n = len(ranked)
        return {cid: int(Fraction(2 * p + 1, 2 * n) * 5) + 1 for p, cid in enumerate(ranked)}

    r, f, m = scores(lambda c: last[c]), scores(lambda c: count[c]), scores(lambda c: total[c])
    result = {}
    for cid in ids:
        if not count[cid]:
            result[cid] = (None, 0, 0, None, None, None, "no_purchase")
            continue
        fm = -(-(f[cid] + m[cid]) // 2)
        result[cid] = ((as_of - last[cid]).days, count[cid], total[cid], r[cid], f[cid], m[cid],
                       reference_segment(r[cid], fm))
    return result


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_a_pure_python_reference_on_2000_random_customers(seed):
    payments, customers = random_book(2000, 20000, seed)
    ids = list(customers["customer_id"])[:1900]  # some payers are not asked for: ignored
    as_of = date(2024, 9, 15)  # about a third of the payments are later: ignored

    result = rfm.compute(payments, ids, as_of)

    expected = reference_rfm(payments, ids, as_of)
    assert as_rows(result) == expected
    assert {segment for segment in result["segment"]} >= {"champions", "lost", "no_purchase"}


def test_scale_smoke_100k_customers_1m_payments(capsys):
    """Not a benchmark: prints how long RFM, CLV and tiers take at the target size (the whole
    recompute must stay within 30 s)."""
    started = time.perf_counter()
    payments, customers = random_book(100_000, 1_000_000, seed=42)
    generated = time.perf_counter()
    scores = rfm.compute(payments, customers["customer_id"], date(2025, 12, 31))
    scored = time.perf_counter()
    values = clv.compute(payments, customers, None, date(2025, 12, 31))
    valued = time.perf_counter()
    tier = tiers.assign(values)
    tiers.summary(values, tier)
    tiered = time.perf_counter()

    with capsys.disabled():
        print(f"\n100k customers / 1M payments: generate {generated - started:.2f} s, "
              f"rfm {scored - generated:.2f} s, clv {valued - scored:.2f} s, "
              f"tiers {tiered - valued:.2f} s")
    assert len(scores) == len(values) == len(tier) == 100_000
