"""Marketing's own copy of the customers and leases it targets, kept from events.

The customer service is the authority on a customer, the sales service on a lease, analytics on
scores; marketing never reads their databases. Each ``customer.*`` event carries the whole record
(state transfer), so applying the newest one is enough; every part of the copy remembers the
version it holds (``profile_at``, ``stage_at``, ``scored_at``, a lease's ``updated_at``) and an
older event arriving late changes nothing. Events handled by different consumers can arrive in
any order: a stage change before the customer's creation makes a stub row the snapshot fills in.

After downtime the durable queues hold every event and the service catches up on start. A
service deployed after customers exist (or a lost database) fills its copy with ``resync`` (pages
of the customer and sales services' list RPCs), see docs/marketing.md.
"""
from datetime import date, datetime, timedelta

from sqlalchemy import and_, delete, exists, select, update

from crm_kit.db import insert_new
from crm_kit.envelope import now
from marketing_service import clock
from marketing_service.models import (AudienceCustomer, AudienceLease, AudienceTag,
                                      CampaignOpportunity, CampaignResponse, Message)

PROFILE = ("name", "mobile", "email", "wechat_id", "gender", "occupation", "industry",
           "employer", "city", "district", "source")
ERASED_NAME = "(erased)"


def instant(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _row(session, customer_id):
    """The customer's row, locked; a stub when marketing has not heard of them yet (inserted
    with ON CONFLICT DO NOTHING: an event handler and a resync may add the same one at once)."""
    row = session.get(AudienceCustomer, customer_id, with_for_update=True)
    if row is None:
        insert_new(session, AudienceCustomer, [{"id": customer_id, "consent": {},
                                                "archived": False, "erased": False}])
        row = session.get(AudienceCustomer, customer_id, with_for_update=True,
                          populate_existing=True)
    return row


# -- customer events -----------------------------------------------------------------------
def apply_customer(session, snapshot):
    """customer.created / customer.updated (and the survivor of customer.merged): the record."""
    row = _row(session, snapshot["id"])
    version = instant(snapshot["updated_at"])
    if row.erased or (row.profile_at is not None and version < row.profile_at):
        return row
    row.profile_at = version
    for field in PROFILE:
        setattr(row, field, snapshot.get(field))
    birthday = snapshot.get("birthday")
    row.birthday = date.fromisoformat(birthday) if birthday else None
    row.birthday_md = row.birthday.strftime("%m-%d") if row.birthday else None
    row.consent = dict(snapshot.get("consent") or {})
    row.member_tier = (snapshot.get("member") or {}).get("tier")
    row.merged_into = snapshot.get("merged_into") or row.merged_into  # a merge is for good
    if row.owner_at is None or version >= row.owner_at:
        row.owner_id, row.owner_at = snapshot.get("owner_id"), version
    row.archived = bool(snapshot.get("archived"))
    if row.scored_at is None:  # analytics' own event is newer than the customer's copy of it
        row.value_tier = snapshot.get("value_tier")
    stage_at = instant(snapshot.get("stage_entered_at"))
    if snapshot.get("stage") and (row.stage_at is None or stage_at >= row.stage_at):
        row.stage, row.stage_at = snapshot["stage"], stage_at
    _set_tags(session, row.id, snapshot.get("tags") or [])
    if snapshot.get("erased"):
        erase(session, row.id, version)
    return row


def _set_tags(session, customer_id, tags):
    session.execute(delete(AudienceTag).where(AudienceTag.customer_id == customer_id))
    session.add_all(AudienceTag(customer_id=customer_id, tag=tag) for tag in sorted(set(tags)))


def stage_changed(session, data, envelope):
    row = _row(session, data["customer_id"])
    moment = instant(envelope["occurred_at"])
    if row.stage_at is None or moment >= row.stage_at:
        row.stage, row.stage_at = data["to_stage"], moment


def owner_changed(session, data, envelope):
    row = _row(session, data["customer_id"])
    moment = instant(envelope["occurred_at"])
    if row.owner_at is None or moment >= row.owner_at:
        row.owner_id, row.owner_at = data.get("to_owner_id"), moment


def merged(session, data):
    apply_customer(session, data["customer"])
    row = _row(session, data["merged_id"])
    row.merged_into = data["survivor_id"]


def erase(session, customer_id, moment=None):
    """customer.erased: the person's data goes from the copy, the delivery log and responses;
    the facts (a message was sent, a response came) stay, without what identifies them."""
    row = _row(session, customer_id)
    for field in PROFILE:
        setattr(row, field, None)
    row.name = ERASED_NAME
    row.birthday = row.birthday_md = None
    row.consent, row.erased = {}, True
    row.profile_at = max(filter(None, (row.profile_at, moment or now())))
    session.execute(delete(AudienceTag).where(AudienceTag.customer_id == customer_id))
    session.execute(update(Message).where(Message.customer_id == customer_id,
                                          Message.status == "queued")
                    .values(status="skipped", skip_reason="erased", body=None, recipient=None))
    session.execute(update(Message).where(Message.customer_id == customer_id,
                                          Message.body.is_not(None))
                    .values(body=ERASED_NAME, recipient=None))
    session.execute(update(CampaignResponse).where(CampaignResponse.customer_id == customer_id)
                    .values(response=None))


def scored(session, data, envelope):
    """customer.scored from analytics: value tier and RFM segment, the newest score wins."""
    row = _row(session, data["customer_id"])
    moment = instant(data.get("scored_at") or envelope["occurred_at"])
    if row.scored_at is not None and moment <= row.scored_at:
        return
    row.scored_at = moment
    if "value_tier" in data:
        row.value_tier = data["value_tier"]
    rfm = data.get("rfm") or {}
    if rfm.get("segment") is not None:
        row.rfm_segment = rfm["segment"]


# -- lease and opportunity events ----------------------------------------------------------
def apply_lease(session, data, envelope, lease_id=None, status=None):
    """lease.signed / renewed / terminated / ended: the lease as the event tells it. A lease
    some renewal names as its predecessor is ``renewed``, whichever event came first."""
    lease_id = lease_id or data["lease_id"]
    moment = instant(envelope["occurred_at"])
    lease = session.get(AudienceLease, lease_id, with_for_update=True)
    if lease is None:
        lease = AudienceLease(id=lease_id, customer_id=data["customer_id"])
        session.add(lease)
    elif lease.updated_at >= moment:
        return lease
    lease.unit_id = data.get("unit_id")
    lease.start_date = date.fromisoformat(data["start_date"])
    lease.end_date = date.fromisoformat(data["end_date"])
    lease.status = status or data["status"]
    lease.renewed_from_id = data.get("renewed_from_id") or lease.renewed_from_id
    lease.opportunity_id = data.get("opportunity_id") or lease.opportunity_id
    lease.updated_at = moment
    if lease.status == "active" and session.scalar(select(AudienceLease.id).where(
            AudienceLease.renewed_from_id == lease_id).limit(1)) is not None:
        lease.status = "renewed"
    return lease


def lease_signed(session, data, envelope):
    apply_lease(session, data, envelope)
    if data.get("opportunity_id"):
        session.execute(update(CampaignOpportunity)
                        .where(CampaignOpportunity.opportunity_id == data["opportunity_id"])
                        .values(lease_id=data["lease_id"]))


def lease_renewed(session, data, envelope):
    """The event carries the new lease (``new_lease_id``) and names the old one (``lease_id``)."""
    renewal = apply_lease(session, data, envelope, lease_id=data["new_lease_id"])
    renewal.renewed_from_id = data["lease_id"]
    old = session.get(AudienceLease, data["lease_id"], with_for_update=True)
    if old is not None:
        old.status = "renewed"


def opportunity_created(session, data):
    """An opportunity from a campaign (source campaign, or a campaign_id given by sales); the
    lease won with it may have been heard of first."""
    if not data.get("campaign_id"):
        return
    if session.get(CampaignOpportunity, data["opportunity_id"]) is None:
        won = session.scalar(select(AudienceLease.id).where(
            AudienceLease.opportunity_id == data["opportunity_id"]).limit(1))
        session.add(CampaignOpportunity(
            opportunity_id=data["opportunity_id"], campaign_id=data["campaign_id"],
            customer_id=data["customer_id"], lease_id=won, created_at=now()))


# -- who matches a segment -----------------------------------------------------------------
#: what composing a message needs of a customer (one row per recipient, no ORM objects)
COLUMNS = (AudienceCustomer.id, AudienceCustomer.name, AudienceCustomer.mobile,
           AudienceCustomer.email, AudienceCustomer.wechat_id, AudienceCustomer.gender,
           AudienceCustomer.occupation, AudienceCustomer.industry, AudienceCustomer.employer,
           AudienceCustomer.city, AudienceCustomer.district, AudienceCustomer.member_tier,
           AudienceCustomer.consent, AudienceCustomer.erased, AudienceCustomer.archived)


def active_lease(condition=None):
    query = select(AudienceLease.id).where(AudienceLease.customer_id == AudienceCustomer.id,
                                           AudienceLease.status == "active")
    return exists(query.where(condition) if condition is not None else query)


def conditions(rules, today=None):
    """The WHERE clauses of a segment's rules (validated by schemas.RulesSchema)."""
    today = today or clock.today()
    found = [AudienceCustomer.merged_into.is_(None)]
    for key, values in rules.items():
        if key == "tags":
            found.append(exists(select(AudienceTag.tag).where(
                AudienceTag.customer_id == AudienceCustomer.id, AudienceTag.tag.in_(values))))
        elif key == "lease_ends_within_days":
            found.append(active_lease(and_(AudienceLease.end_date >= today,
                                           AudienceLease.end_date <= today + timedelta(values))))
        elif key == "has_active_lease":
            found.append(active_lease() if values else ~active_lease())
        else:
            found.append(getattr(AudienceCustomer, key).in_(values))
    return found


def members(rules, columns=COLUMNS, today=None):
    """A SELECT of the segment's members, in id order."""
    return select(*columns).where(*conditions(rules, today)).order_by(AudienceCustomer.id)
