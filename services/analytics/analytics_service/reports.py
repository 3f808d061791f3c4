"""The reports of [003] (WiseCRM-style 统计报表) as pure functions over the store's DataFrames
(``frames.py``): funnel, sales trend, staff performance, sales business, service composition,
customer composition, customer contribution. No database, no nameko: the service loads the
frames and calls these; tests call them on small frames with figures computed by hand.

Every function returns a JSON-ready dict: money as decimal strings with two places
(``"1234.50"``, computed in integer cents), rates as floats rounded to 4 places, counts as
``int``, ``None`` where a figure does not exist (a rate over zero, an average of nothing) — never
NaN, never a numpy type. Column names are those of ``frames.py``.

Rules shared by all reports (docs/analytics.md):

- **Periods.** ``date_from``/``date_to`` are business dates, both inclusive, in the business's
  clock (Chengdu, UTC+8 all year, as the sales service bills): an instant belongs to the local
  date it falls on. ``None`` → the last 12 months to today (``report_period``).
- **New signings and renewals.** ``leases_signed`` counts new leases (no ``renewed_from_id``);
  renewals (a lease with ``renewed_from_id``) are counted apart as ``renewals``; ``contract_value``
  covers both. A lease belongs to the period its ``signed_at`` falls in.
- **Contract value** of a lease is its term's rent as the sales service bills it: whole calendar
  months at ``monthly_rent``, a part of a month prorated by days, rounded half-up to the cent.
- **Revenue** is the sum of payments received (every bill kind), by ``paid_at``.
"""
import calendar
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from analytics_service.clock import AGE_BANDS, UNKNOWN, age_bands, business_today
from analytics_service.frames import cents_to_money
from analytics_service.sentiment import classify, review_sentiment  # noqa: F401 (a report too)

#: ``clock.BUSINESS_TIMEZONE`` as a fixed offset (Chengdu is UTC+8 all year), for vectorised bounds
BUSINESS_OFFSET = timedelta(hours=8)

LIFECYCLE_STAGES = ("potential", "intent", "first_time", "repeat")
PIPELINE_STAGES = ("new", "contacted", "viewing_booked", "viewed", "negotiating", "won")
CUSTOMER_STAGES = ("potential", "intent", "first_time", "repeat", "churn_warning", "churned")
VALUE_TIERS = ("key", "important", "ordinary", "small")
TICKET_TYPES = ("repair", "complaint", "consultation", "suggestion", "cleaning")
TICKET_CHANNELS = ("phone", "wechat", "weibo", "web", "email", "sms", "in_app", "face_to_face")
TICKET_STATUSES = ("new", "assigned", "in_progress", "awaiting_customer", "resolved", "closed",
                   "reopened")
GRANULARITIES = {"month": 12, "quarter": 4, "year": 1}  # periods per year
COMPOSITION_BY = ("district", "industry", "source", "age_band", "value_tier", "stage")
#: age bands: (label, lowest age in it); a customer without a birthday is "unknown"
CURVE_STEPS = 20  # the contribution curve has a point at every 5% of customers


