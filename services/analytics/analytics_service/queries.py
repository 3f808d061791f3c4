"""Reading results: scores of the current run, and the reports by name (for the report RPCs
and their CSV/PNG exports alike).

Each report names the frames it needs; they are loaded from the store, the period is validated
(default: the 12 months up to today) and the plain function in ``reports``, ``churn`` or
``sentiment`` computes it.
"""
import pandas as pd
from sqlalchemy import func, select

from analytics_service import churn, export, frames, recompute, reports, schemas, sentiment
from analytics_service.models import ChurnWarning, CustomerScore
from crm_kit.db import paginate
from crm_kit.errors import InvalidInput, NotFound

# -- scores --------------------------------------------------------------------------------
def _money(value):
    return None if value is None else f"{value:.2f}"


def score_dict(s, run):
    return {"customer_id": s.customer_id, "run_id": run.id, "as_of": run.as_of.isoformat(),
            "rfm": {"recency_days": s.recency_days, "frequency": s.frequency,
                    "monetary": _money(s.monetary), "r": s.r, "f": s.f, "m": s.m,
                    "segment": s.rfm_segment},
            "clv": _money(s.clv), "value_tier": s.value_tier,
            "churn_risk": {"score": s.churn_score, "reasons": s.churn_reasons}}


def scores(session, customer_id):
    run = recompute.current_run(session)
    row = session.get(CustomerScore, (run.id, customer_id))
    if row is None:
        raise NotFound(f"customer {customer_id} has no scores yet", {"customer_id": customer_id})
    return score_dict(row, run)


def list_rfm(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.rfm_filters, filters)
    run = recompute.current_run(session)
    query = select(CustomerScore).where(CustomerScore.run_id == run.id)
    for field, column in (("segment", CustomerScore.rfm_segment),
                          ("value_tier", CustomerScore.value_tier), ("r", CustomerScore.r),
                          ("f", CustomerScore.f), ("m", CustomerScore.m)):
        if field in filters:
            query = query.where(column == filters[field])
    result = paginate(session, query.order_by(CustomerScore.customer_id), page, per_page,
                      lambda s: {"customer_id": s.customer_id, **score_dict(s, run)["rfm"]})
    result["as_of"] = run.as_of.isoformat()
    result["segments"] = dict(session.execute(
        select(CustomerScore.rfm_segment, func.count()).where(CustomerScore.run_id == run.id)
        .group_by(CustomerScore.rfm_segment)).all())
    return result


def list_clv(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.clv_filters, filters)
    run = recompute.current_run(session)
    query = select(CustomerScore).where(CustomerScore.run_id == run.id)
    if "value_tier" in filters:
        query = query.where(CustomerScore.value_tier == filters["value_tier"])
    result = paginate(session, query.order_by(CustomerScore.clv.desc(),
                                              CustomerScore.customer_id), page, per_page,
                      lambda s: {"customer_id": s.customer_id, "clv": _money(s.clv),
                                 "value_tier": s.value_tier})
    result["as_of"] = run.as_of.isoformat()
    result["parameters"] = run.parameters
    totals = session.execute(
        select(CustomerScore.value_tier, func.count(), func.sum(CustomerScore.clv))
        .where(CustomerScore.run_id == run.id).group_by(CustomerScore.value_tier)).all()
    whole = sum((value or 0) for _tier, _n, value in totals)
    result["tiers"] = {tier: {"customers": n, "value": _money(value),
                              "share": round(float(value / whole), 4) if whole else None}
                       for tier, n, value in totals}
    return result


def tiers_series(session):
    """value tier by customer id from the current run (None before the first run)."""
    run_id = recompute.current_run_id(session)
    if run_id is None:
        return None
    rows = session.execute(select(CustomerScore.customer_id, CustomerScore.value_tier)
                           .where(CustomerScore.run_id == run_id)).all()
    return pd.Series({customer_id: tier for customer_id, tier in rows}, dtype="object")


