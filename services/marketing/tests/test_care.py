"""Care automation: each kind of greeting on its day, once, with consent; rule validation."""
from datetime import date, timedelta

import pytest
from lunardate import LunarDate

from crm_kit.errors import InvalidInput
from marketing_service import audience, care

from marketing_builders import launch, merge, message_of, messages
from marketing_fixtures import MARKETER, add_customer, envelope, lease_data, sign_lease


def rule(session, kind, template="{name}您好", channel="sms", **fields):
    return care.create(session, {"kind": kind, "channel": channel, "template": template,
                                 **fields}, MARKETER)


def greeted(session, day, rule_id=None):
    """Run the rules for ``day``; the customer ids with a message of ``rule_id`` (or any)."""
    care.run(session, day)
    found = messages(session, care_rule_id=rule_id) if rule_id else messages(session)
    return {m.customer_id for m in found}


def bodies(session, rule_id):
    return {m.customer_id: m.body for m in messages(session, care_rule_id=rule_id)}


# -- birthdays -----------------------------------------------------------------------------
def test_birthday_greets_on_the_day(session):
    birthday = rule(session, "birthday", "{name}，生日快乐！")
    born = add_customer(session, name="韩梅梅", birthday="1990-06-15")
    add_customer(session, birthday="1990-06-16")
    add_customer(session, birthday=None)
    assert greeted(session, date(2026, 6, 14)) == set()
    assert care.run(session, date(2026, 6, 15)) == {birthday.id: 1}
    message = message_of(session, born.id)
    assert (message.status, message.body, message.occasion) == (
        "queued", "韩梅梅，生日快乐！", "birthday:2026")
    assert (message.care_rule_id, message.campaign_id, message.channel) == (
        birthday.id, None, "sms")


def test_a_29_february_birthday_is_greeted_on_28_february_of_a_common_year(session):
    rule(session, "birthday")
    leapling = add_customer(session, birthday="1992-02-29")
    born_28 = add_customer(session, birthday="1990-02-28")
    assert greeted(session, date(2027, 2, 28)) == {leapling.id, born_28.id}


def test_in_a_leap_year_a_29_february_birthday_waits_for_29_february(session):
    rule(session, "birthday")
    leapling = add_customer(session, birthday="1992-02-29")
    born_28 = add_customer(session, birthday="1990-02-28")
    assert greeted(session, date(2028, 2, 28)) == {born_28.id}
    assert greeted(session, date(2028, 2, 29)) == {born_28.id, leapling.id}


# -- holidays ------------------------------------------------------------------------------
def test_the_lunar_calendar_gives_the_holiday_dates():
    assert LunarDate(2027, 1, 1).to_solar_date() == date(2027, 2, 6)
    assert LunarDate(2026, 8, 15).to_solar_date() == date(2026, 9, 25)


@pytest.mark.parametrize("holiday, day, name", [
    ("spring_festival", date(2027, 2, 6), "春节"),
    ("mid_autumn", date(2026, 9, 25), "中秋节"),
])
def test_a_lunar_holiday_greets_everyone_on_its_day(session, holiday, day, name):
    greeting = rule(session, "holiday", "{name}，{holiday_name}快乐", holiday=holiday)
    customers = {add_customer(session, name="王").id, add_customer(session, name="李").id}
    survivor, duplicate = add_customer(session), add_customer(session)
    merge(session, survivor.id, duplicate.id)
    customers.add(survivor.id)
    assert care.holiday_date(greeting, day.year) == day
    for other_day in (day - timedelta(days=1), day + timedelta(days=1), date(day.year, 1, 1)):
        assert greeted(session, other_day) == set()
    assert greeted(session, day) == customers  # the merged duplicate is not greeted
    assert set(bodies(session, greeting.id).values()) == {
        f"王，{name}快乐", f"李，{name}快乐", f"王小明，{name}快乐"}
    assert {m.occasion for m in messages(session)} == {f"holiday:{holiday}:{day.year}"}


