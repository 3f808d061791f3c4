"""Channels are adapters: each takes a batch of messages and says what became of each.

- ``LogChannel`` (the default for every channel): the delivery log *is* the destination, as
  domain.md asks when no real SMS/WeChat gateway is configured; a message is delivered the
  moment it is written, and staff read it at ``GET /messages``.
- ``WebhookChannel``: POSTs each message as JSON to ``CRM_MARKETING_WEBHOOK_URL`` (an SMS or
  e-mail provider's relay). A 2xx answer means *sent*; the provider later confirms delivery
  (or failure) with a receipt (``POST /messages/{id}/receipts``). Anything else is retried with
  backoff, up to ``CRM_MARKETING_WEBHOOK_ATTEMPTS`` times, then the message is *failed*. The body
  carries ``message_id`` so a provider can drop a repeat (at least once: a crash between the
  POST and the commit repeats it).

``CRM_MARKETING_WEBHOOK_CHANNELS`` (default: every channel) says which channels the webhook
takes when a URL is set; the others stay on the log.
"""
from dataclasses import dataclass
from datetime import timedelta

import eventlet
import requests

from crm_kit import config
from marketing_service import vocabulary as v

WEBHOOK_TIMEOUT = float(config.env("CRM_MARKETING_WEBHOOK_TIMEOUT", "5"))
WEBHOOK_ATTEMPTS = int(config.env("CRM_MARKETING_WEBHOOK_ATTEMPTS", "5"))
WEBHOOK_BACKOFF = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2),
                   timedelta(minutes=10))


@dataclass
class Outcome:
    status: str  # "sent", "delivered", "retry" or "failed"
    error: str | None = None


class LogChannel:
    name = "log"

    def send(self, messages):
        return {m["id"]: Outcome("delivered") for m in messages}


class WebhookChannel:
    name = "webhook"

    def __init__(self, url, concurrency=10):
        self.url = url
        self.concurrency = concurrency
        self.http = requests.Session()

    def _post(self, message):
        body = {"message_id": str(message["id"]), "customer_id": message["customer_id"],
                "channel": message["channel"], "to": message["recipient"],
                "body": message["body"]}
        try:
            answer = self.http.post(self.url, json=body, timeout=WEBHOOK_TIMEOUT)
        except requests.RequestException as exc:
            return self._failed(message, f"{type(exc).__name__}: {exc}")
        if 200 <= answer.status_code < 300:
            return Outcome("sent")
        return self._failed(message, f"HTTP {answer.status_code}: {answer.text[:200]}")

    @staticmethod
    def _failed(message, error):
        if message["attempts"] + 1 >= WEBHOOK_ATTEMPTS:
            return Outcome("failed", error)
        return Outcome("retry", error)

    def send(self, messages):
        pool = eventlet.GreenPool(self.concurrency)
        return dict(zip((m["id"] for m in messages), pool.imap(self._post, messages)))


def retry_delay(attempts):
    return WEBHOOK_BACKOFF[min(attempts, len(WEBHOOK_BACKOFF)) - 1]


def configured():
    """The adapter of each channel, from the configuration."""
    log = LogChannel()
    url = config.env("CRM_MARKETING_WEBHOOK_URL", "")
    if not url:
        return {channel: log for channel in v.CHANNELS}
    webhook = WebhookChannel(url)
    chosen = [c.strip() for c in config.env("CRM_MARKETING_WEBHOOK_CHANNELS",
                                            ",".join(v.CHANNELS)).split(",") if c.strip()]
    return {channel: webhook if channel in chosen else log for channel in v.CHANNELS}
