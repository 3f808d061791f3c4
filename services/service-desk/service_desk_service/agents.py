"""The assignment registry and the assignment rule.

An agent (service agent, housekeeper or technician) has ``skills`` (ticket types), the
``districts`` they cover, ``active``, a ``supervisor_id`` (escalations go there) and an
optional ``max_open`` cap. A new ticket goes to the least-loaded active agent — fewest open
tickets (``vocabulary.OPEN_STATUSES``), ties by staff id — who has the ticket's type as a skill
and covers its district; if nobody covers the district, the least-loaded agent with the skill
anywhere; agents at their ``max_open`` are skipped; nobody → the ticket stays ``new`` for a
supervisor to assign.
"""
from sqlalchemy import func, select

from crm_kit.envelope import now as utc_now
from crm_kit.errors import InvalidInput
from service_desk_service import schemas, vocabulary as v
from service_desk_service.models import Agent, Ticket


def to_dict(agent, load=None):
    data = {"staff_id": agent.staff_id, "skills": list(agent.skills or []),
            "districts": list(agent.districts or []), "active": agent.active,
            "supervisor_id": agent.supervisor_id, "max_open": agent.max_open,
            "updated_at": agent.updated_at.isoformat()}
    if load is not None:
        data["open_tickets"] = load
    return data


def loads(session):
    """{staff_id: number of open tickets assigned}."""
    return dict(session.execute(
        select(Ticket.assignee_id, func.count()).where(
            Ticket.assignee_id.is_not(None), Ticket.status.in_(v.OPEN_STATUSES))
        .group_by(Ticket.assignee_id)).all())


def registry(session):
    counts = loads(session)
    return [to_dict(agent, counts.get(agent.staff_id, 0)) for agent in
            session.scalars(select(Agent).order_by(Agent.staff_id)).all()]


def set_agent(session, staff_id, data, actor):
    if not isinstance(staff_id, str) or not 1 <= len(staff_id) <= 36:
        raise InvalidInput({"staff_id": ["must be 1-36 characters"]})
    data = schemas.load(schemas.agent_schema, data)
    agent = session.get(Agent, staff_id)
    if agent is None:
        agent = Agent(staff_id=staff_id)
        session.add(agent)
    agent.skills = sorted(set(data["skills"]))
    agent.districts = sorted(set(data["districts"]))
    agent.active = data["active"]
    agent.supervisor_id = data["supervisor_id"]
    agent.max_open = data["max_open"]
    agent.updated_by = (actor or {}).get("id")
    agent.updated_at = utc_now()
    session.flush()
    return to_dict(agent, loads(session).get(staff_id, 0))


def supervisor_of(session, staff_id):
    if not staff_id:
        return None
    agent = session.get(Agent, staff_id)
    return agent.supervisor_id if agent is not None else None


def pick(session, ticket_type, district):
    """The staff id a new ticket goes to, or None (see the module docstring)."""
    candidates = [a for a in session.scalars(select(Agent).where(Agent.active.is_(True))).all()
                  if ticket_type in (a.skills or [])]
    if not candidates:
        return None
    counts = loads(session)
    free = [a for a in candidates
            if a.max_open is None or counts.get(a.staff_id, 0) < a.max_open]
    local = [a for a in free if district and district in (a.districts or [])]
    pool = local or free
    if not pool:
        return None
    return min(pool, key=lambda a: (counts.get(a.staff_id, 0), a.staff_id)).staff_id
