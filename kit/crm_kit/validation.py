"""Loading a request's data through a marshmallow schema, the same way in every service."""
from marshmallow import ValidationError

from crm_kit.errors import InvalidInput


def load(schema, data, partial=False):
    """Validate ``data`` or raise InvalidInput naming each bad field (422 at the gateway)."""
    if not isinstance(data, dict):
        raise InvalidInput({"_schema": ["must be an object"]})
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise InvalidInput(exc.messages) from None
