"""The whole HTTP API fuzzed with schemathesis (issue 7): the system started as `make up` starts
it, the OpenAPI document read from the running gateway, every operation called with generated
input — as an admin and as a technician (the role with the least rights) — and every answer
checked: no 5xx, its status documented for the operation, its content type and body as the
OpenAPI document says, its documented headers present.

- The document's ``default`` response (any other status: the api.md error body) is left out
  here, so that each operation is held to the statuses it lists (``error_responses``).
- Phases: schemathesis's examples, coverage (boundaries and invalid values, deterministic),
  fuzzing (``EXAMPLES`` generated cases per operation) and, as the admin, stateful (calls
  chained on what earlier answers returned). One worker, a fixed seed (``CRM_FUZZ_SEED``,
  ``CRM_FUZZ_EXAMPLES`` to explore further), no Hypothesis deadline, no example database: the
  same code gives the same cases.
- A little business data is entered first (``seed_business``): schemathesis reuses the ids the
  lists answer, so operations are called on existing records too, not only on unknown ids.
  The accounts it signs in with are spared from ``PATCH /staff/{id}`` (``spare_accounts``).
- The gateway's rate limits are lifted for this system (``system_env``).
- What it found is fixed and kept as regression tests in gateway/tests/test_fuzz_findings.py.

It prints ``FUZZ: operations=N cases=M failures=F``; any failure (or an operation schemathesis
could not test) fails the test with each finding and a curl command to repeat it.
"""
import os
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
import schemathesis
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from crm_kit.testing import free_port
from e2e_support import ADMIN

pytestmark = pytest.mark.e2e

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
SEED = int(os.environ.get("CRM_FUZZ_SEED", "20261203"))
#: generated cases per operation in the fuzzing phase (the coverage phase adds its own)
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "60"))
ROLE_EXAMPLES = 10
STATEFUL_EXAMPLES = 20
ROLE = ("fuzz.technician", "technician-pass-1", "technician")
UNLIMITED = "1000000 per minute"


@pytest.fixture
def system_env():
    """No rate limit in the way; metrics ports of its own for every service."""
    return {"CRM_RATE_LIMIT": UNLIMITED, "CRM_RATE_LIMIT_ANALYTICS": UNLIMITED,
            "CRM_RATE_LIMIT_LOGIN": UNLIMITED,
            **{f"CRM_{name}_METRICS_PORT": str(free_port())
               for name in ("SALES", "SERVICE_DESK", "MARKETING", "ANALYTICS")}}


