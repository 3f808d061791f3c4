"""Satisfaction after resolution, and on-site appointments without double booking."""
from datetime import timedelta

import pytest

from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput
from service_desk_service import tickets

from service_desk_fixtures import ACTOR, SUPERVISOR, events, new_ticket

SOON = (now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def at(minutes):
    return (SOON + timedelta(minutes=minutes)).isoformat()


def resolved(session, **overrides):
    ticket = new_ticket(session, **overrides)
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    tickets.change_status(session, ticket.id, "resolved", "fixed", ACTOR)
    return ticket


def test_feedback_once_per_resolution_with_event(session):
    ticket = resolved(session)
    data = tickets.to_dict(tickets.record_feedback(session, ticket.id,
                                                   {"rating": 2, "comment": "修得太慢"}, ACTOR))
    assert data["feedback"]["rating"] == 2 and data["feedback"]["comment"] == "修得太慢"
    assert data["status"] == "resolved"  # a low rating does not reopen by itself
    event = events(session, "ticket.feedback_received")[0]["data"]
    assert (event["rating"], event["low_rating"], event["customer_id"], event["type"]) == (
        2, True, "cust-1", "repair")
    assert event["comment_length"] == 4 and event["comment"] == "修得太慢"  # for sentiment
    with pytest.raises(Conflict):
        tickets.record_feedback(session, ticket.id, {"rating": 5}, ACTOR)
    tickets.reopen(session, ticket.id, "customer not satisfied", ACTOR)
    with pytest.raises(Conflict):
        tickets.record_feedback(session, ticket.id, {"rating": 5}, ACTOR)  # not resolved now
    tickets.change_status(session, ticket.id, "in_progress", None, ACTOR)
    tickets.change_status(session, ticket.id, "resolved", "fixed again", ACTOR)
    tickets.record_feedback(session, ticket.id, {"rating": 5}, ACTOR)  # the new resolution
    assert tickets.to_dict(ticket)["feedback"]["rating"] == 5
    assert events(session, "ticket.feedback_received")[-1]["data"]["low_rating"] is False
    tickets.change_status(session, ticket.id, "closed", None, ACTOR)


def test_closed_tickets_take_feedback_too(session):
    ticket = resolved(session)
    tickets.change_status(session, ticket.id, "closed", None, ACTOR)
    tickets.record_feedback(session, ticket.id, {"rating": 4}, ACTOR)
    assert ticket.feedbacks[-1].comment is None


@pytest.mark.parametrize("rating", [0, 6, -1, 3.5, "5", True, None])
def test_rating_outside_1_to_5_is_refused(session, rating):
    ticket = resolved(session)
    with pytest.raises(InvalidInput) as caught:
        tickets.record_feedback(session, ticket.id, {"rating": rating}, ACTOR)
    assert "rating" in caught.value.details
    assert events(session, "ticket.feedback_received") == []


def test_feedback_before_resolution_is_a_conflict(session):
    ticket = new_ticket(session)
    with pytest.raises(Conflict):
        tickets.record_feedback(session, ticket.id, {"rating": 5}, ACTOR)


def test_appointment_defaults_to_the_assignee_and_90_minutes(session):
    ticket = new_ticket(session)
    tickets.assign(session, ticket.id, "tech-a", SUPERVISOR)
    appointment = tickets.book_appointment(session, ticket.id, {"scheduled_at": at(0)}, ACTOR)
    data = tickets.appointment_dict(appointment)
    assert (data["technician_id"], data["duration_minutes"], data["status"]) == (
        "tech-a", 90, "scheduled")
    assert tickets.to_dict(ticket)["appointment"]["id"] == appointment.id


def test_no_double_booking_of_a_technician(session):
    first = new_ticket(session)
    second = new_ticket(session)
    booked = tickets.book_appointment(session, first.id, {"scheduled_at": at(0),
                                                          "technician_id": "tech-a"}, ACTOR)
    with pytest.raises(Conflict) as caught:
        tickets.book_appointment(session, second.id, {"scheduled_at": at(60),
                                                      "technician_id": "tech-a"}, ACTOR)
    assert caught.value.details["existing_id"] == booked.id
    # back to back is fine; another technician is fine
    tickets.book_appointment(session, second.id, {"scheduled_at": at(90),
                                                  "technician_id": "tech-a"}, ACTOR)
    third = new_ticket(session)
    tickets.book_appointment(session, third.id, {"scheduled_at": at(30),
                                                 "technician_id": "tech-b"}, ACTOR)


def test_rebooking_reschedules_the_tickets_visit(session):
    ticket = new_ticket(session)
    tickets.book_appointment(session, ticket.id, {"scheduled_at": at(0),
                                                  "technician_id": "tech-a"}, ACTOR)
    moved = tickets.book_appointment(session, ticket.id, {"scheduled_at": at(30),
                                                          "technician_id": "tech-a"}, ACTOR)
    assert tickets.to_dict(ticket)["appointment"]["id"] == moved.id
    statuses = sorted(a.status for a in ticket.appointments)
    assert statuses == ["cancelled", "scheduled"]
    other = new_ticket(session)
    tickets.book_appointment(session, other.id, {"scheduled_at": at(-60),
                                                 "technician_id": "tech-a"}, ACTOR)


def test_appointments_only_for_open_on_site_tickets(session):
    consultation = new_ticket(session, type="consultation")
    with pytest.raises(Conflict):
        tickets.book_appointment(session, consultation.id, {"scheduled_at": at(0)}, ACTOR)
    done = resolved(session)
    with pytest.raises(Conflict):
        tickets.book_appointment(session, done.id, {"scheduled_at": at(0)}, ACTOR)
    ticket = new_ticket(session, type="cleaning")
    with pytest.raises(InvalidInput) as caught:
        tickets.book_appointment(session, ticket.id, {"scheduled_at": "tomorrow",
                                                      "duration_minutes": 5}, ACTOR)
    assert set(caught.value.details) == {"scheduled_at", "duration_minutes"}
    with pytest.raises(InvalidInput):
        tickets.book_appointment(session, ticket.id, {
            "scheduled_at": (now() - timedelta(days=1)).isoformat()}, ACTOR)
