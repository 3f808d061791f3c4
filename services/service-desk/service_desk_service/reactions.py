"""The service desk's reactions to the customer service's events.

- ``customer.merged``: the merged customer's tickets move to the survivor.
- ``customer.erased``: the customer's ticket descriptions, comments and feedback comments are
  blanked (free text may hold personal data); ids, types, statuses, dates, ratings and history
  stay, so reports still add up. Knowledge-base articles are staff-written and kept.
"""
from sqlalchemy import select, update

from service_desk_service.models import Feedback, Ticket, TicketComment

ERASED = ""


def customer_merged(session, data):
    session.execute(update(Ticket).where(Ticket.customer_id == data["merged_id"])
                    .values(customer_id=data["survivor_id"]))


def customer_erased(session, data):
    ids = select(Ticket.id).where(Ticket.customer_id == data["customer_id"])
    session.execute(update(Ticket).where(Ticket.customer_id == data["customer_id"])
                    .values(description=ERASED, resolution_note=None))
    session.execute(update(TicketComment).where(TicketComment.ticket_id.in_(ids))
                    .values(body=ERASED))
    session.execute(update(Feedback).where(Feedback.ticket_id.in_(ids)).values(comment=None))
