"""Marshmallow schemas: what the gateway accepts and what it answers (and so the OpenAPI)."""