def test_a_custom_holiday_on_its_date(session):
    national_day = rule(session, "holiday", "{holiday_name}快乐", holiday="custom",
                        holiday_name="国庆节", holiday_date="10-01")
    customer = add_customer(session)
    assert greeted(session, date(2026, 9, 30)) == set()
    assert greeted(session, date(2026, 10, 2)) == set()
    assert greeted(session, date(2026, 10, 1)) == {customer.id}
    assert bodies(session, national_day.id) == {customer.id: "国庆节快乐"}
    assert greeted(session, date(2027, 10, 1)) == {customer.id}  # and the year after
    assert len(messages(session)) == 2


# -- leases --------------------------------------------------------------------------------
def test_move_in_welcomes_a_first_lease_that_started_within_three_days(session):
    welcome = rule(session, "move_in", "{name}，欢迎入住！入住日 {move_in_date}")
    today = date(2026, 3, 10)
    today_start, two_days_ago, long_ago, not_yet = (add_customer(session) for _ in range(4))
    sign_lease(session, today_start.id, start=today)
    sign_lease(session, two_days_ago.id, start=today - timedelta(days=2))
    sign_lease(session, long_ago.id, start=today - timedelta(days=5))
    sign_lease(session, not_yet.id, start=today + timedelta(days=1))
    assert greeted(session, today) == {today_start.id, two_days_ago.id}
    assert bodies(session, welcome.id)[two_days_ago.id] == "王小明，欢迎入住！入住日 2026-03-08"
    # the next day only the lease that starts then is welcomed: nobody twice
    assert care.run(session, today + timedelta(days=1)) == {welcome.id: 1}
    assert sorted(m.customer_id for m in messages(session)) == sorted(
        [today_start.id, two_days_ago.id, not_yet.id])


def test_a_renewal_is_no_move_in(session):
    rule(session, "move_in")
    customer = add_customer(session)
    today = date(2026, 3, 10)
    old = sign_lease(session, customer.id, start=today - timedelta(days=365),
                     end=today - timedelta(days=1))
    data = {**lease_data(customer.id, start=today, end=today + timedelta(days=364),
                         renewed_from_id=old["lease_id"]),
            "lease_id": old["lease_id"], "new_lease_id": "lease-renewal"}
    audience.lease_renewed(session, data, envelope("lease.renewed", data))
    assert greeted(session, today) == set()


def renew(session, customer_id, old, years=1):
    end = date.fromisoformat(old["end_date"])
    data = {**lease_data(customer_id, start=end + timedelta(days=1),
                         end=end + timedelta(days=365 * years), renewed_from_id=old["lease_id"]),
            "lease_id": old["lease_id"], "new_lease_id": f"renewal-of-{old['lease_id']}"}
    audience.lease_renewed(session, data, envelope("lease.renewed", data))


def test_lease_anniversary_counts_years_from_the_first_move_in(session):
    anniversary = rule(session, "lease_anniversary", "{name}，入住{years}周年（{move_in_date}）")
    two_years = add_customer(session, name="老住户")
    first = sign_lease(session, two_years.id, start=date(2024, 3, 10), end=date(2025, 3, 9))
    renew(session, two_years.id, first, years=2)  # active until 2027-03
    one_year = add_customer(session, name="新住户")
    sign_lease(session, one_year.id, start=date(2025, 3, 10), end=date(2027, 3, 9))
    this_year = add_customer(session)
    sign_lease(session, this_year.id, start=date(2026, 3, 10), end=date(2027, 3, 9))
    other_day = add_customer(session)
    sign_lease(session, other_day.id, start=date(2025, 3, 11), end=date(2027, 3, 10))

    assert greeted(session, date(2026, 3, 10)) == {two_years.id, one_year.id}
    assert bodies(session, anniversary.id) == {
        two_years.id: "老住户，入住2周年（2024-03-10）",
        one_year.id: "新住户，入住1周年（2025-03-10）"}
    assert {m.occasion for m in messages(session)} == {"lease_anniversary:2026"}


