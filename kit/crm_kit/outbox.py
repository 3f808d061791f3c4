"""Transactional outbox: events are rows written with the change, published by a relay.

``record_event(session, type, data)`` adds the event to the session's transaction: it is
committed with the change or not at all. The relay (one greenthread per service process)
publishes unpublished rows in order to the exchange ``<service>.events`` — a batch at a time,
then waits for the broker's publisher confirms of the whole batch — and stamps the confirmed
rows ``published_at``. If the broker is down the rows wait and the relay
retries with backoff; nothing is lost. Publishing is at least once (a crash between the
broker's confirm and the stamp republishes a row), which consumers absorb by ``event_id``.

Two relays of the same service (two instances running) on PostgreSQL claim disjoint rows with
``FOR UPDATE SKIP LOCKED``; on SQLite (one instance by design) rows are read, published and
then stamped.
"""
import json
import logging
import threading
import time
from collections import Counter

from kombu import Connection, Exchange
from sqlalchemy import func, insert, or_, select, update

from crm_kit import metrics
from crm_kit.envelope import make_envelope, now
from crm_kit.logging import get_correlation_id
from crm_kit.models import OutboxEvent

log = logging.getLogger(__name__)


def event_exchange(service):
    # the same declaration nameko's @event_handler makes, so the two agree
    return Exchange(f"{service}.events", type="topic", durable=True, delivery_mode=2)


def record_event(session, event_type, data, version=1):
    """Add an event to the current transaction; returns its envelope."""
    envelope = make_envelope(event_type, data, source=session.info["service"],
                             correlation_id=get_correlation_id(), version=version)
    session.add(OutboxEvent(
        event_id=envelope["event_id"], event_type=event_type,
        envelope=json.dumps(envelope, ensure_ascii=False, default=str),
        created_at=now()))
    session.info["outbox_pending"] = True
    return envelope


def record_events(session, events, version=1):
    """Add many events to the current transaction in one statement (bulk work: bill schedules,
    imports). ``events`` is a list of ``(event_type, data)``; returns the envelopes."""
    if not events:
        return []
    source, correlation_id, moment = session.info["service"], get_correlation_id(), now()
    envelopes = [make_envelope(event_type, data, source=source, correlation_id=correlation_id,
                               version=version, occurred_at=moment)
                 for event_type, data in events]
    session.execute(insert(OutboxEvent), [
        {"event_id": e["event_id"], "event_type": e["type"],
         "envelope": json.dumps(e, ensure_ascii=False, default=str), "created_at": moment,
         "attempts": 0} for e in envelopes])
    session.info["outbox_pending"] = True
    return envelopes


def forget_subjects(session, subject_ids, scrub):
    """Erasure reaches the kept event history too: every envelope mentioning one of
    ``subject_ids`` has its ``data`` replaced by ``scrub(data, ids)`` in the current transaction.
    A scan of the history's text (erasures are rare); returns how many envelopes changed.
    Consumers already hold what was published: the ``<entity>.erased`` event tells them."""
    ids = {subject for subject in subject_ids if subject}
    if not ids:
        return 0
    changed = 0
    mentions = or_(*(OutboxEvent.envelope.contains(subject, autoescape=True) for subject in ids))
    for row in session.scalars(select(OutboxEvent).where(mentions)):
        envelope = json.loads(row.envelope)
        data = scrub(envelope["data"], ids)
        if data != envelope["data"]:
            envelope["data"] = data
            row.envelope = json.dumps(envelope, ensure_ascii=False, default=str)
            changed += 1
    return changed


def backlog(session):
    return session.scalar(select(func.count()).select_from(OutboxEvent)
                          .where(OutboxEvent.published_at.is_(None)))


