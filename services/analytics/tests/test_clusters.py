"""Clustering: well-separated blobs are found and described, runs are deterministic and equal
sklearn's KMeans on the standardised data, the feature frame is computed by hand, bad input is
refused naming the field."""
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from analytics_fixtures import add_customer, add_lease, add_payment, add_ticket, at
from analytics_service import clusters, frames
from crm_kit.errors import InvalidInput

AS_OF = date(2026, 6, 30)

#: three blobs: best customers (high monetary, recent, frequent), lapsed (low monetary, long
#: since paying, infrequent) and a middle one (each z-score within ±0.5: typical)
CENTRES = {"best": (5.0, 24.0, 50_000.0), "lapsed": (300.0, 2.0, 2_000.0),
           "middle": (120.0, 10.0, 20_000.0)}
SPREAD = (3.0, 1.0, 1_000.0)
COLUMNS = ["recency_days", "frequency", "monetary"]


def blobs(per_blob=60, seed=7):
    rng = np.random.default_rng(seed)
    rows, names, truth = [], [], []
    for name, centre in CENTRES.items():
        rows.append(np.asarray(centre) + rng.standard_normal((per_blob, 3)) * SPREAD)
        truth += [name] * per_blob
    ids = [f"cust-{i:04d}" for i in range(per_blob * len(CENTRES))]
    frame = pd.DataFrame(np.vstack(rows), columns=COLUMNS,
                         index=pd.Index(ids, name="customer_id"))
    return frame, pd.Series(truth, index=frame.index)


def test_the_search_finds_the_three_blobs_and_describes_them():
    frame, truth = blobs()

    labels, evaluation = clusters.run(frame)

    assert evaluation["k"] == 3
    assert evaluation["silhouette"] > 0.7
    assert [row["k"] for row in evaluation["search"]] == list(range(2, 9))
    best = max(evaluation["search"], key=lambda row: row["silhouette"])
    assert best["k"] == 3 and best["silhouette"] == evaluation["silhouette"]
    inertias = [row["inertia"] for row in evaluation["search"]]
    assert inertias == sorted(inertias, reverse=True)  # more clusters, less inertia
    assert evaluation["search_sample"] == 180
    # each blob is exactly one cluster
    assert pd.crosstab(labels, truth).gt(0).sum(axis=1).eq(1).all()
    assert labels.index.equals(frame.index) and labels.dtype == "int64"
    assert evaluation["sizes"] == [{"cluster": c, "customers": 60, "share": 0.3333}
                                   for c in range(3)]

    by_blob = {truth[labels == p["cluster"]].iloc[0]: p for p in evaluation["profiles"]}
    assert by_blob["best"]["description"].endswith(": best customers")
    words = set(by_blob["best"]["description"].split(": ")[0].split(", "))
    assert words == {"high monetary", "recent", "frequent"}
    lapsed = by_blob["lapsed"]["description"]
    assert set(lapsed.split(": ")[0].split(", ")) == {"low monetary", "long since paying",
                                                       "infrequent"}
    assert lapsed.endswith(": lapsed")
    assert by_blob["middle"]["description"] == clusters.TYPICAL
    # means in the features' own units, near the centres they were drawn around
    for name, profile in by_blob.items():
        assert profile["size"] == 60
        for feature, centre, spread in zip(COLUMNS, CENTRES[name], SPREAD):
            assert abs(profile["means"][feature] - centre) < spread
    assert by_blob["best"]["z_scores"]["monetary"] > 0.5
    assert by_blob["lapsed"]["z_scores"]["recency_days"] > 0.5


def test_a_run_is_deterministic_with_its_seed():
    frame, _ = blobs(per_blob=40, seed=3)

    first = clusters.run(frame, k_max=5, seed=11)
    second = clusters.run(frame, k_max=5, seed=11)

    assert first[0].equals(second[0])
    assert first[1] == second[1]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_labels_are_sklearns_kmeans_on_the_standardised_features(k):
    frame, _ = blobs(per_blob=30, seed=5)
    frame = frame.assign(monetary=frame["monetary"] + np.linspace(0, 5_000, len(frame)))

    labels, evaluation = clusters.run(frame, k=k, seed=42)

    scaled = StandardScaler().fit_transform(frame.to_numpy())
    reference = KMeans(n_clusters=k, n_init=10, random_state=42).fit(scaled)
    assert (labels.to_numpy() == reference.labels_).all()
    assert evaluation["k"] == k
    assert evaluation["search"] == [{"k": k,
                                     "silhouette": round(silhouette_score(scaled,
                                                                          reference.labels_), 4),
                                     "inertia": round(reference.inertia_, 2)}]
    assert evaluation["silhouette"] == evaluation["search"][0]["silhouette"]
    for profile in evaluation["profiles"]:
        members = frame[labels == profile["cluster"]]
        assert profile["means"] == {f: round(members[f].mean(), 2) for f in COLUMNS}
        assert profile["z_scores"] == {
            f: round(z, 2) for f, z in zip(COLUMNS, reference.cluster_centers_[profile["cluster"]])}


