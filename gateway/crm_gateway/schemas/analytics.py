"""Analytics payloads (the analytics service): scores, RFM and CLV lists, the CLV parameters,
score runs (recompute), cluster runs, churn warnings and the reports.

Query strings are checked here, before the service is asked: dates are ``YYYY-MM-DD`` (a real
day), enumerations (``granularity``, ``by``, ``status``, ``value_tier``, ``segment``) and RFM
scores (1-5) are refused with a 422 naming the parameter, ``per_page`` is at most 200. The
service checks what depends on its data (``to`` before ``from``, a period of more than ten
years, features and k of a clustering).

Bodies: as for the other services, the service is the one authority on values
(``schemas/customers.py``): ``POST /analytics/clusters`` and ``PUT /analytics/clv/parameters``
are checked for their JSON types here and passed on whole, so one 422 from the service names
every bad field. ``POST /analytics/recompute``, whose one value the RPC takes alone
(``as_of``), refuses unknown fields here.

Money (``monetary``, ``clv``, revenues, contract values, the acquisition cost) is a decimal
string in CNY with two places, in and out, never a float. Rates and shares are numbers 0-1
(rounded to 4 places by the service); the CLV ``discount_rate`` and the ``tier_shares`` are
decimal strings, as the service keeps them. Ids are strings (a score run's number too).
"""
import re
from datetime import date

import marshmallow as ma
from marshmallow import fields, validate

from crm_gateway.schemas.common import (Body, DictSchema, Id, PageQuery, Value, date_field,
                                         instant_field, int_field, one_of_text, page_of,
                                         text_field)
from crm_gateway.schemas.leasing import Money

VALUE_TIERS = ("key", "important", "ordinary", "small")
#: the RFM segments (the service's ``rfm.SEGMENTS``, best first)
RFM_SEGMENTS = ("champions", "loyal", "potential_loyalist", "new_customers", "promising",
                "need_attention", "about_to_sleep", "at_risk", "cant_lose", "hibernating",
                "lost", "no_purchase")
GRANULARITIES = ("month", "quarter", "year")
COMPOSITION_BY = ("district", "industry", "source", "age_band", "value_tier", "stage")
WARNING_STATUSES = ("open", "kept", "churned")
RUN_STATUSES = ("requested", "running", "done", "failed")
#: what a cluster run may use (the service's ``clusters.FEATURES``)
CLUSTER_FEATURES = ("recency_days", "frequency", "monetary", "clv", "tenure_days", "tickets",
                    "complaints", "average_rating", "age", "monthly_rent")
CHURN_REASON_CODES = ("lease_ending", "overdue_bills", "complaints", "low_rating",
                      "falling_activity")