class OutboxRelay:
    """Publishes a service's outbox rows. ``run()`` loops until ``stop()``."""

    def __init__(self, service, sessionmaker, amqp_uri, batch_size=500, idle_poll=1.0,
                 max_backoff=10.0, confirm_timeout=30.0):
        self.service = service
        self.sessionmaker = sessionmaker
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self.idle_poll = idle_poll
        self.max_backoff = max_backoff
        self.exchange = event_exchange(service)
        self._wake = threading.Event()  # green under eventlet's monkey patching
        self._stopping = False
        self.confirm_timeout = confirm_timeout
        self._connection = None
        self._channel = None
        self._delivery_tag = 0  # the channel numbers what it publishes from 1 after confirm.select

    # -- control ---------------------------------------------------------------------------
    def wake(self):
        self._wake.set()

    def stop(self):
        self._stopping = True
        self._wake.set()

    def run(self):
        backoff = 0.5
        while not self._stopping:
            try:
                published = self.relay_once()
                backoff = 0.5
            except Exception as exc:  # broker or database away: keep the rows, retry later
                log.warning("outbox relay of %s failed, retrying in %.1fs: %s",
                            self.service, backoff, exc)
                self._close()
                self._wake.wait(backoff)
                self._wake.clear()
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if published < self.batch_size:
                self._wake.wait(self.idle_poll)
                self._wake.clear()
        self._close()

    # -- work ------------------------------------------------------------------------------
    def relay_once(self):
        """Publish one batch of unpublished rows; returns how many the broker confirmed.

        The whole batch is published at once and then its publisher confirms are awaited
        together (RabbitMQ acknowledges many with one ``multiple`` ack): one round trip per
        batch instead of one per event. Only confirmed rows are stamped; the rest stay
        unpublished and go again with the next batch (after rows the broker did take: a
        consumer relies on ``event_id`` and on each event's own data, never on arrival order
        across entities)."""
        session = self.sessionmaker()
        try:
            claims = session.get_bind().dialect.name != "sqlite"
            query = (select(OutboxEvent.id, OutboxEvent.event_type, OutboxEvent.envelope)
                     .where(OutboxEvent.published_at.is_(None))
                     .order_by(OutboxEvent.id).limit(self.batch_size))
            if claims:
                query = query.with_for_update(skip_locked=True)
            metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog(session))
            rows = session.execute(query).all()
            if not claims:
                session.rollback()  # release SQLite's single connection while publishing
            if not rows:
                session.rollback()
                return 0
            confirmed = []
            try:
                confirmed = self._publish_batch(rows)
            finally:
                if confirmed:
                    session.execute(update(OutboxEvent)
                                    .where(OutboxEvent.id.in_([row[0] for row in confirmed]))
                                    .values(published_at=now()))
                    session.commit()
                    for event_type, count in Counter(r.event_type for r in confirmed).items():
                        metrics.EVENTS_PUBLISHED.labels(self.service, event_type).inc(count)
                else:
                    session.rollback()
            return len(confirmed)
        finally:
            session.close()

    def _publish_batch(self, rows):
        """Publish ``rows`` (id, event_type, envelope), then wait for the broker's confirms;
        returns the rows it confirmed. Rows the broker refused (nack) are left out, to go
        again with a later batch. If the link fails or the confirms time out, what was
        confirmed by then is returned (and the connection dropped); if nothing was, it raises
        and the relay backs off."""
        channel = self._get_channel()
        waiting = {}  # delivery tag -> row, published and not yet confirmed
        confirmed, refused = [], []

        def settle(tag, multiple, into):
            tags = [t for t in waiting if t <= tag] if multiple else [tag]
            for t in tags:
                row = waiting.pop(t, None)
                if row is not None:
                    into.append(row)

        on_ack = lambda tag, multiple: settle(tag, multiple, confirmed)  # noqa: E731
        on_nack = lambda tag, multiple: settle(tag, multiple, refused)  # noqa: E731
        channel.events["basic_ack"].add(on_ack)
        channel.events["basic_nack"].add(on_nack)
        try:
            for row in rows:
                self._delivery_tag += 1
                waiting[self._delivery_tag] = row
                self._publish(channel, row.event_type, row.envelope)
            deadline = time.monotonic() + self.confirm_timeout
            while waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the broker confirmed {len(confirmed)} of {len(rows)} "
                                       f"events within {self.confirm_timeout:.0f}s")
                self._connection.drain_events(timeout=remaining)
        except Exception:
            if confirmed:  # keep what the broker took; the rest waits for the next attempt
                log.warning("outbox relay of %s: %d of %d events confirmed before an error",
                            self.service, len(confirmed), len(rows))
                self._close()
                return confirmed
            raise
        finally:
            channel.events["basic_ack"].discard(on_ack)
            channel.events["basic_nack"].discard(on_nack)
        if refused:
            log.warning("outbox relay of %s: the broker refused %d events; they will be retried",
                        self.service, len(refused))
        return confirmed

    def _publish(self, channel, event_type, envelope_json):
        envelope = json.loads(envelope_json)
        headers = {"nameko.call_id_stack": [f"{self.service}.outbox.{envelope['event_id']}"]}
        if envelope.get("correlation_id"):
            headers["nameko.correlation_id"] = envelope["correlation_id"]
        message = channel.prepare_message(
            envelope_json.encode("utf-8"), content_type="application/json",
            content_encoding="utf-8", headers=headers, properties={"delivery_mode": 2})
        channel.basic_publish(message, exchange=self.exchange.name, routing_key=event_type)

    def _get_channel(self):
        if self._channel is None:
            self._connection = Connection(self.amqp_uri, connect_timeout=5)
            self._connection.ensure_connection(max_retries=1)
            channel = self._connection.default_channel
            self.exchange(channel).declare()
            channel.confirm_select()
            self._channel, self._delivery_tag = channel, 0
        return self._channel

    def _close(self):
        self._channel = None
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; nothing more to release
                pass
            self._connection = None


def history(sessionmaker, after_id=0, limit=1000):
    """Committed events after outbox row ``after_id`` in id order (at most ``limit``, at most
    5,000): ``{"events": [envelope...], "last_id": id of the last one}``. Whether the relay
    has published a row yet does not matter: a consumer absorbs a repeat by ``event_id``."""
    from crm_kit.db import transaction

    limit = max(1, min(int(limit), 5000))
    with transaction(sessionmaker) as session:
        rows = session.execute(
            select(OutboxEvent.id, OutboxEvent.envelope)
            .where(OutboxEvent.id > int(after_id))
            .order_by(OutboxEvent.id).limit(limit)).all()
    return {"events": [json.loads(envelope) for _id, envelope in rows],
            "last_id": rows[-1][0] if rows else int(after_id)}
