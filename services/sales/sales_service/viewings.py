"""Viewings (带看): appointments of a customer, a unit and a staff member. Plain functions over
a SQLAlchemy session; the caller owns the transaction.

- Booking needs an open opportunity and an existing unit not under maintenance (reserved or
  leased units may be shown: a tenant may be moving out). A viewing lasts
  ``duration_minutes`` (15-240, default 60): ``[scheduled_at, ends_at)``.
- No double booking: another *scheduled* viewing of the same staff member or of the same unit
  overlapping that interval is a Conflict naming which (``field`` and ``existing_id``; with
  both clashing, ``conflicts`` has each). Back-to-back viewings (one ends when the next
  starts) are fine. Viewings are booked from 30 days back (a walk-in entered afterwards) to a
  year ahead.
- Booking moves the opportunity forward to ``viewing_booked``; recording the outcome of a
  scheduled viewing (vocabulary.VIEWING_RESULTS + free text) completes it, moves the
  opportunity forward to ``viewed`` (not for a ``no_show``: nothing was viewed) and emits
  ``viewing.completed``. A scheduled viewing can also be cancelled.
"""
import uuid
from datetime import timedelta

from sqlalchemy import func, or_, select, text

from crm_kit.envelope import now as utc_now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from sales_service import opportunities, schemas
from sales_service.models import Opportunity, Unit, Viewing

PAST_LIMIT = timedelta(days=30)
FUTURE_LIMIT = timedelta(days=365)


def _iso(value):
    return value.isoformat() if value else None


def to_dict(viewing):
    return {"id": viewing.id, "opportunity_id": viewing.opportunity_id,
            "customer_id": viewing.customer_id, "unit_id": viewing.unit_id,
            "staff_id": viewing.staff_id, "scheduled_at": viewing.scheduled_at.isoformat(),
            "ends_at": viewing.ends_at.isoformat(),
            "duration_minutes": int((viewing.ends_at - viewing.scheduled_at).total_seconds()
                                    // 60),
            "status": viewing.status, "result": viewing.result, "outcome": viewing.outcome,
            "created_at": viewing.created_at.isoformat(),
            "completed_at": _iso(viewing.completed_at)}


def get(session, viewing_id, for_update=False):
    """The viewing, or NotFound."""
    query = select(Viewing).where(Viewing.id == viewing_id)
    if for_update:
        query = query.with_for_update()
    viewing = session.scalars(query).first()
    if viewing is None:
        raise NotFound(f"viewing {viewing_id} does not exist", {"viewing_id": viewing_id})
    return viewing


def search(session, filters, page=1, per_page=50):
    """Viewings by ``opportunity_id``, ``staff_id``, ``unit_id``, ``customer_id``, ``status``
    and ``from``/``to`` (instants bounding ``scheduled_at``), in time order."""
    filters = schemas.load_filters(schemas.viewing_filter_schema, filters)
    query = select(Viewing)
    for name in ("opportunity_id", "staff_id", "unit_id", "customer_id", "status"):
        if filters.get(name):
            query = query.where(getattr(Viewing, name) == filters[name])
    if filters.get("visible_to") is not None:
        scope = filters["visible_to"]
        # the caller leads the viewing, or sees its opportunity (its owner or its customer)
        query = query.where(or_(
            Viewing.staff_id.in_(scope.get("owner_ids") or []),
            Viewing.opportunity_id.in_(select(Opportunity.id)
                                       .where(opportunities.visible_to(scope)))))
    if filters.get("from"):
        query = query.where(Viewing.scheduled_at >= filters["from"])
    if filters.get("to"):
        query = query.where(Viewing.scheduled_at < filters["to"])
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Viewing.scheduled_at, Viewing.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [to_dict(r) for r in rows], "total": total, "page": page,
            "per_page": per_page}


