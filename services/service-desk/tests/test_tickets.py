"""Tickets: creation, numbers, auto-assignment, the state machine, history, comments."""

import pytest

from crm_kit.errors import Conflict, InvalidInput, NotFound
from service_desk_service import agents, tickets

from service_desk_fixtures import (ACTOR, SUPERVISOR, agent, customer, events, new_ticket,
                                   ticket_data, unit)


def test_created_new_with_sla_number_history_and_event(session):
    ticket = new_ticket(session, priority="urgent")
    data = tickets.detail(session, ticket.id)
    assert (data["status"], data["priority"], data["type"], data["channel"]) == (
        "new", "urgent", "repair", "wechat")
    assert data["number"].startswith("T") and data["number"].endswith("-0001")
    assert data["district"] == "高新区"  # the customer's, no unit given
    assert data["assignee_id"] is None and data["created_by"] == "agent-1"
    assert set(data["sla"]) >= {"first_response_due", "resolution_due", "first_responded_at",
                                "resolved_at", "first_response_breached",
                                "resolution_breached"}
    assert data["breached"] is False
    assert data["history"][0]["to_status"] == "new" and data["comments"] == []
    assert data["suggested_articles"] == []
    created = events(session, "ticket.created")
    assert len(created) == 1 and created[0]["data"]["ticket_id"] == ticket.id
    assert "description" not in created[0]["data"]  # free text stays in the service desk


def test_numbers_count_up_per_day(session):
    numbers = [new_ticket(session).number for _ in range(3)]
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003"]
    assert len({n[:10] for n in numbers}) == 1


def test_priority_defaults_to_normal_and_every_type_and_channel_is_taken(session):
    assert new_ticket(session).priority == "normal"
    for ticket_type in ("repair", "complaint", "consultation", "suggestion", "cleaning"):
        for channel in ("phone", "wechat", "weibo", "web", "email", "sms", "in_app",
                        "face_to_face"):
            new_ticket(session, type=ticket_type, channel=channel)


def test_invalid_fields_are_named(session):
    with pytest.raises(InvalidInput) as caught:
        tickets.create(session, ticket_data(type="plumbing", channel="fax", priority="asap",
                                            description="  "), ACTOR, customer())
    assert set(caught.value.details) == {"type", "channel", "priority", "description"}


def test_unit_district_wins_over_the_customers(session):
    agent(session, "tech-wh", districts=["武侯区"])
    ticket = new_ticket(session, unit_record=unit(), unit_id="unit-1")
    assert ticket.district == "武侯区" and ticket.assignee_id == "tech-wh"


def test_auto_assignment_least_loaded_with_skill_and_district(session):
    agent(session, "tech-a")
    agent(session, "tech-b")
    agent(session, "tech-far", districts=["锦江区"])
    agent(session, "clerk", skills=["consultation"])
    first = new_ticket(session)
    assert (first.assignee_id, first.status) == ("tech-a", "assigned")  # tie: by staff id
    second = new_ticket(session)
    assert second.assignee_id == "tech-b"
    assert new_ticket(session).assignee_id == "tech-a"
    assert new_ticket(session, type="consultation").assignee_id == "clerk"
    history = tickets.history(session, first.id)
    assert [(h["from_status"], h["to_status"], h["actor_id"]) for h in history] == [
        (None, "new", "agent-1"), ("new", "assigned", "system")]
    # no one with the skill in the district: anyone with the skill; no one at all: stays new
    other = new_ticket(session, cust=customer(district="双流区"))
    assert other.assignee_id in ("tech-a", "tech-b", "tech-far")
    assert new_ticket(session, type="suggestion").status == "new"


def test_inactive_and_full_agents_are_skipped(session):
    agent(session, "tech-a", max_open=1)
    agent(session, "tech-b", active=False)
    assert new_ticket(session).assignee_id == "tech-a"
    assert new_ticket(session).assignee_id is None  # tech-a is at max_open
    registry = {a["staff_id"]: a for a in agents.registry(session)}
    assert registry["tech-a"]["open_tickets"] == 1 and registry["tech-b"]["active"] is False
    with pytest.raises(InvalidInput) as caught:
        agents.set_agent(session, "x", {"skills": ["gardening"]}, SUPERVISOR)
    assert "skills" in caught.value.details


def test_manual_assignment_and_reassignment(session):
    ticket = new_ticket(session)
    tickets.assign(session, ticket.id, "tech-z", SUPERVISOR)
    assert (ticket.status, ticket.assignee_id) == ("assigned", "tech-z")
    tickets.assign(session, ticket.id, "tech-y", SUPERVISOR)
    assert (ticket.status, ticket.assignee_id) == ("assigned", "tech-y")
    last = tickets.history(session, ticket.id)[-1]
    assert (last["action"], last["actor_id"], last["note"]) == (
        "assigned", "sup-1", "reassigned from tech-z to tech-y")
    agent(session, "tech-off", active=False)
    with pytest.raises(Conflict):
        tickets.assign(session, ticket.id, "tech-off", SUPERVISOR)
    with pytest.raises(NotFound):
        tickets.assign(session, "nope", "tech-y", SUPERVISOR)


