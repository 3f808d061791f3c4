"""The delivery log: composing each recipient's message, sending it through its channel,
and what became of it (queued → sent → delivered, or failed; skipped with a reason).

Campaigns and care rules both come here with rows of ``audience.COLUMNS``; ``compose`` decides
per customer: skipped (erased, archived, no consent for the channel, no address on it, a
template field the customer lacks) or queued with the personalised body. The dispatcher sends
queued messages in batches: claim (a short transaction), send (no transaction open while a
provider answers), settle (a short transaction). On PostgreSQL two instances claim disjoint
batches (``FOR UPDATE SKIP LOCKED``), so nobody gets a message twice.
"""
from datetime import timedelta

from sqlalchemy import or_, select, update

from crm_kit.db import paginate
from crm_kit.envelope import now
from crm_kit.errors import Conflict, NotFound
from crm_kit.outbox import record_event, record_events
from marketing_service import channels, schemas, templates
from marketing_service import vocabulary as v
from marketing_service.models import AudienceCustomer, Message

BATCH = 500
CLAIM = timedelta(minutes=10)


def recipient_values(row, extra=None):
    """The fields a template may name, for one row of ``audience.COLUMNS``."""
    values = {field: getattr(row, field) for field in v.CUSTOMER_FIELDS}
    if extra:
        values.update(extra)
    return values


def compose(row, channel, template, extra=None, capped=False):
    """``{status, skip_reason, recipient, body, error}`` of one customer's message."""
    def skipped(reason, error=None):
        return {"status": "skipped", "skip_reason": reason, "recipient": None, "body": None,
                "error": error}

    if row.erased:
        return skipped("erased")
    if row.archived:
        return skipped("archived")
    if not (row.consent or {}).get(v.CHANNEL_CONSENT[channel]):
        return skipped("no_consent")
    address = getattr(row, v.CHANNEL_ADDRESS[channel])
    if not address:
        return skipped("no_address")
    if capped:
        return skipped("frequency_cap")
    try:
        body = templates.render(template, recipient_values(row, extra))
    except templates.MissingField as exc:
        return skipped("missing_field", f"the customer has no {exc.args[0]}")
    return {"status": "queued", "skip_reason": None, "recipient": address, "body": body,
            "error": None}


def to_dict(m):
    return {"id": str(m.id), "customer_id": m.customer_id, "campaign_id": m.campaign_id,
            "care_rule_id": m.care_rule_id, "occasion": m.occasion, "channel": m.channel,
            "recipient": m.recipient, "body": m.body, "status": m.status,
            "skip_reason": m.skip_reason, "error": m.error, "attempts": m.attempts,
            "created_at": m.created_at.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None}


def get(session, message_id, for_update=False):
    try:
        key = int(message_id)
    except (TypeError, ValueError):
        key = None
    message = session.get(Message, key, with_for_update=for_update) if key else None
    if message is None:
        raise NotFound(f"message {message_id} does not exist", {"message_id": message_id})
    return message


def search(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.message_filters, filters)
    query = select(Message)
    customer_ids = filters.pop("customer_ids", None)
    if customer_ids is not None:
        query = query.where(Message.customer_id.in_(customer_ids))
    for field, value in filters.items():
        query = query.where(getattr(Message, field) == value)
    return paginate(session, query.order_by(Message.id.desc()), page, per_page, to_dict)


# -- sending -------------------------------------------------------------------------------
def _event(message, moment_field):
    return {"message_id": str(message["id"]), "customer_id": message["customer_id"],
            "campaign_id": message["campaign_id"], "care_rule_id": message["care_rule_id"],
            "channel": message["channel"], moment_field: now().isoformat()}


def claim(session, batch=BATCH):
    """Take up to ``batch`` due queued messages for sending: each is pushed ``CLAIM`` into
    the future, so no other dispatcher (a second instance) takes it meanwhile, and a dispatcher
    that dies before settling leaves it to be sent again when the claim runs out."""
    moment = now()
    due = session.execute(
        select(Message.id, Message.customer_id, Message.campaign_id, Message.care_rule_id,
               Message.channel, Message.recipient, Message.body, Message.attempts)
        .where(Message.status == "queued",
               or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= moment))
        .order_by(Message.id).limit(batch).with_for_update(skip_locked=True)).all()
    if not due:
        return []
    stopped = _no_longer_reachable(session, due)
    for reason in set(stopped.values()):
        session.execute(update(Message).where(Message.id.in_(
            [key for key, why in stopped.items() if why == reason]))
            .values(status="skipped", skip_reason=reason, body=None, recipient=None))
    claimed = [m for m in due if m.id not in stopped]
    if claimed:
        session.execute(update(Message).where(Message.id.in_([m.id for m in claimed]))
                        .values(next_attempt_at=moment + CLAIM))
    return [m._asdict() for m in claimed]


