"""Shapes shared by every resource: pagination, list pages, ids."""
import re

import marshmallow as ma
from marshmallow import fields, validate

MAX_PER_PAGE = 200

# mainland China mobile: 11 digits starting with 1
MOBILE_PATTERN = re.compile(r"^1\d{10}$")
MOBILE = validate.Regexp(MOBILE_PATTERN, error="must be a mainland China mobile number: "
                                               "11 digits starting with 1")
# mainland resident ID: 17 digits and a digit or X (the check digit is verified by the service)
ID_NUMBER = validate.Regexp(r"^\d{17}[\dXx]$",
                            error="must be an 18-character resident ID number")


class DictSchema(ma.Schema):
    """Output of a service's dict: a missing key is left out (never ``dict.items`` & co.)."""

    def get_attribute(self, obj, attr, default):
        if isinstance(obj, dict):
            return obj.get(attr, default)
        return super().get_attribute(obj, attr, default)


class PageQuery(ma.Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE),
                              metadata={"description": f"at most {MAX_PER_PAGE}"})


class Id(fields.String):
    """Ids are opaque strings (api.md), even where a service keeps a number."""


def page_of(item_schema, name):
    """The list envelope of api.md: ``{items, total, page, per_page}``."""
    return DictSchema.from_dict({
        "items": fields.List(fields.Nested(item_schema), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
    }, name=name)
