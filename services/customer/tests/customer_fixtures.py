"""Shared test data and constants of the customer service's tests."""
from datetime import date
from pathlib import Path

import customer_service

MIGRATIONS = Path(customer_service.__file__).parent / "migrations"
SPEC = "customer_service.service:CustomerService"
ACTOR = {"id": "staff-1", "roles": ["customer_manager"]}


def person(**overrides):
    data = {"name": "王小明", "mobile": "13800138000", "email": "xm@example.com",
            "birthday": f"{date.today().year - 23}-03-15", "education": "bachelor", "employer": "成都软件园",
            "district": "高新区", "city": "成都", "hometown": "重庆", "source": "website",
            "owner_id": "staff-1", "consent": {"sms": True}}
    data.update(overrides)
    return data
