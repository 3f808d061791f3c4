"""Customer lifecycle ([001] 篇9): stages, automatic and manual transitions, churn decisions,
stagnation alerts, and the reactions to other services' events.

    potential → intent → first_time → repeat,  plus churn_warning and churned

Automatic (from events): opportunity.created moves potential → intent; the first lease.signed
makes a first-time customer, a second one (or lease.renewed) a repeat customer;
churn.warning_raised moves an active customer to churn_warning. Manual transitions need a
reason. Every transition is one ``StageChange`` row (from, to, trigger, event, actor,
approver, reason, time), one ``customer.stage_changed`` event and one audit entry; what events
change (leases signed, points, scores) is audited too, with the actor ``system``.
"""
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from crm_kit import audit
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from customer_service import customers, membership, schemas
from customer_service.models import (ChurnDecision, Customer, StageChange, StageLimit,
                                     StagnationAlert)

#: days a customer may stay in a stage before its owner is alerted (stages absent: no limit)
DEFAULT_STAGE_LIMITS = {"potential": 15, "intent": 30, "churn_warning": 14}


def transition(session, customer, to_stage, trigger, actor=None, reason=None,
               approver_id=None, event_id=None):
    from_stage = customer.stage
    moment = now()
    customer.stage = to_stage
    customer.stage_entered_at = moment
    customer.updated_at = moment
    session.add(StageChange(customer_id=customer.id, from_stage=from_stage, to_stage=to_stage,
                            trigger=trigger, event_id=event_id,
                            actor_id=customers.actor_id(actor), approver_id=approver_id,
                            reason=reason, occurred_at=moment))
    # leaving a stage settles its stagnation alert
    session.execute(update(StagnationAlert)
                    .where(StagnationAlert.customer_id == customer.id,
                           StagnationAlert.status != "resolved")
                    .values(status="resolved", resolved_at=moment))
    record_event(session, "customer.stage_changed", {
        "customer_id": customer.id, "from_stage": from_stage, "to_stage": to_stage,
        "trigger": trigger, "reason": reason, "owner_id": customer.owner_id})
    customers.audit_change(session, actor or audit.SYSTEM, "customer.stage_changed", customer,
                           {"stage": from_stage},
                           {"stage": to_stage, "trigger": trigger, "reason": reason,
                            "approver_id": approver_id, "event_id": event_id})


def change_stage(session, customer_id, data, actor):
    """A manual transition: any stage to another, with a reason."""
    data = schemas.load(schemas.stage_change_schema, data)
    customer = customers.get_active(session, customer_id)
    if customer.stage == data["stage"]:
        raise Conflict(f"customer is already {data['stage']}", {"stage": customer.stage})
    transition(session, customer, data["stage"], trigger="manual", actor=actor,
               reason=data["reason"], approver_id=data.get("approver_id"))
    return customer


def history(session, customer_id):
    customers.get(session, customer_id)
    rows = session.scalars(select(StageChange).where(StageChange.customer_id == customer_id)
                           .order_by(StageChange.occurred_at, StageChange.id))
    return [{"from_stage": r.from_stage, "to_stage": r.to_stage, "trigger": r.trigger,
             "event_id": r.event_id, "actor_id": r.actor_id, "approver_id": r.approver_id,
             "reason": r.reason, "occurred_at": r.occurred_at.isoformat()} for r in rows]


# -- churn ---------------------------------------------------------------------------------
def churn_decision(session, customer_id, data, actor):
    """The owner's answer to a churn warning.

    keep_trying (暂缓流失): the customer returns to the stage it had before the warning and
    the decision is logged as an action; confirm_churn (确定流失): the customer is churned,
    with the reason and the competitor it left for, if known.
    """
    data = schemas.load(schemas.churn_decision_schema, data)
    customer = customers.get_active(session, customer_id)
    if customer.stage != "churn_warning":
        raise Conflict("a churn decision answers a churn warning; this customer has none",
                       {"stage": customer.stage})
    session.add(ChurnDecision(customer_id=customer.id, decision=data["decision"],
                              reason=data["reason"], competitor=data.get("competitor"),
                              actor_id=customers.actor_id(actor), occurred_at=now()))
    customers.audit_change(session, actor, "customer.churn_decided", customer, None,
                           {"decision": data["decision"], "reason": data["reason"],
                            "competitor": data.get("competitor")})
    if data["decision"] == "confirm_churn":
        transition(session, customer, "churned", trigger="churn_decision", actor=actor,
                   reason=data["reason"])
        record_event(session, "customer.churn_confirmed", {
            "customer_id": customer.id, "reason": data["reason"],
            "competitor": data.get("competitor"), "owner_id": customer.owner_id})
    else:
        transition(session, customer, _stage_before_warning(session, customer),
                   trigger="churn_decision", actor=actor, reason=data["reason"])
    return customer