def test_many_customers_search_a_sample_then_fit_everyone(monkeypatch):
    monkeypatch.setattr(clusters, "SEARCH_SAMPLE", 600)  # (10,000 and 5,000: the same, slower)
    monkeypatch.setattr(clusters, "SILHOUETTE_SAMPLE", 400)
    rng = np.random.default_rng(1)
    n = 1_000
    centres = np.array([[0, 0], [10, 10]])
    frame = pd.DataFrame(centres[rng.integers(0, 2, n)] + rng.standard_normal((n, 2)),
                         columns=["tickets", "age"])

    labels, evaluation = clusters.run(frame, k_min=2, k_max=3, seed=42)

    assert evaluation["k"] == 2 and evaluation["search_sample"] == 600
    assert [row["k"] for row in evaluation["search"]] == [2, 3]
    scaled = StandardScaler().fit_transform(frame.to_numpy())
    reference = KMeans(n_clusters=2, n_init=10, random_state=42).fit(scaled)
    assert (labels.to_numpy() == reference.labels_).all()
    assert evaluation["silhouette"] == round(silhouette_score(
        scaled, reference.labels_, sample_size=400, random_state=42), 4)


def test_describe_in_plain_words():
    assert clusters.describe({"recency_days": -0.9, "frequency": 0.7, "monetary": 1.2}) == (
        "high monetary, recent, frequent: best customers")
    assert clusters.describe({"complaints": 2.0, "average_rating": -1.0}) == (
        "many complaints, dissatisfied: unhappy: service recovery")
    assert clusters.describe({"clv": 1.5, "recency_days": 0.8}) == (
        "high CLV, long since paying: valuable, slipping away: win back")
    assert clusters.describe({"tenure_days": -1.1, "age": -0.6}) == "new, younger: newcomers"
    assert clusters.describe({"age": 0.9}) == "older"  # no archetype: the words alone
    assert clusters.describe({"age": 0.5, "monetary": -0.5}) == clusters.TYPICAL  # not beyond


# -- refused --------------------------------------------------------------------------------
def details(call):
    with pytest.raises(InvalidInput) as raised:
        call()
    return raised.value.details


def test_invalid_runs_are_refused_naming_the_field():
    frame, _ = blobs(per_blob=2)  # 6 customers

    assert "features" in details(lambda: clusters.run(frame.rename(columns={"monetary": "x"})))
    assert "features" in details(lambda: clusters.run(frame[[]]))
    with_na = frame.copy()
    with_na.iloc[0, 0] = np.nan
    assert "features" in details(lambda: clusters.run(with_na))
    assert "k" in details(lambda: clusters.run(frame, k=6))  # needs 7 customers
    assert "k" in details(lambda: clusters.run(frame, k=1))
    assert "k" in details(lambda: clusters.run(frame, k=2.5))
    assert "k" in details(lambda: clusters.run(frame.iloc[:2]))  # k_min 2 needs 3
    same = pd.DataFrame({"age": [30.0] * 5, "tickets": [1.0] * 5})
    assert "k" in details(lambda: clusters.run(same, k=2))  # one distinct customer
    assert "k_max" in details(lambda: clusters.run(frame, k_min=4, k_max=3))
    assert "k_min" in details(lambda: clusters.run(frame, k_min=1))
    # k = customers − 1 is the most allowed; the search stops there too
    assert clusters.run(frame, k=5)[1]["k"] == 5
    assert [row["k"] for row in clusters.run(frame)[1]["search"]] == [2, 3, 4, 5]


def test_unknown_or_repeated_features_are_refused():
    for features in ([], "age", ["age", "shoe_size"], ["age", "age"]):
        assert "features" in details(lambda: clusters.check_features(features))
    assert clusters.check_features(("age", "clv")) == ["age", "clv"]
    assert len(clusters.FEATURES) == 10


