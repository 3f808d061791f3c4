"""The service desk's nameko entrypoints: validate, call the logic, return.

Business rules live in ``tickets``, ``agents``, ``sla``, ``business_time`` and ``knowledge``;
this class opens transactions, asks the customer and sales services what it must know (before
the transaction), and maps calls, events and the SLA timer onto the logic.
"""
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from crm_kit import config
from crm_kit.errors import EXPECTED, InvalidInput, NotFound
from crm_kit.inbox import on_event
from crm_kit.references import live_customer
from crm_kit.rpc import ServiceRpc
from crm_kit.service import CrmService
from crm_kit.validation import page as page_of
from service_desk_service import agents, knowledge, schemas, sla, tickets
from service_desk_service.reactions import customer_erased, customer_merged

SLA_SCAN_SECONDS = float(config.env("CRM_SLA_SCAN_SECONDS", "60"))


class KnowledgeIndex(DependencyProvider):
    """Loads jieba's dictionary when the service starts, so no request pays for it."""

    def setup(self):
        knowledge.warm_up()

    def get_dependency(self, worker_ctx):
        return knowledge


class ServiceDeskService(CrmService):
    name = "service_desk"

    customers = ServiceRpc("customer")
    sales = ServiceRpc("sales")
    kb = KnowledgeIndex()

    def _checked_ticket(self, data):
        """Validate a new ticket and look up its customer, unit and lease; one InvalidInput
        names every bad field. Returns ``(customer, unit, lease)``."""
        problems = {}
        try:
            schemas.load(schemas.ticket_schema, data)
        except InvalidInput as exc:
            problems.update(exc.details)
        data = data if isinstance(data, dict) else {}
        customer = unit = lease = None
        if "customer_id" not in problems:
            try:
                customer = live_customer(self.customers, data.get("customer_id"))
            except InvalidInput as exc:
                problems.update(exc.details)
        if data.get("lease_id") and "lease_id" not in problems:
            try:
                lease = self.sales.call("get_lease", data["lease_id"])
            except NotFound:
                problems["lease_id"] = ["no such lease"]
            else:
                if customer is not None and lease["customer_id"] != customer["id"]:
                    problems["lease_id"] = ["belongs to another customer"]
                if data.get("unit_id") and lease["unit_id"] != data["unit_id"]:
                    problems.setdefault("unit_id", []).append("is not the lease's unit")
        unit_id = data.get("unit_id") or (lease or {}).get("unit_id")
        if unit_id and "unit_id" not in problems:
            try:
                unit = self.sales.call("get_unit", unit_id)
            except NotFound:
                problems["unit_id"] = ["no such unit"]
        if problems:
            raise InvalidInput(problems)
        return customer, unit, lease

    # -- tickets ---------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_ticket(self, data, actor=None):
        customer, unit, lease = self._checked_ticket(data)
        with self.db.transaction() as session:
            ticket, suggested = tickets.create(session, data, actor, customer, unit, lease)
            return tickets.detail(session, ticket.id, suggested)

    @rpc(expected_exceptions=EXPECTED)
    def get_ticket(self, ticket_id):
        with self.db.transaction() as session:
            return tickets.detail(session, ticket_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_tickets(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return tickets.search(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def assign_ticket(self, ticket_id, assignee_id, actor=None):
        with self.db.transaction() as session:
            return tickets.to_dict(tickets.assign(session, ticket_id, assignee_id, actor))

    @rpc(expected_exceptions=EXPECTED)
    def change_ticket_status(self, ticket_id, status, note=None, actor=None):
        with self.db.transaction() as session:
            return tickets.to_dict(tickets.change_status(session, ticket_id, status, note,
                                                         actor))

    @rpc(expected_exceptions=EXPECTED)
    def add_comment(self, ticket_id, body, actor=None):
        with self.db.transaction() as session:
            return tickets.comment_dict(tickets.add_comment(session, ticket_id, body, actor))

    @rpc(expected_exceptions=EXPECTED)
    def book_appointment(self, ticket_id, data, actor=None):
        with self.db.transaction() as session:
            return tickets.appointment_dict(tickets.book_appointment(session, ticket_id, data,
                                                                     actor))

    @rpc(expected_exceptions=EXPECTED)
    def record_feedback(self, ticket_id, data, actor=None):
        with self.db.transaction() as session:
            return tickets.to_dict(tickets.record_feedback(session, ticket_id, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def reopen_ticket(self, ticket_id, reason, actor=None):
        with self.db.transaction() as session:
            return tickets.to_dict(tickets.reopen(session, ticket_id, reason, actor))

    # -- knowledge base --------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_article(self, data, actor=None):
        with self.db.transaction() as session:
            return knowledge.to_dict(knowledge.create(session, data, actor))

    @rpc(expected_exceptions=EXPECTED)
    def list_articles(self, filters=None, page=1, per_page=50):
        with self.db.transaction() as session:
            return knowledge.search_list(session, filters, *page_of(page, per_page))

    @rpc(expected_exceptions=EXPECTED)
    def get_article(self, article_id):
        with self.db.transaction() as session:
            return knowledge.to_dict(knowledge.get(session, article_id))

    @rpc(expected_exceptions=EXPECTED)
    def search_articles(self, query, limit=10):
        with self.db.transaction() as session:
            return knowledge.search(session, query, limit)

    @rpc(expected_exceptions=EXPECTED)
    def ticket_to_article(self, ticket_id, data=None, actor=None):
        with self.db.transaction() as session:
            return knowledge.to_dict(knowledge.from_ticket(session, ticket_id, data, actor))

    # -- assignment registry and SLA policy ------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_agents(self):
        with self.db.transaction() as session:
            return agents.registry(session)

    @rpc(expected_exceptions=EXPECTED)
    def set_agent(self, staff_id, data, actor=None):
        with self.db.transaction() as session:
            return agents.set_agent(session, staff_id, data, actor)

    @rpc(expected_exceptions=EXPECTED)
    def get_sla_policy(self):
        with self.db.transaction() as session:
            return sla.policy(session)

    @rpc(expected_exceptions=EXPECTED)
    def set_sla_policy(self, data, actor=None):
        with self.db.transaction() as session:
            return sla.set_policy(session, data, actor)

    # -- SLA scan (timer; also callable now) -----------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def run_sla_scan(self):
        with self.db.transaction() as session:
            return {"breached": sla.scan(session)}

    @timer(interval=SLA_SCAN_SECONDS)
    def sla_scan(self):
        with self.db.transaction() as session:
            sla.scan(session)

    # -- reactions to other services' events -----------------------------------------------
    @on_event("customer", "customer.merged")
    def on_customer_merged(self, session, data, envelope):
        customer_merged(session, data)

    @on_event("customer", "customer.erased")
    def on_customer_erased(self, session, data, envelope):
        customer_erased(session, data)
