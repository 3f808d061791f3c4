"""Leads and opportunities (销售机会), their development plans (客户开发计划), the forecast
and stagnation. Plain functions over a SQLAlchemy session; the caller owns the transaction.

Pipeline::

    new → contacted → viewing_booked → viewed → negotiating → won | lost

- Staff move an open opportunity to any other stage, forward or back, with a ``reason``;
  ``lost`` needs a ``loss_reason`` (vocabulary.LOSS_REASONS; ``loss_note`` optional) instead.
  ``won`` and ``lost`` are final: changing from them is a Conflict.
- ``won`` normally comes from signing a lease (``mark_won``, which links the lease). Staff may
  also set it by hand with a reason (a lease signed outside the pipeline).
- Viewings move the opportunity forward only (``advance_to``): booking → viewing_booked,
  an outcome → viewed; never backwards, never out of won/lost.
- Every change is an ``OpportunityStageChange`` row (the ``history``, which also records
  assignments as rows with the same from/to stage and trigger ``assigned``) and, for stage
  changes, an ``opportunity.stage_changed`` event. Entering a stage resets
  ``stage_entered_at`` and clears ``stagnant_since``; closing (won/lost) cancels the
  opportunity's viewings still to come and closes its open stagnation tasks.
- ``probability`` by stage: vocabulary.STAGE_PROBABILITY. ``expected_value`` is the value of
  the lease hoped for; when it is not given but a monthly ``budget`` is, it defaults to
  12 × budget (a year's rent, as a renewal's is 12 × the current rent).
"""
import uuid
from collections import defaultdict
from datetime import timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from crm_kit.envelope import now as utc_now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from sales_service import schemas, tasks
from sales_service import vocabulary as v
from sales_service.models import (Opportunity, OpportunityStageChange, OpportunityStageLimit,
                                  PlanStep, Unit, Viewing)

CENT = Decimal("0.01")
#: the business's clock (Chengdu, UTC+8 all year): months of instants are counted in it
BUSINESS_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
FINAL_STAGES = ("won", "lost")
RANK = {stage: index for index, stage in enumerate(v.OPEN_STAGES)}
actor_id = tasks.actor_id


def probability(stage):
    return Decimal(v.STAGE_PROBABILITY[stage])


def _money(value):
    return None if value is None else f"{value:.2f}"


def _iso(value):
    return value.isoformat() if value else None


# -- reading -------------------------------------------------------------------------------
def step_dict(step):
    return {"id": step.id, "title": step.title, "due_date": step.due_date.isoformat(),
            "done": step.done_at is not None, "done_at": _iso(step.done_at),
            "done_by": step.done_by, "result": step.result}


def to_dict(opportunity, history=None):
    """The opportunity as the contract shows it; with ``history`` when given."""
    o = opportunity
    data = {"id": o.id, "customer_id": o.customer_id, "kind": o.kind, "source": o.source,
            "campaign_id": o.campaign_id, "budget": _money(o.budget), "district": o.district,
            "layout": o.layout, "move_in_date": _iso(o.move_in_date),
            "expected_value": _money(o.expected_value),
            "probability": v.STAGE_PROBABILITY[o.stage],
            "expected_close": _iso(o.expected_close), "owner_id": o.owner_id,
            "stage": o.stage, "stage_entered_at": o.stage_entered_at.isoformat(),
            "loss_reason": o.loss_reason, "loss_note": o.loss_note, "lease_id": o.lease_id,
            "renewal_of_lease_id": o.renewal_of_lease_id,
            "stagnant": o.stagnant_since is not None, "stagnant_since": _iso(o.stagnant_since),
            "plan_steps": [step_dict(s) for s in o.steps],
            "created_at": o.created_at.isoformat(), "updated_at": o.updated_at.isoformat()}
    if history is not None:
        data["history"] = history
    return data


