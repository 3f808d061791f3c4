"""Churn risk: each signal by hand (the arithmetic in the comments), the cap, who is never
scored, warnings once per episode, and the churn analysis counted by hand.

as_of is 2026-06-30 throughout. Facts are written at 12:00 UTC (20:00 in Chengdu, the same day).
Windows: the last 90 days = 2026-04-02 .. 2026-06-30 (06-30 − 89 days); the 90 before =
2026-01-02 .. 2026-04-01; the last 180 days = 2026-01-02 .. 2026-06-30; the lease window =
2026-06-30 .. 2026-08-29 (06-30 + 60 days).
"""
from datetime import date

import pandas as pd
import pytest

from analytics_fixtures import (add_bill, add_customer, add_lease, add_opportunity, add_payment,
                                add_ticket, at)
from analytics_service import churn, frames
from crm_kit.errors import InvalidInput

AS_OF = date(2026, 6, 30)


def load(session):
    return {"customers": frames.customers(session), "leases": frames.leases(session),
            "bills": frames.bills(session), "tickets": frames.tickets(session),
            "opportunities": frames.opportunities(session), "payments": frames.payments(session)}


def risk(session, as_of=AS_OF, params=None):
    f = load(session)
    return churn.score(f["customers"], f["leases"], f["bills"], f["tickets"],
                       f["opportunities"], f["payments"], as_of, params)


def tenant(session, customer_id, **fields):
    return add_customer(session, customer_id, stage="repeat", **fields)


def codes(scores, customer_id):
    return [r["code"] for r in scores.loc[customer_id, "reasons"]]


# -- lease ending with no renewal ---------------------------------------------------------------
def test_lease_ending_without_renewal_scores_35(session):
    tenant(session, "ending")  # ends 2026-08-15 = 06-30 + 46 days
    add_lease(session, "ending", "2025-08-16", "2026-08-15")
    tenant(session, "last-day")  # ends 08-29 = 06-30 + 60: inside
    add_lease(session, "last-day", "2025-08-30", "2026-08-29")
    tenant(session, "too-far")  # ends 08-30 = + 61: outside
    add_lease(session, "too-far", "2025-08-31", "2026-08-30")
    tenant(session, "ended")  # no longer active
    add_lease(session, "ended", "2025-08-16", "2026-08-15", status="ended")
    tenant(session, "past")  # ended yesterday (still marked active): not "ending within"
    add_lease(session, "past", "2025-06-30", "2026-06-29")

    scores = risk(session)

    assert scores.loc["ending", "score"] == 35
    assert scores.loc["ending", "reasons"] == [{
        "code": "lease_ending",
        "detail": "lease ends 2026-08-15 (in 46 days) with no renewal opportunity"}]
    assert scores.loc["last-day", "score"] == 35
    assert scores.loc["last-day", "reasons"][0]["detail"].startswith(
        "lease ends 2026-08-29 (in 60 days)")
    for quiet in ("too-far", "ended", "past"):
        assert scores.loc[quiet, "score"] == 0 and scores.loc[quiet, "reasons"] == []


def test_a_renewal_opportunity_or_renewed_lease_covers_the_ending_lease(session):
    tenant(session, "has-opportunity")
    lease = add_lease(session, "has-opportunity", "2025-08-16", "2026-08-15")
    add_opportunity(session, "has-opportunity", "2026-06-01", kind="renewal",
                    renewal_of_lease_id=lease.id)
    tenant(session, "lost-opportunity")  # the renewal was lost: still a signal
    lease = add_lease(session, "lost-opportunity", "2025-08-16", "2026-08-15")
    add_opportunity(session, "lost-opportunity", "2026-06-01", stage="lost",
                    renewal_of_lease_id=lease.id)
    tenant(session, "renewed")  # a newer lease renewed_from it
    lease = add_lease(session, "renewed", "2025-08-16", "2026-08-15")
    add_lease(session, "renewed", "2026-08-16", "2027-08-15", renewed_from_id=lease.id)
    tenant(session, "moves")  # another active lease runs past the window
    add_lease(session, "moves", "2025-08-16", "2026-08-15")
    add_lease(session, "moves", "2026-06-01", "2027-05-31", unit_id="unit-2")
    tenant(session, "other-lease-opportunity")  # an opportunity for another lease does not
    lease = add_lease(session, "other-lease-opportunity", "2025-08-16", "2026-08-15")
    add_opportunity(session, "other-lease-opportunity", "2026-06-01",
                    renewal_of_lease_id="some-other-lease")
    tenant(session, "two")  # two leases ending: one reason, the first date
    add_lease(session, "two", "2025-08-16", "2026-08-15")
    add_lease(session, "two", "2025-07-10", "2026-07-09", unit_id="unit-2")

    scores = risk(session)

    assert scores.loc["has-opportunity", "score"] == 0
    assert scores.loc["lost-opportunity", "score"] == 35
    assert scores.loc["renewed", "score"] == 0
    assert scores.loc["moves", "score"] == 0
    assert scores.loc["other-lease-opportunity", "score"] == 35
    assert scores.loc["two", "score"] == 35
    assert scores.loc["two", "reasons"] == [{
        "code": "lease_ending",
        "detail": "2 leases end within 60 days with no renewal opportunity, the first "
                  "2026-07-09 (in 9 days)"}]


