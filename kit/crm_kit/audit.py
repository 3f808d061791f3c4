"""The audit trail: who changed what, when, from what to what, in an append-only table.

A service that keeps an audit trail (customer: customer data; sales: money; the gateway:
staff and their permissions) has the table ``audit_entries`` in its own database. Its
migration creates it with one line (``create_audit_trail()``), which also installs the
database triggers that make it append-only: a DELETE (and, on PostgreSQL, a TRUNCATE) is
refused, and so is every UPDATE but one, the redaction (below).

In the transaction of a change::

    before = snapshot(customer)
    ... change the customer ...
    audit.record(session, actor, "customer.updated", "customer", customer.id,
                 before, snapshot(customer), subject_id=customer.id)

``record`` keeps only the fields that differ between ``before`` and ``after`` (a change that
changes nothing records nothing), never a secret (a ``password``/``password_hash`` becomes
``"changed"``), and commits or rolls back with the change itself. ``actor`` is the caller's
``{"id", "roles"}``; timers and event handlers act as ``SYSTEM``.

Erasure of a person's data (right to be forgotten): ``redact(session, subject_ids)`` blanks
``before`` and ``after`` of every entry about them (``subject_id``) and stamps ``redacted_at``;
who, when, what action on which entity stays. That is the one UPDATE the triggers allow:
``before``/``after`` to NULL and ``redacted_at`` from NULL to a time, every other column as it
was, and only once.

Reading: ``trail(session, filters, page, per_page)`` (newest first), behind the RPC
``audit_trail`` of ``crm_kit.service.AuditTrail``.
"""
import json
from datetime import date, datetime, timezone
from decimal import Decimal

from marshmallow import fields, validate
from sqlalchemy import JSON, Index, String, func, insert, null, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kit.envelope import now
from crm_kit.logging import get_correlation_id
from crm_kit.models import BigId
from crm_kit.types import UtcDateTime
from crm_kit.validation import StrictSchema, load_filters

TABLE = "audit_entries"
SYSTEM = {"id": "system", "roles": []}  # the actor of timers and event handlers
SECRET_FIELDS = frozenset({"password", "password_hash", "secret", "token", "access_token"})
SECRET_SHOWN_AS = "changed"
MAX_PER_PAGE = 1000  # what one RPC returns at most (the gateway merges up to this many)

# None is SQL NULL (not the JSON literal null): redaction and its trigger depend on it
AuditJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class AuditBase(DeclarativeBase):
    """Its own metadata (not the kit's ``KitBase``): only the services that keep an audit
    trail have the table, so only their migrations' autogenerate must know it
    (``run_env(Base.metadata, audit_metadata)``)."""


audit_metadata = AuditBase.metadata


class AuditEntry(AuditBase):
    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_roles: Mapped[list] = mapped_column(AuditJson)
    action: Mapped[str] = mapped_column(String(64))          # e.g. customer.updated
    entity: Mapped[str] = mapped_column(String(32))          # e.g. customer
    entity_id: Mapped[str | None] = mapped_column(String(64))
    # the customer whose personal data the entry holds (what erasure redacts), if any
    subject_id: Mapped[str | None] = mapped_column(String(36))
    before: Mapped[dict | None] = mapped_column(AuditJson)
    after: Mapped[dict | None] = mapped_column(AuditJson)
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    redacted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_entity", "entity", "entity_id"),
        Index("ix_audit_entries_subject_id", "subject_id"),
        Index("ix_audit_entries_actor_id", "actor_id"),
    )


# ---------------------------------------------------------------- writing

