"""A full recompute: RFM, CLV, value tier and churn risk of every customer, as one score run.

1. ``start``: a ``running`` score run is created, unless one is running already (``Conflict``;
   a run that has not finished in ``STALE_AFTER`` is taken as dead and marked failed).
2. ``compute``: the store is read into DataFrames once (``frames``) and the plain modules do the
   work: ``rfm``, ``clv``, ``tiers``, ``churn``. Nothing is written yet.
3. ``finish``: in ONE transaction the run's scores are written, the run becomes the current one
   (``Setting`` "current_run"), ``customer.scored`` goes out for every customer whose tier, RFM
   segment or churn score changed since it was last told, and ``churn.warning_raised`` for every
   customer newly at or over the threshold (below it in the previous run, no open warning). Readers see the old run or the new one, never a mix;
   the events are committed with the results they announce.
"""
import time
import uuid
from datetime import timedelta

import pandas as pd
from sqlalchemy import delete, insert, select, update

from analytics_service import churn, clv, frames, rfm, tiers
from analytics_service.models import (ChurnWarning, CustomerScore, PublishedScore, ScoreRun,
                                      Setting)
from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_events

STALE_AFTER = timedelta(hours=1)
KEEP_RUNS = 2  # the current run and the one before it


def setting(session, key, default=None, for_update=False):
    row = session.get(Setting, key, with_for_update=for_update)
    return default if row is None else row.value


def put_setting(session, key, value):
    row = session.get(Setting, key, with_for_update=True)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def current_run_id(session):
    value = setting(session, "current_run")
    return None if value is None else value["run_id"]


def current_run(session):
    run_id = current_run_id(session)
    if run_id is None:
        raise NotFound("no scores yet: analytics has not finished a recompute",
                       {"run": None})
    return session.get(ScoreRun, run_id)


def clv_parameters(session):
    return {**clv.DEFAULT_PARAMETERS, **setting(session, "clv_parameters", {})}


def set_clv_parameters(session, data):
    if not isinstance(data, dict):
        raise InvalidInput({"_schema": ["must be an object"]})
    parameters = clv.check_parameters({**clv_parameters(session), **data})
    put_setting(session, "clv_parameters", parameters)
    return parameters


def start(session, as_of, status="running"):
    """A new score run, ``running`` (the caller computes it now) or ``requested`` (the worker
    timer will); Conflict if another one is requested or running."""
    moment = now()
    put_setting(session, "recompute_lock", {"at": moment.isoformat()})  # serialises starters
    session.flush()
    busy = session.scalars(select(ScoreRun).where(
        ScoreRun.status.in_(("requested", "running")))).all()
    for run in busy:
        if moment - run.started_at > STALE_AFTER:
            run.status, run.finished_at, run.error = "failed", moment, "did not finish"
        else:
            raise Conflict(f"a recompute is {run.status} (run {run.id}, since "
                           f"{run.started_at.isoformat()})", {"run_id": run.id})
    run = ScoreRun(as_of=as_of, status=status, parameters=clv_parameters(session),
                   started_at=moment)
    session.add(run)
    session.flush()
    return run.id


def claim(session):
    """The oldest requested run, now running (None if there is none)."""
    run = session.scalars(select(ScoreRun).where(ScoreRun.status == "requested")
                          .order_by(ScoreRun.id).limit(1)
                          .with_for_update(skip_locked=True)).first()
    if run is None:
        return None
    run.status, run.started_at = "running", now()
    return run.id


def run_dict(run):
    return {"run_id": run.id, "as_of": run.as_of.isoformat(), "status": run.status,
            "customers": run.customers, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error}


def get_run(session, run_id):
    run = session.get(ScoreRun, run_id)
    if run is None:
        raise NotFound(f"score run {run_id} does not exist", {"run_id": run_id})
    return run


def compute(session, run_id):
    """The scores of every customer (a DataFrame indexed by customer_id); reads only."""
    run = session.get(ScoreRun, run_id)
    customers = frames.customers(session)
    # (astype: on an empty store the column has no bool dtype, and a frame indexed by an
    # empty object Series would lose its columns)
    customers = customers[~customers["erased"].fillna(False).astype(bool).to_numpy()]
    payments = frames.payments(session)
    ids = customers["customer_id"]
    revenue = frames.revenue(payments)
    rfm_scores = rfm.compute(revenue, ids, run.as_of)
    clv_frame = clv.compute(revenue, customers, run.parameters, run.as_of)
    scores = rfm_scores.join(clv_frame, how="left")
    scores["clv_cents"] = scores["clv_cents"].fillna(0).astype("int64")
    shares = run.parameters.get("tier_shares")
    scores["value_tier"] = tiers.assign(scores["clv_cents"], shares)
    risk = churn.score(customers, frames.leases(session), frames.bills(session),
                       frames.tickets(session), frames.opportunities(session), payments,
                       run.as_of)
    scores = scores.join(risk, how="left")
    scores["owner_id"] = customers.set_index("customer_id")["owner_id"]
    return scores


def _value(value):
    return None if pd.isna(value) else int(value)


