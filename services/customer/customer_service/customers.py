"""The customer record (客户资料卡): create, read, search, update, tags, interactions,
duplicates, merge, erasure, points. Plain functions over a SQLAlchemy session; the caller
owns the transaction. Every change records its event in the outbox and its audit entry
(``crm_kit.audit``, before/after of ``audit_view``) in the same transaction.
"""
import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload
from sqlalchemy import update as sql_update

from crm_kit import audit
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import forget_subjects, record_event
from customer_service import membership, schemas, tagging
from customer_service.models import (ChurnDecision, Contact, Customer, CustomerTag, Interaction,
                                     OwnerChange, PointEntry, StageChange, StagnationAlert)

PROFILE_FIELDS = ("kind", "name", "mobile", "email", "wechat_id", "gender", "birthday",
                  "id_number", "occupation", "industry", "employer", "education",
                  "income_band", "hometown", "city", "district", "source", "owner_id")
CONSENT_DEFAULT = {"sms": False, "email": False, "wechat": False, "phone": False,
                   "in_app": False}
ERASED_NAME = "(erased)"


# -- reading -------------------------------------------------------------------------------
def to_dict(customer, include_sensitive=True):
    data = {field: getattr(customer, field) for field in PROFILE_FIELDS}
    data["birthday"] = customer.birthday.isoformat() if customer.birthday else None
    if not include_sensitive:
        data.pop("id_number")
    data.update({
        "id": customer.id,
        "stage": customer.stage,
        "stage_entered_at": customer.stage_entered_at.isoformat(),
        "value_tier": customer.value_tier,
        "churn_risk": customer.churn_risk,
        "member": {"tier": customer.member_tier, "points": customer.points},
        "consent": {**CONSENT_DEFAULT, **(customer.consent or {})},
        "tags": [t.tag for t in customer.tags],
        "custom_fields": customer.custom_fields or {},
        "contacts": [{"id": c.id, "name": c.name, "mobile": c.mobile, "email": c.email,
                      "title": c.title, "is_primary": c.is_primary} for c in customer.contacts],
        "leases_signed": customer.leases_signed,
        "merged_into": customer.merged_into,
        "archived": customer.archived_at is not None,
        "erased": customer.erased_at is not None,
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
    })
    return data


def event_snapshot(customer):
    """What customer.* events carry: the record minus the ID number (state transfer)."""
    return to_dict(customer, include_sensitive=False)


def audit_view(customer):
    """The record as the audit trail keeps it, before and after a change (the audit keeps only
    the fields that changed): everything staff or events can change, the ID number included.
    Redacted from the trail when the customer is erased."""
    data = {field: getattr(customer, field) for field in PROFILE_FIELDS}
    data.update({
        "consent": {**CONSENT_DEFAULT, **(customer.consent or {})},
        "custom_fields": dict(customer.custom_fields or {}),
        "tags": sorted(t.tag for t in customer.tags),
        "contacts": [{"name": c.name, "mobile": c.mobile, "email": c.email, "title": c.title,
                      "is_primary": bool(c.is_primary)} for c in customer.contacts],
        "stage": customer.stage, "member_tier": customer.member_tier,
        "points": customer.points, "leases_signed": customer.leases_signed,
        "value_tier": customer.value_tier, "churn_risk": customer.churn_risk,
        "merged_into": customer.merged_into, "archived": customer.archived_at is not None,
    })
    return data


def audit_change(session, actor, action, customer, before, after=None):
    """Record a change of ``customer`` (``after`` defaults to its record now)."""
    return audit.record(session, actor, action, "customer", customer.id, before,
                        audit_view(customer) if after is None else after,
                        subject_id=customer.id)


def get(session, customer_id, for_update=False):
    """The customer, or NotFound. Merged customers are found (their ``merged_into`` says where)."""
    if for_update:
        query = select(Customer).where(Customer.id == customer_id).with_for_update()
    else:
        # one query for the record, its tags and contacts (the hot read path)
        query = (select(Customer).where(Customer.id == customer_id)
                 .options(joinedload(Customer.tags), joinedload(Customer.contacts)))
    customer = session.scalars(query).unique().first()
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist", {"customer_id": customer_id})
    return customer


