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


def test_a_version_the_consumer_does_not_know_is_refused_until_it_is_upgraded(monkeypatch):
    v2 = make_envelope("payment.received", {"payment_id": "p1", "customer_id": "c1",
                                            "amount_cents": 350000, "paid_at": "2026-12-01T10:00"},
                       source="test", version=2)
    assert contracts.problems(v2) == [
        "version: 2 of payment.received is not known here (this consumer knows 1); "
        "upgrade it, then replay its dead letters"]
    # the upgraded consumer's kit knows version 2 and checks it against its own schema
    monkeypatch.setitem(contracts.LATER, ("payment.received", 2), contracts.shape(
        {"payment_id": contracts.STRING, "amount_cents": {"type": "integer"}}))
    contracts._validator.cache_clear()
    try:
        assert contracts.versions("payment.received") == [1, 2]
        assert contracts.problems(v2) == []
        v2["data"]["amount_cents"] = "3500.00"
        assert contracts.problems(v2)[0].startswith("amount_cents:")
    finally:
        contracts._validator.cache_clear()
