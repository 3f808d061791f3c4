"""Segmentation by clustering ([001] 篇1 steps 4-5): k-means over chosen features per customer,
with an evaluation of the result (silhouette, segment sizes, profiles in plain words).

Pure functions: ``feature_frame`` builds one row per customer from the DataFrames of ``frames``
(and the score run's scores); ``run`` clusters it. No database, no nameko.

``run``: the features are standardised (``StandardScaler``: mean 0, standard deviation 1, so no
feature weighs more for its units) and clustered with ``KMeans(n_init=10, random_state=seed)``
— the labels are exactly sklearn's on the standardised data. Without ``k`` every k in
``k_min`` .. ``k_max`` (at most customers − 1, at most the number of distinct rows) is tried and
the one with the best silhouette kept (the smallest k on a tie). For speed the search runs on a
seeded sample of ``SEARCH_SAMPLE`` customers when there are more (then the chosen k is fitted on
everyone), and each silhouette on a seeded sample of at most ``SILHOUETTE_SAMPLE`` (the same
sample for every k): 100,000 customers take seconds, not minutes.

A profile describes each cluster by its centroid's z-scores: above +0.5 is "high", below −0.5
"low" (``WORDS``), strongest first, and names the pattern when it is a known one
(``ARCHETYPES``), e.g. "high monetary, recent, frequent: best customers".
"""
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from analytics_service.clock import DAY, ages, days_of, start_of, to_day
from crm_kit.errors import InvalidInput

#: the k search fits at most this many customers (a seeded sample), then the chosen k everyone
SEARCH_SAMPLE = 10_000
#: silhouettes are computed on a seeded sample of at most this many customers
SILHOUETTE_SAMPLE = 5_000
#: |z| of a centroid beyond which a feature is called high or low
Z_WORD = 0.5
TICKET_WINDOW_DAYS = 365

#: the features a cluster run may use, and how each is computed (``feature_frame``)
FEATURES = {
    "recency_days": "days from the last payment to as_of (the score run's recency_days, else "
                    "from payments); never paid → the longest recency among the customers",
    "frequency": "number of payments (the score run's, else counted); 0 without any",
    "monetary": "yuan paid in all (the score run's monetary_cents / 100, else summed); 0",
    "clv": "customer lifetime value in yuan (the score run's clv_cents / 100); 0 when not scored",
    "tenure_days": "days from the start of the first lease (without a lease: created_at) to "
                   "as_of, at least 0",
    "tickets": f"tickets created in the last {TICKET_WINDOW_DAYS} days; 0",
    "complaints": f"complaint tickets created in the last {TICKET_WINDOW_DAYS} days; 0",
    "average_rating": "mean rating (1-5) of the customer's rated tickets; none rated → the mean "
                      "of every rating (3 when nobody rated)",
    "age": "full years at as_of from the birthday; unknown (companies too) → the median age "
           "(0 when nobody's is known)",
    "monthly_rent": "monthly rent in yuan of the customer's latest lease (by start date); 0 "
                    "without a lease",
}

#: (high, low) words per feature for the profiles
WORDS = {
    "recency_days": ("long since paying", "recent"),
    "frequency": ("frequent", "infrequent"),
    "monetary": ("high monetary", "low monetary"),
    "clv": ("high CLV", "low CLV"),
    "tenure_days": ("long tenure", "new"),
    "tickets": ("many tickets", "few tickets"),
    "complaints": ("many complaints", "few complaints"),
    "average_rating": ("satisfied", "dissatisfied"),
    "age": ("older", "younger"),
    "monthly_rent": ("high rent", "low rent"),
}


def _valuable(h, low):
    return h("monetary") or h("clv") or h("monthly_rent")


def _unhappy(h, low):
    return h("complaints") or low("average_rating")


#: (test, name) in order; the first that matches a centroid names it. ``h(f)`` / ``low(f)``:
#: the feature is high / low in this cluster (False when it is not clustered on)
ARCHETYPES = (
    (lambda h, low: _unhappy(h, low) and _valuable(h, low),
     "valuable but unhappy: fix their service first"),
    (_unhappy, "unhappy: service recovery"),
    (lambda h, low: _valuable(h, low) and h("recency_days"), "valuable, slipping away: win back"),
    (lambda h, low: _valuable(h, low) and (low("recency_days") or h("frequency")),
     "best customers"),
    (lambda h, low: h("recency_days") and (low("frequency") or low("monetary") or low("clv")),
     "lapsed"),
    (lambda h, low: low("tenure_days"), "newcomers"),
    (_valuable, "high value"),
    (lambda h, low: low("monetary") or low("clv") or low("monthly_rent"), "low value"),
)
TYPICAL = "close to average on every feature: typical customers"