# -- overdue bills --------------------------------------------------------------------------
def test_overdue_bills_25_plus_10_for_two_or_older_than_30_days(session):
    tenant(session, "two-bills")  # 3000 due 06-20 (10 days) + 4000 due 06-25: 2 bills → 25 + 10
    add_bill(session, "two-bills", "3000.00", "2026-06-20")
    add_bill(session, "two-bills", "4000.00", "2026-06-25")
    add_bill(session, "two-bills", "5000.00", "2026-06-30")  # due today: not overdue yet
    add_bill(session, "two-bills", "3000.00", "2026-05-01", paid="3000.00")  # paid
    tenant(session, "old-bill")  # 5000 − 2000 paid, due 05-20 = 41 days → 25 + 10
    add_bill(session, "old-bill", "5000.00", "2026-05-20", paid="2000.00")
    tenant(session, "one-bill")  # 3000 − 1000, due 06-10 = 20 days → 25
    add_bill(session, "one-bill", "3000.00", "2026-06-10", paid="1000.00")
    tenant(session, "thirty-days")  # due 05-31 = exactly 30 days: not > 30 → 25
    add_bill(session, "thirty-days", "1500.50", "2026-05-31")

    scores = risk(session)

    assert scores.loc["two-bills", "score"] == 35
    assert scores.loc["two-bills", "reasons"] == [{
        "code": "overdue_bills",
        "detail": "2 bills overdue, 7000.00 outstanding, the oldest 10 days past due"}]
    assert scores.loc["old-bill", "score"] == 35
    assert scores.loc["old-bill", "reasons"][0]["detail"] == (
        "1 bill overdue, 3000.00 outstanding, the oldest 41 days past due")
    assert scores.loc["one-bill", "score"] == 25
    assert scores.loc["one-bill", "reasons"][0]["detail"] == (
        "1 bill overdue, 2000.00 outstanding, the oldest 20 days past due")
    assert scores.loc["thirty-days", "score"] == 25
    assert scores.loc["thirty-days", "reasons"][0]["detail"] == (
        "1 bill overdue, 1500.50 outstanding, the oldest 30 days past due")


# -- complaints -----------------------------------------------------------------------------
def test_complaints_in_the_last_90_days_15_each_at_most_30(session):
    tenant(session, "three")  # 3 × 15 = 45 → capped at 30
    for when in ("2026-04-02", "2026-05-10", "2026-06-30"):  # 04-02 is the window's first day
        add_ticket(session, "three", when, type="complaint")
    tenant(session, "one")  # 1 × 15; a complaint on 04-01 (day 91) and a repair do not count
    add_ticket(session, "one", "2026-06-01", type="complaint")
    add_ticket(session, "one", "2026-04-01", type="complaint")
    add_ticket(session, "one", "2026-06-01", type="repair")
    tenant(session, "later")  # after as_of: not yet
    add_ticket(session, "later", "2026-07-01", type="complaint")

    scores = risk(session)

    assert scores.loc["three", "score"] == 30
    assert scores.loc["three", "reasons"] == [
        {"code": "complaints", "detail": "3 complaints in the last 90 days"}]
    assert scores.loc["one", "score"] == 15
    assert scores.loc["one", "reasons"][0]["detail"] == "1 complaint in the last 90 days"
    assert scores.loc["later", "score"] == 0


