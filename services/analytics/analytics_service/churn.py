"""Churn risk (流失预警): a score per customer from plain signals, the warnings to raise, and
the churn analysis (who left, why, where to, which kinds of customer leave).

Pure functions over the DataFrames of ``frames.py`` (money in int64 cents, instants UTC-aware,
dates naive midnight); no database, no nameko.

The score (0-100, capped) adds the points of every signal that fires (``DEFAULT_PARAMS``; a
recompute may override any of them):

===================  =========================================================================
signal (code)        fires when                                                       points
===================  =========================================================================
``lease_ending``     an active lease ends within 60 days (as_of .. as_of + 60, inclusive)    35
                     with no renewal: no opportunity (other than a lost one) whose
                     ``renewal_of_lease_id`` is that lease, no lease ``renewed_from`` it, and
                     no other active lease of the customer running past the window
``overdue_bills``    a bill has an unpaid balance and its due date is before as_of           25
                     … and there are ≥ 2 such bills or the oldest is > 30 days past due     +10
``complaints``       complaint tickets created in the last 90 days, per ticket, at most 30    15
``low_rating``       a ticket rated ≤ 2 (of 5) in the last 180 days                           20
``falling_activity`` payments in the last 90 days ≤ 50% of the 90 days before, which had     20
                     some ([001] 篇12: a 50% drop in business is a warning); deposits, being
                     refundable, are not business and are left out
===================  =========================================================================

Days follow ``rfm``: an instant's day is its date in ``BUSINESS_TIMEZONE`` (Asia/Shanghai, the
operator is in Chengdu). "The last N days" are as_of and the N - 1 days before it (an instant
counts from local midnight N - 1 days before as_of until the end of as_of; a bill is overdue from
the day after its due date; a rating counts on ``rated_at``, else ``resolved_at``, else
``created_at``). Facts that are a state rather than an event (lease status, what a bill has been
paid, an opportunity's stage) are taken as stored now: as_of is meant to be today, it only places
the windows.

Known limit: a tenant who pays every half-year or year has 90-day windows with and without a
payment, so ``falling_activity`` fires between payments (20 points alone stay under the warning
threshold); the payment cycle is not in the store's leases to tell them apart.

Customers who already left (stage ``churned``; one won back is scored again), were erased or
archived score 0 with no reasons: there is no one left to keep, so they never raise a warning.
"""
from fractions import Fraction

import numpy as np
import pandas as pd

from analytics_service.clock import (AGE_BANDS, BUSINESS_TIMEZONE, DAY, UNKNOWN,  # noqa: F401
                                     _dates, _instants, age_bands, ages, days_of,
                                     start_of, to_day)
from analytics_service.frames import cents_to_money
from crm_kit.errors import InvalidInput

#: a customer whose score reaches this raises a churn warning (``churn.warning_raised``)
WARNING_THRESHOLD = 60

DEFAULT_PARAMS = {
    "lease_window_days": 60, "lease_ending": 35,
    "overdue": 25, "overdue_serious": 10, "overdue_serious_count": 2,
    "overdue_serious_days": 30,
    "complaint_window_days": 90, "complaint_each": 15, "complaint_max": 30,
    "rating_window_days": 180, "low_rating_max": 2, "low_rating": 20,
    "activity_window_days": 90, "activity_drop_ratio": 0.5, "falling_activity": 20,
    "cap": 100,
}

#: stages of customers who are (or were) tenants, i.e. who can churn
TENANT_STAGES = ("first_time", "repeat", "churn_warning", "churned")


# -- small helpers --------------------------------------------------------------------------
def money(cents):
    """Integer cents → "1234.56" (exact, no float)."""
    return str(cents_to_money(cents))


def _plural(n, word, plural=None):
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def parameters(params=None):
    """DEFAULT_PARAMS with ``params`` over them. Every parameter is a whole number ≥ 0 but
    ``activity_drop_ratio`` (a number 0…1); an unknown name or a bad value is refused
    (``InvalidInput`` naming ``params.<name>``)."""
    merged = dict(DEFAULT_PARAMS)
    errors = {}
    for name, value in (params or {}).items():
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if name not in DEFAULT_PARAMS:
            errors[f"params.{name}"] = ["Unknown churn parameter."]
        elif name == "activity_drop_ratio" and not (number and 0 <= value <= 1):
            errors[f"params.{name}"] = ["Must be a number from 0 to 1."]
        elif name != "activity_drop_ratio" and not (number and value >= 0
                                                    and float(value).is_integer()):
            errors[f"params.{name}"] = ["Must be a whole number, 0 or more."]
        else:
            merged[name] = value if name == "activity_drop_ratio" else int(value)
    if errors:
        raise InvalidInput(errors)
    return merged


