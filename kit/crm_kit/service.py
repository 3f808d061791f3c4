"""What every CRM service class inherits: its database, its metrics, and the admin RPCs.

    class CustomerService(CrmService):
        name = "customer"

        @rpc(expected_exceptions=errors.EXPECTED)
        def get_customer(self, customer_id):
            with self.db.transaction() as session:
                return customers.get(session, customer_id)
"""
from nameko.rpc import rpc

from crm_kit import inbox, outbox
from crm_kit.db import Database
from crm_kit.errors import EXPECTED
from crm_kit.metrics import Metrics


class CrmService:
    name = None  # set by each service

    db = Database()
    metrics = Metrics()

    @rpc
    def ping(self):
        return {"service": self.name, "status": "ok"}

    @rpc
    def list_dead_letters(self, status="dead"):
        """Events a handler kept failing on (``status`` ``dead`` or ``replayed``; None for all)."""
        return inbox.list_dead_letters(self.db.provider, status)

    @rpc
    def event_history(self, after_id=0, limit=1000):
        """The events this service published, in order, after outbox row ``after_id``:
        ``{"events": [envelope, ...], "last_id": n}`` — how a consumer rebuilds its copy."""
        return outbox.history(self.db.provider.sessionmaker, after_id, limit)

    @rpc
    def replay_dead_letters(self, ids=None):
        """Re-run waiting dead letters (all, or the given ids) through their handlers."""
        return inbox.replay_dead_letters(self.db.provider, type(self), self, ids)


class AuditTrail:
    """Mixin of the services that keep an audit trail (``crm_kit.audit``; their migrations
    call ``create_audit_trail()``): ``class CustomerService(AuditTrail, CrmService)``."""

    @rpc(expected_exceptions=EXPECTED)
    def audit_trail(self, filters=None, page=1, per_page=50):
        """Audit entries, newest first (filters ``entity, entity_id, action, actor_id,
        subject_id, since, until``): ``{items, total, page, per_page}``."""
        from crm_kit import audit
        from crm_kit.validation import page as page_of

        with self.db.transaction() as session:
            return audit.trail(session, filters,
                               *page_of(page, per_page, most=audit.MAX_PER_PAGE))
