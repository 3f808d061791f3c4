"""The event contracts: what the consumers of each event type rely on in its ``data``.

One JSON Schema per event type (version 1) names the fields some consumer reads and their types.
Producers may add fields (``additionalProperties`` stays open: consumers ignore what they do not
know), but removing or retyping a field named here breaks a consumer. Two checks use it:

- consumers: ``crm_kit.inbox`` validates every event before a handler sees it; an event that
  breaks its contract is dead-lettered at once (a poison message, visible and replayable),
  never half-applied;
- producers: ``tests/conftest.py`` checks every event the running system published during the
  end-to-end tests, so a producer that breaks a consumer's expectations fails CI.

An event type not listed here (e.g. ``task.created``, consumed by nobody) is not checked.

Versions (``version`` in the envelope). An additive change keeps the version. A breaking change
(a field removed, renamed or retyped) is a new version of the event type, added to ``LATER``
with its own schema, and goes out in this order (docs/upgrades.md):
1. release the kit with the new schema and upgrade every consumer: its handler reads both
   versions; until it is upgraded, a consumer dead-letters a version it does not know (visible
   in ``crm_dead_letters``, replayed with ``crm-dlq replay`` once it is upgraded), never
   applies it half-understood;
2. then upgrade the producer to publish the new version.
"""
import functools

from jsonschema import Draft202012Validator

STRING = {"type": "string", "minLength": 1}
OPTIONAL_STRING = {"type": ["string", "null"]}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
INSTANT = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"}
MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}
OPTIONAL_MONEY = {"anyOf": [MONEY, {"type": "null"}]}


def shape(required, **optional):
    """An object with ``required`` fields (name → schema) and typed ``optional`` ones."""
    return {"type": "object", "required": sorted(required),
            "properties": {**required, **optional}}


CUSTOMER_RECORD = shape(
    {"id": STRING, "updated_at": INSTANT},
    name=OPTIONAL_STRING, stage=OPTIONAL_STRING, stage_entered_at=INSTANT,
    birthday={"anyOf": [DATE, {"type": "null"}]}, consent={"type": "object"},
    tags={"type": "array", "items": {"type": "string"}}, member={"type": "object"},
    merged_into=OPTIONAL_STRING, archived={"type": "boolean"}, erased={"type": "boolean"})
LEASE = {"lease_id": STRING, "customer_id": STRING, "start_date": DATE, "end_date": DATE,
         "monthly_rent": MONEY, "status": STRING}
BILL = {"bill_id": STRING, "customer_id": STRING, "kind": STRING, "amount": MONEY,
        "due_date": DATE}
TICKET = {"ticket_id": STRING, "customer_id": STRING}

SCHEMAS = {
    # customer
    "customer.created": CUSTOMER_RECORD,
    "customer.updated": CUSTOMER_RECORD,
    "customer.stage_changed": shape({"customer_id": STRING, "to_stage": STRING},
                                    from_stage=OPTIONAL_STRING),
    "customer.owner_changed": shape({"customer_id": STRING}, to_owner_id=OPTIONAL_STRING),
    "customer.merged": shape({"survivor_id": STRING, "merged_id": STRING,
                              "customer": CUSTOMER_RECORD}),
    "customer.erased": shape({"customer_id": STRING}),
    "customer.churn_confirmed": shape({"customer_id": STRING}, reason=OPTIONAL_STRING,
                                      competitor=OPTIONAL_STRING),
    # sales
    "opportunity.created": shape({"opportunity_id": STRING, "customer_id": STRING},
                                 campaign_id=OPTIONAL_STRING, owner_id=OPTIONAL_STRING,
                                 expected_value=OPTIONAL_MONEY),
    "opportunity.stage_changed": shape({"opportunity_id": STRING, "customer_id": STRING,
                                        "to_stage": STRING}, from_stage=OPTIONAL_STRING),
    "lease.signed": shape(LEASE, opportunity_id=OPTIONAL_STRING),
    "lease.renewed": shape({**LEASE, "new_lease_id": STRING}),
    "lease.terminated": shape(LEASE),
    "lease.ended": shape(LEASE),
    "bill.issued": shape(BILL),
    "bill.overdue": shape(BILL),
    "payment.received": shape({"payment_id": STRING, "customer_id": STRING, "amount": MONEY,
                               "paid_at": INSTANT}, bill_id=OPTIONAL_STRING),
    # service desk
    "ticket.created": shape(TICKET),
    "ticket.status_changed": shape({**TICKET, "to_status": STRING}),
    "ticket.resolved": shape(TICKET),
    "ticket.sla_breached": shape(TICKET),
    "ticket.feedback_received": shape({**TICKET, "rating": {"type": "integer", "minimum": 1,
                                                           "maximum": 5}},
                                      comment=OPTIONAL_STRING),
    # marketing
    "campaign.response_received": shape({"customer_id": STRING, "campaign_id": STRING},
                                        owner_id=OPTIONAL_STRING),
    # analytics
    "customer.scored": shape({"customer_id": STRING},
                             value_tier={"enum": ["key", "important", "ordinary", "small",
                                                  None]},
                             rfm={"type": "object"},
                             churn_risk={"type": ["object", "integer", "null"]},
                             scored_at=INSTANT),
    "churn.warning_raised": shape({"customer_id": STRING,
                                   "score": {"type": "integer", "minimum": 0, "maximum": 100},
                                   "reasons": {"type": "array"}}),
}


# Versions after the first: {(event type, version): schema}. None yet; an entry here is how a
# breaking change to an event type's data is made.
LATER = {}


def versions(event_type):
    """The versions of ``event_type`` this code knows (empty: the type has no contract)."""
    known = [1] if event_type in SCHEMAS else []
    return known + sorted(v for t, v in LATER if t == event_type)


@functools.lru_cache(maxsize=None)
def _validator(event_type, version):
    schema = SCHEMAS.get(event_type) if version == 1 else LATER.get((event_type, version))
    return None if schema is None else Draft202012Validator(schema)


def problems(envelope):
    """What in ``envelope["data"]`` breaks its type's contract (an empty list if nothing,
    or if the type has no contract). A version of a known type that this code does not know
    is a problem too: the event is kept as a dead letter until the consumer is upgraded."""
    event_type, version = envelope.get("type"), envelope.get("version", 1)
    known = versions(event_type)
    if not known:
        return []
    if version not in known:
        return [f"version: {version} of {event_type} is not known here (this consumer knows "
                f"{', '.join(map(str, known))}); upgrade it, then replay its dead letters"]
    validator = _validator(event_type, version)
    return sorted(f"{'.'.join(str(p) for p in error.absolute_path) or 'data'}: {error.message}"
                  for error in validator.iter_errors(envelope.get("data")))
