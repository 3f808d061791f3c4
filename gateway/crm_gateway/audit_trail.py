"""The gateway's part of the audit trail (``crm_kit.audit``): changes of staff accounts and
their permissions, in the gateway's own database; and reading the whole trail, the gateway's
and the services' (``audit_trail`` RPC of customer and sales), merged newest first.

What a staff entry holds: username, display name, roles, district, supervisor, active; a new
password is ``{"password": "changed"}``, never the hash.
"""
from datetime import datetime

from crm_kit import audit
from crm_kit.errors import InvalidInput
from crm_gateway import rpc
from crm_gateway.permissions import mask_customer

SOURCES = ("customer", "sales", "gateway")  # the services that keep an audit trail, and us
SERVICES = ("customer", "sales")
#: how deep a merged page may reach (page × per_page): each source gives up to this many
MAX_MERGED = audit.MAX_PER_PAGE
#: entries whose before/after are customer data, masked for the reader as customers are
CUSTOMER_ENTITIES = frozenset({"customer"})


def staff_view(staff):
    return {"username": staff.username, "display_name": staff.display_name,
            "roles": list(staff.roles or ()), "district": staff.district,
            "supervisor_id": staff.supervisor_id, "active": bool(staff.active)}


def record_staff(session, actor, action, staff, before, password_changed=False):
    """Audit a change of ``staff`` (``before``: its ``staff_view`` before, None when new), in
    the session's transaction."""
    after = staff_view(staff)
    if password_changed:
        after["password"] = audit.SECRET_SHOWN_AS
    return audit.record(session, actor, action, "staff", staff.id, before, after)


# ---------------------------------------------------------------- reading

def _page_of(source, session, filters, page, per_page):
    if source == "gateway":
        return audit.trail(session, filters, page, per_page, source="gateway")
    return rpc.call(source, "audit_trail", filters, page, per_page)


def _newest_first(entry):
    return (datetime.fromisoformat(entry["at"]), entry["source"], entry["id"])


def read(session, filters, source, page, per_page, roles):
    """A page of the trail of ``source`` (or of every source, merged newest first), with
    customer data masked for ``roles`` as the customer routes mask it."""
    if source:
        result = _page_of(source, session, filters, page, per_page)
    else:
        depth = page * per_page
        if depth > MAX_MERGED:
            raise InvalidInput({"page": [
                f"all sources merged reach {MAX_MERGED} entries deep at most: name a source, "
                "or narrow with since/until"]})
        parts = [_page_of(name, session, filters, 1, depth) for name in SOURCES]
        merged = sorted((e for part in parts for e in part["items"]), key=_newest_first,
                        reverse=True)
        result = {"items": merged[(page - 1) * per_page:depth],
                  "total": sum(part["total"] for part in parts), "page": page,
                  "per_page": per_page}
    result["items"] = [masked(entry, roles) for entry in result["items"]]
    return result


def masked(entry, roles):
    """The entry with the mobile and ID numbers of customer data masked as ``roles`` must see
    them (``permissions.mask_customer``); only the keys the entry has."""
    if entry.get("entity") not in CUSTOMER_ENTITIES:
        return entry
    entry = dict(entry)
    for side in ("before", "after"):
        state = entry.get(side)
        if state:
            shown = mask_customer(state, roles)
            entry[side] = {key: shown[key] for key in state}
    return entry