SENTIMENTS = ("positive", "neutral", "negative")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Day(fields.String):
    """A date as ``YYYY-MM-DD`` (a real day), kept as that text for the service."""

    default_error_messages = {"invalid_day": "must be a date like 2026-03-31"}

    def __init__(self, description=None, **kwargs):
        metadata = {"format": "date", **({"description": description} if description else {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            if not _DAY.match(text):
                raise ValueError(text)
            date.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid_day") from None
        return text


def _score_field():
    return fields.Integer(validate=validate.Range(1, 5), metadata={"description": "1-5"})


# ---------------------------------------------------------------- input: queries

class PeriodQuery(ma.Schema):
    """A report's period: ``from``/``to``, both inclusive; default the 12 whole months up to
    today (the business's clock, Chengdu). Loaded under the service's names (``from``,
    ``to``)."""

    date_from = Day("first day (inclusive)", data_key="from", attribute="from")
    date_to = Day("last day (inclusive); not before from; at most ten years after it",
                  data_key="to", attribute="to")


class TrendQuery(PeriodQuery):
    granularity = fields.String(validate=validate.OneOf(GRANULARITIES), metadata={
        "description": "default month; " + one_of_text(GRANULARITIES)})


class CompositionQuery(ma.Schema):
    by = fields.String(load_default="district", validate=validate.OneOf(COMPOSITION_BY),
                       metadata={"description": one_of_text(COMPOSITION_BY)})


class RfmQuery(PageQuery):
    segment = fields.String(validate=validate.OneOf(RFM_SEGMENTS))
    value_tier = fields.String(validate=validate.OneOf(VALUE_TIERS))
    r = _score_field()
    f = _score_field()
    m = _score_field()


class ClvQuery(PageQuery):
    value_tier = fields.String(validate=validate.OneOf(VALUE_TIERS))


class WarningQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(WARNING_STATUSES))
    customer_id = fields.String()


# ---------------------------------------------------------------- input: bodies

class RecomputeInSchema(Value):
    as_of = Day("the day the scores are as of (default: today on the business's clock)",
                allow_none=True)


class ClusterRequestSchema(Body):
    """A k-means clustering of the current customers: ``features`` (1-10, no repeats) and
    either ``k`` or a range ``k_min``..``k_max`` (default 2..8) of which the best silhouette
    wins."""

    features = fields.List(fields.String(), allow_none=True, metadata={
        "description": "required; 1-10 of: " + ", ".join(CLUSTER_FEATURES),
        "example": ["recency_days", "frequency", "monetary"]})
    k = int_field("the number of clusters, 2-20 (then no search)")
    k_min = int_field("the smallest k to try, 2-20; default 2")
    k_max = int_field("the largest k to try, 2-20; default 8")


class ClvParametersInSchema(Body):
    """The CLV parameters the next recompute uses; a field left out keeps its value."""

    acquisition_cost = Money("what winning a customer costs (CNY)", allow_none=True)
    discount_rate = text_field("yearly, a decimal string 0-1 (at most 6 places), e.g. \"0.08\"")
    horizon_years = int_field("years of future value counted, 1-30")
    tier_shares = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True,
                              metadata={
                                  "description": "the value tiers' cumulative shares of the "
                                                 "total CLV, decimal strings, increasing: key, "
                                                 "important, ordinary (small is the rest)",
                                  "example": {"key": "0.5", "important": "0.8",
                                              "ordinary": "0.95"}})


# ---------------------------------------------------------------- output: scores

class ChurnReasonSchema(DictSchema):
    code = fields.String(metadata={"enum": list(CHURN_REASON_CODES)})
    detail = fields.String(allow_none=True)


def _rfm_fields():
    return {
        "recency_days": fields.Integer(allow_none=True, metadata={
            "description": "days since the last payment (null: never paid)"}),
        "frequency": fields.Integer(metadata={"description": "payments (deposits are not "
                                                             "revenue)"}),
        "monetary": Money("paid in all"),
        "r": fields.Integer(allow_none=True, metadata={"description": "1-5, null without "
                                                                      "payments"}),
        "f": fields.Integer(allow_none=True),
        "m": fields.Integer(allow_none=True),
        "segment": fields.String(metadata={"enum": list(RFM_SEGMENTS)}),
    }


RfmSchema = DictSchema.from_dict(_rfm_fields(), name="Rfm")
RfmItemSchema = DictSchema.from_dict({"customer_id": fields.String(), **_rfm_fields()},
                                     name="RfmItem")


class ChurnRiskSchema(DictSchema):
    score = fields.Integer(metadata={"description": "0-100; a warning from 60"})
    reasons = fields.List(fields.Nested(ChurnReasonSchema))


class ScoresSchema(DictSchema):
    customer_id = fields.String()
    run_id = Id(metadata={"description": "the score run these come from"})
    as_of = date_field()
    rfm = fields.Nested(RfmSchema)
    clv = Money("customer lifetime value", allow_none=True)
    value_tier = fields.String(allow_none=True, metadata={"enum": list(VALUE_TIERS)})
    churn_risk = fields.Nested(ChurnRiskSchema)


class RfmPageSchema(page_of(RfmItemSchema, "_RfmPageBase")):
    """A page of RFM scores of the current score run, with every segment's size."""

    as_of = date_field("the score run's day")
    segments = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "segment → customers, of every customer"})


class ClvItemSchema(DictSchema):
    customer_id = fields.String()
    clv = Money()
    value_tier = fields.String(allow_none=True, metadata={"enum": list(VALUE_TIERS)})


class ClvParametersSchema(DictSchema):
    acquisition_cost = Money()
    discount_rate = fields.String(metadata={"example": "0.08"})
    horizon_years = fields.Integer()
    tier_shares = fields.Dict(keys=fields.String(), values=fields.String())


class TierTotalSchema(DictSchema):
    customers = fields.Integer()
    value = Money(allow_none=True)
    share = fields.Float(allow_none=True, metadata={"description": "of the total CLV, 0-1"})


class ClvPageSchema(page_of(ClvItemSchema, "_ClvPageBase")):
    """A page of CLVs of the current score run, highest first, with the run's parameters and
    every tier's totals."""

    as_of = date_field("the score run's day")
    parameters = fields.Nested(ClvParametersSchema)
    tiers = fields.Dict(keys=fields.String(), values=fields.Nested(TierTotalSchema))


