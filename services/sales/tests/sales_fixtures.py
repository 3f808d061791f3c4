"""Shared test data and helpers of the sales service's tests."""
import json
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

import sales_service
from crm_kit.envelope import now
from crm_kit.models import OutboxEvent
from sales_service.models import Lease

MIGRATIONS = Path(sales_service.__file__).parent / "migrations"
ACTOR = {"id": "staff-1", "roles": ["customer_manager"]}
OTHER = {"id": "staff-2", "roles": ["customer_manager"]}
SUPERVISOR = {"id": "sup-1", "roles": ["sales_supervisor"]}


def unit_data(**overrides):
    data = {"code": "GX-1203", "building": "天府软件园公寓A栋", "district": "高新区",
            "layout": "1b1b", "area_sqm": "38.50", "floor": 12, "monthly_rent": "3500.00",
            "amenities": ["washer", "air_conditioner"]}
    data.update(overrides)
    return data


def customer(customer_id="cust-1", **overrides):
    """A customer dict as the customer service's ``get_customer`` returns it (the fields the
    sales service reads)."""
    data = {"id": customer_id, "name": "王小明", "mobile": "13800138000", "owner_id": "staff-1",
            "stage": "potential", "merged_into": None, "archived": False, "erased": False}
    data.update(overrides)
    return data


def opportunity_data(**overrides):
    data = {"customer_id": "cust-1", "source": "website", "budget": "3500.00",
            "district": "高新区", "layout": "1b1b",
            "move_in_date": (date.today() + timedelta(days=20)).isoformat()}
    data.update(overrides)
    return data


def make_lease(session, unit_id, customer_id="cust-1", owner_id="staff-1",
               monthly_rent="3500.00", end_date=None):
    """A lease row as the lead's lease code would leave it (for renewal opportunities)."""
    moment = now()
    start = date.today() - timedelta(days=300)
    lease = Lease(id=str(uuid.uuid4()), customer_id=customer_id, unit_id=unit_id,
                  owner_id=owner_id, start_date=start,
                  end_date=end_date or date.today() + timedelta(days=60),
                  monthly_rent=Decimal(monthly_rent), deposit=Decimal(monthly_rent),
                  payment_cycle="monthly", status="active", signed_at=moment,
                  created_at=moment, updated_at=moment)
    session.add(lease)
    session.flush()
    return lease


def events(session, event_type=None):
    rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    found = [json.loads(r.envelope) for r in rows]
    return [e for e in found if event_type is None or e["type"] == event_type]
