"""SLA: targets per type and priority in business minutes, the business calendar, breach scans.

- Targets default to ``vocabulary.DEFAULT_SLA``; ``set_sla_policy`` overrides pairs and
  calendar fields in the database (``settings`` rows). A ticket's due instants are fixed when it
  is created (a later policy change does not move them).
- First response is due ``first_response_minutes`` business minutes after creation, resolution
  ``resolution_minutes`` after creation; the clock does not stop while awaiting the customer,
  and a reopened ticket keeps its original resolution target.
- A target is breached when it passed without the response/resolution, or was met late. That
  is computed at read time (``breached`` is always current); the scan (timer every
  ``CRM_SLA_SCAN_SECONDS``) announces each breach once per kind and ticket
  (``ticket.sla_breached``) and records the escalation to the assignee's supervisor.
"""
from sqlalchemy import and_, func, literal, or_, select

from crm_kit.envelope import now as utc_now
from crm_kit.errors import InvalidInput
from crm_kit.outbox import record_event
from crm_kit.types import UtcDateTime
from service_desk_service import agents, schemas, vocabulary as v
from service_desk_service.business_time import (BusinessCalendar, CalendarError,
                                                add_business_minutes)
from service_desk_service.models import Setting, Ticket, TicketChange


def _setting(session, key):
    row = session.get(Setting, key)
    return row.value if row is not None else None


def calendar_dict(session):
    stored = _setting(session, "calendar") or {}
    return {**v.DEFAULT_CALENDAR, **stored}


def calendar(session):
    return BusinessCalendar.from_dict(calendar_dict(session))


def targets(session):
    """``{type: {priority: {first_response_minutes, resolution_minutes}}}`` in force."""
    stored = _setting(session, "sla_targets") or {}
    result = {}
    for ticket_type, by_priority in v.DEFAULT_SLA.items():
        result[ticket_type] = {}
        for priority, (first, resolution) in by_priority.items():
            result[ticket_type][priority] = stored.get(ticket_type, {}).get(priority) or {
                "first_response_minutes": first, "resolution_minutes": resolution}
    return result


def policy(session):
    return {"targets": targets(session), "calendar": calendar_dict(session)}


def set_policy(session, data, actor):
    data = schemas.load(schemas.sla_policy_schema, data)
    moment = utc_now()
    actor_id = (actor or {}).get("id")
    if "calendar" in data:
        merged = {**calendar_dict(session), **data["calendar"]}
        for name in ("holidays", "workdays"):
            merged[name] = sorted({d if isinstance(d, str) else d.isoformat()
                                   for d in merged.get(name) or ()})
        try:
            BusinessCalendar.from_dict(merged)
        except CalendarError as exc:
            raise InvalidInput({"calendar": [str(exc)]}) from None
        _store(session, "calendar", merged, actor_id, moment)
    if "targets" in data:
        stored = dict(_setting(session, "sla_targets") or {})
        for ticket_type, by_priority in data["targets"].items():
            stored[ticket_type] = {**stored.get(ticket_type, {}), **by_priority}
        _store(session, "sla_targets", stored, actor_id, moment)
    session.flush()
    return policy(session)


def _store(session, key, value, actor_id, moment):
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value, updated_by=actor_id, updated_at=moment))
    else:
        row.value, row.updated_by, row.updated_at = value, actor_id, moment


def due_dates(session, ticket_type, priority, created_at):
    """(first_response_due, resolution_due) for a ticket created at ``created_at``."""
    target = targets(session)[ticket_type][priority]
    cal = calendar(session)
    return (add_business_minutes(created_at, target["first_response_minutes"], cal),
            add_business_minutes(created_at, target["resolution_minutes"], cal))


# -- breaches ------------------------------------------------------------------------------
def first_response_breached(moment):
    """SQL: the first-response target passed unanswered, or was answered late (never NULL,
    so ``~`` of it is the opposite)."""
    return func.coalesce(Ticket.first_responded_at, _at(moment)) > Ticket.first_response_due


def resolution_breached(moment):
    return func.coalesce(Ticket.resolved_at, _at(moment)) > Ticket.resolution_due


def _at(moment):
    return literal(moment, UtcDateTime())


def breached_clause(moment):
    return or_(first_response_breached(moment), resolution_breached(moment))


def ticket_sla(ticket, moment=None):
    moment = moment or utc_now()
    first = (ticket.first_responded_at or moment) > ticket.first_response_due
    resolution = (ticket.resolved_at or moment) > ticket.resolution_due
    return {"first_response_due": ticket.first_response_due.isoformat(),
            "resolution_due": ticket.resolution_due.isoformat(),
            "first_responded_at": _iso(ticket.first_responded_at),
            "resolved_at": _iso(ticket.resolved_at),
            "first_response_breached": first, "resolution_breached": resolution}


def _iso(value):
    return value.isoformat() if value else None


def scan(session, moment=None):
    """Announce every breach not announced yet: ``ticket.sla_breached`` once per kind and
    ticket, an escalation row in the history naming the assignee's supervisor. Claims rows
    with SKIP LOCKED so two instances do not announce twice. Returns the number announced."""
    moment = moment or utc_now()
    rows = session.scalars(select(Ticket).where(or_(
        and_(Ticket.first_response_breached_at.is_(None), first_response_breached(moment)),
        and_(Ticket.resolution_breached_at.is_(None), resolution_breached(moment))))
        .order_by(Ticket.created_at).limit(1000).with_for_update(skip_locked=True)).all()
    announced = 0
    for ticket in rows:
        state = ticket_sla(ticket, moment)
        for kind in v.SLA_KINDS:
            if not state[f"{kind}_breached"] or getattr(ticket, f"{kind}_breached_at"):
                continue
            setattr(ticket, f"{kind}_breached_at", moment)
            supervisor_id = agents.supervisor_of(session, ticket.assignee_id)
            due = getattr(ticket, f"{kind}_due")
            note = (f"SLA {kind.replace('_', ' ')} target {due.isoformat()} missed; "
                    + (f"escalated to supervisor {supervisor_id}" if supervisor_id
                       else "no supervisor on record for the assignee"))
            session.add(TicketChange(
                ticket_id=ticket.id, action="escalated", from_status=ticket.status,
                to_status=ticket.status, actor_id=v.SYSTEM_ACTOR, assignee_id=ticket.assignee_id,
                escalated_to=supervisor_id, note=note, occurred_at=moment))
            record_event(session, "ticket.sla_breached", {
                "ticket_id": ticket.id, "number": ticket.number,
                "customer_id": ticket.customer_id, "type": ticket.type,
                "priority": ticket.priority, "status": ticket.status, "kind": kind,
                "due_at": due.isoformat(), "assignee_id": ticket.assignee_id,
                "supervisor_id": supervisor_id})
            announced += 1
    session.flush()
    return announced
