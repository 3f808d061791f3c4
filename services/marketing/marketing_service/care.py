"""Care automation (客户问候及关怀): rules that greet customers by themselves.

Each rule is a record (kind, channel, template, active). A timer runs every active rule for
today's local date (``clock.today``); the occasions of a day:

- ``birthday``: customers born on this month and day (29 February birthdays on 28 February in
  other years); occasion ``birthday:<year>``.
- ``holiday``: every customer, on the day of the rule's holiday: Spring Festival, Dragon Boat and
  Mid-Autumn come from the lunar calendar (``lunardate``), a ``custom`` holiday has a fixed
  ``holiday_date`` ("10-01"); occasion ``holiday:<holiday>:<year>``.
- ``move_in``: a first lease (not a renewal) that started within the last ``MOVE_IN_GRACE_DAYS``
  days, so a day the service was down still gets its welcome; occasion ``move_in:<lease>``.
- ``lease_anniversary``: customers with an active lease, on the anniversary of their first move-in;
  occasion ``lease_anniversary:<year>``, ``{years}`` in the template.
- ``renewal_reminder``: active leases ending within ``days_before`` days (default 30); occasion
  ``renewal_reminder:<lease>``.

A customer is greeted at most once per occasion, even across restarts and with two instances
running: the delivery log's ``(customer, occasion)`` is unique and rows are inserted with
``ON CONFLICT DO NOTHING``. Two rules of the same occasion (two birthday rules) greet once.
Consent for the channel is needed as for campaigns; the frequency cap does not apply to care.
"""
import uuid
from datetime import date, timedelta

from lunardate import LunarDate
from sqlalchemy import func, select

from crm_kit.db import insert_new, paginate
from crm_kit.envelope import now
from crm_kit.errors import InvalidInput, NotFound
from marketing_service import audience, clock, delivery, schemas
from marketing_service import vocabulary as v
from marketing_service.models import AudienceCustomer, AudienceLease, CareRule, Message

MOVE_IN_GRACE_DAYS = 3
DEFAULT_DAYS_BEFORE = 30
RULE_FIELDS = ("kind", "name", "channel", "template", "active", "holiday", "holiday_name",
               "holiday_date", "days_before")


