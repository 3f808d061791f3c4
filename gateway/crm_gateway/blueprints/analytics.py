"""Analytics (the analytics service): a customer's scores, RFM and CLV, recomputes, clusters,
churn warnings and the reports — three blueprints (scores, segmentation, reports: one per group
of the OpenAPI document), thin calls.

Each view checks its query string or body (marshmallow; see ``schemas/analytics.py``), calls one
RPC (docs/rpc-contracts.md, section "analytics") and dumps the answer through a schema. The
service's NotFound/Conflict/InvalidInput become 404/409/422 with their details
(crm_gateway.errors).

- ``POST /analytics/recompute`` answers 202 Accepted with the score run (``requested``): the
  service's worker computes it; ``GET /analytics/runs/{id}`` follows it to ``done``. A second
  request while one is requested or running → 409 naming it.
- ``POST /analytics/clusters`` runs k-means in the request: on a large store that takes seconds,
  so it has its own RPC timeout (``CLUSTER_TIMEOUT``), as reports and their exports do
  (``REPORT_TIMEOUT``).
- Reports negotiate their media type (``Accept``): JSON by default, ``text/csv`` (every report)
  and ``image/png`` (a chart, for the reports in ``CHARTS``) come from the service's
  ``export_report`` as a download (``Content-Disposition: attachment``). A type the report does
  not have → 406 naming the ones it has.

Who may call what is in ``permissions.ROUTES`` ("analytics").
"""
import base64
import re

from flask import Response, request
from flask_smorest import Blueprint

from crm_gateway import rpc, scopes
from crm_gateway.blueprints import (AUTH_ERRORS, RPC_ERRORS, actor, error_responses,
                                     given_filters)
from crm_gateway.schemas.analytics import (
    ChurnAnalysisSchema, ChurnWarningPageSchema, ClusterRequestSchema, ClusterRunPageSchema,
    ClusterRunSchema, ClvPageSchema, ClvParametersInSchema, ClvParametersSchema, ClvQuery,
    CompositionQuery, ContributionSchema, CustomerCompositionSchema, FunnelSchema, PeriodQuery,
    RecomputeInSchema, ReviewSentimentSchema, RfmPageSchema, RfmQuery, SalesBusinessSchema,
    SalesTrendSchema, ScoreRunSchema, ScoresSchema, ServiceCompositionSchema,
    StaffPerformanceSchema, TrendQuery, WarningQuery,
)
from crm_gateway.schemas.common import PageQuery
from crm_kit.errors import CrmError, NotFound

ANALYTICS = "analytics"
API = "/api/v1"
#: seconds a clustering may take (k-means with a k search over every customer)
CLUSTER_TIMEOUT = 60.0
#: seconds a report or its export may take (pandas over the whole store, a chart drawn)
REPORT_TIMEOUT = 30.0

JSON, CSV, PNG = "application/json", "text/csv", "image/png"
#: the reports with a chart (the service's ``export.CHARTS``)
CHARTS = frozenset({"funnel", "sales_trend", "contribution", "customer_composition",
                    "service_composition", "churn_analysis"})
_RUN_ID = re.compile(r"[1-9][0-9]{0,17}")

scores_blp = Blueprint("analytics scores", __name__, url_prefix=API,
                       description="Scores (客户价值与流失风险), the analytics service: RFM, "
                                   "CLV and value tiers, churn risk and its warnings, computed "
                                   "by score runs (recomputes)")
segmentation_blp = Blueprint("analytics segmentation", __name__, url_prefix=API,
                             description="Segmentation (客户细分聚类), the analytics service: "
                                         "k-means over chosen features, with its evaluation")
reports_blp = Blueprint("analytics reports", __name__, url_prefix=API,
                        description="Reports (统计报表), the analytics service: funnel, sales "
                                    "trend and business, staff performance, service and "
                                    "customer composition, contribution, churn analysis, "
                                    "review sentiment — as JSON, CSV or a PNG chart (Accept)")

BLUEPRINTS = (scores_blp, segmentation_blp, reports_blp)