class ScoreRunSchema(DictSchema):
    run_id = Id(required=True)
    as_of = date_field()
    status = fields.String(metadata={"enum": list(RUN_STATUSES)})
    customers = fields.Integer(allow_none=True, metadata={"description": "scored (when done)"})
    started_at = instant_field()
    finished_at = instant_field()
    error = fields.String(allow_none=True, metadata={"description": "why it failed"})


# ---------------------------------------------------------------- output: clusters

class ClusterSizeSchema(DictSchema):
    cluster = fields.Integer()
    customers = fields.Integer()
    share = fields.Float()


class ClusterProfileSchema(DictSchema):
    cluster = fields.Integer()
    size = fields.Integer()
    means = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True), metadata={
        "description": "feature → the cluster's mean in the feature's own units"})
    z_scores = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={
        "description": "feature → the centroid's z-score"})
    description = fields.String(metadata={"example": "high monetary, recent, frequent: best "
                                                     "customers"})


class ClusterSearchSchema(DictSchema):
    k = fields.Integer()
    silhouette = fields.Float(allow_none=True)
    inertia = fields.Float()


class ClusterEvaluationSchema(DictSchema):
    k = fields.Integer()
    silhouette = fields.Float(allow_none=True)
    sizes = fields.List(fields.Nested(ClusterSizeSchema))
    profiles = fields.List(fields.Nested(ClusterProfileSchema))
    search = fields.List(fields.Nested(ClusterSearchSchema),
                         metadata={"description": "every k tried"})
    search_sample = fields.Integer(metadata={"description": "customers the k search used"})


class ClusterRunSchema(DictSchema):
    id = Id(required=True)
    k = fields.Integer()
    features = fields.List(fields.String())
    silhouette = fields.Float(allow_none=True, metadata={"description": "-1..1, higher is "
                                                                        "better separated"})
    evaluation = fields.Nested(ClusterEvaluationSchema)
    customers = fields.Integer()
    created_by = fields.String(allow_none=True)
    created_at = instant_field()


ClusterRunPageSchema = page_of(ClusterRunSchema, "ClusterRunPage")


# ---------------------------------------------------------------- output: churn

class ChurnWarningSchema(DictSchema):
    id = Id(required=True)
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    score = fields.Integer()
    reasons = fields.List(fields.Nested(ChurnReasonSchema))
    status = fields.String(metadata={"enum": list(WARNING_STATUSES)})
    raised_at = instant_field()
    decided_at = instant_field()


ChurnWarningPageSchema = page_of(ChurnWarningSchema, "ChurnWarningPage")


class ChurnCountSchema(DictSchema):
    reason = fields.String()
    customers = fields.Integer()
    share = fields.Float()


class CompetitorCountSchema(DictSchema):
    competitor = fields.String()
    customers = fields.Integer()
    share = fields.Float()


class ChurnGroupSchema(DictSchema):
    group = fields.String()
    customers = fields.Integer(metadata={"description": "tenants who could churn"})
    churned = fields.Integer()
    rate = fields.Float()


class ChurnByGroupSchema(DictSchema):
    district = fields.List(fields.Nested(ChurnGroupSchema))
    industry = fields.List(fields.Nested(ChurnGroupSchema))
    source = fields.List(fields.Nested(ChurnGroupSchema))
    age_band = fields.List(fields.Nested(ChurnGroupSchema))
    value_tier = fields.List(fields.Nested(ChurnGroupSchema))


class ChurnAnalysisSchema(DictSchema):
    date_from = date_field(data_key="from", attribute="from")
    date_to = date_field(data_key="to", attribute="to")
    churned = fields.Integer(metadata={"description": "customers who churned in the period"})
    customers = fields.Integer(metadata={"description": "tenants who could churn"})
    rate = fields.Float()
    by_reason = fields.List(fields.Nested(ChurnCountSchema))
    by_competitor = fields.List(fields.Nested(CompetitorCountSchema))
    by = fields.Nested(ChurnByGroupSchema)


# ---------------------------------------------------------------- output: reports

class FunnelStageSchema(DictSchema):
    stage = fields.String()
    entered = fields.Integer()
    converted = fields.Integer(allow_none=True, metadata={"description": "null for the last"})
    conversion = fields.Float(allow_none=True)
    average_days = fields.Float(allow_none=True)