def test_complaint_window_counts_chengdu_days(session):
    # 2026-04-01 16:30 UTC is 2026-04-02 00:30 in Chengdu: inside the window;
    # 2026-04-01 15:30 UTC is 23:30 on 04-01 there: outside
    tenant(session, "just-in")
    add_ticket(session, "just-in", "2026-04-01", type="complaint",
               created_at=at("2026-04-01").replace(hour=16, minute=30))
    tenant(session, "just-out")
    add_ticket(session, "just-out", "2026-04-01", type="complaint",
               created_at=at("2026-04-01").replace(hour=15, minute=30))

    scores = risk(session)

    assert scores.loc["just-in", "score"] == 15
    assert scores.loc["just-out", "score"] == 0


# -- low rating -----------------------------------------------------------------------------
def test_a_rating_of_2_or_less_in_the_last_180_days_scores_20(session):
    tenant(session, "rated-2")
    add_ticket(session, "rated-2", "2026-03-01", status="closed", rating=2,
               rated_at=at("2026-03-02"))
    tenant(session, "rated-1-twice")  # once only: 20
    add_ticket(session, "rated-1-twice", "2026-05-01", rating=1, rated_at=at("2026-05-03"))
    add_ticket(session, "rated-1-twice", "2026-01-02", rating=2, rated_at=at("2026-01-02"))
    tenant(session, "rated-3")
    add_ticket(session, "rated-3", "2026-05-01", rating=3, rated_at=at("2026-05-01"))
    tenant(session, "long-ago")  # 2026-01-01 = day 181
    add_ticket(session, "long-ago", "2025-12-20", rating=1, rated_at=at("2026-01-01"))

    scores = risk(session)

    assert scores.loc["rated-2", "score"] == 20
    assert scores.loc["rated-2", "reasons"] == [
        {"code": "low_rating", "detail": "rated a ticket 2/5 on 2026-03-02"}]
    assert scores.loc["rated-1-twice", "score"] == 20
    assert scores.loc["rated-1-twice", "reasons"][0]["detail"] == (
        "2 tickets rated 2/5 or lower in the last 180 days (lowest 1/5, latest on 2026-05-03)")
    assert scores.loc["rated-3", "score"] == 0
    assert scores.loc["long-ago", "score"] == 0


# -- falling activity -----------------------------------------------------------------------
def test_payments_halved_against_the_previous_90_days_score_20(session):
    tenant(session, "halved")  # previous 3000 + 3000 = 6000, last 3000: 3000 ≤ 6000 × 0.5
    add_payment(session, "halved", "3000.00", "2026-02-15")
    add_payment(session, "halved", "3000.00", "2026-04-01")  # last day of the previous window
    add_payment(session, "halved", "3000.00", "2026-04-02")  # first day of the last 90
    tenant(session, "a-cent-more")  # 3000.01 > 3000: no signal
    add_payment(session, "a-cent-more", "6000.00", "2026-03-15")
    add_payment(session, "a-cent-more", "3000.01", "2026-05-15")
    tenant(session, "stopped")  # 4500 then nothing: −100%
    add_payment(session, "stopped", "4500.00", "2026-01-02")
    add_payment(session, "stopped", "9999.00", "2026-01-01")  # before both windows
    tenant(session, "new-payer")  # nothing before: no drop to speak of
    add_payment(session, "new-payer", "100.00", "2026-06-01")
    tenant(session, "deposit")  # deposits are left out: 3000 rent before, 3000 now → no drop
    add_payment(session, "deposit", "3000.00", "2026-03-01")
    deposit = add_payment(session, "deposit", "6000.00", "2026-03-01")
    deposit.bill_kind = "deposit"  # (add_payment always writes "rent")
    session.flush()
    add_payment(session, "deposit", "3000.00", "2026-05-01")

    scores = risk(session)

    assert scores.loc["halved", "score"] == 20
    assert scores.loc["halved", "reasons"] == [{
        "code": "falling_activity",
        "detail": "payments fell 50% to 3000.00 in the last 90 days, from 6000.00 in the 90 "
                  "days before"}]
    assert scores.loc["a-cent-more", "score"] == 0
    assert scores.loc["stopped", "score"] == 20
    assert scores.loc["stopped", "reasons"][0]["detail"] == (
        "payments fell 100% to 0.00 in the last 90 days, from 4500.00 in the 90 days before")
    assert scores.loc["new-payer", "score"] == 0
    assert scores.loc["deposit", "score"] == 0