def _no_longer_reachable(session, due):
    """``{message id: reason}`` of messages whose customer was archived or withdrew the
    channel's consent after the message was recorded (erasure skips them at once)."""
    customers = {c.id: c for c in session.execute(
        select(AudienceCustomer.id, AudienceCustomer.archived, AudienceCustomer.consent)
        .where(AudienceCustomer.id.in_({m.customer_id for m in due})))}
    stopped = {}
    for m in due:
        customer = customers.get(m.customer_id)
        if customer is None:
            continue
        if customer.archived:
            stopped[m.id] = "archived"
        elif not (customer.consent or {}).get(v.CHANNEL_CONSENT[m.channel]):
            stopped[m.id] = "no_consent"
    return stopped


def send(claimed, adapters):
    """Hand each claimed message to its channel's adapter (no database work here: a slow
    provider holds no transaction open). ``{message id: Outcome}``."""
    by_channel = {}
    for message in claimed:
        by_channel.setdefault(message["channel"], []).append(message)
    outcomes = {}
    for channel, messages in by_channel.items():
        outcomes.update(adapters[channel].send(messages))
    return outcomes


def settle(session, claimed, outcomes):
    """Write what became of each sent message; ``{sent, delivered, failed, retry}`` counts."""
    moment = now()
    counts = {"sent": 0, "delivered": 0, "failed": 0, "retry": 0}
    changes, events = {}, []
    for m in claimed:
        outcome = outcomes[m["id"]]
        counts[outcome.status] += 1
        change = {"attempts": m["attempts"] + 1, "error": outcome.error}
        if outcome.status in ("sent", "delivered"):
            change.update(status=outcome.status, sent_at=moment, next_attempt_at=None)
            events.append(("message.sent", _event(m, "sent_at")))
            if outcome.status == "delivered":
                change["delivered_at"] = moment
                events.append(("message.delivered", _event(m, "delivered_at")))
        elif outcome.status == "failed":
            change.update(status="failed", next_attempt_at=None)
        else:
            change["next_attempt_at"] = moment + channels.retry_delay(m["attempts"] + 1)
        changes.setdefault(tuple(sorted(change.items())), []).append(m["id"])
    # one UPDATE ... WHERE id IN (...) per distinct change (a batch through the log channel is
    # one): an executemany by primary key is one round trip per message on PostgreSQL
    for change, ids in changes.items():
        session.execute(update(Message).where(Message.id.in_(ids)).values(dict(change)))
    if changes:
        record_events(session, events)
    return counts


def dispatch(transaction, adapters, batch=BATCH):
    """Claim, send and settle one batch; ``transaction()`` opens each database step (the
    service's ``self.db.transaction``). Returns the counts of ``settle``."""
    with transaction() as session:
        claimed = claim(session, batch)
    if not claimed:
        return {"sent": 0, "delivered": 0, "failed": 0, "retry": 0}
    outcomes = send(claimed, adapters)
    with transaction() as session:
        return settle(session, claimed, outcomes)


def record_receipt(session, message_id, data):
    """A provider's delivery receipt. A repeat of the same receipt changes nothing."""
    data = schemas.load(schemas.receipt_schema, data)
    message = get(session, message_id, for_update=True)
    if message.status == data["status"]:
        return message
    if message.status not in ("sent",):
        raise Conflict(f"message {message_id} is {message.status}: only a sent message takes "
                       "a receipt", {"status": message.status})
    message.status = data["status"]
    if data["status"] == "delivered":
        message.delivered_at = now()
        record_event(session, "message.delivered", _event(
            {"id": message.id, "customer_id": message.customer_id,
             "campaign_id": message.campaign_id, "care_rule_id": message.care_rule_id,
             "channel": message.channel}, "delivered_at"))
    else:
        message.error = data.get("error") or "the provider reported a failure"
    return message
