"""The [003] reports over small stores whose figures are computed by hand in the comments.

Facts go into a real (SQLite) analytics store and come back through ``frames``, so the reports
are checked against the DataFrames the service really hands them."""
import calendar
import json
import math
import uuid
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_fixtures import (add_customer, add_lease, add_opportunity, add_payment,
                                add_stage_change, add_ticket, at)
from analytics_service import frames, reports
from analytics_service.models import OpportunityStageChange

Q1 = ("2025-01-01", "2025-03-31")


def add_opportunity_move(session, opportunity_id, from_stage, to_stage, when):
    session.add(OpportunityStageChange(event_id=str(uuid.uuid4()), opportunity_id=opportunity_id,
                                       from_stage=from_stage, to_stage=to_stage,
                                       occurred_at=at(when)))
    session.flush()


def add_owned_payment(session, customer_id, amount, paid_on, owner_id):
    """add_payment with another owner (its owner_id is fixed to staff-1)."""
    payment = add_payment(session, customer_id, amount, paid_on)
    payment.owner_id = owner_id
    session.flush()
    return payment


def assert_json_ready(value):
    """Only plain JSON types (no numpy scalars, which json would refuse or pass as floats),
    no NaN."""
    if isinstance(value, dict):
        assert all(type(key) is str for key in value)
        for item in value.values():
            assert_json_ready(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_ready(item)
    else:
        assert type(value) in (str, int, float, bool, type(None)), (value, type(value))
        if type(value) is float:
            assert math.isfinite(value)
    json.dumps(value, allow_nan=False)


def by_stage(rows):
    return {row["stage"]: row for row in rows}


def by_group(rows):
    return {row["group"]: row for row in rows}


# -- period --------------------------------------------------------------------------------
def test_the_default_period_is_the_last_twelve_months_to_today():
    assert reports.report_period(today=date(2026, 6, 17)) == (date(2025, 6, 18),
                                                              date(2026, 6, 17))
    assert reports.report_period(None, "2028-02-29") == (date(2027, 3, 1), date(2028, 2, 29))
    assert reports.report_period("2025-01-01", "2025-01-01") == (date(2025, 1, 1),
                                                                 date(2025, 1, 1))
    with pytest.raises(ValueError):
        reports.report_period("2025-02-01", "2025-01-31")


def test_business_today_is_on_the_chengdu_clock():
    assert reports.business_today(datetime(2025, 1, 31, 16, 30, tzinfo=timezone.utc)) == \
        date(2025, 2, 1)


# -- funnel --------------------------------------------------------------------------------
@pytest.fixture
def funnel_store(session):
    # lifecycle; the period is Q1 2025
    add_customer(session, "A", created_at=at("2025-01-01"))
    add_stage_change(session, "A", None, "potential", "2025-01-01")  # = creation, not twice
    add_stage_change(session, "A", "potential", "intent", "2025-01-11")       # 10 days
    add_stage_change(session, "A", "intent", "first_time", "2025-01-31")      # 20 days
    add_stage_change(session, "A", "first_time", "repeat", "2025-03-02")      # 30 days
    add_customer(session, "B", created_at=at("2025-01-05"))
    add_stage_change(session, "B", "potential", "intent", "2025-01-09")       # 4 days, stays
    add_customer(session, "C", created_at=at("2025-02-01"))
    add_stage_change(session, "C", "potential", "first_time", "2025-02-03")   # skips intent
    add_customer(session, "D", created_at=at("2024-12-01"))                   # before
    add_stage_change(session, "D", "potential", "intent", "2025-01-02")
    add_stage_change(session, "D", "intent", "first_time", "2025-05-01")      # after the period
    add_customer(session, "E", created_at=at("2025-03-10"))                   # stays potential
    add_customer(session, "F", created_at=at("2025-04-05"))                   # after
    add_stage_change(session, "ghost", "potential", "intent", "2025-01-10")   # merged away
    # pipeline
    o1 = add_opportunity(session, "A", "2025-01-10").id
    for when, old, new in (("2025-01-12", "new", "contacted"),                # 2 days in new
                           ("2025-01-13", "contacted", "contacted"),          # an assignment
                           ("2025-01-15", "contacted", "viewing_booked"),     # 3 in contacted
                           ("2025-01-16", "viewing_booked", "viewed"),        # 1
                           ("2025-01-20", "viewed", "negotiating"),           # 4
                           ("2025-01-25", "negotiating", "won")):             # 5
        add_opportunity_move(session, o1, old, new, when)
    o2 = add_opportunity(session, "B", "2025-02-01").id
    add_opportunity_move(session, o2, "new", "contacted", "2025-02-03")       # 2 days in new
    add_opportunity_move(session, o2, "contacted", "lost", "2025-02-10")      # 7 in contacted
    o3 = add_opportunity(session, "C", "2025-02-15").id
    add_opportunity_move(session, o3, "new", "won", "2025-02-20")             # 5 days in new
    add_opportunity(session, "E", "2025-03-01")                               # stays new
    o5 = add_opportunity(session, "D", "2024-12-20").id                       # created before
    add_opportunity_move(session, o5, "new", "contacted", "2024-12-22")
    add_opportunity_move(session, o5, "contacted", "negotiating", "2025-01-05")  # 10 days
    add_opportunity_move(session, o5, "negotiating", "contacted", "2025-01-15")  # back: 5 days
    add_opportunity_move(session, o5, "contacted", "negotiating", "2025-01-20")  # 12 days
    add_opportunity_move(session, o5, "negotiating", "won", "2025-02-01")
    return session


def run_funnel(session, date_from=Q1[0], date_to=Q1[1]):
    return reports.funnel(frames.customers(session), frames.stage_changes(session),
                          frames.opportunities(session),
                          frames.opportunity_stage_changes(session), date_from, date_to)


def test_lifecycle_funnel(funnel_store):
    result = run_funnel(funnel_store)
    assert [row["stage"] for row in result["lifecycle"]] == list(reports.LIFECYCLE_STAGES)
    lifecycle = by_stage(result["lifecycle"])
    # potential: A, B, C, E created in Q1 (D before, F after); A, B → intent, C → first_time
    # (skipping a stage still converts); stays that ended: A 10, B 4, C 2 → 16 / 3
    assert lifecycle["potential"] == {"stage": "potential", "entered": 4, "converted": 3,
                                      "conversion": 0.75, "average_days": 5.33}
    # intent: A, B, D; only A moved on in Q1 (D in May); stays ended in Q1: A's 20 days
    assert lifecycle["intent"] == {"stage": "intent", "entered": 3, "converted": 1,
                                   "conversion": 0.3333, "average_days": 20.0}
    # first_time: A (31 Jan), C (3 Feb); A → repeat on 2 Mar, 30 days later
    assert lifecycle["first_time"] == {"stage": "first_time", "entered": 2, "converted": 1,
                                       "conversion": 0.5, "average_days": 30.0}
    # repeat: the last stage, no next one; A's stay goes on
    assert lifecycle["repeat"] == {"stage": "repeat", "entered": 1, "converted": None,
                                   "conversion": None, "average_days": None}
    assert_json_ready(result)


def test_pipeline_funnel(funnel_store):
    pipeline = by_stage(run_funnel(funnel_store)["pipeline"])
    # new: O1-O4 created in Q1; O1, O2 contacted, O3 won; stays 2, 2, 5 → 3.0
    assert pipeline["new"] == {"stage": "new", "entered": 4, "converted": 3, "conversion": 0.75,
                               "average_days": 3.0}
    # contacted: O1, O2, O5 (back on 15 Jan); O1 and O5 moved on, O2 was lost;
    # stays 3 (the assignment is no move), 7, 5 → 5.0
    assert pipeline["contacted"] == {"stage": "contacted", "entered": 3, "converted": 2,
                                     "conversion": 0.6667, "average_days": 5.0}
    assert pipeline["viewing_booked"] == {"stage": "viewing_booked", "entered": 1,
                                          "converted": 1, "conversion": 1.0,
                                          "average_days": 1.0}
    assert pipeline["viewed"] == {"stage": "viewed", "entered": 1, "converted": 1,
                                  "conversion": 1.0, "average_days": 4.0}
    # negotiating: O1, O5 (twice); both won; stays 5, 10, 12 → 9.0
    assert pipeline["negotiating"] == {"stage": "negotiating", "entered": 2, "converted": 2,
                                       "conversion": 1.0, "average_days": 9.0}
    assert pipeline["won"] == {"stage": "won", "entered": 3, "converted": None,
                               "conversion": None, "average_days": None}


def test_a_funnel_counts_only_what_happened_by_the_end_of_its_period(funnel_store):
    january = by_stage(run_funnel(funnel_store, "2025-01-01", "2025-01-31")["lifecycle"])
    # potential: A, B; A → intent 11 Jan, B → intent 9 Jan
    assert (january["potential"]["entered"], january["potential"]["converted"]) == (2, 2)
    # intent: A, B, D; A → first_time on 31 Jan (the last day counts)
    assert (january["intent"]["entered"], january["intent"]["converted"]) == (3, 1)
    assert january["intent"]["average_days"] == 20.0
    # first_time: A on 31 Jan; its stay has not ended by 31 Jan
    assert january["first_time"] == {"stage": "first_time", "entered": 1, "converted": 0,
                                     "conversion": 0.0, "average_days": None}


def test_an_empty_funnel(session):
    result = run_funnel(session)
    for rows, stages in ((result["lifecycle"], reports.LIFECYCLE_STAGES),
                         (result["pipeline"], reports.PIPELINE_STAGES)):
        assert [row["stage"] for row in rows] == list(stages)
        assert all(row["entered"] == 0 and row["conversion"] is None
                   and row["average_days"] is None for row in rows)
        assert [row["converted"] for row in rows] == [0] * (len(stages) - 1) + [None]
    assert_json_ready(result)


# -- sales trend ---------------------------------------------------------------------------
@pytest.fixture
def trend_store(session):
    add_customer(session, "c1")
    add_payment(session, "c1", "100.00", "2024-01-15")
    add_payment(session, "c1", "50.00", "2024-03-31")
    late = add_payment(session, "c1", "80.00", "2024-12-31")
    late.paid_at = datetime(2024, 12, 31, 20, 0, tzinfo=timezone.utc)  # 1 Jan 04:00 in Chengdu
    add_payment(session, "c1", "200.00", "2025-01-10")
    add_payment(session, "c1", "300.00", "2025-02-05")
    add_payment(session, "c1", "100.00", "2025-02-20")
    add_payment(session, "c1", "400.00", "2025-04-01")
    first = add_lease(session, "c1", "2025-01-20", "2025-12-31")
    add_lease(session, "c1", "2025-02-10", "2026-02-09")
    add_lease(session, "c1", "2025-02-15", "2026-02-14", renewed_from_id=first.id)  # a renewal
    session.flush()
    return session


def run_trend(session, granularity, date_from, date_to):
    return reports.sales_trend(frames.payments(session), frames.leases(session), granularity,
                               date_from, date_to)


def test_monthly_trend_with_period_over_period_and_year_over_year(trend_store):
    result = run_trend(trend_store, "month", *Q1)
    assert result["granularity"] == "month"
    assert result["items"] == [
        # 200 + the 80 paid at 04:00 on 1 Jan in Chengdu; Dec 2024 had nothing; Jan 2024 100
        {"period": "2025-01", "revenue": "280.00", "payments": 2, "leases_signed": 1,
         "previous": "0.00", "change": None, "year_ago": "100.00", "yoy_change": 1.8},
        # 300 + 100; (400 − 280) / 280 = 0.428571…; the renewal is not a new lease
        {"period": "2025-02", "revenue": "400.00", "payments": 2, "leases_signed": 1,
         "previous": "280.00", "change": 0.4286, "year_ago": "0.00", "yoy_change": None},
        # nothing; (0 − 400) / 400; (0 − 50) / 50
        {"period": "2025-03", "revenue": "0.00", "payments": 0, "leases_signed": 0,
         "previous": "400.00", "change": -1.0, "year_ago": "50.00", "yoy_change": -1.0}]
    assert_json_ready(result)


def test_quarterly_trend(trend_store):
    assert run_trend(trend_store, "quarter", "2025-01-01", "2025-06-30")["items"] == [
        # 280 + 400; Q4 2024 had nothing; Q1 2024: 100 + 50 → (680 − 150) / 150 = 3.5333…
        {"period": "2025-Q1", "revenue": "680.00", "payments": 4, "leases_signed": 2,
         "previous": "0.00", "change": None, "year_ago": "150.00", "yoy_change": 3.5333},
        # (400 − 680) / 680 = −0.41176…
        {"period": "2025-Q2", "revenue": "400.00", "payments": 1, "leases_signed": 0,
         "previous": "680.00", "change": -0.4118, "year_ago": "0.00", "yoy_change": None}]


def test_yearly_trend_counts_whole_years(trend_store):
    # from 1 June 2024: the whole of 2024 is the first item
    assert run_trend(trend_store, "year", "2024-06-01", "2025-12-31")["items"] == [
        {"period": "2024", "revenue": "150.00", "payments": 2, "leases_signed": 0,
         "previous": "0.00", "change": None, "year_ago": "0.00", "yoy_change": None},
        # 280 + 400 + 400 = 1080; (1080 − 150) / 150 = 6.2 against both
        {"period": "2025", "revenue": "1080.00", "payments": 5, "leases_signed": 2,
         "previous": "150.00", "change": 6.2, "year_ago": "150.00", "yoy_change": 6.2}]


def test_a_period_inside_months_reports_those_months_whole(trend_store):
    items = run_trend(trend_store, "month", "2025-01-15", "2025-02-10")["items"]
    assert [(item["period"], item["revenue"]) for item in items] == [("2025-01", "280.00"),
                                                                     ("2025-02", "400.00")]


def test_an_empty_trend_has_every_period_with_zeros(session):
    result = run_trend(session, "quarter", "2025-01-01", "2025-12-31")
    assert [item["period"] for item in result["items"]] == ["2025-Q1", "2025-Q2", "2025-Q3",
                                                            "2025-Q4"]
    assert all(item == {"period": item["period"], "revenue": "0.00", "payments": 0,
                        "leases_signed": 0, "previous": "0.00", "change": None,
                        "year_ago": "0.00", "yoy_change": None} for item in result["items"])
    assert_json_ready(result)


def test_a_trend_needs_a_known_granularity(session):
    with pytest.raises(ValueError):
        run_trend(session, "week", *Q1)


# -- contract value ------------------------------------------------------------------------
def reference_term_cents(rent_cents, start, end):
    """billing.term_rent of the sales service, written again with Fractions."""
    total, day = Fraction(0), start
    while day <= end:
        month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        last = min(month_end, end)
        total += Fraction(rent_cents * ((last - day).days + 1), month_end.day)
        day = last + timedelta(days=1)
    return int(total + Fraction(1, 2))  # half up (never negative)


@settings(max_examples=300, deadline=None)
@given(rent=st.integers(min_value=50_000, max_value=5_000_000),
       start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
       length=st.integers(min_value=0, max_value=3 * 366))
def test_contract_value_is_the_term_rent_the_sales_service_bills(rent, start, length):
    end = start + timedelta(days=length)
    frame = pd.DataFrame({"start_date": [pd.Timestamp(start)], "end_date": [pd.Timestamp(end)],
                          "monthly_rent_cents": [rent]})
    assert int(reports.term_cents(frame)[0]) == reference_term_cents(rent, start, end)


# -- staff performance ---------------------------------------------------------------------
def test_staff_performance(session):
    add_customer(session, "c1")
    first = add_lease(session, "c1", "2025-01-01", "2025-12-31", "3000.00", owner_id="s1")
    # 36000.00: twelve whole months
    add_lease(session, "c1", "2025-02-15", "2025-03-14", "3100.00", owner_id="s1",
              renewed_from_id=first.id)
    # 3100 × (14/28 + 14/31) = 1550.00 + 1400.00 = 2950.00
    add_lease(session, "c1", "2025-03-10", "2026-03-09", "2500.00", owner_id="s2")
    # 22/31 + 11 months + 9/31 = 12 months → 30000.00
    add_lease(session, "c1", "2024-12-20", "2025-12-19", owner_id="s2")  # signed before Q1
    add_owned_payment(session, "c1", "1000.00", "2025-01-05", "s1")
    add_owned_payment(session, "c1", "1000.00", "2025-02-05", "s1")
    add_owned_payment(session, "c1", "999.00", "2024-12-31", "s1")  # before
    add_owned_payment(session, "c1", "2500.00", "2025-03-15", "s2")
    add_owned_payment(session, "c1", "10.00", "2025-01-20", None)
    add_opportunity(session, "c1", "2025-01-05", "won", owner_id="s1", closed_at=at("2025-01-25"))
    add_opportunity(session, "c1", "2025-01-06", "lost", owner_id="s1",
                    closed_at=at("2025-02-01"))
    add_opportunity(session, "c1", "2024-12-01", "won", owner_id="s1",
                    closed_at=at("2025-01-03"))  # won in Q1, created before
    add_opportunity(session, "c1", "2025-02-01", owner_id="s2")
    result = reports.staff_performance(frames.leases(session), frames.payments(session),
                                       frames.opportunities(session), *Q1)
    assert result["items"] == [
        {"owner_id": "s2", "leases_signed": 1, "contract_value": "30000.00",
         "revenue": "2500.00", "opportunities": 1, "won": 0, "lost": 0, "win_rate": None,
         "renewals": 0},
        # 36000 + 2950; won 2 of 3 closed
        {"owner_id": "s1", "leases_signed": 1, "contract_value": "38950.00",
         "revenue": "2000.00", "opportunities": 2, "won": 2, "lost": 1, "win_rate": 0.6667,
         "renewals": 1},
        {"owner_id": None, "leases_signed": 0, "contract_value": "0.00", "revenue": "10.00",
         "opportunities": 0, "won": 0, "lost": 0, "win_rate": None, "renewals": 0}]
    assert_json_ready(result)


def test_empty_staff_performance(session):
    assert reports.staff_performance(frames.leases(session), frames.payments(session),
                                     frames.opportunities(session), *Q1) == {"items": []}


# -- sales business ------------------------------------------------------------------------
def test_sales_business(session):
    add_customer(session, "c1")
    first = add_lease(session, "c1", "2025-01-01", "2025-12-31", "3000.00")  # 高新区 1b1b
    add_lease(session, "c1", "2025-02-15", "2025-03-14", "3100.00", layout="2b1b",
              renewed_from_id=first.id)                                      # 2950.00
    add_lease(session, "c1", "2025-01-10", "2025-01-20", "3333.33", district="锦江区")
    # 3333.33 × 11/31 = 1182.7945… → 1182.79
    add_lease(session, "c1", "2024-06-01", "2025-05-31", district="锦江区", status="terminated",
              closed_at=at("2025-02-10"))                                    # terminated in Q1
    add_lease(session, "c1", "2024-01-01", "2024-12-31", status="terminated",
              closed_at=at("2024-12-01"))                                    # before
    result = reports.sales_business(frames.leases(session), *Q1)
    assert result == {
        "leases_signed": 2, "renewals": 1, "terminations": 1,
        "contract_value": "40132.79",  # 36000 + 2950 + 1182.79
        "average_rent": "3144.44",     # (3000 + 3100 + 3333.33) / 3 = 3144.443…
        "by_district": [
            {"group": "高新区", "leases_signed": 1, "renewals": 1, "terminations": 0,
             "contract_value": "38950.00", "average_rent": "3050.00"},
            {"group": "锦江区", "leases_signed": 1, "renewals": 0, "terminations": 1,
             "contract_value": "1182.79", "average_rent": "3333.33"}],
        "by_layout": [
            # (3000 + 3333.33) / 2 = 3166.665 → half up 3166.67
            {"group": "1b1b", "leases_signed": 2, "renewals": 0, "terminations": 1,
             "contract_value": "37182.79", "average_rent": "3166.67"},
            {"group": "2b1b", "leases_signed": 0, "renewals": 1, "terminations": 0,
             "contract_value": "2950.00", "average_rent": "3100.00"}]}
    assert_json_ready(result)


def test_empty_sales_business(session):
    assert reports.sales_business(frames.leases(session), *Q1) == {
        "leases_signed": 0, "renewals": 0, "terminations": 0, "contract_value": "0.00",
        "average_rent": None, "by_district": [], "by_layout": []}


# -- service composition -------------------------------------------------------------------
def test_service_composition(session):
    add_customer(session, "c1")
    add_ticket(session, "c1", "2025-01-03", type="repair", channel="phone", status="closed",
               sla_breached=True, rating=5, comment="维修很及时，管家态度很好")      # positive
    add_ticket(session, "c1", "2025-01-04", type="repair", channel="wechat",
               status="resolved", rating=2)                                   # negative (rating)
    add_ticket(session, "c1", "2025-01-05", type="complaint", channel="phone", status="new",
               sla_breached=True)                                             # no review
    add_ticket(session, "c1", "2025-01-06", type="consultation", channel="web",
               status="closed", rating=4, comment="房租结算太乱了，押金不退")    # negative (text)
    add_ticket(session, "c1", "2025-02-01", type="repair")                    # after January
    result = reports.service_composition(frames.tickets(session), "2025-01-01", "2025-01-31")
    assert result["tickets"] == 4
    assert result["by_type"] == [
        {"group": "repair", "tickets": 2, "share": 0.5},
        {"group": "complaint", "tickets": 1, "share": 0.25},
        {"group": "consultation", "tickets": 1, "share": 0.25},
        {"group": "suggestion", "tickets": 0, "share": 0.0},
        {"group": "cleaning", "tickets": 0, "share": 0.0}]
    assert [(row["group"], row["tickets"]) for row in result["by_channel"]] == [
        ("phone", 2), ("wechat", 1), ("web", 1), ("weibo", 0), ("email", 0), ("sms", 0),
        ("in_app", 0), ("face_to_face", 0)]
    assert [(row["group"], row["tickets"]) for row in result["by_status"]] == [
        ("closed", 2), ("new", 1), ("resolved", 1), ("assigned", 0), ("in_progress", 0),
        ("awaiting_customer", 0), ("reopened", 0)]
    assert result["sla"] == {"breached": 2, "compliance": 0.5}  # 1 − 2/4
    # (5 + 2 + 4) / 3 = 3.666…
    assert result["satisfaction"] == {"rated": 3, "average": 3.67,
                                      "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}
    assert result["sentiment"] == {"positive": 1, "neutral": 0, "negative": 2}
    assert_json_ready(result)


def test_empty_service_composition(session):
    result = reports.service_composition(frames.tickets(session), *Q1)
    assert result["tickets"] == 0
    assert result["sla"] == {"breached": 0, "compliance": None}
    assert result["satisfaction"] == {"rated": 0, "average": None,
                                      "distribution": {str(n): 0 for n in range(1, 6)}}
    assert result["sentiment"] == {"positive": 0, "neutral": 0, "negative": 0}
    assert all(row["tickets"] == 0 and row["share"] is None for row in result["by_type"])
    assert_json_ready(result)


# -- customer composition ------------------------------------------------------------------
@pytest.fixture
def customer_base(session):
    add_customer(session, "c1", district="高新区", birthday=date(2001, 6, 30))  # 24 today
    add_customer(session, "c2", district="高新区", birthday=date(2000, 6, 30),  # 25 today
                 stage="intent")
    add_customer(session, "c3", district="锦江区", birthday=date(2000, 7, 1))   # 24 still
    add_customer(session, "c4", district="武侯区", birthday=date(1990, 1, 1),   # 35
                 stage="repeat", industry="finance")
    add_customer(session, "c5", district=None, birthday=None, industry=" ")     # unknown
    add_customer(session, "c6", district=" 锦江区 ", birthday=date(1985, 6, 30))  # 40; trimmed
    add_customer(session, "c7", archived=True)                                  # not counted
    add_customer(session, "c8", erased=True)                                    # not counted
    return frames.customers(session)


AS_OF = "2025-06-30"


def test_composition_by_district(customer_base):
    result = reports.customer_composition(customer_base, "district", as_of=AS_OF)
    # 6 customers; ties by name; unknown last
    assert result == {"by": "district", "items": [
        {"group": "锦江区", "customers": 2, "share": 0.3333},
        {"group": "高新区", "customers": 2, "share": 0.3333},
        {"group": "武侯区", "customers": 1, "share": 0.1667},
        {"group": "unknown", "customers": 1, "share": 0.1667}]}
    assert_json_ready(result)


def test_composition_by_age_band(customer_base):
    items = reports.customer_composition(customer_base, "age_band", as_of=AS_OF)["items"]
    assert [(row["group"], row["customers"]) for row in items] == [
        ("<25", 2), ("25-29", 1), ("30-34", 0), ("35-39", 1), ("40+", 1), ("unknown", 1)]


def test_composition_by_industry_and_stage(customer_base):
    industry = reports.customer_composition(customer_base, "industry")["items"]
    assert [(row["group"], row["customers"]) for row in industry] == [
        ("software", 4), ("finance", 1), ("unknown", 1)]  # a blank industry is unknown
    stage = reports.customer_composition(customer_base, "stage")["items"]
    assert [(row["group"], row["customers"]) for row in stage] == [
        ("potential", 4), ("intent", 1), ("first_time", 0), ("repeat", 1), ("churn_warning", 0),
        ("churned", 0)]


def test_composition_by_value_tier(customer_base):
    tiers = {"c1": "key", "c2": "important", "c3": "key", "c4": "small", "c7": "key"}
    expected = [("key", 2), ("important", 1), ("ordinary", 0), ("small", 1), ("unknown", 2)]
    as_frame = pd.DataFrame({"customer_id": list(tiers), "value_tier": list(tiers.values())})
    for given_tiers in (tiers, pd.Series(tiers), as_frame):
        items = reports.customer_composition(customer_base, "value_tier", given_tiers)["items"]
        assert [(row["group"], row["customers"]) for row in items] == expected
    unscored = reports.customer_composition(customer_base, "value_tier")["items"]
    assert unscored[-1] == {"group": "unknown", "customers": 6, "share": 1.0}


def test_composition_needs_a_known_dimension(customer_base):
    with pytest.raises(ValueError):
        reports.customer_composition(customer_base, "hometown")


def test_empty_composition(session):
    result = reports.customer_composition(frames.customers(session), "age_band", as_of=AS_OF)
    assert [row["customers"] for row in result["items"]] == [0] * 6
    assert reports.customer_composition(frames.customers(session), "district")["items"] == []
    assert_json_ready(result)


# -- contribution --------------------------------------------------------------------------
def test_contribution_curve(session):
    for customer_id in ("c1", "c2", "c3", "c4", "c5", "c6"):
        add_customer(session, customer_id)
    add_payment(session, "c1", "300.00", "2025-01-01")
    add_payment(session, "c1", "200.00", "2025-02-01")
    add_payment(session, "c2", "200.00", "2025-01-01")
    add_payment(session, "c3", "150.00", "2025-01-01")
    add_payment(session, "c4", "100.00", "2025-01-01")
    add_payment(session, "c5", "50.00", "2025-01-01")
    add_payment(session, "ghost", "9999.00", "2025-01-01")  # not a customer (merged away)
    result = reports.contribution(frames.payments(session), frames.customers(session))
    # paying: 500, 200, 150, 100, 50 = 1000; c6 paid nothing. 5 customers: 5% = a quarter
    # customer; cumulative 0, 500, 700, 850, 950, 1000
    assert (result["customers"], result["revenue"]) == (5, "1000.00")
    assert result["top_20_percent_share"] == 0.5  # one customer of five: 500 / 1000
    curve = {point["customer_share"]: point["revenue_share"] for point in result["curve"]}
    assert len(result["curve"]) == 21
    assert curve[0.0] == 0.0
    assert curve[0.05] == 0.125   # 0.25 × 500
    assert curve[0.1] == 0.25
    assert curve[0.4] == 0.7      # 500 + 200
    assert curve[0.5] == 0.775    # 700 + 0.5 × 150
    assert curve[1.0] == 1.0
    shares = [point["revenue_share"] for point in result["curve"]]
    assert shares == sorted(shares)
    assert_json_ready(result)


def test_empty_contribution(session):
    add_customer(session, "c1")
    assert reports.contribution(frames.payments(session), frames.customers(session)) == {
        "customers": 0, "revenue": "0.00", "top_20_percent_share": None, "curve": []}


def test_the_reports_registry_names_every_report():
    assert set(reports.REPORTS) == {"funnel", "sales_trend", "staff_performance",
                                    "sales_business", "service_composition",
                                    "customer_composition", "contribution", "review_sentiment"}