# -- shared helpers ------------------------------------------------------------------------
def as_date(value):
    """A date from a ``date``, a ``datetime`` or ``"YYYY-MM-DD"``; None stays None."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value))


def _months_back(day, months):
    """The same day ``months`` calendar months before (clamped to the month's last day)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def report_period(date_from=None, date_to=None, today=None):
    """(from, to) as dates, both inclusive. Missing: ``to`` = today (business clock), ``from`` =
    the day after the same date 12 months before ``to`` (so the period is 12 whole months).
    ``from`` after ``to`` → ValueError."""
    date_to = as_date(date_to) or as_date(today) or business_today()
    date_from = as_date(date_from) or _months_back(date_to, 12) + timedelta(days=1)
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    return date_from, date_to


def _bounds(date_from, date_to):
    """[start, end) in UTC for the local dates date_from..date_to inclusive."""
    date_from, date_to = report_period(date_from, date_to)
    start = pd.Timestamp(date_from, tz="UTC") - BUSINESS_OFFSET
    end = pd.Timestamp(date_to + timedelta(days=1), tz="UTC") - BUSINESS_OFFSET
    return start, end


def _utc(series):
    """Instants as UTC-aware datetime64[ns] (naive input is taken as UTC)."""
    return pd.to_datetime(series, utc=True).dt.as_unit("ns")


def _within(series, bounds):
    instants = _utc(series)
    return ((instants >= bounds[0]) & (instants < bounds[1])).to_numpy(dtype=bool)


def _local(series):
    """Instants as naive datetimes on the business clock."""
    return _utc(series).dt.tz_localize(None) + BUSINESS_OFFSET


def _money(cents):
    return str(cents_to_money(int(cents)))


def _rate(numerator, denominator, places=4):
    if not denominator:
        return None
    return round(float(numerator) / float(denominator), places)


def _change(current, previous):
    """(current − previous) / previous, rounded to 4; None when previous is 0."""
    return None if not previous else round((int(current) - int(previous)) / int(previous), 4)


def _average_cents(total, count):
    """An average in cents, rounded half-up (totals are never negative here)."""
    if not count:
        return None
    return (2 * int(total) + int(count)) // (2 * int(count))


def _labels(series):
    """Group labels: trimmed; missing or blank → "unknown"."""
    values = series.astype("object")
    text = values.astype(str).str.strip()
    return text.where(values.notna() & (text != ""), UNKNOWN).astype(str)


def _is_renewal(leases):
    renewed_from = leases["renewed_from_id"]
    return (renewed_from.notna() & (renewed_from.astype("object") != "")).to_numpy(dtype=bool)


def term_cents(leases):
    """Each lease's term rent in cents (int64), as the sales service bills it
    (billing.term_rent): a whole calendar month costs ``monthly_rent``, a part of a month
    ``monthly_rent × days / days in that month``; the exact total is rounded half-up."""
    if leases.empty:
        return np.zeros(0, dtype="int64")
    start = pd.to_datetime(leases["start_date"])
    end = pd.to_datetime(leases["end_date"])
    sy, sm, sd = (start.dt.year.to_numpy("int64"), start.dt.month.to_numpy("int64"),
                  start.dt.day.to_numpy("int64"))
    ey, em, ed = (end.dt.year.to_numpy("int64"), end.dt.month.to_numpy("int64"),
                  end.dt.day.to_numpy("int64"))
    dim_start = start.dt.days_in_month.to_numpy("int64")
    dim_end = end.dt.days_in_month.to_numpy("int64")
    same_month = (sy == ey) & (sm == em)
    whole_between = (ey * 12 + em) - (sy * 12 + sm) - 1
    # the term in months as a fraction numerator / denominator
    numerator = np.where(same_month, ed - sd + 1,
                         whole_between * dim_start * dim_end + (dim_start - sd + 1) * dim_end
                         + ed * dim_start)
    denominator = np.where(same_month, dim_start, dim_start * dim_end)
    exact = leases["monthly_rent_cents"].to_numpy("int64") * np.maximum(numerator, 0)
    return (2 * exact + denominator) // (2 * denominator)


# -- funnel --------------------------------------------------------------------------------
def _history(entities, id_column, changes, first_stage):
    """Every entry into a stage: (entity code, stage, at ns). Creation is the entry into the
    first stage; a history row from nothing (``from_stage`` None) is that same entry and is
    dropped when the creation time is known; rows from a stage to itself (assignments) are not
    moves."""
    ids = entities[id_column]
    created = _utc(entities["created_at"])
    changes = changes[changes[id_column].isin(ids)]
    from_stage, to_stage = changes["from_stage"], changes["to_stage"]
    moves = changes[from_stage.isna() | (from_stage != to_stage)]
    with_creation = set(ids[created.notna()])
    moves = moves[~(moves["from_stage"].isna() & moves[id_column].isin(with_creation))]
    entries = pd.DataFrame({
        "entity": pd.concat([ids[created.notna()], moves[id_column]], ignore_index=True),
        "stage": pd.concat([pd.Series(first_stage, index=range(int(created.notna().sum()))),
                            moves["to_stage"].astype("object")], ignore_index=True),
        "at": pd.concat([created[created.notna()], _utc(moves["occurred_at"])],
                        ignore_index=True)})
    return entries.dropna(subset=["at"])


def _stage_funnel(entries, stages, bounds):
    """[{stage, entered, converted, conversion, average_days}] for one ordered list of stages.

    - entered: entities with an entry into the stage in the period;
    - converted: of those, entities that entered any later stage of the list at or after their
      first entry in the period and by the period's end (skipping a stage still converts);
      None for the last stage;
    - average_days: mean length of the stays in the stage that began in the period and ended
      (by a move to any stage) by the period's end; stays still open are left out.
    """
    start_ns, end_ns = bounds[0].value, bounds[1].value
    rank_of = {stage: index for index, stage in enumerate(stages)}
    empty = [{"stage": stage, "entered": 0, "converted": None if index == len(stages) - 1 else 0,
              "conversion": None, "average_days": None} for index, stage in enumerate(stages)]
    if entries.empty:
        return empty
    codes, _ = pd.factorize(entries["entity"])
    at = entries["at"].to_numpy("datetime64[ns]").astype("int64")
    rank = entries["stage"].map(rank_of).to_numpy(dtype="float64")
    keep = at < end_ns  # nothing after the period counts
    codes, at, rank = codes[keep], at[keep], rank[keep]
    order = np.lexsort((at, codes))
    codes, at, rank = codes[order], at[order], rank[order]
    same_next = np.r_[codes[1:] == codes[:-1], False]
    next_at = np.where(same_next, np.r_[at[1:], 0], -1)

    in_funnel = ~np.isnan(rank)
    frame = pd.DataFrame({"entity": codes[in_funnel], "rank": rank[in_funnel].astype("int64"),
                          "at": at[in_funnel], "next_at": next_at[in_funnel]})
    if frame.empty:
        return empty
    levels = len(stages)
    entities = int(codes.max()) + 1
    latest = np.full((entities, levels), np.iinfo("int64").min, dtype="int64")
    last_entry = frame.groupby(["entity", "rank"], sort=False)["at"].max()
    latest[last_entry.index.get_level_values(0), last_entry.index.get_level_values(1)] = \
        last_entry.to_numpy()
    # beyond[:, r] = the latest entry into any stage after r
    beyond = np.full_like(latest, np.iinfo("int64").min)
    if levels > 1:
        beyond[:, :-1] = np.maximum.accumulate(latest[:, :0:-1], axis=1)[:, ::-1]

    period = frame[frame["at"] >= start_ns]
    first = period.groupby(["entity", "rank"], sort=False)["at"].min()
    first_entity = first.index.get_level_values(0).to_numpy()
    first_rank = first.index.get_level_values(1).to_numpy()
    converted = beyond[first_entity, first_rank] >= first.to_numpy()
    entered_by_rank = np.bincount(first_rank, minlength=levels)
    converted_by_rank = np.bincount(first_rank, weights=converted, minlength=levels)

    stays = period[period["next_at"] >= 0]
    days = (stays["next_at"] - stays["at"]) / 86_400e9
    average_days = days.groupby(stays["rank"]).mean()

    result = []
    for index, stage in enumerate(stages):
        entered = int(entered_by_rank[index])
        last = index == levels - 1
        converted_here = None if last else int(converted_by_rank[index])
        average = average_days.get(index)
        result.append({
            "stage": stage, "entered": entered, "converted": converted_here,
            "conversion": None if last else _rate(converted_here, entered),
            "average_days": None if average is None or pd.isna(average)
            else round(float(average), 2)})
    return result


def funnel(customers, stage_changes, opportunities, opportunity_stage_changes, date_from=None,
           date_to=None):
    """``{lifecycle: [...], pipeline: [...]}``, each ``[{stage, entered, converted, conversion,
    average_days}]``: the customer lifecycle potential → intent → first_time → repeat (creation
    is the entry into potential) and the opportunity pipeline new → contacted → viewing_booked →
    viewed → negotiating → won (creation is the entry into new; every kind of opportunity).
    Rules in ``_stage_funnel``."""
    bounds = _bounds(date_from, date_to)
    lifecycle = _history(customers, "customer_id", stage_changes, LIFECYCLE_STAGES[0])
    pipeline = _history(opportunities, "opportunity_id", opportunity_stage_changes,
                        PIPELINE_STAGES[0])
    return {"lifecycle": _stage_funnel(lifecycle, LIFECYCLE_STAGES, bounds),
            "pipeline": _stage_funnel(pipeline, PIPELINE_STAGES, bounds)}


# -- sales trend ---------------------------------------------------------------------------
def _period_index(instants_local, granularity):
    year = instants_local.dt.year.to_numpy("int64")
    month = instants_local.dt.month.to_numpy("int64")
    if granularity == "month":
        return year * 12 + month - 1
    if granularity == "quarter":
        return year * 4 + (month - 1) // 3
    return year


def _date_period_index(day, granularity):
    return int(_period_index(pd.Series(pd.to_datetime([day])), granularity)[0])


def period_label(index, granularity):
    """"2025-03" (month), "2025-Q1" (quarter), "2025" (year)."""
    if granularity == "month":
        return f"{index // 12:04d}-{index % 12 + 1:02d}"
    if granularity == "quarter":
        return f"{index // 4:04d}-Q{index % 4 + 1}"
    return f"{index:04d}"


def sales_trend(payments, leases, granularity="month", date_from=None, date_to=None):
    """``{granularity, items: [{period, revenue, payments, leases_signed, previous, change,
    year_ago, yoy_change}]}``, one item per month/quarter/year that the period touches, oldest
    first, each counted whole (a period is the report's unit; the first and last are not cut
    at ``date_from``/``date_to``), empty periods included with zeros.

    ``previous`` is the revenue of the period before and ``year_ago`` of the same period a year
    before, both from the data whatever ``date_from`` says; ``change``/``yoy_change`` are
    (revenue − that) / that, rounded to 4, None when that is 0."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    per_year = GRANULARITIES[granularity]
    date_from, date_to = report_period(date_from, date_to)
    first = _date_period_index(date_from, granularity)
    last = _date_period_index(date_to, granularity)
    lowest = first - per_year

    paid = _period_index(_local(payments["paid_at"]), granularity)
    in_range = (paid >= lowest) & (paid <= last)
    revenue = pd.Series(payments["amount_cents"].to_numpy("int64")[in_range]) \
        .groupby(paid[in_range]).agg(["sum", "count"])
    signed = _period_index(_local(leases["signed_at"]), granularity)
    new_leases = pd.Series(signed[~_is_renewal(leases)]).value_counts()

    def revenue_of(index):
        return int(revenue["sum"].get(index, 0))

    items = []
    for index in range(first, last + 1):
        current, previous, year_ago = (revenue_of(index), revenue_of(index - 1),
                                       revenue_of(index - per_year))
        items.append({
            "period": period_label(index, granularity), "revenue": _money(current),
            "payments": int(revenue["count"].get(index, 0)),
            "leases_signed": int(new_leases.get(index, 0)),
            "previous": _money(previous), "change": _change(current, previous),
            "year_ago": _money(year_ago), "yoy_change": _change(current, year_ago)})
    return {"granularity": granularity, "items": items}


# -- staff performance ---------------------------------------------------------------------
def _owner_key(series):
    """Owner ids as groupable keys (None → "" and back to None at the edge)."""
    return series.astype("object").where(series.notna(), "").astype(str)


def staff_performance(leases, payments, opportunities, date_from=None, date_to=None):
    """``{items: [{owner_id, leases_signed, contract_value, revenue, opportunities, won, lost,
    win_rate, renewals}]}`` per owner (staff member) over the period, best revenue first:

    - leases_signed / renewals / contract_value: leases the owner signed in the period;
    - revenue: payments received in the period on the owner's bills (the payment's owner);
    - opportunities: opportunities created in the period that the owner holds;
    - won / lost: the owner's opportunities closed won / lost in the period;
      win_rate = won / (won + lost), None when none closed.
    ``owner_id`` None gathers the work of nobody's (unassigned) records."""
    bounds = _bounds(date_from, date_to)
    signed = leases[_within(leases["signed_at"], bounds)]
    renewal = _is_renewal(signed)
    lease_figures = pd.DataFrame({
        "owner": _owner_key(signed["owner_id"]), "leases_signed": (~renewal).astype("int64"),
        "renewals": renewal.astype("int64"), "contract_value": term_cents(signed)},
        index=signed.index).groupby("owner").sum()
    paid = payments[_within(payments["paid_at"], bounds)]
    revenue = paid["amount_cents"].groupby(_owner_key(paid["owner_id"])).sum().rename("revenue")
    created = opportunities[_within(opportunities["created_at"], bounds)]
    opened = _owner_key(created["owner_id"]).value_counts().rename("opportunities")
    closed = opportunities[_within(opportunities["closed_at"], bounds)]
    closed_owner = _owner_key(closed["owner_id"])
    won = closed_owner[(closed["stage"] == "won").to_numpy(bool)].value_counts().rename("won")
    lost = closed_owner[(closed["stage"] == "lost").to_numpy(bool)].value_counts().rename("lost")
    table = pd.concat([lease_figures, revenue, opened, won, lost], axis=1).fillna(0)
    for column in ("leases_signed", "renewals", "contract_value", "revenue", "opportunities",
                   "won", "lost"):
        if column not in table:
            table[column] = 0
        table[column] = table[column].astype("int64")
    table = table.reset_index(names="owner").sort_values(
        ["revenue", "contract_value", "owner"], ascending=[False, False, True], kind="stable")
    items = [{
        "owner_id": row.owner or None, "leases_signed": int(row.leases_signed),
        "contract_value": _money(row.contract_value), "revenue": _money(row.revenue),
        "opportunities": int(row.opportunities), "won": int(row.won), "lost": int(row.lost),
        "win_rate": _rate(row.won, row.won + row.lost), "renewals": int(row.renewals)}
        for row in table.itertuples(index=False)]
    return {"items": items}


