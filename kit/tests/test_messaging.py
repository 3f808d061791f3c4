"""The kit's promises, tried against the real RabbitMQ with SQLite and with PostgreSQL.

- a committed change always gets its event, even if the broker was unreachable at the time;
- a duplicate event has no second effect;
- a poison event is dead-lettered, visible, replayable, and the queue keeps flowing.
"""
import json
from collections import Counter

from sqlalchemy import func, select

from crm_kit.envelope import make_envelope
from crm_kit.models import DeadLetter, OutboxEvent
from crm_kit.testing import EventTap, publish_event, wait_until
from sample.services import Switch

from kit_fixtures import CONSUMER, PRODUCER


def test_committed_change_is_published_with_the_envelope(start_service, database_url, amqp_uri,
                                                          rpc):
    tap = EventTap(amqp_uri, "kit_producer")
    producer = start_service(PRODUCER, database_url)
    assert rpc.kit_producer.record(7) == 7
    [event] = tap.wait_for(lambda e: e["data"] == {"n": 7})
    # counted once the broker confirmed it, by event type (what the business dashboards sum)
    wait_until(lambda: producer.metric("crm_events_published_total",
                                       event_type="note.recorded") == 1,
               message="the published event counted by type")
    assert event["type"] == "note.recorded"
    assert event["source"] == "kit_producer"
    assert event["version"] == 1
    assert len(event["event_id"]) == 36 and event["occurred_at"].endswith("+00:00")
    tap.close()


def test_event_delivered_twice_has_one_effect(start_service, database_url, amqp_uri, rpc):
    consumer = start_service(CONSUMER, database_url)
    envelope = make_envelope("note.recorded", {"n": 1}, source="kit_producer")
    publish_event(amqp_uri, "kit_producer", "note.recorded", None, envelope=envelope)
    publish_event(amqp_uri, "kit_producer", "note.recorded", None, envelope=envelope)
    publish_event(amqp_uri, "kit_producer", "note.recorded", {"n": 2})
    wait_until(lambda: consumer.metric("crm_events_handled_total", outcome="duplicate") == 1,
               message="the duplicate to be seen")
    wait_until(lambda: sorted(rpc.kit_consumer.effects()) == [1, 2], message="both effects")
    assert sorted(rpc.kit_consumer.effects()) == [1, 2]


def test_broker_unreachable_between_commit_and_publish(start_service, database_url, amqp_uri,
                                                       broker_link, vhost, rpc, open_db,
                                                       postgres_database, tmp_path):
    """Commits made while the producer cannot reach RabbitMQ are published once it can."""
    consumer_url = (f"sqlite:///{tmp_path / 'consumer.db'}" if database_url.startswith("sqlite")
                    else postgres_database("consumer"))
    start_service(CONSUMER, consumer_url, name="consumer")
    producer = start_service(PRODUCER, database_url, amqp=broker_link.uri(vhost), name="producer")
    db = open_db(database_url)

    rpc.kit_producer.record(1)  # the link works: one note out and applied
    wait_until(lambda: rpc.kit_consumer.effects() == [1], message="the first note applied")

    broker_link.cut()
    with db() as session:  # ask the producer's timer to commit 200 notes while cut off
        session.merge(Switch(name="pending", value=200))
        session.commit()

    def unpublished():
        with db() as session:
            return session.scalar(select(func.count()).select_from(OutboxEvent)
                                  .where(OutboxEvent.published_at.is_(None)))
    wait_until(lambda: unpublished() == 200, timeout=20, message="200 committed, unpublished")
    wait_until(lambda: producer.metric("crm_outbox_backlog") == 200, timeout=10,
               message="the backlog to show on /metrics")

    broker_link.restore()
    wait_until(lambda: len(rpc.kit_consumer.effects()) == 201, timeout=60,
               message="every note applied after the broker came back")
    effects = rpc.kit_consumer.effects()
    assert sorted(effects) == list(range(1, 202))
    assert not [n for n, count in Counter(effects).items() if count > 1], "applied twice"
    assert unpublished() == 0


def test_poison_event_is_dead_lettered_visible_and_replayable(start_service, database_url,
                                                              amqp_uri, rpc, open_db):
    consumer = start_service(CONSUMER, database_url)
    poison = publish_event(amqp_uri, "kit_producer", "note.recorded", {"n": -1})
    wait_until(lambda: rpc.kit_consumer.list_dead_letters(), timeout=20,
               message="the poison event in the dead-letter table")
    [letter] = rpc.kit_consumer.list_dead_letters()
    assert letter["event_id"] == poison["event_id"]
    assert letter["handler"] == "kit_consumer.on_note_recorded"
    assert "negative notes are not accepted" in letter["error"][0]
    assert consumer.metric("crm_dead_letters") == 1

    # the queue keeps flowing behind it
    publish_event(amqp_uri, "kit_producer", "note.recorded", {"n": 3})
    wait_until(lambda: rpc.kit_consumer.effects() == [3], message="the next event applied")

    # replaying before the fix fails again and keeps the letter
    assert rpc.kit_consumer.replay_dead_letters() == {"replayed": [], "failed": [letter["id"]]}
    db = open_db(database_url)
    with db() as session:
        session.merge(Switch(name="accept_negative", value=1))
        session.commit()
    assert rpc.kit_consumer.replay_dead_letters() == {"replayed": [letter["id"]], "failed": []}
    assert sorted(rpc.kit_consumer.effects()) == [-1, 3]
    assert rpc.kit_consumer.list_dead_letters() == []
    assert consumer.metric("crm_dead_letters") == 0
    # replaying again does nothing twice
    assert rpc.kit_consumer.replay_dead_letters() == {"replayed": [], "failed": []}
    assert sorted(rpc.kit_consumer.effects()) == [-1, 3]


def test_malformed_message_is_dead_lettered_not_dropped(start_service, database_url, amqp_uri,
                                                        rpc, open_db):
    start_service(CONSUMER, database_url)
    bad = {"type": "note.recorded", "data": {"n": 1}}  # no event_id, source, …
    publish_event(amqp_uri, "kit_producer", "note.recorded", None, envelope=bad)
    wait_until(lambda: rpc.kit_consumer.list_dead_letters(), message="the malformed message")
    with open_db(database_url)() as session:
        [row] = session.scalars(select(DeadLetter)).all()
    assert json.loads(row.body) == bad
    assert "bad envelope" in row.error
    assert rpc.kit_consumer.effects() == []