def _stage_before_warning(session, customer):
    last_warning = session.scalar(
        select(StageChange).where(StageChange.customer_id == customer.id,
                                  StageChange.to_stage == "churn_warning")
        .order_by(StageChange.occurred_at.desc(), StageChange.id.desc()).limit(1))
    previous = last_warning.from_stage if last_warning else None
    if previous in (None, "churn_warning", "churned"):
        return _earned_stage(customer)
    return previous


def _earned_stage(customer):
    """The stage a customer's own record justifies: by leases signed."""
    if customer.leases_signed >= 2:
        return "repeat"
    if customer.leases_signed == 1:
        return "first_time"
    return "intent"


def decisions(session, customer_id):
    rows = session.scalars(select(ChurnDecision).where(ChurnDecision.customer_id == customer_id)
                           .order_by(ChurnDecision.id))
    return [{"decision": r.decision, "reason": r.reason, "competitor": r.competitor,
             "actor_id": r.actor_id, "occurred_at": r.occurred_at.isoformat()} for r in rows]


def stage_after_merge(survivor, duplicate):
    """After a merge: the further along of the two, and at least what the leases justify."""
    candidates = [survivor.stage, duplicate.stage]
    if survivor.leases_signed:
        candidates.append(_earned_stage(survivor))
    if "churned" in candidates and survivor.stage == "churned" and duplicate.stage == "churned":
        return "churned"
    return max(candidates, key=lambda s: customers.STAGE_RANK[s])


# -- reactions to other services' events ---------------------------------------------------
def _customer_for_event(session, customer_id):
    """The live record an event is about: follows merges; None for erased customers."""
    customer = customers.get(session, customer_id, for_update=True)
    seen = set()
    while customer.merged_into and customer.id not in seen:
        seen.add(customer.id)
        customer = customers.get(session, customer.merged_into, for_update=True)
    return None if customer.erased_at else customer


def on_opportunity_created(session, data, envelope):
    customer = _customer_for_event(session, data["customer_id"])
    if customer is not None and customer.stage == "potential":
        transition(session, customer, "intent", trigger="event:opportunity.created",
                   event_id=envelope["event_id"], reason="a sales opportunity was opened")


def on_lease_signed(session, data, envelope):
    customer = _customer_for_event(session, data["customer_id"])
    if customer is None:
        return
    customer.leases_signed += 1
    customer.updated_at = now()
    customers.audit_change(session, audit.SYSTEM, "customer.lease_counted", customer,
                           {"leases_signed": customer.leases_signed - 1},
                           {"leases_signed": customer.leases_signed,
                            "lease_id": data.get("lease_id"), "event_id": envelope["event_id"]})
    target = "repeat" if customer.leases_signed >= 2 else "first_time"
    if customer.stage != target and customer.stage != "repeat":
        transition(session, customer, target, trigger="event:lease.signed",
                   event_id=envelope["event_id"], reason=f"lease {data.get('lease_id')} signed")


def on_lease_renewed(session, data, envelope):
    customer = _customer_for_event(session, data["customer_id"])
    if customer is not None and customer.stage != "repeat":
        transition(session, customer, "repeat", trigger="event:lease.renewed",
                   event_id=envelope["event_id"], reason=f"lease {data.get('lease_id')} renewed")


def on_payment_received(session, data, envelope):
    customer = _customer_for_event(session, data["customer_id"])
    if customer is None:
        return
    earned = membership.points_for_payment(data["amount"])
    if earned:
        before = {"points": customer.points, "member_tier": customer.member_tier}
        membership.add_points(session, customer, earned,
                              reason=f"payment {data.get('payment_id')} of {data['amount']} CNY",
                              event_id=envelope["event_id"])
        customer.updated_at = now()
        record_event(session, "customer.updated", {"changed": ["member"],
                                                   **customers.event_snapshot(customer)})
        customers.audit_change(session, audit.SYSTEM, "customer.points_changed", customer,
                               before, {"points": customer.points,
                                        "member_tier": customer.member_tier, "delta": earned,
                                        "payment_id": data.get("payment_id"),
                                        "event_id": envelope["event_id"]})


def on_customer_scored(session, data, envelope):
    """Value tier and churn risk from analytics; an older score never overwrites a newer one."""
    customer = _customer_for_event(session, data["customer_id"])
    if customer is None:
        return
    scored_at = datetime.fromisoformat(data.get("scored_at") or envelope["occurred_at"])
    if customer.scored_at is not None and scored_at <= customer.scored_at:
        return
    before = {"value_tier": customer.value_tier, "churn_risk": customer.churn_risk}
    customer.scored_at = scored_at
    if "value_tier" in data:
        customer.value_tier = data["value_tier"]
    if data.get("churn_risk") is not None:
        customer.churn_risk = int(data["churn_risk"]["score"]
                                  if isinstance(data["churn_risk"], dict) else data["churn_risk"])
    customer.updated_at = now()
    # scores are recomputed every hour for everyone: a new value tier is an entry; the churn
    # risk alone moves with every day without rent paid (its history is analytics' runs)
    if customer.value_tier != before["value_tier"]:
        customers.audit_change(session, audit.SYSTEM, "customer.scored", customer, before,
                               {"value_tier": customer.value_tier,
                                "churn_risk": customer.churn_risk})