def sign_in(base, username, password):
    response = requests.post(base + "/api/v1/auth/token",
                             json={"username": username, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def strict_document(base):
    """The gateway's OpenAPI document without the ``default`` responses."""
    response = requests.get(base + "/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    document = response.json()
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("default", None)
    return document


def seed_business(base, token):
    """A little of everything, entered as staff would, so that the lists answer with real ids
    and schemathesis calls the operations on existing records too (it reuses what answers
    return), not only on ids that do not exist."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def post(path, body, status=201):
        response = session.post(base + "/api/v1" + path, json=body, timeout=15)
        assert response.status_code == status, (path, response.text)
        return response.json()

    me = session.get(base + "/api/v1/me", timeout=10).json()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = date.today() - timedelta(days=45)
    for n in range(2):
        customer = post("/customers", {"name": f"测试客户{n}", "mobile": f"1380013800{n}",
                                       "district": "锦江区", "tags": ["fuzz"]})
        post(f"/customers/{customer['id']}/interactions",
             {"channel": "phone", "direction": "inbound", "summary": "咨询房源"})
        unit = post("/units", {"code": f"FZ-080{n}", "building": "锦江公寓", "district": "锦江区",
                               "layout": "1b1b", "area_sqm": "40.00", "floor": 8,
                               "monthly_rent": "3200.00"})
        opportunity = post("/opportunities", {"customer_id": customer["id"], "source": "website"})
        post("/viewings", {"opportunity_id": opportunity["id"], "unit_id": unit["id"],
                           "scheduled_at": (now + timedelta(days=1 + n)).isoformat(),
                           "staff_id": me["id"]})
        lease = post("/leases", {
            "customer_id": customer["id"], "unit_id": post("/units", {
                "code": f"FZ-090{n}", "building": "锦江公寓", "district": "锦江区",
                "layout": "1b1b", "area_sqm": "40.00", "floor": 9,
                "monthly_rent": "3200.00"})["id"],
            "start_date": start.isoformat(), "end_date": (start + timedelta(days=364)).isoformat(),
            "monthly_rent": "3200.00", "deposit": "3200.00", "payment_cycle": "monthly"})
        bill = next(bill for bill in lease["bills"] if bill["kind"] == "rent")
        post("/payments", {"bill_id": bill["id"], "amount": bill["amount"], "method": "alipay",
                           "paid_at": now.isoformat()})
        post("/tickets", {"customer_id": customer["id"], "type": "repair", "channel": "phone",
                          "description": "空调不制冷", "lease_id": lease["id"]})
        post("/tasks", {"owner_id": me["id"], "title": "回访", "customer_id": customer["id"],
                        "due_at": (now + timedelta(days=1)).isoformat()})
    post("/kb/articles", {"title": "空调不制冷", "symptom": "空调不制冷", "solution": "清洗滤网"})
    segment = post("/segments", {"name": "锦江区", "rules": {"tags": ["fuzz"]}})
    post("/campaigns", {"name": "新房源", "segment_id": segment["id"], "channel": "sms",
                        "template": "{name}您好", "cost": "100.00"})
    post("/care-rules", {"kind": "birthday", "name": "生日", "channel": "sms",
                         "template": "{name}，生日快乐！"})


def spare_accounts(staff_ids):
    """A ``before_call`` hook: a ``PATCH /staff/{id}`` of an account the fuzz signs in with
    (new roles, password or ``active``) would end its tokens and leave every later call a 401;
    such a call goes to an id no account has instead."""
    def spare(_context, case, _kwargs):
        if case.method.upper() == "PATCH" and (case.path_parameters or {}).get(
                "staff_id") in staff_ids:
            case.path_parameters["staff_id"] = "spared-by-the-fuzz"
    return spare


class Tally:
    """Cases, findings and answers of one or more schemathesis runs."""

    def __init__(self):
        self.cases = 0
        self.failures = []  # (operation, check, text), one per case and check
        self.errors = []  # what schemathesis could not run
        self.exercised = set()
        self.statuses = Counter()

    def run(self, document, base, token, who, examples, phases):
        config = schemathesis.Config.from_dict({
            "seed": SEED,
            "workers": 1,
            "base-url": base,
            "headers": {"Authorization": f"Bearer {token}"},
            "cache": {"enabled": False},
            "generation": {"max-examples": examples, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {
                "examples": {"enabled": "examples" in phases},
                "coverage": {"enabled": "coverage" in phases},
                "fuzzing": {"enabled": "fuzzing" in phases},
                "stateful": {"enabled": "stateful" in phases,
                             "generation": {"max-examples": STATEFUL_EXAMPLES}},
            },
        })
        schema = schemathesis.openapi.from_dict(document, config=config)
        finished = None
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                self._scenario(event.recorder, who)
            elif isinstance(event, events.NonFatalError):
                self.errors.append(f"{who}: {event.label}: {event.info.title}\n"
                                   f"{event.info.message}")
            elif isinstance(event, events.FatalError):
                self.errors.append(f"{who}: {event.exception!r}")
            elif isinstance(event, events.EngineFinished):
                finished = event
        assert finished is not None and finished.stop_reason == StopReason.COMPLETED, (
            f"the {who} run did not complete: {finished and finished.stop_reason}")
        return [result.ok().label for result in schema.get_all_operations()]

    def _scenario(self, recorder, who):
        self.cases += len(recorder.cases)
        for node in recorder.cases.values():
            self.exercised.add(node.value.operation.label)
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.status != Status.FAILURE or check.failure_info is None:
                    continue
                failure = check.failure_info.failure
                interaction = recorder.interactions.get(case_id)
                answer = ""
                if interaction is not None and interaction.response is not None:
                    answer = (f"[{interaction.response.status_code}] "
                              + interaction.response.content[:300].decode("utf-8", "replace"))
                self.failures.append((failure.operation, check.name, (
                    f"{who}: {failure.operation}: {check.name}: {failure.title}\n"
                    f"{failure.message}\n{answer}\n{check.failure_info.code_sample}")))

    def report(self):
        """One text per distinct (operation, check)."""
        first = {}
        for operation, check, text in self.failures:
            first.setdefault((operation, check), text)
        return list(first.values()) + self.errors


@pytest.mark.timeout(900)
def test_the_whole_api_survives_fuzzing_and_answers_as_documented(system, capsys):
    started = time.monotonic()
    admin = sign_in(system.url, *ADMIN)
    username, password, role = ROLE
    staff = requests.post(system.url + "/api/v1/staff", timeout=10,
                          headers={"Authorization": f"Bearer {admin}"},
                          json={"username": username, "password": password,
                                "display_name": "Fuzz Technician", "roles": [role]})
    assert staff.status_code == 201, staff.text
    technician = sign_in(system.url, username, password)
    seed_business(system.url, admin)
    document = strict_document(system.url)

    me = requests.get(system.url + "/api/v1/me", timeout=10,
                      headers={"Authorization": f"Bearer {admin}"}).json()
    spare = spare_accounts({me["id"], staff.json()["id"]})

    tally = Tally()
    schemathesis.hook("before_call")(spare)
    try:
        tally.run(document, system.url, technician, role, ROLE_EXAMPLES,
                  ("examples", "coverage", "fuzzing"))
        operations = tally.run(document, system.url, admin, "admin", EXAMPLES,
                               ("examples", "coverage", "fuzzing", "stateful"))
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(spare)

    problems = tally.report()
    line = (f"FUZZ: operations={len(operations)} cases={tally.cases} "
            f"failures={len(tally.failures) + len(tally.errors)}")
    with capsys.disabled():
        print(f"\n{line} (distinct: {len(problems)}; examples per operation: {EXAMPLES} admin, "
              f"{ROLE_EXAMPLES} {role}; seed {SEED}; {time.monotonic() - started:.0f} s; "
              f"statuses: {dict(sorted(tally.statuses.items()))})")
    assert set(operations) <= tally.exercised, (
        f"never called: {sorted(set(operations) - tally.exercised)}")
    assert not problems, f"{line}\n\n" + "\n\n".join(problems)
