"""Business time: the service centre's calendar and "add N business minutes to an instant".

Pure functions, no database. A calendar has a time zone, daily opening hours
(``opens``-``closes``, ``"24:00"`` allowed as the end of the day), the ISO weekdays it works
(1 Monday … 7 Sunday; default every day), ``holidays`` (dates closed all day) and
``workdays`` (dates open although their weekday is not, e.g. a 调休 Saturday). A holiday wins
over everything.

``add_business_minutes(start, n, calendar)`` is the instant at which ``n`` minutes of opening
time have passed after ``start``. Outside opening hours the clock waits for the next opening,
so a ticket left at 23:00 with a 30-minute target is due at 09:30 the next working day.
With ``n == 0`` it is the next business instant (``start`` itself when open).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

#: a calendar with no working time at all would loop forever; give up after this many days
MAX_DAYS = 3 * 366


class CalendarError(ValueError):
    pass


def parse_clock(text):
    """``"HH:MM"`` (``"24:00"`` allowed) → minutes after midnight."""
    try:
        hours, minutes = (int(part) for part in str(text).split(":"))
    except ValueError:
        raise CalendarError(f"{text!r} is not a time like 09:00") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise CalendarError(f"{text!r} is not a time like 09:00")
    return hours * 60 + minutes


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "Asia/Shanghai"
    opens: int = 9 * 60  # minutes after local midnight
    closes: int = 21 * 60
    weekdays: frozenset = frozenset(range(1, 8))
    holidays: frozenset = field(default_factory=frozenset)
    workdays: frozenset = field(default_factory=frozenset)

    def __post_init__(self):
        if self.opens >= self.closes:
            raise CalendarError("opening time must be before closing time")

    @classmethod
    def from_dict(cls, data):
        """From the stored/API shape (see ``vocabulary.DEFAULT_CALENDAR``)."""
        try:
            ZoneInfo(data["timezone"])
        except Exception:
            raise CalendarError(f"unknown time zone {data.get('timezone')!r}") from None
        return cls(timezone=data["timezone"], opens=parse_clock(data["opens"]),
                   closes=parse_clock(data["closes"]),
                   weekdays=frozenset(int(d) for d in data["weekdays"]),
                   holidays=frozenset(_date(d) for d in data.get("holidays") or ()),
                   workdays=frozenset(_date(d) for d in data.get("workdays") or ()))

    @property
    def zone(self):
        return ZoneInfo(self.timezone)

    def is_working_day(self, day):
        if day in self.holidays:
            return False
        return day in self.workdays or day.isoweekday() in self.weekdays

    def local_day(self, instant):
        return instant.astimezone(self.zone).date()

    def _at(self, day, minutes):
        return datetime.combine(day, time(0), self.zone) + timedelta(minutes=minutes)


def _date(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def add_business_minutes(start, minutes, calendar):
    """``start`` (aware) plus ``minutes`` of business time, as an aware instant in UTC."""
    if start.tzinfo is None:
        raise ValueError("naive datetime: give every instant a time zone")
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    local = start.astimezone(calendar.zone)
    day = local.date()
    # minutes of the local day at ``start`` (seconds kept: 09:00:30 + 1 min = 09:01:30)
    position = local - datetime.combine(day, time(0), calendar.zone)
    remaining = timedelta(minutes=minutes)
    for _ in range(MAX_DAYS):
        if calendar.is_working_day(day):
            opens = timedelta(minutes=calendar.opens)
            closes = timedelta(minutes=calendar.closes)
            if position < closes:
                position = max(position, opens)
                available = closes - position
                if remaining <= available:
                    moment = datetime.combine(day, time(0), calendar.zone) + position + remaining
                    return moment.astimezone(timezone.utc)
                remaining -= available
        day += timedelta(days=1)
        position = timedelta(0)
    raise CalendarError("the calendar has no working time in the next three years")

