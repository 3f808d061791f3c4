"""One flask-smorest blueprint per resource group: auth, staff, customers, ops, the
leasing groups of ``leasing.py`` (units, opportunities, leases, tasks), the service-desk
groups of ``service_desk.py`` (tickets, knowledge base, service desk settings), the
marketing groups of ``marketing.py`` (segments, campaigns, care rules, messages) and the
analytics groups of ``analytics.py`` (scores, segmentation, reports)."""

# flask-smorest registers one component response per HTTP status, with the api.md error body
# (GatewayApi.ERROR_SCHEMA); routes refer to them by these names
_RESPONSE_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    414: "REQUEST_URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

AUTH_ERRORS = (401, 403)
RPC_ERRORS = (503, 504)


def error_responses(blp, *statuses):
    """Document the error responses a route can give (all in the api.md error format); every
    API route can also answer 414 (a request line longer than gunicorn takes,
    ``gunicorn_conf.py``) and 429 (``rate_limits.py``), so those are always listed."""
    def decorator(func):
        for status in dict.fromkeys((*statuses, 414, 429)):
            func = blp.alt_response(status, _RESPONSE_NAMES[status])(func)
        return func
    return decorator


# -- what every resource's views need the same way ----------------------------------------
def actor():
    """Who asks, as the services record it (docs/rpc-contracts.md)."""
    from crm_gateway.auth import current_caller

    return current_caller().actor


def given_filters(query, names):
    """The list filters the caller gave (``False`` is a filter; absent and empty are not)."""
    return {name: query[name] for name in names if query.get(name) not in (None, "")}


def require_active_staff(field, staff_id):
    """``owner_id``, ``assignee_id`` and the like must name an active staff account (a value of
    the wrong JSON type or ``null`` is left to the service to name)."""
    from crm_gateway.auth import staff_directory
    from crm_kit.errors import InvalidInput

    if not isinstance(staff_id, str) or not staff_id:
        return
    staff = staff_directory().get(staff_id)
    if staff is None or not staff.active:
        raise InvalidInput({field: ["is not an active staff member"]})
