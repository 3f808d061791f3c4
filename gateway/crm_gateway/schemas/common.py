"""Shapes shared by every resource: pagination, list pages, ids, and the field helpers of
the input schemas (which describe fields for the OpenAPI document and check JSON types only:
each service is the authority on values, see ``schemas/customers.py``)."""
import marshmallow as ma
from marshmallow import fields, validate

MAX_PER_PAGE = 200
#: a page number beyond any list (and whose offset every database can still count): larger → 422
MAX_PAGE = 1_000_000
#: api.md's interaction and campaign channels
CHANNELS = ("phone", "wechat", "weibo", "web", "email", "sms", "in_app", "face_to_face")


def one_of_text(values):
    return "one of: " + ", ".join(values)


def _metadata(description, **extra):
    return {**extra, **({"description": description} if description else {})}


def text_field(description=None, **kwargs):
    return fields.String(allow_none=True, metadata=_metadata(description), **kwargs)


def date_field(description=None, **kwargs):
    return fields.String(allow_none=True, metadata=_metadata(description, format="date"),
                         **kwargs)


def instant_field(description=None, **kwargs):
    return fields.String(allow_none=True, metadata=_metadata(description, format="date-time"),
                         **kwargs)


def int_field(description=None, **kwargs):
    return fields.Integer(strict=True, allow_none=True, metadata=_metadata(description),
                          **kwargs)


def strings_field(description=None):
    return fields.List(fields.String(), allow_none=True, metadata=_metadata(description))


class DictSchema(ma.Schema):
    """Output of a service's dict: a missing key is left out (never ``dict.items`` & co.)."""

    def get_attribute(self, obj, attr, default):
        if isinstance(obj, dict):
            return obj.get(attr, default)
        return super().get_attribute(obj, attr, default)


class Body(DictSchema):
    """A request body passed on whole: JSON types here, values and unknown fields named by the
    service in one 422."""

    class Meta:
        unknown = ma.INCLUDE


class Value(DictSchema):
    """A body whose values the RPC takes alone (not the body): unknown fields could not reach
    the service, so they are refused here."""

    class Meta:
        unknown = ma.RAISE


class PageQuery(ma.Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE),
                          metadata={"description": f"from 1, at most {MAX_PAGE}"})
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
