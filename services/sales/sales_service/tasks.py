"""Activities (工作日历): tasks, reminders and appointments of staff members. Plain functions
over a SQLAlchemy session; the caller owns the transaction.

- Staff create tasks for themselves or others; the system creates collection (催缴), renewal
  and stagnation tasks with ``create_system_task`` (one collection task per bill, however
  often the overdue scan runs).
- A task is done once, with an optional result; done tasks stay as history.
- A supervisor urges (催办) an open task past its due time: ``urge_count`` + 1 and the event
  ``task.urged`` notifies its owner. Urging a task that is done or not yet due is a Conflict.
- ``scan_reminders`` emits ``task.reminder_due`` once per task whose ``remind_at`` has come.
- Every step is a ``TaskEvent`` row (created, reminded, urged, reassigned, done): the
  task's ``history``.
- ``overdue`` is computed: open and ``due_at`` in the past.
"""
import uuid
from datetime import timedelta

from sqlalchemy import and_, func, not_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import object_session

from crm_kit.envelope import now as utc_now
from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_kit.outbox import record_event
from sales_service import schemas
from sales_service import vocabulary as v
from sales_service.models import Opportunity, Task, TaskEvent

LINKS = ("customer_id", "opportunity_id", "bill_id", "lease_id")


def actor_id(actor):
    return (actor or {}).get("id")


def _iso(moment):
    return moment.isoformat() if moment else None


# -- reading -------------------------------------------------------------------------------
def _history_rows(session, task_ids):
    by_task = {task_id: [] for task_id in task_ids}
    if task_ids:
        rows = session.scalars(select(TaskEvent).where(TaskEvent.task_id.in_(task_ids))
                               .order_by(TaskEvent.id))
        for row in rows:
            by_task[row.task_id].append({"action": row.action, "actor_id": row.actor_id,
                                         "note": row.note,
                                         "occurred_at": row.occurred_at.isoformat()})
    return by_task


def _as_dict(task, history, moment):
    return {"id": task.id, "owner_id": task.owner_id, "kind": task.kind, "title": task.title,
            "due_at": task.due_at.isoformat(), "remind_at": _iso(task.remind_at),
            "reminded_at": _iso(task.reminded_at),
            "customer_id": task.customer_id, "opportunity_id": task.opportunity_id,
            "bill_id": task.bill_id, "lease_id": task.lease_id, "status": task.status,
            "overdue": task.status == "open" and task.due_at < moment,
            "result": task.result, "done_at": _iso(task.done_at),
            "urge_count": task.urge_count, "urged_at": _iso(task.urged_at),
            "urged_by": task.urged_by, "created_by": task.created_by,
            "history": history, "created_at": task.created_at.isoformat()}


def to_dict(task, now=None):
    """The task as the contract shows it, with ``history`` (read through the task's own
    session) and ``overdue`` as of ``now``."""
    session = object_session(task)
    session.flush()
    return _as_dict(task, _history_rows(session, [task.id])[task.id], now or utc_now())


def history(session, task_id):
    get(session, task_id)
    return _history_rows(session, [task_id])[task_id]


def get(session, task_id, for_update=False):
    """The task, or NotFound."""
    query = select(Task).where(Task.id == task_id)
    if for_update:
        query = query.with_for_update()
    task = session.scalars(query).first()
    if task is None:
        raise NotFound(f"task {task_id} does not exist", {"task_id": task_id})
    return task


def search(session, filters, page=1, per_page=50, now=None):
    """Tasks by ``owner_id``, ``owner_ids``, ``status``, ``overdue`` (open and due before now),
    ``urged`` (urged at least once), ``kind``, ``customer_id``, ``opportunity_id``,
    ``bill_id``, ``lease_id``; the earliest due first."""
    moment = now or utc_now()
    filters = schemas.load_filters(schemas.task_filter_schema, filters)
    query = select(Task)
    for name in ("owner_id", "status", "kind") + LINKS:
        if filters.get(name):
            query = query.where(getattr(Task, name) == filters[name])
    if filters.get("owner_ids") is not None:
        query = query.where(Task.owner_id.in_(filters["owner_ids"]))
    if filters.get("overdue") is not None:
        overdue = and_(Task.status == "open", Task.due_at < moment)
        query = query.where(overdue if filters["overdue"] else not_(overdue))
    if filters.get("urged") is not None:
        query = query.where(Task.urge_count > 0 if filters["urged"] else Task.urge_count == 0)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Task.due_at, Task.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    histories = _history_rows(session, [t.id for t in rows])
    return {"items": [_as_dict(t, histories[t.id], moment) for t in rows], "total": total,
            "page": page, "per_page": per_page}


