"""The recompute's own edges: an empty store, and parameters that are not an object."""
import pytest

from analytics_service import queries, recompute
from crm_kit.errors import InvalidInput

from analytics_fixtures import add_customer, add_payment


def steps(session):
    import contextlib

    return lambda: contextlib.nullcontext(session)


def test_a_recompute_on_an_empty_store_scores_nobody(session):
    summary = recompute.run_all(steps(session), __import__("datetime").date(2026, 12, 1))
    assert (summary["customers"], summary["published"], summary["warnings_raised"]) == (0, 0, 0)
    assert queries.list_rfm(session, None, 1, 50)["total"] == 0


def test_a_recompute_scores_and_a_second_publishes_only_changes(session):
    from datetime import date

    customer = add_customer(session)
    add_payment(session, customer.id, "3000.00", "2026-11-01")
    first = recompute.run_all(steps(session), date(2026, 12, 1))
    assert (first["customers"], first["published"]) == (1, 1)
    assert queries.scores(session, customer.id)["rfm"]["monetary"] == "3000.00"
    second = recompute.run_all(steps(session), date(2026, 12, 1))
    assert second["published"] == 0


def test_clv_parameters_must_be_an_object(session):
    with pytest.raises(InvalidInput):
        recompute.set_clv_parameters(session, ["0.08"])