def get_active(session, customer_id):
    """The customer, refusing records that can no longer change (merged, erased, archived)."""
    customer = get(session, customer_id, for_update=True)
    if customer.merged_into:
        raise Conflict(f"customer {customer_id} was merged into {customer.merged_into}",
                       {"merged_into": customer.merged_into})
    if customer.erased_at:
        raise Conflict(f"customer {customer_id} was erased", {"customer_id": customer_id})
    if customer.archived_at:
        raise Conflict(f"customer {customer_id} is archived", {"customer_id": customer_id})
    return customer


def search(session, filters, page=1, per_page=50):
    query = _filtered(filters)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Customer.created_at.desc(), Customer.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [to_dict(c) for c in rows], "total": total, "page": page,
            "per_page": per_page}


def export(session, filters):
    query = _filtered(filters).order_by(Customer.created_at, Customer.id)
    return [to_dict(c) for c in session.scalars(query)]


def _filtered(filters):
    filters = filters or {}
    query = select(Customer).where(Customer.merged_into.is_(None),
                                   Customer.archived_at.is_(None))
    if filters.get("q"):
        like = f"%{filters['q']}%"
        query = query.where(or_(Customer.name.ilike(like), Customer.mobile.like(like),
                                Customer.email.ilike(like), Customer.employer.ilike(like)))
    for name in ("stage", "value_tier", "owner_id", "district", "source"):
        value = filters.get(name)
        if value:
            column = getattr(Customer, name)
            query = query.where(column.in_(value) if isinstance(value, list) else column == value)
    if filters.get("owner_ids") is not None:
        query = query.where(_owned_by(filters["owner_ids"]))
    if filters.get("tag"):
        query = query.where(Customer.id.in_(
            select(CustomerTag.customer_id).where(CustomerTag.tag == filters["tag"])))
    return query


def _owned_by(owner_ids):
    """``owner_id`` is one of ``owner_ids``; a ``None`` among them stands for "no owner"."""
    named = [owner for owner in owner_ids if owner is not None]
    condition = Customer.owner_id.in_(named)
    if len(named) != len(owner_ids):
        condition = or_(condition, Customer.owner_id.is_(None))
    return condition


def ids_owned_by(session, owner_ids):
    """The ids of every customer owned by one of ``owner_ids`` (``None``: no owner), archived
    and merged ones included: what the gateway scopes a caller's leases, bills and tickets to."""
    return list(session.scalars(select(Customer.id).where(_owned_by(list(owner_ids or ())))
                                .order_by(Customer.id)))


# -- writing -------------------------------------------------------------------------------
def _check_unique_mobile(session, mobile, own_id=None):
    existing = session.scalar(select(Customer.id).where(Customer.mobile == mobile))
    if existing and existing != own_id:
        raise Conflict(f"mobile already belongs to customer {existing}",
                       {"existing_id": existing, "field": "mobile"})


def _apply_profile(customer, data):
    for field in PROFILE_FIELDS:
        if field in data:
            value = data[field]
            if field == "id_number" and value:
                value = value.upper()
            setattr(customer, field, value)
    if "consent" in data:
        customer.consent = {**CONSENT_DEFAULT, **(customer.consent or {}), **data["consent"]}
    if "custom_fields" in data:
        merged = {**(customer.custom_fields or {}), **data["custom_fields"]}
        customer.custom_fields = {k: v for k, v in merged.items() if v is not None}
    if "contacts" in data:
        customer.contacts = [Contact(**contact) for contact in data["contacts"]]
    if customer.kind == "company" and customer.contacts and not any(
            c.is_primary for c in customer.contacts):
        customer.contacts[0].is_primary = True