# -- writing -------------------------------------------------------------------------------
def _log(session, task, action, actor=None, note=None, moment=None):
    session.add(TaskEvent(task_id=task.id, action=action, actor_id=actor_id(actor),
                          note=note, occurred_at=moment or utc_now()))


def create(session, data, actor):
    """A task for ``owner_id``. With an ``opportunity_id``, the opportunity must exist and the
    task takes its customer (a different ``customer_id`` is refused)."""
    data = schemas.load(schemas.task_schema, data)
    if data.get("opportunity_id"):
        customer_id = session.scalar(select(Opportunity.customer_id)
                                     .where(Opportunity.id == data["opportunity_id"]))
        if customer_id is None:
            raise InvalidInput({"opportunity_id": ["no such opportunity"]})
        if data.get("customer_id") and data["customer_id"] != customer_id:
            raise InvalidInput({"customer_id": [
                f"the opportunity belongs to customer {customer_id}"]})
        data["customer_id"] = customer_id
    moment = utc_now()
    task = Task(id=str(uuid.uuid4()), owner_id=data["owner_id"], kind=data["kind"],
                title=data["title"], due_at=data["due_at"], remind_at=data.get("remind_at"),
                customer_id=data.get("customer_id"), opportunity_id=data.get("opportunity_id"),
                status="open", urge_count=0, created_by=actor_id(actor), created_at=moment)
    session.add(task)
    session.flush()
    _log(session, task, "created", actor, moment=moment)
    return task


def create_system_task(session, owner_id, kind, title, due_at, **links):
    """A task the system gives a staff member (collection 催缴, renewal, stagnation).

    ``links``: ``customer_id``, ``opportunity_id``, ``bill_id``, ``lease_id``, and optionally
    ``remind_at`` and ``note`` (kept in the history). Idempotent per (kind, bill_id): when a
    task of that kind already exists for the bill, that task is returned and nothing is added
    (also when a concurrent scan inserted it first). With no ``owner_id`` there is nobody to
    give the task to: returns None.
    """
    if kind not in v.TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}")
    if owner_id is None:
        return None
    note = links.pop("note", None)
    remind_at = links.pop("remind_at", None)
    unknown = set(links) - set(LINKS)
    if unknown:
        raise TypeError(f"unknown task links: {sorted(unknown)}")
    bill_id = links.get("bill_id")
    if bill_id is not None:
        existing = _task_for_bill(session, kind, bill_id)
        if existing is not None:
            return existing
    moment = utc_now()
    task = Task(id=str(uuid.uuid4()), owner_id=owner_id, kind=kind, title=title[:200],
                due_at=due_at, remind_at=remind_at, status="open", urge_count=0,
                created_by=None, created_at=moment, **links)
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError:
        existing = _task_for_bill(session, kind, bill_id) if bill_id is not None else None
        if existing is None:
            raise
        return existing
    _log(session, task, "created", note=note or "by the system", moment=moment)
    return task


def open_collection_task(session, bill):
    """The collection (催缴) task of an overdue ``bill`` for its owner, due in a day; the
    existing one when the bill has one already; None when the bill has no owner."""
    balance = bill.amount - bill.paid
    what = bill.description or f"{bill.kind} bill"
    return create_system_task(
        session, bill.owner_id, "collection",
        f"催缴: {what}, {balance:.2f} CNY due {bill.due_date.isoformat()}",
        utc_now() + timedelta(days=1), customer_id=bill.customer_id, bill_id=bill.id,
        lease_id=bill.lease_id, note=f"bill {bill.id} overdue since {bill.due_date.isoformat()}")