# -- the score ------------------------------------------------------------------------------
def _inactive(customers):
    """Customers who can no longer churn: churned (the stage, not a ``churned_at`` left from an
    earlier episode), erased or archived."""
    churned = customers["stage"].eq("churned")
    erased = customers["erased"].fillna(False).astype(bool)
    archived = (customers["archived"].fillna(False).astype(bool)
                if "archived" in customers else False)
    return (churned | erased | archived).to_numpy()


def _lease_ending(leases, opportunities, day, p):
    window_end = day + p["lease_window_days"] * DAY
    end_date = _dates(leases["end_date"])
    active = leases["status"].eq("active")
    ending = leases[active & (end_date >= day) & (end_date <= window_end)]
    if ending.empty:
        return None
    renewals = opportunities[opportunities["renewal_of_lease_id"].notna()
                             & opportunities["stage"].ne("lost")]["renewal_of_lease_id"]
    staying = leases[active & (end_date > window_end)]["customer_id"]
    covered = (ending["lease_id"].isin(leases["renewed_from_id"].dropna())
               | ending["lease_id"].isin(renewals)
               | ending["customer_id"].isin(staying))
    ending = ending[~covered]
    if ending.empty:
        return None
    per = (ending.assign(end=_dates(ending["end_date"]))
           .groupby("customer_id", sort=False)["end"].agg(["min", "size"]))
    points = pd.Series(int(p["lease_ending"]), index=per.index)
    details = []
    for first, n in zip(per["min"], per["size"]):
        when = f"{first.date().isoformat()} (in {(first - day).days} days)"
        if n == 1:
            details.append(f"lease ends {when} with no renewal opportunity")
        else:
            details.append(f"{n} leases end within {p['lease_window_days']} days with no "
                           f"renewal opportunity, the first {when}")
    return points, pd.Series(details, index=per.index)


def _overdue(bills, day, p):
    balance = bills["amount_cents"].astype("int64") - bills["paid_cents"].astype("int64")
    due = _dates(bills["due_date"])
    late = bills.assign(balance=balance, late_days=(day - due).dt.days)
    late = late[(late["balance"] > 0) & (due < day)]
    if late.empty:
        return None
    per = late.groupby("customer_id", sort=False).agg(
        n=("balance", "size"), outstanding=("balance", "sum"), oldest=("late_days", "max"))
    serious = (per["n"] >= p["overdue_serious_count"]) | (per["oldest"] > p["overdue_serious_days"])
    points = (int(p["overdue"]) + serious.astype("int64") * int(p["overdue_serious"]))
    details = [f"{_plural(n, 'bill')} overdue, {money(c)} outstanding, the oldest "
               f"{_plural(d, 'day')} past due"
               for n, c, d in zip(per["n"], per["outstanding"], per["oldest"])]
    return points, pd.Series(details, index=per.index)


def _complaints(tickets, end, p):
    days = p["complaint_window_days"]
    created = _instants(tickets["created_at"])
    hits = tickets[tickets["type"].eq("complaint") & (created >= end - days * DAY)
                   & (created < end)]
    if hits.empty:
        return None
    n = hits.groupby("customer_id", sort=False).size()
    points = np.minimum(n * int(p["complaint_each"]), int(p["complaint_max"])).astype("int64")
    details = [f"{_plural(k, 'complaint')} in the last {days} days" for k in n]
    return points, pd.Series(details, index=n.index)


def _low_rating(tickets, end, p):
    days = p["rating_window_days"]
    when = _instants(tickets["rated_at"])
    for fallback in ("resolved_at", "created_at"):  # a rating recorded without its instant
        if fallback in tickets:
            when = when.fillna(_instants(tickets[fallback]))
    rating = pd.to_numeric(tickets["rating"], errors="coerce")
    hits = tickets.assign(when=when, rating_=rating)
    hits = hits[(rating <= p["low_rating_max"]) & (when >= end - days * DAY) & (when < end)]
    if hits.empty:
        return None
    per = hits.groupby("customer_id", sort=False).agg(
        n=("rating_", "size"), lowest=("rating_", "min"), latest=("when", "max"))
    points = pd.Series(int(p["low_rating"]), index=per.index)
    details = []
    for n, lowest, latest in zip(per["n"], per["lowest"], per["latest"]):
        on = latest.tz_convert(BUSINESS_TIMEZONE).date().isoformat()
        if n == 1:
            details.append(f"rated a ticket {int(lowest)}/5 on {on}")
        else:
            details.append(f"{n} tickets rated {int(p['low_rating_max'])}/5 or lower in the "
                           f"last {days} days (lowest {int(lowest)}/5, latest on {on})")
    return points, pd.Series(details, index=per.index)