def finish(session, run_id, scores, threshold=None):
    """Write, switch and announce (one transaction). Returns the run's summary."""
    threshold = churn.WARNING_THRESHOLD if threshold is None else threshold
    run = session.get(ScoreRun, run_id, with_for_update=True)
    moment = now()
    rows = []
    # column by column (``iterrows`` builds a Series per customer: seconds at 100,000)
    columns = [scores[name].tolist() for name in (
        "recency_days", "frequency", "monetary_cents", "r", "f", "m", "segment", "clv_cents",
        "value_tier", "score", "reasons")]
    for customer_id, recency, frequency, monetary, r, f, m, segment, clv_cents, tier, score, \
            reasons in zip(scores.index.tolist(), *columns):
        rows.append({
            "run_id": run_id, "customer_id": customer_id,
            "recency_days": _value(recency), "frequency": int(frequency),
            "monetary": frames.cents_to_money(monetary),
            "r": _value(r), "f": _value(f), "m": _value(m),
            "rfm_segment": segment, "clv": frames.cents_to_money(clv_cents),
            "value_tier": tier, "churn_score": int(score),
            "churn_reasons": list(reasons)})
    if rows:
        # render_nulls: every row the same columns, so one executemany; else the ORM starts a
        # new statement each time the None columns change (customers with and without payments)
        session.execute(insert(CustomerScore), rows,
                        execution_options={"render_nulls": True})
    previous_run = current_run_id(session)
    previous = (frames.scores(session, previous_run)["churn_score"]
                if previous_run is not None else None)
    put_setting(session, "current_run", {"run_id": run_id, "as_of": run.as_of.isoformat()})
    published = _publish_changes(session, rows, moment)
    raised = _raise_warnings(session, scores, threshold, moment, previous)
    run.status, run.finished_at, run.customers = "done", moment, len(rows)
    old = session.scalars(select(ScoreRun.id).where(ScoreRun.status.in_(("done", "failed")))
                          .order_by(ScoreRun.id.desc()).offset(KEEP_RUNS)).all()
    if old:
        session.execute(delete(CustomerScore).where(CustomerScore.run_id.in_(old)))
        session.execute(delete(ScoreRun).where(ScoreRun.id.in_(old)))
    return {"run_id": run_id, "as_of": run.as_of.isoformat(), "customers": len(rows),
            "published": published, "warnings_raised": raised}


def _publish_changes(session, rows, moment):
    """customer.scored for each customer whose tier, segment or churn score changed."""
    told = {p.customer_id: p for p in session.execute(select(
        PublishedScore.customer_id, PublishedScore.value_tier, PublishedScore.rfm_segment,
        PublishedScore.churn_score))}  # plain rows: no ORM objects for 100,000 customers
    events, inserts, updates = [], [], []
    for row in rows:
        before = told.get(row["customer_id"])
        state = (row["value_tier"], row["rfm_segment"], row["churn_score"])
        if before is not None and (before.value_tier, before.rfm_segment,
                                   before.churn_score) == state:
            continue
        events.append(("customer.scored", {
            "customer_id": row["customer_id"], "value_tier": row["value_tier"],
            "rfm": {"recency_days": row["recency_days"], "frequency": row["frequency"],
                    "monetary": f"{row['monetary']:.2f}", "r": row["r"], "f": row["f"],
                    "m": row["m"], "segment": row["rfm_segment"]},
            "clv": f"{row['clv']:.2f}",
            "churn_risk": {"score": row["churn_score"], "reasons": row["churn_reasons"]},
            "scored_at": moment.isoformat()}))
        change = {"customer_id": row["customer_id"], "value_tier": state[0],
                  "rfm_segment": state[1], "churn_score": state[2], "published_at": moment}
        (inserts if before is None else updates).append(change)
    if inserts:
        session.execute(insert(PublishedScore), inserts)
    if updates:
        session.execute(update(PublishedScore), updates)
    record_events(session, events)
    return len(events)


def _raise_warnings(session, scores, threshold, moment, previous=None):
    """churn.warning_raised once per episode: a customer at or over the threshold with no open
    warning, who was below it in the previous run (so "keep trying" is not overruled by the
    next recompute; a new warning comes when the score falls and crosses again)."""
    open_ids = set(session.scalars(select(ChurnWarning.customer_id)
                                   .where(ChurnWarning.status == "open")))
    due = churn.new_warnings(scores, open_ids, threshold, previous_scores=previous)
    events = []
    for customer_id in due:
        s = scores.loc[customer_id]
        owner = s.get("owner_id")
        owner = None if pd.isna(owner) else owner
        warning = ChurnWarning(id=str(uuid.uuid4()), customer_id=customer_id, owner_id=owner,
                               score=int(s["score"]), reasons=list(s["reasons"]),
                               status="open", raised_at=moment)
        session.add(warning)
        events.append(("churn.warning_raised", {
            "warning_id": warning.id, "customer_id": customer_id, "owner_id": owner,
            "score": warning.score, "reasons": warning.reasons}))
    record_events(session, events)
    return len(events)


def fail(session, run_id, error):
    run = session.get(ScoreRun, run_id)
    run.status, run.finished_at, run.error = "failed", now(), str(error)[:2000]


def run_all(transaction, as_of):
    """Start, compute and finish now; returns the summary with ``seconds``."""
    with transaction() as session:
        run_id = start(session, as_of)
    return run(transaction, run_id)


def run(transaction, run_id):
    """Compute and finish a running run, each step in its own transaction."""
    started = time.perf_counter()
    try:
        with transaction() as session:
            scores = compute(session, run_id)
        with transaction() as session:
            summary = finish(session, run_id, scores)
    except Exception as exc:
        with transaction() as session:
            fail(session, run_id, exc)
        raise
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