def get(session, opportunity_id, for_update=False):
    """The opportunity, or NotFound."""
    query = select(Opportunity).where(Opportunity.id == opportunity_id)
    if for_update:
        query = query.with_for_update()
    opportunity = session.scalars(query).first()
    if opportunity is None:
        raise NotFound(f"opportunity {opportunity_id} does not exist",
                       {"opportunity_id": opportunity_id})
    return opportunity


def history(session, opportunity_id):
    rows = session.scalars(select(OpportunityStageChange)
                           .where(OpportunityStageChange.opportunity_id == opportunity_id)
                           .order_by(OpportunityStageChange.id))
    return [{"from_stage": r.from_stage, "to_stage": r.to_stage, "trigger": r.trigger,
             "actor_id": r.actor_id, "reason": r.reason, "occurred_at": r.occurred_at.isoformat()}
            for r in rows]


def detail(session, opportunity_id):
    """``get_opportunity``: the opportunity dict with its ``history``."""
    opportunity = get(session, opportunity_id)
    session.flush()
    return to_dict(opportunity, history(session, opportunity.id))


def visible_to(scope):
    """The opportunities a scoped caller sees (the gateway's ``visible_to`` filter): owned by
    one of ``owner_ids``, or of a customer among ``customer_ids``."""
    return or_(Opportunity.owner_id.in_(scope.get("owner_ids") or []),
               Opportunity.customer_id.in_(scope.get("customer_ids") or []))


def search(session, filters, page=1, per_page=50):
    """Opportunities by ``customer_id``, ``stage``, ``owner_id``, ``owner_ids``, ``kind``,
    ``stagnant``, ``campaign_id``, ``renewal_of_lease_id``; the newest first."""
    filters = schemas.load_filters(schemas.opportunity_filter_schema, filters)
    query = select(Opportunity)
    for name in ("customer_id", "stage", "owner_id", "kind", "campaign_id",
                 "renewal_of_lease_id"):
        if filters.get(name):
            query = query.where(getattr(Opportunity, name) == filters[name])
    if filters.get("owner_ids") is not None:
        query = query.where(Opportunity.owner_id.in_(filters["owner_ids"]))
    if filters.get("visible_to") is not None:
        query = query.where(visible_to(filters["visible_to"]))
    if filters.get("stagnant") is not None:
        query = query.where(Opportunity.stagnant_since.is_not(None) if filters["stagnant"]
                            else Opportunity.stagnant_since.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Opportunity.created_at.desc(), Opportunity.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [to_dict(o) for o in rows], "total": total, "page": page,
            "per_page": per_page}


# -- creating ------------------------------------------------------------------------------
def _new(session, trigger, actor=None, reason=None, **fields):
    moment = utc_now()
    opportunity = Opportunity(id=str(uuid.uuid4()), stage="new", stage_entered_at=moment,
                              created_at=moment, updated_at=moment, **fields)
    return opportunity, OpportunityStageChange(
        opportunity_id=opportunity.id, from_stage=None, to_stage="new", trigger=trigger,
        actor_id=actor_id(actor), reason=reason, occurred_at=moment)


def _created(session, opportunity):
    record_event(session, "opportunity.created", {
        "opportunity_id": opportunity.id, "customer_id": opportunity.customer_id,
        "owner_id": opportunity.owner_id, "kind": opportunity.kind,
        "source": opportunity.source, "campaign_id": opportunity.campaign_id,
        "expected_value": _money(opportunity.expected_value), "stage": opportunity.stage,
        "renewal_of_lease_id": opportunity.renewal_of_lease_id})


