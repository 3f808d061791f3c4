"""Stand-ins for what the real services never answer: real nameko services on the real
broker, answering the RPCs of ``crm_gateway.customer_360`` the way the gateway expects them
(gateway/README.md), each in a way the view must handle:

- ``marketing``: a faulty one, ``slow`` (answers after the gateway's RPC timeout) or ``broken``
  (a bug) — the real marketing service is neither, so its own tests
  (``test_marketing_routes.py``) run the real one and these faults stay here;
- ``analytics`` (only with ``analytics`` as the third argument): scores that repeat the
  customer's mobile and ID number (read from the real customer service) and echo what they
  were asked with — odd scores that the real analytics service never gives (its scores carry
  no personal data), kept to show that the view masks whatever a section carries and asks
  each section with the request's correlation id. Where a test only needs scores, it runs the
  real analytics service (the ``analytics_service`` fixture; ``test_analytics_routes.py``).

Run: ``python other_services.py <amqp uri> slow|broken [analytics]`` (the ``other_services``
fixture does).
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402

import signal  # noqa: E402
import sys  # noqa: E402

from nameko.contextdata import ContextDataProvider  # noqa: E402
from nameko.rpc import RpcProxy, rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402


#: longer than the gateway's RPC timeout in the tests (gateway_support.RPC_TIMEOUT)
SLOW_SECONDS = 4.0
MARKETING = sys.argv[2] if len(sys.argv) > 2 else "slow"
ODD_ANALYTICS = len(sys.argv) > 3 and sys.argv[3] == "analytics"


class CorrelationId(ContextDataProvider):
    context_key = "correlation_id"


class Marketing:
    name = "marketing"

    @rpc
    def ping(self):
        return {"service": self.name, "status": "ok"}

    @rpc
    def list_messages(self, filters, page, per_page):
        if MARKETING == "slow":
            eventlet.sleep(SLOW_SECONDS)
            return {"items": [], "total": 0, "page": page, "per_page": per_page}
        columns = {"customer_id": filters["customer_id"]}
        return columns["boom_secret_column"]  # KeyError: a bug


class OddAnalytics:
    """Scores with personal data in them, and what they were asked with."""

    name = "analytics"
    customer = RpcProxy("customer")
    correlation_id = CorrelationId()

    @rpc
    def ping(self):
        return {"service": self.name, "status": "ok"}

    @rpc
    def get_scores(self, customer_id):
        customer = self.customer.get_customer(customer_id)
        return {"customer_id": customer["id"], "value_tier": "important",
                "contact": {"name": customer["name"], "mobile": customer["mobile"],
                            "id_number": customer["id_number"]},
                "asked": {"customer_id": customer_id, "correlation_id": self.correlation_id}}


def main(amqp_uri):
    runner = ServiceRunner({"AMQP_URI": amqp_uri, "serializer": "json"})
    for service in (Marketing, OddAnalytics) if ODD_ANALYTICS else (Marketing,):
        runner.add_service(service)
    signal.signal(signal.SIGTERM, lambda *_: runner.kill())
    runner.start()
    runner.wait()


if __name__ == "__main__":
    main(sys.argv[1])
