"""Tickets (服务单) and their closed loop. Plain functions over a SQLAlchemy session; the caller
owns the transaction. The customer, unit and lease are checked by the service (RPC) before
the transaction and handed in as records.

- Created at any hour, by any channel (message-leaving outside service hours): the SLA clock
  starts at the next business minute. Number ``T<yyyymmdd>-<seq>`` per business-calendar day,
  unique; two creations racing for a number retry with the next one.
- On creation the ticket is auto-assigned (``agents.pick``) — then ``assigned`` — or stays
  ``new``; it returns the five most similar knowledge-base articles.
- Status changes follow ``vocabulary.TRANSITIONS`` (anything else: Conflict), each a history
  row (who, when, from, to, note). ``assigned`` needs an assignee; ``reopened`` needs a reason.
- First response: the first move by staff into in_progress/awaiting_customer/resolved, or the
  first staff comment, whichever comes first (an assignment is not a response).
- Feedback: rating 1-5 on a resolved or closed ticket, once per resolution (a ticket reopened
  and resolved again can be rated again); a rating ≤ 2 does not reopen the ticket by itself —
  the event says ``low_rating`` and staff reopen it with a reason.
"""
import uuid
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from crm_kit.envelope import now as utc_now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from service_desk_service import agents, knowledge, schemas, sla, vocabulary as v
from service_desk_service.models import (Agent, Appointment, Feedback, Ticket, TicketChange,
                                        TicketComment)

NUMBER_ATTEMPTS = 8


def _iso(value):
    return value.isoformat() if value else None


def appointment_dict(appointment):
    return {"id": appointment.id, "ticket_id": appointment.ticket_id,
            "technician_id": appointment.technician_id,
            "scheduled_at": appointment.scheduled_at.isoformat(),
            "ends_at": appointment.ends_at.isoformat(),
            "duration_minutes": int((appointment.ends_at - appointment.scheduled_at)
                                    .total_seconds() // 60),
            "status": appointment.status, "booked_by": appointment.booked_by,
            "created_at": appointment.created_at.isoformat()}


def feedback_dict(feedback):
    return {"rating": feedback.rating, "comment": feedback.comment, "round": feedback.round,
            "created_at": feedback.created_at.isoformat()}


def comment_dict(comment):
    return {"id": comment.id, "ticket_id": comment.ticket_id, "author_id": comment.author_id,
            "body": comment.body, "created_at": comment.created_at.isoformat()}


def change_dict(change):
    return {"action": change.action, "from_status": change.from_status,
            "to_status": change.to_status, "actor_id": change.actor_id,
            "assignee_id": change.assignee_id, "escalated_to": change.escalated_to,
            "note": change.note, "occurred_at": change.occurred_at.isoformat()}


def to_dict(ticket, moment=None):
    state = sla.ticket_sla(ticket, moment)
    scheduled = [a for a in ticket.appointments if a.status == "scheduled"]
    return {"id": ticket.id, "number": ticket.number, "customer_id": ticket.customer_id,
            "type": ticket.type, "channel": ticket.channel, "priority": ticket.priority,
            "description": ticket.description, "unit_id": ticket.unit_id,
            "lease_id": ticket.lease_id, "district": ticket.district, "status": ticket.status,
            "assignee_id": ticket.assignee_id, "created_by": ticket.created_by, "sla": state,
            "breached": state["first_response_breached"] or state["resolution_breached"],
            "appointment": appointment_dict(scheduled[-1]) if scheduled else None,
            "feedback": feedback_dict(ticket.feedbacks[-1]) if ticket.feedbacks else None,
            "resolution_note": ticket.resolution_note,
            "created_at": ticket.created_at.isoformat(),
            "updated_at": ticket.updated_at.isoformat()}


def detail(session, ticket_id, suggested=None):
    """A ticket with ``history``, ``comments`` and ``suggested_articles``."""
    ticket = get(session, ticket_id)
    data = to_dict(ticket)
    data["history"] = history(session, ticket.id)
    data["comments"] = [comment_dict(c) for c in session.scalars(
        select(TicketComment).where(TicketComment.ticket_id == ticket.id)
        .order_by(TicketComment.id)).all()]
    data["suggested_articles"] = (suggested if suggested is not None
                                  else knowledge.suggest(session, ticket.description))
    return data


def history(session, ticket_id):
    return [change_dict(c) for c in session.scalars(
        select(TicketChange).where(TicketChange.ticket_id == ticket_id)
        .order_by(TicketChange.id)).all()]


def get(session, ticket_id, for_update=False):
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    ticket = session.scalars(query).first()
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist", {"ticket_id": ticket_id})
    return ticket


def search(session, filters, page=1, per_page=50):
    """Tickets newest first by ``status, type, priority, channel, assignee_id, customer_id,
    district, number`` and ``breached`` (true: a target missed, now or in the past)."""
    filters = schemas.load_filters(schemas.ticket_filter_schema, filters)
    query = select(Ticket)
    for name in ("status", "type", "priority", "channel", "assignee_id", "customer_id",
                 "district", "number"):
        if filters.get(name):
            query = query.where(getattr(Ticket, name) == filters[name])
    if filters.get("customer_ids") is not None:
        query = query.where(Ticket.customer_id.in_(filters["customer_ids"]))
    moment = utc_now()
    if "breached" in filters:
        clause = sla.breached_clause(moment)
        query = query.where(clause if filters["breached"] else ~clause)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [to_dict(t, moment) for t in rows], "total": total, "page": page,
            "per_page": per_page}


