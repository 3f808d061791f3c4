"""The CRM's HTTP API gateway: staff authentication, role permissions, validation, the customer
360 view, OpenAPI docs, health and metrics. Customer data lives in the customer service, reached
over nameko RPC; only staff accounts live here."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crm-gateway")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0.1.0"


def create_app(config=None):
    from crm_gateway.app import create_app as _create_app
    return _create_app(config)