def _invalid(field, message):
    return InvalidInput({field: [message]})


def check_features(features):
    """The feature names as a list; empty, unknown or repeated → ``InvalidInput`` on
    ``features``."""
    if isinstance(features, str) or not features:
        raise _invalid("features", "Choose at least one feature of: " + ", ".join(FEATURES))
    features = list(features)
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise _invalid("features", f"Unknown feature(s): {', '.join(map(str, unknown))}; "
                                   f"choose from {', '.join(FEATURES)}.")
    if len(set(features)) != len(features):
        raise _invalid("features", "A feature is listed twice.")
    return features


# -- the features ---------------------------------------------------------------------------
def _score_column(scores, names, divide=1):
    """The first of ``names`` in ``scores`` as float (divided), or None."""
    if scores is None:
        return None
    for name in names:
        if name in scores:
            return pd.to_numeric(scores[name].astype(object), errors="coerce").astype(
                "float64") / divide
    return None


def feature_frame(frames=None, scores=None, features=None, as_of=None, *, customers=None,
                  leases=None, payments=None, tickets=None):
    """One row per customer to cluster, one float column per feature (in the order asked).

    ``frames``: a mapping with ``customers``, ``leases``, ``payments`` and (for tickets,
    complaints, average_rating) ``tickets`` — the DataFrames of ``frames`` — or give them as
    keywords. ``scores``: the score run's DataFrame (indexed by or with a ``customer_id``;
    ``recency_days``, ``frequency``, ``monetary_cents``, ``clv_cents``), needed for ``clv``; RFM
    features are computed from payments when it is missing. ``as_of``: a date (default today).

    The customers clustered are the non-erased, non-archived ones with at least one lease or
    payment (tenants and former tenants; leads would only form a cluster of zeros). Missing
    values are filled as ``FEATURES`` says, so the frame has no NA.
    """
    features = check_features(features)
    given = dict(frames or {}) if isinstance(frames, Mapping) or frames is None else None
    if given is None:
        raise TypeError("frames must be a mapping of DataFrames (or pass them as keywords)")
    for name, frame in (("customers", customers), ("leases", leases), ("payments", payments),
                        ("tickets", tickets)):
        if frame is not None:
            given[name] = frame
    needed = ["customers", "leases", "payments"]
    if {"tickets", "complaints", "average_rating"} & set(features):
        needed.append("tickets")
    missing = [name for name in needed if given.get(name) is None]
    if missing:
        raise TypeError(f"feature_frame needs the frames {', '.join(missing)}")
    if "clv" in features and _score_column(scores, ("clv_cents", "clv")) is None:
        raise _invalid("features", "clv needs a score run: recompute the scores first.")
    people, leases, payments = given["customers"], given["leases"], given["payments"]
    day = to_day(as_of if as_of is not None else pd.Timestamp.now(tz="UTC"))
    end = start_of(day + DAY)

    paid_at = pd.to_datetime(payments["paid_at"], utc=True)
    payments = payments[paid_at < end]  # nothing after as_of
    active = ~(people["erased"].fillna(False).astype(bool)
               | people["archived"].fillna(False).astype(bool))
    tenant = (people["customer_id"].isin(leases["customer_id"])
              | people["customer_id"].isin(payments["customer_id"]))
    people = people[active & tenant]
    ids = pd.Index(people["customer_id"], name="customer_id")
    if scores is not None and "customer_id" in scores and scores.index.name != "customer_id":
        scores = scores.set_index("customer_id")
    if scores is not None:
        scores = scores.reindex(ids)
    paid = payments[payments["customer_id"].isin(ids)]
    by_customer = paid.groupby("customer_id")

    out = pd.DataFrame(index=ids)
    for feature in features:
        if feature == "recency_days":
            value = _score_column(scores, ("recency_days",))
            if value is None:
                last = days_of(by_customer["paid_at"].max())
                value = ((day - last).dt.days.astype("float64")).reindex(ids)
            value = value.fillna(value.max() if value.notna().any() else 0.0)
        elif feature == "frequency":
            value = _score_column(scores, ("frequency",))
            if value is None:
                value = by_customer.size().astype("float64").reindex(ids)
            value = value.fillna(0.0)
        elif feature == "monetary":
            value = _score_column(scores, ("monetary_cents",), divide=100)
            if value is None:
                value = _score_column(scores, ("monetary",))
            if value is None:
                value = (by_customer["amount_cents"].sum().astype("float64") / 100).reindex(ids)
            value = value.fillna(0.0)
        elif feature == "clv":
            value = _score_column(scores, ("clv_cents",), divide=100)
            if value is None:
                value = _score_column(scores, ("clv",))
            value = value.fillna(0.0)
        elif feature == "tenure_days":
            first = leases.assign(start=pd.to_datetime(leases["start_date"]).dt.normalize()
                                  ).groupby("customer_id")["start"].min().reindex(ids)
            created = pd.Series(days_of(people["created_at"]).to_numpy(), index=ids)
            since = first.fillna(created)
            value = (day - since).dt.days.astype("float64").clip(lower=0).fillna(0.0)
        elif feature in ("tickets", "complaints"):
            found = given["tickets"]
            created = pd.to_datetime(found["created_at"], utc=True)
            recent = (created >= start_of(day - (TICKET_WINDOW_DAYS - 1) * DAY)) & (created < end)
            if feature == "complaints":
                recent &= found["type"].eq("complaint")
            value = (found[recent].groupby("customer_id").size().reindex(ids)
                     .fillna(0).astype("float64"))
        elif feature == "average_rating":
            found = given["tickets"]
            rating = pd.to_numeric(found["rating"], errors="coerce")
            rated = found.assign(rating_=rating)[rating.notna()]
            value = rated.groupby("customer_id")["rating_"].mean().reindex(ids).astype("float64")
            value = value.fillna(float(rating.mean()) if rating.notna().any() else 3.0)
        elif feature == "age":
            value = pd.Series(ages(people["birthday"], day).to_numpy(), index=ids)
            value = value.fillna(float(value.median()) if value.notna().any() else 0.0)
        else:  # monthly_rent
            latest = leases[leases["customer_id"].isin(ids)].sort_values(
                ["customer_id", "start_date"], kind="stable").groupby("customer_id").tail(1)
            value = (latest.set_index("customer_id")["monthly_rent_cents"].astype("float64")
                     / 100).reindex(ids).fillna(0.0)
        out[feature] = value.to_numpy(dtype="float64")
    return out


