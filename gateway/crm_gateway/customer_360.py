"""The customer 360 view: one call that gathers what every service knows about a customer.

The profile, stage history and interactions come from the customer service and are required
(their failure fails the request, as any customer call). The other sections come from
services that may be down or not deployed yet: each is fetched in parallel, and a failing one
becomes ``{"available": false, "reason": ..., "message": ...}`` while the rest still returns.

RPCs the sections use (each ``(filters, page, per_page)`` like the customer service's lists):
``sales.list_opportunities``, ``sales.list_leases``, ``sales.list_bills``,
``service_desk.list_tickets``, ``marketing.list_messages``; and ``analytics.get_scores(customer_id)``.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

from flask import g

from crm_kit.rpc_client import RemoteError, ServiceTimeout, ServiceUnavailable
from crm_gateway import rpc
from crm_gateway.permissions import FULL_ID_NUMBER, FULL_MOBILE, mask_id_number, mask_mobile

SECTION_PAGE_SIZE = 100
INTERACTIONS_SHOWN = 20

_pool = None
_pool_lock = threading.Lock()


def _executor():
    """Threads for the fan-out, shared by all requests of the process (created after fork)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="crm-360")
        return _pool


def _unavailable(service, error):
    if isinstance(error, ServiceUnavailable):
        return {"available": False, "reason": "service_unavailable",
                "message": f"The {service} service is not running."}
    if isinstance(error, ServiceTimeout):
        return {"available": False, "reason": "service_timeout",
                "message": f"The {service} service did not answer in time."}
    return {"available": False, "reason": "service_error",
            "message": f"The {service} service failed."}


def _items(result):
    """Sections accept a page ``{items, total, …}`` or a plain list."""
    if isinstance(result, dict):
        return list(result.get("items") or [])
    return list(result or [])


def _mask_personal_data(value, roles):
    """Other services' records may repeat a customer's mobile or ID number: mask them too
    (a delivery-log message's ``recipient`` is the mobile when it went by SMS)."""
    if isinstance(value, list):
        return [_mask_personal_data(item, roles) for item in value]
    if not isinstance(value, dict):
        return value
    masked = {}
    for key, item in value.items():
        is_mobile = key == "mobile" or (key == "recipient" and value.get("channel") == "sms")
        if is_mobile and isinstance(item, str) and not roles & FULL_MOBILE:
            masked[key] = mask_mobile(item)
        elif key == "id_number" and isinstance(item, str) and not roles & FULL_ID_NUMBER:
            masked[key] = mask_id_number(item)
        else:
            masked[key] = _mask_personal_data(item, roles)
    return masked


def _section(future, service, roles, wrap):
    try:
        result = future.result()
    except (ServiceUnavailable, ServiceTimeout, RemoteError) as error:
        return _unavailable(service, error)
    return {"available": True, **_mask_personal_data(wrap(result), roles)}


def gather(customer_id, caller):
    client = rpc.get_client()
    correlation_id = g.get("correlation_id")
    pool = _executor()
    roles = set(caller.roles)
    filters = {"customer_id": customer_id}

    def submit(service, method, *args):
        return pool.submit(rpc.call_with, client, correlation_id, service, method, *args)

    calls = {
        "profile": submit("customer", "get_customer", customer_id),
        "stage_history": submit("customer", "stage_history", customer_id),
        "interactions": submit("customer", "list_interactions", customer_id, 1,
                               INTERACTIONS_SHOWN),
        "opportunities": submit("sales", "list_opportunities", filters, 1, SECTION_PAGE_SIZE),
        "leases": submit("sales", "list_leases", filters, 1, SECTION_PAGE_SIZE),
        "bills": submit("sales", "list_bills", filters, 1, SECTION_PAGE_SIZE),
        "tickets": submit("service_desk", "list_tickets", filters, 1, SECTION_PAGE_SIZE),
        "messages": submit("marketing", "list_messages", filters, 1, SECTION_PAGE_SIZE),
        "scores": submit("analytics", "get_scores", customer_id),
    }

    # the customer service's parts are the core: their errors (404, 503 …) are the answer
    view = {
        "profile": calls["profile"].result(),
        "stage_history": calls["stage_history"].result(),
        "interactions": calls["interactions"].result(),
    }
    view["opportunities"] = _section(calls["opportunities"], "sales", roles,
                                     lambda page: {"items": _items(page)})
    view["leases"] = _leases_with_bills(calls["leases"], calls["bills"], roles)
    view["tickets"] = _section(calls["tickets"], "service_desk", roles,
                               lambda page: {"items": _items(page)})
    view["messages"] = _section(calls["messages"], "marketing", roles,
                                lambda page: {"items": _items(page)})
    view["scores"] = _scores(calls["scores"], roles)
    return view


def _leases_with_bills(leases_call, bills_call, roles):
    section = _section(leases_call, "sales", roles, lambda page: {"items": _items(page)})
    if not section["available"]:
        return section
    bills = _section(bills_call, "sales", roles, lambda page: {"items": _items(page)})
    by_lease = {}
    for bill in bills.get("items", []):
        by_lease.setdefault(bill.get("lease_id"), []).append(bill)
    for lease in section["items"]:
        if "bills" not in lease:
            lease["bills"] = by_lease.get(lease.get("id"), []) if bills["available"] else None
    if not bills["available"]:
        section["message"] = "Bills are unavailable: " + bills["message"]
    return section


def _scores(call, roles):
    try:
        scores = call.result()
    except RemoteError as error:
        if error.exc_type == "NotFound":  # not scored yet: nothing to show, nothing wrong
            return {"available": True, "data": None}
        return _unavailable("analytics", error)
    except (ServiceUnavailable, ServiceTimeout) as error:
        return _unavailable("analytics", error)
    return {"available": True, "data": _mask_personal_data(scores, roles)}
