"""The event envelope of api.md, built and checked in one place.

    {"event_id": uuid, "type": "lease.signed", "version": 1, "occurred_at": ISO 8601,
     "source": "sales", "correlation_id": ..., "data": {...}}
"""
import uuid
from datetime import datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate

EVENT_TYPE = validate.Regexp(r"^[a-z_]+\.[a-z_]+$", error="must look like 'noun.verb'")


class EnvelopeSchema(Schema):
    event_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=EVENT_TYPE)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1, max=64))
    correlation_id = fields.String(required=False, allow_none=True, load_default=None)
    data = fields.Dict(required=True)


_schema = EnvelopeSchema()


class InvalidEnvelope(ValueError):
    """The message is not an event of our catalogue's shape: a poison message."""


def now():
    return datetime.now(timezone.utc)


def make_envelope(event_type, data, source, correlation_id=None, version=1, occurred_at=None):
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "version": version,
        "occurred_at": (occurred_at or now()).isoformat(),
        "source": source,
        "correlation_id": correlation_id,
        "data": data,
    }


def check_envelope(payload):
    """Return ``payload`` if it is a well-formed envelope, else raise InvalidEnvelope."""
    if not isinstance(payload, dict):
        raise InvalidEnvelope(f"event body is {type(payload).__name__}, not an object")
    try:
        _schema.load(payload)
    except ValidationError as exc:
        raise InvalidEnvelope(f"bad envelope: {exc.messages}") from None
    return payload
