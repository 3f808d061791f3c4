"""Campaigns: a segment, a channel, a personalised template; launched now or at a set time.

Life of a campaign: ``draft`` (or ``scheduled`` with ``scheduled_at``) → ``launching`` (the
launch is accepted and ``campaign.launched`` announced) → ``sending`` (every member of the segment
is recorded in the delivery log: queued, or skipped with its reason) → ``completed`` (nothing
queued is left). Recording runs in chunks of ``RECORD_CHUNK`` customers in id order, each chunk
its own transaction remembering how far it got (``recorded_up_to``), so a restart resumes where it
stopped, and the unique ``(customer, occasion)`` of the log means a chunk can never be recorded
twice.

Frequency cap: a customer receives at most ``CRM_MARKETING_CAP_MESSAGES`` campaign messages in
any ``CRM_MARKETING_CAP_DAYS`` days (default 2 in 7); care greetings do not count. Messages queued,
sent or delivered count; skipped and failed ones do not.
"""
import uuid
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm_kit import config
from crm_kit.db import insert_new, paginate
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from marketing_service import audience, delivery, schemas, segments
from marketing_service.models import (AudienceCustomer, Campaign, CampaignOpportunity,
                                      CampaignResponse, Message)

CAP_MESSAGES = int(config.env("CRM_MARKETING_CAP_MESSAGES", "2"))
CAP_DAYS = int(config.env("CRM_MARKETING_CAP_DAYS", "7"))
RECORD_CHUNK = int(config.env("CRM_MARKETING_RECORD_CHUNK", "5000"))
COUNTED = ("queued", "sent", "delivered")


def _iso(value):
    return value.isoformat() if value else None


def to_dict(c):
    return {"id": c.id, "name": c.name, "segment_id": c.segment_id, "channel": c.channel,
            "template": c.template, "scheduled_at": _iso(c.scheduled_at),
            "cost": None if c.cost is None else f"{c.cost:.2f}", "status": c.status,
            "audience": c.audience, "launched_at": _iso(c.launched_at),
            "recorded_at": _iso(c.recorded_at), "completed_at": _iso(c.completed_at),
            "created_by": c.created_by, "created_at": c.created_at.isoformat(),
            "updated_at": c.updated_at.isoformat()}


def occasion(campaign_id):
    return f"campaign:{campaign_id}"


def get(session, campaign_id, for_update=False):
    campaign = session.get(Campaign, campaign_id, with_for_update=for_update)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist", {"campaign_id": campaign_id})
    return campaign


def create(session, data, actor):
    problems = {}
    try:
        data = schemas.load(schemas.campaign_schema, data)
    except InvalidInput as exc:
        problems.update(exc.details)
    segment_id = (data or {}).get("segment_id") if isinstance(data, dict) else None
    if "segment_id" not in problems and segment_id is not None:
        if not segments.exists(session, segment_id):
            problems["segment_id"] = [f"segment {segment_id} does not exist"]
    if problems:
        raise InvalidInput(problems)
    moment = now()
    campaign = Campaign(id=str(uuid.uuid4()), **data,
                        status="scheduled" if data["scheduled_at"] else "draft",
                        created_by=(actor or {}).get("id"), created_at=moment,
                        updated_at=moment)
    session.add(campaign)
    session.flush()
    return campaign


def search(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.campaign_filters, filters)
    query = select(Campaign)
    for field, value in filters.items():
        query = query.where(getattr(Campaign, field) == value)
    return paginate(session, query.order_by(Campaign.created_at.desc(), Campaign.id), page, per_page, to_dict)


# -- launching -----------------------------------------------------------------------------
def launch(session, campaign_id, actor=None):
    """Accept the launch: the recipients are recorded by the dispatcher (``record_chunk``)."""
    campaign = get(session, campaign_id, for_update=True)
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: it was launched already",
                       {"status": campaign.status})
    moment = now()
    campaign.status, campaign.launched_at, campaign.updated_at = "launching", moment, moment
    campaign.audience = 0
    record_event(session, "campaign.launched", {
        "campaign_id": campaign.id, "name": campaign.name, "segment_id": campaign.segment_id,
        "channel": campaign.channel, "launched_at": moment.isoformat(),
        "launched_by": (actor or {}).get("id")})
    return campaign


def due_scheduled(session):
    """Scheduled campaigns whose time has come (the dispatcher launches them)."""
    return session.scalars(select(Campaign.id).where(
        Campaign.status == "scheduled", Campaign.scheduled_at <= now())).all()


def launching(session):
    return session.scalars(select(Campaign.id).where(Campaign.status == "launching")
                           .order_by(Campaign.launched_at)).all()


def _capped(session, customer_ids):
    """Of ``customer_ids``, those who got their quota of campaign messages in the window."""
    since = now() - timedelta(days=CAP_DAYS)
    counted = (select(Message.customer_id).where(
        Message.campaign_id.is_not(None), Message.status.in_(COUNTED),
        Message.created_at >= since, Message.customer_id >= customer_ids[0],
        Message.customer_id <= customer_ids[-1])
        .group_by(Message.customer_id).having(func.count() >= CAP_MESSAGES))
    return set(session.scalars(counted))