def list_warnings(session, filters, page, per_page):
    filters = schemas.load_filters(schemas.warning_filters, filters)
    query = select(ChurnWarning)
    for field, value in filters.items():
        query = query.where(getattr(ChurnWarning, field) == value)
    return paginate(session, query.order_by(ChurnWarning.score.desc(),
                                            ChurnWarning.raised_at.desc()), page, per_page,
                    lambda w: {"id": w.id, "customer_id": w.customer_id,
                               "owner_id": w.owner_id, "score": w.score,
                               "reasons": w.reasons, "status": w.status,
                               "raised_at": w.raised_at.isoformat(),
                               "decided_at": w.decided_at.isoformat() if w.decided_at
                               else None})


# -- reports -------------------------------------------------------------------------------
def period(filters, schema=None):
    """Validated ``date_from``/``date_to`` (None: the report's default, the 12 whole months up
    to today on the business clock) and the schema's other filters."""
    data = schemas.load_filters(schema or schemas.period_filters, filters)
    data.setdefault("date_from", None)
    data.setdefault("date_to", None)
    return data


def _funnel(session, filters):
    p = period(filters)
    return reports.funnel(frames.customers(session), frames.stage_changes(session),
                          frames.opportunities(session),
                          frames.opportunity_stage_changes(session),
                          p["date_from"], p["date_to"])


def _sales_trend(session, filters):
    p = period(filters, schemas.trend_filters)
    return reports.sales_trend(frames.revenue(frames.payments(session)), frames.leases(session),
                               p["granularity"], p["date_from"], p["date_to"])


def _staff_performance(session, filters):
    p = period(filters)
    return reports.staff_performance(frames.leases(session),
                                     frames.revenue(frames.payments(session)),
                                     frames.opportunities(session), p["date_from"], p["date_to"])


def _sales_business(session, filters):
    p = period(filters)
    return reports.sales_business(frames.leases(session), p["date_from"], p["date_to"])


def _service_composition(session, filters):
    p = period(filters)
    return reports.service_composition(frames.tickets(session), p["date_from"], p["date_to"])


def _customer_composition(session, filters):
    by = (filters or {}).get("by") or "district"
    if by not in schemas.COMPOSITION_BY:
        raise InvalidInput({"by": ["must be one of " + ", ".join(schemas.COMPOSITION_BY)]})
    return reports.customer_composition(frames.customers(session), by,
                                        tiers=tiers_series(session))


def _contribution(session, filters):
    return reports.contribution(frames.revenue(frames.payments(session)),
                                frames.customers(session))


def _churn_analysis(session, filters):
    p = period(filters)
    return churn.analysis(frames.customers(session), tiers=tiers_series(session),
                          date_from=p["date_from"], date_to=p["date_to"])


def _review_sentiment(session, filters):
    p = period(filters)
    return sentiment.review_sentiment(frames.tickets(session), p["date_from"], p["date_to"])


REPORTS = {"funnel": _funnel, "sales_trend": _sales_trend,
           "staff_performance": _staff_performance, "sales_business": _sales_business,
           "service_composition": _service_composition,
           "customer_composition": _customer_composition, "contribution": _contribution,
           "churn_analysis": _churn_analysis, "review_sentiment": _review_sentiment}


def report(session, name, filters=None):
    if name not in REPORTS:
        raise NotFound(f"no report {name}", {"name": name})
    return REPORTS[name](session, filters)


def export_report(session, name, filters, fmt):
    if fmt not in ("csv", "png"):
        raise InvalidInput({"format": ["must be csv or png"]})
    body = report(session, name, filters)
    if fmt == "png" and name not in export.CHARTS:
        raise InvalidInput({"format": [f"{name} has no chart: ask for csv (charts: "
                                       + ", ".join(sorted(export.CHARTS)) + ")"]})
    return export.export(name, body, fmt)
