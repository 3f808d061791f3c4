"""The customer service as it runs: its own process, the real RabbitMQ, SQLite and PostgreSQL.

Other services' events are published here exactly as their outbox relays will publish them,
so the reactions of api.md are proven before those services exist.
"""
from datetime import timedelta

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text

from crm_kit.config import normalize_database_url
from crm_kit.envelope import make_envelope, now
from crm_kit.errors import Conflict, InvalidInput
from crm_kit.testing import EventTap, publish_event, wait_until

from customer_fixtures import ACTOR, SPEC, person


@pytest.fixture
def service(start_service, database_url):
    return start_service(SPEC, database_url, env={"CRM_STAGNATION_SCAN_SECONDS": "0.5"})


@pytest.fixture
def rpc(amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10,
                         context_data={"correlation_id": "req-123"}) as proxy:
        yield proxy.customer


def test_create_emits_customer_created_with_correlation_id(service, rpc, amqp_uri):
    tap = EventTap(amqp_uri, "customer")
    created = rpc.create_customer(person(), ACTOR)
    assert rpc.get_customer(created["id"]) == created
    [event] = tap.wait_for(lambda e: e["type"] == "customer.created")
    assert event["data"]["id"] == created["id"]
    assert event["correlation_id"] == "req-123"
    tap.close()


def test_rejected_requests_change_nothing(service, rpc):
    rpc.create_customer(person(), ACTOR)
    with pytest.raises(Conflict) as caught:  # nameko raises the kit's own error classes
        rpc.create_customer(person(email="x@example.com"), ACTOR)
    assert "existing_id" in caught.value.details
    with pytest.raises(InvalidInput) as caught:
        rpc.create_customer(person(mobile="123", birthday="tomorrow"), ACTOR)
    assert set(caught.value.details) == {"mobile", "birthday"}
    assert rpc.list_customers({}, 1, 50)["total"] == 1


def lease(lease_id, customer_id, **more):
    """A lease event's data as the sales service sends it (its contract: crm_kit.contracts)."""
    return {"lease_id": lease_id, "customer_id": customer_id, "start_date": "2026-01-01",
            "end_date": "2026-12-31", "monthly_rent": "3500.00", "status": "active", **more}


def test_other_services_events_drive_the_lifecycle_once_each(service, rpc, amqp_uri):
    customer_id = rpc.create_customer(person(), ACTOR)["id"]
    publish_event(amqp_uri, "sales", "opportunity.created",
                  {"opportunity_id": "O1", "customer_id": customer_id})
    wait_until(lambda: rpc.get_customer(customer_id)["stage"] == "intent", message="intent")

    signed = make_envelope("lease.signed", lease("L1", customer_id), source="sales")
    for _ in range(2):  # delivered twice: one effect
        publish_event(amqp_uri, "sales", "lease.signed", None, envelope=signed)
    payment = make_envelope("payment.received", {
        "payment_id": "P1", "customer_id": customer_id, "amount": "3500.00",
        "paid_at": "2026-12-01T10:00:00+08:00"}, source="sales")
    for _ in range(3):
        publish_event(amqp_uri, "sales", "payment.received", None, envelope=payment)
    wait_until(lambda: rpc.get_customer(customer_id)["member"]["points"] == 350,
               message="points from the payment")
    wait_until(lambda: service.metric("crm_events_handled_total", event_type="payment.received",
                                      outcome="duplicate") == 2, message="duplicates skipped")
    customer = rpc.get_customer(customer_id)
    assert (customer["stage"], customer["leases_signed"]) == ("first_time", 1)
    assert customer["member"]["points"] == 350

    publish_event(amqp_uri, "sales", "lease.renewed", lease("L1", customer_id,
                                                            new_lease_id="L2"))
    wait_until(lambda: rpc.get_customer(customer_id)["stage"] == "repeat", message="repeat")
    publish_event(amqp_uri, "analytics", "customer.scored",
                  {"customer_id": customer_id, "value_tier": "important",
                   "churn_risk": {"score": 72, "reasons": ["overdue bill"]}})
    wait_until(lambda: rpc.get_customer(customer_id)["value_tier"] == "important",
               message="value tier")
    publish_event(amqp_uri, "analytics", "churn.warning_raised",
                  {"customer_id": customer_id, "score": 72, "reasons": ["overdue bill"]})
    wait_until(lambda: rpc.get_customer(customer_id)["stage"] == "churn_warning",
               message="churn warning")
    triggers = [h["trigger"] for h in rpc.stage_history(customer_id)]
    assert triggers == ["created", "event:opportunity.created", "event:lease.signed",
                        "event:lease.renewed", "event:churn.warning_raised"]


def test_event_about_an_unknown_customer_is_dead_lettered(service, rpc, amqp_uri):
    publish_event(amqp_uri, "sales", "lease.signed", lease("L9", "nobody"))
    letters = wait_until(rpc.list_dead_letters, timeout=20, message="dead letter")
    assert letters[0]["handler"] == "customer.on_lease_signed"


def test_stagnation_timer_alerts_the_owner(service, rpc, amqp_uri, database_url):
    tap = EventTap(amqp_uri, "customer", ["customer.stagnation_alerted"])
    customer_id = rpc.create_customer(person(), ACTOR)["id"]
    # the customer entered its stage 20 days ago (potential's limit is 15)
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE customers SET stage_entered_at = :t WHERE id = :id"),
                           {"t": (now() - timedelta(days=20)).replace(tzinfo=None)
                            if database_url.startswith("sqlite") else now() - timedelta(days=20),
                            "id": customer_id})
    engine.dispose()
    [event] = tap.wait_for(lambda e: e["data"]["customer_id"] == customer_id, timeout=15)
    assert event["data"]["owner_id"] == "staff-1" and event["data"]["days_in_stage"] == 20
    [alert] = rpc.list_alerts({"owner_id": "staff-1"}, 1, 50)["items"]
    assert alert["status"] == "open" and alert["stage"] == "potential"
    tap.close()


def test_erasure_is_announced(service, rpc, amqp_uri):
    tap = EventTap(amqp_uri, "customer", ["customer.erased"])
    customer_id = rpc.create_customer(person(), ACTOR)["id"]
    erased = rpc.erase_customer(customer_id, ACTOR)
    assert erased["name"] == "(erased)" and erased["mobile"] is None
    tap.wait_for(lambda e: e["data"]["customer_id"] == customer_id)
    tap.close()