# -- sales business ------------------------------------------------------------------------
def _lease_groups(signed, terminated, column):
    renewal = _is_renewal(signed)
    figures = pd.DataFrame({
        "group": _labels(signed[column]).to_numpy(), "leases_signed": (~renewal).astype("int64"),
        "renewals": renewal.astype("int64"), "contract_value": term_cents(signed),
        "rent": signed["monthly_rent_cents"].to_numpy("int64")}).groupby("group").sum()
    ended = pd.Series(_labels(terminated[column]).to_numpy()).value_counts().rename(
        "terminations")
    table = pd.concat([figures, ended], axis=1).fillna(0).astype("int64")
    for column_name in ("leases_signed", "renewals", "contract_value", "rent", "terminations"):
        if column_name not in table:
            table[column_name] = 0
    table["signed"] = table["leases_signed"] + table["renewals"]
    table = table.reset_index(names="group").sort_values(
        ["signed", "contract_value", "group"], ascending=[False, False, True], kind="stable")
    return [{"group": row.group, "leases_signed": int(row.leases_signed),
             "renewals": int(row.renewals), "terminations": int(row.terminations),
             "contract_value": _money(row.contract_value),
             "average_rent": None if not row.signed
             else _money(_average_cents(row.rent, row.signed))}
            for row in table.itertuples(index=False)]


