"""The business clock of analytics: days, ages and "today" are Chengdu's (Asia/Shanghai, no
daylight saving), whatever the server's zone — a payment at 20:00 UTC on 31 December counts on
1 January. Every computing module reads days through here."""
from datetime import datetime, timezone

import numpy as np
import pandas as pd

BUSINESS_TIMEZONE = "Asia/Shanghai"
AGE_BANDS = ("<25", "25-29", "30-34", "35-39", "40+")
UNKNOWN = "unknown"
DAY = pd.Timedelta(days=1)


def business_today(now=None):
    now = now or datetime.now(timezone.utc)
    return pd.Timestamp(now).tz_convert(BUSINESS_TIMEZONE).date()


def to_day(value):
    """A date-like (date, datetime, Timestamp, "YYYY-MM-DD") → naive midnight Timestamp; an
    aware instant is first turned into its date in ``BUSINESS_TIMEZONE``."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(BUSINESS_TIMEZONE).tz_localize(None)
    return stamp.normalize()


def start_of(day):
    """The instant a (naive midnight) day starts in ``BUSINESS_TIMEZONE``."""
    return day.tz_localize(BUSINESS_TIMEZONE)


def _instants(column):
    """A column as UTC-aware datetimes (they are already, from ``frames``)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column
    return pd.to_datetime(column, utc=True, format="mixed")


def _dates(column):
    """A column as naive midnight datetimes."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert(BUSINESS_TIMEZONE).dt.tz_localize(None).dt.normalize()
    return pd.to_datetime(column).dt.normalize()


def days_of(instants):
    """UTC-aware instants → naive midnight of their day in ``BUSINESS_TIMEZONE``."""
    local = _instants(instants).dt.tz_convert(BUSINESS_TIMEZONE).dt.tz_localize(None)
    return local.dt.normalize()


def ages(birthdays, as_of):
    """Full years at the date ``as_of`` of each birthday (float, NaN without a birthday); one
    born on 29 February turns a year older on 1 March in other years."""
    day = to_day(as_of)
    born = _dates(birthdays)
    before_birthday = (born.dt.month > day.month) | ((born.dt.month == day.month)
                                                     & (born.dt.day > day.day))
    return (day.year - born.dt.year - before_birthday.astype("int64")).astype("float64")


def age_bands(birthdays, as_of):
    """Birthdays → "<25", "25-29", "30-34", "35-39", "40+" by full years at ``as_of``;
    "unknown" without a birthday."""
    age = ages(birthdays, as_of)
    bands = pd.cut(age, bins=[-np.inf, 24, 29, 34, 39, np.inf], labels=list(AGE_BANDS))
    return bands.astype(object).where(age.notna(), UNKNOWN)