class FunnelSchema(DictSchema):
    lifecycle = fields.List(fields.Nested(FunnelStageSchema), metadata={
        "description": "potential → intent → first_time → repeat"})
    pipeline = fields.List(fields.Nested(FunnelStageSchema), metadata={
        "description": "new → contacted → viewing_booked → viewed → negotiating → won"})


class TrendItemSchema(DictSchema):
    period = fields.String(metadata={"example": "2026-03 | 2026-Q1 | 2026"})
    revenue = Money()
    payments = fields.Integer()
    leases_signed = fields.Integer()
    previous = Money("the period before's revenue")
    change = fields.Float(allow_none=True, metadata={"description": "period over period"})
    year_ago = Money("the same period a year before")
    yoy_change = fields.Float(allow_none=True, metadata={"description": "year over year"})


class SalesTrendSchema(DictSchema):
    granularity = fields.String(metadata={"enum": list(GRANULARITIES)})
    items = fields.List(fields.Nested(TrendItemSchema))


class StaffFiguresSchema(DictSchema):
    owner_id = fields.String(allow_none=True, metadata={"description": "null: unassigned"})
    leases_signed = fields.Integer()
    contract_value = Money()
    revenue = Money()
    opportunities = fields.Integer()
    won = fields.Integer()
    lost = fields.Integer()
    win_rate = fields.Float(allow_none=True)
    renewals = fields.Integer()


class StaffPerformanceSchema(DictSchema):
    items = fields.List(fields.Nested(StaffFiguresSchema))


class LeaseGroupSchema(DictSchema):
    group = fields.String()
    leases_signed = fields.Integer()
    renewals = fields.Integer()
    terminations = fields.Integer()
    contract_value = Money()
    average_rent = Money(allow_none=True)


class SalesBusinessSchema(DictSchema):
    leases_signed = fields.Integer()
    renewals = fields.Integer()
    terminations = fields.Integer()
    contract_value = Money()
    average_rent = Money(allow_none=True)
    by_district = fields.List(fields.Nested(LeaseGroupSchema))
    by_layout = fields.List(fields.Nested(LeaseGroupSchema))


class TicketGroupSchema(DictSchema):
    group = fields.String()
    tickets = fields.Integer()
    share = fields.Float(allow_none=True)


class SlaFiguresSchema(DictSchema):
    breached = fields.Integer()
    compliance = fields.Float(allow_none=True)


class SatisfactionSchema(DictSchema):
    rated = fields.Integer()
    average = fields.Float(allow_none=True)
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer(),
                               metadata={"description": "rating \"1\"-\"5\" → tickets"})


class SentimentCountsSchema(DictSchema):
    positive = fields.Integer()
    neutral = fields.Integer()
    negative = fields.Integer()


class ServiceCompositionSchema(DictSchema):
    tickets = fields.Integer()
    by_type = fields.List(fields.Nested(TicketGroupSchema))
    by_channel = fields.List(fields.Nested(TicketGroupSchema))
    by_status = fields.List(fields.Nested(TicketGroupSchema))
    sla = fields.Nested(SlaFiguresSchema)
    satisfaction = fields.Nested(SatisfactionSchema)
    sentiment = fields.Nested(SentimentCountsSchema)


class CustomerGroupSchema(DictSchema):
    group = fields.String()
    customers = fields.Integer()
    share = fields.Float(allow_none=True)


class CustomerCompositionSchema(DictSchema):
    by = fields.String(metadata={"enum": list(COMPOSITION_BY)})
    items = fields.List(fields.Nested(CustomerGroupSchema))


class CurvePointSchema(DictSchema):
    customer_share = fields.Float()
    revenue_share = fields.Float()


class ContributionSchema(DictSchema):
    customers = fields.Integer(metadata={"description": "paying customers"})
    revenue = Money()
    top_20_percent_share = fields.Float(allow_none=True)
    curve = fields.List(fields.Nested(CurvePointSchema),
                        metadata={"description": "a point at every 5% of customers"})


class ReviewSchema(DictSchema):
    ticket_id = fields.String()
    rating = fields.Integer(allow_none=True)
    sentiment = fields.String(metadata={"enum": list(SENTIMENTS)})
    positive = fields.Integer(metadata={"description": "positive words found"})
    negative = fields.Integer(metadata={"description": "negative words found"})


class ReviewTotalsSchema(SentimentCountsSchema):
    reviews = fields.Integer()


class ReviewSentimentSchema(DictSchema):
    items = fields.List(fields.Nested(ReviewSchema))
    totals = fields.Nested(ReviewTotalsSchema)

