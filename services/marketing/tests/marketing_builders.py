"""Builders the logic-level tests share: segments, campaigns, recording and sending them."""
import contextlib
import uuid

from sqlalchemy import select

from marketing_service import audience, campaigns, channels, delivery, segments
from marketing_service import vocabulary as v
from marketing_service.models import Message

from marketing_fixtures import MARKETER, snapshot

LOG = {channel: channels.LogChannel() for channel in v.CHANNELS}


def merge(session, survivor_id, duplicate_id):
    """customer.merged: the duplicate folded into the survivor."""
    audience.merged(session, {"survivor_id": survivor_id, "merged_id": duplicate_id,
                              "merged_mobile": None, "customer": snapshot(survivor_id)})


def make_segment(session, rules=None, name=None):
    return segments.create(session, {"name": name or f"segment {uuid.uuid4().hex[:8]}",
                                     "rules": rules or {}}, MARKETER)


def campaign_data(segment_id, **overrides):
    data = {"name": "春季新房源", "segment_id": segment_id, "channel": "sms",
            "template": "{name}您好，{district}有新房源"}
    data.update(overrides)
    return data


def make_campaign(session, segment_id, **overrides):
    return campaigns.create(session, campaign_data(segment_id, **overrides), MARKETER)


def record_all(session, campaign_id, chunk=campaigns.RECORD_CHUNK):
    """Record every recipient as the dispatcher does; returns how many record_chunk calls."""
    calls = 1
    while campaigns.record_chunk(session, campaign_id, chunk):
        calls += 1
    return calls


def launch(session, rules=None, **campaign_overrides):
    """A campaign to a new segment of ``rules``, launched and recorded."""
    segment = make_segment(session, rules)
    campaign = make_campaign(session, segment.id, **campaign_overrides)
    campaigns.launch(session, campaign.id, MARKETER)
    record_all(session, campaign.id)
    return campaign


def same_session(session):
    """A ``transaction()`` for the logic that opens its own steps: the test's one session."""
    return lambda: contextlib.nullcontext(session)


def send_all(session, adapters=LOG):
    """One dispatch run; the session then forgets what it loaded (dispatch updates in bulk)."""
    counts = delivery.dispatch(same_session(session), adapters)
    session.flush()
    session.expire_all()
    return counts


def messages(session, **where):
    query = select(Message).order_by(Message.id)
    for field, value in where.items():
        query = query.where(getattr(Message, field) == value)
    return session.scalars(query).all()


def message_of(session, customer_id, **where):
    [message] = messages(session, customer_id=customer_id, **where)
    return message
