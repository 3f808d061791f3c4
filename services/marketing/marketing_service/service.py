"""The marketing service's nameko entrypoints: validate, call the logic, return.

Business rules live in ``segments``, ``campaigns``, ``delivery``, ``care`` and ``audience`` (the
copy of customers and leases kept from events); this class opens transactions and maps calls,
events and timers onto them.
"""
import time

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from crm_kit import config
from crm_kit.errors import EXPECTED
from crm_kit.inbox import on_event
from crm_kit.rpc import ServiceRpc
from crm_kit.service import CrmService
from crm_kit.validation import page as page_of
from marketing_service import audience, campaigns, care, channels, delivery, resync, segments

DISPATCH_SECONDS = float(config.env("CRM_MARKETING_DISPATCH_SECONDS", "1"))
DISPATCH_BUDGET_SECONDS = 10.0  # one timer run stops after this, the next one goes on
CARE_SECONDS = float(config.env("CRM_MARKETING_CARE_SECONDS", "3600"))


class Channels(DependencyProvider):
    """The channel adapters, from the configuration, once per process."""

    def setup(self):
        self.adapters = channels.configured()

    def get_dependency(self, worker_ctx):
        return self.adapters


class MarketingService(CrmService):
    name = "marketing"

    channels = Channels()
    customers = ServiceRpc("customer")
    sales = ServiceRpc("sales")

    # -- segments --------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_segment(self, data, actor=None):
        with self.db.transaction() as session:
            return segments.to_dict(segments.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def get_segment(self, segment_id):
        with self.db.transaction() as session:
            return segments.to_dict(segments.get(session, segment_id))

    @rpc(expected_exceptions=EXPECTED)
    def list_segments(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return segments.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def preview_segment(self, segment_id, page=1, per_page=50):
        with self.db.transaction() as session:
            return segments.preview(session, segment_id, *page_of(page, per_page))

    # -- campaigns -------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_campaign(self, data, actor=None):
        with self.db.transaction() as session:
            return campaigns.to_dict(campaigns.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def get_campaign(self, campaign_id):
        with self.db.transaction() as session:
            return campaigns.to_dict(campaigns.get(session, campaign_id))

    @rpc(expected_exceptions=EXPECTED)
    def list_campaigns(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return campaigns.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def launch_campaign(self, campaign_id, actor=None):
        with self.db.transaction() as session:
            return campaigns.to_dict(campaigns.launch(session, campaign_id, actor))

    @rpc(expected_exceptions=EXPECTED)
    def campaign_stats(self, campaign_id):
        with self.db.transaction() as session:
            return campaigns.stats(session, campaign_id)

    @rpc(expected_exceptions=EXPECTED)
    def record_response(self, campaign_id, data, actor=None):
        with self.db.transaction() as session:
            return campaigns.response_to_dict(
                campaigns.record_response(session, campaign_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def list_responses(self, campaign_id, page=1, per_page=50, customer_ids=None):
        with self.db.transaction() as session:
            return campaigns.list_responses(session, campaign_id, *page_of(page, per_page),
                                            customer_ids=customer_ids)

    # -- care rules ------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_care_rule(self, data, actor=None):
        with self.db.transaction() as session:
            return care.to_dict(care.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def list_care_rules(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return care.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def update_care_rule(self, rule_id, changes, actor=None):
        with self.db.transaction() as session:
            return care.to_dict(care.update(session, rule_id, changes, actor))

    @rpc(expected_exceptions=EXPECTED)
    def run_care_rules(self, today=None):
        day = care.parse_day(today)
        with self.db.transaction() as session:
            return care.run(session, day)

    @timer(interval=CARE_SECONDS)
    def care_timer(self):
        with self.db.transaction() as session:
            care.run(session)

    # -- the delivery log ------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_messages(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return delivery.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def get_message(self, message_id):
        with self.db.transaction() as session:
            return delivery.to_dict(delivery.get(session, message_id))

    @rpc(expected_exceptions=EXPECTED)
    def record_receipt(self, message_id, data):
        with self.db.transaction() as session:
            return delivery.to_dict(delivery.record_receipt(session, message_id, data))

    @rpc(expected_exceptions=EXPECTED)
    def dispatch_messages(self):
        return self._dispatch()

    @timer(interval=DISPATCH_SECONDS)
    def dispatcher(self):
        self._dispatch()

    def _dispatch(self):
        """Launch scheduled campaigns that are due, record launching campaigns' recipients,
        send queued messages, complete campaigns with nothing left: each step in its own short
        transactions, for at most ``DISPATCH_BUDGET_SECONDS`` per run."""
        deadline = time.monotonic() + DISPATCH_BUDGET_SECONDS
        with self.db.transaction() as session:
            due = campaigns.due_scheduled(session)
        for campaign_id in due:
            with self.db.transaction() as session:
                campaigns.launch(session, campaign_id)
        # one campaign at a time, always the oldest launching one, on every instance: the
        # chunks serialise on that campaign's row lock, so the frequency cap of each chunk sees
        # every message recorded before it, whichever instance recorded them
        while time.monotonic() < deadline:
            with self.db.transaction() as session:
                launching = campaigns.launching(session)
            if not launching:
                break
            with self.db.transaction() as session:
                campaigns.record_chunk(session, launching[0])
        totals = {"sent": 0, "delivered": 0, "failed": 0, "retry": 0}
        while time.monotonic() < deadline:
            counts = delivery.dispatch(self.db.transaction, self.channels)
            for key, value in counts.items():
                totals[key] += value
            if sum(counts.values()) < delivery.BATCH:
                break
        with self.db.transaction() as session:
            campaigns.complete_finished(session)
        return totals

    # -- the copy of customers and leases --------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def resync_audience(self):
        def apply(logic):
            def apply_page(items):
                with self.db.transaction() as session:
                    logic(session, items)
            return apply_page

        customers = resync.pages(
            lambda page: self.customers.call("list_customers", {}, page, resync.PAGE),
            apply(resync.apply_customers))
        leases = resync.pages(
            lambda page: self.sales.call("list_leases", {"status": "active"}, page, resync.PAGE),
            apply(resync.apply_leases))
        return {"customers": customers, "leases": leases}

    @on_event("customer", "customer.created")
    def on_customer_created(self, session, data, envelope):
        audience.apply_customer(session, data)

    @on_event("customer", "customer.updated")
    def on_customer_updated(self, session, data, envelope):
        audience.apply_customer(session, data)

    @on_event("customer", "customer.stage_changed")
    def on_stage_changed(self, session, data, envelope):
        audience.stage_changed(session, data, envelope)

    @on_event("customer", "customer.owner_changed")
    def on_owner_changed(self, session, data, envelope):
        audience.owner_changed(session, data, envelope)

    @on_event("customer", "customer.merged")
    def on_customer_merged(self, session, data, envelope):
        audience.merged(session, data)

    @on_event("customer", "customer.erased")
    def on_customer_erased(self, session, data, envelope):
        audience.erase(session, data["customer_id"], audience.instant(data.get("erased_at")))

    @on_event("analytics", "customer.scored")
    def on_customer_scored(self, session, data, envelope):
        audience.scored(session, data, envelope)

    @on_event("sales", "lease.signed")
    def on_lease_signed(self, session, data, envelope):
        audience.lease_signed(session, data, envelope)

    @on_event("sales", "lease.renewed")
    def on_lease_renewed(self, session, data, envelope):
        audience.lease_renewed(session, data, envelope)

    @on_event("sales", "lease.terminated")
    def on_lease_terminated(self, session, data, envelope):
        audience.apply_lease(session, data, envelope, status="terminated")

    @on_event("sales", "lease.ended")
    def on_lease_ended(self, session, data, envelope):
        audience.apply_lease(session, data, envelope, status="ended")

    @on_event("sales", "opportunity.created")
    def on_opportunity_created(self, session, data, envelope):
        audience.opportunity_created(session, data)