def _plain(value):
    """JSON-ready: Decimal → string, date/datetime → ISO 8601, containers recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _without_secrets(state, shown=None):
    if state is None:
        return None
    clean = {}
    for key, value in state.items():
        if key in SECRET_FIELDS:
            if shown is not None:
                clean["password" if key == "password_hash" else key] = shown
            continue
        clean[key] = value
    return clean


_ABSENT = object()


def changes(before, after):
    """``(before, after)`` cut down to the keys whose values differ (a key only one side has
    counts as a difference and appears on that side only)."""
    if before is None or after is None:
        return before, after
    old, new = {}, {}
    for key in dict.fromkeys([*before, *after]):
        a, b = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if a != b:
            if a is not _ABSENT:
                old[key] = a
            if b is not _ABSENT:
                new[key] = b
    return old, new


def _row(actor, action, entity, entity_id, before, after, subject_id, moment):
    actor = actor or SYSTEM
    before, after = changes(_plain(before), _plain(after))
    before, after = _without_secrets(before), _without_secrets(after, shown=SECRET_SHOWN_AS)
    if before == {} and after == {}:
        return None  # nothing changed: nothing to audit
    return {"at": moment, "actor_id": actor.get("id"),
            "actor_roles": list(actor.get("roles") or ()), "action": action,
            "entity": entity, "entity_id": None if entity_id is None else str(entity_id),
            "subject_id": subject_id, "before": before, "after": after,
            "correlation_id": get_correlation_id(), "redacted_at": None}


def record(session, actor, action, entity, entity_id, before, after, subject_id=None):
    """Add one audit entry to the session's transaction; returns it (None when ``before`` and
    ``after`` are both given and equal: nothing changed). ``before`` is None for a creation,
    ``after`` None for a removal."""
    row = _row(actor, action, entity, entity_id, before, after, subject_id, now())
    if row is None:
        return None
    entry = AuditEntry(**row)
    session.add(entry)
    return entry


def record_many(session, actor, entries):
    """Many entries in one INSERT (bulk work: a lease's bill schedule). ``entries`` are dicts
    with ``action, entity, entity_id, before, after`` and optionally ``subject_id``."""
    moment = now()
    rows = [row for row in (
        _row(actor, e["action"], e["entity"], e["entity_id"], e.get("before"), e.get("after"),
             e.get("subject_id"), moment) for e in entries) if row is not None]
    if rows:
        # before/after as SQL NULL, not JSON null, also through the Core path
        for row in rows:
            for key in ("before", "after"):
                if row[key] is None:
                    row[key] = null()
        session.execute(insert(AuditEntry.__table__), rows)
    return len(rows)


def redact(session, subject_ids):
    """Erase what the audit trail holds of these people: ``before``/``after`` of their entries
    become NULL and ``redacted_at`` is stamped; the fact of each change stays. Returns how
    many entries were redacted."""
    if isinstance(subject_ids, str):
        subject_ids = [subject_ids]
    subject_ids = [s for s in subject_ids if s]
    if not subject_ids:
        return 0
    session.flush()  # entries added earlier in this transaction are redacted too
    result = session.execute(
        update(AuditEntry)
        .where(AuditEntry.subject_id.in_(subject_ids), AuditEntry.redacted_at.is_(None))
        .values(before=null(), after=null(), redacted_at=now())
        .execution_options(synchronize_session=False))
    return result.rowcount


# ---------------------------------------------------------------- reading

class TrailFilters(StrictSchema):
    entity = fields.String(validate=validate.Length(1, 32))
    entity_id = fields.String(validate=validate.Length(1, 64))
    action = fields.String(validate=validate.Length(1, 64))
    actor_id = fields.String(validate=validate.Length(1, 36))
    subject_id = fields.String(validate=validate.Length(1, 36))
    since = fields.AwareDateTime(default_timezone=timezone.utc)
    until = fields.AwareDateTime(default_timezone=timezone.utc)


_trail_filters = TrailFilters()


def entry_dict(entry, source=None):
    data = {"id": entry.id, "at": entry.at.isoformat(), "actor_id": entry.actor_id,
            "actor_roles": list(entry.actor_roles or ()), "action": entry.action,
            "entity": entry.entity, "entity_id": entry.entity_id,
            "subject_id": entry.subject_id, "before": entry.before, "after": entry.after,
            "correlation_id": entry.correlation_id,
            "redacted_at": entry.redacted_at.isoformat() if entry.redacted_at else None}
    if source is not None:
        data["source"] = source
    return data


def trail(session, filters=None, page=1, per_page=50, source=None):
    """A page of entries, newest first: ``{items, total, page, per_page}``. Filters:
    ``entity, entity_id, action, actor_id, subject_id`` (equal), ``since`` (at or after),
    ``until`` (before). Each item names its ``source`` (the service, by default)."""
    filters = load_filters(_trail_filters, filters)
    source = source or session.info.get("service")
    query = select(AuditEntry)
    for name in ("entity", "entity_id", "action", "actor_id", "subject_id"):
        if name in filters:
            query = query.where(getattr(AuditEntry, name) == filters[name])
    if "since" in filters:
        query = query.where(AuditEntry.at >= filters["since"])
    if "until" in filters:
        query = query.where(AuditEntry.at < filters["until"])
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return {"items": [entry_dict(e, source) for e in rows], "total": total, "page": page,
            "per_page": per_page}


# ---------------------------------------------------------------- the migration

_GUARDED = ("id", "at", "actor_id", "actor_roles", "action", "entity", "entity_id",
            "subject_id", "correlation_id")
REFUSAL = "audit_entries is append-only: only the redaction of before/after may change a row"

_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER audit_entries_only_redaction BEFORE UPDATE ON {TABLE}
    WHEN NOT (OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
              AND NEW."before" IS NULL AND NEW."after" IS NULL
              AND {' AND '.join(f'NEW.{c} IS OLD.{c}' for c in _GUARDED)})
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
)

_POSTGRES_TRIGGERS = (
    f"""CREATE FUNCTION audit_entries_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
               AND NEW."before" IS NULL AND NEW."after" IS NULL
               AND {' AND '.join(f'NEW.{c} IS NOT DISTINCT FROM OLD.{c}' for c in _GUARDED)}
            THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION '{REFUSAL} (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    f"""CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_entries_guard()""",
    f"""CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_guard()""",
)


def create_audit_trail():
    """In an Alembic migration's ``upgrade()``: the ``audit_entries`` table, its indexes and
    the triggers that keep it append-only (SQLite and PostgreSQL). This is version 1 of the
    table, spelled out here rather than read from ``AuditEntry``, so that an old migration
    keeps creating what it created when it was written."""
    import sqlalchemy as sa
    from alembic import op

    json_type = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    op.create_table(
        TABLE,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=True),
        sa.Column("actor_roles", json_type, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column("subject_id", sa.String(36), nullable=True),
        sa.Column("before", json_type, nullable=True),
        sa.Column("after", json_type, nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=True),
        sa.Column("redacted_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_audit_entries_at", TABLE, ["at"])
    op.create_index("ix_audit_entries_entity", TABLE, ["entity", "entity_id"])
    op.create_index("ix_audit_entries_subject_id", TABLE, ["subject_id"])
    op.create_index("ix_audit_entries_actor_id", TABLE, ["actor_id"])
    postgres = op.get_context().dialect.name == "postgresql"
    for statement in _POSTGRES_TRIGGERS if postgres else _SQLITE_TRIGGERS:
        op.execute(statement)


def drop_audit_trail():
    """In an Alembic migration's ``downgrade()``: the table and its triggers go."""
    from alembic import op

    op.drop_table(TABLE)  # its indexes and triggers go with it
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_entries_guard()")