def create(session, data, actor, customer):
    """A new opportunity (kind ``new``) for ``customer``, the customer service's dict for
    ``data["customer_id"]`` (the entrypoint fetched it; None means unknown).

    Owner: ``data.owner_id``, else the customer's owner, else the actor if a customer manager.
    """
    data = schemas.load(schemas.opportunity_schema, data)
    if not customer or customer.get("id") != data["customer_id"]:
        raise InvalidInput({"customer_id": ["no such customer"]})
    if customer.get("merged_into"):
        raise InvalidInput({"customer_id": [
            f"was merged into customer {customer['merged_into']}; use that one"]})
    if customer.get("erased") or customer.get("archived"):
        raise InvalidInput({"customer_id": ["this customer is archived or erased"]})
    owner_id = data.get("owner_id") or customer.get("owner_id")
    if owner_id is None and "customer_manager" in ((actor or {}).get("roles") or ()):
        owner_id = actor_id(actor)
    expected_value = data.get("expected_value")
    if expected_value is None and data.get("budget") is not None:
        expected_value = data["budget"] * 12
    opportunity, created = _new(
        session, "created", actor, kind="new", customer_id=data["customer_id"],
        source=data["source"], campaign_id=data.get("campaign_id"), budget=data.get("budget"),
        district=data.get("district"), layout=data.get("layout"),
        move_in_date=data.get("move_in_date"), expected_value=expected_value,
        expected_close=data.get("expected_close"), owner_id=owner_id)
    session.add(opportunity)
    session.flush()
    session.add(created)
    _created(session, opportunity)
    return opportunity


def create_from_campaign_response(session, data, envelope):
    """React to ``campaign.response_received`` ({customer_id, campaign_id, response,
    owner_id?}): open a lead with source ``campaign``. A second response of the same customer
    to the same campaign while that lead is open adds nothing and returns the open lead.
    (Redelivered events are absorbed by the kit's inbox.)"""
    customer_id, campaign_id = data["customer_id"], data.get("campaign_id")
    existing = session.scalars(select(Opportunity).where(
        Opportunity.customer_id == customer_id, Opportunity.campaign_id == campaign_id,
        Opportunity.campaign_id.is_not(None),
        Opportunity.stage.in_(v.OPEN_STAGES))).first()
    if existing is not None:
        return existing
    response = data.get("response")
    reason = f"campaign response: {response}"[:1000] if response else "campaign response"
    opportunity, created = _new(
        session, "event:campaign.response_received", reason=reason, kind="new",
        customer_id=customer_id, source="campaign", campaign_id=campaign_id,
        owner_id=data.get("owner_id"))
    session.add(opportunity)
    session.flush()
    session.add(created)
    _created(session, opportunity)
    return opportunity


def create_renewal(session, lease, days_left):
    """The renewal opportunity of ``lease`` (for the renewal scan), or None when the lease has
    one already (also when a concurrent scan created it first).

    Owner: the lease's owner; expected value: 12 × the monthly rent; expected close: the
    lease's end date; budget, district and layout from the lease and its unit.
    """
    if _renewal_of(session, lease.id) is not None:
        return None
    unit = session.get(Unit, lease.unit_id)
    opportunity, created = _new(
        session, "renewal_scan",
        reason=f"lease {lease.id} ends on {lease.end_date.isoformat()} ({days_left} days left)",
        kind="renewal", customer_id=lease.customer_id, source="renewal",
        budget=lease.monthly_rent, district=unit.district if unit else None,
        layout=unit.layout if unit else None, move_in_date=None,
        expected_value=lease.monthly_rent * 12, expected_close=lease.end_date,
        owner_id=lease.owner_id, renewal_of_lease_id=lease.id)
    try:
        with session.begin_nested():
            session.add(opportunity)
            session.flush()
    except IntegrityError:
        if _renewal_of(session, lease.id) is not None:
            return None
        raise
    session.add(created)
    _created(session, opportunity)
    return opportunity


def _renewal_of(session, lease_id):
    return session.scalar(select(Opportunity.id).where(Opportunity.renewal_of_lease_id == lease_id))


