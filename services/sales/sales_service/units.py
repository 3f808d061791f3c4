"""Units (房源): create, read, availability search, update. Plain functions over a SQLAlchemy
session; the caller owns the transaction.

Status rules:
- staff set ``vacant`` ↔ ``maintenance`` only (``update``); any other change is a ``Conflict``;
- ``reserved`` and ``leased`` follow leases: the lease code sets them with
  ``set_status_by_lease`` (and puts the unit back to ``vacant`` when a lease ends).

``code`` is unique (``Conflict`` naming the field and the unit that has it). No event: the
catalogue (api.md) has none for units.
"""
import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from sales_service import schemas
from sales_service import vocabulary as v
from sales_service.models import Unit

#: the statuses staff may move a unit between by hand
STAFF_STATUSES = ("vacant", "maintenance")
FIELDS = ("code", "building", "district", "layout", "area_sqm", "floor", "monthly_rent",
          "amenities")


# -- reading -------------------------------------------------------------------------------
def to_dict(unit):
    return {"id": unit.id, "code": unit.code, "building": unit.building,
            "district": unit.district, "layout": unit.layout,
            "area_sqm": f"{unit.area_sqm:.2f}", "floor": unit.floor,
            "monthly_rent": f"{unit.monthly_rent:.2f}", "amenities": list(unit.amenities or []),
            "status": unit.status, "created_at": unit.created_at.isoformat(),
            "updated_at": unit.updated_at.isoformat()}


def get(session, unit_id, for_update=False):
    """The unit, or NotFound."""
    query = select(Unit).where(Unit.id == unit_id)
    if for_update:
        query = query.with_for_update()
    unit = session.scalars(query).first()
    if unit is None:
        raise NotFound(f"unit {unit_id} does not exist", {"unit_id": unit_id})
    return unit


def search(session, filters, page=1, per_page=50):
    """Units by ``status``, ``district``, ``layout``, ``max_rent`` (monthly rent at most) and
    ``q`` (part of the code or the building's name), ordered by code."""
    filters = schemas.load_filters(schemas.unit_filter_schema, filters)
    query = select(Unit)
    for name in ("status", "district", "layout"):
        if filters.get(name):
            query = query.where(getattr(Unit, name) == filters[name])
    if filters.get("max_rent") is not None:
        query = query.where(Unit.monthly_rent <= filters["max_rent"])
    if filters.get("q"):
        like = f"%{filters['q']}%"
        query = query.where(or_(Unit.code.ilike(like), Unit.building.ilike(like)))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Unit.code, Unit.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [to_dict(u) for u in rows], "total": total, "page": page,
            "per_page": per_page}


# -- writing -------------------------------------------------------------------------------
def _code_taken(session, code, own_id=None):
    existing = session.scalar(select(Unit.id).where(Unit.code == code))
    if existing and existing != own_id:
        raise Conflict(f"unit code {code} is taken by unit {existing}",
                       {"field": "code", "existing_id": existing})


def _flush_unique(session, unit):
    """Flush in a savepoint: a code taken by a concurrent request is a Conflict too."""
    try:
        with session.begin_nested():
            session.add(unit)
            session.flush()
    except IntegrityError:
        _code_taken(session, unit.code, own_id=unit.id)
        raise


def create(session, data, actor):
    """A new unit, ``vacant`` unless created ``maintenance``."""
    data = schemas.load(schemas.unit_schema, data)
    status = data.pop("status", None) or "vacant"
    if status not in STAFF_STATUSES:
        raise Conflict(f"a new unit is vacant or under maintenance, not {status}; reserved "
                       "and leased follow leases", {"field": "status", "status": status})
    _code_taken(session, data["code"])
    moment = now()
    unit = Unit(id=str(uuid.uuid4()), status=status, created_at=moment, updated_at=moment,
                **{field: data.get(field) for field in FIELDS})
    if unit.amenities is None:
        unit.amenities = []
    _flush_unique(session, unit)
    return unit


def update(session, unit_id, changes, actor):
    """Change a unit's facts; ``status`` may only go vacant ↔ maintenance (Conflict otherwise)."""
    changes = schemas.load(schemas.unit_schema, changes, partial=True)
    if not changes:
        raise InvalidInput({"_schema": ["give at least one field to change"]})
    unit = get(session, unit_id, for_update=True)
    status = changes.pop("status", None)
    if status is not None and status != unit.status:
        if unit.status not in STAFF_STATUSES or status not in STAFF_STATUSES:
            raise Conflict(f"a unit goes from {unit.status} to {status} only through its "
                           "lease; staff may switch vacant and maintenance",
                           {"field": "status", "status": unit.status})
        unit.status = status
    if changes.get("code") and changes["code"] != unit.code:
        _code_taken(session, changes["code"], own_id=unit.id)
    for field, value in changes.items():
        setattr(unit, field, [] if field == "amenities" and value is None else value)
    unit.updated_at = now()
    _flush_unique(session, unit)
    return unit


def set_status_by_lease(session, unit, status):
    """Set the status a lease implies (``reserved``/``leased`` on signing, ``vacant`` when it
    ends). For the lease code, which decides whether the unit was available; ``unit`` is a
    ``Unit`` or its id. Returns the unit."""
    if status not in v.UNIT_STATUSES:
        raise ValueError(f"unknown unit status {status!r}")
    if not isinstance(unit, Unit):
        unit = get(session, unit, for_update=True)
    if unit.status != status:
        unit.status = status
        unit.updated_at = now()
    return unit
