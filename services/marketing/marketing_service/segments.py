"""Segments: saved rules over marketing's copy of the customers (``audience``), previewed with
their size before a campaign uses them."""
import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm_kit.db import paginate
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from marketing_service import audience, schemas
from marketing_service.models import AudienceCustomer, AudienceTag, Segment


def to_dict(s):
    return {"id": s.id, "name": s.name, "description": s.description, "rules": s.rules,
            "created_by": s.created_by, "created_at": s.created_at.isoformat(),
            "updated_at": s.updated_at.isoformat()}


def get(session, segment_id):
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} does not exist", {"segment_id": segment_id})
    return segment


def exists(session, segment_id):
    return session.get(Segment, segment_id) is not None


def create(session, data, actor):
    try:
        data = schemas.load(schemas.segment_schema, data)
    except InvalidInput as exc:  # name a bad rule "rules.<key>", as the contract says
        details = dict(exc.details)
        rules = details.pop("rules", None)
        if isinstance(rules, dict):
            details.update({f"rules.{key}": problems for key, problems in rules.items()})
        elif rules is not None:
            details["rules"] = rules
        raise InvalidInput(details) from None
    moment = now()
    segment = Segment(id=str(uuid.uuid4()), name=data["name"].strip(),
                      description=data["description"], rules=data["rules"],
                      created_by=(actor or {}).get("id"), created_at=moment, updated_at=moment)
    try:
        with session.begin_nested():
            session.add(segment)
    except IntegrityError:
        taken = session.scalar(select(Segment.id).where(Segment.name == segment.name))
        raise Conflict(f"a segment named {segment.name} exists", {"existing_id": taken}) from None
    return segment


def search(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.segment_filters, filters)
    query = select(Segment)
    if filters.get("q"):
        query = query.where(Segment.name.contains(filters["q"], autoescape=True))
    return paginate(session, query.order_by(Segment.name), page, per_page, to_dict)


def preview(session, segment_id, page, per_page):
    """The segment's members now (merged duplicates excluded; erased and archived customers
    included, as a campaign records them, skipped) and ``total``, its size."""
    rules = get(session, segment_id).rules
    columns = (AudienceCustomer.id, AudienceCustomer.name, AudienceCustomer.stage,
               AudienceCustomer.value_tier, AudienceCustomer.district,
               AudienceCustomer.erased, AudienceCustomer.archived)
    query = audience.members(rules, columns)
    total = session.scalar(select(func.count()).select_from(
        select(AudienceCustomer.id).where(*audience.conditions(rules)).subquery()))
    rows = session.execute(query.offset((page - 1) * per_page).limit(per_page)).all()
    tags = {}
    for customer_id, tag in session.execute(
            select(AudienceTag.customer_id, AudienceTag.tag)
            .where(AudienceTag.customer_id.in_([r.id for r in rows]))
            .order_by(AudienceTag.tag)):
        tags.setdefault(customer_id, []).append(tag)
    items = [{"customer_id": r.id, "name": r.name, "stage": r.stage,
              "value_tier": r.value_tier, "district": r.district, "tags": tags.get(r.id, []),
              "erased": r.erased, "archived": r.archived} for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}
