"""Ops endpoints without auth (``/healthz``, ``/readyz``, ``/metrics``) and the interactive docs.

``/docs`` is Swagger UI served from the swagger-ui-bundle package's own files: no CDN, so the
docs work on an isolated network.
"""
import time
from concurrent.futures import ThreadPoolExecutor

import marshmallow as ma
from flask import Blueprint as FlaskBlueprint
from flask import current_app, jsonify, send_from_directory
from flask_smorest import Blueprint
from swagger_ui_bundle import swagger_ui_path

from crm_kit.rpc_client import RemoteError, ServiceTimeout, ServiceUnavailable
from crm_gateway import metrics, rpc

PING_TIMEOUT = 1.0

blp = Blueprint("ops", __name__, description="Health, readiness and metrics (no auth)")


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})
    service = ma.fields.String(metadata={"example": "gateway"})
    version = ma.fields.String()


class ServiceReadinessSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok, unavailable, timeout or error"})
    latency_ms = ma.fields.Float(allow_none=True)


class ReadinessSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ready or not_ready"})
    broker = ma.fields.String(metadata={"description": "ok or unreachable"})
    services = ma.fields.Dict(keys=ma.fields.String(),
                              values=ma.fields.Nested(ServiceReadinessSchema))


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, HealthSchema)
def healthz():
    """The process is up (says nothing of the services)."""
    settings = current_app.config["CRM_SETTINGS"]
    return {"status": "ok", "service": "gateway", "version": settings.version}


def _ping(client, service):
    started = time.perf_counter()
    try:
        client.call(service, "ping", timeout=PING_TIMEOUT)
    except ServiceUnavailable:
        return {"status": "unavailable", "latency_ms": None}
    except ServiceTimeout:
        return {"status": "timeout", "latency_ms": None}
    except RemoteError:
        return {"status": "error", "latency_ms": None}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ReadinessSchema, description="the broker or a service is not ready")
def readyz():
    """Ready when the broker is reachable and every service the gateway needs answers ``ping``
    within a second."""
    settings = current_app.config["CRM_SETTINGS"]
    client = rpc.get_client()
    names = settings.ready_services
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        answers = dict(zip(names, pool.map(lambda name: _ping(client, name), names)))
    broker = "ok" if client.connected else "unreachable"
    ready = broker == "ok" and all(answer["status"] == "ok" for answer in answers.values())
    body = {"status": "ready" if ready else "not_ready", "broker": broker, "services": answers}
    if not ready:
        response = jsonify(body)
        response.status_code = 503
        return response
    return body


@blp.route("/metrics", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, {"type": "string"}, content_type="text/plain",
              description="Prometheus text exposition")
def prometheus_metrics():
    """Prometheus metrics: RED per HTTP route and per RPC method."""
    return metrics.exposition()


# ---------------------------------------------------------------- interactive docs

docs = FlaskBlueprint("docs", __name__)

SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CRM API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/api/v1/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      persistAuthorization: true
    });
  </script>
</body>
</html>
"""


@docs.route("/docs", methods=["GET"])
def swagger_ui():
    return current_app.response_class(SWAGGER_PAGE, mimetype="text/html")


@docs.route("/docs/assets/<path:filename>", methods=["GET"])
def swagger_ui_assets(filename):
    return send_from_directory(swagger_ui_path, filename, max_age=3600)