# -- the feature frame ----------------------------------------------------------------------
def feature_facts(session):
    """Two tenants, a lead (no lease or payment), an erased tenant; as_of 2026-06-30.

    t1: born 1996-05-01 (30), leases from 2025-01-01 (3000.00) and 2026-01-01 (3500.00, the
        latest), payments 3000.00 on 06-01 and 2500.00 on 06-20 (recency 10), a complaint on
        06-01 rated 1, a repair on 2025-09-01 rated 4, a repair on 2025-06-30 (day 366: out);
        a payment of 99.00 on 07-01 is after as_of.
    t2: a company (no birthday), created 2026-03-02, no lease, one payment 800.00 on 2026-04-01
        (recency 90), no ticket.
    """
    add_customer(session, "t1", stage="repeat", created_at=at("2024-06-01"))
    add_lease(session, "t1", "2025-01-01", "2025-12-31", status="renewed")
    add_lease(session, "t1", "2026-01-01", "2026-12-31", monthly_rent="3500.00")
    add_payment(session, "t1", "3000.00", "2026-06-01")
    add_payment(session, "t1", "2500.00", "2026-06-20")
    add_payment(session, "t1", "99.00", "2026-07-01")
    add_ticket(session, "t1", "2026-06-01", type="complaint", rating=1, rated_at=at("2026-06-02"))
    add_ticket(session, "t1", "2025-09-01", rating=4, rated_at=at("2025-09-02"))
    add_ticket(session, "t1", "2025-06-30")
    add_customer(session, "t2", kind="company", birthday=None, stage="first_time",
                 created_at=at("2026-03-02"))
    add_payment(session, "t2", "800.00", "2026-04-01")
    add_customer(session, "lead")
    add_customer(session, "gone", stage="repeat", erased=True)
    add_payment(session, "gone", "100.00", "2026-06-01")


def load(session):
    return {"customers": frames.customers(session), "leases": frames.leases(session),
            "payments": frames.payments(session), "tickets": frames.tickets(session)}


def test_feature_frame_by_hand_from_payments(session):
    feature_facts(session)

    frame = clusters.feature_frame(load(session), None,
                                   [f for f in clusters.FEATURES if f != "clv"], AS_OF)

    assert list(frame.index) == ["t1", "t2"] and frame.index.name == "customer_id"
    assert frame.loc["t1"].to_dict() == {
        "recency_days": 10.0, "frequency": 2.0, "monetary": 5500.0,
        "tenure_days": 545.0,  # 2025-01-01 → 2026-06-30
        "tickets": 2.0, "complaints": 1.0, "average_rating": 2.5, "age": 30.0,
        "monthly_rent": 3500.0}
    assert frame.loc["t2"].to_dict() == {
        "recency_days": 90.0, "frequency": 1.0, "monetary": 800.0,
        "tenure_days": 120.0,  # created 2026-03-02 → 06-30
        "tickets": 0.0, "complaints": 0.0,
        "average_rating": 2.5,  # nobody else rated: the mean of every rating, (1 + 4) / 2
        "age": 30.0,  # unknown: the median age
        "monthly_rent": 0.0}
    assert not frame.isna().any().any()


def test_feature_frame_takes_rfm_and_clv_from_the_scores(session):
    feature_facts(session)
    scores = pd.DataFrame({"recency_days": pd.array([10, None], dtype="Int64"),
                           "frequency": [2, 0], "monetary_cents": [550000, 0],
                           "clv_cents": [1234567, 0]},
                          index=pd.Index(["t1", "t2"], name="customer_id"))

    frame = clusters.feature_frame(
        customers=frames.customers(session), leases=frames.leases(session),
        payments=frames.payments(session), scores=scores,
        features=["clv", "monetary", "recency_days", "frequency"], as_of=AS_OF)

    assert list(frame.columns) == ["clv", "monetary", "recency_days", "frequency"]
    assert frame.loc["t1"].to_dict() == {"clv": 12345.67, "monetary": 5500.0,
                                         "recency_days": 10.0, "frequency": 2.0}
    # never paid (per the scores): the longest recency
    assert frame.loc["t2", "recency_days"] == 10.0


def test_feature_frame_refusals(session):
    feature_facts(session)
    f = load(session)

    assert "features" in details(lambda: clusters.feature_frame(f, None, ["clv"], AS_OF))
    assert "features" in details(lambda: clusters.feature_frame(f, None, ["height"], AS_OF))
    with pytest.raises(TypeError):
        clusters.feature_frame({"customers": f["customers"]}, None, ["age"], AS_OF)


def test_feature_frame_and_run_together(session):
    for i in range(6):
        add_customer(session, f"c{i}", stage="repeat")
        add_payment(session, f"c{i}", "1000.00" if i < 3 else "9000.00", "2026-06-01")

    frame = clusters.feature_frame(load(session), None, ["monetary", "frequency"], AS_OF)
    labels, evaluation = clusters.run(frame)

    assert evaluation["k"] == 2
    assert labels.loc["c0"] == labels.loc["c2"] != labels.loc["c3"] == labels.loc["c5"]