def sales_business(leases, date_from=None, date_to=None):
    """``{leases_signed, renewals, terminations, contract_value, average_rent, by_district,
    by_layout}`` for the period: new leases and renewals signed, early terminations (status
    ``terminated``, closed in the period), the contract value of everything signed and its
    average monthly rent (None when nothing was signed). ``by_district``/``by_layout``:
    ``[{group, leases_signed, renewals, terminations, contract_value, average_rent}]``, most
    signed first."""
    bounds = _bounds(date_from, date_to)
    signed = leases[_within(leases["signed_at"], bounds)]
    terminated = leases[(leases["status"] == "terminated").to_numpy(bool)
                        & _within(leases["closed_at"], bounds)]
    renewal = _is_renewal(signed)
    total_rent = int(signed["monthly_rent_cents"].sum())
    average = _average_cents(total_rent, len(signed))
    return {"leases_signed": int((~renewal).sum()), "renewals": int(renewal.sum()),
            "terminations": len(terminated),
            "contract_value": _money(int(term_cents(signed).sum())),
            "average_rent": None if average is None else _money(average),
            "by_district": _lease_groups(signed, terminated, "district"),
            "by_layout": _lease_groups(signed, terminated, "layout")}


# -- compositions --------------------------------------------------------------------------
def _composition(labels, known=(), fixed_order=False, count_key="count"):
    """[{group, <count_key>, share}]: groups by size (largest first, ties in ``known`` order
    then by name), every ``known`` value present even at 0, "unknown" last; with
    ``fixed_order`` the ``known`` order is kept as it is."""
    counts = labels.value_counts()
    total = int(counts.sum())
    names = list(known) + sorted(name for name in counts.index
                                 if name not in known and name != UNKNOWN)
    if UNKNOWN in counts.index and UNKNOWN not in names:
        names.append(UNKNOWN)
    if not fixed_order:
        position = {name: index for index, name in enumerate(names)}
        names.sort(key=lambda name: (name == UNKNOWN, -int(counts.get(name, 0)),
                                     position[name]))
    return [{"group": name, count_key: int(counts.get(name, 0)),
             "share": _rate(int(counts.get(name, 0)), total)} for name in names]