# -- clustering -----------------------------------------------------------------------------
def _whole(value, field, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise _invalid(field, f"Must be a whole number, at least {low}.")
    return int(value)


def describe(z_scores):
    """Plain words for one centroid (``{feature: z}``): its high/low features, strongest first,
    and the archetype's name when one matches."""
    strong = sorted(((f, z) for f, z in z_scores.items() if abs(z) > Z_WORD),
                    key=lambda fz: (-abs(fz[1]), list(FEATURES).index(fz[0])))
    if not strong:
        return TYPICAL
    words = [WORDS[f][0] if z > 0 else WORDS[f][1] for f, z in strong]
    high = {f for f, z in strong if z > 0}
    low = {f for f, z in strong if z < 0}
    name = next((label for test, label in ARCHETYPES
                 if test(high.__contains__, low.__contains__)), None)
    return ", ".join(words) + (f": {name}" if name else "")


def _silhouette(scaled, labels, seed):
    """sklearn's silhouette, on a seeded sample of ``SILHOUETTE_SAMPLE`` rows when there are
    more; None when the labels are all one cluster."""
    if len(np.unique(labels)) < 2:
        return None
    sample = SILHOUETTE_SAMPLE if len(scaled) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(scaled, labels, sample_size=sample, random_state=seed))


def _fit(scaled, k, seed):
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(scaled)
    silhouette = _silhouette(scaled, model.labels_, seed)
    return model, silhouette, {"k": k,
                               "silhouette": None if silhouette is None else round(silhouette, 4),
                               "inertia": round(float(model.inertia_), 2)}


