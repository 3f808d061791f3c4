"""Idempotent, retried event consumption with a dead-letter table.

Declare a handler with ``@on_event(source, event_type)``; the method receives a session, the
event's ``data`` and the whole envelope::

    @on_event("sales", "lease.signed")
    def on_lease_signed(self, session, data, envelope):
        lifecycle.lease_signed(session, data["customer_id"], envelope)

What happens to each delivered message:
1. It must be an envelope of api.md's shape, and its data must keep its type's contract
   (``crm_kit.contracts``), else it is dead-lettered at once (poison).
2. In one transaction: skip if ``(handler, event_id)`` is in ``processed_events``; else apply
   the handler and record the event id. A redelivered or duplicated event has no second effect.
3. If the handler raises, it is retried (``ATTEMPTS`` times, short backoff); then the message
   is written to ``dead_letters`` with the error and acknowledged, so the queue keeps flowing.
   ``crm-dlq replay`` re-runs it after a fix.
4. If the database itself is unreachable, nothing can be recorded: the message is requeued
   (nameko ``requeue_on_error``) and comes back later. Never silently dropped.
"""
import functools
import json
import logging
import traceback

import eventlet
from nameko.events import SERVICE_POOL, event_handler
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from crm_kit import contracts, metrics
from crm_kit.db import transaction
from crm_kit.envelope import InvalidEnvelope, check_envelope, now
from crm_kit.models import DeadLetter, ProcessedEvent

log = logging.getLogger(__name__)

ATTEMPTS = 3
BACKOFF_SECONDS = (0.2, 1.0)
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError)


class AlreadyProcessed(Exception):
    pass


def on_event(source, event_type):
    """Make ``logic(self, session, data, envelope)`` an idempotent handler of one event type."""

    def decorate(logic):
        @functools.wraps(logic)
        def entrypoint(self, payload):
            return self.db.consume(logic.__name__, payload,
                                   lambda session, envelope: logic(self, session,
                                                                   envelope["data"], envelope))

        entrypoint.crm_event_logic = logic
        return event_handler(source, event_type, handler_type=SERVICE_POOL,
                             reliable_delivery=True, requeue_on_error=True)(entrypoint)

    return decorate


def apply_once(sessionmaker, handler, envelope, apply):
    """Apply ``apply(session, envelope)`` unless this handler has seen the event. True if applied."""
    try:
        with transaction(sessionmaker) as session:
            seen = session.get(ProcessedEvent, (handler, envelope["event_id"]))
            if seen is not None:
                raise AlreadyProcessed()
            session.add(ProcessedEvent(handler=handler, event_id=envelope["event_id"],
                                       processed_at=now()))
            session.flush()  # a concurrent duplicate fails here, before the effect
            apply(session, envelope)
        return True
    except AlreadyProcessed:
        return False
    except IntegrityError:
        # a second instance applied the same event at the same moment
        with transaction(sessionmaker) as session:
            if session.get(ProcessedEvent, (handler, envelope["event_id"])) is not None:
                return False
        raise


def consume(provider, handler_name, payload, apply):
    """Run by the ``@on_event`` entrypoint; see the module docstring."""
    service = provider.service
    handler = f"{service}.{handler_name}"
    event_type = payload.get("type") if isinstance(payload, dict) else None
    try:
        envelope = check_envelope(payload)
    except InvalidEnvelope as exc:
        _dead_letter(provider, handler, payload, str(exc), attempts=0)
        return None
    broken = contracts.problems(envelope)
    if broken:  # no retry can fix the data: dead-lettered at once, the queue goes on
        _dead_letter(provider, handler, envelope,
                     f"{envelope['type']} breaks its contract: " + "; ".join(broken), attempts=0)
        return None

    for attempt in range(1, ATTEMPTS + 1):
        try:
            applied = apply_once(provider.sessionmaker, handler, envelope, apply)
            metrics.EVENTS_HANDLED.labels(service, event_type,
                                          "applied" if applied else "duplicate").inc()
            return applied
        except INFRASTRUCTURE_ERRORS:
            if not _database_is_up(provider):
                log.warning("database unreachable; requeueing event %s", envelope["event_id"])
                eventlet.sleep(1.0)
                raise
            error = traceback.format_exc()
        except Exception:
            error = traceback.format_exc()
        if attempt < ATTEMPTS:
            metrics.EVENTS_HANDLED.labels(service, event_type, "retried").inc()
            log.warning("handler %s failed on %s (attempt %d), retrying",
                        handler, envelope["event_id"], attempt)
            eventlet.sleep(BACKOFF_SECONDS[attempt - 1])
    _dead_letter(provider, handler, envelope, error, attempts=ATTEMPTS)
    return None


