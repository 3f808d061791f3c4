"""Service desk payloads (the service_desk service): tickets, their appointments and feedback,
the knowledge base, the assignment registry and the SLA policy.

Input: as for customers and leasing (see ``schemas/customers.py``), the service desk is the one
authority on values: the gateway's input schemas describe the fields for the OpenAPI document,
check only their JSON types, and pass the body on (``unknown = INCLUDE``), so one 422 from the
service names every bad field at once (missing, out of range, unknown). A body whose one value
the RPC takes alone (``assignee_id``, ``status`` + ``note``, a comment's ``body``, a reopening's
``reason``) refuses unknown fields here: they could not reach the service.

Query strings: enumerations are checked here (a value the service would silently match nothing
with is a 422 naming the parameter).

Tickets carry the customer's id only; should the service ever embed a customer record
(``customer``), it is masked by role like every customer the gateway answers
(``permissions.mask_customer``).
"""
import marshmallow as ma
from flask import has_request_context
from marshmallow import fields, validate

from crm_gateway.permissions import mask_customer
from crm_gateway.schemas.common import (CHANNELS, Body, DictSchema, Id, PageQuery, Value,
                                         instant_field, int_field, one_of_text, page_of,
                                         strings_field, text_field)

TICKET_TYPES = ("repair", "complaint", "consultation", "suggestion", "cleaning")
TICKET_STATUSES = ("new", "assigned", "in_progress", "awaiting_customer", "resolved", "closed",
                   "reopened")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
MAX_SEARCH_RESULTS = 100


# ---------------------------------------------------------------- input: tickets

class TicketCreateSchema(Body):
    customer_id = text_field("required; an existing customer (422 otherwise)")
    type = text_field("required; " + one_of_text(TICKET_TYPES))
    channel = text_field("required; how the customer reached us: " + one_of_text(CHANNELS))
    priority = text_field("default normal; " + one_of_text(TICKET_PRIORITIES))
    description = text_field("required; what the customer reports")
    unit_id = text_field("an existing unit (422 otherwise)")
    lease_id = text_field("an existing lease (422 otherwise)")


class TicketQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(TICKET_STATUSES))
    type = fields.String(validate=validate.OneOf(TICKET_TYPES))
    assignee_id = fields.String()
    customer_id = fields.String()
    breached = fields.Boolean(metadata={"description": "past a first-response or resolution "
                                                       "target (as of the last SLA scan)"})
    priority = fields.String(validate=validate.OneOf(TICKET_PRIORITIES))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    district = fields.String()
    number = fields.String(metadata={"description": "the ticket's number, e.g. T20261124-0001"})


class TicketAssignInSchema(Value):
    assignee_id = text_field("required; an active staff member")


class TicketStatusInSchema(Value):
    status = text_field("required; " + one_of_text(TICKET_STATUSES) +
                   "; a transition the workflow does not allow → 409")
    note = text_field("why, or what was done")


class CommentInSchema(Value):
    body = text_field("required; the comment")


class AppointmentInSchema(Body):
    scheduled_at = instant_field("required; the visit's start")
    duration_minutes = int_field("default set by the service")
    technician_id = text_field("an active staff member; the technician already booked at an "
                          "overlapping time → 409")


class FeedbackInSchema(Body):
    rating = int_field("required; 1-5 (the customer's satisfaction)")
    comment = text_field("what the customer said")


class ReopenInSchema(Value):
    reason = text_field("required; why the ticket is reopened")


# ---------------------------------------------------------------- input: knowledge base

class ArticleCreateSchema(Body):
    title = text_field("required")
    symptom = text_field("required; what the customer sees (searched)")
    solution = text_field("required; what fixes it")
    tags = strings_field()


class ArticleQuerySchema(PageQuery):
    tag = fields.String()
    q = fields.String(metadata={"description": "part of the title"})
    source_ticket_id = fields.String(metadata={"description": "the ticket it was written from"})