def run(features_frame, k=None, k_min=2, k_max=8, seed=42):
    """Cluster the customers of ``features_frame`` (rows indexed by customer_id, one column per
    feature of ``FEATURES``, no NA — see ``feature_frame``).

    Returns ``(labels, evaluation)``: ``labels`` a Series of cluster numbers (0 … k−1, int) by
    customer_id — sklearn's ``KMeans(k, n_init=10, random_state=seed)`` labels of the
    standardised features; ``evaluation`` ``{k, silhouette, sizes: [{cluster, customers,
    share}], profiles: [{cluster, size, means: {feature: mean in its own units}, z_scores:
    {feature: centroid z}, description}], search: [{k, silhouette, inertia}], search_sample}``.

    Without ``k``, each k of ``k_min`` .. ``k_max`` is fitted and the best silhouette wins (the
    smallest k on a tie). With more than ``SEARCH_SAMPLE`` customers the search runs on a seeded
    sample of that many (``search_sample`` says how many it used) and the chosen k is then
    fitted on everyone; ``search`` lists every k tried (just ``k`` when it is given). Every
    silhouette is sklearn's, on a seeded sample of at most ``SILHOUETTE_SAMPLE`` customers.
    Rounded: silhouette and share to 4 places, means, z-scores and inertia to 2.

    Refused (``InvalidInput``): an unknown or repeated feature or missing values
    (``features``); k below 2, or more clusters than customers − 1 or than customers with
    different features (``k``); bad ``k_min`` / ``k_max`` / ``seed``.
    """
    features = check_features(list(features_frame.columns))
    values = features_frame.to_numpy(dtype="float64")
    finite = np.isfinite(values)
    if not finite.all():
        bad = [f for f, ok in zip(features, finite.all(axis=0)) if not ok]
        raise _invalid("features", f"Missing values in {', '.join(bad)}.")
    n = len(values)
    distinct = len(np.unique(values, axis=0)) if n else 0
    seed = _whole(seed, "seed", 0)
    if k is not None:
        k = _whole(k, "k", 2)
        if n < k + 1:
            raise _invalid("k", f"{k} clusters need at least {k + 1} customers; there are {n}.")
        if distinct < k:
            raise _invalid("k", f"{k} clusters need {k} customers with different features; "
                                f"there are {distinct}.")
    else:
        k_min = _whole(k_min, "k_min", 2)
        k_max = _whole(k_max, "k_max", 2)
        if k_max < k_min:
            raise _invalid("k_max", "Must not be below k_min.")
        if min(n - 1, distinct) < k_min:
            raise _invalid("k", f"{k_min} clusters need at least {k_min + 1} customers with "
                                f"different features; there are {n} ({distinct} different).")

    scaled = StandardScaler().fit_transform(values)
    search, model, silhouette = [], None, None
    sample_size = n
    if k is None:
        data = scaled
        if n > SEARCH_SAMPLE:
            pick = np.sort(np.random.RandomState(seed).choice(n, SEARCH_SAMPLE, replace=False))
            data, sample_size = scaled[pick], SEARCH_SAMPLE
        upper = min(k_max, len(data) - 1, len(np.unique(data, axis=0)))
        best = None
        for candidate in range(k_min, max(upper, k_min) + 1):
            fitted, score, row = _fit(data, candidate, seed)
            search.append(row)
            if best is None or (score is not None and (best[1] is None or score > best[1])):
                best = (fitted, score)
        if sample_size == n:
            model, silhouette = best
        else:
            k = best[0].n_clusters
    if model is None:
        model, silhouette, row = _fit(scaled, k, seed)
        if not search:
            search.append(row)
    labels = pd.Series(model.labels_.astype("int64"), index=features_frame.index, name="cluster")

    counts = np.bincount(model.labels_, minlength=model.n_clusters)
    sums = np.zeros((model.n_clusters, len(features)))
    np.add.at(sums, model.labels_, values)
    sizes, profiles = [], []
    for cluster in range(model.n_clusters):
        size = int(counts[cluster])
        centre = dict(zip(features, model.cluster_centers_[cluster].tolist()))
        sizes.append({"cluster": cluster, "customers": size, "share": round(size / n, 4)})
        profiles.append({
            "cluster": cluster, "size": size,
            "means": {f: round(float(v) / size, 2) if size else None
                      for f, v in zip(features, sums[cluster])},
            "z_scores": {f: round(z, 2) for f, z in centre.items()},
            "description": describe(centre),
        })
    evaluation = {"k": int(model.n_clusters),
                  "silhouette": None if silhouette is None else round(silhouette, 4),
                  "sizes": sizes, "profiles": profiles, "search": search,
                  "search_sample": sample_size}
    return labels, evaluation