def _database_is_up(provider):
    try:
        provider.is_ready()
        return True
    except Exception:
        return False


def _dead_letter(provider, handler, payload, error, attempts):
    body = json.dumps(payload, ensure_ascii=False, default=str)
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    event_type = payload.get("type") if isinstance(payload, dict) else None
    with transaction(provider.sessionmaker) as session:
        session.add(DeadLetter(handler=handler, event_id=str(event_id)[:64] if event_id else None,
                               event_type=str(event_type)[:100] if event_type else None,
                               body=body, error=error[-8000:], attempts=attempts,
                               failed_at=now()))
    metrics.EVENTS_HANDLED.labels(provider.service, event_type, "dead_lettered").inc()
    refresh_dead_letter_gauge(provider)
    log.error("event %s dead-lettered for handler %s", event_id, handler)


def refresh_dead_letter_gauge(provider):
    with transaction(provider.sessionmaker) as session:
        count = session.scalar(select(func.count()).select_from(DeadLetter)
                               .where(DeadLetter.status == "dead"))
    metrics.DEAD_LETTERS.labels(provider.service).set(count)


def dead_letter_dict(row):
    return {"id": row.id, "handler": row.handler, "event_id": row.event_id,
            "event_type": row.event_type, "error": row.error.strip().splitlines()[-1:],
            "attempts": row.attempts, "failed_at": row.failed_at.isoformat(),
            "status": row.status,
            "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None}


def list_dead_letters(provider, status="dead"):
    with transaction(provider.sessionmaker) as session:
        query = select(DeadLetter).order_by(DeadLetter.id)
        if status:
            query = query.where(DeadLetter.status == status)
        return [dead_letter_dict(row) for row in session.scalars(query)]


def replay_dead_letters(provider, service_cls, service_instance, ids=None):
    """Re-run dead letters (all waiting ones, or ``ids``) through their handlers.

    A replay that succeeds (or finds the event already applied) marks the letter replayed; one
    that fails again stays dead with the new error. Returns ``{replayed, failed}`` id lists.
    """
    with transaction(provider.sessionmaker) as session:
        query = select(DeadLetter).where(DeadLetter.status == "dead").order_by(DeadLetter.id)
        if ids:
            query = query.where(DeadLetter.id.in_(ids))
        letters = [(row.id, row.handler, row.body) for row in session.scalars(query)]
    replayed, failed = [], []
    for letter_id, handler, body in letters:
        method_name = handler.split(".", 1)[1]
        logic = getattr(getattr(service_cls, method_name, None), "crm_event_logic", None)
        error = None
        if logic is None:
            error = f"no event handler named {method_name}"
        else:
            try:
                envelope = check_envelope(json.loads(body))
                broken = contracts.problems(envelope)
                if broken:
                    raise ValueError("breaks its contract: " + "; ".join(broken))
                apply_once(provider.sessionmaker, handler, envelope,
                           lambda session, env: logic(service_instance, session, env["data"], env))
            except Exception:
                error = traceback.format_exc()
        with transaction(provider.sessionmaker) as session:
            row = session.get(DeadLetter, letter_id)
            if error is None:
                row.status, row.replayed_at = "replayed", now()
                replayed.append(letter_id)
            else:
                row.error, row.attempts = error[-8000:], row.attempts + 1
                failed.append(letter_id)
    refresh_dead_letter_gauge(provider)
    return {"replayed": replayed, "failed": failed}

