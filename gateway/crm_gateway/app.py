"""The Flask app factory of the gateway.

Request pipeline, in order: metrics timer → correlation id (``X-Request-ID``) → rate limits
(``rate_limits.py``: 429) → permission
check (``crm_gateway.auth.authorize_request``, from the table in ``permissions.py``) → view
(marshmallow in, one RPC, marshmallow out) → errors in the api.md format (``errors.py``).
"""
import re
import uuid

from flask import Flask, g, request
from flask_smorest import Api

from crm_kit.logging import reset_correlation_id, set_correlation_id
from crm_gateway import auth, db, errors, metrics, rate_limits
from crm_gateway import settings as settings_module
from crm_gateway.blueprints import auth as auth_blueprint
from crm_gateway.blueprints import (analytics, audit, customers, leasing, marketing, ops,
                                    service_desk, staff)

REQUEST_ID_HEADER = "X-Request-ID"
# accept a caller's request id only if it is a harmless token (it lands in every log line)
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class GatewayApi(Api):
    """flask-smorest with the api.md error body, in answers and in the OpenAPI."""

    ERROR_SCHEMA = errors.ErrorSchema

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)

    def register_blueprint(self, blp, **options):
        # after flask-smorest's own callback has made the request body (and its 422)
        if _document_malformed_json not in blp._prepare_doc_cbks:
            blp._prepare_doc_cbks.insert(1, _document_malformed_json)
        super().register_blueprint(blp, **options)


def _document_malformed_json(doc, _doc_info, **_):
    """A route taking a JSON body answers 400 to a body that is not JSON at all (errors.py):
    the OpenAPI says so, as flask-smorest says 422 for the values."""
    if "application/json" in doc.get("requestBody", {}).get("content", {}):
        doc.setdefault("responses", {}).setdefault(400, "BAD_REQUEST")
    return doc


def _start_request():
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.correlation_id = given if REQUEST_ID_PATTERN.match(given) else str(uuid.uuid4())
    g.correlation_token = set_correlation_id(g.correlation_id)


def _add_request_id(response):
    if "correlation_id" in g:
        response.headers[REQUEST_ID_HEADER] = g.correlation_id
    return response


def _end_request(_exc=None):
    token = g.pop("correlation_token", None)
    if token is not None:
        reset_correlation_id(token)


def _openapi_config(settings):
    return {
        "API_TITLE": "CRM API",
        "API_VERSION": settings.version,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {"description": (
                "The CRM's HTTP API for staff apps. Sign in with `POST /api/v1/auth/token`, "
                "then send `Authorization: Bearer <access_token>`. Errors always look like "
                '`{"error": {"code", "message", "details"}}`. Send `X-Request-ID` to trace a '
                "request through every service; it is echoed back.")},
            "security": [{"bearerAuth": []}],
        },
    }


def create_app(config=None):
    settings = settings_module.load(config)

    app = Flask("crm_gateway", static_folder=None)
    app.config.update(_openapi_config(settings))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # larger bodies: 413
    app.config["CRM_SETTINGS"] = settings
    app.json.sort_keys = False  # fields in the order the schemas declare them
    app.json.ensure_ascii = False  # Chinese names stay readable

    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    app.extensions["crm_gateway"] = {"engine": engine, "sessions": sessions,
                                     "staff": auth.StaffDirectory(sessions)}
    with db.startup_lock(settings.data_dir):
        db.upgrade(settings.database_url)
        auth.ensure_first_admin(sessions, settings)

    # the order of these hooks is the request pipeline (see the module docstring)
    metrics.init_app(app, settings.version)
    app.before_request(_start_request)
    limiter = rate_limits.init_app(app, settings)
    app.before_request(auth.authorize_request)
    app.after_request(_add_request_id)
    app.teardown_request(_end_request)
    app.teardown_appcontext(db.close_session)

    api = GatewayApi(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    errors.register(app)  # after Api(): replaces flask-smorest's own error handler
    for blueprint in (auth_blueprint.blp, staff.blp, customers.blp, *leasing.BLUEPRINTS,
                      *service_desk.BLUEPRINTS, *marketing.BLUEPRINTS, *analytics.BLUEPRINTS,
                      audit.blp, ops.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(ops.docs)
    rate_limits.limit_blueprints(limiter, settings, analytics.BLUEPRINTS, auth_blueprint.blp)
    return app