def create(session, data, actor, validated=False):
    data = data if validated else schemas.load(schemas.customer_schema, data)
    _check_unique_mobile(session, data["mobile"])
    moment = now()
    customer = Customer(id=str(uuid.uuid4()), stage="potential", stage_entered_at=moment,
                        member_tier="standard", points=0, leases_signed=0,
                        consent=dict(CONSENT_DEFAULT), custom_fields={},
                        created_at=moment, updated_at=moment)
    _apply_profile(customer, data)
    session.add(customer)
    for tag in data.get("tags", []):
        customer.tags.append(CustomerTag(tag=tag, source="manual"))
    tagging.refresh_rule_tags(customer)
    session.add(StageChange(customer_id=customer.id, from_stage=None, to_stage="potential",
                            trigger="created", actor_id=actor_id(actor), occurred_at=moment))
    session.flush()
    record_event(session, "customer.created", event_snapshot(customer))
    audit_change(session, actor, "customer.created", customer, None)
    return customer


def update(session, customer_id, changes, actor, validated=False):
    changes = changes if validated else schemas.load(schemas.customer_schema, changes,
                                                     partial=True)
    customer = get_active(session, customer_id)
    if "mobile" in changes and changes["mobile"] is None:
        raise InvalidInput({"mobile": ["cannot be removed"]})
    if changes.get("mobile"):
        _check_unique_mobile(session, changes["mobile"], own_id=customer.id)
    if "kind" in changes and changes["kind"] != "company" and (
            changes.get("contacts") or (customer.contacts and "contacts" not in changes)):
        raise InvalidInput({"kind": ["remove the contacts before making this a person"]})
    old_owner = customer.owner_id
    before = audit_view(customer)
    if "tags" in changes:
        set_manual_tags(customer, changes["tags"])
    _apply_profile(customer, changes)
    tagging.refresh_rule_tags(customer)
    customer.updated_at = now()
    session.flush()
    record_event(session, "customer.updated", {"changed": sorted(changes),
                                               **event_snapshot(customer)})
    audit_change(session, actor, "customer.updated", customer, before)
    if customer.owner_id != old_owner:
        _owner_changed(session, customer, old_owner, "edited on the record", actor)
    return customer


def archive(session, customer_id, actor):
    """DELETE: the record leaves lists and searches but is kept for history and reports."""
    customer = get_active(session, customer_id)
    customer.archived_at = customer.updated_at = now()
    record_event(session, "customer.updated", {"changed": ["archived"],
                                               **event_snapshot(customer)})
    audit_change(session, actor, "customer.archived", customer, {"archived": False},
                 {"archived": True})


def set_manual_tags(customer, names):
    keep_rule = [t for t in customer.tags if t.source == "rule" and t.tag not in names]
    existing = {t.tag: t for t in customer.tags}
    customer.tags = keep_rule + [
        existing[n] if n in existing and existing[n].source == "manual"
        else CustomerTag(tag=n, source="manual") for n in dict.fromkeys(names)]


def add_tags(session, customer_id, tags, actor):
    names = schemas.load(schemas.customer_schema, {"tags": tags}, partial=True).get("tags", [])
    if not names:
        raise InvalidInput({"tags": ["give at least one tag"]})
    customer = get_active(session, customer_id)
    before = audit_view(customer)
    current = {t.tag: t for t in customer.tags}
    for name in names:
        if name in current:
            current[name].source = "manual"
        else:
            customer.tags.append(CustomerTag(tag=name, source="manual"))
            current[name] = customer.tags[-1]
    return _tags_changed(session, customer, actor, before)


def remove_tag(session, customer_id, tag, actor):
    customer = get_active(session, customer_id)
    found = [t for t in customer.tags if t.tag == tag]
    if not found:
        raise NotFound(f"customer has no tag {tag!r}", {"tag": tag})
    before = audit_view(customer)
    customer.tags.remove(found[0])
    return _tags_changed(session, customer, actor, before)


def _tags_changed(session, customer, actor, before):
    customer.updated_at = now()
    session.flush()
    record_event(session, "customer.updated", {"changed": ["tags"], **event_snapshot(customer)})
    audit_change(session, actor, "customer.tags_changed", customer, before)
    return customer


