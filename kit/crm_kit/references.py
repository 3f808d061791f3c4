"""Checking a reference to another service's record before acting on it.

Every service that stores a ``customer_id`` (sales, the service desk, …) must first make sure
the customer exists and is live, asking the customer service over RPC *before* its own
transaction. This is that check, written once, against the customer service's contract
(docs/rpc-contracts.md): merged customers name their survivor, erased ones are refused.
"""
from crm_kit.errors import InvalidInput, NotFound


def live_customer(customers, customer_id, field="customer_id"):
    """The customer record from ``customers`` (a ``ServiceRpc("customer")`` caller), or
    InvalidInput naming ``field``. ``Unavailable`` (503) passes through."""
    if not isinstance(customer_id, str) or not customer_id:
        raise InvalidInput({field: ["is required"]})
    try:
        customer = customers.call("get_customer", customer_id)
    except NotFound:
        raise InvalidInput({field: ["no such customer"]}) from None
    if customer.get("merged_into"):
        raise InvalidInput({field: [f"was merged into {customer['merged_into']}"]})
    if customer.get("erased"):
        raise InvalidInput({field: ["was erased"]})
    return customer
