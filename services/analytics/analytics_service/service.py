"""The analytics service's nameko entrypoints: validate, call the logic, return.

The store is built by ``ingest`` (one ``@on_event`` entrypoint per row of ``ingest.HANDLERS``,
added below the class); scores come from ``recompute``; reading them and the reports from
``queries``; clusters from ``segmentation``.
"""
import os

# KMeans' OpenMP threads fighting the service's other work make it many times slower on a
# busy or CPU-limited box; one thread each, before numpy and scikit-learn load
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from datetime import date  # noqa: E402

from nameko.rpc import rpc  # noqa: E402
from nameko.timer import timer  # noqa: E402

from analytics_service import ingest, queries, rebuild, recompute, segmentation  # noqa: E402
from analytics_service.clock import business_today  # noqa: E402
from crm_kit import config  # noqa: E402
from crm_kit.errors import EXPECTED, Conflict, InvalidInput  # noqa: E402
from crm_kit.inbox import on_event  # noqa: E402
from crm_kit.rpc import ServiceRpc  # noqa: E402
from crm_kit.service import CrmService  # noqa: E402
from crm_kit.validation import page as page_of  # noqa: E402

RECOMPUTE_SECONDS = float(config.env("CRM_ANALYTICS_RECOMPUTE_SECONDS", "3600"))
WORKER_SECONDS = float(config.env("CRM_ANALYTICS_WORKER_SECONDS", "2"))
REBUILD_TIMEOUT = 120.0


def _day(value):
    if value is None:
        return business_today()
    try:
        if not (isinstance(value, str) and len(value) == 10 and value[4] == "-"):
            raise ValueError(value)
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput({"as_of": ["must be a date like 2026-12-01"]}) from None


class AnalyticsService(CrmService):
    name = "analytics"

    customer = ServiceRpc("customer", timeout=REBUILD_TIMEOUT)
    sales = ServiceRpc("sales", timeout=REBUILD_TIMEOUT)
    service_desk = ServiceRpc("service_desk", timeout=REBUILD_TIMEOUT)

    # -- scores ----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def recompute(self, as_of=None):
        """Recompute now and answer when done (operators, tests, benchmarks)."""
        return recompute.run_all(self.db.transaction, _day(as_of))

    @rpc(expected_exceptions=EXPECTED)
    def request_recompute(self, as_of=None):
        """Ask for a recompute; the worker timer runs it (the gateway answers 202)."""
        with self.db.transaction() as session:
            return recompute.run_dict(recompute.get_run(
                session, recompute.start(session, _day(as_of), status="requested")))

    @rpc(expected_exceptions=EXPECTED)
    def get_score_run(self, run_id):
        with self.db.transaction() as session:
            return recompute.run_dict(recompute.get_run(session, run_id))

    @timer(interval=RECOMPUTE_SECONDS)
    def scheduled_recompute(self):
        with self.db.transaction() as session:
            try:
                recompute.start(session, business_today(), status="requested")
            except Conflict:
                pass  # one is on its way already

    @timer(interval=WORKER_SECONDS)
    def recompute_worker(self):
        with self.db.transaction() as session:
            run_id = recompute.claim(session)
        if run_id is not None:
            recompute.run(self.db.transaction, run_id)

    @rpc(expected_exceptions=EXPECTED)
    def get_scores(self, customer_id):
        with self.db.transaction() as session:
            return queries.scores(session, customer_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_rfm(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return queries.list_rfm(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def list_clv(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return queries.list_clv(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def get_clv_parameters(self):
        with self.db.transaction() as session:
            return recompute.clv_parameters(session)

    @rpc(expected_exceptions=EXPECTED)
    def set_clv_parameters(self, data, actor=None):
        with self.db.transaction() as session:
            return recompute.set_clv_parameters(session, data)

    # -- churn -----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_churn_warnings(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return queries.list_warnings(session, filters, *page_of(page, per_page))

    # -- clusters --------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def run_clusters(self, data, actor=None):
        with self.db.transaction() as session:
            return segmentation.run(session, data, actor)

    @rpc(expected_exceptions=EXPECTED)
    def get_cluster_run(self, run_id):
        with self.db.transaction() as session:
            return segmentation.get(session, run_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_cluster_runs(self, page=1, per_page=50):
        with self.db.transaction() as session:
            return segmentation.search(session, *page_of(page, per_page))

    # -- reports ---------------------------------------------------------------------------
    def _report(self, name, filters):
        with self.db.transaction() as session:
            return queries.report(session, name, filters)

    @rpc(expected_exceptions=EXPECTED)
    def funnel(self, filters=None):
        return self._report("funnel", filters)

    @rpc(expected_exceptions=EXPECTED)
    def sales_trend(self, filters=None):
        return self._report("sales_trend", filters)

    @rpc(expected_exceptions=EXPECTED)
    def staff_performance(self, filters=None):
        return self._report("staff_performance", filters)

    @rpc(expected_exceptions=EXPECTED)
    def sales_business(self, filters=None):
        return self._report("sales_business", filters)

    @rpc(expected_exceptions=EXPECTED)
    def service_composition(self, filters=None):
        return self._report("service_composition", filters)

    @rpc(expected_exceptions=EXPECTED)
    def customer_composition(self, by="district"):
        return self._report("customer_composition", {"by": by})

    @rpc(expected_exceptions=EXPECTED)
    def contribution(self):
        return self._report("contribution", None)

    @rpc(expected_exceptions=EXPECTED)
    def churn_analysis(self, filters=None):
        return self._report("churn_analysis", filters)

    @rpc(expected_exceptions=EXPECTED)
    def review_sentiment(self, filters=None):
        return self._report("review_sentiment", filters)

    @rpc(expected_exceptions=EXPECTED)
    def export_report(self, name, filters=None, fmt="csv"):
        with self.db.transaction() as session:
            return queries.export_report(session, name, filters, fmt)

    # -- the store -------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def rebuild_store(self):
        with self.db.transaction() as session:
            rebuild.clear(session, self.name)
        sources = {"customer": self.customer, "sales": self.sales,
                   "service_desk": self.service_desk}
        return {"events": rebuild.replay(
            self.db.provider.sessionmaker, self.name,
            lambda source, after, limit: sources[source].call("event_history", after, limit))}


def _subscribe(source, event_type, apply):
    def logic(self, session, data, envelope):
        apply(session, data, envelope)

    logic.__name__ = logic.__qualname__ = ingest.handler_name(event_type)
    setattr(AnalyticsService, logic.__name__, on_event(source, event_type)(logic))


for (_source, _type), _apply in ingest.HANDLERS.items():
    _subscribe(_source, _type, _apply)
