"""Tags from rules (标签规则): derived from the record, refreshed whenever it changes.

Free tags are set by staff (``source='manual'``); rule tags (``source='rule'``) are recomputed
from the profile on every create/update, so they never go stale. A manual tag with the same
name as a rule tag is kept as manual.
"""
from datetime import date

HIGH_INCOME = {"20k_30k", "above_30k"}
DEGREES = {"bachelor", "master", "doctorate"}


def _age(birthday, today):
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


def rule_tags(customer, today=None):
    """The rule tags the customer's profile earns, as a set of names."""
    today = today or date.today()
    tags = set()
    if customer.kind == "company":
        tags.add("corporate")
    if customer.birthday:
        age = _age(customer.birthday, today)
        if age <= 25 and customer.education in DEGREES:
            tags.add("fresh_graduate")       # 应届/毕业不久
        if 22 <= age <= 35 and (customer.employer or customer.occupation):
            tags.add("young_professional")   # 青年白领, the core customer of [000]
    if customer.income_band in HIGH_INCOME:
        tags.add("high_income")
    if customer.hometown and customer.city and customer.hometown != customer.city:
        tags.add("newcomer")                 # 外地来蓉
    return tags


def refresh_rule_tags(customer):
    from customer_service.models import CustomerTag

    wanted = rule_tags(customer)
    current = {t.tag: t for t in customer.tags}
    for tag in list(customer.tags):
        if tag.source == "rule" and tag.tag not in wanted:
            customer.tags.remove(tag)
    for name in sorted(wanted - set(current)):
        customer.tags.append(CustomerTag(tag=name, source="rule"))
