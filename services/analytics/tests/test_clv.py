"""CLV (analytics_service.clv): V = (P0 − C0) + Σ_{t=1..N} R / (1 + r)^t, exact to the cent."""
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from analytics_fixtures import add_customer, add_payment
from analytics_score_cases import customers_frame, payments_frame, random_book
from analytics_service import clv, frames
from crm_kit.errors import InvalidInput

AS_OF = date(2025, 6, 30)
CHENGDU = ZoneInfo("Asia/Shanghai")


def monthly(cid, amount, first_month, months):
    """``months`` payments of ``amount`` on the 1st of each month from "YYYY-MM"."""
    year, month = map(int, first_month.split("-"))
    rows = []
    for _ in range(months):
        rows.append((cid, amount, f"{year:04d}-{month:02d}-01"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return rows


# A tenant paying 3000.00 on the 1st of every month, 2023-07 … 2025-06 (24 payments), as of
# 2025-06-30, default parameters (C0 800.00, r 0.08, N 3):
#   P0 = the 12 payments 2023-07-01 … 2024-06-01 (before 2024-07-01)  = 36000.00 = 3,600,000 c
#   R  = the 12 payments in (2024-06-30, 2025-06-30]                  = 36000.00 = 3,600,000 c
#   Σ 1/1.08^t = 25/27 + 625/729 + 15625/19683 = (18225 + 16875 + 15625)/19683 = 50725/19683
#   R × 50725/19683 = 182,610,000,000 / 19683 = 9,277,549 + 3033/19683 (0.154…)
#   V = 3,600,000 − 80,000 + 9,277,549.154… = 12,797,549.154… → 12,797,549 c = 127,975.49
TENANT = monthly("tenant", "3000.00", "2023-07", 24)
TENANT_CLV = 12_797_549


def test_hand_case_default_parameters():
    result = clv.compute(payments_frame(TENANT), customers_frame(["tenant"]), None, AS_OF)

    assert result.to_dict() == {"tenant": TENANT_CLV}
    assert result.dtype == "int64" and result.name == "clv_cents"
    assert result.index.name == "customer_id"


def test_hand_case_from_the_store(session):
    add_customer(session, "tenant")
    add_customer(session, "lead")
    for cid, amount, when in TENANT:
        add_payment(session, cid, amount, when)

    result = clv.compute(frames.payments(session), frames.customers(session),
                         clv.DEFAULT_PARAMETERS, AS_OF)

    assert result.to_dict() == {"tenant": TENANT_CLV, "lead": 0}


def test_components():
    parts = clv.components(payments_frame(TENANT), customers_frame(["tenant"]), None, AS_OF)

    assert parts.loc["tenant"].to_dict() == {
        "first_year_cents": 3_600_000, "last_year_cents": 3_600_000, "active": True,
        "yearly_cents": 3_600_000, "clv_cents": TENANT_CLV}


def test_other_parameters():
    # r 0.1, N 2: 1/1.1 + 1/1.21 = 110/121 + 100/121 = 210/121; C0 1000.00
    # one payment of 12100.00 on 2025-01-01: P0 = R = 1,210,000 c
    # V = 1,210,000 − 100,000 + 1,210,000 × 210/121 = 1,110,000 + 2,100,000 = 3,210,000
    parameters = {"acquisition_cost": "1000.00", "discount_rate": "0.1", "horizon_years": 2}
    payments = payments_frame([("a", "12100.00", "2025-01-01")])

    assert clv.compute(payments, customers_frame(["a"]), parameters, AS_OF)["a"] == 3_210_000


def test_negative_when_the_first_year_is_below_the_acquisition_cost_and_no_revenue_since():
    # one payment of 500.00 on 2023-01-10, nothing in the last 12 months: R = 0
    # V = 50,000 − 80,000 = −30,000 c (−300.00)
    payments = payments_frame([("a", "500.00", "2023-01-10")])

    parts = clv.components(payments, customers_frame(["a"]), None, AS_OF)

    assert parts.loc["a", "yearly_cents"] == 0 and not parts.loc["a", "active"]
    assert parts.loc["a", "clv_cents"] == -30_000


def test_a_customer_without_payments_is_worth_nothing():
    payments = payments_frame([("a", "500.00", "2025-07-10")])  # after as_of only

    result = clv.compute(payments, customers_frame(["a", "b"]), None, AS_OF)

    assert result.to_dict() == {"a": 0, "b": 0}


def test_no_payments_and_no_customers():
    assert clv.compute(payments_frame([]), customers_frame(["a"]), None, AS_OF).to_dict() == {
        "a": 0}
    assert len(clv.compute(payments_frame(TENANT), customers_frame([]), None, AS_OF)) == 0


def test_payments_after_as_of_are_ignored():
    later = TENANT + [("tenant", "99999.00", "2025-07-01"), ("tenant", "1.00", "2026-01-01")]

    result = clv.compute(payments_frame(later), customers_frame(["tenant"]), None, AS_OF)

    assert result["tenant"] == TENANT_CLV


def test_the_last_12_months_end_on_as_of():
    # as of 2025-06-01 the window is (2024-06-01, 2025-06-01]: 2024-07-01 … 2025-06-01, still 12
    # as of 2025-05-31 it is (2024-05-31, 2025-05-31]: 2024-06-01 … 2025-05-01, also 12;
    # P0 is cut at as_of too, so both equal the full case
    for as_of in (date(2025, 6, 1), date(2025, 5, 31)):
        parts = clv.components(payments_frame(TENANT), customers_frame(["tenant"]), None, as_of)
        assert parts.loc["tenant", "last_year_cents"] == 3_600_000


def test_a_customer_in_their_first_year():
    # paid 3 months so far: P0 = R = 9000.00 (R is not annualised)
    # V = 900,000 − 80,000 + 900,000 × 50725/19683 = 820,000 + 2,319,387.288… → 3,139,387
    payments = payments_frame(monthly("new", "3000.00", "2025-04", 3))

    parts = clv.components(payments, customers_frame(["new"]), None, AS_OF)

    assert parts.loc["new", "first_year_cents"] == parts.loc["new", "yearly_cents"] == 900_000
    assert parts.loc["new", "clv_cents"] == 3_139_387


def test_churn_confirmed_after_the_last_payment_stops_future_revenue():
    # churned 2025-06-15 after the last payment (2025-06-01): R = 0, V = P0 − C0 = 3,520,000
    # another one churned 2024-12-20 but paid again in 2025: back, R counts
    churned = {"tenant": "2025-06-15", "back": "2024-12-20"}
    payments = payments_frame(TENANT + monthly("back", "3000.00", "2024-07", 12))
    customers = customers_frame(["tenant", "back", "later"], churned={**churned,
                                                                       "later": "2025-07-15"})

    result = clv.compute(payments, customers, None, AS_OF)

    assert result["tenant"] == 3_520_000
    # back: P0 = R = 3,600,000 → same as the tenant's full case
    assert result["back"] == TENANT_CLV
    assert result["later"] == 0  # no payments; churned after as_of anyway


def test_churned_after_as_of_is_still_active():
    customers = customers_frame(["tenant"], churned={"tenant": "2025-07-01"})

    assert clv.compute(payments_frame(TENANT), customers, None, AS_OF)["tenant"] == TENANT_CLV


def test_leap_day_first_payment():
    # first payment 2024-02-29: the first year runs to 2025-02-28 (29 Feb → 28 Feb), exclusive:
    # 2025-02-27 is in P0, 2025-02-28 is not
    payments = payments_frame([("a", "100.00", "2024-02-29"), ("a", "10.00", "2025-02-27"),
                               ("a", "1.00", "2025-02-28")])

    parts = clv.components(payments, customers_frame(["a"]), None, date(2025, 3, 1))

    assert parts.loc["a", "first_year_cents"] == 11_000
    # the last year as of 2025-03-01 is (2024-03-01, 2025-03-01]: not 2024-02-29
    assert parts.loc["a", "last_year_cents"] == 1_100


def test_leap_day_as_of():
    # as of 2028-02-29 the last year is (2027-02-28, 2028-02-29]: 2027-02-28 is out, 03-01 in
    payments = payments_frame([("a", "1.00", "2027-02-28"), ("a", "2.00", "2027-03-01"),
                               ("a", "4.00", "2028-02-29")])

    parts = clv.components(payments, customers_frame(["a"]), None, date(2028, 2, 29))

    assert parts.loc["a", "last_year_cents"] == 600
    assert parts.loc["a", "first_year_cents"] == 300  # [2027-02-28, 2028-02-28)


def test_exact_cents_of_many_small_payments():
    # 10,000 payments of 0.10 in the last year: exactly 1000.00 (a float sum would drift);
    # r 0, N 1: V = P0 − C0 + R = 100,000 − 0 + 100,000 = 200,000
    rows = [("a", "0.10", "2025-01-01")] * 10_000
    parameters = {"acquisition_cost": "0", "discount_rate": "0", "horizon_years": 1}

    parts = clv.components(payments_frame(rows), customers_frame(["a"]), parameters, AS_OF)

    assert parts.loc["a", "first_year_cents"] == 100_000
    assert parts.loc["a", "clv_cents"] == 200_000
    assert sum([0.10] * 10_000) != 1000.0  # why cents


def test_rounding_half_up_once_at_the_end():
    # r 1 (100 %), N 1: Σ = 1/2. One payment of 0.01: P0 = R = 1 c
    #   C0 0.00: V = 1 + ½ = 1.5 c → 2 c (half up)
    #   C0 0.05: V = 1 − 5 + ½ = −3.5 c → −4 c (half away from zero, as Decimal ROUND_HALF_UP)
    # rounding the parts separately would give 1 + 1 = 2 and −4 + 1 = −3
    payments = payments_frame([("a", "0.01", "2025-06-01")])
    customers = customers_frame(["a"])
    base = {"discount_rate": "1", "horizon_years": 1}

    assert clv.compute(payments, customers, {**base, "acquisition_cost": "0.00"}, AS_OF)["a"] == 2
    assert clv.compute(payments, customers, {**base, "acquisition_cost": "0.05"},
                       AS_OF)["a"] == -4
    assert Decimal("-3.5").quantize(Decimal("1"), ROUND_HALF_UP) == -4


def test_annuity_factor():
    assert clv.annuity_factor("0.08", 3) == Fraction(50725, 19683)
    assert clv.annuity_factor("0", 7) == 7
    assert clv.annuity_factor("0.1", 2) == Fraction(210, 121)


# -- reference: the formula in Fractions, straight from the payments --------------------------
def reference_clv(payments, customers, parameters, as_of):
    cost = Fraction(Decimal(parameters["acquisition_cost"]) * 100)
    growth = 1 + Fraction(Decimal(parameters["discount_rate"]))
    years = parameters["horizon_years"]
    churned = {cid: when.to_pydatetime().astimezone(CHENGDU).date()
               for cid, when in zip(customers["customer_id"], customers["churned_at"])
               if not pd.isna(when)}
    days = defaultdict(list)
    for cid, cents, paid_at in zip(payments["customer_id"], payments["amount_cents"],
                                   payments["paid_at"]):
        day = paid_at.to_pydatetime().astimezone(CHENGDU).date()
        if day <= as_of:
            days[cid].append((day, int(cents)))

    def one_year_after(day):
        try:
            return day.replace(year=day.year + 1)
        except ValueError:  # 29 February
            return day.replace(year=day.year + 1, day=28)

    def one_year_before(day):
        try:
            return day.replace(year=day.year - 1)
        except ValueError:
            return day.replace(year=day.year - 1, day=28)

    result = {}
    for cid in customers["customer_id"]:
        paid = days.get(cid)
        if not paid:
            result[cid] = 0
            continue
        first = min(day for day, _ in paid)
        last = max(day for day, _ in paid)
        p0 = sum(cents for day, cents in paid if day < one_year_after(first))
        window = [cents for day, cents in paid if day > one_year_before(as_of)]
        active = bool(window) and not (cid in churned and last <= churned[cid] <= as_of)
        yearly = sum(window) if active else 0
        value = p0 - cost + sum(Fraction(yearly) / growth ** t for t in range(1, years + 1))
        whole = (2 * abs(value.numerator) + value.denominator) // (2 * value.denominator)
        result[cid] = whole if value >= 0 else -whole
    return result


@pytest.mark.parametrize("seed, parameters", [
    (3, clv.DEFAULT_PARAMETERS),
    (4, {"acquisition_cost": "30000.00", "discount_rate": "0.075", "horizon_years": 30}),
    (5, {"acquisition_cost": "12345.67", "discount_rate": "0.123457", "horizon_years": 7}),
    (6, {"acquisition_cost": "0.00", "discount_rate": "1", "horizon_years": 1}),
    (7, {"acquisition_cost": "800.00", "discount_rate": "0", "horizon_years": 3}),
])
def test_matches_fraction_arithmetic_on_2000_random_customers(seed, parameters):
    payments, customers = random_book(2000, 20000, seed)
    as_of = date(2024, 9, 15)
    parameters = {**clv.DEFAULT_PARAMETERS, **parameters}

    result = clv.compute(payments, customers, parameters, as_of)

    assert result.to_dict() == reference_clv(payments, customers, parameters, as_of)
    assert (result > 0).any() and (result == 0).any()
    if seed == 4:  # a high acquisition cost: some customers are worth less than nothing
        assert (result < 0).any()


# -- parameters ---------------------------------------------------------------------------------
def test_default_parameters():
    assert clv.check_parameters(None) == clv.DEFAULT_PARAMETERS == {
        "acquisition_cost": "800.00", "discount_rate": "0.08", "horizon_years": 3,
        "tier_shares": {"key": "0.5", "important": "0.8", "ordinary": "0.95"}}


def test_parameters_are_normalised_and_merged_onto_a_base():
    base = clv.check_parameters({"horizon_years": 5})

    checked = clv.check_parameters({"acquisition_cost": "1200", "discount_rate": "0.1"}, base)

    assert checked == {"acquisition_cost": "1200.00", "discount_rate": "0.1", "horizon_years": 5,
                       "tier_shares": {"key": "0.5", "important": "0.8", "ordinary": "0.95"}}
    assert clv.check_parameters({"acquisition_cost": 0, "discount_rate": "1",
                                 "horizon_years": 30})["acquisition_cost"] == "0.00"


@pytest.mark.parametrize("field, value", [
    ("discount_rate", 0.08), ("discount_rate", "-0.01"), ("discount_rate", "1.01"),
    ("discount_rate", "abc"), ("discount_rate", "0.1234567"), ("discount_rate", "NaN"),
    ("discount_rate", None),
    ("horizon_years", 0), ("horizon_years", 31), ("horizon_years", "3"), ("horizon_years", 3.0),
    ("horizon_years", True),
    ("acquisition_cost", 800.0), ("acquisition_cost", "-1.00"), ("acquisition_cost", "1.234"),
    ("acquisition_cost", "lots"),
    ("tier_shares", {"key": "0.5", "important": "0.8"}),
    ("tier_shares", "0.5"),
    ("colour", "red"),
])
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(InvalidInput) as raised:
        clv.check_parameters({field: value})

    assert list(raised.value.details) == [field]


def test_bad_tier_shares_name_the_share():
    with pytest.raises(InvalidInput) as raised:
        clv.check_parameters({"tier_shares": {"key": "0.9", "important": "0.8",
                                              "ordinary": "0.95"}})

    assert raised.value.details == {"tier_shares": {"important": ["must be more than key"]}}


def test_compute_refuses_bad_parameters():
    with pytest.raises(InvalidInput):
        clv.compute(payments_frame(TENANT), customers_frame(["tenant"]),
                    {"discount_rate": 0.08}, AS_OF)
