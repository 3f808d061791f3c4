"""Shared test data and helpers of the service desk's tests."""
import json
from pathlib import Path

from sqlalchemy import select

import service_desk_service
from crm_kit.models import OutboxEvent
from service_desk_service import agents, tickets

MIGRATIONS = Path(service_desk_service.__file__).parent / "migrations"
ACTOR = {"id": "agent-1", "roles": ["service_agent"]}
SUPERVISOR = {"id": "sup-1", "roles": ["sales_supervisor"]}


def customer(customer_id="cust-1", **overrides):
    """A customer dict as the customer service's ``get_customer`` returns it (the fields the
    service desk reads)."""
    data = {"id": customer_id, "name": "王小明", "district": "高新区", "merged_into": None,
            "archived": False, "erased": False}
    data.update(overrides)
    return data


def unit(unit_id="unit-1", district="武侯区"):
    return {"id": unit_id, "code": "WH-101", "district": district}


def ticket_data(**overrides):
    data = {"customer_id": "cust-1", "type": "repair", "channel": "wechat",
            "description": "卧室空调漏水，滴到地板上"}
    data.update(overrides)
    return data


def new_ticket(session, actor=ACTOR, cust=None, unit_record=None, **overrides):
    ticket, _ = tickets.create(session, ticket_data(**overrides), actor, cust or customer(),
                               unit_record)
    return ticket


def agent(session, staff_id, skills=("repair",), districts=("高新区",), **extra):
    return agents.set_agent(session, staff_id, {"skills": list(skills),
                                                "districts": list(districts), **extra},
                            SUPERVISOR)


def events(session, event_type=None):
    rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    found = [json.loads(r.envelope) for r in rows]
    return [e for e in found if event_type is None or e["type"] == event_type]
