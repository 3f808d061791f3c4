"""Send a plan (``demo.plan``) through the gateway's public API, phase by phase.

1. staff (as the admin, one by one: supervisors before their teams; then everyone signs in
   on a background thread, in the order they first act);
2. the units (each by the housekeeper of its project);
3. customers (each by the customer manager who owns them);
4. per unit, in date order, its three years of leases: opportunity and viewing before a
   recent lease, the lease (or the renewal), the payments of its bills, a utilities charge,
   a termination, the deposit refund at move-out; then the open leads (opportunities,
   viewings, development plans), the interaction log and the staff's tasks;
5. the knowledge base, then tickets, each through its workflow (assign, work, comment,
   appointment, resolve, feedback, close or reopen);
6. churned customers, segments, care rules, campaigns (launched, then a few responses), the
   service desk's assignment registry, and an analytics recompute.

Work is spread over a thread pool; every call acts as the staff member who would do it.
A 409 on something that exists already (a unit code, a customer's mobile, a segment's name …)
is counted as skipped and what depends on it is left alone, so running the demo again on a
filled system adds nothing and does not fail. Anything else unexpected is counted as failed,
with the first examples kept for the summary.
"""
import hashlib
import random
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from demo.client import ApiError
from demo.progress import Progress

ADMIN = "admin"
MAX_EXAMPLES = 12


class StaffConflict(Exception):
    """A demo username belongs to someone who is not the demo's staff member."""


# ---------------------------------------------------------------- payments

def payments_for(bills, payer, pay_seed, today, until=None, arrears=None):
    """What a tenant of habit ``payer`` pays on ``bills`` (as the API answered them), up to
    yesterday: ``[(bill, amount, paid_at), …]``. Deterministic: ``pay_seed`` and the bills
    decide everything, and each bill draws the same number of random values.

    punctual tenants pay on or a few days before the due date; the sometimes late, chronic
    late and defaulting ones pay some bills days or weeks late, some in two parts; a
    defaulter stops paying at some point. What would be paid today or later is not paid (yet):
    those bills stay unpaid, or overdue once their due date has passed. ``until``: the
    move-out day of a terminated lease (later bills are voided, not paid). ``arrears``: the
    latest rent bill already due is left unpaid (``unpaid_last``) or paid in part
    (``partial_last``)."""
    r = random.Random(pay_seed)
    late_share, late_days, split_share = {
        "punctual": (0.04, (1, 6), 0.02),
        "sometimes_late": (0.25, (3, 25), 0.08),
        "chronic_late": (0.6, (5, 45), 0.15),
        "defaulter": (0.6, (5, 45), 0.15),
    }[payer]
    stop = today - timedelta(days=r.randint(20, 150)) if payer == "defaulter" else None
    out = []
    last_due = max((b["due_date"] for b in bills if b.get("kind") == "rent"
                    and b["due_date"] < today.isoformat()), default=None) if arrears else None
    ordered = sorted(bills, key=lambda b: (b["due_date"], b.get("kind") != "deposit",
                                           b.get("period_start") or "", b["id"]))
    for bill in ordered:
        x1, x2, x3, x4, x5 = (r.random() for _ in range(5))
        due = date.fromisoformat(bill["due_date"])
        amount = Decimal(bill["amount"])
        if amount <= 0 or (until and due > until):
            continue
        hour, minute = 8 + int(x4 * 14), int(x3 * 60)
        if bill.get("kind") == "deposit":  # paid at signing
            day = min(due - timedelta(days=int(x2 * 4)), today - timedelta(days=1))
            out.append((bill, amount, _at(day, hour, minute)))
            continue
        if stop and due > stop:
            continue
        if last_due and bill.get("kind") == "rent" and bill["due_date"] == last_due:
            if arrears == "partial_last" and amount >= 20:
                part = (amount * Decimal(str(0.4 + 0.2 * x5))).quantize(Decimal("10"), ROUND_DOWN)
                day = min(due + timedelta(days=int(x2 * 5)), today - timedelta(days=1))
                out.append((bill, max(Decimal("10"), part), _at(day, hour, minute)))
            continue
        if x1 < late_share:
            day = due + timedelta(days=late_days[0] + int(x2 * (late_days[1] - late_days[0])))
        else:
            day = due - timedelta(days=int(x2 * 5))
        parts = [(amount, day)]
        if x3 < split_share and amount >= 20:
            first = (amount * Decimal(str(0.3 + 0.4 * x5))).quantize(Decimal("10"), ROUND_DOWN)
            first = max(Decimal("10"), min(first, amount - Decimal("0.01")))
            parts = [(first, day), (amount - first, day + timedelta(days=7 + int(x5 * 23)))]
        for part, when in parts:
            if when >= today:
                break  # not paid yet
            out.append((bill, part, _at(when, hour, minute)))
    return out