def _record(session, ticket, action, from_status, to_status, actor_id, note=None,
            moment=None, escalated_to=None):
    session.add(TicketChange(ticket_id=ticket.id, action=action, from_status=from_status,
                             to_status=to_status, actor_id=actor_id,
                             assignee_id=ticket.assignee_id, escalated_to=escalated_to,
                             note=note, occurred_at=moment or utc_now()))


def _next_number(session, day):
    seq = (session.scalar(select(func.max(Ticket.number_seq))
                          .where(Ticket.number_day == day)) or 0) + 1
    return seq, f"T{day:%Y%m%d}-{seq:04d}"


def create(session, data, actor, customer, unit=None, lease=None):
    """Create a ticket from ``data`` (checked already by the service against ``customer``,
    ``unit`` and ``lease``, the records the other services returned). Returns
    ``(ticket, suggested_articles)``."""
    data = schemas.load(schemas.ticket_schema, data)
    moment = utc_now()
    calendar = sla.calendar(session)
    first_due, resolution_due = sla.due_dates(session, data["type"], data["priority"], moment)
    district = (unit or {}).get("district") or customer.get("district")
    assignee = agents.pick(session, data["type"], district)
    day = calendar.local_day(moment)
    for attempt in range(NUMBER_ATTEMPTS):
        seq, number = _next_number(session, day)
        ticket = Ticket(
            id=str(uuid.uuid4()), number=number, number_day=day, number_seq=seq,
            customer_id=customer["id"], type=data["type"], channel=data["channel"],
            priority=data["priority"], description=data["description"].strip(),
            unit_id=data.get("unit_id") or (lease or {}).get("unit_id"),
            lease_id=data.get("lease_id"), district=district, status="new",
            assignee_id=None, created_by=(actor or {}).get("id"),
            first_response_due=first_due, resolution_due=resolution_due,
            resolution_round=0, created_at=moment, updated_at=moment)
        try:
            with session.begin_nested():  # a concurrent creation took the number: next one
                session.add(ticket)
                session.flush()
            break
        except IntegrityError:
            if attempt == NUMBER_ATTEMPTS - 1:
                raise
    actor_id = (actor or {}).get("id")
    _record(session, ticket, "created", None, "new", actor_id,
            f"via {ticket.channel}", moment)
    record_event(session, "ticket.created", {
        "ticket_id": ticket.id, "number": ticket.number, "customer_id": ticket.customer_id,
        "type": ticket.type, "channel": ticket.channel, "priority": ticket.priority,
        "unit_id": ticket.unit_id, "lease_id": ticket.lease_id, "district": ticket.district,
        "first_response_due": first_due.isoformat(), "resolution_due": resolution_due.isoformat(),
        "created_at": moment.isoformat()})
    if assignee:
        ticket.assignee_id = assignee
        _move(session, ticket, "assigned", v.SYSTEM_ACTOR, "assigned",
              f"auto-assigned to {assignee} (type, district, load)", moment)
    session.flush()
    return ticket, knowledge.suggest(session, ticket.description)


def _event_base(ticket):
    return {"ticket_id": ticket.id, "number": ticket.number, "customer_id": ticket.customer_id,
            "type": ticket.type, "priority": ticket.priority, "channel": ticket.channel}


