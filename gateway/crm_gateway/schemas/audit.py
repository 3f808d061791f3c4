"""The audit trail's query and entries (``GET /api/v1/audit``)."""
from datetime import timezone

from marshmallow import fields, validate

from crm_gateway.schemas.common import DictSchema, Id, PageQuery, one_of_text, page_of

SOURCES = ("customer", "sales", "gateway")


class AuditQuerySchema(PageQuery):
    source = fields.String(validate=validate.OneOf(SOURCES), metadata={
        "description": one_of_text(SOURCES) + "; all of them merged, newest first, if absent"})
    entity = fields.String(validate=validate.Length(1, 32),
                           metadata={"description": "customer, interaction, lease, bill, staff"})
    entity_id = fields.String(validate=validate.Length(1, 64))
    action = fields.String(validate=validate.Length(1, 64),
                           metadata={"description": "e.g. customer.updated, payment.received"})
    actor_id = fields.String(validate=validate.Length(1, 36),
                             metadata={"description": "who made the change (system: timers "
                                                      "and events)"})
    subject_id = fields.String(validate=validate.Length(1, 36),
                               metadata={"description": "the customer the entry is about"})
    since = fields.AwareDateTime(default_timezone=timezone.utc,
                                 metadata={"description": "at or after (ISO 8601; UTC if no "
                                                          "offset)"})
    until = fields.AwareDateTime(default_timezone=timezone.utc,
                                 metadata={"description": "before (ISO 8601)"})


class AuditEntrySchema(DictSchema):
    id = Id(metadata={"description": "unique within its source"})
    source = fields.String(metadata={"enum": list(SOURCES)})
    at = fields.String(metadata={"format": "date-time"})
    actor_id = fields.String(allow_none=True)
    actor_roles = fields.List(fields.String())
    action = fields.String()
    entity = fields.String()
    entity_id = fields.String(allow_none=True)
    subject_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True, metadata={
        "description": "the changed fields before (null: created, or redacted)"})
    after = fields.Dict(allow_none=True, metadata={
        "description": "the changed fields after (null: redacted at the customer's erasure)"})
    correlation_id = fields.String(allow_none=True)
    redacted_at = fields.String(allow_none=True, metadata={"format": "date-time"})


AuditPageSchema = page_of(AuditEntrySchema, "AuditPage")