def _tiers_of(customers, tiers):
    if tiers is None:
        if "value_tier" in customers:
            return customers["value_tier"]
        return pd.Series(None, index=customers.index, dtype="object")
    if isinstance(tiers, pd.DataFrame):
        tiers = tiers.set_index("customer_id")["value_tier"]
    elif not isinstance(tiers, pd.Series):
        tiers = pd.Series(dict(tiers), dtype="object")
    return customers["customer_id"].map(tiers)


def customer_composition(customers, by, tiers=None, as_of=None):
    """``{by, items: [{group, customers, share}]}``: the customers (not archived, not erased)
    grouped by ``by``, one of district, industry, source, age_band, value_tier, stage.

    - age_band: age in whole years at ``as_of`` (default today, business clock): <25, 25-29,
      30-34, 35-39, 40+, unknown (no birthday), always all six, in that order;
    - value_tier: ``tiers`` maps customer_id → tier (a dict, a Series, or a DataFrame with
      customer_id and value_tier: the current score run); no tier → unknown; key, important,
      ordinary, small, unknown in that order;
    - stage: the six stages in lifecycle order;
    - district, industry, source: largest group first, unknown (blank) last.
    """
    if by not in COMPOSITION_BY:
        raise ValueError(f"by must be one of {', '.join(COMPOSITION_BY)}")
    active = customers[~(customers["archived"].fillna(False).astype(bool)
                         | customers["erased"].fillna(False).astype(bool)).to_numpy(bool)]
    if by == "age_band":
        as_of = as_date(as_of) or business_today()
        labels = age_bands(active["birthday"], as_of)
        known, fixed = list(AGE_BANDS) + [UNKNOWN], True
    elif by == "value_tier":
        labels = _labels(_tiers_of(active, tiers))
        known, fixed = list(VALUE_TIERS) + [UNKNOWN], True
    elif by == "stage":
        labels = _labels(active["stage"])
        known, fixed = CUSTOMER_STAGES, True
    else:
        labels, known, fixed = _labels(active[by]), (), False
    return {"by": by, "items": _composition(labels, known, fixed, count_key="customers")}


