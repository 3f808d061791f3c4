"""Rent bill schedules (租赁费用结算): the part tenants complain about most, so it is exact.

Rules (docs/sales.md):
- Billing follows calendar months. A lease that starts after the 1st gets a first bill for the
  rest of that month; then one bill per payment cycle of whole calendar months (monthly 1,
  quarterly 3, half-yearly 6, yearly 12); the last bill stops at the lease's end date.
- A month the tenant occupies in full costs ``monthly_rent``; a part of a month costs
  ``monthly_rent × days occupied / days in that month`` (prorated by days).
- ``end_date`` is the last day of occupancy (inclusive).
- Amounts are computed exactly (fractions), then rounded half-up to the cent. The term's rent is
  the rounded exact total; every bill but the last is rounded on its own and the last takes
  the remainder, so the bills always sum to the term's rent to the cent.
- Each rent bill is due on the first day of its period (rent is paid in advance); the deposit
  is its own bill, due on the start date.
"""
import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    due: date
    amount: Decimal


def _month_end(day):
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _next_month_start(day):
    return _month_end(day) + timedelta(days=1)


def _last_day_after_months(day, months):
    """The last day of the ``months``-th calendar month counting ``day``'s month as the first."""
    index = day.year * 12 + day.month - 1 + months - 1
    year, month = divmod(index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def _round(value):
    """A Fraction of yuan to Decimal cents, half up."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        CENT, rounding=ROUND_HALF_UP)


def exact_rent(monthly_rent, start, end):
    """Exact rent (a Fraction) for occupying ``start``..``end`` inclusive."""
    rent = Fraction(Decimal(monthly_rent))
    total = Fraction(0)
    day = start
    while day <= end:
        month_end = _month_end(day)
        last = min(month_end, end)
        days_in_month = month_end.day
        occupied = (last - day).days + 1
        total += rent if occupied == days_in_month else rent * occupied / days_in_month
        day = last + timedelta(days=1)
    return total


def term_rent(monthly_rent, start, end):
    """The lease's rent over its whole term, to the cent."""
    return _round(exact_rent(monthly_rent, start, end))


def periods(start, end, payment_cycle):
    """(start, end) of each billing period, contiguous, covering start..end exactly."""
    if end < start:
        raise ValueError("end before start")
    months = CYCLE_MONTHS[payment_cycle]
    result = []
    day = start
    if start.day != 1:  # the rest of the first month on its own
        result.append((start, min(_month_end(start), end)))
        day = _next_month_start(start)
    while day <= end:
        period_end = min(_last_day_after_months(day, months), end)
        result.append((day, period_end))
        day = period_end + timedelta(days=1)
    return result


def rent_schedule(monthly_rent, start, end, payment_cycle):
    """The rent bills of a lease: ``Period``s whose amounts sum exactly to ``term_rent``."""
    spans = periods(start, end, payment_cycle)
    exact = [exact_rent(monthly_rent, period_start, period_end)
             for period_start, period_end in spans]
    total = _round(sum(exact))  # the term's rent: the same figure term_rent() gives
    schedule, billed = [], Decimal("0.00")
    for index, ((period_start, period_end), amount) in enumerate(zip(spans, exact)):
        amount = total - billed if index == len(spans) - 1 else _round(amount)
        billed += amount
        schedule.append(Period(period_start, period_end, period_start, amount))
    return schedule
