"""The sales (leasing) service's nameko entrypoints: validate, call the logic, return.

Business rules live in ``units``, ``opportunities``, ``viewings``, ``leasing``, ``billing``,
``payments`` and ``tasks``; this class opens transactions, asks the customer service what it
must know (before the transaction), and maps calls, events and timers onto the logic.
"""
from nameko.rpc import rpc
from nameko.timer import timer

from crm_kit import config
from crm_kit.errors import EXPECTED, InvalidInput
from crm_kit.inbox import on_event
from crm_kit.references import live_customer
from crm_kit.rpc import ServiceRpc
from crm_kit.service import AuditTrail, CrmService
from crm_kit.validation import page as page_of
from sales_service import leasing, opportunities, payments, schemas, tasks, units, viewings
from sales_service.reactions import customer_merged

SCAN_SECONDS = float(config.env("CRM_SALES_SCAN_SECONDS", "3600"))
REMINDER_SCAN_SECONDS = float(config.env("CRM_TASK_REMINDER_SECONDS", "60"))


class SalesService(AuditTrail, CrmService):
    name = "sales"

    customers = ServiceRpc("customer")

    def _checked(self, schema, data):
        """Validate ``data`` and look up its customer; one InvalidInput names every bad field
        (the body's and ``customer_id``). Returns the customer record."""
        problems = {}
        try:
            schemas.load(schema, data)
        except InvalidInput as exc:
            problems.update(exc.details)
        if "customer_id" not in problems:
            try:
                customer = live_customer(self.customers, (data or {}).get("customer_id"))
            except InvalidInput as exc:
                problems.update(exc.details)
        if problems:
            raise InvalidInput(problems)
        return customer

    # -- units -----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_unit(self, data, actor=None):
        with self.db.transaction() as session:
            return units.to_dict(units.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def get_unit(self, unit_id):
        with self.db.transaction() as session:
            return units.to_dict(units.get(session, unit_id))

    @rpc(expected_exceptions=EXPECTED)
    def list_units(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return units.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def update_unit(self, unit_id, changes, actor=None):
        with self.db.transaction() as session:
            return units.to_dict(units.update(session, unit_id, changes, actor))

    # -- opportunities ---------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_opportunity(self, data, actor=None):
        customer = self._checked(schemas.opportunity_schema, data)
        with self.db.transaction() as session:
            return opportunities.to_dict(opportunities.create(session, data, actor, customer))

    @rpc(expected_exceptions=EXPECTED)
    def get_opportunity(self, opportunity_id):
        with self.db.transaction() as session:
            return opportunities.detail(session, opportunity_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_opportunities(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return opportunities.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def change_opportunity_stage(self, opportunity_id, data, actor=None):
        with self.db.transaction() as session:
            return opportunities.to_dict(
                opportunities.change_stage(session, opportunity_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def assign_opportunity(self, opportunity_id, owner_id, actor=None):
        with self.db.transaction() as session:
            return opportunities.to_dict(
                opportunities.assign(session, opportunity_id, owner_id, actor))

    @rpc(expected_exceptions=EXPECTED)
    def add_plan_step(self, opportunity_id, data, actor=None):
        with self.db.transaction() as session:
            return opportunities.to_dict(
                opportunities.add_plan_step(session, opportunity_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def complete_plan_step(self, opportunity_id, step_id, result, actor=None):
        with self.db.transaction() as session:
            return opportunities.to_dict(opportunities.complete_plan_step(
                session, opportunity_id, step_id, result, actor))

    @rpc(expected_exceptions=EXPECTED)
    def forecast(self, filters=None):
        with self.db.transaction() as session:
            return opportunities.forecast(session, filters)

    @rpc(expected_exceptions=EXPECTED)
    def get_opportunity_stage_limits(self):
        with self.db.transaction() as session:
            return opportunities.stage_limits(session)

    @rpc(expected_exceptions=EXPECTED)
    def set_opportunity_stage_limits(self, limits, actor=None):
        with self.db.transaction() as session:
            return opportunities.set_stage_limits(session, limits, actor)

    # -- viewings --------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def book_viewing(self, data, actor=None):
        with self.db.transaction() as session:
            return viewings.to_dict(viewings.book(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def get_viewing(self, viewing_id):
        with self.db.transaction() as session:
            return viewings.to_dict(viewings.get(session, viewing_id))

    @rpc(expected_exceptions=EXPECTED)
    def list_viewings(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return viewings.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def record_viewing_outcome(self, viewing_id, data, actor=None):
        with self.db.transaction() as session:
            return viewings.to_dict(viewings.record_outcome(session, viewing_id, data, actor))

    # -- leases ----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def sign_lease(self, data, actor=None):
        customer = self._checked(schemas.lease_schema, data)
        with self.db.transaction() as session:
            lease, bills = leasing.sign(session, data, actor, customer)
            return leasing.to_dict(lease, bills)

    @rpc(expected_exceptions=EXPECTED)
    def get_lease(self, lease_id):
        with self.db.transaction() as session:
            return leasing.detail(session, lease_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_leases(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return leasing.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def renew_lease(self, lease_id, data, actor=None):
        with self.db.transaction() as session:
            lease, bills = leasing.renew(session, lease_id, data, actor)
            return leasing.to_dict(lease, bills)

    @rpc(expected_exceptions=EXPECTED)
    def terminate_lease(self, lease_id, data, actor=None):
        with self.db.transaction() as session:
            return leasing.to_dict(leasing.terminate(session, lease_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def refund_deposit(self, lease_id, data, actor=None):
        with self.db.transaction() as session:
            return leasing.refund_dict(leasing.refund_deposit(session, lease_id, data, actor))

    # -- bills and payments ----------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_bills(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return payments.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def get_bill(self, bill_id):
        with self.db.transaction() as session:
            return payments.detail(session, bill_id)

    @rpc(expected_exceptions=EXPECTED)
    def add_charge(self, lease_id, data, actor=None):
        with self.db.transaction() as session:
            return payments.bill_dict(payments.add_charge(session, lease_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def record_payment(self, data, idempotency_key=None, actor=None):
        with self.db.transaction() as session:
            return payments.record_payment(session, data, idempotency_key, actor)

    # -- tasks -----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_task(self, data, actor=None):
        if isinstance(data, dict) and data.get("customer_id") is not None:
            self._checked(schemas.task_schema, data)  # a task's customer is a live one too
        with self.db.transaction() as session:
            return tasks.to_dict(tasks.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def get_task(self, task_id):
        with self.db.transaction() as session:
            return tasks.to_dict(tasks.get(session, task_id))

    @rpc(expected_exceptions=EXPECTED)
    def list_tasks(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return tasks.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def complete_task(self, task_id, result=None, actor=None):
        with self.db.transaction() as session:
            return tasks.to_dict(tasks.complete(session, task_id, result, actor))

    @rpc(expected_exceptions=EXPECTED)
    def urge_task(self, task_id, actor=None):
        with self.db.transaction() as session:
            return tasks.to_dict(tasks.urge(session, task_id, actor))

    # -- scans (timers; also callable now) -------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def run_daily_scans(self):
        return self._scans()

    @timer(interval=SCAN_SECONDS)
    def daily_scans(self):
        self._scans()

    def _scans(self):
        """Each scan in its own transaction: one failing does not hold back the others."""
        done = {}
        with self.db.transaction() as session:
            done["leases_ended"] = leasing.end_due_leases(session)
        with self.db.transaction() as session:
            done.update(payments.scan_overdue(session, open_task=tasks.open_collection_task))
        with self.db.transaction() as session:
            done["renewal_opportunities"] = len(leasing.open_renewal_opportunities(session))
        with self.db.transaction() as session:
            done["stagnant_opportunities"] = len(opportunities.scan_stagnation(session))
        return done

    @timer(interval=REMINDER_SCAN_SECONDS)
    def task_reminders(self):
        with self.db.transaction() as session:
            tasks.scan_reminders(session)

    # -- reactions to other services' events -----------------------------------------------
    @on_event("marketing", "campaign.response_received")
    def on_campaign_response(self, session, data, envelope):
        opportunities.create_from_campaign_response(session, data, envelope)

    @on_event("customer", "customer.merged")
    def on_customer_merged(self, session, data, envelope):
        customer_merged(session, data)