def _at(day, hour, minute):
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00+08:00"


def stable_share(key, salt, share):
    """Whether ``key`` falls in the first ``share`` of a salted hash order (deterministic)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < share


# ---------------------------------------------------------------- the runner

class Runner:
    def __init__(self, api, plan, workers=8, progress=True, log=print):
        self.api = api
        self.plan = plan
        self.workers = workers
        self.progress = progress
        self.log = log
        self.today = date.fromisoformat(plan["meta"]["today"])
        self.ids = {kind: {} for kind in ("staff", "unit", "customer", "lease", "opportunity",
                                          "segment", "campaign", "ticket")}
        self.preexisting = {"customer": set(), "unit": set()}
        self.staff = {member["key"]: member for member in plan["staff"]}
        self.outcomes = Counter()  # (kind, created|skipped|failed)
        self.examples = []
        self.lock = threading.Lock()
        self.phase_times = []
        self.stopping = threading.Event()  # set on Ctrl-C: jobs stop between two calls

    # ------------------------------------------------------------ bookkeeping

    def created(self, kind, n=1):
        with self.lock:
            self.outcomes[(kind, "created")] += n

    def skipped(self, kind, why=None):
        with self.lock:
            self.outcomes[(kind, "skipped")] += 1

    def failed(self, kind, what):
        with self.lock:
            self.outcomes[(kind, "failed")] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{kind}: {what}")

    def check(self, response, kind, what=""):
        """True for a 2xx; a 409 is counted as skipped, anything else as failed."""
        if 200 <= response.status_code < 300:
            self.created(kind)
            return True
        if response.status_code == 409:
            self.skipped(kind)
            return False
        self.failed(kind, f"{what} → {response.status_code} {response.text[:300]}")
        return False

    def run_phase(self, label, items, job, total=None, actor_of=None):
        """``job(item, progress)`` for every item on the pool; an exception in one is a
        failure of that item, never of the run. With ``actor_of``, an item whose staff member
        has not signed in yet (sign-ins are limited per minute) waits for a second round
        instead of holding a worker."""
        items = list(items)
        started = time.monotonic()
        bar = Progress(label, total if total is not None else len(items), self.api.stats,
                       enabled=self.progress)
        later = []

        def first_round(item):
            if actor_of is not None and not self.api.signed_in(actor_of(item)):
                later.append(item)
                return
            guarded(item)

        def guarded(item):
            try:
                job(item, bar)
            except (ApiError, StaffConflict) as exc:
                self.failed(label, str(exc))
                bar.update(0, failed=True)
            except Exception:  # a bug must not stop the other 99,999 items
                self.failed(label, traceback.format_exc(limit=4))
                bar.update(0, failed=True)

        if items:
            pool = ThreadPoolExecutor(self.workers, thread_name_prefix="demo")
            try:
                list(pool.map(first_round, items))
                if later:
                    list(pool.map(guarded, later))
            except KeyboardInterrupt:  # Ctrl-C: drop what is queued, let the running stop
                self.stopping.set()
                pool.shutdown(wait=False, cancel_futures=True)
                bar.close()
                raise
            pool.shutdown()
        bar.close()
        self.phase_times.append((label, time.monotonic() - started))

    def customer_id(self, key):
        return self.ids["customer"].get(key)

    def fresh(self, customer_key):
        """A customer this run created (its leads, tickets … are this run's to add)."""
        return (customer_key in self.ids["customer"]
                and customer_key not in self.preexisting["customer"])

    # ------------------------------------------------------------ 1. staff

    def staff_phase(self, password):
        bar = Progress("staff", len(self.plan["staff"]), self.api.stats, enabled=self.progress)
        for member in self.plan["staff"]:
            body = {"username": member["key"], "password": password,
                    "display_name": member["display_name"], "roles": member["roles"],
                    "district": member["district"]}
            if member["supervisor"]:
                body["supervisor_id"] = self.ids["staff"][member["supervisor"]]
            response = self.api.post(ADMIN, "/staff", body)
            if response.status_code == 201:
                self.ids["staff"][member["key"]] = response.json()["id"]
                self.created("staff")
            elif response.status_code == 409:
                self.ids["staff"][member["key"]] = self._adopt_staff(member, password)
                self.skipped("staff")
            else:
                raise ApiError(f"cannot create staff {member['key']}: "
                               f"{response.status_code} {response.text[:300]}")
            self.api.add_account(member["key"], member["key"], password)
            bar.update()
        bar.close()

    def _adopt_staff(self, member, password):
        """A username taken by an earlier demo run: the same person (name and roles), whose
        password is set to this run's. Anyone else's account is never touched."""
        response = self.api.get(ADMIN, "/staff", q=member["key"], per_page=200)
        found = [s for s in response.json().get("items", []) if s["username"] == member["key"]] \
            if response.status_code == 200 else []
        if not found or found[0]["display_name"] != member["display_name"] \
                or sorted(found[0]["roles"]) != sorted(member["roles"]):
            raise StaffConflict(
                f"the username {member['key']!r} belongs to someone who is not this demo's "
                f"{member['display_name']} ({', '.join(member['roles'])}); run the demo with "
                "another --seed or on an empty system")
        staff_id = found[0]["id"]
        changed = self.api.patch(ADMIN, f"/staff/{staff_id}", {"password": password,
                                                               "active": True})
        if changed.status_code != 200:
            raise ApiError(f"cannot reset the demo password of {member['key']}: "
                           f"{changed.status_code} {changed.text[:200]}")
        return staff_id

    # ------------------------------------------------------------ 2. articles, units

    def article_job(self, article, bar):
        existing = self.api.get(article["actor"], "/kb/articles", q=article["title"],
                                per_page=50)
        if existing.status_code == 200 and any(
                item["title"] == article["title"] for item in existing.json()["items"]):
            self.skipped("knowledge base articles")
        else:
            self.check(self.api.post(article["actor"], "/kb/articles", article["body"]),
                       "knowledge base articles", article["title"])
        bar.update()

    def unit_job(self, unit, bar):
        body = {k: unit[k] for k in ("code", "building", "district", "layout", "area_sqm",
                                     "floor", "monthly_rent", "amenities")}
        response = self.api.post(unit["creator"], "/units", body)
        if response.status_code == 201:
            self.ids["unit"][unit["code"]] = response.json()["id"]
            self.created("units")
        elif response.status_code == 409 and _existing_id(response):
            self.ids["unit"][unit["code"]] = _existing_id(response)
            self.preexisting["unit"].add(unit["code"])
            self.skipped("units")
        else:
            self.failed("units", f"{unit['code']} → {response.status_code} {response.text[:200]}")
        bar.update()

    # ------------------------------------------------------------ 3. customers

    def customer_job(self, customer, bar):
        response = self.api.post(customer["owner"], "/customers", customer["body"])
        if response.status_code == 201:
            self.ids["customer"][customer["key"]] = response.json()["id"]
            self.created("customers")
        elif response.status_code == 409 and _existing_id(response):
            self.ids["customer"][customer["key"]] = _existing_id(response)
            self.preexisting["customer"].add(customer["key"])
            self.skipped("customers")
        else:
            self.failed("customers", f"{customer['key']} → {response.status_code} "
                                     f"{response.text[:200]}")
        bar.update()

    # ------------------------------------------------------------ 4. leases per unit

    def chain_job(self, chain, bar):
        unit_code = chain["unit"]
        leases = sum(1 for s in chain["steps"] if s["op"] in ("lease", "renew"))
        if unit_code not in self.ids["unit"] or unit_code in self.preexisting["unit"]:
            for _ in range(leases):
                self.skipped("leases")
            bar.update(leases)
            return
        for step in chain["steps"]:
            if self.stopping.is_set():
                return
            ok = getattr(self, "step_" + step["op"])(step)
            if step["op"] in ("lease", "renew"):
                bar.update(failed=not ok)
            if not ok and step["op"] in ("lease", "renew", "terminate"):
                # later leases of this unit would collide with this one: stop here
                rest = chain["steps"][chain["steps"].index(step) + 1:]
                left = sum(1 for s in rest if s["op"] in ("lease", "renew"))
                if left:
                    self.failed("leases", f"{left} later lease(s) of {unit_code} not sent")
                    bar.update(left, failed=True)
                return

    def _actor_for(self, step, customer_key):
        """The customer's owner, or the admin for a customer of an earlier run (whose owner
        may be someone else, out of this owner's reach)."""
        return ADMIN if customer_key in self.preexisting["customer"] else step["actor"]

    def step_opportunity(self, step):
        if not self.fresh(step["customer"]):
            return True  # the lease is signed without it
        opportunity_id = self._opportunity(step)
        if opportunity_id:
            self.ids["opportunity"][step["key"]] = opportunity_id
        return True  # a lost opportunity does not stop the unit's leases

    def _opportunity(self, lead):
        actor = lead["actor"]
        body = {**{k: v for k, v in lead["body"].items() if v is not None},
                "customer_id": self.customer_id(lead["customer"])}
        response = self.api.post(actor, "/opportunities", body)
        if not self.check(response, "opportunities", lead["key"]):
            return None
        opportunity_id = response.json()["id"]
        for change in lead["then"]:
            self.check(self.api.post(actor, f"/opportunities/{opportunity_id}/stage", change),
                       "opportunity stage changes", lead["key"])
        viewing = lead.get("viewing")
        if viewing and viewing["unit"] in self.ids["unit"]:
            booked = self.api.post(actor, "/viewings", {
                "opportunity_id": opportunity_id, "unit_id": self.ids["unit"][viewing["unit"]],
                "scheduled_at": viewing["scheduled_at"]})
            if self.check(booked, "viewings", lead["key"]) and viewing["result"]:
                self.check(self.api.patch(actor, f"/viewings/{booked.json()['id']}",
                                          {"result": viewing["result"],
                                           "outcome": viewing["outcome"]}),
                           "viewing outcomes", lead["key"])
        for change in lead["after"]:
            self.check(self.api.post(actor, f"/opportunities/{opportunity_id}/stage",
                                     {k: v for k, v in change.items() if v is not None}),
                       "opportunity stage changes", lead["key"])
        for plan_step in lead.get("plan_steps") or ():
            added = self.api.post(actor, f"/opportunities/{opportunity_id}/plan-steps",
                                  {"title": plan_step["title"],
                                   "due_date": plan_step["due_date"]})
            if self.check(added, "development plan steps", lead["key"]) and plan_step["result"]:
                step_id = (added.json().get("plan_steps") or [{}])[-1].get("id")  # the new one
                self.check(self.api.post(
                    actor, f"/opportunities/{opportunity_id}/plan-steps/{step_id}/done",
                    {"result": plan_step["result"]}), "development plan steps done",
                    lead["key"])
        return opportunity_id

    def step_lease(self, step):
        customer_id = self.customer_id(step["customer"])
        if not customer_id:
            self.failed("leases", f"{step['key']}: its customer {step['customer']} is missing")
            return False
        body = {**step["body"], "customer_id": customer_id,
                "unit_id": self.ids["unit"][step["unit"]]}
        opportunity_id = self.ids["opportunity"].get(step["opportunity"] or "")
        if opportunity_id:
            body["opportunity_id"] = opportunity_id
        response = self.api.post(self._actor_for(step, step["customer"]), "/leases", body)
        if not self.check(response, "leases", step["key"]):
            return False
        lease = response.json()
        self.ids["lease"][step["key"]] = lease["id"]
        until = date.fromisoformat(step["pay_until"]) if step["pay_until"] else None
        self._pay(step, lease.get("bills") or [], until)
        return True

    def step_renew(self, step):
        old = self.ids["lease"].get(step["of"])
        if not old:
            self.failed("leases", f"{step['key']}: the lease it renews is missing")
            return False
        response = self.api.post(self._actor_for(step, step["customer"]),
                                 f"/leases/{old}/renew", step["body"])
        if not self.check(response, "leases", f"renewal {step['key']}"):
            return False
        self.created("renewals")
        lease = response.json()
        self.ids["lease"][step["key"]] = lease["id"]
        self._pay(step, lease.get("bills") or [], None)
        return True

    def step_charge(self, step):
        lease_id = self.ids["lease"].get(step["lease"])
        response = self.api.post(step["actor"], f"/leases/{lease_id}/charges", step["body"])
        if self.check(response, "utility charges", step["lease"]):
            self._pay(step, [response.json()], None)
        return True

    def step_terminate(self, step):
        lease_id = self.ids["lease"].get(step["lease"])
        response = self.api.post(step["actor"], f"/leases/{lease_id}/terminate", step["body"])
        return self.check(response, "terminations", step["lease"])

    def step_refund(self, step):
        lease_id = self.ids["lease"].get(step["lease"])
        path = f"/leases/{lease_id}/deposit-refund"
        response = self.api.post(step["actor"], path, step["body"])
        if response.status_code == 422 and step["body"]["deductions"]:
            response = self.api.post(step["actor"], path, {"deductions": []})
        if response.status_code == 422:
            # what is still owed exceeds the deposit: no refund, the arrears stay overdue
            self.skipped("deposit refunds")
            return True
        self.check(response, "deposit refunds", step["lease"])
        return True

    def step_maintenance(self, step):
        response = self.api.patch(step["actor"], f"/units/{self.ids['unit'][step['unit']]}",
                                  {"status": "maintenance"})
        self.check(response, "units under maintenance", step["unit"])
        return True

    def _pay(self, step, bills, until):
        actor = self._actor_for(step, step.get("customer", ""))
        for bill, amount, paid_at in payments_for(bills, step["payer"], step["pay_seed"],
                                                  self.today, until, step.get("arrears")):
            if self.stopping.is_set():
                return
            key = f"demo-{bill['id']}-{paid_at[:10]}-{amount}"
            response = self.api.post(actor, "/payments", {
                "bill_id": bill["id"], "amount": str(amount), "paid_at": paid_at,
                "method": step["method"]}, headers={"Idempotency-Key": key}, safe=True)
            self.check(response, "payments", f"bill {bill['id']} {amount} at {paid_at}")

    # ------------------------------------------------------------ 4b. leads, interactions, tasks

    def lead_job(self, lead, bar):
        if self.fresh(lead["customer"]):
            self._opportunity(lead)
        else:
            self.skipped("opportunities")
        bar.update()

    def interaction_job(self, item, bar):
        if self.fresh(item["customer"]):
            self.check(self.api.post(item["actor"],
                                     f"/customers/{self.customer_id(item['customer'])}"
                                     "/interactions", item["body"]),
                       "interactions", item["customer"])
        else:
            self.skipped("interactions")
        bar.update()

    def task_job(self, task, bar):
        if not self.fresh(task["customer"]):
            self.skipped("tasks")
            bar.update()
            return
        body = {**task["body"], "customer_id": self.customer_id(task["customer"])}
        response = self.api.post(task["actor"], "/tasks", body)
        if self.check(response, "tasks", task["key"]):
            task_id = response.json()["id"]
            if task["done"]:
                self.check(self.api.post(task["actor"], f"/tasks/{task_id}/done",
                                         {"result": task["done"]}), "tasks done", task["key"])
            if task["urged_by"]:
                self.check(self.api.post(task["urged_by"], f"/tasks/{task_id}/urge"),
                           "tasks urged", task["key"])
        bar.update()

    # ------------------------------------------------------------ 5. tickets

    def ticket_job(self, ticket, bar):
        if not self.fresh(ticket["customer"]):
            self.skipped("tickets")
            bar.update()
            return
        body = {**ticket["body"], "customer_id": self.customer_id(ticket["customer"])}
        if ticket["unit"] and ticket["unit"] in self.ids["unit"]:
            body["unit_id"] = self.ids["unit"][ticket["unit"]]
        if ticket["lease"]:
            lease_id = self.ids["lease"].get(ticket["lease"])
            if lease_id:
                body["lease_id"] = lease_id
            else:
                body.pop("unit_id", None)
        response = self.api.post(ticket["actor"], "/tickets", body)
        if not self.check(response, "tickets", ticket["key"]):
            bar.update(failed=True)
            return
        ticket_id = response.json()["id"]
        self.ids["ticket"][ticket["key"]] = ticket_id
        for step in ticket["steps"]:
            if self.stopping.is_set() or not self._ticket_step(ticket_id, step, ticket["key"]):
                break
        bar.update()

    def _ticket_step(self, ticket_id, step, key):
        actor, do = step["actor"], step["do"]
        path = f"/tickets/{ticket_id}"
        if do == "assign":
            response = self.api.post(actor, path + "/assign",
                                     {"assignee_id": self.ids["staff"][step["assignee"]]})
            return self.check(response, "ticket assignments", key)
        if do == "status":
            body = {"status": step["status"]}
            if step.get("note"):
                body["note"] = step["note"]
            response = self.api.post(actor, path + "/status", body)
            kind = {"resolved": "tickets resolved", "closed": "tickets closed"}.get(
                step["status"], "ticket status changes")
            return self.check(response, kind, key)
        if do == "comment":
            return self.check(self.api.post(actor, path + "/comments", {"body": step["body"]}),
                              "ticket comments", key)
        if do == "appointment":
            response = self.api.post(actor, path + "/appointment",
                                     {"scheduled_at": step["scheduled_at"]})
            self.check(response, "on-site appointments", key)
            return True  # a technician booked then (an earlier run) does not stop the ticket
        if do == "feedback":
            body = {"rating": step["rating"]}
            if step.get("comment"):
                body["comment"] = step["comment"]
            return self.check(self.api.post(actor, path + "/feedback", body),
                              "ticket ratings", key)
        if do == "reopen":
            return self.check(self.api.post(actor, path + "/reopen", {"reason": step["reason"]}),
                              "tickets reopened", key)
        if do == "to_article":
            self.check(self.api.post(actor, path + "/to-article", {}),
                       "articles from tickets", key)
            return True
        raise ValueError(f"unknown ticket step {do}")

    # ------------------------------------------------------------ 6. wrap-up

    def wait_for_stages(self, timeout):
        """Lifecycle stages follow events (a lease signed makes a first-time customer): wait
        until the customer service has applied them before marking customers churned, or
        the churn would be overtaken by an older lease's event."""
        leads = {lead["customer"] for lead in self.plan["leads"]}
        tenants = {step["customer"] for chain in self.plan["chains"] for step in chain["steps"]
                   if step["op"] == "lease"}
        fresh = [c["key"] for c in self.plan["customers"] if self.fresh(c["key"])]
        if not fresh:
            return
        expected = sum(1 for key in fresh if key not in leads and key not in tenants)
        deadline = time.monotonic() + timeout
        last, steady_since = None, time.monotonic()
        while time.monotonic() < deadline:
            response = self.api.get(ADMIN, "/customers", stage="potential", per_page=1)
            if response.status_code != 200:
                return
            total = response.json()["total"]
            if total <= expected:
                return
            if total != last:
                last, steady_since = total, time.monotonic()
            elif time.monotonic() - steady_since > 20:
                return  # nothing moves any more (customers of an earlier run, …)
            time.sleep(1.0)
        self.log(f"customer stages still catching up after {timeout:.0f} s; going on")

    def stage_job(self, change, bar):
        if self.fresh(change["customer"]):
            self.check(self.api.post(change["actor"],
                                     f"/customers/{self.customer_id(change['customer'])}/stage",
                                     change["body"]), "customers marked churned",
                       change["customer"])
        else:
            self.skipped("customers marked churned")
        bar.update()

    def marketing_phase(self, timeout):
        marketing = self.plan["marketing"]
        bar = Progress("marketing", len(marketing["segments"]) + len(marketing["care_rules"])
                       + len(marketing["campaigns"]), self.api.stats, enabled=self.progress)
        for segment in marketing["segments"]:
            response = self.api.post(segment["actor"], "/segments", segment["body"])
            if self.check(response, "segments", segment["name"]):
                self.ids["segment"][segment["name"]] = response.json()["id"]
            elif response.status_code == 409 and _existing_id(response):
                self.ids["segment"][segment["name"]] = _existing_id(response)
            bar.update()
        existing_rules = self._names(marketing["care_rules"][0]["actor"], "/care-rules") \
            if marketing["care_rules"] else set()
        for rule in marketing["care_rules"]:
            if rule["name"] in existing_rules:
                self.skipped("care rules")
            else:
                self.check(self.api.post(rule["actor"], "/care-rules", rule["body"]),
                           "care rules", rule["name"])
            bar.update()
        self._wait_for_audience(timeout)
        existing = self._names(marketing["campaigns"][0]["actor"], "/campaigns") \
            if marketing["campaigns"] else set()
        launched = []
        for campaign in marketing["campaigns"]:
            segment_id = self.ids["segment"].get(campaign["segment"])
            if campaign["name"] in existing or not segment_id:
                self.skipped("campaigns")
                bar.update()
                continue
            response = self.api.post(campaign["actor"], "/campaigns",
                                     {**campaign["body"], "segment_id": segment_id})
            if self.check(response, "campaigns", campaign["name"]):
                campaign_id = response.json()["id"]
                self.ids["campaign"][campaign["name"]] = campaign_id
                if campaign["launch"] and self.check(
                        self.api.post(campaign["actor"], f"/campaigns/{campaign_id}/launch"),
                        "campaigns launched", campaign["name"]):
                    launched.append((campaign, campaign_id))
            bar.update()
        bar.close()
        for campaign, campaign_id in launched:
            self._responses(campaign, campaign_id, marketing["responses"], timeout)

    def _names(self, actor, path):
        names, page = set(), 1
        while True:
            response = self.api.get(actor, path, page=page, per_page=200)
            if response.status_code != 200:
                return names
            body = response.json()
            names.update(item.get("name") for item in body["items"])
            if page * 200 >= body["total"]:
                return names
            page += 1

    def _wait_for_audience(self, timeout):
        """Segments are evaluated on the marketing service's copy of customers, filled from
        events: wait until it holds this run's customers before launching."""
        segment_id = self.ids["segment"].get(self.plan["marketing"]["segments"][0]["name"])
        if not segment_id:
            return
        actor = self.plan["marketing"]["segments"][0]["actor"]
        wanted = len(self.ids["customer"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api.get(actor, f"/segments/{segment_id}/preview", per_page=1)
            if response.status_code != 200 or response.json()["total"] >= wanted:
                return
            time.sleep(1.0)
        self.log("the marketing service's copy of customers is still catching up; launching")

    def _responses(self, campaign, campaign_id, texts, timeout):
        """A few recipients answer (each answer opens a lead in sales): deterministic ones,
        picked by a salted hash of their plan key once the messages are delivered."""
        actor = campaign["actor"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.api.get(actor, f"/campaigns/{campaign_id}/stats")
            if stats.status_code != 200:
                return
            if stats.json().get("status") == "completed":
                break
            time.sleep(1.0)
        keys = {customer_id: key for key, customer_id in self.ids["customer"].items()}
        delivered, page = [], 1
        while True:
            response = self.api.get(actor, "/messages", campaign_id=campaign_id,
                                    status="delivered", page=page, per_page=200)
            if response.status_code != 200:
                break
            body = response.json()
            delivered += [m["customer_id"] for m in body["items"] if m["customer_id"] in keys]
            if page * 200 >= body["total"]:
                break
            page += 1
        chosen = sorted((keys[c] for c in delivered
                         if stable_share(keys[c], campaign["response_seed"],
                                         campaign["response_rate"])))[:30]
        for n, key in enumerate(chosen):
            self.check(self.api.post(actor, f"/campaigns/{campaign_id}/responses", {
                "customer_id": self.ids["customer"][key], "response": texts[n % len(texts)]}),
                "campaign responses", key)

    def registry_phase(self):
        for entry in self.plan["agents"]:
            staff_id = self.ids["staff"].get(entry["staff"])
            if not staff_id:
                continue
            supervisor = self.staff[entry["staff"]]["supervisor"]
            body = {**entry["body"]}
            if supervisor:
                body["supervisor_id"] = self.ids["staff"][supervisor]
            self.check(self.api.put(entry["actor"], f"/service-desk/agents/{staff_id}", body),
                       "service desk agents")

    def recompute(self):
        response = self.api.post(ADMIN, "/analytics/recompute", {})
        if response.status_code in (200, 201, 202):
            self.created("analytics recomputes")
        elif response.status_code == 409:
            self.skipped("analytics recomputes")
        else:
            self.failed("analytics recomputes", f"{response.status_code} {response.text[:200]}")

    # ------------------------------------------------------------ all of it

    def run(self, staff_password, wait_timeout=120.0):
        plan = self.plan
        self.staff_phase(staff_password)
        # everyone signs in now, in the order they first act, while the first ones work
        first_acts = ["customer_manager", "sales_supervisor", "service_agent", "technician",
                      "marketer", "executive"]
        order = sorted(self.plan["staff"], key=lambda s: min(
            first_acts.index(r) if r in first_acts else 9 for r in s["roles"]))
        self.api.sign_in_all([member["key"] for member in order])
        if len(order) >= 20:
            self.log(f"signing in {len(order)} staff members in the background (the gateway "
                     "takes about 20 sign-ins a minute from one address)")
        def by_actor(item):
            return item["actor"]

        def creator(unit):
            return unit["creator"]

        def owner(customer):
            return customer["owner"]

        creators = {unit["code"]: unit["creator"] for unit in plan["units"]}

        def unit_creator(chain):
            return creators[chain["unit"]]

        self.run_phase("units", spread(plan["units"], creator), self.unit_job,
                       actor_of=creator)
        self.run_phase("customers", spread(plan["customers"], owner), self.customer_job,
                       actor_of=owner)
        leases = sum(1 for c in plan["chains"] for s in c["steps"] if s["op"] in ("lease", "renew"))
        self.run_phase("leases and payments", spread(plan["chains"], unit_creator),
                       self.chain_job, total=leases, actor_of=unit_creator)
        self.run_phase("leads", spread(plan["leads"], by_actor), self.lead_job,
                       actor_of=by_actor)
        self.run_phase("interactions", spread(plan["interactions"], by_actor),
                       self.interaction_job, actor_of=by_actor)
        self.run_phase("tasks", spread(plan["tasks"], by_actor), self.task_job,
                       actor_of=by_actor)
        self.run_phase("knowledge base", plan["articles"], self.article_job, actor_of=by_actor)
        self.run_phase("tickets", spread(plan["tickets"], by_actor), self.ticket_job,
                       actor_of=by_actor)
        self.wait_for_stages(wait_timeout)
        self.run_phase("churned customers", spread(plan["stage_changes"], by_actor),
                       self.stage_job, actor_of=by_actor)
        self.marketing_phase(wait_timeout)
        self.registry_phase()
        self.recompute()

    def failures(self):
        return sum(n for (kind, what), n in self.outcomes.items() if what == "failed")


def spread(items, actor_of):
    """``items`` reordered so that each staff member's share is spread evenly over the whole
    list (their k-th of n items at position (k + ½) / n): the workers never all act as the
    same person at once, whose calls the gateway limits per minute (``CRM_RATE_LIMIT``).
    Plans list units project by project, so without this eight workers would all be one
    housekeeper for minutes at a time."""
    groups = {}
    for item in items:
        groups.setdefault(actor_of(item), []).append(item)
    placed = []
    for order, group in enumerate(groups.values()):
        n = len(group)
        placed += [((k + 0.5) / n, order, k, item) for k, item in enumerate(group)]
    placed.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in placed]


def _existing_id(response):
    try:
        details = response.json()["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return None
    return details.get("existing_id") if isinstance(details, dict) else None