def _move(session, ticket, to_status, actor_id, action="status", note=None, moment=None):
    """Change the status (no checks here), with its history row and events."""
    moment = moment or utc_now()
    from_status = ticket.status
    ticket.status = to_status
    ticket.updated_at = moment
    if (to_status in v.RESPONSE_STATUSES and ticket.first_responded_at is None
            and actor_id != v.SYSTEM_ACTOR):
        ticket.first_responded_at = moment
    if to_status == "resolved":
        ticket.resolved_at = moment
        ticket.resolution_round += 1
        if note:
            ticket.resolution_note = note
    elif to_status == "reopened":
        ticket.resolved_at = None
    _record(session, ticket, action, from_status, to_status, actor_id, note, moment)
    record_event(session, "ticket.status_changed", {
        **_event_base(ticket), "from_status": from_status, "to_status": to_status,
        "assignee_id": ticket.assignee_id, "actor_id": actor_id})
    if to_status == "resolved":
        state = sla.ticket_sla(ticket, moment)
        record_event(session, "ticket.resolved", {
            **_event_base(ticket), "assignee_id": ticket.assignee_id,
            "created_at": ticket.created_at.isoformat(), "resolved_at": moment.isoformat(),
            "resolution_round": ticket.resolution_round,
            "first_response_breached": state["first_response_breached"],
            "resolution_breached": state["resolution_breached"]})


def assign(session, ticket_id, assignee_id, actor):
    """Assign or reassign (a supervisor's call; the gateway checks the role). A new or
    reopened ticket becomes ``assigned``; an open one keeps its status; a resolved or closed
    one cannot be assigned (Conflict). An agent in the registry marked inactive cannot take
    tickets (Conflict); staff not in the registry can."""
    assignee_id = schemas.load(schemas.assign_schema, {"assignee_id": assignee_id})["assignee_id"]
    ticket = get(session, ticket_id, for_update=True)
    if ticket.status in v.DONE_STATUSES:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}; reopen it first",
                       {"status": ticket.status})
    agent = session.get(Agent, assignee_id)
    if agent is not None and not agent.active:
        raise Conflict(f"agent {assignee_id} is inactive", {"assignee_id": assignee_id})
    actor_id = (actor or {}).get("id")
    previous = ticket.assignee_id
    ticket.assignee_id = assignee_id
    note = (f"reassigned from {previous} to {assignee_id}" if previous
            else f"assigned to {assignee_id}")
    if ticket.status in ("new", "reopened"):
        _move(session, ticket, "assigned", actor_id, "assigned", note)
    else:
        ticket.updated_at = utc_now()
        _record(session, ticket, "assigned", ticket.status, ticket.status, actor_id, note)
    session.flush()
    return ticket


def change_status(session, ticket_id, status, note, actor):
    data = schemas.load(schemas.status_schema, {"status": status, "note": note})
    ticket = get(session, ticket_id, for_update=True)
    to_status = data["status"]
    if to_status not in v.TRANSITIONS.get(ticket.status, ()):
        raise Conflict(f"ticket {ticket.number} cannot go from {ticket.status} to {to_status}",
                       {"status": ticket.status, "allowed": list(v.TRANSITIONS[ticket.status])})
    if to_status == "assigned" and not ticket.assignee_id:
        raise Conflict(f"ticket {ticket.number} has no assignee; assign it",
                       {"status": ticket.status})
    if to_status == "reopened" and not (data["note"] or "").strip():
        raise InvalidInput({"note": ["say why the ticket is reopened"]})
    _move(session, ticket, to_status, (actor or {}).get("id"), "status", data["note"])
    session.flush()
    return ticket


def reopen(session, ticket_id, reason, actor):
    reason = schemas.load(schemas.reopen_schema, {"reason": reason})["reason"]
    return change_status(session, ticket_id, "reopened", reason, actor)


def add_comment(session, ticket_id, body, actor):
    """A comment by staff; the first one is the first response if none came before."""
    body = schemas.load(schemas.comment_schema, {"body": body})["body"]
    ticket = get(session, ticket_id, for_update=True)
    moment = utc_now()
    actor_id = (actor or {}).get("id")
    comment = TicketComment(ticket_id=ticket.id, author_id=actor_id, body=body.strip(),
                            created_at=moment)
    session.add(comment)
    if actor_id and ticket.first_responded_at is None:
        ticket.first_responded_at = moment
    ticket.updated_at = moment
    session.flush()
    return comment


