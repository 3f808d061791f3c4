"""WSGI entry point for servers that want a module attribute: ``crm_gateway.wsgi:app``."""
from crm_gateway.app import create_app

app = create_app()