class ArticleSearchQuerySchema(ma.Schema):
    q = fields.String(required=True, validate=validate.Length(min=1),
                      metadata={"description": "the customer's words, e.g. 热水器不出热水"})
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1,
                                                                    max=MAX_SEARCH_RESULTS),
                           metadata={"description": f"at most {MAX_SEARCH_RESULTS}"})


class TicketToArticleInSchema(Body):
    """All optional: the service takes them from the ticket (its description, the resolution)."""

    title = text_field()
    symptom = text_field()
    solution = text_field()
    tags = strings_field()


# ---------------------------------------------------------------- input: settings

class AgentInSchema(Body):
    skills = strings_field("required; ticket types this agent handles: " + one_of_text(TICKET_TYPES))
    districts = strings_field("districts this agent covers")
    active = fields.Boolean(allow_none=True,
                            metadata={"description": "takes new tickets automatically"})
    supervisor_id = text_field("an active staff member")
    max_open = int_field("most open tickets at once")


class SlaTargetInSchema(Body):
    first_response_minutes = int_field("required; business minutes")
    resolution_minutes = int_field("required; business minutes, not fewer than the first response")


class CalendarInSchema(Body):
    timezone = text_field("e.g. Asia/Shanghai")
    opens = text_field("HH:MM, e.g. 09:00")
    closes = text_field("HH:MM, e.g. 21:00")
    weekdays = fields.List(fields.Integer(strict=True), allow_none=True,
                           metadata={"description": "working weekdays, 1 (Monday) to 7"})
    holidays = fields.List(fields.String(metadata={"format": "date"}), allow_none=True,
                           metadata={"description": "days off (YYYY-MM-DD)"})
    workdays = fields.List(fields.String(metadata={"format": "date"}), allow_none=True,
                           metadata={"description": "extra working days (调休), YYYY-MM-DD"})


class SlaPolicyInSchema(Body):
    """The pairs of ``targets`` given replace those pairs, the rest stay; the ``calendar``
    fields given replace those fields. Values are checked by the service."""

    targets = fields.Dict(keys=fields.String(), values=fields.Dict(
        keys=fields.String(), values=fields.Nested(SlaTargetInSchema)), allow_none=True,
        metadata={"description": "ticket type → priority → {first_response_minutes, "
                                 "resolution_minutes}"})
    calendar = fields.Nested(CalendarInSchema, allow_none=True,
                             metadata={"description": "the business calendar the targets "
                                                      "count in"})


# ---------------------------------------------------------------- output

class SlaSchema(DictSchema):
    first_response_due = instant_field()
    resolution_due = instant_field()
    first_responded_at = instant_field()
    resolved_at = instant_field()
    first_response_breached = fields.Boolean()
    resolution_breached = fields.Boolean()


class FeedbackSchema(DictSchema):
    rating = fields.Integer()
    comment = fields.String(allow_none=True)
    round = fields.Integer(metadata={"description": "the resolution it rates (1, then 2 after "
                                                    "a reopening …)"})
    created_at = instant_field()


class SuggestedArticleSchema(DictSchema):
    id = Id()
    title = fields.String()
    score = fields.Float()


class TicketHistorySchema(DictSchema):
    action = fields.String(metadata={"description": "created, status, assigned, appointment, "
                                                    "feedback, escalated"})
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor_id = fields.String(allow_none=True, metadata={"description": "a staff id, or system"})
    assignee_id = fields.String(allow_none=True)
    escalated_to = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    occurred_at = instant_field()


class CommentSchema(DictSchema):
    id = Id(required=True)
    ticket_id = fields.String()
    author_id = fields.String(allow_none=True)
    body = fields.String()
    created_at = instant_field()


