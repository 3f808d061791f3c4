"""Object-level access (OWASP API1): which customers, and what follows them, a caller may see
and change. ``permissions.py`` says who may call a route; this module says on which records.

Who is limited (docs/security.md, "Who sees which records"):

- a ``customer_manager`` reaches the customers they own (``owner_id`` is them);
- a ``sales_supervisor`` reaches their own, their team's (staff whose ``supervisor_id`` is them,
  one level) and customers with no owner (so they can hand them out);
- ``admin`` and ``executive`` reach everything (executives still change nothing: that is the
  permission table's business); ``service_agent``, ``technician`` and ``marketer`` are not
  limited by owner: they serve any tenant by function. A staff member with several roles gets
  the widest reach of their roles.

What follows a customer: its record and everything under ``/customers/{id}``, its analytics
scores, leases, their bills and payments, tickets, delivery-log messages and campaign
responses. An opportunity is reached when its own owner is in reach or its customer is; a
viewing when its staff member is, or its opportunity is; a task when its owner is.

A record out of reach answers 404 with the same body as one that does not exist. A write that
names an out-of-reach record in its body (``customer_id`` of a new lease, ``bill_id`` of a
payment …) reaches the service with an id no record has in its place, and the original id is put
back into the service's answer: it answers exactly as for an unknown id, and writes nothing.

The reach is computed once per request and kept on ``flask.g``; an unlimited caller costs no
RPC at all. Lists are filtered by the services (``owner_ids``, ``customer_ids``, ``visible_to``
filters): the ids of a limited caller's customers come from one customer-service call per
request.
"""
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from flask import g
from sqlalchemy import select

from crm_kit import errors as crm_errors
from crm_kit.errors import NotFound
from crm_kit.rpc_client import RemoteError
from crm_gateway import db, rpc
from crm_gateway.auth import current_caller
from crm_gateway.errors import Forbidden
from crm_gateway.models import Staff
from crm_gateway.permissions import (ADMIN, CUSTOMER_MANAGER, EXECUTIVE, MARKETER,
                                     SALES_SUPERVISOR, SERVICE_AGENT, TECHNICIAN)

#: roles that reach every customer (by rank or by function)
UNLIMITED = frozenset({ADMIN, EXECUTIVE, SERVICE_AGENT, TECHNICIAN, MARKETER})
#: roles that may make someone else the owner of a customer or an opportunity
ASSIGNERS = frozenset({ADMIN, SALES_SUPERVISOR})

CUSTOMER, SALES, SERVICE_DESK, MARKETING = "customer", "sales", "service_desk", "marketing"
#: how a record of each kind is read, to check it (service, RPC)
READERS = {
    "customer": (CUSTOMER, "get_customer"),
    "opportunity": (SALES, "get_opportunity"),
    "viewing": (SALES, "get_viewing"),
    "lease": (SALES, "get_lease"),
    "bill": (SALES, "get_bill"),
    "task": (SALES, "get_task"),
    "ticket": (SERVICE_DESK, "get_ticket"),
    "message": (MARKETING, "get_message"),
}


@dataclass(frozen=True)
class Reach:
    """A limited caller's reach: the staff whose records they see, and whether customers
    without an owner are among them."""

    staff_ids: frozenset
    unowned: bool = False

    def owns(self, owner_id):
        return owner_id in self.staff_ids or (self.unowned and owner_id is None)

    @property
    def owner_ids(self):
        """For the customer service's ``owner_ids`` filter (``None``: no owner)."""
        return sorted(self.staff_ids) + ([None] if self.unowned else [])


def team_of(supervisor_id):
    """The staff whose supervisor is ``supervisor_id`` (one level; inactive ones too: their
    customers are still to be looked after)."""
    return set(db.session().scalars(select(Staff.id).where(Staff.supervisor_id == supervisor_id)))


def reach_of(caller):
    """The caller's ``Reach``, or ``None`` when they reach every record."""
    roles = set(caller.roles)
    if roles & UNLIMITED:
        return None
    if SALES_SUPERVISOR in roles:
        return Reach(frozenset({caller.id} | team_of(caller.id)), unowned=True)
    if CUSTOMER_MANAGER in roles:
        return Reach(frozenset({caller.id}))
    return Reach(frozenset({caller.id}))  # a role unknown here: the narrowest reach


