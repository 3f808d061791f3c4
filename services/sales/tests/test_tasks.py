"""Activities (工作日历): tasks, system tasks, completion, urging and reminders."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm_kit.envelope import now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from sales_service import opportunities, tasks
from sales_service.models import Task, TaskEvent

from sales_fixtures import ACTOR, OTHER, SUPERVISOR, customer, events, opportunity_data


def task_data(**overrides):
    data = {"owner_id": "staff-1", "title": "回访王小明",
            "due_at": (now() + timedelta(days=1)).isoformat()}
    data.update(overrides)
    return data


def actions(session, task):
    return [h["action"] for h in tasks.to_dict(task)["history"]]


def test_create_returns_the_contract_dict_with_history(session):
    task = tasks.create(session, task_data(remind_at=now().isoformat(), customer_id="cust-1"),
                        SUPERVISOR)
    data = tasks.to_dict(task)
    assert set(data) >= {"id", "owner_id", "kind", "title", "due_at", "remind_at", "customer_id",
                         "opportunity_id", "bill_id", "lease_id", "status", "overdue", "result",
                         "done_at", "urge_count", "urged_at", "urged_by", "history",
                         "created_at"}
    assert (data["kind"], data["status"], data["overdue"], data["urge_count"]) == (
        "task", "open", False, 0)
    assert data["created_by"] == "sup-1"
    [created] = data["history"]
    assert (created["action"], created["actor_id"]) == ("created", "sup-1")


@pytest.mark.parametrize("field,value", [
    ("due_at", "2030-01-01T09:00:00"),  # no offset
    ("due_at", "tomorrow"), ("title", ""), ("title", "x" * 201), ("owner_id", None),
    ("kind", "chore"), ("priority", "high"),
])
def test_invalid_values_are_named(session, field, value):
    with pytest.raises(InvalidInput) as caught:
        tasks.create(session, task_data(**{field: value}), ACTOR)
    assert field in caught.value.details


def test_remind_at_must_not_be_after_due_at(session):
    due = now() + timedelta(days=1)
    with pytest.raises(InvalidInput) as caught:
        tasks.create(session, task_data(due_at=due.isoformat(),
                                        remind_at=(due + timedelta(minutes=1)).isoformat()), ACTOR)
    assert list(caught.value.details) == ["remind_at"]
    assert tasks.create(session, task_data(due_at=due.isoformat(), remind_at=due.isoformat()),
                        ACTOR).remind_at == due


def test_a_task_about_an_opportunity_takes_its_customer(session):
    opportunity = opportunities.create(session, opportunity_data(), ACTOR, customer())
    task = tasks.create(session, task_data(opportunity_id=opportunity.id), ACTOR)
    assert task.customer_id == "cust-1"
    with pytest.raises(InvalidInput) as caught:
        tasks.create(session, task_data(opportunity_id=opportunity.id, customer_id="cust-9"),
                     ACTOR)
    assert "customer_id" in caught.value.details
    with pytest.raises(InvalidInput) as caught:
        tasks.create(session, task_data(opportunity_id="nope"), ACTOR)
    assert "opportunity_id" in caught.value.details


def test_complete_once_with_result_and_history(session):
    task = tasks.create(session, task_data(), ACTOR)
    tasks.complete(session, task.id, "客户已确认看房时间", ACTOR)
    data = tasks.to_dict(task)
    assert (data["status"], data["result"]) == ("done", "客户已确认看房时间")
    assert data["done_at"] is not None
    assert actions(session, task) == ["created", "done"]
    with pytest.raises(Conflict) as caught:
        tasks.complete(session, task.id, "again", ACTOR)
    assert caught.value.details == {"status": "done"}
    with pytest.raises(NotFound):
        tasks.complete(session, "nope", None, ACTOR)
    other = tasks.create(session, task_data(), ACTOR)
    assert tasks.complete(session, other.id, None, ACTOR).result is None  # result optional


def test_urge_only_an_open_overdue_task(session):
    late = tasks.create(session, task_data(due_at=(now() - timedelta(hours=2)).isoformat()), ACTOR)
    upcoming = tasks.create(session, task_data(), ACTOR)
    with pytest.raises(Conflict) as caught:
        tasks.urge(session, upcoming.id, SUPERVISOR)
    assert "due_at" in caught.value.details
    tasks.urge(session, late.id, SUPERVISOR)
    tasks.urge(session, late.id, SUPERVISOR)
    data = tasks.to_dict(late)
    assert (data["urge_count"], data["urged_by"], data["overdue"]) == (2, "sup-1", True)
    assert data["urged_at"] is not None
    assert actions(session, late) == ["created", "urged", "urged"]
    urged = events(session, "task.urged")
    assert len(urged) == 2
    assert {k: urged[0]["data"][k] for k in ("task_id", "owner_id", "urged_by", "title")} == {
        "task_id": late.id, "owner_id": "staff-1", "urged_by": "sup-1", "title": "回访王小明"}
    tasks.complete(session, late.id, "done late", ACTOR)
    with pytest.raises(Conflict) as caught:
        tasks.urge(session, late.id, SUPERVISOR)
    assert caught.value.details["status"] == "done"
    assert len(events(session, "task.urged")) == 2


def test_urge_uses_the_given_clock(session):
    task = tasks.create(session, task_data(), ACTOR)
    tasks.urge(session, task.id, SUPERVISOR, now=now() + timedelta(days=2))
    assert task.urge_count == 1


def test_reminder_scan_announces_each_task_once(session):
    moment = now()
    due_soon = tasks.create(
        session, task_data(remind_at=(moment - timedelta(minutes=1)).isoformat()), ACTOR)
    later = tasks.create(session, task_data(remind_at=(moment + timedelta(hours=1)).isoformat()),
                         ACTOR)
    done = tasks.create(session, task_data(remind_at=(moment - timedelta(hours=1)).isoformat()),
                        ACTOR)
    tasks.complete(session, done.id, None, ACTOR)
    tasks.create(session, task_data(), ACTOR)  # no reminder at all

    assert [t.id for t in tasks.scan_reminders(session, moment)] == [due_soon.id]
    assert tasks.scan_reminders(session, moment) == []
    assert due_soon.reminded_at == moment
    assert actions(session, due_soon) == ["created", "reminded"]
    [reminder] = events(session, "task.reminder_due")
    assert reminder["data"]["task_id"] == due_soon.id
    assert reminder["data"]["owner_id"] == "staff-1"
    assert reminder["data"]["due_at"] == due_soon.due_at.isoformat()
    assert reminder["data"]["title"] == "回访王小明"
    # later, the other one comes due, once
    assert [t.id for t in tasks.scan_reminders(session, moment + timedelta(hours=2))] == [later.id]
    assert tasks.scan_reminders(session, moment + timedelta(hours=3)) == []
    assert len(events(session, "task.reminder_due")) == 2


def test_collection_tasks_are_idempotent_per_bill(session):
    due = now() + timedelta(days=1)
    first = tasks.create_system_task(session, "staff-1", "collection", "催缴 bill B1", due,
                                     bill_id="B1", customer_id="cust-1", lease_id="L1")
    again = tasks.create_system_task(session, "staff-1", "collection", "催缴 bill B1", due,
                                     bill_id="B1", customer_id="cust-1", lease_id="L1")
    assert again.id == first.id
    other_bill = tasks.create_system_task(session, "staff-1", "collection", "催缴 bill B2", due,
                                          bill_id="B2")
    assert other_bill.id != first.id
    assert session.scalar(select(func.count()).select_from(Task)) == 2
    data = tasks.to_dict(first)
    assert (data["kind"], data["bill_id"], data["lease_id"], data["created_by"]) == (
        "collection", "B1", "L1", None)
    assert [h["action"] for h in data["history"]] == ["created"]


def test_a_collection_task_inserted_concurrently_is_returned(session, monkeypatch):
    due = now() + timedelta(days=1)
    first = tasks.create_system_task(session, "staff-1", "collection", "催缴", due, bill_id="B1")
    session.commit()
    real_lookup = tasks._task_for_bill
    calls = []

    def late_lookup(session_, kind, bill_id):  # the pre-check misses the other scan's row
        calls.append(bill_id)
        return None if len(calls) == 1 else real_lookup(session_, kind, bill_id)

    monkeypatch.setattr(tasks, "_task_for_bill", late_lookup)
    again = tasks.create_system_task(session, "staff-1", "collection", "催缴", due, bill_id="B1")
    assert again.id == first.id
    assert len(calls) == 2
    session.commit()  # the failed savepoint left the transaction usable
    assert session.scalar(select(func.count()).select_from(Task)) == 1
    assert session.scalar(select(func.count()).select_from(TaskEvent)) == 1


def test_system_tasks_without_an_owner_or_with_bad_arguments(session):
    due = now()
    assert tasks.create_system_task(session, None, "collection", "催缴", due, bill_id="B1") is None
    with pytest.raises(ValueError):
        tasks.create_system_task(session, "staff-1", "chore", "x", due)
    with pytest.raises(TypeError):
        tasks.create_system_task(session, "staff-1", "renewal", "x", due, unit_id="U1")
    renewal = tasks.create_system_task(session, "staff-1", "renewal", "续租 L1", due,
                                       lease_id="L1", note="lease ends in 30 days")
    assert tasks.to_dict(renewal)["history"][0]["note"] == "lease ends in 30 days"


def test_complete_linked_closes_the_open_tasks_of_a_bill(session):
    due = now() + timedelta(days=1)
    task = tasks.create_system_task(session, "staff-1", "collection", "催缴", due, bill_id="B1")
    assert [t.id for t in tasks.complete_linked(session, "collection", "bill paid",
                                                bill_id="B1")] == [task.id]
    assert (task.status, task.result) == ("done", "bill paid")
    assert tasks.complete_linked(session, "collection", "bill paid", bill_id="B1") == []


def test_list_filters(session):
    moment = now()
    late = tasks.create(session, task_data(due_at=(moment - timedelta(days=1)).isoformat(),
                                           title="late"), ACTOR)
    tasks.create(session, task_data(title="mine later"), ACTOR)
    theirs = tasks.create(session, task_data(owner_id="staff-2", title="theirs",
                                             due_at=(moment - timedelta(hours=1)).isoformat()),
                          OTHER)
    done = tasks.create(session, task_data(title="done",
                                           due_at=(moment - timedelta(days=2)).isoformat()), ACTOR)
    tasks.complete(session, done.id, "ok", ACTOR)
    tasks.urge(session, late.id, SUPERVISOR)

    def titles(**filters):
        return [t["title"] for t in tasks.search(session, filters)["items"]]

    assert titles() == ["done", "late", "theirs", "mine later"]  # earliest due first
    assert titles(owner_id="staff-2") == ["theirs"]
    assert titles(owner_ids=["staff-1", "staff-3"]) == ["done", "late", "mine later"]
    assert titles(owner_ids=[]) == []
    assert titles(status="open") == ["late", "theirs", "mine later"]
    assert titles(status="done") == ["done"]
    assert titles(overdue=True) == ["late", "theirs"]
    assert titles(overdue="false") == ["done", "mine later"]
    assert titles(urged=True) == ["late"]
    assert titles(urged=False, owner_id="staff-1") == ["done", "mine later"]
    page = tasks.search(session, {"overdue": True}, page=1, per_page=1)
    assert (page["total"], len(page["items"]), page["items"][0]["overdue"]) == (2, 1, True)
    assert page["items"][0]["history"][-1]["action"] == "urged"
    assert tasks.search(session, {"owner_id": "staff-2"})["items"][0]["id"] == theirs.id
    with pytest.raises(InvalidInput) as caught:
        tasks.search(session, {"status": "closed", "overdue": "maybe"})
    assert set(caught.value.details) == {"status", "overdue"}


def test_open_collection_task_for_an_overdue_bill(session):
    import uuid
    from datetime import date
    from decimal import Decimal

    from sales_service import units
    from sales_service.models import Bill

    from sales_fixtures import make_lease, unit_data

    lease = make_lease(session, units.create(session, unit_data(), ACTOR).id, owner_id="staff-3")
    moment = now()
    bill = Bill(id=str(uuid.uuid4()), lease_id=lease.id, customer_id="cust-1", owner_id="staff-3",
                kind="rent", description="2030-01 rent", due_date=date(2030, 1, 1),
                amount=Decimal("3500.00"), paid=Decimal("1000.00"), status="partially_paid",
                created_at=moment, updated_at=moment)
    session.add(bill)
    session.flush()
    task = tasks.open_collection_task(session, bill)
    data = tasks.to_dict(task)
    assert (data["kind"], data["owner_id"], data["bill_id"], data["lease_id"],
            data["customer_id"]) == ("collection", "staff-3", bill.id, lease.id, "cust-1")
    assert data["title"] == "催缴: 2030-01 rent, 2500.00 CNY due 2030-01-01"
    assert tasks.open_collection_task(session, bill).id == task.id
    bill.owner_id = None
    assert tasks.open_collection_task(session, bill) is None