class AppointmentSchema(DictSchema):
    id = Id()
    ticket_id = fields.String()
    technician_id = fields.String(allow_none=True)
    scheduled_at = instant_field()
    ends_at = instant_field()
    duration_minutes = fields.Integer()
    status = fields.String(metadata={"description": "scheduled or cancelled"})
    booked_by = fields.String(allow_none=True)
    created_at = instant_field()


class _MaskedCustomer(fields.Dict):
    """A customer record embedded by the service: masked by role like every customer."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        from crm_gateway.auth import current_caller

        caller = current_caller() if has_request_context() else None
        return mask_customer(value, caller.roles if caller else ())


class TicketSchema(DictSchema):
    id = Id(required=True)
    number = fields.String()
    customer_id = fields.String()
    customer = _MaskedCustomer(allow_none=True)
    type = fields.String(metadata={"enum": list(TICKET_TYPES)})
    channel = fields.String()
    priority = fields.String(metadata={"enum": list(TICKET_PRIORITIES)})
    description = fields.String()
    unit_id = fields.String(allow_none=True)
    lease_id = fields.String(allow_none=True)
    district = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(TICKET_STATUSES)})
    assignee_id = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    sla = fields.Nested(SlaSchema)
    breached = fields.Boolean()
    appointment = fields.Nested(AppointmentSchema, allow_none=True,
                                metadata={"description": "the scheduled on-site visit"})
    feedback = fields.Nested(FeedbackSchema, allow_none=True,
                             metadata={"description": "the latest rating"})
    resolution_note = fields.String(allow_none=True)
    suggested_articles = fields.List(fields.Nested(SuggestedArticleSchema), metadata={
        "description": "knowledge-base articles like the description, best first (on create "
                       "and GET /tickets/{id})"})
    history = fields.List(fields.Nested(TicketHistorySchema), metadata={
        "description": "every status change and assignment: who, when (GET /tickets/{id})"})
    comments = fields.List(fields.Nested(CommentSchema),
                           metadata={"description": "GET /tickets/{id} only"})
    created_at = instant_field()
    updated_at = instant_field()


TicketPageSchema = page_of(TicketSchema, "TicketPage")


class ArticleSchema(DictSchema):
    id = Id(required=True)
    title = fields.String()
    symptom = fields.String()
    solution = fields.String()
    tags = fields.List(fields.String())
    source_ticket_id = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = instant_field()
    updated_at = instant_field()


ArticlePageSchema = page_of(ArticleSchema, "ArticlePage")


class ArticleHitSchema(DictSchema):
    article = fields.Nested(ArticleSchema)
    score = fields.Float()


class ArticleSearchSchema(DictSchema):
    query = fields.String()
    items = fields.List(fields.Nested(ArticleHitSchema), metadata={"description": "best first"})


class AgentSchema(DictSchema):
    staff_id = fields.String()
    skills = fields.List(fields.String())
    districts = fields.List(fields.String())
    active = fields.Boolean()
    supervisor_id = fields.String(allow_none=True)
    max_open = fields.Integer(allow_none=True)
    open_tickets = fields.Integer()
    updated_at = instant_field()


class AgentRegistrySchema(DictSchema):
    items = fields.List(fields.Nested(AgentSchema), metadata={"description": "by staff id"})


class SlaTargetSchema(DictSchema):
    first_response_minutes = fields.Integer()
    resolution_minutes = fields.Integer()


class CalendarSchema(DictSchema):
    timezone = fields.String()
    opens = fields.String()
    closes = fields.String()
    weekdays = fields.List(fields.Integer())
    holidays = fields.List(fields.String(metadata={"format": "date"}))
    workdays = fields.List(fields.String(metadata={"format": "date"}))


class SlaPolicySchema(DictSchema):
    targets = fields.Dict(keys=fields.String(), values=fields.Dict(
        keys=fields.String(), values=fields.Nested(SlaTargetSchema)), metadata={
        "description": "ticket type → priority → targets in business minutes"})
    calendar = fields.Nested(CalendarSchema)