# -- together -------------------------------------------------------------------------------
def everything(session, customer_id, **fields):
    """Every signal: 35 + (25 + 10) + 30 + 20 + 20 = 140."""
    add_customer(session, customer_id, **{"stage": "repeat", **fields})
    add_lease(session, customer_id, "2025-08-16", "2026-08-15")
    add_bill(session, customer_id, "3000.00", "2026-05-01")
    add_bill(session, customer_id, "3000.00", "2026-06-01")
    add_ticket(session, customer_id, "2026-06-01", type="complaint")
    add_ticket(session, customer_id, "2026-06-02", type="complaint")
    add_ticket(session, customer_id, "2026-06-03", rating=1, rated_at=at("2026-06-04"))
    add_payment(session, customer_id, "9000.00", "2026-02-01")


def test_the_score_is_capped_at_100_with_every_reason_in_order(session):
    everything(session, "all")

    scores = risk(session)

    assert scores.loc["all", "score"] == 100
    assert codes(scores, "all") == ["lease_ending", "overdue_bills", "complaints", "low_rating",
                                    "falling_activity"]
    assert scores.loc["all", "reasons"][1]["detail"] == (
        "2 bills overdue, 6000.00 outstanding, the oldest 60 days past due")
    # without the cap: the sum of the points
    assert risk(session, params={"cap": 1000}).loc["all", "score"] == 140


def test_churned_erased_and_archived_customers_score_0(session):
    everything(session, "churned", stage="churned", churned_at=at("2026-06-01"))
    everything(session, "erased", erased=True)
    everything(session, "archived", archived=True)
    everything(session, "won-back", churned_at=at("2025-01-01"))  # stage repeat again

    scores = risk(session)

    for gone in ("churned", "erased", "archived"):
        assert scores.loc[gone, "score"] == 0 and scores.loc[gone, "reasons"] == []
    assert scores.loc["won-back", "score"] == 100


def test_every_customer_has_a_row_and_others_are_ignored(session):
    add_customer(session, "lead")
    tenant(session, "b")
    add_bill(session, "b", "10.00", "2026-06-01")
    add_bill(session, "merged-away", "10.00", "2026-06-01")  # not in customers

    scores = risk(session)

    assert list(scores.index) == ["lead", "b"] and scores.index.name == "customer_id"
    assert scores["score"].dtype == "int64"
    assert scores.loc["lead", "score"] == 0 and scores.loc["lead", "reasons"] == []
    assert scores.loc["b", "score"] == 25


def test_parameters_override_the_defaults_and_are_checked(session):
    tenant(session, "ending")
    add_lease(session, "ending", "2025-08-16", "2026-08-15")  # 46 days away

    assert risk(session, params={"lease_ending": 50}).loc["ending", "score"] == 50
    assert risk(session, params={"lease_window_days": 30}).loc["ending", "score"] == 0
    assert churn.parameters({"activity_drop_ratio": 0.25})["activity_drop_ratio"] == 0.25
    with pytest.raises(InvalidInput) as raised:
        risk(session, params={"lease_endnig": 50, "overdue": -1, "cap": 99.5,
                              "activity_drop_ratio": 1.5})
    assert set(raised.value.details) == {"params.lease_endnig", "params.overdue", "params.cap",
                                         "params.activity_drop_ratio"}


def test_as_of_accepts_a_string_or_an_instant(session):
    tenant(session, "ending")
    add_lease(session, "ending", "2025-08-16", "2026-08-15")

    assert risk(session, as_of="2026-06-30").loc["ending", "score"] == 35
    # 2026-06-29 20:00 UTC is 06-30 04:00 in Chengdu: as_of 06-30
    instant = pd.Timestamp("2026-06-29T20:00:00Z")
    detail = risk(session, as_of=instant).loc["ending", "reasons"][0]["detail"]
    assert "(in 46 days)" in detail


# -- warnings -------------------------------------------------------------------------------
def scores_of(**values):
    return pd.DataFrame({"score": list(values.values()),
                         "reasons": [[] for _ in values]},
                        index=pd.Index(list(values), name="customer_id"))


def test_new_warnings_at_or_over_the_threshold_without_an_open_one():
    scores = scores_of(a=60, b=59, c=80, d=100, e=60)

    due = churn.new_warnings(scores, {"c"}, churn.WARNING_THRESHOLD)

    assert list(due) == ["d", "a", "e"]  # highest first, then by id
    assert churn.WARNING_THRESHOLD == 60
    assert list(churn.new_warnings(scores, set(), 90)) == ["d"]
    assert list(churn.new_warnings(scores["score"], ["a", "d"])) == ["c", "e"]