def _task_for_bill(session, kind, bill_id):
    return session.scalars(select(Task).where(Task.kind == kind, Task.bill_id == bill_id)).first()


def complete(session, task_id, result, actor):
    """Mark the task done with ``result`` (optional text); Conflict if it is done already."""
    result = schemas.load(schemas.task_done_schema, {"result": result})["result"]
    task = get(session, task_id, for_update=True)
    if task.status == "done":
        raise Conflict(f"task {task_id} was done at {task.done_at.isoformat()}",
                       {"status": task.status})
    moment = utc_now()
    task.status, task.result, task.done_at = "done", result, moment
    _log(session, task, "done", actor, note=result, moment=moment)
    return task


def complete_linked(session, kind, result, **links):
    """Close the open tasks of ``kind`` linked to the given ids (e.g. a collection task when
    its bill is paid, a stagnation task when its opportunity moves on). Returns them."""
    if not links or set(links) - set(LINKS):
        raise TypeError(f"give links among {LINKS}")
    query = select(Task).where(Task.kind == kind, Task.status == "open")
    for name, value in links.items():
        query = query.where(getattr(Task, name) == value)
    moment = utc_now()
    closed = session.scalars(query.with_for_update()).all()
    for task in closed:
        task.status, task.result, task.done_at = "done", result, moment
        _log(session, task, "done", note=result, moment=moment)
    return closed


def reassign_open(session, opportunity_id, from_owner_id, to_owner_id, actor, note=None):
    """Move the open tasks of an opportunity held by ``from_owner_id`` to ``to_owner_id``
    (they follow the opportunity when it is assigned). Returns them."""
    moved = session.scalars(select(Task).where(
        Task.opportunity_id == opportunity_id, Task.status == "open",
        Task.owner_id == from_owner_id).with_for_update()).all()
    moment = utc_now()
    for task in moved:
        task.owner_id = to_owner_id
        _log(session, task, "reassigned", actor, moment=moment,
             note=note or f"{from_owner_id} → {to_owner_id}")
    return moved


def urge(session, task_id, actor, now=None):
    """催办: an open task past its due time; notifies the owner (``task.urged``)."""
    moment = now or utc_now()
    task = get(session, task_id, for_update=True)
    if task.status != "open":
        raise Conflict(f"task {task_id} is done; only open tasks can be urged",
                       {"status": task.status})
    if task.due_at >= moment:
        raise Conflict(f"task {task_id} is not overdue: it is due at {task.due_at.isoformat()}",
                       {"status": task.status, "due_at": task.due_at.isoformat()})
    task.urge_count += 1
    task.urged_at, task.urged_by = moment, actor_id(actor)
    _log(session, task, "urged", actor, moment=moment)
    record_event(session, "task.urged", {
        "task_id": task.id, "owner_id": task.owner_id, "urged_by": task.urged_by,
        "title": task.title, "due_at": task.due_at.isoformat(), "urge_count": task.urge_count,
        "kind": task.kind, "customer_id": task.customer_id})
    return task


def scan_reminders(session, now=None):
    """Announce (``task.reminder_due``) each open task whose ``remind_at`` has come, once.

    Safe on several instances: a task is claimed by a conditional update, so a second scan
    (or a concurrent one) skips it. Returns the tasks reminded.
    """
    moment = now or utc_now()
    due = session.scalars(select(Task).where(
        Task.status == "open", Task.remind_at.is_not(None), Task.remind_at <= moment,
        Task.reminded_at.is_(None)).order_by(Task.remind_at, Task.id).limit(1000)).all()
    reminded = []
    for task in due:
        claimed = session.execute(
            update(Task).where(Task.id == task.id, Task.reminded_at.is_(None))
            .values(reminded_at=moment).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            continue
        session.refresh(task, ["reminded_at"])
        _log(session, task, "reminded", moment=moment)
        record_event(session, "task.reminder_due", {
            "task_id": task.id, "owner_id": task.owner_id, "due_at": task.due_at.isoformat(),
            "title": task.title, "kind": task.kind, "customer_id": task.customer_id})
        reminded.append(task)
    return reminded