def test_no_anniversary_without_an_active_lease(session):
    rule(session, "lease_anniversary", "{name}，入住{years}周年")
    moved_out = add_customer(session)
    data = lease_data(moved_out.id, start=date(2024, 3, 10), end=date(2025, 3, 9))
    audience.apply_lease(session, data, envelope("lease.ended", data), status="ended")
    assert greeted(session, date(2026, 3, 10)) == set()


def test_renewal_reminder_for_active_leases_ending_within_days_before(session):
    reminder = rule(session, "renewal_reminder", "{name}，租约{lease_end_date}到期，还有{days_left}天",
                    days_before=30)
    today = date(2026, 3, 10)
    soon, at_limit, later, terminated = (add_customer(session) for _ in range(4))
    sign_lease(session, soon.id, end=today + timedelta(days=20))
    sign_lease(session, at_limit.id, end=today + timedelta(days=30))
    sign_lease(session, later.id, end=today + timedelta(days=31))
    data = lease_data(terminated.id, end=today + timedelta(days=10))
    audience.apply_lease(session, data, envelope("lease.terminated", data), status="terminated")

    assert greeted(session, today) == {soon.id, at_limit.id}
    assert bodies(session, reminder.id)[soon.id] == "王小明，租约2026-03-30到期，还有20天"
    # one reminder per lease: the next day only the lease now 30 days from its end is added
    assert care.run(session, today + timedelta(days=1)) == {reminder.id: 1}
    assert sorted(m.customer_id for m in messages(session)) == sorted(
        [soon.id, at_limit.id, later.id])


def test_renewal_reminder_defaults_to_30_days_before(session):
    assert rule(session, "renewal_reminder").days_before == care.DEFAULT_DAYS_BEFORE == 30


def test_a_renewed_lease_gets_no_reminder(session):
    rule(session, "renewal_reminder", days_before=30)
    customer = add_customer(session)
    today = date(2026, 3, 10)
    old = sign_lease(session, customer.id, end=today + timedelta(days=10))
    renew(session, customer.id, old)
    assert greeted(session, today) == set()


# -- once, with consent --------------------------------------------------------------------
def test_running_twice_and_two_rules_of_one_occasion_greet_once(session):
    first = rule(session, "birthday", "{name}，生日快乐")
    second = rule(session, "birthday", "{name}，祝你生日快乐")
    customer = add_customer(session, birthday="1990-06-15")
    day = date(2026, 6, 15)
    assert care.run(session, day) == {first.id: 1, second.id: 0}
    assert care.run(session, day) == {first.id: 0, second.id: 0}
    assert message_of(session, customer.id).body == "王小明，生日快乐"
    # next year is another occasion
    assert care.run(session, date(2027, 6, 15)) == {first.id: 1, second.id: 0}


def test_consent_is_needed_and_the_frequency_cap_is_not(session):
    greeting = rule(session, "birthday", channel="wechat")
    no_wechat = add_customer(session, birthday="1990-06-15",
                             consent={"sms": True, "wechat": False})
    busy = add_customer(session, birthday="1990-06-15")
    launch(session), launch(session)  # two campaign messages: the campaign cap is reached
    care.run(session, date(2026, 6, 15))
    skipped = message_of(session, no_wechat.id, care_rule_id=greeting.id)
    assert (skipped.status, skipped.skip_reason, skipped.body) == ("skipped", "no_consent", None)
    queued = message_of(session, busy.id, care_rule_id=greeting.id)
    assert (queued.status, queued.recipient) == ("queued", "wx_xm")


def test_a_missing_field_skips_the_greeting(session):
    greeting = rule(session, "birthday", "{name}，{district}的朋友生日快乐")
    customer = add_customer(session, birthday="1990-06-15", district=None)
    care.run(session, date(2026, 6, 15))
    skipped = message_of(session, customer.id, care_rule_id=greeting.id)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "missing_field")


