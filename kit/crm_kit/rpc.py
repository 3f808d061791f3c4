"""RPC from one service to another, with a timeout (nameko 2's ``RpcProxy`` waits forever).

    class SalesService(CrmService):
        customers = ServiceRpc("customer")

        @rpc
        def sign_lease(self, data, actor):
            customer = self.customers.call("get_customer", data["customer_id"])

The target's business errors come back as the same ``crm_kit.errors`` classes (``NotFound``,
``Conflict``, ``InvalidInput``; ``crm_kit.errors`` registers them with nameko), so the caller
can catch them by type. A target that is not running, does not answer within
``CRM_RPC_TIMEOUT`` seconds, or cannot be asked because the broker is away raises
``Unavailable`` (503 at the gateway). Call other services *before* opening a database
transaction: a transaction kept open across a network wait holds its connection (on SQLite,
the only one).
"""
import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy

from crm_kit import config, errors


class _Timeout(Exception):
    pass


class ServiceCaller:
    def __init__(self, proxy, service, timeout):
        self._proxy = proxy
        self._service = service
        self._timeout = timeout

    def call(self, method, *args, **kwargs):
        try:
            with eventlet.Timeout(self._timeout, _Timeout):
                return getattr(self._proxy, method)(*args, **kwargs)
        except _Timeout:
            raise errors.Unavailable(f"the {self._service} service did not answer in time",
                                     {"service": self._service}) from None
        except UnknownService:
            raise errors.Unavailable(f"the {self._service} service is not running",
                                     {"service": self._service}) from None
        except (OperationalError, AmqpConnectionError, ConnectionError):
            # the broker is away (restarting): the call was never taken
            raise errors.Unavailable("the message broker is unreachable",
                                     {"service": self._service}) from None


class ServiceRpc(RpcProxy):
    """A nameko ``RpcProxy`` whose calls time out. ``self.<attr>.call(method, *args)``."""

    def __init__(self, target_service, timeout=None, **options):
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        proxy = super().get_dependency(worker_ctx)
        return ServiceCaller(proxy, self.target_service, self.timeout or config.rpc_timeout())
