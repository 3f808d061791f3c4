"""The bill schedule's promises, over random leases (hypothesis) and hand-computed cases."""
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sales_service.billing import CYCLE_MONTHS, exact_rent, periods, rent_schedule, term_rent

rents = st.decimals(min_value=Decimal("500.00"), max_value=Decimal("50000.00"), places=2)
starts = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
lengths = st.integers(min_value=0, max_value=3 * 366)
cycles = st.sampled_from(sorted(CYCLE_MONTHS))


@settings(max_examples=400, deadline=None)
@given(rent=rents, start=starts, length=lengths, cycle=cycles)
def test_rent_lines_sum_exactly_to_the_term_rent(rent, start, length, cycle):
    end = start + timedelta(days=length)
    schedule = rent_schedule(rent, start, end, cycle)
    assert sum(p.amount for p in schedule) == term_rent(rent, start, end)
    assert all(p.amount >= 0 and p.amount == p.amount.quantize(Decimal("0.01"))
               for p in schedule)


@settings(max_examples=400, deadline=None)
@given(start=starts, length=lengths, cycle=cycles)
def test_periods_are_contiguous_cover_the_term_and_follow_the_cycle(start, length, cycle):
    end = start + timedelta(days=length)
    spans = periods(start, end, cycle)
    assert spans[0][0] == start and spans[-1][1] == end
    for (a_start, a_end), (b_start, _) in zip(spans, spans[1:]):
        assert a_end + timedelta(days=1) == b_start
    for index, (p_start, p_end) in enumerate(spans):
        assert p_start <= p_end
        if index > 0 or start.day == 1:
            assert p_start.day == 1  # every period but a partial first starts a month
        months = (p_end.year - p_start.year) * 12 + p_end.month - p_start.month + 1
        assert months <= CYCLE_MONTHS[cycle]


@settings(max_examples=200, deadline=None)
@given(rent=rents, start=starts, length=lengths, cycle=cycles)
def test_each_bill_is_its_period_rent_within_a_cent(rent, start, length, cycle):
    end = start + timedelta(days=length)
    schedule = rent_schedule(rent, start, end, cycle)
    for period in schedule[:-1]:
        exact = exact_rent(rent, period.start, period.end)
        assert abs(period.amount - Decimal(exact.numerator) / exact.denominator) <= Decimal("0.005")
    assert all(p.due == p.start for p in schedule)


def test_a_calendar_year_monthly():
    schedule = rent_schedule("3500.00", date(2026, 1, 1), date(2026, 12, 31), "monthly")
    assert [p.amount for p in schedule] == [Decimal("3500.00")] * 12


def test_mid_month_start_quarterly_by_hand():
    schedule = rent_schedule("3500.00", date(2026, 1, 15), date(2027, 1, 14), "quarterly")
    # 17 of January's 31 days; three full quarters; Nov + Dec + 14 of January's 31 days
    assert [(p.start, p.end, p.amount) for p in schedule] == [
        (date(2026, 1, 15), date(2026, 1, 31), Decimal("1919.35")),
        (date(2026, 2, 1), date(2026, 4, 30), Decimal("10500.00")),
        (date(2026, 5, 1), date(2026, 7, 31), Decimal("10500.00")),
        (date(2026, 8, 1), date(2026, 10, 31), Decimal("10500.00")),
        (date(2026, 11, 1), date(2027, 1, 14), Decimal("8580.65")),
    ]
    assert term_rent("3500.00", date(2026, 1, 15), date(2027, 1, 14)) == Decimal("42000.00")


def test_february_is_prorated_by_its_own_days():
    # 10 days of a 28-day February at 2800/month = 1000.00 exactly
    assert term_rent("2800.00", date(2027, 2, 1), date(2027, 2, 10)) == Decimal("1000.00")
    # leap year: 10 of 29 days
    assert term_rent("2900.00", date(2028, 2, 1), date(2028, 2, 10)) == Decimal("1000.00")


def test_rounding_remainder_goes_to_the_last_bill():
    # three partial months whose cents each round; the sum still matches the term
    schedule = rent_schedule("3333.33", date(2026, 1, 10), date(2026, 3, 20), "monthly")
    assert sum(p.amount for p in schedule) == term_rent("3333.33", date(2026, 1, 10),
                                                        date(2026, 3, 20))
