"""One flask-smorest blueprint per resource group: auth, staff, customers, ops, the
leasing groups of ``leasing.py`` (units, opportunities, leases, tasks) and the service-desk
groups of ``service_desk.py`` (tickets, knowledge base, service desk settings)."""

# flask-smorest registers one component response per HTTP status, with the api.md error body
# (GatewayApi.ERROR_SCHEMA); routes refer to them by these names
_RESPONSE_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

AUTH_ERRORS = (401, 403)
RPC_ERRORS = (503, 504)


def error_responses(blp, *statuses):
    """Document the error responses a route can give (all in the api.md error format)."""
    def decorator(func):
        for status in statuses:
            func = blp.alt_response(status, _RESPONSE_NAMES[status])(func)
        return func
    return decorator