def _falling_activity(payments, end, p):
    days = p["activity_window_days"]
    paid = _instants(payments["paid_at"])
    start = end - 2 * days * DAY
    middle = end - days * DAY
    keep = (paid >= start) & (paid < end)
    if "bill_kind" in payments:
        keep &= payments["bill_kind"].ne("deposit").fillna(True).astype(bool)
    window = payments[keep]
    if window.empty:
        return None
    recent = paid[keep] >= middle
    amount = window["amount_cents"].astype("int64")
    sums = pd.DataFrame({"customer_id": window["customer_id"],
                         "recent": amount.where(recent, 0), "previous": amount.where(~recent, 0)}
                        ).groupby("customer_id", sort=False).sum()
    ratio = Fraction(str(p["activity_drop_ratio"]))
    hit = sums[(sums["previous"] > 0)
               & (sums["recent"] * ratio.denominator <= sums["previous"] * ratio.numerator)]
    if hit.empty:
        return None
    points = pd.Series(int(p["falling_activity"]), index=hit.index)
    details = []
    for now, before in zip(hit["recent"], hit["previous"]):
        drop = round((before - now) * 100 / before)
        details.append(f"payments fell {drop}% to {money(now)} in the last {days} days, from "
                       f"{money(before)} in the {days} days before")
    return points, pd.Series(details, index=hit.index)


SIGNALS = ("lease_ending", "overdue_bills", "complaints", "low_rating", "falling_activity")


def score(customers, leases, bills, tickets, opportunities, payments, as_of, params=None):
    """Churn risk of every row of ``customers`` as of the date ``as_of``.

    Returns a DataFrame indexed by ``customer_id`` (the order of ``customers``) with ``score``
    (int 0-100) and ``reasons`` (a list of ``{"code", "detail"}`` in the order of ``SIGNALS``;
    empty when nothing fires). See the module's docstring for the signals and points.
    """
    p = parameters(params)
    day = to_day(as_of)
    end = start_of(day + DAY)  # the windows end with the end of as_of
    ids = pd.Index(customers["customer_id"], name="customer_id")
    found = {
        "lease_ending": _lease_ending(leases, opportunities, day, p),
        "overdue_bills": _overdue(bills, day, p),
        "complaints": _complaints(tickets, end, p),
        "low_rating": _low_rating(tickets, end, p),
        "falling_activity": _falling_activity(payments, end, p),
    }
    inactive = _inactive(customers)
    total = np.zeros(len(ids), dtype="int64")
    reasons = [[] for _ in range(len(ids))]
    for code in SIGNALS:
        if found[code] is None:
            continue
        points, details = found[code]
        where = ids.get_indexer(points.index)
        known = where >= 0  # facts of customers not in ``customers`` (merged away) are ignored
        where, points, details = where[known], points.to_numpy()[known], details.to_numpy()[known]
        live = ~inactive[where]
        where, points, details = where[live], points[live], details[live]
        np.add.at(total, where, points)
        for position, detail in zip(where.tolist(), details.tolist()):
            reasons[position].append({"code": code, "detail": detail})
    total = np.minimum(total, int(p["cap"]))
    return pd.DataFrame({"score": total, "reasons": pd.Series(reasons, dtype=object).to_numpy()},
                        index=ids)


# -- warnings -------------------------------------------------------------------------------
def new_warnings(scores, open_warning_customer_ids, threshold=WARNING_THRESHOLD,
                 previous_scores=None):
    """The customers to raise a churn warning for: score ≥ ``threshold`` and no open warning,
    so a warning is raised once per episode (until the owner decides: kept or churned).

    ``previous_scores`` (optional, a Series or a DataFrame with ``score``, by customer_id: the
    last run's) makes the episode end only when the score falls below the threshold: a
    customer already at or over it last time (and so warned then) is not warned again after
    the owner chose to keep trying, until the score drops and crosses again.

    ``scores``: a DataFrame with ``score`` indexed by customer_id (or a Series of scores).
    Returns their customer ids (an ``Index``), highest score first, then by id.
    """
    frame = scores.to_frame("score") if isinstance(scores, pd.Series) else scores
    at_risk = frame["score"] >= threshold
    at_risk &= ~frame.index.isin(list(open_warning_customer_ids or ()))
    if previous_scores is not None:
        previous = (previous_scores["score"] if isinstance(previous_scores, pd.DataFrame)
                    else previous_scores)
        before = previous.reindex(frame.index)
        at_risk &= ~(before >= threshold).fillna(False).to_numpy(dtype=bool)
    chosen = frame[at_risk]
    order = np.lexsort((chosen.index.to_numpy(dtype=object).astype(str),
                        -chosen["score"].to_numpy()))
    return chosen.index[order]