# -- stages --------------------------------------------------------------------------------
def _transition(session, opportunity, to_stage, trigger, actor=None, reason=None):
    from_stage = opportunity.stage
    moment = utc_now()
    opportunity.stage = to_stage
    opportunity.stage_entered_at = opportunity.updated_at = moment
    opportunity.stagnant_since = None
    session.add(OpportunityStageChange(
        opportunity_id=opportunity.id, from_stage=from_stage, to_stage=to_stage,
        trigger=trigger, actor_id=actor_id(actor), reason=reason, occurred_at=moment))
    # the stay in the old stage is over, and with it any "move this along" task
    tasks.complete_linked(session, "stagnation", f"moved to {to_stage}",
                          opportunity_id=opportunity.id)
    if to_stage in FINAL_STAGES:
        session.execute(update(Viewing).where(
            Viewing.opportunity_id == opportunity.id, Viewing.status == "scheduled",
            Viewing.scheduled_at > moment).values(status="cancelled")
            .execution_options(synchronize_session="fetch"))
    record_event(session, "opportunity.stage_changed", {
        "opportunity_id": opportunity.id, "customer_id": opportunity.customer_id,
        "owner_id": opportunity.owner_id, "from_stage": from_stage, "to_stage": to_stage,
        "loss_reason": opportunity.loss_reason,
        "expected_value": _money(opportunity.expected_value), "trigger": trigger,
        "lease_id": opportunity.lease_id})


def _refuse_final(opportunity):
    if opportunity.stage in FINAL_STAGES:
        raise Conflict(f"opportunity {opportunity.id} is {opportunity.stage}, which is final",
                       {"stage": opportunity.stage})


def change_stage(session, opportunity_id, data, actor):
    """A manual move: ``{stage, reason, loss_reason, loss_note}`` (see the module docstring)."""
    data = schemas.load(schemas.opportunity_stage_schema, data)
    opportunity = get(session, opportunity_id, for_update=True)
    _refuse_final(opportunity)
    if data["stage"] == opportunity.stage:
        raise Conflict(f"opportunity is already {opportunity.stage}",
                       {"stage": opportunity.stage})
    if data["stage"] == "lost":
        opportunity.loss_reason = data["loss_reason"]
        opportunity.loss_note = data.get("loss_note")
    reason = data.get("reason") or (f"lost: {data['loss_reason']}" if data["stage"] == "lost"
                                    else None)
    _transition(session, opportunity, data["stage"], "manual", actor, reason)
    return opportunity


def mark_won(session, opportunity, lease_id, customer_id=None, actor=None):
    """Win ``opportunity`` (a model or an id) by the lease ``lease_id`` (for lease signing).

    Idempotent for the same lease. Conflict when it is lost or won by another lease;
    InvalidInput on ``opportunity_id`` when ``customer_id`` is given and is not its customer.
    """
    if not isinstance(opportunity, Opportunity):
        opportunity = get(session, opportunity, for_update=True)
    if customer_id is not None and opportunity.customer_id != customer_id:
        raise InvalidInput({"opportunity_id": [
            f"belongs to customer {opportunity.customer_id}, not {customer_id}"]})
    if opportunity.stage == "won" and opportunity.lease_id == lease_id:
        return opportunity
    _refuse_final(opportunity)
    opportunity.lease_id = lease_id
    _transition(session, opportunity, "won", "lease_signed", actor, f"lease {lease_id} signed")
    return opportunity


def advance_to(session, opportunity, stage, trigger, actor=None, reason=None):
    """Move an open opportunity (a model or an id) forward to ``stage``; no-op when it is
    there or further along already, or closed. True if it moved."""
    if stage not in RANK:
        raise ValueError(f"advance_to goes to an open stage, not {stage!r}")
    if not isinstance(opportunity, Opportunity):
        opportunity = get(session, opportunity, for_update=True)
    if opportunity.stage in FINAL_STAGES or RANK[opportunity.stage] >= RANK[stage]:
        return False
    _transition(session, opportunity, stage, trigger, actor, reason)
    return True


