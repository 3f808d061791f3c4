"""Value tiers (analytics_service.tiers): key / important / ordinary / small by the 80/20 rule."""
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from analytics_service import tiers
from crm_kit.errors import InvalidInput


def values(mapping):
    return pd.Series(mapping, dtype="int64").rename_axis("customer_id")


def test_hand_case_with_a_customer_exactly_on_a_boundary():
    # positive total = 5000 + 3000 + 1000 + 500 + 300 + 200 = 10,000; boundaries 5000/8000/9500
    #   a  before 0     < 5000 → key   (a alone makes exactly 50 %)
    #   b  before 5000  < 8000 → important
    #   c  before 8000  < 9500 → ordinary
    #   d  before 9000  < 9500 → ordinary
    #   e  before 9500         → small
    #   f  before 9800         → small;  g (0) and h (−100) → small
    result = tiers.assign(values({"h": -100, "g": 0, "f": 200, "e": 300, "d": 500, "c": 1000,
                                  "b": 3000, "a": 5000}))

    assert result.to_dict() == {"a": "key", "b": "important", "c": "ordinary", "d": "ordinary",
                                "e": "small", "f": "small", "g": "small", "h": "small"}
    assert list(result.index) == ["h", "g", "f", "e", "d", "c", "b", "a"]  # input order kept
    assert result.name == "value_tier" and result.index.name == "customer_id"


def test_the_customer_crossing_a_boundary_belongs_to_the_upper_tier():
    # total 10,000: a 0 → 4000 (key); b 4000 → 7000 crosses 50 % → key;
    # c 7000 → 9000 crosses 80 % → important; d 9000 → 10000 crosses 95 % → ordinary
    result = tiers.assign(values({"a": 4000, "b": 3000, "c": 2000, "d": 1000}))

    assert result.tolist() == ["key", "key", "important", "ordinary"]


def test_equal_values_are_ordered_by_customer_id():
    # ten × 100, total 1000: befores 0 … 900 in id order; key < 500 (x0-x4),
    # important < 800 (x5-x7), ordinary < 950 (x8, x9)
    ids = [f"x{i}" for i in range(10)]
    shuffled = values({cid: 100 for cid in reversed(ids)})

    result = tiers.assign(shuffled)

    assert [result[cid] for cid in ids] == ["key"] * 5 + ["important"] * 3 + ["ordinary"] * 2


def test_one_customer():
    assert tiers.assign(values({"a": 1})).to_dict() == {"a": "key"}
    assert tiers.assign(values({"a": -5})).to_dict() == {"a": "small"}


def test_nothing_positive_is_all_small():
    assert set(tiers.assign(values({"a": 0, "b": -80000, "c": 0}))) == {"small"}


def test_empty():
    result = tiers.assign(values({}))

    assert len(result) == 0 and result.name == "value_tier"


def test_missing_values_are_small():
    series = pd.Series({"a": 100, "b": None}, dtype="Int64")

    assert tiers.assign(series).to_dict() == {"a": "key", "b": "small"}


def test_configurable_shares():
    # shares 20 % / 60 % / 100 %, total 1000:
    #   a 400: before 0 < 200 → key;  b 300: 400 < 600 → important;
    #   c 200: 700 < 1000 → ordinary; d 100: 900 < 1000 → ordinary (ordinary 1: no small > 0)
    series = values({"a": 400, "b": 300, "c": 200, "d": 100, "e": 0})

    result = tiers.assign(series, {"key": 0.2, "important": 0.6, "ordinary": 1})

    assert result.tolist() == ["key", "important", "ordinary", "ordinary", "small"]
    assert tiers.assign(series, {"key": "0.2", "important": "0.6",
                                 "ordinary": "1"}).tolist() == result.tolist()


