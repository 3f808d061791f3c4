"""Membership (会员系统): points earned from rent paid and referrals, tiers by points.

Rules (decided here, documented in docs/customer.md):
- 1 point per full 10 CNY of rent paid (``payment.received``); amounts are Decimal, never float.
- a referral that becomes a customer earns the referrer 500 points (``REFERRAL_POINTS``).
- tier by the current balance: standard < 1,000 ≤ silver < 5,000 ≤ gold < 20,000 ≤ platinum.
- staff can adjust points by hand with a reason (redemptions are negative adjustments);
  a balance never goes below zero.
"""
from decimal import ROUND_FLOOR, Decimal

from crm_kit.envelope import now
from crm_kit.errors import Conflict
from customer_service.models import PointEntry

YUAN_PER_POINT = Decimal("10")
REFERRAL_POINTS = 500
TIERS = ((20_000, "platinum"), (5_000, "gold"), (1_000, "silver"), (0, "standard"))


def tier_for(points):
    return next(name for floor, name in TIERS if points >= floor)


def points_for_payment(amount):
    """Whole points earned by paying ``amount`` CNY (a decimal string or Decimal)."""
    amount = Decimal(str(amount))
    if amount <= 0:
        return 0
    return int((amount / YUAN_PER_POINT).to_integral_value(rounding=ROUND_FLOOR))


def add_points(session, customer, delta, reason, actor_id=None, event_id=None):
    """Change the balance and record it in the ledger; returns the entry."""
    balance = customer.points + delta
    if balance < 0:
        raise Conflict(f"the balance is {customer.points} points; cannot take {-delta}",
                       {"points": customer.points})
    customer.points = balance
    customer.member_tier = tier_for(balance)
    entry = PointEntry(customer_id=customer.id, delta=delta, balance_after=balance,
                       reason=reason, event_id=event_id, actor_id=actor_id, occurred_at=now())
    session.add(entry)
    return entry