# -- rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("data, field", [
    ({"kind": "holiday"}, "holiday"),
    ({"kind": "holiday", "holiday": "labour_day"}, "holiday"),
    ({"kind": "holiday", "holiday": "custom", "holiday_name": "店庆"}, "holiday_date"),
    ({"kind": "holiday", "holiday": "custom", "holiday_date": "10-01"}, "holiday_name"),
    ({"kind": "holiday", "holiday": "custom", "holiday_name": "店庆",
      "holiday_date": "13-01"}, "holiday_date"),
    ({"kind": "birthday", "days_before": 7}, "days_before"),
    ({"kind": "birthday", "holiday": "mid_autumn"}, "holiday"),
    ({"kind": "birthday", "template": "{name}，入住{years}周年"}, "template"),
    ({"kind": "move_in", "template": "还有{days_left}天"}, "template"),
    ({"kind": "renewal_reminder", "days_before": 0}, "days_before"),
    ({"kind": "anniversary"}, "kind"),
    ({"kind": "birthday", "channel": "fax"}, "channel"),
])
def test_rule_validation_names_the_field(session, data, field):
    with pytest.raises(InvalidInput) as error:
        care.create(session, {"channel": "sms", "template": "{name}您好", **data}, MARKETER)
    assert field in error.value.details


@pytest.mark.parametrize("kind, template, fields", [
    ("holiday", "{name}，{holiday_name}快乐", {"holiday": "mid_autumn"}),
    ("move_in", "{name}，{move_in_date}入住", {}),
    ("lease_anniversary", "{years}周年，{move_in_date}", {}),
    ("renewal_reminder", "{lease_end_date}到期，还有{days_left}天", {}),
])
def test_each_kind_may_name_its_own_fields(session, kind, template, fields):
    assert rule(session, kind, template, **fields).kind == kind


def test_update_a_rule_keeps_its_kind(session):
    greeting = rule(session, "birthday")
    with pytest.raises(InvalidInput) as error:
        care.update(session, greeting.id, {"kind": "holiday"}, MARKETER)
    assert list(error.value.details) == ["kind"]
    with pytest.raises(InvalidInput) as error:
        care.update(session, greeting.id, {"template": "{years}周年"}, MARKETER)
    assert list(error.value.details) == ["template"]
    updated = care.update(session, greeting.id, {"kind": "birthday", "name": "生日",
                                                 "template": "{name}生日快乐"}, MARKETER)
    assert (updated.name, updated.template, updated.kind) == ("生日", "{name}生日快乐", "birthday")


def test_a_deactivated_rule_greets_nobody(session):
    greeting = rule(session, "birthday")
    add_customer(session, birthday="1990-06-15")
    care.update(session, greeting.id, {"active": False}, MARKETER)
    assert care.run(session, date(2026, 6, 15)) == {}
    assert messages(session) == []
    care.update(session, greeting.id, {"active": True}, MARKETER)
    assert care.run(session, date(2026, 6, 15)) == {greeting.id: 1}


def test_run_day_parsing():
    assert care.parse_day("2026-10-01") == date(2026, 10, 1)
    assert care.parse_day(None) is None
    with pytest.raises(InvalidInput) as error:
        care.parse_day("01/10/2026")
    assert list(error.value.details) == ["today"]



def test_clearing_days_before_of_a_reminder_breaks_no_greeting(session):
    reminder = rule(session, "renewal_reminder", days_before=10)
    birthday = rule(session, "birthday")
    customer = add_customer(session, birthday="1990-03-10")
    today = date(2026, 3, 10)
    sign_lease(session, customer.id, end=today + timedelta(days=5))
    try:  # refusing the change, or falling back to the default, are both fine
        care.update(session, reminder.id, {"days_before": None}, MARKETER)
    except InvalidInput as error:
        assert list(error.value.details) == ["days_before"]
    assert care.run(session, today) == {reminder.id: 1, birthday.id: 1}