def _lock_staff_calendar(session, staff_id):
    """Serialise bookings of one staff member (two at once could both see a free slot).
    PostgreSQL: a transaction-scoped advisory lock; SQLite has a single writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"viewing-staff:{staff_id}"})


def _clash(session, column, value, start, end):
    return session.scalars(select(Viewing).where(
        column == value, Viewing.status == "scheduled",
        Viewing.scheduled_at < end, Viewing.ends_at > start)
        .order_by(Viewing.scheduled_at).limit(1)).first()


def book(session, data, actor):
    """Book a viewing ``{opportunity_id, unit_id, scheduled_at, staff_id?,
    duration_minutes?}``; ``staff_id`` defaults to the actor."""
    data = schemas.load(schemas.viewing_schema, data)
    staff_id = data.get("staff_id") or (actor or {}).get("id")
    if not staff_id:
        raise InvalidInput({"staff_id": ["Missing data for required field."]})
    start = data["scheduled_at"]
    moment = utc_now()
    if start < moment - PAST_LIMIT:
        raise InvalidInput({"scheduled_at": ["must be at most 30 days ago"]})
    if start > moment + FUTURE_LIMIT:
        raise InvalidInput({"scheduled_at": ["must be within a year from now"]})
    end = start + timedelta(minutes=data["duration_minutes"])

    opportunity = session.scalars(select(Opportunity).where(
        Opportunity.id == data["opportunity_id"]).with_for_update()).first()
    if opportunity is None:
        raise InvalidInput({"opportunity_id": ["no such opportunity"]})
    if opportunity.stage in opportunities.FINAL_STAGES:
        raise Conflict(f"opportunity {opportunity.id} is {opportunity.stage}; book viewings "
                       "for open opportunities", {"field": "opportunity_id",
                                                  "stage": opportunity.stage})
    unit = session.scalars(select(Unit).where(Unit.id == data["unit_id"])
                           .with_for_update()).first()
    if unit is None:
        raise InvalidInput({"unit_id": ["no such unit"]})
    if unit.status == "maintenance":
        raise Conflict(f"unit {unit.code} is under maintenance",
                       {"field": "unit_id", "status": unit.status})

    _lock_staff_calendar(session, staff_id)
    conflicts = {}
    for field, column, value in (("staff_id", Viewing.staff_id, staff_id),
                                 ("unit_id", Viewing.unit_id, unit.id)):
        other = _clash(session, column, value, start, end)
        if other is not None:
            conflicts[field] = {"viewing_id": other.id,
                                "scheduled_at": other.scheduled_at.isoformat(),
                                "ends_at": other.ends_at.isoformat()}
    if conflicts:
        who = {"staff_id": f"staff member {staff_id}", "unit_id": f"unit {unit.code}"}
        first = next(iter(conflicts))
        raise Conflict(" and ".join(who[f] for f in conflicts) + " already booked then",
                       {"field": first, "existing_id": conflicts[first]["viewing_id"],
                        "conflicts": conflicts})

    viewing = Viewing(id=str(uuid.uuid4()), opportunity_id=opportunity.id,
                      customer_id=opportunity.customer_id, unit_id=unit.id, staff_id=staff_id,
                      scheduled_at=start, ends_at=end, status="scheduled", created_at=moment)
    session.add(viewing)
    session.flush()
    opportunities.advance_to(session, opportunity, "viewing_booked", "viewing_booked",
                             actor, f"viewing of unit {unit.code} at {start.isoformat()}")
    return viewing


def record_outcome(session, viewing_id, data, actor):
    """Complete a scheduled viewing with ``{result, outcome}`` (Conflict if it is not
    scheduled); the opportunity moves on to ``viewed`` unless the customer did not show."""
    data = schemas.load(schemas.viewing_outcome_schema, data)
    viewing = get(session, viewing_id, for_update=True)
    if viewing.status != "scheduled":
        raise Conflict(f"viewing {viewing_id} is {viewing.status}; only a scheduled viewing "
                       "gets an outcome", {"status": viewing.status})
    viewing.status = "completed"
    viewing.result = data["result"]
    viewing.outcome = data.get("outcome")
    viewing.completed_at = utc_now()
    if data["result"] != "no_show":
        opportunities.advance_to(session, viewing.opportunity_id, "viewed", "viewing_completed",
                                 actor, f"viewing {viewing.id}: {data['result']}")
    record_event(session, "viewing.completed", {
        "viewing_id": viewing.id, "opportunity_id": viewing.opportunity_id,
        "customer_id": viewing.customer_id, "unit_id": viewing.unit_id,
        "staff_id": viewing.staff_id, "result": viewing.result})
    return viewing


def cancel(session, viewing_id, reason, actor):
    """Cancel a scheduled viewing (frees the staff member's and the unit's slot)."""
    reason = schemas.load(schemas.viewing_cancel_schema, {"reason": reason})["reason"]
    viewing = get(session, viewing_id, for_update=True)
    if viewing.status != "scheduled":
        raise Conflict(f"viewing {viewing_id} is {viewing.status}; only a scheduled viewing "
                       "can be cancelled", {"status": viewing.status})
    viewing.status = "cancelled"
    viewing.outcome = reason
    return viewing