def assign(session, opportunity_id, owner_id, actor):
    """A supervisor gives the opportunity to ``owner_id``; its open tasks held by the former
    owner follow it. The history keeps the assignment (trigger ``assigned``)."""
    owner_id = schemas.load(schemas.assign_schema, {"owner_id": owner_id})["owner_id"]
    opportunity = get(session, opportunity_id, for_update=True)
    _refuse_final(opportunity)
    previous = opportunity.owner_id
    if previous == owner_id:
        return opportunity
    moment = utc_now()
    opportunity.owner_id = owner_id
    opportunity.updated_at = moment
    session.add(OpportunityStageChange(
        opportunity_id=opportunity.id, from_stage=opportunity.stage, to_stage=opportunity.stage,
        trigger="assigned", actor_id=actor_id(actor),
        reason=f"owner {previous or '(none)'} → {owner_id}", occurred_at=moment))
    if previous is not None:
        tasks.reassign_open(session, opportunity.id, previous, owner_id, actor)
    return opportunity


# -- development plan ----------------------------------------------------------------------
def add_plan_step(session, opportunity_id, data, actor):
    """A planned step ``{title, due_date}`` of an open opportunity's development plan."""
    data = schemas.load(schemas.plan_step_schema, data)
    opportunity = get(session, opportunity_id, for_update=True)
    if opportunity.stage in FINAL_STAGES:
        raise Conflict(f"the plan of a {opportunity.stage} opportunity is over",
                       {"stage": opportunity.stage})
    opportunity.steps.append(PlanStep(title=data["title"], due_date=data["due_date"]))
    opportunity.updated_at = utc_now()
    session.flush()
    return opportunity


def complete_plan_step(session, opportunity_id, step_id, result, actor):
    """Record a step as executed with its ``result``; Conflict if it was done already."""
    result = schemas.load(schemas.plan_step_done_schema, {"result": result})["result"]
    opportunity = get(session, opportunity_id, for_update=True)
    step = next((s for s in opportunity.steps if str(s.id) == str(step_id)), None)
    if step is None:
        raise NotFound(f"opportunity {opportunity_id} has no plan step {step_id}",
                       {"step_id": step_id})
    if step.done_at is not None:
        raise Conflict(f"plan step {step_id} was done at {step.done_at.isoformat()}",
                       {"step_id": step.id, "done_at": step.done_at.isoformat()})
    moment = utc_now()
    step.done_at, step.result, step.done_by = moment, result, actor_id(actor)
    opportunity.updated_at = moment
    return opportunity


# -- forecast ------------------------------------------------------------------------------
def forecast_month(opportunity):
    """``YYYY-MM`` an opportunity is expected to close in: its ``expected_close``, else its
    ``move_in_date``, else the month it was created (in the business's time zone, UTC+8)."""
    day = (opportunity.expected_close or opportunity.move_in_date
           or opportunity.created_at.astimezone(BUSINESS_TZ).date())
    return f"{day.year:04d}-{day.month:02d}"


def forecast(session, filters=None):
    """Σ expected_value × probability over the open opportunities (``owner_id``, ``owner_ids``,
    ``kind`` filter them), in total, by owner and by month (``forecast_month``).

    Each figure is summed exactly and rounded half-up to the cent once, at the end, so a
    total can differ by a cent from the sum of its rounded parts. ``count`` counts the
    opportunities, including those without an expected value (which add 0).
    """
    filters = schemas.load_filters(schemas.forecast_filter_schema, filters)
    query = select(Opportunity).where(Opportunity.stage.in_(v.OPEN_STAGES))
    for name in ("owner_id", "kind"):
        if filters.get(name):
            query = query.where(getattr(Opportunity, name) == filters[name])
    if filters.get("owner_ids") is not None:
        query = query.where(Opportunity.owner_id.in_(filters["owner_ids"]))
    total, count = Decimal(0), 0
    by_owner = defaultdict(lambda: [Decimal(0), 0])
    by_month = defaultdict(lambda: [Decimal(0), 0])
    for opportunity in session.scalars(query):
        weighted = (opportunity.expected_value or Decimal(0)) * probability(opportunity.stage)
        total += weighted
        count += 1
        for bucket in (by_owner[opportunity.owner_id], by_month[forecast_month(opportunity)]):
            bucket[0] += weighted
            bucket[1] += 1

    def cents(value):
        return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):.2f}"

    return {
        "total": cents(total), "count": count,
        "by_owner": [{"owner_id": owner, "value": cents(value), "count": n}
                     for owner, (value, n) in sorted(by_owner.items(),
                                                     key=lambda item: (item[0] is None,
                                                                       item[0] or ""))],
        "by_month": [{"month": month, "value": cents(value), "count": n}
                     for month, (value, n) in sorted(by_month.items())],
    }