def _ticket_sentiments(tickets):
    """Sentiment counts of the tickets with a review (a comment or a rating)."""
    counts = {"positive": 0, "neutral": 0, "negative": 0}
    comments = tickets["comment"].astype("object")
    ratings = tickets["rating"].astype("object")
    reviewed = (comments.notna() & (comments.astype(str).str.strip() != "")) | ratings.notna()
    for comment, rating in zip(comments[reviewed], ratings[reviewed]):
        counts[classify(comment, rating)["sentiment"]] += 1
    return counts


def service_composition(tickets, date_from=None, date_to=None):
    """``{tickets, by_type, by_channel, by_status, sla: {breached, compliance},
    satisfaction: {rated, average, distribution}, sentiment: {positive, neutral, negative}}``
    over the tickets created in the period.

    - by_*: ``[{group, tickets, share}]``, largest first, every enumerated value present;
    - sla: tickets that breached an SLA target; compliance = 1 − breached / tickets (None
      with no ticket);
    - satisfaction: tickets rated, the average rating (2 places; None when none) and the
      count per rating ``{"1": n, …, "5": n}``;
    - sentiment: the reviews (comment and/or rating) of those tickets by ``sentiment.classify``.
    """
    bounds = _bounds(date_from, date_to)
    tickets = tickets[_within(tickets["created_at"], bounds)]
    total = len(tickets)
    breached = int(tickets["sla_breached"].fillna(False).astype(bool).sum())
    ratings = pd.to_numeric(tickets["rating"], errors="coerce").dropna().astype("int64")
    distribution = ratings.value_counts()
    return {
        "tickets": total,
        "by_type": _composition(_labels(tickets["type"]), TICKET_TYPES, count_key="tickets"),
        "by_channel": _composition(_labels(tickets["channel"]), TICKET_CHANNELS,
                                   count_key="tickets"),
        "by_status": _composition(_labels(tickets["status"]), TICKET_STATUSES,
                                  count_key="tickets"),
        "sla": {"breached": breached,
                "compliance": None if not total else round(1 - breached / total, 4)},
        "satisfaction": {
            "rated": len(ratings),
            "average": None if ratings.empty else round(float(ratings.mean()), 2),
            "distribution": {str(score): int(distribution.get(score, 0))
                             for score in range(1, 6)}},
        "sentiment": _ticket_sentiments(tickets)}


