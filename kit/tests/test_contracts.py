"""The event contracts: a consumer's expectations of each event type's data."""
from crm_kit import contracts
from crm_kit.envelope import make_envelope


def envelope(event_type, data):
    return make_envelope(event_type, data, source="test", correlation_id=None)


def test_a_well_formed_event_keeps_its_contract():
    assert contracts.problems(envelope("payment.received", {
        "payment_id": "p1", "customer_id": "c1", "amount": "3500.00",
        "paid_at": "2026-12-01T10:00:00+00:00", "bill_id": "b1", "extra": "ignored"})) == []


def test_missing_and_mistyped_fields_are_named():
    found = contracts.problems(envelope("payment.received", {
        "payment_id": "p1", "amount": 3500.0, "paid_at": "yesterday"}))
    assert any(p.startswith("data: 'customer_id' is a required property") for p in found)
    assert any(p.startswith("amount:") for p in found)  # money is a string, never a float
    assert any(p.startswith("paid_at:") for p in found)


def test_nested_records_and_enumerations_are_checked():
    assert contracts.problems(envelope("customer.merged", {
        "survivor_id": "a", "merged_id": "b", "customer": {"id": "a"}})) == [
        "customer: 'updated_at' is a required property"]
    assert contracts.problems(envelope("customer.scored", {
        "customer_id": "c1", "value_tier": "gold"}))[0].startswith("value_tier:")


def test_an_event_type_without_a_contract_is_not_checked():
    assert contracts.problems(envelope("task.created", {"anything": 1})) == []