# -- stagnation ----------------------------------------------------------------------------
def stage_limits(session):
    """``{stage: days}`` of the open stages that have a limit (a stored 0 means none)."""
    rows = session.scalars(select(OpportunityStageLimit)).all()
    if not rows:
        return dict(v.DEFAULT_OPPORTUNITY_STAGE_LIMITS)
    return {row.stage: row.days for row in rows if row.days}


def set_stage_limits(session, data, actor):
    """Change some stages' limits (days; 0 or null: no limit); returns the limits in force."""
    data = schemas.load(schemas.opportunity_stage_limits_schema, data)
    if not data:
        raise InvalidInput({"_schema": ["give at least one stage"]})
    limits = stage_limits(session)
    limits.update(data)
    session.execute(OpportunityStageLimit.__table__.delete())
    # every open stage gets a row, 0 for "no limit", so an all-zero table is not mistaken
    # for "use the defaults"
    for stage in v.OPEN_STAGES:
        session.add(OpportunityStageLimit(stage=stage, days=limits.get(stage) or 0))
    session.flush()
    return {stage: days for stage, days in limits.items() if days}


def scan_stagnation(session, now=None):
    """Flag each open opportunity stuck in its stage past the stage's limit, once per stay:
    ``stagnant_since`` is set, its owner gets a ``stagnation`` task, and
    ``opportunity.stagnated`` is recorded. Safe on several instances (each opportunity is
    claimed by a conditional update). Returns the opportunities flagged."""
    moment = now or utc_now()
    flagged = []
    for stage, days in stage_limits(session).items():
        if stage not in RANK:
            continue
        cutoff = moment - timedelta(days=days)
        stuck = session.scalars(select(Opportunity).where(
            Opportunity.stage == stage, Opportunity.stage_entered_at < cutoff,
            Opportunity.stagnant_since.is_(None))
            .order_by(Opportunity.stage_entered_at, Opportunity.id).limit(1000)).all()
        for opportunity in stuck:
            claimed = session.execute(
                update(Opportunity).where(Opportunity.id == opportunity.id,
                                          Opportunity.stage == stage,
                                          Opportunity.stagnant_since.is_(None))
                .values(stagnant_since=moment).execution_options(synchronize_session=False))
            if claimed.rowcount != 1:
                continue
            session.refresh(opportunity, ["stagnant_since"])
            days_in_stage = (moment - opportunity.stage_entered_at).days
            tasks.create_system_task(
                session, opportunity.owner_id, "stagnation",
                f"Opportunity stuck in {stage} for {days_in_stage} days (limit {days})",
                moment + timedelta(days=1), customer_id=opportunity.customer_id,
                opportunity_id=opportunity.id)
            record_event(session, "opportunity.stagnated", {
                "opportunity_id": opportunity.id, "customer_id": opportunity.customer_id,
                "owner_id": opportunity.owner_id, "stage": stage,
                "days_in_stage": days_in_stage, "limit_days": days})
            flagged.append(opportunity)
    return flagged