def test_a_warning_is_raised_once_per_episode(session):
    everything(session, "risky")
    tenant(session, "fine")

    first = churn.new_warnings(risk(session), set(), churn.WARNING_THRESHOLD)
    assert list(first) == ["risky"]
    # the warning is open: the next recompute raises nothing new
    assert list(churn.new_warnings(risk(session), set(first), churn.WARNING_THRESHOLD)) == []


def test_previous_scores_end_an_episode_only_below_the_threshold():
    now = scores_of(kept=70, recrossed=65, first=60)
    before = pd.Series({"kept": 75, "recrossed": 40}, name="score")

    # "kept" was decided (no open warning) but never dropped below: not warned again
    assert list(churn.new_warnings(now, set(), 60, previous_scores=before)) == ["recrossed",
                                                                                "first"]
    assert list(churn.new_warnings(now, set(), 60)) == ["kept", "recrossed", "first"]


# -- analysis -------------------------------------------------------------------------------
def test_age_bands_at_their_boundaries():
    birthdays = pd.Series(pd.to_datetime([
        "2001-07-01", "2001-06-30",  # 24 / 25 on 2026-06-30
        "1996-07-01", "1996-06-30",  # 29 / 30
        "1991-07-01", "1991-06-30",  # 34 / 35
        "1986-07-01", "1986-06-30",  # 39 / 40
        None]))

    bands = churn.age_bands(birthdays, AS_OF)

    assert list(bands) == ["<25", "25-29", "25-29", "30-34", "30-34", "35-39", "35-39", "40+",
                           "unknown"]


def test_a_29_february_birthday_counts_from_1_march():
    born = pd.Series(pd.to_datetime(["2001-02-28", "2000-02-29"]))
    assert list(churn.ages(born, date(2025, 2, 28))) == [24.0, 24.0]
    assert list(churn.ages(born, date(2025, 3, 1))) == [24.0, 25.0]


def analysis_customers(session):
    """Tenants (stage first_time/repeat/churn_warning/churned) and two that are not counted.

    id  stage          churned_at   district  industry  source   born        reason / competitor
    c1  churned        2026-03-01   高新区     software  website  1996-05-01  price / 自如
    c2  churned        2026-05-10   高新区     finance   wechat   2003-01-01  price / (none)
    c3  churned        2025-12-31   锦江区     software  website  1980-01-01  moved away / 自如
    c4  churned        2025-06-30   锦江区     software  website  —           before the period
    c5  churned        2026-07-01   高新区     software  website  1996-05-01  after the period
    c6  repeat         —            锦江区     finance   website  1990-07-01
    c7  first_time     —            高新区     software  agent    1996-05-01
    c8  churn_warning  —            高新区     software  website  2001-06-30
    l1  potential      —  (a lead, never a tenant)
    n1  repeat, created 2026-07-02 (after the period)
    """
    add_customer(session, "c1", stage="churned", churned_at=at("2026-03-01"),
                 churn_reason="price", churn_competitor="自如")
    add_customer(session, "c2", stage="churned", churned_at=at("2026-05-10"),
                 industry="finance", source="wechat", birthday=date(2003, 1, 1),
                 churn_reason=" price ")
    add_customer(session, "c3", stage="churned", churned_at=at("2025-12-31"), district="锦江区",
                 birthday=date(1980, 1, 1), churn_reason="moved away", churn_competitor="自如")
    add_customer(session, "c4", stage="churned", churned_at=at("2025-06-30"), district="锦江区",
                 birthday=None, churn_reason="price")
    add_customer(session, "c5", stage="churned", churned_at=at("2026-07-01"),
                 churn_reason="price")
    add_customer(session, "c6", stage="repeat", district="锦江区", industry="finance",
                 birthday=date(1990, 7, 1))
    add_customer(session, "c7", stage="first_time", source="agent")
    add_customer(session, "c8", stage="churn_warning", birthday=date(2001, 6, 30))
    add_customer(session, "l1", stage="potential")
    add_customer(session, "n1", stage="repeat", created_at=at("2026-07-02"))