# -- analysis -------------------------------------------------------------------------------
def _labels(column):
    """Free-text group values: trimmed, missing or blank → "unknown"."""
    text = column.astype(object).where(column.notna(), None)
    text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    return text.where(text.notna() & text.ne(""), UNKNOWN).astype(str)


def _counts(values, key, total):
    counts = values.value_counts()
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] == UNKNOWN, kv[0]))
    return [{key: group, "customers": int(n), "share": round(n / total, 4) if total else 0.0}
            for group, n in items]


def _group_rates(groups, churned, order=None):
    table = pd.DataFrame({"group": groups.to_numpy(), "churned": churned.to_numpy()}).groupby(
        "group").agg(customers=("churned", "size"), churned=("churned", "sum"))
    rows = [{"group": g, "customers": int(r.customers), "churned": int(r.churned),
             "rate": round(int(r.churned) / int(r.customers), 4)}
            for g, r in table.iterrows()]
    if order is not None:
        rank = {g: i for i, g in enumerate(order)}
        rows.sort(key=lambda r: (rank.get(r["group"], len(rank)), r["group"]))
    else:
        rows.sort(key=lambda r: (r["group"] == UNKNOWN, -r["customers"], r["group"]))
    return rows


VALUE_TIERS = ("key", "important", "ordinary", "small")


def analysis(customers, tiers=None, as_of=None, date_from=None, date_to=None):
    """Churn analysis for the period ``date_from`` .. ``date_to`` (dates, inclusive; default
    ``date_to`` = ``as_of``, ``date_from`` = 365 days before, as ``queries.period``; ``as_of``
    defaults to today in ``BUSINESS_TIMEZONE``).

    - ``churned``: customers in stage ``churned`` whose ``churned_at`` (its local day) falls in the
      period; ``by_reason`` / ``by_competitor``: how many of them per reason / competitor
      (``[{reason|competitor, customers, share}]``, most first, "unknown" when not recorded).
    - ``by``: for district, industry, source, age_band (at ``as_of``) and value_tier (from
      ``tiers``, a Series tier by customer_id; ``[]`` without it): ``[{group, customers,
      churned, rate}]``. ``customers`` is the group's population that could churn in the
      period: tenants or former tenants (stages first_time, repeat, churn_warning, churned),
      created by the end of the period, not already churned before it; ``rate`` =
      churned / customers as a float rounded to 4 places.
    - ``customers`` and ``rate`` at the top: the same for the whole population.
    """
    today = to_day(as_of if as_of is not None else pd.Timestamp.now(tz=BUSINESS_TIMEZONE))
    to = to_day(date_to) if date_to is not None else today
    since = to_day(date_from) if date_from is not None else to - 365 * DAY
    if since > to:
        raise InvalidInput({"from": ["Must not be after to."]})
    stage = customers["stage"]
    churned_day = days_of(customers["churned_at"])
    created_day = days_of(customers["created_at"])
    is_churned = stage.eq("churned")
    churned = is_churned & churned_day.between(since, to)
    population = (stage.isin(TENANT_STAGES) & ~(created_day > to)
                  & ~(is_churned & ~(churned_day >= since)))
    people = customers[population]
    hit = churned[population]
    left = customers[churned]
    n = int(churned.sum())
    total = int(population.sum())
    by = {column: _group_rates(_labels(people[column]), hit)
          for column in ("district", "industry", "source")}
    by["age_band"] = _group_rates(age_bands(people["birthday"], today), hit,
                                  order=AGE_BANDS + (UNKNOWN,))
    if tiers is None:
        by["value_tier"] = []
    else:
        tier = _labels(people["customer_id"].map(tiers))
        by["value_tier"] = _group_rates(tier, hit, order=VALUE_TIERS + (UNKNOWN,))
    return {
        "from": since.date().isoformat(), "to": to.date().isoformat(),
        "churned": n, "customers": total, "rate": round(n / total, 4) if total else 0.0,
        "by_reason": _counts(_labels(left["churn_reason"]), "reason", n),
        "by_competitor": _counts(_labels(left["churn_competitor"]), "competitor", n),
        "by": by,
    }