ALLOWED = {("new", "assigned"), ("assigned", "in_progress"), ("assigned", "resolved"),
           ("in_progress", "awaiting_customer"), ("in_progress", "resolved"),
           ("awaiting_customer", "in_progress"), ("resolved", "closed"),
           ("resolved", "reopened"), ("closed", "reopened"), ("reopened", "assigned"),
           ("reopened", "in_progress")}
PATHS = {"new": [], "assigned": ["assigned"], "in_progress": ["assigned", "in_progress"],
         "awaiting_customer": ["assigned", "in_progress", "awaiting_customer"],
         "resolved": ["assigned", "resolved"], "closed": ["assigned", "resolved", "closed"],
         "reopened": ["assigned", "resolved", "reopened"]}


def _reach(session, status):
    ticket = new_ticket(session)
    if status == "new":
        return ticket
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    for step in PATHS[status][1:]:
        tickets.change_status(session, ticket.id, step, "why", ACTOR)
    assert ticket.status == status
    return ticket


@pytest.mark.parametrize("source", sorted(PATHS))
@pytest.mark.parametrize("target", ["new", "assigned", "in_progress", "awaiting_customer",
                                    "resolved", "closed", "reopened"])
def test_only_allowed_transitions(session, source, target):
    ticket = _reach(session, source)
    if (source, target) in ALLOWED:
        if source == "new":
            ticket.assignee_id = "tech-a"
        tickets.change_status(session, ticket.id, target, "a note", ACTOR)
        assert ticket.status == target
        last = tickets.history(session, ticket.id)[-1]
        assert (last["from_status"], last["to_status"], last["actor_id"], last["note"]) == (
            source, target, "agent-1", "a note")
        assert last["occurred_at"]
    else:
        before = len(tickets.history(session, ticket.id))
        with pytest.raises(Conflict):
            tickets.change_status(session, ticket.id, target, "a note", ACTOR)
        assert ticket.status == source
        assert len(tickets.history(session, ticket.id)) == before


def test_assigned_needs_an_assignee_and_reopen_a_reason(session):
    ticket = new_ticket(session)
    with pytest.raises(Conflict):
        tickets.change_status(session, ticket.id, "assigned", None, ACTOR)
    resolved = _reach(session, "resolved")
    with pytest.raises(InvalidInput) as caught:
        tickets.change_status(session, resolved.id, "reopened", " ", ACTOR)
    assert "note" in caught.value.details
    with pytest.raises(InvalidInput) as caught:
        tickets.reopen(session, resolved.id, "", ACTOR)
    assert "reason" in caught.value.details
    tickets.reopen(session, resolved.id, "still leaking", ACTOR)
    assert (resolved.status, resolved.resolved_at) == ("reopened", None)
    with pytest.raises(InvalidInput):
        tickets.change_status(session, resolved.id, "done", None, ACTOR)


def test_resolving_emits_events_and_keeps_the_note(session):
    ticket = _reach(session, "in_progress")
    tickets.change_status(session, ticket.id, "resolved", "replaced the drain pipe", ACTOR)
    assert ticket.resolution_note == "replaced the drain pipe" and ticket.resolved_at
    resolved = events(session, "ticket.resolved")
    assert len(resolved) == 1 and resolved[0]["data"]["resolution_round"] == 1
    changed = [e["data"]["to_status"] for e in events(session, "ticket.status_changed")]
    assert changed == ["assigned", "in_progress", "resolved"]


def test_first_response_is_the_first_staff_move_or_comment(session):
    ticket = new_ticket(session)
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    assert ticket.first_responded_at is None  # an assignment is not a response
    comment = tickets.add_comment(session, ticket.id, "明天上午上门", ACTOR)
    assert ticket.first_responded_at == comment.created_at
    first = ticket.first_responded_at
    tickets.change_status(session, ticket.id, "in_progress", None, ACTOR)
    assert ticket.first_responded_at == first
    other = new_ticket(session)
    tickets.assign(session, other.id, "tech-a", SUPERVISOR)
    tickets.change_status(session, other.id, "in_progress", None, ACTOR)
    assert other.first_responded_at is not None
    data = tickets.detail(session, ticket.id)
    assert [c["body"] for c in data["comments"]] == ["明天上午上门"]
    with pytest.raises(InvalidInput):
        tickets.add_comment(session, ticket.id, "   ", ACTOR)


def test_lists_filter(session):
    agent(session, "tech-a")
    a = new_ticket(session)
    b = new_ticket(session, type="complaint", priority="high", cust=customer("cust-2"),
                   customer_id="cust-2")
    page = tickets.search(session, {"type": "complaint"})
    assert [t["id"] for t in page["items"]] == [b.id]
    assert tickets.search(session, {"assignee_id": "tech-a"})["total"] == 1
    assert tickets.search(session, {"customer_id": "cust-1"})["items"][0]["id"] == a.id
    assert tickets.search(session, {"status": "new", "priority": "high"})["total"] == 1
    assert tickets.search(session, {"breached": False})["total"] == 2
    assert tickets.search(session, {}, 1, 1)["total"] == 2
    assert "history" not in tickets.search(session, {})["items"][0]
    with pytest.raises(InvalidInput):
        tickets.search(session, {"status": "lost"})