def on_churn_warning(session, data, envelope):
    customer = _customer_for_event(session, data["customer_id"])
    if customer is not None and customer.stage not in ("churn_warning", "churned"):
        reasons = data.get("reasons") or []
        transition(session, customer, "churn_warning", trigger="event:churn.warning_raised",
                   event_id=envelope["event_id"], reason="; ".join(map(str, reasons))[:1000]
                   or "churn risk")


# -- stagnation ----------------------------------------------------------------------------
def stage_limits(session):
    rows = session.scalars(select(StageLimit)).all()
    if not rows:
        return dict(DEFAULT_STAGE_LIMITS)
    return {row.stage: row.days for row in rows if row.days}


def set_stage_limits(session, data, actor):
    data = schemas.load(schemas.stage_limits_schema, data)
    if not data:
        raise InvalidInput({"_schema": ["give at least one stage"]})
    limits = stage_limits(session)
    limits.update(data)
    session.query(StageLimit).delete()
    # a stored 0 means "no limit" so an emptied table is not mistaken for "use the defaults"
    for stage in schemas.v.STAGES:
        session.add(StageLimit(stage=stage, days=limits.get(stage) or 0))
    return {stage: days for stage, days in limits.items() if days}


def scan_stagnation(session, moment=None):
    """Open one alert per customer stuck in a stage past its limit; returns the new alerts."""
    moment = moment or now()
    created = []
    for stage, days in stage_limits(session).items():
        cutoff = moment - timedelta(days=days)
        stuck = session.scalars(
            select(Customer).where(Customer.stage == stage, Customer.stage_entered_at < cutoff,
                                   Customer.merged_into.is_(None), Customer.archived_at.is_(None),
                                   Customer.erased_at.is_(None))
            .where(~select(StagnationAlert.id).where(
                StagnationAlert.customer_id == Customer.id, StagnationAlert.stage == stage,
                StagnationAlert.stage_entered_at == Customer.stage_entered_at).exists())
            .order_by(Customer.stage_entered_at).limit(1000)).all()
        for customer in stuck:
            alert = StagnationAlert(customer_id=customer.id, owner_id=customer.owner_id,
                                    stage=stage, stage_entered_at=customer.stage_entered_at,
                                    limit_days=days, status="open", created_at=moment)
            try:
                with session.begin_nested():
                    session.add(alert)
            except IntegrityError:  # another instance raised it first
                continue
            record_event(session, "customer.stagnation_alerted", {
                "alert_id": alert.id, "customer_id": customer.id,
                "owner_id": customer.owner_id, "stage": stage, "limit_days": days,
                "days_in_stage": (moment - customer.stage_entered_at).days})
            created.append(alert)
    return created


def alert_dict(alert):
    return {"id": alert.id, "customer_id": alert.customer_id, "owner_id": alert.owner_id,
            "stage": alert.stage, "stage_entered_at": alert.stage_entered_at.isoformat(),
            "limit_days": alert.limit_days, "status": alert.status,
            "created_at": alert.created_at.isoformat(),
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None}


def list_alerts(session, filters, page=1, per_page=50):
    filters = filters or {}
    query = select(StagnationAlert)
    if filters.get("status"):
        query = query.where(StagnationAlert.status == filters["status"])
    if filters.get("owner_id"):
        query = query.where(StagnationAlert.owner_id == filters["owner_id"])
    if filters.get("owner_ids") is not None:
        query = query.where(StagnationAlert.owner_id.in_(filters["owner_ids"]))
    if filters.get("customer_id"):
        query = query.where(StagnationAlert.customer_id == filters["customer_id"])
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(StagnationAlert.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return {"items": [alert_dict(a) for a in rows], "total": total, "page": page,
            "per_page": per_page}


def acknowledge_alert(session, alert_id, actor, owner_ids=None):
    """Acknowledge an open alert; with ``owner_ids`` (the caller's team, from the gateway) an
    alert of another owner is answered as one that does not exist."""
    try:  # ids are opaque to callers: one that is not a number names no alert
        key = int(str(alert_id))
    except ValueError:
        key = None
    alert = session.get(StagnationAlert, key) if key is not None and 0 < key < 2**63 else None
    if alert is not None and owner_ids is not None and alert.owner_id not in owner_ids:
        alert = None
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist", {"alert_id": alert_id})
    if alert.status != "open":
        raise Conflict(f"alert is {alert.status}", {"status": alert.status})
    alert.status = "acknowledged"
    alert.acknowledged_by = customers.actor_id(actor)
    alert.acknowledged_at = now()
    return alert_dict(alert)
