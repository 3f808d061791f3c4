"""SLA: targets, the calendar in the database, breaches found and announced once."""
from datetime import timedelta

import pytest

from crm_kit.envelope import now
from crm_kit.errors import InvalidInput
from service_desk_service import sla, tickets
from service_desk_service.business_time import add_business_minutes

from service_desk_fixtures import ACTOR, SUPERVISOR, agent, events, new_ticket


def test_default_targets_cover_every_type_and_priority(session):
    policy = sla.policy(session)
    assert policy["calendar"]["timezone"] == "Asia/Shanghai"
    assert (policy["calendar"]["opens"], policy["calendar"]["closes"]) == ("09:00", "21:00")
    for ticket_type in ("repair", "complaint", "consultation", "suggestion", "cleaning"):
        for priority in ("low", "normal", "high", "urgent"):
            target = policy["targets"][ticket_type][priority]
            assert 0 < target["first_response_minutes"] <= target["resolution_minutes"]
    assert policy["targets"]["repair"]["urgent"] == {"first_response_minutes": 30,
                                                     "resolution_minutes": 240}


def test_due_dates_use_business_minutes(session):
    ticket = new_ticket(session, priority="urgent")
    cal = sla.calendar(session)
    assert ticket.first_response_due == add_business_minutes(ticket.created_at, 30, cal)
    assert ticket.resolution_due == add_business_minutes(ticket.created_at, 240, cal)


def test_policy_overrides_and_calendar_are_stored(session):
    policy = sla.set_policy(session, {
        "targets": {"repair": {"urgent": {"first_response_minutes": 10,
                                          "resolution_minutes": 60}}},
        "calendar": {"opens": "00:00", "closes": "24:00", "holidays": ["2026-10-01"]}},
        SUPERVISOR)
    assert policy["targets"]["repair"]["urgent"]["first_response_minutes"] == 10
    assert policy["targets"]["repair"]["high"]["first_response_minutes"] == 60  # kept
    assert policy["calendar"]["holidays"] == ["2026-10-01"]
    assert policy["calendar"]["timezone"] == "Asia/Shanghai"
    ticket = new_ticket(session, priority="urgent")
    if not sla.calendar(session).is_working_day(sla.calendar(session).local_day(now())):
        pytest.skip("today is a configured holiday")
    assert ticket.first_response_due - ticket.created_at == timedelta(minutes=10)
    # a later change does not move the dues of tickets already created
    sla.set_policy(session, {"targets": {"repair": {"urgent": {
        "first_response_minutes": 20, "resolution_minutes": 60}}}}, SUPERVISOR)
    assert ticket.first_response_due - ticket.created_at == timedelta(minutes=10)


@pytest.mark.parametrize("bad, field", [
    ({"targets": {"repair": {"urgent": {"first_response_minutes": 0,
                                        "resolution_minutes": 60}}}}, "targets"),
    ({"targets": {"repair": {"urgent": {"first_response_minutes": 90,
                                        "resolution_minutes": 60}}}}, "targets"),
    ({"targets": {"gardening": {}}}, "targets"),
    ({"calendar": {"opens": "25:00"}}, "calendar"),
    ({"calendar": {"opens": "21:00", "closes": "09:00"}}, "calendar"),
    ({"calendar": {"timezone": "Mars/Olympus"}}, "calendar"),
    ({"calendar": {"weekdays": [0]}}, "calendar"),
    ({"deadline": 5}, "deadline"),
])
def test_bad_policies_are_refused(session, bad, field):
    with pytest.raises(InvalidInput) as caught:
        sla.set_policy(session, bad, SUPERVISOR)
    assert field in caught.value.details
    assert sla.policy(session)["calendar"]["opens"] == "09:00"


def _overdue(ticket, minutes=5):
    ticket.first_response_due = now() - timedelta(minutes=minutes)
    ticket.resolution_due = now() - timedelta(minutes=minutes)


def test_scan_announces_each_kind_once_and_escalates_to_the_supervisor(session):
    agent(session, "tech-a", supervisor_id="sup-9")
    ticket = new_ticket(session)
    fine = new_ticket(session)
    assert sla.scan(session) == 0
    ticket.first_response_due = now() - timedelta(minutes=1)
    session.flush()
    assert sla.scan(session) == 1
    assert sla.scan(session) == 0  # once
    ticket.resolution_due = now() - timedelta(minutes=1)
    session.flush()
    assert sla.scan(session) == 1
    assert sla.scan(session) == 0
    breached = events(session, "ticket.sla_breached")
    assert [e["data"]["kind"] for e in breached] == ["first_response", "resolution"]
    assert breached[0]["data"]["supervisor_id"] == "sup-9"
    assert breached[0]["data"]["assignee_id"] == "tech-a"
    escalations = [h for h in tickets.history(session, ticket.id) if h["action"] == "escalated"]
    assert [h["escalated_to"] for h in escalations] == ["sup-9", "sup-9"]
    assert escalations[0]["actor_id"] == "system"
    data = tickets.to_dict(ticket)
    assert data["breached"] and data["sla"]["first_response_breached"]
    assert [t["id"] for t in tickets.search(session, {"breached": True})["items"]] == [ticket.id]
    assert [t["id"] for t in tickets.search(session, {"breached": False})["items"]] == [fine.id]


def test_met_in_time_is_not_breached_and_late_stays_breached(session):
    ticket = new_ticket(session)
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    tickets.change_status(session, ticket.id, "in_progress", None, ACTOR)
    tickets.change_status(session, ticket.id, "resolved", "fixed", ACTOR)
    assert sla.scan(session) == 0
    assert tickets.to_dict(ticket)["breached"] is False
    # answered, but after the target: breached for good
    ticket.first_response_due = ticket.first_responded_at - timedelta(minutes=1)
    session.flush()
    assert sla.scan(session) == 1
    assert tickets.to_dict(ticket)["sla"]["first_response_breached"] is True
    assert tickets.to_dict(ticket)["sla"]["resolution_breached"] is False


def test_unassigned_ticket_breach_has_no_supervisor(session):
    ticket = new_ticket(session)
    _overdue(ticket)
    session.flush()
    assert sla.scan(session) == 2
    escalation = [h for h in tickets.history(session, ticket.id) if h["action"] == "escalated"]
    assert escalation[0]["escalated_to"] is None
    assert "no supervisor" in escalation[0]["note"]


def test_created_at_night_is_due_after_opening(session):
    sla.set_policy(session, {"calendar": {"opens": "09:00", "closes": "21:00"}}, SUPERVISOR)
    ticket = new_ticket(session, priority="urgent")
    local = ticket.first_response_due.astimezone(sla.calendar(session).zone)
    assert (9, 0) <= (local.hour, local.minute) <= (21, 0)
