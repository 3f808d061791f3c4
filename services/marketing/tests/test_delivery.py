"""Sending through the webhook channel to a real local HTTP server, retries, and receipts."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import update

from crm_kit.errors import Conflict, InvalidInput, NotFound
from marketing_service import audience, channels, delivery
from marketing_service import vocabulary as v
from marketing_service.models import Message

from marketing_builders import launch, message_of, messages, send_all
from marketing_fixtures import add_customer, events, instant, snapshot


class Provider:
    """An SMS/e-mail relay on a free local port: records each POST, answers ``status``."""

    def __init__(self):
        self.status = 202
        self.received = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                provider.received.append(json.loads(self.rfile.read(length)))
                self.send_response(provider.status)
                self.end_headers()
                self.wfile.write(b"provider says hi")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def provider():
    running = Provider()
    yield running
    running.close()


@pytest.fixture
def webhook(provider):
    hook = channels.WebhookChannel(provider.url)
    return {channel: hook for channel in v.CHANNELS}


def make_due(session):
    """Time passes: every message waiting for a retry is due now."""
    session.execute(update(Message).where(Message.next_attempt_at.is_not(None))
                    .values(next_attempt_at=instant(seconds=-1)))


# -- sending -------------------------------------------------------------------------------
def test_a_2xx_answer_means_sent_and_the_post_carries_the_message(session, provider, webhook):
    customer = add_customer(session, name="李雷")
    campaign = launch(session, template="{name}您好")
    assert send_all(session, webhook) == {"sent": 1, "delivered": 0, "failed": 0, "retry": 0}
    message = message_of(session, customer.id)
    assert message.status == "sent" and message.attempts == 1 and message.error is None
    assert message.sent_at is not None and message.delivered_at is None
    assert message.next_attempt_at is None
    assert provider.received == [{"message_id": str(message.id), "customer_id": customer.id,
                                  "channel": "sms", "to": "13800138000", "body": "李雷您好"}]
    [sent] = events(session, "message.sent")
    assert sent["data"]["message_id"] == str(message.id)
    assert sent["data"]["campaign_id"] == campaign.id
    assert events(session, "message.delivered") == []


def test_a_batch_is_posted_once_per_message(session, provider, webhook):
    customers = [add_customer(session) for _ in range(12)]
    launch(session)
    assert send_all(session, webhook)["sent"] == 12
    ids = sorted(str(m.id) for m in messages(session))
    assert sorted(body["message_id"] for body in provider.received) == ids
    assert {m.customer_id for m in messages(session, status="sent")} == {
        c.id for c in customers}


def test_a_500_is_retried_later_then_failed(session, provider, webhook):
    customer = add_customer(session)
    launch(session)
    provider.status = 500
    before = instant()
    assert send_all(session, webhook)["retry"] == 1
    message = message_of(session, customer.id)
    assert message.status == "queued" and message.attempts == 1
    assert message.next_attempt_at >= before + channels.retry_delay(1)
    assert message.error.startswith("HTTP 500")

    # not due yet: nothing is posted
    assert send_all(session, webhook) == {"sent": 0, "delivered": 0, "failed": 0, "retry": 0}
    assert len(provider.received) == 1

    for attempt in range(2, channels.WEBHOOK_ATTEMPTS + 1):
        make_due(session)
        send_all(session, webhook)
        message = message_of(session, customer.id)
        assert message.attempts == attempt
        if attempt < channels.WEBHOOK_ATTEMPTS:
            assert message.status == "queued" and message.next_attempt_at > instant()
    assert message.status == "failed" and message.next_attempt_at is None
    assert len(provider.received) == channels.WEBHOOK_ATTEMPTS
    assert {body["message_id"] for body in provider.received} == {str(message.id)}
    assert events(session, "message.sent") == []

    make_due(session)
    assert send_all(session, webhook)["failed"] == 0  # a failed message is not sent again
    assert len(provider.received) == channels.WEBHOOK_ATTEMPTS


def test_the_backoff_grows(session, provider, webhook):
    customer = add_customer(session)
    launch(session)
    provider.status = 503
    delays = []
    for _ in range(3):
        make_due(session)
        before = instant()
        send_all(session, webhook)
        delays.append(message_of(session, customer.id).next_attempt_at - before)
    assert delays[0] < delays[1] < delays[2]
    assert channels.retry_delay(1) <= delays[0] < channels.retry_delay(2)


def test_a_retried_message_is_sent_when_the_provider_recovers(session, provider, webhook):
    customer = add_customer(session)
    launch(session)
    provider.status = 500
    send_all(session, webhook)
    provider.status = 200
    make_due(session)
    assert send_all(session, webhook)["sent"] == 1
    message = message_of(session, customer.id)
    assert (message.status, message.attempts) == ("sent", 2)
    assert message.next_attempt_at is None


def test_an_unreachable_provider_is_retried(session, provider):
    customer = add_customer(session)
    launch(session)
    url = provider.url
    provider.close()  # nothing listens there any more
    hook = channels.WebhookChannel(url)
    assert send_all(session, {c: hook for c in v.CHANNELS})["retry"] == 1
    message = message_of(session, customer.id)
    assert message.status == "queued" and "ConnectionError" in message.error


def test_the_webhook_takes_the_configured_channels(monkeypatch, provider):
    monkeypatch.setenv("CRM_MARKETING_WEBHOOK_URL", provider.url)
    monkeypatch.setenv("CRM_MARKETING_WEBHOOK_CHANNELS", "sms, email")
    adapters = channels.configured()
    assert {c for c, a in adapters.items() if isinstance(a, channels.WebhookChannel)} == {
        "sms", "email"}
    assert isinstance(adapters["wechat"], channels.LogChannel)
    assert adapters["sms"].url == provider.url



def test_a_message_still_queued_when_its_customer_is_erased_is_not_sent(
        session, provider, webhook):
    customer = add_customer(session)
    launch(session)
    audience.erase(session, customer.id)
    send_all(session, webhook)
    assert provider.received == []
    assert events(session, "message.sent") == []
    assert message_of(session, customer.id).status != "sent"

# -- receipts ------------------------------------------------------------------------------
@pytest.fixture
def sent_message(session, provider, webhook):
    customer = add_customer(session)
    launch(session)
    send_all(session, webhook)
    return message_of(session, customer.id)


def test_a_delivered_receipt(session, sent_message):
    message = delivery.record_receipt(session, str(sent_message.id), {"status": "delivered"})
    assert message.status == "delivered" and message.delivered_at is not None
    [delivered] = events(session, "message.delivered")
    assert delivered["data"]["message_id"] == str(message.id)
    assert delivered["data"]["customer_id"] == message.customer_id

    again = delivery.record_receipt(session, str(message.id), {"status": "delivered"})
    assert again.status == "delivered" and again.delivered_at == message.delivered_at
    assert len(events(session, "message.delivered")) == 1


def test_a_failed_receipt(session, sent_message):
    message = delivery.record_receipt(session, sent_message.id, {"status": "failed",
                                                                 "error": "号码停机"})
    assert (message.status, message.error) == ("failed", "号码停机")
    assert events(session, "message.delivered") == []
    with pytest.raises(Conflict):  # failed, then delivered: not a sent message any more
        delivery.record_receipt(session, message.id, {"status": "delivered"})


def test_a_receipt_for_a_queued_or_skipped_message_is_a_conflict(session):
    queued = add_customer(session)
    skipped = add_customer(session, consent={})
    launch(session)
    for customer, status in ((queued, "queued"), (skipped, "skipped")):
        message = message_of(session, customer.id)
        with pytest.raises(Conflict) as error:
            delivery.record_receipt(session, message.id, {"status": "delivered"})
        assert error.value.details == {"status": status}
        assert message.status == status


def test_a_receipt_for_an_unknown_message_or_with_a_bad_status(session, sent_message):
    for unknown in ("999999", "not-a-number", None):
        with pytest.raises(NotFound):
            delivery.record_receipt(session, unknown, {"status": "delivered"})
    with pytest.raises(InvalidInput) as error:
        delivery.record_receipt(session, sent_message.id, {"status": "opened"})
    assert list(error.value.details) == ["status"]


def test_consent_withdrawn_or_archived_after_recording_stops_the_message(session):
    keeps = add_customer(session, name="留下")
    withdraws = add_customer(session, name="退订")
    archived = add_customer(session, name="归档")
    campaign = launch(session)
    audience.apply_customer(session, snapshot(withdraws.id, name="退订",
                                              consent={"sms": False}, updated_at=instant(
                                                  seconds=5).isoformat()))
    audience.apply_customer(session, snapshot(archived.id, name="归档", archived=True,
                                              updated_at=instant(seconds=5).isoformat()))
    send_all(session)
    found = {m.customer_id: (m.status, m.skip_reason, m.body)
             for m in messages(session, campaign_id=campaign.id)}
    assert found[keeps.id][0] == "delivered"
    assert found[withdraws.id] == ("skipped", "no_consent", None)
    assert found[archived.id] == ("skipped", "archived", None)
    assert [e["data"]["customer_id"] for e in events(session, "message.sent")] == [keeps.id]
