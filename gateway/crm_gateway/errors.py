"""Every error the gateway answers, in the one format of api.md:

    {"error": {"code": "validation_error", "message": "…", "details": {...}}}

Sources: Flask/werkzeug HTTP errors (404, 405, 413 …), webargs/marshmallow validation (422,
``details`` naming each field; malformed JSON is 400), errors the gateway raises itself
(``crm_kit.errors`` classes and ``Unauthorized``/``Forbidden`` below), RPC failures
(``ServiceUnavailable`` → 503, ``ServiceTimeout`` → 504, a service's ``NotFound``/``Conflict``/
``InvalidInput`` → 404/409/422 with their details), and anything else → 500 without internals.
"""
import logging

import marshmallow as ma
from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException

from crm_kit import errors as crm_errors
from crm_kit.rpc_client import RemoteError, RpcError, ServiceTimeout, ServiceUnavailable

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
    504: "service_timeout",
}


class Unauthorized(crm_errors.CrmError):
    http_status = 401
    code = "unauthorized"


class Forbidden(crm_errors.CrmError):
    http_status = 403
    code = "forbidden"


class BadRequest(crm_errors.CrmError):
    http_status = 400
    code = "bad_request"


def error_response(status, message, details=None, code=None, headers=None):
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message,
                      "details": details or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# ---------------------------------------------------------------- documentation of the format

class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={
        "description": "machine-readable: " + ", ".join(sorted(set(CODES.values())))})
    message = ma.fields.String(required=True, metadata={"description": "for people"})
    details = ma.fields.Dict(metadata={
        "description": "422: field name → list of messages; 409: e.g. existing_id"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBodySchema, required=True)


# ---------------------------------------------------------------- handlers

def _validation_details(messages):
    """webargs nests messages under the location (json, query …): callers only need fields."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    details = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            details.update(fields)
        else:
            details.setdefault("_schema", []).extend(fields if isinstance(fields, list) else [fields])
    return details


def handle_http_exception(error):
    data = getattr(error, "data", None) or {}
    status = error.code or 500
    headers = data.get("headers") or {}
    if status == 400 and "messages" in data:  # webargs: the body is not JSON
        return error_response(400, "The request body is not valid JSON.", headers=headers)
    if status == 422 and "messages" in data:
        return error_response(422, "Some fields are invalid.",
                              _validation_details(data["messages"]), headers=headers)
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_response(413, f"The request body is larger than the {limit} bytes allowed.",
                              {"max_bytes": limit}, headers=headers)
    if status == 405:
        headers = dict(headers, Allow=", ".join(error.valid_methods or ()))
    if status >= 500:
        log.error("HTTP %s: %s", status, error.description)
        return error_response(status, "Internal error.", headers=headers)
    message = data.get("message") or error.description or error.name
    return error_response(status, message, data.get("errors"), headers=headers)


def handle_crm_error(error):
    # RFC 6750: a 401 names the scheme the client should use; a lockout says when to retry
    headers = dict(getattr(error, "headers", None) or {})
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="crm"'
    return error_response(error.http_status, error.message, error.details, code=error.code,
                          headers=headers)


def handle_rpc_error(error):
    service = error.service or "a"
    if isinstance(error, ServiceUnavailable):
        return error_response(503, f"The {service} service is unavailable.",
                              {"service": error.service}, headers={"Retry-After": "5"})
    if isinstance(error, ServiceTimeout):
        return error_response(504, f"The {service} service did not answer in time.",
                              {"service": error.service})
    if isinstance(error, RemoteError):
        known = crm_errors.BY_NAME.get(error.exc_type)
        if known is not None:
            details = error.details
            return error_response(known.http_status, error.message, details, code=known.code)
        # a bug in the service: log its type (never the value: it may hold personal data)
        log.error("the %s service failed on %s: %s", error.service, error.method, error.exc_type)
        return error_response(500, "Internal error.")
    log.error("RPC to %s failed: %s", error.service, error.__class__.__name__)
    return error_response(500, "Internal error.")


def handle_unexpected(error):
    current_app.logger.exception("unhandled error")
    return error_response(500, "Internal error.")


def register(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(crm_errors.CrmError, handle_crm_error)
    app.register_error_handler(RpcError, handle_rpc_error)
    app.register_error_handler(Exception, handle_unexpected)
