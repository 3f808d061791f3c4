"""Adding business minutes to an instant: opening hours, nights, holidays, zones."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from service_desk_service.business_time import (BusinessCalendar, CalendarError,
                                                add_business_minutes, parse_clock)

SH = ZoneInfo("Asia/Shanghai")
DEFAULT = BusinessCalendar()


def at(day, hour, minute=0):
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)  # 2026-11-23 is a Monday


def add(start, minutes, calendar=DEFAULT):
    result = add_business_minutes(start, minutes, calendar)
    assert result.tzinfo == timezone.utc
    return result.astimezone(SH)


def test_inside_opening_hours_it_is_plain_addition():
    assert add(at(24, 10), 30) == at(24, 10, 30)
    assert add(at(24, 9), 12 * 60) == at(24, 21)  # ends exactly at closing


def test_zero_minutes_is_the_next_business_instant():
    assert add(at(24, 10, 15), 0) == at(24, 10, 15)
    assert add(at(24, 7), 0) == at(24, 9)
    assert add(at(24, 22), 0) == at(25, 9)


def test_crossing_closing_time_continues_next_morning():
    assert add(at(24, 20, 45), 30) == at(25, 9, 15)
    assert add(at(24, 20), 4 * 60) == at(25, 12)  # 1 h today, 3 h tomorrow


def test_starting_at_night_or_early_morning_waits_for_opening():
    assert add(at(24, 23, 30), 30) == at(25, 9, 30)  # a message left at night
    assert add(at(25, 2), 30) == at(25, 9, 30)  # after midnight: the same morning
    assert add(at(24, 8, 59), 1) == at(24, 9, 1)


def test_whole_business_days():
    assert add(at(24, 10), 2 * 720) == at(26, 10)
    assert add(at(24, 21), 720) == at(25, 21)


def test_weekends_work_by_default_but_can_be_closed():
    saturday = at(28, 20)
    assert add(saturday, 120) == at(29, 10)  # Sunday morning
    weekdays = BusinessCalendar(weekdays=frozenset({1, 2, 3, 4, 5}))
    assert add(at(27, 20), 120, weekdays) == at(30, 10)  # Friday evening → Monday


def test_holidays_are_skipped_and_workdays_override_the_weekday():
    calendar = BusinessCalendar(holidays=frozenset({date(2026, 11, 25), date(2026, 11, 26)}))
    assert add(at(24, 20), 120, calendar) == at(27, 10)
    assert add(at(25, 12), 30, calendar) == at(27, 9, 30)  # created on a holiday
    weekdays = BusinessCalendar(weekdays=frozenset({1, 2, 3, 4, 5}),
                                workdays=frozenset({date(2026, 11, 28)}))
    assert add(at(27, 20), 120, weekdays) == at(28, 10)  # 调休 Saturday
    both = BusinessCalendar(holidays=frozenset({date(2026, 11, 28)}),
                            workdays=frozenset({date(2026, 11, 28)}))
    assert add(at(27, 20), 120, both) == at(29, 10)  # a holiday wins


def test_other_zones_and_utc_input():
    utc_start = datetime(2026, 11, 24, 12, 50, tzinfo=timezone.utc)  # 20:50 Shanghai
    assert add(utc_start, 20) == at(25, 9, 10)
    london = BusinessCalendar(timezone="Europe/London")
    result = add_business_minutes(utc_start, 20, london)
    assert result == datetime(2026, 11, 24, 13, 10, tzinfo=timezone.utc)


def test_round_the_clock_and_seconds_are_kept():
    always = BusinessCalendar(opens=0, closes=24 * 60)
    assert add(at(24, 23, 50), 30, always) == at(25, 0, 20)
    start = at(24, 20, 59) + timedelta(seconds=30)
    assert add(start, 1) == at(25, 9) + timedelta(seconds=30)


def test_bad_input():
    with pytest.raises(ValueError):
        add_business_minutes(datetime(2026, 11, 24, 10), 5, DEFAULT)
    with pytest.raises(ValueError):
        add_business_minutes(at(24, 10), -1, DEFAULT)
    with pytest.raises(CalendarError):
        BusinessCalendar(opens=600, closes=600)
    with pytest.raises(CalendarError):
        add_business_minutes(at(24, 10), 5, BusinessCalendar(weekdays=frozenset()))
    assert parse_clock("24:00") == 1440
    for bad in ("25:00", "9", "24:30", "ab:cd"):
        with pytest.raises(CalendarError):
            parse_clock(bad)
    with pytest.raises(CalendarError):
        BusinessCalendar.from_dict({"timezone": "Mars/Olympus", "opens": "09:00",
                                    "closes": "21:00", "weekdays": [1]})
