"""The service's idea of "today": birthdays and holidays happen on the operator's local date."""
from datetime import datetime
from zoneinfo import ZoneInfo

from crm_kit import config

TIMEZONE = ZoneInfo(config.env("CRM_MARKETING_TIMEZONE", "Asia/Shanghai"))


def today():
    return datetime.now(TIMEZONE).date()