def current():
    """The current caller's reach (``None``: unlimited), computed once per request."""
    if "crm_reach" not in g:
        g.crm_reach = reach_of(current_caller())
    return g.crm_reach


def not_found(kind, record_id):
    """The services' own answer for an id that names nothing."""
    return NotFound(f"{kind} {record_id} does not exist", {f"{kind}_id": record_id})


# ---------------------------------------------------------------- customers

def _customers_seen():
    if "crm_reach_customers" not in g:
        g.crm_reach_customers = {}
    return g.crm_reach_customers


def _customer(customer_id):
    """The customer record (read once per request), or ``None`` when there is none."""
    seen = _customers_seen()
    if customer_id not in seen:
        try:
            seen[customer_id] = rpc.call(CUSTOMER, "get_customer", customer_id)
        except RemoteError as error:
            if error.exc_type != "NotFound":
                raise
            seen[customer_id] = None
    return seen[customer_id]


def customer_ids():
    """The ids of every customer the (limited) caller reaches: one RPC per request."""
    if "crm_reach_customer_ids" not in g:
        g.crm_reach_customer_ids = rpc.call(CUSTOMER, "customer_ids_of_owners",
                                            current().owner_ids)
        g.crm_reach_customer_id_set = frozenset(g.crm_reach_customer_ids)
    return g.crm_reach_customer_ids


def customer_visible(customer):
    """May the caller see this customer record (a customer dict)?"""
    reach = current()
    return reach is None or reach.owns(customer.get("owner_id"))


def customer_reached(customer_id):
    """Does the caller reach the customer ``customer_id`` (False when there is no such one)?"""
    reach = current()
    if reach is None:
        return True
    if customer_id is None:
        return False
    if "crm_reach_customer_id_set" in g:
        return customer_id in g.crm_reach_customer_id_set
    customer = _customer(customer_id)
    return customer is not None and reach.owns(customer.get("owner_id"))


def check_customer(customer):
    """A customer record just read: returned when the caller sees it, else 404."""
    if not customer_visible(customer):
        raise not_found("customer", customer.get("id"))
    return customer


def require_customer(customer_id):
    """Before acting on ``/customers/{customer_id}``: 404 (as for no such customer) when the
    caller does not reach it. No RPC for an unlimited caller."""
    if current() is not None and not customer_reached(customer_id):
        raise not_found("customer", customer_id)  # the service's words for no such customer


# ---------------------------------------------------------------- other records

def visible(kind, record):
    """May the caller see ``record`` of ``kind`` (see READERS)?"""
    reach = current()
    if reach is None:
        return True
    if kind == "customer":
        return customer_visible(record)
    if kind == "task":
        return record.get("owner_id") in reach.staff_ids
    if kind == "opportunity":
        return (record.get("owner_id") in reach.staff_ids
                or customer_reached(record.get("customer_id")))
    if kind == "viewing":
        if record.get("staff_id") in reach.staff_ids:
            return True
        if customer_reached(record.get("customer_id")):
            return True
        opportunity = _record("opportunity", record.get("opportunity_id"))
        return opportunity is not None and opportunity.get("owner_id") in reach.staff_ids
    return customer_reached(record.get("customer_id"))


def _record(kind, record_id):
    """The record of ``kind``, or ``None`` when there is none."""
    service, method = READERS[kind]
    try:
        return rpc.call(service, method, record_id)
    except RemoteError as error:
        if error.exc_type != "NotFound":
            raise
        return None


def fetch(kind, record_id):
    """Read one record for a detail route: returned when the caller reaches it, else 404 with
    the body of a record that does not exist."""
    service, method = READERS[kind]
    record = rpc.call(service, method, record_id)
    if not visible(kind, record):
        raise not_found(kind, record_id)
    return record