def record_chunk(session, campaign_id, chunk=RECORD_CHUNK):
    """Record the next ``chunk`` members of a launching campaign's segment in the delivery log.
    Returns True while more remain."""
    campaign = get(session, campaign_id, for_update=True)
    if campaign.status != "launching":
        return False
    segment = segments.get(session, campaign.segment_id)
    query = audience.members(segment.rules).limit(chunk)
    if campaign.recorded_up_to is not None:
        query = query.where(AudienceCustomer.id > campaign.recorded_up_to)
    rows = session.execute(query).all()
    moment = now()
    if rows:
        capped = _capped(session, [r.id for r in rows])
        tag = occasion(campaign.id)
        # the table, not the ORM model: an ORM bulk INSERT leaves out each row's None values,
        # so queued and skipped rows split into small groups that PostgreSQL gets one round
        # trip per row; the same rows through the table go in multi-row INSERTs
        insert_new(session, Message, [
            {"customer_id": r.id, "occasion": tag, "campaign_id": campaign.id,
             "channel": campaign.channel, "attempts": 0, "created_at": moment,
             **delivery.compose(r, campaign.channel, campaign.template,
                                capped=r.id in capped)}
            for r in rows])
        campaign.recorded_up_to = rows[-1].id
    campaign.updated_at = moment
    if len(rows) < chunk:
        campaign.audience = session.scalar(select(func.count()).where(
            Message.campaign_id == campaign.id))
        campaign.status, campaign.recorded_at = "sending", moment
        return False
    return True


def complete_finished(session):
    """Campaigns whose every message has left the queue are completed."""
    sending = session.scalars(select(Campaign).where(Campaign.status == "sending")
                              .with_for_update(skip_locked=True)).all()
    moment = now()
    for campaign in sending:
        waiting = session.scalar(select(Message.id).where(
            Message.campaign_id == campaign.id, Message.status == "queued").limit(1))
        if waiting is None:
            campaign.status, campaign.completed_at, campaign.updated_at = (
                "completed", moment, moment)


# -- results -------------------------------------------------------------------------------
def stats(session, campaign_id):
    campaign = get(session, campaign_id)
    by_status = dict(session.execute(
        select(Message.status, func.count()).where(Message.campaign_id == campaign.id)
        .group_by(Message.status)).all())
    skipped = dict(session.execute(
        select(Message.skip_reason, func.count()).where(
            Message.campaign_id == campaign.id, Message.status == "skipped")
        .group_by(Message.skip_reason)).all())
    audience_size = sum(by_status.values())
    recipients = audience_size - by_status.get("skipped", 0)
    delivered = by_status.get("delivered", 0)
    responses = session.scalar(select(func.count()).where(
        CampaignResponse.campaign_id == campaign.id))
    opportunities, leases_won = session.execute(
        select(func.count(), func.count(CampaignOpportunity.lease_id))
        .where(CampaignOpportunity.campaign_id == campaign.id)).one()
    cost_per_lease = None
    if campaign.cost is not None and leases_won:
        cost_per_lease = (campaign.cost / leases_won).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return {"campaign_id": campaign.id, "status": campaign.status, "audience": audience_size,
            "recipients": recipients, "skipped": skipped,
            "queued": by_status.get("queued", 0),
            "sent": by_status.get("sent", 0) + delivered, "delivered": delivered,
            "failed": by_status.get("failed", 0),
            "delivery_rate": round(delivered / recipients, 4) if recipients else None,
            "responses": responses, "opportunities": opportunities, "leases_won": leases_won,
            "cost": None if campaign.cost is None else f"{campaign.cost:.2f}",
            "cost_per_lease": None if cost_per_lease is None else f"{cost_per_lease:.2f}"}


def response_to_dict(r):
    return {"id": r.id, "campaign_id": r.campaign_id, "customer_id": r.customer_id,
            "response": r.response, "recorded_by": r.recorded_by,
            "received_at": r.received_at.isoformat()}


def record_response(session, campaign_id, data, actor):
    """A customer answered the campaign: recorded once, and announced so sales opens a lead."""
    campaign = get(session, campaign_id)
    data = schemas.load(schemas.response_schema, data)
    customer_id = data["customer_id"]
    received = session.scalar(select(Message.id).where(
        Message.campaign_id == campaign.id, Message.customer_id == customer_id,
        Message.status.in_(("sent", "delivered"))))
    if received is None:
        raise InvalidInput({"customer_id": [
            f"customer {customer_id} has not been sent campaign {campaign.id}"]})
    response = CampaignResponse(id=str(uuid.uuid4()), campaign_id=campaign.id,
                                customer_id=customer_id, response=data["response"],
                                recorded_by=(actor or {}).get("id"), received_at=now())
    try:
        with session.begin_nested():  # the unique key decides, also between two requests
            session.add(response)
    except IntegrityError:
        existing = session.scalar(select(CampaignResponse.id).where(
            CampaignResponse.campaign_id == campaign.id,
            CampaignResponse.customer_id == customer_id))
        raise Conflict(f"customer {customer_id} already responded to this campaign",
                       {"response_id": existing}) from None
    customer = session.get(AudienceCustomer, customer_id)
    record_event(session, "campaign.response_received", {
        "response_id": response.id, "campaign_id": campaign.id, "customer_id": customer_id,
        "response": response.response, "channel": campaign.channel,
        "owner_id": customer.owner_id if customer else None})
    return response


def list_responses(session, campaign_id, page, per_page, customer_ids=None):
    """The campaign's responses, newest first; with ``customer_ids`` (a scoped caller's
    customers, from the gateway) only theirs."""
    get(session, campaign_id)
    query = select(CampaignResponse).where(CampaignResponse.campaign_id == campaign_id)
    if customer_ids is not None:
        query = query.where(CampaignResponse.customer_id.in_(customer_ids))
    return paginate(session, query.order_by(CampaignResponse.received_at.desc()), page, per_page, response_to_dict)