def record_feedback(session, ticket_id, data, actor):
    data = schemas.load(schemas.feedback_schema, data)
    ticket = get(session, ticket_id, for_update=True)
    if ticket.status not in v.DONE_STATUSES:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}; feedback comes after "
                       "resolution", {"status": ticket.status})
    if any(f.round == ticket.resolution_round for f in ticket.feedbacks):
        raise Conflict(f"ticket {ticket.number} has feedback for this resolution already",
                       {"status": ticket.status})
    moment = utc_now()
    comment = (data.get("comment") or "").strip() or None
    session.add(Feedback(ticket_id=ticket.id, round=ticket.resolution_round,
                         rating=data["rating"], comment=comment,
                         recorded_by=(actor or {}).get("id"), created_at=moment))
    _record(session, ticket, "feedback", ticket.status, ticket.status,
            (actor or {}).get("id"), f"rating {data['rating']}/5", moment)
    ticket.updated_at = moment
    record_event(session, "ticket.feedback_received", {
        **_event_base(ticket), "rating": data["rating"], "low_rating": data["rating"] <= 2,
        # the review itself, for analytics' sentiment (erased with the customer everywhere)
        "comment": comment,
        "has_comment": comment is not None, "comment_length": len(comment or ""),
        "resolution_round": ticket.resolution_round, "assignee_id": ticket.assignee_id})
    session.flush()
    session.expire(ticket, ["feedbacks"])
    return ticket


def book_appointment(session, ticket_id, data, actor):
    """An on-site visit for an open repair or cleaning ticket: ``{scheduled_at,
    duration_minutes? (90), technician_id? (the assignee, else the actor)}``. The technician
    must be free for ``[scheduled_at, +duration)`` (Conflict naming the clashing visit).
    Booking again reschedules: the ticket's earlier visit is cancelled."""
    data = schemas.load(schemas.appointment_schema, data)
    ticket = get(session, ticket_id, for_update=True)
    if ticket.type not in v.ON_SITE_TYPES:
        raise Conflict(f"ticket {ticket.number} is a {ticket.type}; on-site visits are for "
                       + " and ".join(v.ON_SITE_TYPES), {"type": ticket.type})
    if ticket.status in v.DONE_STATUSES:
        raise Conflict(f"ticket {ticket.number} is {ticket.status}", {"status": ticket.status})
    technician_id = data["technician_id"] or ticket.assignee_id or (actor or {}).get("id")
    if not technician_id:
        raise InvalidInput({"technician_id": ["Missing data for required field."]})
    start = data["scheduled_at"]
    moment = utc_now()
    if start < moment - _minutes(60):
        raise InvalidInput({"scheduled_at": ["must not be in the past"]})
    end = start + _minutes(data["duration_minutes"])
    _lock_technician(session, technician_id)
    clash = session.scalars(select(Appointment).where(
        Appointment.technician_id == technician_id, Appointment.status == "scheduled",
        Appointment.ticket_id != ticket.id,
        Appointment.scheduled_at < end, Appointment.ends_at > start)
        .order_by(Appointment.scheduled_at).limit(1)).first()
    if clash is not None:
        raise Conflict(f"technician {technician_id} is booked then",
                       {"field": "technician_id", "existing_id": clash.id,
                        "scheduled_at": clash.scheduled_at.isoformat(),
                        "ends_at": clash.ends_at.isoformat()})
    for earlier in ticket.appointments:
        if earlier.status == "scheduled":
            session.get(Appointment, earlier.id).status = "cancelled"
    appointment = Appointment(id=str(uuid.uuid4()), ticket_id=ticket.id,
                              technician_id=technician_id, scheduled_at=start, ends_at=end,
                              status="scheduled", booked_by=(actor or {}).get("id"),
                              created_at=moment)
    session.add(appointment)
    _record(session, ticket, "appointment", ticket.status, ticket.status,
            (actor or {}).get("id"),
            f"on-site visit by {technician_id} at {start.isoformat()}", moment)
    ticket.updated_at = moment
    session.flush()
    session.expire(ticket, ["appointments"])
    return appointment


def _minutes(n):
    return timedelta(minutes=n)


def _lock_technician(session, technician_id):
    """Serialise bookings of one technician (two at once could both see a free slot).
    PostgreSQL: a transaction-scoped advisory lock; SQLite has a single writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"technician:{technician_id}"})