class NotAcceptable(CrmError):
    http_status = 406
    code = "not_acceptable"


# ================================================================ scores

@scores_blp.route("/analytics/customers/<customer_id>/scores", methods=["GET"])
@scores_blp.response(200, ScoresSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def customer_scores(customer_id):
    """A customer's scores of the current score run: RFM (recency, frequency, monetary, their
    1-5 scores and segment), CLV, value tier, churn risk with its reasons. A customer not
    scored yet (or unknown, or not one of a customer manager's own) → 404."""
    scopes.require_customer(customer_id)
    return rpc.call(ANALYTICS, "get_scores", customer_id)


@scores_blp.route("/analytics/rfm", methods=["GET"])
@scores_blp.arguments(RfmQuery, location="query")
@scores_blp.response(200, RfmPageSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 404, 422, *RPC_ERRORS)
def list_rfm(query):
    """RFM scores of the current score run by segment, value tier and R/F/M score, with every
    segment's size (``segments``). Before the first score run → 404."""
    return rpc.call(ANALYTICS, "list_rfm",
                    given_filters(query, ("segment", "value_tier", "r", "f", "m")),
                    query["page"], query["per_page"])


@scores_blp.route("/analytics/clv", methods=["GET"])
@scores_blp.arguments(ClvQuery, location="query")
@scores_blp.response(200, ClvPageSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 404, 422, *RPC_ERRORS)
def list_clv(query):
    """Customer lifetime values of the current score run, highest first, by value tier; with
    the parameters the run used and each tier's customers, value and share. Before the first
    score run → 404."""
    return rpc.call(ANALYTICS, "list_clv", given_filters(query, ("value_tier",)),
                    query["page"], query["per_page"])


@scores_blp.route("/analytics/clv/parameters", methods=["GET"])
@scores_blp.response(200, ClvParametersSchema)
@error_responses(scores_blp, *AUTH_ERRORS, *RPC_ERRORS)
def get_clv_parameters():
    """The CLV parameters the next score run uses."""
    return rpc.call(ANALYTICS, "get_clv_parameters")


@scores_blp.route("/analytics/clv/parameters", methods=["PUT"])
@scores_blp.arguments(ClvParametersInSchema)
@scores_blp.response(200, ClvParametersSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def set_clv_parameters(data):
    """Change the CLV parameters (a field left out keeps its value); the next score run uses
    them. Bad values → one 422 naming each field."""
    return rpc.call(ANALYTICS, "set_clv_parameters", data, actor())


@scores_blp.route("/analytics/recompute", methods=["POST"])
@scores_blp.arguments(RecomputeInSchema)
@scores_blp.response(202, ScoreRunSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 409, 422, *RPC_ERRORS)
def request_recompute(data):
    """Score every customer now (the service also does every hour): 202 Accepted with the score
    run (``requested``); follow it at ``GET /analytics/runs/{run_id}``. The scores switch to
    the new run at once when it is done, and ``customer.scored`` / ``churn.warning_raised``
    go out. Another run requested or running → 409 naming it (``run_id``)."""
    return rpc.call(ANALYTICS, "request_recompute", data.get("as_of"))


@scores_blp.route("/analytics/runs/<run_id>", methods=["GET"])
@scores_blp.response(200, ScoreRunSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_score_run(run_id):
    """A score run: ``requested``, ``running``, ``done`` (with the customers scored) or
    ``failed`` (with its error). The service keeps the current run and the one before it."""
    if not _RUN_ID.fullmatch(run_id):
        raise NotFound(f"score run {run_id} does not exist", {"run_id": run_id})
    return rpc.call(ANALYTICS, "get_score_run", int(run_id))


@scores_blp.route("/analytics/churn/warnings", methods=["GET"])
@scores_blp.arguments(WarningQuery, location="query")
@scores_blp.response(200, ChurnWarningPageSchema)
@error_responses(scores_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def list_churn_warnings(query):
    """Churn warnings (流失预警), the highest score first: raised when a customer's churn risk
    reaches 60, ``open`` until the owner decides (``kept``, ``churned``)."""
    return rpc.call(ANALYTICS, "list_churn_warnings",
                    given_filters(query, ("status", "customer_id")), query["page"],
                    query["per_page"])


# ================================================================ segmentation

@segmentation_blp.route("/analytics/clusters", methods=["POST"])
@segmentation_blp.arguments(ClusterRequestSchema)
@segmentation_blp.response(201, ClusterRunSchema)
@error_responses(segmentation_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def run_clusters(data):
    """Cluster the customers with k-means on the chosen ``features`` (standardised): with
    ``k``, that many clusters; else every k of ``k_min``..``k_max`` is tried and the best
    silhouette kept. Answers the saved run with its evaluation: sizes, a profile of each
    cluster in plain words, the k search. Too few customers for k, an unknown feature → 422."""
    return rpc.call(ANALYTICS, "run_clusters", data, actor(), timeout=CLUSTER_TIMEOUT)


@segmentation_blp.route("/analytics/clusters", methods=["GET"])
@segmentation_blp.arguments(PageQuery, location="query")
@segmentation_blp.response(200, ClusterRunPageSchema)
@error_responses(segmentation_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def list_cluster_runs(query):
    """Cluster runs, the newest first."""
    return rpc.call(ANALYTICS, "list_cluster_runs", query["page"], query["per_page"])


@segmentation_blp.route("/analytics/clusters/<run_id>", methods=["GET"])
@segmentation_blp.response(200, ClusterRunSchema)
@error_responses(segmentation_blp, *AUTH_ERRORS, 404, *RPC_ERRORS)
def get_cluster_run(run_id):
    """One cluster run with its evaluation."""
    return rpc.call(ANALYTICS, "get_cluster_run", run_id)


# ================================================================ reports

def _offered(name):
    return (JSON, CSV, PNG) if name in CHARTS else (JSON, CSV)


def _report(name, method, *args):
    """The report as the caller accepts it: JSON (``method(*args)``, dumped by the view's
    schema) or a download of ``export_report`` (CSV; PNG for a report with a chart)."""
    offered = _offered(name)
    accepted = request.accept_mimetypes
    wanted = accepted.best_match(offered) if accepted else JSON  # no Accept: anything goes
    if wanted is None:
        raise NotAcceptable(f"The {name} report comes as " + ", ".join(offered) + ".",
                            {"available": list(offered)})
    vary = {"Vary": "Accept"}
    if wanted == JSON:
        return rpc.call(ANALYTICS, method, *args, timeout=REPORT_TIMEOUT), vary
    filters = args[0] if args else None
    if name == "customer_composition":
        filters = {"by": args[0]}
    exported = rpc.call(ANALYTICS, "export_report", name, filters,
                        "csv" if wanted == CSV else "png", timeout=REPORT_TIMEOUT)
    return Response(base64.b64decode(exported["data"]), content_type=exported["content_type"],
                    headers={**vary, "Content-Disposition":
                             f'attachment; filename="{exported["filename"]}"'})


def report_responses(blp, name):
    """Document the report's other media types (same status, other content) and the 406."""
    def decorator(func):
        func = blp.alt_response(
            200, schema={"type": "string"}, content_type=CSV, success=True,
            description="JSON, or with `Accept: text/csv` the report as CSV (UTF-8 with a BOM, "
                        "one row per item, nested values as dotted columns) to download"
                        + (", or with `Accept: image/png` its chart" if name in CHARTS else ""),
            headers={"Content-Disposition": {
                "description": "CSV and PNG: attachment; filename=\"<report>.csv|png\"",
                "schema": {"type": "string"}}})(func)
        if name in CHARTS:
            func = blp.alt_response(200, schema={"type": "string", "format": "binary"},
                                    content_type=PNG, success=True)(func)
        return error_responses(blp, 406)(func)
    return decorator


@reports_blp.route("/analytics/funnel", methods=["GET"])
@reports_blp.arguments(PeriodQuery, location="query")
@reports_blp.response(200, FunnelSchema)
@report_responses(reports_blp, "funnel")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def funnel(query):
    """The sales funnel (销售漏斗) over the period: the customer lifecycle (potential → intent →
    first_time → repeat) and the opportunity pipeline (new → … → won), each stage with those
    who entered it, converted to a later one, the conversion and the average days spent."""
    return _report("funnel", "funnel", query)


@reports_blp.route("/analytics/sales/trend", methods=["GET"])
@reports_blp.arguments(TrendQuery, location="query")
@reports_blp.response(200, SalesTrendSchema)
@report_responses(reports_blp, "sales_trend")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def sales_trend(query):
    """Revenue (payments but deposits), payments and new leases per month, quarter or year the
    period touches, each with the period before and the same period a year before (环比,
    同比)."""
    return _report("sales_trend", "sales_trend", query)


@reports_blp.route("/analytics/sales/business", methods=["GET"])
@reports_blp.arguments(PeriodQuery, location="query")
@reports_blp.response(200, SalesBusinessSchema)
@report_responses(reports_blp, "sales_business")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def sales_business(query):
    """Leases signed, renewals, early terminations, contract value and average rent over the
    period, by district and by layout."""
    return _report("sales_business", "sales_business", query)


@reports_blp.route("/analytics/staff/performance", methods=["GET"])
@reports_blp.arguments(PeriodQuery, location="query")
@reports_blp.response(200, StaffPerformanceSchema)
@report_responses(reports_blp, "staff_performance")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def staff_performance(query):
    """Per staff member (owner) over the period: leases signed and renewed, contract value,
    revenue, opportunities opened, won and lost, win rate; the best revenue first."""
    return _report("staff_performance", "staff_performance", query)


@reports_blp.route("/analytics/service/composition", methods=["GET"])
@reports_blp.arguments(PeriodQuery, location="query")
@reports_blp.response(200, ServiceCompositionSchema)
@report_responses(reports_blp, "service_composition")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def service_composition(query):
    """The tickets of the period by type, channel and status, SLA compliance, satisfaction
    (ratings) and the reviews' sentiment."""
    return _report("service_composition", "service_composition", query)


@reports_blp.route("/analytics/customers/composition", methods=["GET"])
@reports_blp.arguments(CompositionQuery, location="query")
@reports_blp.response(200, CustomerCompositionSchema)
@report_responses(reports_blp, "customer_composition")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def customer_composition(query):
    """The customers (not archived, not erased) by district, industry, source, age band, value
    tier or stage (``by``, default district), with each group's share."""
    return _report("customer_composition", "customer_composition", query["by"])


@reports_blp.route("/analytics/contribution", methods=["GET"])
@reports_blp.response(200, ContributionSchema)
@report_responses(reports_blp, "contribution")
@error_responses(reports_blp, *AUTH_ERRORS, *RPC_ERRORS)
def contribution():
    """Customer contribution (80/20): the revenue curve over the paying customers, highest
    first, and the top 20 %'s share of all revenue."""
    return _report("contribution", "contribution")


@reports_blp.route("/analytics/churn/analysis", methods=["GET"])
@reports_blp.arguments(PeriodQuery, location="query")
@reports_blp.response(200, ChurnAnalysisSchema)
@report_responses(reports_blp, "churn_analysis")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def churn_analysis(query):
    """Customers who churned in the period (流失分析): by reason and by competitor, and the
    churn rate by district, industry, source, age band and value tier."""
    return _report("churn_analysis", "churn_analysis", query)


@reports_blp.route("/analytics/reviews/sentiment", methods=["GET"])
@reports_blp.arguments(PeriodQuery, location="query")
@reports_blp.response(200, ReviewSentimentSchema)
@report_responses(reports_blp, "review_sentiment")
@error_responses(reports_blp, *AUTH_ERRORS, 422, *RPC_ERRORS)
def review_sentiment(query):
    """The reviews (ratings and comments of tickets) given in the period, newest first, each
    positive, neutral or negative, with the totals."""
    return _report("review_sentiment", "review_sentiment", query)