def check(kind, record):
    """A record just read for its route: returned when the caller reaches it, else 404."""
    if not visible(kind, record):
        raise not_found(kind, record.get("id"))
    return record


def require(kind, record_id):
    """Before a write on a record of ``kind``: 404 as for none when the caller does not reach
    it (the service's own 404 when there is none). No RPC for an unlimited caller."""
    if current() is not None:
        fetch(kind, record_id)


def reached(kind, record_id):
    """Does the caller reach the record (True when there is none: the service will say so)?"""
    if current() is None:
        return True
    if kind == "customer":
        return _customer(record_id) is None or customer_reached(record_id)
    record = _record(kind, record_id)
    return record is None or visible(kind, record)


# ---------------------------------------------------------------- list filters

def customer_filters(filters):
    """The customer service's filters, limited to the customers the caller reaches."""
    reach = current()
    if reach is None:
        return filters
    return {**filters, "owner_ids": reach.owner_ids}


def by_customer(filters):
    """A list of records that follow a customer (leases, bills, tickets, messages): limited to
    the caller's customers."""
    if current() is None:
        return filters
    return {**filters, "customer_ids": customer_ids()}


def by_owner(filters):
    """A list by owner (tasks, the forecast): limited to the caller and their team."""
    reach = current()
    if reach is None:
        return filters
    return {**filters, "owner_ids": sorted(reach.staff_ids)}


def by_owner_or_customer(filters):
    """Opportunities and viewings: the caller's and their team's, or of their customers."""
    reach = current()
    if reach is None:
        return filters
    return {**filters, "visible_to": {"owner_ids": sorted(reach.staff_ids),
                                      "customer_ids": customer_ids()}}


def response_customers():
    """``customer_ids`` for the campaign responses list (``None``: all)."""
    return None if current() is None else customer_ids()


# ---------------------------------------------------------------- writes naming records

@contextmanager
def references(data, **kinds):
    """``with references(body, customer_id="customer", lease_id="lease") as body:`` — the body
    to send, with each named reference the caller does not reach replaced by an id no record
    has; a service error raised in the block carries the original ids again. So the answer is
    the service's own answer for an unknown id, and nothing is written."""
    swaps = {}
    if current() is not None and isinstance(data, dict):
        data = dict(data)
        for field, kind in kinds.items():
            value = data.get(field)
            if isinstance(value, str) and value and not reached(kind, value):
                stand_in = str(uuid.uuid4())
                swaps[stand_in] = value
                data[field] = stand_in
    if not swaps:
        yield data
        return
    try:
        yield data
    except RemoteError as error:
        known = crm_errors.BY_NAME.get(error.exc_type)
        if known is None:
            raise
        raise known.from_args(_put_back(error.message, swaps),
                              _put_back(error.details, swaps)) from None


def _put_back(value, swaps):
    if isinstance(value, str):
        for stand_in, original in swaps.items():
            value = value.replace(stand_in, original)
        return value
    if isinstance(value, dict):
        return {_put_back(key, swaps): _put_back(item, swaps) for key, item in value.items()}
    if isinstance(value, list):
        return [_put_back(item, swaps) for item in value]
    return value


# ---------------------------------------------------------------- property level: owners

def check_owner(field, owner_id):
    """Only supervisors and admins make someone else the owner (of a customer or an
    opportunity): anyone else may name themselves only (403 naming ``field``, nothing
    changed)."""
    caller = current_caller()
    if not isinstance(owner_id, (str, type(None))):
        return  # not an id at all: the service names the field (422)
    if caller.has_role(*ASSIGNERS) or owner_id == caller.id:
        return
    raise Forbidden("Only a sales supervisor or an admin assigns an owner other than yourself.",
                    {field: ["may only be yourself"]})


def check_team_member(field, staff_id):
    """A limited caller acts for someone in their reach only (a handover's ``from_owner_id``):
    themselves, or their team (403 naming ``field``)."""
    reach = current()
    if reach is None or staff_id in reach.staff_ids or not isinstance(staff_id, str):
        return
    raise Forbidden("You may only give this to yourself or your team.",
                    {field: ["is not you or a member of your team"]})