# -- contribution --------------------------------------------------------------------------
def contribution(payments, customers):
    """``{customers, revenue, top_20_percent_share, curve: [{customer_share, revenue_share}]}``:
    the 80/20 (Pareto/Lorenz) curve of revenue over the paying customers — the customers of
    ``customers`` (merged duplicates are not there) with payments summing above zero — sorted by
    revenue, highest first. The curve has a point at every 5% of customers from 0 to 1; between
    two customers it is linear (a share of p·n customers takes the fractional part of the next
    customer's revenue), so at whole customers it is exact. ``top_20_percent_share`` is the
    curve at 0.2; None (and an empty curve) with no revenue."""
    known = payments[payments["customer_id"].isin(customers["customer_id"]).to_numpy(bool)]
    per_customer = known["amount_cents"].groupby(known["customer_id"].to_numpy()).sum()
    per_customer = np.sort(per_customer[per_customer > 0].to_numpy("int64"))[::-1]
    paying, total = len(per_customer), int(per_customer.sum())
    if not total:
        return {"customers": 0, "revenue": _money(0), "top_20_percent_share": None,
                "curve": []}
    cumulative = np.r_[0, np.cumsum(per_customer)]
    curve = []
    for step in range(CURVE_STEPS + 1):
        whole, part = divmod(step * paying, CURVE_STEPS)  # p·n = whole + part / 20
        value = int(cumulative[whole])
        if part:
            value_fraction = part * int(per_customer[whole]) / CURVE_STEPS
        else:
            value_fraction = 0
        curve.append({"customer_share": round(step / CURVE_STEPS, 4),
                      "revenue_share": round((value + value_fraction) / total, 4)})
    return {"customers": paying, "revenue": _money(total),
            "top_20_percent_share": curve[CURVE_STEPS // 5]["revenue_share"], "curve": curve}


#: report name → function, for the service and the exporter
REPORTS = {"funnel": funnel, "sales_trend": sales_trend, "staff_performance": staff_performance,
           "sales_business": sales_business, "service_composition": service_composition,
           "customer_composition": customer_composition, "contribution": contribution,
           "review_sentiment": review_sentiment}