def test_boundaries_are_exact_not_float():
    # 100 customers of 1 c, key share 0.07: exactly 7 customers (befores 0 … 6);
    # in floats 0.07 × 100 = 7.000000000000001 and an 8th would slip in
    assert 0.07 * 100 > 7
    series = values({f"c{i:03d}": 1 for i in range(100)})

    for key in (0.07, "0.07", Decimal("0.07")):
        result = tiers.assign(series, {"key": key, "important": "0.5", "ordinary": "0.9"})
        assert (result == "key").sum() == 7


def test_summary():
    # the hand case: key a 5000; important b 3000; ordinary c + d 1500; small 300 + 200 + 0 − 100
    # = 400; all values 9900 → shares 0.5051, 0.3030, 0.1515, 0.0404
    series = values({"a": 5000, "b": 3000, "c": 1000, "d": 500, "e": 300, "f": 200, "g": 0,
                     "h": -100})

    assert tiers.summary(series, tiers.assign(series)) == {
        "key": {"customers": 1, "value_cents": 5000, "share": 0.5051},
        "important": {"customers": 1, "value_cents": 3000, "share": 0.303},
        "ordinary": {"customers": 2, "value_cents": 1500, "share": 0.1515},
        "small": {"customers": 4, "value_cents": 400, "share": 0.0404},
    }


def test_summary_of_nothing_has_every_tier():
    series = values({"a": 0})

    assert tiers.summary(series, tiers.assign(series)) == {
        tier: {"customers": 1 if tier == "small" else 0, "value_cents": 0, "share": None}
        for tier in tiers.TIERS}


def reference_tiers(mapping, shares):
    """Straight from the rule: walk by value descending (ties by id), Fractions for shares."""
    limits = [Fraction(str(shares[name])) for name in ("key", "important", "ordinary")]
    positive = sorted(((-v, cid) for cid, v in mapping.items() if v > 0))
    total = sum(-v for v, _ in positive)
    result = {cid: "small" for cid in mapping}
    before = 0
    for v, cid in positive:
        for name, limit in zip(tiers.TIERS, limits):
            if before < limit * total:
                result[cid] = name
                break
        before += -v
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_a_reference_on_2000_random_customers(seed):
    rng = np.random.default_rng(seed)
    ids = [f"cust-{i:05d}" for i in rng.permutation(2000)]
    # many ties and some values ≤ 0, like CLV
    raw = np.where(rng.random(2000) < 0.5, rng.choice([-80000, 0, 100000, 350000], 2000),
                   rng.integers(-100000, 10_000_000, 2000))
    mapping = dict(zip(ids, (int(v) for v in raw)))
    shares = {"key": "0.5", "important": "0.8", "ordinary": "0.95"} if seed != 3 else {
        "key": "0.333333", "important": "0.666667", "ordinary": "0.99"}

    result = tiers.assign(values(mapping), shares)

    assert result.to_dict() == reference_tiers(mapping, shares)
    assert set(result) == set(tiers.TIERS)


@pytest.mark.parametrize("shares, field", [
    ({"key": "0.5", "important": "0.5", "ordinary": "0.9"}, "important"),
    ({"key": "0.5", "important": "0.9", "ordinary": "0.8"}, "ordinary"),
    ({"key": "0", "important": "0.8", "ordinary": "0.9"}, "key"),
    ({"key": "0.5", "important": "0.8", "ordinary": "1.5"}, "ordinary"),
    ({"key": "0.5", "important": "0.8"}, "ordinary"),
    ({"key": "0.5", "important": "0.8", "ordinary": "0.9", "vip": "0.1"}, "vip"),
    ({"key": "half", "important": "0.8", "ordinary": "0.9"}, "key"),
    ({"key": True, "important": "0.8", "ordinary": "0.9"}, "key"),
    ({"key": 1 / 3, "important": "0.8", "ordinary": "0.9"}, "key"),
    (["0.5", "0.8", "0.9"], "_schema"),
])
def test_bad_shares_name_the_share(shares, field):
    with pytest.raises(InvalidInput) as raised:
        tiers.assign(values({"a": 1}), shares)

    assert list(raised.value.details) == [field]
