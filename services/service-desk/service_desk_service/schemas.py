"""Shapes and validation of what the service desk accepts (marshmallow).

A load error becomes ``InvalidInput`` (422 at the gateway) naming every bad field.
"""
from marshmallow import ValidationError, fields, validate, validates_schema

from crm_kit.validation import (  # noqa: F401  (schemas.load & co. are what the logic calls)
    StrictSchema, id_field, load, load_filters, text_field)
from service_desk_service import vocabulary as v
from service_desk_service.business_time import CalendarError, parse_clock


# -- tickets -------------------------------------------------------------------------------
class TicketSchema(StrictSchema):
    customer_id = id_field(required=True)
    type = fields.String(required=True, validate=validate.OneOf(v.TICKET_TYPES))
    channel = fields.String(required=True, validate=validate.OneOf(v.CHANNELS))
    priority = fields.String(load_default="normal", validate=validate.OneOf(v.PRIORITIES))
    description = text_field(4000, required=True)
    unit_id = id_field(allow_none=True, load_default=None)
    lease_id = id_field(allow_none=True, load_default=None)


class TicketFilterSchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(v.STATUSES))
    type = fields.String(validate=validate.OneOf(v.TICKET_TYPES))
    priority = fields.String(validate=validate.OneOf(v.PRIORITIES))
    channel = fields.String(validate=validate.OneOf(v.CHANNELS))
    assignee_id = id_field()
    customer_id = id_field()
    district = fields.String(validate=validate.Length(max=64))
    breached = fields.Boolean()
    number = fields.String(validate=validate.Length(max=24))
    customer_ids = fields.List(fields.String())  # the caller's customers (gateway scopes)


class AssignSchema(StrictSchema):
    assignee_id = id_field(required=True)


class StatusSchema(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(v.STATUSES))
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4000))


class CommentSchema(StrictSchema):
    body = text_field(4000, required=True)


class ReopenSchema(StrictSchema):
    reason = text_field(2000, required=True)


class AppointmentSchema(StrictSchema):
    scheduled_at = fields.AwareDateTime(required=True)
    duration_minutes = fields.Integer(load_default=v.APPOINTMENT_MINUTES, strict=True,
                                      validate=validate.Range(15, 480))
    technician_id = id_field(allow_none=True, load_default=None)


class FeedbackSchema(StrictSchema):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(
        1, 5, error="must be a whole number from 1 to 5"))
    comment = fields.String(allow_none=True, load_default=None,
                            validate=validate.Length(max=2000))


# -- knowledge base ------------------------------------------------------------------------
class ArticleSchema(StrictSchema):
    title = text_field(200, required=True)
    symptom = text_field(8000, required=True)
    solution = text_field(8000, required=True)
    tags = fields.List(text_field(40), load_default=list, validate=validate.Length(max=20))


class TicketArticleSchema(StrictSchema):
    """Overrides of what ``ticket_to_article`` takes from the ticket."""

    title = text_field(200)
    symptom = text_field(8000)
    solution = text_field(8000)
    tags = fields.List(text_field(40), validate=validate.Length(max=20))


class ArticleFilterSchema(StrictSchema):
    tag = fields.String(validate=validate.Length(max=40))
    q = fields.String(validate=validate.Length(max=200))
    source_ticket_id = id_field()


class SearchSchema(StrictSchema):
    query = fields.String(required=True, validate=validate.Length(max=4000))
    limit = fields.Integer(load_default=10, validate=validate.Range(1, 100))


# -- assignment registry -------------------------------------------------------------------
class AgentSchema(StrictSchema):
    skills = fields.List(fields.String(validate=validate.OneOf(v.TICKET_TYPES)),
                         required=True, validate=validate.Length(max=len(v.TICKET_TYPES)))
    districts = fields.List(text_field(64), load_default=list, validate=validate.Length(max=50))
    active = fields.Boolean(load_default=True)
    supervisor_id = id_field(allow_none=True, load_default=None)
    max_open = fields.Integer(allow_none=True, load_default=None, strict=True,
                              validate=validate.Range(1, 1000))


# -- SLA policy ----------------------------------------------------------------------------
class TargetSchema(StrictSchema):
    first_response_minutes = fields.Integer(required=True, strict=True,
                                            validate=validate.Range(1, 60 * 24 * 60))
    resolution_minutes = fields.Integer(required=True, strict=True,
                                        validate=validate.Range(1, 60 * 24 * 365))

    @validates_schema
    def _order(self, data, **_):
        if data["resolution_minutes"] < data["first_response_minutes"]:
            raise ValidationError("must not be shorter than first_response_minutes",
                                  "resolution_minutes")


def _clock(value):
    try:
        parse_clock(value)
    except CalendarError as exc:
        raise ValidationError(str(exc)) from None


class CalendarSchema(StrictSchema):
    timezone = fields.String(validate=validate.Length(1, 64))
    opens = fields.String(validate=_clock)
    closes = fields.String(validate=_clock)
    weekdays = fields.List(fields.Integer(strict=True, validate=validate.Range(1, 7)),
                           validate=validate.Length(1, 7))
    holidays = fields.List(fields.Date(), validate=validate.Length(max=1000))
    workdays = fields.List(fields.Date(), validate=validate.Length(max=1000))


class SlaPolicySchema(StrictSchema):
    """``targets``: ``{type: {priority: {first_response_minutes, resolution_minutes}}}`` — the
    pairs given replace those pairs, the rest stay; ``calendar``: fields given replace those."""

    targets = fields.Dict(
        keys=fields.String(validate=validate.OneOf(v.TICKET_TYPES)),
        values=fields.Dict(keys=fields.String(validate=validate.OneOf(v.PRIORITIES)),
                           values=fields.Nested(TargetSchema)))
    calendar = fields.Nested(CalendarSchema)


ticket_schema = TicketSchema()
ticket_filter_schema = TicketFilterSchema()
assign_schema = AssignSchema()
status_schema = StatusSchema()
comment_schema = CommentSchema()
reopen_schema = ReopenSchema()
appointment_schema = AppointmentSchema()
feedback_schema = FeedbackSchema()
article_schema = ArticleSchema()
ticket_article_schema = TicketArticleSchema()
article_filter_schema = ArticleFilterSchema()
search_schema = SearchSchema()
agent_schema = AgentSchema()
sla_policy_schema = SlaPolicySchema()
