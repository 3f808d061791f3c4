"""Rebuilding the store from scratch by replaying the other services' event history.

Every service keeps what it published in its outbox and answers ``event_history(after_id,
limit)``. ``rebuild`` empties the facts (customers, leases, bills, payments, opportunities,
tickets, histories) and the inbox records of the ingest handlers, then pages through each
source's history in order and applies every event through the same functions as the live
consumers (``ingest.HANDLERS``), each marked processed as it goes — so an event arriving live
meanwhile is applied once, whichever comes first. Results (score runs, warnings, clusters) are
kept: the next recompute works from the rebuilt store.
"""
from sqlalchemy import delete

from analytics_service import ingest
from analytics_service.models import (Bill, Customer, Lease, Opportunity, OpportunityStageChange,
                                      Payment, StageChange, Ticket)
from crm_kit.inbox import apply_once
from crm_kit.models import ProcessedEvent

FACTS = (Customer, StageChange, Opportunity, OpportunityStageChange, Lease, Bill, Payment,
         Ticket)
SOURCES = ("customer", "sales", "service_desk")
PAGE = 2000


def clear(session, service_name):
    for model in FACTS:
        session.execute(delete(model))
    names = [f"{service_name}.{ingest.handler_name(t)}" for _s, t in ingest.HANDLERS]
    session.execute(delete(ProcessedEvent).where(ProcessedEvent.handler.in_(names)))


def replay(sessionmaker, service_name, fetch_page):
    """``fetch_page(source, after_id, limit)`` → ``{"events", "last_id"}`` (the source's
    ``event_history``). Returns ``{source: events applied}``."""
    counts = {}
    for source in SOURCES:
        after, applied = 0, 0
        while True:
            page = fetch_page(source, after, PAGE)
            for envelope in page["events"]:
                apply = ingest.HANDLERS.get((source, envelope["type"]))
                if apply is None:
                    continue
                handler = f"{service_name}.{ingest.handler_name(envelope['type'])}"
                if apply_once(sessionmaker, handler, envelope,
                              lambda session, env, apply=apply: apply(session, env["data"], env)):
                    applied += 1
            if not page["events"]:
                break
            after = page["last_id"]
        counts[source] = applied
    return counts