def to_dict(r):
    return {"id": r.id, **{field: getattr(r, field) for field in RULE_FIELDS},
            "created_by": r.created_by, "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat()}


def get(session, rule_id):
    rule = session.get(CareRule, rule_id)
    if rule is None:
        raise NotFound(f"care rule {rule_id} does not exist", {"rule_id": rule_id})
    return rule


def create(session, data, actor):
    data = schemas.load(schemas.care_rule_schema, data)
    if data["kind"] == "renewal_reminder" and data["days_before"] is None:
        data["days_before"] = DEFAULT_DAYS_BEFORE
    moment = now()
    rule = CareRule(id=str(uuid.uuid4()), **data, created_by=(actor or {}).get("id"),
                    created_at=moment, updated_at=moment)
    session.add(rule)
    session.flush()
    return rule


def update(session, rule_id, changes, actor):
    """Change a rule (its kind stays); the result is validated as a whole."""
    rule = get(session, rule_id)
    if not isinstance(changes, dict):
        raise InvalidInput({"_schema": ["must be an object"]})
    if "kind" in changes and changes["kind"] != rule.kind:
        raise InvalidInput({"kind": ["cannot change: create a new rule"]})
    merged = {field: getattr(rule, field) for field in RULE_FIELDS}
    merged.update(changes)
    data = schemas.load(schemas.care_rule_schema, merged)
    if data["kind"] == "renewal_reminder" and data["days_before"] is None:
        data["days_before"] = DEFAULT_DAYS_BEFORE
    for field in RULE_FIELDS:
        setattr(rule, field, data[field])
    rule.updated_at = now()
    return rule


def search(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.care_rule_filters, filters)
    query = select(CareRule)
    for field, value in filters.items():
        query = query.where(getattr(CareRule, field) == value)
    return paginate(session, query.order_by(CareRule.created_at, CareRule.id), page, per_page, to_dict)


def parse_day(value):
    """``today`` of an on-demand run: a ``YYYY-MM-DD`` string, or None for today."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput({"today": ["must be a date like 2026-10-01"]}) from None


# -- the calendar --------------------------------------------------------------------------
def holiday_date(rule, year):
    """The day ``rule``'s holiday falls on in ``year`` (None if it has no such day)."""
    if rule.holiday in v.LUNAR_HOLIDAYS:
        (month, day), _name = v.LUNAR_HOLIDAYS[rule.holiday]
        return LunarDate(year, month, day).to_solar_date()
    month, day = (int(part) for part in rule.holiday_date.split("-"))
    try:
        return date(year, month, day)
    except ValueError:  # 02-29 in a common year
        return None


def holiday_name(rule):
    return rule.holiday_name or v.LUNAR_HOLIDAYS[rule.holiday][1]


def _month_days(today):
    """The MM-DD birthdays and anniversaries of ``today`` (29 Feb on 28 Feb of common years)."""
    found = [today.strftime("%m-%d")]
    if today.month == 2 and today.day == 28 and not _leap(today.year):
        found.append("02-29")
    return found


def _leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# -- the occasions of a day ----------------------------------------------------------------
def occasions(session, rule, today):
    """``[(customer row, occasion, extra template fields)]`` of ``rule`` on ``today``."""
    customers = audience.members({}, today=today)
    if rule.kind == "birthday":
        rows = session.execute(customers.where(
            AudienceCustomer.birthday_md.in_(_month_days(today)))).all()
        return [(r, f"birthday:{today.year}", {}) for r in rows]
    if rule.kind == "holiday":
        if holiday_date(rule, today.year) != today:
            return []
        extra = {"holiday_name": holiday_name(rule)}
        return [(r, f"holiday:{rule.holiday_date or rule.holiday}:{today.year}", extra)
                for r in session.execute(customers).all()]
    if rule.kind == "move_in":
        leases = select(AudienceLease).where(
            AudienceLease.renewed_from_id.is_(None), AudienceLease.status == "active",
            AudienceLease.start_date <= today,
            AudienceLease.start_date > today - timedelta(days=MOVE_IN_GRACE_DAYS))
        return _lease_occasions(session, customers, leases, lambda lease: (
            f"move_in:{lease.id}", {"move_in_date": lease.start_date.isoformat()}))
    if rule.kind == "renewal_reminder":
        leases = select(AudienceLease).where(
            AudienceLease.status == "active", AudienceLease.end_date >= today,
            AudienceLease.end_date <= today + timedelta(days=rule.days_before))
        return _lease_occasions(session, customers, leases, lambda lease: (
            f"renewal_reminder:{lease.id}", {"lease_end_date": lease.end_date.isoformat(),
                                             "days_left": (lease.end_date - today).days}))
    return _anniversaries(session, customers, today)


def _lease_occasions(session, customers, leases, describe):
    leases = session.scalars(leases).all()
    rows = {r.id: r for r in session.execute(customers.where(
        AudienceCustomer.id.in_({lease.customer_id for lease in leases}))).all()}
    found = []
    for lease in leases:
        if lease.customer_id in rows:
            occasion, extra = describe(lease)
            found.append((rows[lease.customer_id], occasion, extra))
    return found


def _anniversaries(session, customers, today):
    """Customers with an active lease whose first move-in was on this day in an earlier year."""
    first = (select(AudienceLease.customer_id,
                    func.min(AudienceLease.start_date).label("moved_in"))
             .group_by(AudienceLease.customer_id).subquery())
    month_days = _month_days(today)
    candidates = {customer_id: moved_in for customer_id, moved_in in session.execute(
        select(first.c.customer_id, first.c.moved_in)
        .where(first.c.customer_id.in_(select(AudienceLease.customer_id)
                                       .where(AudienceLease.status == "active"))))
        if moved_in.strftime("%m-%d") in month_days and moved_in.year < today.year}
    rows = session.execute(customers.where(AudienceCustomer.id.in_(list(candidates)))).all()
    return [(r, f"lease_anniversary:{today.year}",
             {"years": today.year - candidates[r.id].year,
              "move_in_date": candidates[r.id].isoformat()}) for r in rows]


def run(session, today=None):
    """Record today's greetings of every active rule; ``{rule_id: messages recorded}``."""
    today = today or clock.today()
    moment = now()
    done = {}
    for rule in session.scalars(select(CareRule).where(CareRule.active.is_(True))
                                .order_by(CareRule.created_at, CareRule.id)).all():
        found = occasions(session, rule, today)
        before = session.scalar(select(func.count()).where(Message.care_rule_id == rule.id))
        insert_new(session, Message, [
            {"customer_id": row.id, "occasion": occasion, "care_rule_id": rule.id,
             "channel": rule.channel, "attempts": 0, "created_at": moment,
             **delivery.compose(row, rule.channel, rule.template, extra)}
            for row, occasion, extra in found])
        done[rule.id] = session.scalar(
            select(func.count()).where(Message.care_rule_id == rule.id)) - before
    return done
