"""The customer service's nameko entrypoints: validate, call the logic, return.

Business rules live in ``customers``, ``lifecycle``, ``membership``, ``tagging`` and
``importing``; this class only opens transactions and maps calls and events onto them.
"""
from nameko.rpc import rpc
from nameko.timer import timer

from crm_kit import config
from crm_kit.errors import EXPECTED
from crm_kit.inbox import on_event
from crm_kit.service import AuditTrail, CrmService
from crm_kit.validation import page as page_of
from customer_service import customers, importing, lifecycle

STAGNATION_SCAN_SECONDS = float(config.env("CRM_STAGNATION_SCAN_SECONDS", "300"))


class CustomerService(AuditTrail, CrmService):
    name = "customer"

    # -- records ---------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_customer(self, data, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def get_customer(self, customer_id):
        with self.db.transaction() as session:
            return customers.to_dict(customers.get(session, customer_id))

    @rpc(expected_exceptions=EXPECTED)
    def list_customers(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return customers.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def customer_ids_of_owners(self, owner_ids):
        with self.db.transaction() as session:
            return customers.ids_owned_by(session, owner_ids)

    @rpc(expected_exceptions=EXPECTED)
    def update_customer(self, customer_id, changes, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.update(session, customer_id, changes, actor))

    @rpc(expected_exceptions=EXPECTED)
    def archive_customer(self, customer_id, actor=None):
        with self.db.transaction() as session:
            customers.archive(session, customer_id, actor)

    @rpc(expected_exceptions=EXPECTED)
    def add_tags(self, customer_id, tags, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.add_tags(session, customer_id, tags, actor))

    @rpc(expected_exceptions=EXPECTED)
    def remove_tag(self, customer_id, tag, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.remove_tag(session, customer_id, tag, actor))

    @rpc(expected_exceptions=EXPECTED)
    def add_interaction(self, customer_id, data, actor=None):
        with self.db.transaction() as session:
            return customers.add_interaction(session, customer_id, data, actor)

    @rpc(expected_exceptions=EXPECTED)
    def list_interactions(self, customer_id, page=1, per_page=50):
        with self.db.transaction() as session:
            return customers.list_interactions(session, customer_id, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def handover(self, from_owner_id, to_owner_id, customer_ids=None, reason=None, actor=None):
        data = {"from_owner_id": from_owner_id, "to_owner_id": to_owner_id,
                "customer_ids": customer_ids, "reason": reason}
        with self.db.transaction() as session:
            return customers.handover(session, data, actor)

    @rpc(expected_exceptions=EXPECTED)
    def owner_history(self, customer_id):
        with self.db.transaction() as session:
            return customers.owner_history(session, customer_id)

    @rpc(expected_exceptions=EXPECTED)
    def find_duplicates(self, customer_id):
        with self.db.transaction() as session:
            return customers.find_duplicates(session, customer_id)

    @rpc(expected_exceptions=EXPECTED)
    def merge_customers(self, customer_id, duplicate_id, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.merge(session, customer_id, duplicate_id, actor))

    @rpc(expected_exceptions=EXPECTED)
    def erase_customer(self, customer_id, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.erase(session, customer_id, actor))

    @rpc(expected_exceptions=EXPECTED)
    def import_csv(self, text, actor=None, owner_ids=None):
        with self.db.transaction() as session:
            return importing.import_csv(session, text, actor, owner_ids)

    @rpc(expected_exceptions=EXPECTED)
    def export_customers(self, filters=None):
        with self.db.transaction() as session:
            return customers.export(session, filters)

    @rpc(expected_exceptions=EXPECTED)
    def adjust_points(self, customer_id, delta, reason, actor=None):
        with self.db.transaction() as session:
            return customers.to_dict(customers.adjust_points(
                session, customer_id, {"delta": delta, "reason": reason}, actor))

    # -- lifecycle -------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def change_stage(self, customer_id, stage, reason=None, actor=None, approver_id=None):
        data = {"stage": stage, "reason": reason, "approver_id": approver_id}
        with self.db.transaction() as session:
            return customers.to_dict(lifecycle.change_stage(session, customer_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def stage_history(self, customer_id):
        with self.db.transaction() as session:
            return lifecycle.history(session, customer_id)

    @rpc(expected_exceptions=EXPECTED)
    def churn_decision(self, customer_id, decision, reason=None, competitor=None, actor=None):
        data = {"decision": decision, "reason": reason, "competitor": competitor}
        with self.db.transaction() as session:
            return customers.to_dict(lifecycle.churn_decision(session, customer_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def churn_decisions(self, customer_id):
        with self.db.transaction() as session:
            return lifecycle.decisions(session, customer_id)

    @rpc(expected_exceptions=EXPECTED)
    def get_stage_limits(self):
        with self.db.transaction() as session:
            return lifecycle.stage_limits(session)

    @rpc(expected_exceptions=EXPECTED)
    def set_stage_limits(self, limits, actor=None):
        with self.db.transaction() as session:
            return lifecycle.set_stage_limits(session, limits, actor)

    @rpc(expected_exceptions=EXPECTED)
    def list_alerts(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return lifecycle.list_alerts(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def acknowledge_alert(self, alert_id, actor=None, owner_ids=None):
        with self.db.transaction() as session:
            return lifecycle.acknowledge_alert(session, alert_id, actor, owner_ids)

    @rpc(expected_exceptions=EXPECTED)
    def scan_stagnation(self):
        """Run the stagnation scan now (the timer runs it every CRM_STAGNATION_SCAN_SECONDS)."""
        with self.db.transaction() as session:
            return [lifecycle.alert_dict(a) for a in lifecycle.scan_stagnation(session)]

    @timer(interval=STAGNATION_SCAN_SECONDS)
    def stagnation_timer(self):
        with self.db.transaction() as session:
            lifecycle.scan_stagnation(session)

    # -- reactions to other services' events (api.md) --------------------------------------
    @on_event("sales", "opportunity.created")
    def on_opportunity_created(self, session, data, envelope):
        lifecycle.on_opportunity_created(session, data, envelope)

    @on_event("sales", "lease.signed")
    def on_lease_signed(self, session, data, envelope):
        lifecycle.on_lease_signed(session, data, envelope)

    @on_event("sales", "lease.renewed")
    def on_lease_renewed(self, session, data, envelope):
        lifecycle.on_lease_renewed(session, data, envelope)

    @on_event("sales", "payment.received")
    def on_payment_received(self, session, data, envelope):
        lifecycle.on_payment_received(session, data, envelope)

    @on_event("analytics", "customer.scored")
    def on_customer_scored(self, session, data, envelope):
        lifecycle.on_customer_scored(session, data, envelope)

    @on_event("analytics", "churn.warning_raised")
    def on_churn_warning_raised(self, session, data, envelope):
        lifecycle.on_churn_warning(session, data, envelope)