def test_churn_analysis_counts_and_rates_by_hand(session):
    analysis_customers(session)
    tiers = pd.Series({"c1": "key", "c2": "small", "c3": "key", "c6": "ordinary",
                       "c7": "key"})

    result = churn.analysis(frames.customers(session), tiers, as_of=AS_OF,
                            date_from=date(2025, 7, 1), date_to=date(2026, 6, 30))

    # churned in 2025-07-01 .. 2026-06-30: c1, c2, c3 (c4 before, c5 after)
    assert result["churned"] == 3
    # population: c1, c2, c3, c5 (churned after the period: at risk during it), c6, c7, c8
    assert result["customers"] == 7 and result["rate"] == round(3 / 7, 4) == 0.4286
    assert result["from"] == "2025-07-01" and result["to"] == "2026-06-30"
    assert result["by_reason"] == [{"reason": "price", "customers": 2, "share": 0.6667},
                                   {"reason": "moved away", "customers": 1, "share": 0.3333}]
    assert result["by_competitor"] == [{"competitor": "自如", "customers": 2, "share": 0.6667},
                                       {"competitor": "unknown", "customers": 1,
                                        "share": 0.3333}]
    by = result["by"]
    # 高新区: c1, c2, c5, c7, c8 → churned c1, c2: 2/5; 锦江区: c3, c6 → 1/2
    assert by["district"] == [
        {"group": "高新区", "customers": 5, "churned": 2, "rate": 0.4},
        {"group": "锦江区", "customers": 2, "churned": 1, "rate": 0.5}]
    # software: c1, c3, c5, c7, c8 → c1, c3: 2/5; finance: c2, c6 → c2: 1/2
    assert by["industry"] == [
        {"group": "software", "customers": 5, "churned": 2, "rate": 0.4},
        {"group": "finance", "customers": 2, "churned": 1, "rate": 0.5}]
    # website: c1, c3, c5, c6, c8 → 2/5; agent c7 0/1; wechat c2 1/1
    assert by["source"] == [
        {"group": "website", "customers": 5, "churned": 2, "rate": 0.4},
        {"group": "agent", "customers": 1, "churned": 0, "rate": 0.0},
        {"group": "wechat", "customers": 1, "churned": 1, "rate": 1.0}]
    # ages at 2026-06-30: c2 23 and c8 25 (born 2001-06-30), c1/c5/c7 30, c6 35, c3 46
    assert by["age_band"] == [
        {"group": "<25", "customers": 1, "churned": 1, "rate": 1.0},
        {"group": "25-29", "customers": 1, "churned": 0, "rate": 0.0},
        {"group": "30-34", "customers": 3, "churned": 1, "rate": 0.3333},
        {"group": "35-39", "customers": 1, "churned": 0, "rate": 0.0},
        {"group": "40+", "customers": 1, "churned": 1, "rate": 1.0}]
    # key: c1, c3, c7 → 2/3; small c2 1/1; ordinary c6 0/1; no tier: c5, c8 → unknown 0/2
    assert by["value_tier"] == [
        {"group": "key", "customers": 3, "churned": 2, "rate": 0.6667},
        {"group": "ordinary", "customers": 1, "churned": 0, "rate": 0.0},
        {"group": "small", "customers": 1, "churned": 1, "rate": 1.0},
        {"group": "unknown", "customers": 2, "churned": 0, "rate": 0.0}]


def test_churn_analysis_defaults_and_without_tiers(session):
    analysis_customers(session)

    result = churn.analysis(frames.customers(session), as_of=AS_OF)

    # the 365 days before as_of: 2025-06-30 .. 2026-06-30, so c4 counts too
    assert result["from"] == "2025-06-30" and result["to"] == "2026-06-30"
    assert result["churned"] == 4
    assert result["by"]["value_tier"] == []
    assert result["by"]["age_band"][-1] == {"group": "unknown", "customers": 1, "churned": 1,
                                            "rate": 1.0}


def test_churn_analysis_of_an_empty_period(session):
    add_customer(session, "c6", stage="repeat")

    result = churn.analysis(frames.customers(session), None, AS_OF, date(2026, 1, 1),
                            date(2026, 1, 31))

    assert result["churned"] == 0 and result["by_reason"] == [] and result["rate"] == 0.0
    assert result["by"]["district"] == [{"group": "高新区", "customers": 1, "churned": 0,
                                         "rate": 0.0}]
    with pytest.raises(InvalidInput):
        churn.analysis(frames.customers(session), None, AS_OF, date(2026, 2, 1),
                       date(2026, 1, 31))
