"""Shared test data and helpers of the marketing service's tests."""
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

import marketing_service
from crm_kit.models import OutboxEvent
from marketing_service import audience

MIGRATIONS = Path(marketing_service.__file__).parent / "migrations"
MARKETER = {"id": "mkt-1", "roles": ["marketer"]}


def instant(days=0, seconds=0):
    return datetime.now(timezone.utc) + timedelta(days=days, seconds=seconds)


def snapshot(customer_id=None, **overrides):
    """A customer.* event's data: the customer record as the customer service sends it."""
    data = {"id": customer_id or str(uuid.uuid4()), "kind": "person", "name": "王小明",
            "mobile": "13800138000", "email": "xm@example.com", "wechat_id": "wx_xm",
            "gender": "male", "birthday": "1995-06-15", "occupation": "engineer",
            "industry": "software", "employer": "天府软件", "education": None,
            "income_band": None, "hometown": None, "city": "成都", "district": "高新区",
            "source": "website", "owner_id": "staff-1", "stage": "potential",
            "stage_entered_at": instant(-30).isoformat(), "value_tier": None,
            "churn_risk": None, "member": {"tier": "regular", "points": 0},
            "consent": {"sms": True, "email": True, "wechat": True, "phone": False,
                        "in_app": True},
            "tags": [], "custom_fields": {}, "contacts": [], "leases_signed": 0,
            "merged_into": None, "archived": False, "erased": False,
            "created_at": instant(-30).isoformat(), "updated_at": instant().isoformat()}
    data.update(overrides)
    return data


def envelope(event_type, data, occurred_at=None):
    return {"event_id": str(uuid.uuid4()), "type": event_type, "version": 1,
            "occurred_at": (occurred_at or instant()).isoformat(), "source": "test",
            "correlation_id": None, "data": data}


def add_customer(session, **overrides):
    return audience.apply_customer(session, snapshot(**overrides))


def lease_data(customer_id, start=None, end=None, **overrides):
    start = start or date.today() - timedelta(days=200)
    end = end or start + timedelta(days=364)
    data = {"lease_id": str(uuid.uuid4()), "customer_id": customer_id, "unit_id": "unit-1",
            "owner_id": "staff-1", "opportunity_id": None, "start_date": start.isoformat(),
            "end_date": end.isoformat(), "monthly_rent": "3500.00", "deposit": "3500.00",
            "payment_cycle": "monthly", "status": "active", "renewed_from_id": None}
    data.update(overrides)
    return data


def sign_lease(session, customer_id, **kwargs):
    data = lease_data(customer_id, **kwargs)
    audience.lease_signed(session, data, envelope("lease.signed", data))
    return data


def events(session, event_type=None):
    rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    found = [json.loads(r.envelope) for r in rows]
    return [e for e in found if event_type is None or e["type"] == event_type]