# -- interactions --------------------------------------------------------------------------
def add_interaction(session, customer_id, data, actor):
    data = schemas.load(schemas.interaction_schema, data)
    customer = get_active(session, customer_id)
    moment = now()
    interaction = Interaction(customer_id=customer.id, channel=data["channel"],
                              direction=data["direction"], summary=data["summary"],
                              staff_id=actor_id(actor),
                              occurred_at=data.get("occurred_at") or moment, created_at=moment)
    session.add(interaction)
    session.flush()
    audit.record(session, actor, "interaction.added", "interaction", interaction.id, None,
                 interaction_dict(interaction), subject_id=customer.id)
    return interaction_dict(interaction)


def interaction_dict(row):
    return {"id": row.id, "customer_id": row.customer_id, "channel": row.channel,
            "direction": row.direction, "summary": row.summary, "staff_id": row.staff_id,
            "occurred_at": row.occurred_at.isoformat(), "created_at": row.created_at.isoformat()}


def list_interactions(session, customer_id, page=1, per_page=50):
    get(session, customer_id)
    query = select(Interaction).where(Interaction.customer_id == customer_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return {"items": [interaction_dict(r) for r in rows], "total": total, "page": page,
            "per_page": per_page}


# -- ownership -----------------------------------------------------------------------------
def handover(session, data, actor):
    """Move one, some or all customers of an owner to another (业务移交), with history."""
    data = schemas.load(schemas.handover_schema, data)
    query = select(Customer).where(Customer.owner_id == data["from_owner_id"],
                                   Customer.merged_into.is_(None), Customer.erased_at.is_(None))
    if data.get("customer_ids") is not None:
        wanted = set(data["customer_ids"])
        query = query.where(Customer.id.in_(wanted))
    customers = session.scalars(query.order_by(Customer.id).with_for_update()).all()
    if data.get("customer_ids") is not None:
        missing = sorted(wanted - {c.id for c in customers})
        if missing:
            raise InvalidInput({"customer_ids": [
                f"not owned by {data['from_owner_id']} or unknown: {', '.join(missing)}"]})
    for customer in customers:
        customer.owner_id = data["to_owner_id"]
        customer.updated_at = now()
        _owner_changed(session, customer, data["from_owner_id"], data["reason"], actor)
        audit_change(session, actor, "customer.owner_changed", customer,
                     {"owner_id": data["from_owner_id"]},
                     {"owner_id": customer.owner_id, "reason": data["reason"]})
    return {"moved": len(customers), "customer_ids": [c.id for c in customers]}


def _owner_changed(session, customer, old_owner, reason, actor):
    moment = now()
    session.add(OwnerChange(customer_id=customer.id, from_owner_id=old_owner,
                            to_owner_id=customer.owner_id, reason=reason,
                            actor_id=actor_id(actor), occurred_at=moment))
    # open stagnation alerts follow the customer to the new owner
    session.execute(sql_update(StagnationAlert)
                    .where(StagnationAlert.customer_id == customer.id,
                           StagnationAlert.status == "open")
                    .values(owner_id=customer.owner_id))
    record_event(session, "customer.owner_changed", {
        "customer_id": customer.id, "from_owner_id": old_owner,
        "to_owner_id": customer.owner_id, "reason": reason})


def owner_history(session, customer_id):
    get(session, customer_id)
    rows = session.scalars(select(OwnerChange).where(OwnerChange.customer_id == customer_id)
                           .order_by(OwnerChange.id))
    return [{"from_owner_id": r.from_owner_id, "to_owner_id": r.to_owner_id,
             "reason": r.reason, "actor_id": r.actor_id,
             "occurred_at": r.occurred_at.isoformat()} for r in rows]


# -- duplicates and merge ------------------------------------------------------------------
def find_duplicates(session, customer_id):
    customer = get(session, customer_id)
    conditions = []
    if customer.mobile:
        conditions.append(Customer.mobile == customer.mobile)
    if customer.email:
        conditions.append(func.lower(Customer.email) == customer.email.lower())
    if customer.id_number:
        conditions.append(Customer.id_number == customer.id_number)
    if not conditions:
        return []
    rows = session.scalars(select(Customer).where(
        or_(*conditions), Customer.id != customer.id, Customer.merged_into.is_(None),
        Customer.erased_at.is_(None)).order_by(Customer.created_at))
    result = []
    for other in rows:
        matched = [field for field in ("mobile", "id_number") if
                   getattr(customer, field) and getattr(customer, field) == getattr(other, field)]
        if customer.email and other.email and customer.email.lower() == other.email.lower():
            matched.append("email")
        result.append({"customer": to_dict(other), "matched_on": sorted(matched)})
    return result


STAGE_RANK = {"potential": 0, "intent": 1, "churned": 1, "churn_warning": 2,
              "first_time": 3, "repeat": 4}


def merge(session, survivor_id, duplicate_id, actor):
    """Fold ``duplicate_id`` into ``survivor_id``, keeping everything of both.

    The survivor's own values win; its blanks are filled from the duplicate. Tags, contacts,
    interactions, stage and owner history, points and signed leases all move to the survivor.
    The duplicate stays as a tombstone (``merged_into``) so old references still resolve.
    """
    if survivor_id == duplicate_id:
        raise InvalidInput({"duplicate_id": ["must be another customer"]})
    survivor = get_active(session, survivor_id)
    duplicate = get_active(session, duplicate_id)
    survivor_before, duplicate_before = audit_view(survivor), audit_view(duplicate)
    moment = now()
    for field in PROFILE_FIELDS:
        if field != "mobile" and getattr(survivor, field) in (None, "") and getattr(duplicate, field):
            setattr(survivor, field, getattr(duplicate, field))
    survivor.custom_fields = {**(duplicate.custom_fields or {}), **(survivor.custom_fields or {})}
    survivor.consent = {**CONSENT_DEFAULT, **{
        k: bool((survivor.consent or {}).get(k) or (duplicate.consent or {}).get(k))
        for k in CONSENT_DEFAULT}}
    have = {t.tag for t in survivor.tags}
    for tag in duplicate.tags:
        if tag.tag not in have:
            survivor.tags.append(CustomerTag(tag=tag.tag, source=tag.source))
    for contact in list(duplicate.contacts):
        duplicate.contacts.remove(contact)
        survivor.contacts.append(Contact(name=contact.name, mobile=contact.mobile,
                                         email=contact.email, title=contact.title,
                                         is_primary=False))
    for model in (Interaction, StageChange, OwnerChange, ChurnDecision, PointEntry):
        session.execute(sql_update(model).where(model.customer_id == duplicate.id)
                        .values(customer_id=survivor.id))
    session.execute(sql_update(StagnationAlert).where(StagnationAlert.customer_id == duplicate.id,
                                                  StagnationAlert.status == "open")
                    .values(status="resolved", resolved_at=moment))
    survivor.points += duplicate.points
    survivor.member_tier = membership.tier_for(survivor.points)
    survivor.leases_signed += duplicate.leases_signed
    if survivor.value_tier is None:
        survivor.value_tier = duplicate.value_tier
    duplicate_mobile = duplicate.mobile
    duplicate.merged_into = survivor.id
    duplicate.mobile = None  # frees the unique mobile; kept in the event and as a contact note
    duplicate.archived_at = duplicate.updated_at = moment
    survivor.updated_at = moment
    tagging.refresh_rule_tags(survivor)
    session.flush()

    from customer_service import lifecycle

    target = lifecycle.stage_after_merge(survivor, duplicate)
    if target != survivor.stage:
        lifecycle.transition(session, survivor, target, trigger="merge", actor=actor,
                             reason=f"merged with {duplicate.id}")
    record_event(session, "customer.merged", {
        "survivor_id": survivor.id, "merged_id": duplicate.id,
        "merged_mobile": duplicate_mobile, "customer": event_snapshot(survivor)})
    audit_change(session, actor, "customer.merged", survivor, survivor_before,
                 {**audit_view(survivor), "merged_id": duplicate.id})
    audit_change(session, actor, "customer.merged_into", duplicate, duplicate_before)
    return survivor


# -- erasure -------------------------------------------------------------------------------
def erase(session, customer_id, actor):
    """Right to erasure: anonymise the person here and tell every service (customer.erased).

    The person is the record and every record merged into it (directly or through others).
    What stays: the ids, stages, dates and counts, so reports and money records keep adding up.
    Their personal data also leaves the audit trail's copies and this service's kept event
    history (the facts stay: what happened, when, by whom).
    """
    customer = get(session, customer_id, for_update=True)
    if customer.erased_at:
        return customer
    moment = now()
    ids = [customer.id, *_merged_into(session, customer.id)]
    audit.redact(session, ids)
    audit_change(session, actor, "customer.erased", customer, {"erased": False},
                 {"erased": True})
    for record in session.scalars(select(Customer).where(Customer.id.in_(ids))):
        _anonymise(record)
        record.erased_at = record.updated_at = moment
    for model, column in ((Interaction, "summary"), (ChurnDecision, "reason"),
                          (StageChange, "reason")):
        session.execute(sql_update(model).where(model.customer_id.in_(ids))
                        .where(getattr(model, column).is_not(None))
                        .values({column: ERASED_TEXT}))
    forget_subjects(session, ids, scrub_event_data)
    for erased_id in ids:
        record_event(session, "customer.erased", {"customer_id": erased_id,
                                                   "erased_at": moment.isoformat()})
    return customer


#: what erasure keeps of a profile (not personal on their own; reports group by them)
KEPT_ON_ERASURE = ("kind", "owner_id", "district", "city", "source")
ERASED_TEXT = "[erased]"
#: a field's value once its person is erased, in the record and in kept events
ERASED_VALUES = {**{field: None for field in PROFILE_FIELDS if field not in KEPT_ON_ERASURE},
                 "name": ERASED_NAME, "contacts": [], "custom_fields": {}, "tags": [],
                 "reason": ERASED_TEXT, "summary": ERASED_TEXT, "competitor": None}


def _anonymise(customer):
    for field in PROFILE_FIELDS:
        if field not in KEPT_ON_ERASURE:
            setattr(customer, field, None)
    customer.name = ERASED_NAME
    customer.consent = dict(CONSENT_DEFAULT)
    customer.custom_fields = {}
    customer.contacts = []
    customer.tags = []


def scrub_event_data(data, ids):
    """An event's ``data`` with the personal values of the customers ``ids`` erased: in every
    object about one of them (its ``id`` or ``customer_id``), and a merged record's mobile."""
    if isinstance(data, list):
        return [scrub_event_data(item, ids) for item in data]
    if not isinstance(data, dict):
        return data
    data = {key: scrub_event_data(value, ids) for key, value in data.items()}
    if data.get("id") in ids or data.get("customer_id") in ids:
        data.update({key: value for key, value in ERASED_VALUES.items() if key in data})
    if data.get("merged_id") in ids and "merged_mobile" in data:
        data["merged_mobile"] = None
    return data


def _merged_into(session, customer_id):
    """The ids of the records merged into this one, directly or through others."""
    found, frontier = [], [customer_id]
    while frontier:
        frontier = [i for i in session.scalars(select(Customer.id).where(
            Customer.merged_into.in_(frontier))) if i not in found and i != customer_id]
        found.extend(frontier)
    return found


# -- points --------------------------------------------------------------------------------
def adjust_points(session, customer_id, data, actor):
    data = schemas.load(schemas.points_schema, data)
    customer = get_active(session, customer_id)
    before = {"points": customer.points, "member_tier": customer.member_tier}
    membership.add_points(session, customer, data["delta"], data["reason"],
                          actor_id=actor_id(actor))
    customer.updated_at = now()
    audit_change(session, actor, "customer.points_changed", customer, before,
                 {"points": customer.points, "member_tier": customer.member_tier,
                  "delta": data["delta"], "reason": data["reason"]})
    record_event(session, "customer.updated", {"changed": ["member"],
                                               **event_snapshot(customer)})
    return customer


def actor_id(actor):
    return (actor or {}).get("id")
