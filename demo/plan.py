"""The demo data set as a deterministic plan: plain dicts and lists, built from a seed.

``build_plan(seed, sizes, today)`` draws everything (people, units, three years of leases,
payment habits, tickets, campaigns …) with ``random.Random`` streams named after the seed, so
the same seed, sizes and day give the same plan, byte for byte (``digest``). Nothing here talks
to the system: ``demo.send`` sends a plan through the public API.

Records refer to each other by plan keys (staff usernames, unit codes, ``c00042`` for
customers, ``<unit>#<n>`` for leases …); the sender maps them to the ids the API answers.

What the API decides by itself (ids, creation instants, bill amounts from the lease terms) is
not in the plan; what the sender does with a lease's bills is decided from the plan's
``pay_seed`` and the bills the API answers (``payments_for``), so it is deterministic too.
"""
import hashlib
import heapq
import json
import math
import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from demo import vocab as v

DEFAULTS = {"customers": 10_000, "units": 2_000, "leases": 12_000, "tickets": 20_000}
MAXIMUM = {"customers": 100_000, "units": 20_000, "leases": 120_000, "tickets": 200_000}
MINIMUM = {"customers": 10, "units": 1, "leases": 0, "tickets": 0}
HISTORY_YEARS = 3
#: a lease may start at most this many days ahead (signed now, moving in soon)
MAX_FUTURE_START = 45
#: viewings can be entered at most 30 days back (the sales service's rule): keep a margin
VIEWING_PAST_DAYS = 27
TZ = "+08:00"


def resolve_sizes(customers=None, units=None, leases=None, tickets=None):
    """The sizes to build: the ones given, the others the defaults scaled by
    ``customers / 10,000`` (``--customers 1000`` alone scales everything by 0.1)."""
    given = {"customers": customers, "units": units, "leases": leases, "tickets": tickets}
    factor = 1.0 if customers is None else customers / DEFAULTS["customers"]
    sizes = {}
    for name, value in given.items():
        if value is None:
            value = max(MINIMUM[name], round(DEFAULTS[name] * factor))
        if not MINIMUM[name] <= value <= MAXIMUM[name]:
            raise ValueError(f"{name} must be {MINIMUM[name]:,} to {MAXIMUM[name]:,}, "
                             f"not {value:,}")
        sizes[name] = int(value)
    return sizes


def staff_sizes(sizes):
    # a housekeeper per ~100 units, and enough of them that no one's share of the calls nears
    # the gateway's per-client limit in a small data set
    managers = _clamp(max(math.ceil(sizes["units"] / 100),
                          min(8, math.ceil(sizes["customers"] / 200))), 2, 100)
    return {
        "sales_supervisor": max(1, math.ceil(managers / 7)),
        "customer_manager": managers,
        # enough hands that nobody's share of the calls nears the gateway's per-client limit
        "service_agent": _clamp(math.ceil(sizes["tickets"] / 800), 2, 120),
        "technician": _clamp(math.ceil(sizes["tickets"] / 1500), 2, 80),
        "marketer": 1 if sizes["customers"] < 2000 else 2,
        "executive": 1,
    }


def _clamp(value, low, high):
    return max(low, min(high, value))


# ---------------------------------------------------------------- small helpers

def iso(day):
    return day.isoformat()


def instant(day, hour, minute=0):
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{TZ}"


def money(value):
    return str(Decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP))


def round_rent(value):
    """A rent as operators quote it: to 10 CNY."""
    return money(Decimal(int(round(value / 10.0)) * 10))


def add_months(day, months):
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def weighted(rng, pairs):
    """One value of ``[(value, weight), …]``."""
    values = [p[0] for p in pairs]
    weights = [p[-1] for p in pairs]
    return rng.choices(values, weights)[0]


def pick(rng, items, weight_at):
    """One whole item of ``items``, weighted by ``item[weight_at]``."""
    return rng.choices(items, [item[weight_at] for item in items])[0]


ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_number(region, birthday, male, rng):
    """A resident ID (GB 11643) with a valid check character: region, birth date, sequence
    (odd for men), check."""
    seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
    body = f"{region}{birthday:%Y%m%d}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS))
    return body + ID_CHECK[total % 11]


# ---------------------------------------------------------------- the plan

def build_plan(seed, sizes, today):
    """The whole data set for ``seed`` and ``sizes`` (see ``resolve_sizes``), with ``today``
    as the last day of its three years of history."""
    return Planner(seed, sizes, today).build()


def digest(plan):
    """A short fingerprint of a plan: equal plans, equal digests."""
    h = hashlib.sha256()
    for key in sorted(plan):
        value = plan[key]
        items = value if isinstance(value, list) else [value]
        h.update(key.encode())
        for item in items:
            h.update(json.dumps(item, sort_keys=True, ensure_ascii=False,
                                default=str).encode())
    return h.hexdigest()[:16]


def summary(plan):
    """Counts of what a plan holds (what the sender will try to create)."""
    chains = plan["chains"]
    leases = [step for chain in chains for step in chain["steps"]
              if step["op"] in ("lease", "renew")]
    return {
        "staff": len(plan["staff"]), "units": len(plan["units"]),
        "customers": len(plan["customers"]), "leases": len(leases),
        "renewals (API)": sum(1 for s in leases if s["op"] == "renew"),
        "terminations (API)": sum(1 for chain in chains for s in chain["steps"]
                                  if s["op"] == "terminate"),
        "opportunities": sum(1 for chain in chains for s in chain["steps"]
                             if s["op"] == "opportunity") + len(plan["leads"]),
        "interactions": len(plan["interactions"]), "tickets": len(plan["tickets"]),
        "tasks": len(plan["tasks"]), "articles": len(plan["articles"]),
        "segments": len(plan["marketing"]["segments"]),
        "campaigns": len(plan["marketing"]["campaigns"]),
        "care rules": len(plan["marketing"]["care_rules"]),
    }


class Planner:
    def __init__(self, seed, sizes, today):
        self.seed = seed
        self.sizes = dict(sizes)
        self.today = today
        self.window_start = date(today.year - HISTORY_YEARS, today.month, 1)
        self.usernames = set()
        self.mobiles = set()
        self.unit_codes = set()

    def rng(self, name):
        return random.Random(f"crm-demo:{self.seed}:{name}")

    def build(self):
        self.staff = self.make_staff()
        self.units = self.make_units()
        self.timelines = self.make_timelines()
        self.customers = self.make_customers()
        chains = self.make_chains()
        leads = self.make_leads()
        plan = {
            "meta": {"seed": self.seed, "sizes": self.sizes, "today": iso(self.today),
                     "version": 1},
            "staff": self.staff,
            "articles": self.make_articles(),
            "units": self.units,
            "customers": self.customers,
            "chains": chains,
            "leads": leads,
            "interactions": self.make_interactions(),
            "tasks": self.make_tasks(),
            "tickets": self.make_tickets(),
            "stage_changes": self.make_stage_changes(),
            "marketing": self.make_marketing(),
            "agents": self.make_agent_registry(),
        }
        return plan

    # ------------------------------------------------------------ names

    def person_name(self, rng, male):
        surname, surname_py, _ = pick(rng, v.SURNAMES, 2)
        pool = [g for g in v.GIVEN if g[2] in ("n", "m" if male else "f")]
        count = 1 if rng.random() < 0.28 else 2
        given = [rng.choice(pool) for _ in range(count)]
        if count == 2 and given[0][0] == given[1][0] and rng.random() < 0.7:
            given = given[:1]
        return surname + "".join(g[0] for g in given), surname_py, "".join(g[1] for g in given)

    def mobile(self, rng):
        while True:
            number = rng.choice(v.MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
            if number not in self.mobiles:
                self.mobiles.add(number)
                return number

    def username(self, surname_py, given_py):
        base = f"{surname_py}.{given_py}"
        name, n = base, 1
        while name in self.usernames:
            n += 1
            name = f"{base}{n}"
        self.usernames.add(name)
        return name

    # ------------------------------------------------------------ staff

    def make_staff(self):
        rng = self.rng("staff")
        counts = staff_sizes(self.sizes)
        staff = []

        def add(role, district=None, supervisor=None):
            male = rng.random() < 0.5
            display, sp, gp = self.person_name(rng, male)
            member = {"key": self.username(sp, gp), "display_name": display, "roles": [role],
                      "district": district, "supervisor": supervisor}
            staff.append(member)
            return member

        add("executive")
        n_sup = counts["sales_supervisor"]
        # supervisors cover regions; with fewer supervisors than regions one covers several
        regions = [r for r in v.REGIONS]
        sup_regions = [[] for _ in range(n_sup)]
        if n_sup < len(regions):
            for i, region in enumerate(regions):
                sup_regions[i % n_sup].append(region)
        else:
            for i in range(n_sup):
                sup_regions[i].append(regions[i % len(regions)])
        self.supervisors = []
        for covered in sup_regions:
            member = add("sales_supervisor", covered[0][1][0])
            member["regions"] = [name for name, _ in covered]
            self.supervisors.append(member)

        def supervisor_of(district, n):
            region = next(name for name, districts in v.REGIONS if district in districts)
            candidates = [s for s in self.supervisors if region in s["regions"]]
            return candidates[n % len(candidates)]["key"]

        # managers: spread over the districts by their share of units
        self.managers = []
        districts = [(d[0], d[1]) for d in v.DISTRICTS]
        shares = _allocate(counts["customer_manager"], [w for _, w in districts], rng)
        for (district, _), share in zip(districts, shares):
            for _ in range(share):
                self.managers.append(add("customer_manager", district,
                                         supervisor_of(district, len(self.managers))))
        self.supervisor_of = {m["key"]: m["supervisor"] for m in self.managers}
        self.agents = [add("service_agent", None, self.supervisors[0]["key"])
                       for _ in range(counts["service_agent"])]
        self.technicians = []
        for i in range(counts["technician"]):
            region = v.REGIONS[i % len(v.REGIONS)]
            member = add("technician", region[1][0], self.supervisors[0]["key"])
            member["covers"] = list(region[1])
            self.technicians.append(member)
        self.marketers = [add("marketer") for _ in range(counts["marketer"])]
        for member in staff:  # the planner's own notes stay out of the API body
            member.setdefault("regions", None)
            member.setdefault("covers", None)
        return staff

    # ------------------------------------------------------------ units

    def make_units(self):
        rng = self.rng("units")
        n = self.sizes["units"]
        projects = []
        for district, weight, factor, items in v.DISTRICTS:
            for name, code, towers, floors in items:
                projects.append({"district": district, "weight": weight / len(items),
                                 "factor": factor, "name": name, "code": code,
                                 "towers": towers, "floors": floors})
        wanted = _clamp(math.ceil(n / 40), min(3, n), len(projects))
        chosen = []
        pool = list(projects)
        while len(chosen) < wanted:
            project = rng.choices(pool, [p["weight"] for p in pool])[0]
            pool.remove(project)
            chosen.append(project)
        chosen.sort(key=lambda p: (p["district"], p["code"]))
        # managers of each district take its projects in turn; a district without one of its
        # own goes to the managers of its region, else anyone
        by_district = {}
        for m in self.managers:
            by_district.setdefault(m["district"], []).append(m)
        for i, project in enumerate(chosen):
            managers = by_district.get(project["district"])
            if not managers:
                region = next(ds for _, ds in v.REGIONS if project["district"] in ds)
                managers = [m for m in self.managers if m["district"] in region] or self.managers
            project["manager"] = managers[i % len(managers)]["key"]
            # most projects ran the whole three years, some opened since
            if rng.random() < 0.75:
                project["opened"] = self.window_start
            else:
                span = (self.today - self.window_start).days - 420
                project["opened"] = self.window_start + timedelta(days=60 + rng.randrange(
                    max(1, span)))
        counts = _allocate(n, [p["weight"] * p["towers"] for p in chosen], rng,
                           at_least_one=n >= len(chosen))
        self.projects = {p["code"]: p for p in chosen}
        units = []
        for project, count in zip(chosen, counts):
            for _ in range(count):
                units.append(self._unit(rng, project))
        return units

    def _unit(self, rng, project):
        capacity = project["towers"] * (project["floors"] - 1) * 12
        for _ in range(50):
            tower = "ABC"[rng.randrange(project["towers"])]
            floor = rng.randint(2, project["floors"])
            room = rng.randint(1, 12)
            code = f"{project['code']}-{tower}{floor:02d}{room:02d}"
            if code not in self.unit_codes:
                break
        else:  # a small project filled up: number the rest past its rooms
            code = f"{project['code']}-X{len(self.unit_codes) % capacity + 1:04d}"
            while code in self.unit_codes:
                code += "X"
        self.unit_codes.add(code)
        layout, _, (low, high), per_sqm = pick(rng, v.LAYOUTS, 1)
        area = Decimal(rng.randint(low * 2, high * 2)) / 2
        rent = float(area) * per_sqm * project["factor"] * (1 + 0.003 * floor) \
            * rng.uniform(0.94, 1.06)
        amenities = list(v.AMENITIES_ALWAYS) + sorted(rng.sample(v.AMENITIES_SOMETIMES,
                                                                 rng.randint(2, 5)))
        tower = code[len(project["code"]) + 1]
        return {"code": code, "building": f"{v.BRAND}·{project['name']}店 {tower}栋",
                "district": project["district"], "layout": layout, "area_sqm": money(area),
                "floor": floor, "monthly_rent": round_rent(rent), "amenities": amenities,
                "creator": project["manager"], "project": project["code"],
                "maintenance": False}

    # ------------------------------------------------------------ lease timelines

    def make_timelines(self):
        """Per unit: its leases over the three years as dates (no people yet)."""
        rng = self.rng("timelines")
        units = self.units
        total = self.sizes["leases"]
        caps = []
        for unit in units:
            opened = self.projects[unit["project"]]["opened"]
            caps.append(max(1, (self.today - opened).days // 40))
        weights = [rng.uniform(0.55, 1.45) for _ in units]
        if units:
            counts = _allocate(total, weights, rng, at_least_one=False, caps=caps)
        else:
            counts = []
        timelines = [None] * len(units)
        leftover = 0
        for i, unit in enumerate(units):
            timelines[i] = self._timeline(rng, counts[i], unit)
            leftover += counts[i] - len(timelines[i])
        # a unit whose timeline could not take all its leases gives them to others
        order = list(range(len(units)))
        rng.shuffle(order)
        attempts = 0
        while leftover > 0 and order and attempts < 20 * len(units):
            i = order[attempts % len(order)]
            attempts += 1
            if len(timelines[i]) >= caps[i]:
                continue
            grown = self._timeline(rng, len(timelines[i]) + 1, units[i])
            if len(grown) > len(timelines[i]):
                timelines[i] = grown
                leftover -= 1
        self.lease_shortfall = leftover
        return timelines

    def _timeline(self, rng, n, unit):
        today = self.today
        opened = self.projects[unit["project"]]["opened"]
        leases = []
        start = opened + timedelta(days=rng.randint(0, 25))
        previous = None
        for i in range(n):
            k = n - i
            follow = False
            if previous is not None:
                follow = not previous["terminated"] and rng.random() < 0.38
                if follow and previous["end"] > today + timedelta(days=MAX_FUTURE_START):
                    break  # a renewal signed this early would not happen
                if follow:
                    start = previous["end"] + timedelta(days=1)
                else:
                    start = previous["end"] + timedelta(days=1 + rng.randint(3, 25))
            if start > today + timedelta(days=MAX_FUTURE_START):
                break
            if k == 1:
                target = max(30, (today - start).days) + rng.randint(60, 300)
            else:
                target = max(25.0, (today - start).days / (k - 0.5))
            months = _term(rng, target / 30.44)
            end = add_months(start, months) - timedelta(days=1)
            lease = {"start": start, "end": end, "planned_end": end, "months": months,
                     "follow": follow, "terminated": False, "api_terminate": None,
                     "via_renew": bool(follow and previous and previous["end"] >= today
                                       and previous["start"] <= today)}
            if follow and previous and previous["end"] >= today and not lease["via_renew"]:
                # the previous lease starts in the future: this is not a renewal yet
                lease["follow"] = False
            if months >= 3 and rng.random() < 0.09 and not lease["via_renew"]:
                span = (end - start).days
                day = start + timedelta(days=int(span * rng.uniform(0.25, 0.85)))
                if end < today:  # long over: entered as it really ended
                    lease["end"] = day
                    lease["terminated"] = True
                elif start <= day < today:
                    lease["api_terminate"] = day
                    lease["end"] = day
                    lease["terminated"] = True
            leases.append(lease)
            previous = lease
        return leases

    # ------------------------------------------------------------ customers

    def make_customers(self):
        rng = self.rng("customers")
        n_customers = self.sizes["customers"]
        tenancies = []  # consecutive leases of one tenant in one unit
        for unit, timeline in zip(self.units, self.timelines):
            for lease in timeline:
                if lease["follow"] and tenancies and tenancies[-1]["unit"] is unit:
                    tenancies[-1]["leases"].append(lease)
                else:
                    tenancies.append({"unit": unit, "leases": [lease]})
        for t in tenancies:
            t["start"] = t["leases"][0]["start"]
            t["end"] = t["leases"][-1]["end"]
        tenancies.sort(key=lambda t: (t["start"], t["unit"]["code"]))
        n_new = min(round(len(tenancies) * 0.9), round(n_customers * 0.85))
        n_new = min(n_new, n_customers)
        customers = []

        def new_customer():
            key = f"c{len(customers) + 1:06d}"
            customer = {"key": key, "tenancies": []}
            customers.append(customer)
            return customer

        busy = []  # (end, order, customer)
        free = []
        used_new = 0
        for i, tenancy in enumerate(tenancies):
            while busy and busy[0][0] < tenancy["start"] - timedelta(days=3):
                end, _, former = heapq.heappop(busy)
                if former["tenancies"][-1]["end"] == end:  # not renting elsewhere since
                    free.append(former)
            remaining = len(tenancies) - i
            need_returning = remaining - (n_new - used_new)
            returning = free and (need_returning >= remaining or (
                need_returning > 0 and rng.random() < need_returning / remaining))
            if returning:
                customer = free.pop(rng.randrange(len(free)))
            elif used_new < n_new or len(customers) < n_customers:
                customer = new_customer()
                used_new += 1
            else:  # nobody free: someone renting two places (a couple, a company)
                customer = customers[rng.randrange(len(customers))]
            customer["tenancies"].append(tenancy)
            tenancy["customer"] = customer
            for lease in tenancy["leases"]:
                lease["customer"] = customer
            heapq.heappush(busy, (tenancy["end"], i, customer))
        self.tenancies = tenancies
        n_tenants = len(customers)
        while len(customers) < n_customers:
            new_customer()
        rng.shuffle(customers)  # creation order mixes tenants and leads
        for customer in customers:
            self._profile(rng, customer)
        self.lead_customers = [c for c in customers if not c["tenancies"]]
        self.all_customers = sorted(customers, key=lambda c: c["key"])
        self.n_tenants = n_tenants
        return [self._customer_record(c) for c in customers]

    def _profile(self, rng, c):
        tenant = bool(c["tenancies"])
        if tenant:
            first_unit = c["tenancies"][0]["unit"]
            last_unit = c["tenancies"][-1]["unit"]
            c["owner"] = self.projects[first_unit["project"]]["manager"]
            c["district"] = last_unit["district"]
        else:
            district = weighted(rng, [(d[0], d[1]) for d in v.DISTRICTS])
            managers = [m for m in self.managers if m["district"] == district] or self.managers
            c["owner"] = rng.choice(managers)["key"]
            c["district"] = district
        company = not tenant and rng.random() < 0.012
        c["company"] = company
        male = rng.random() < 0.52
        name, sp, gp = self.person_name(rng, male)
        age = weighted(rng, [(rng.randint(21, 24), 22), (rng.randint(25, 30), 40),
                             (rng.randint(31, 37), 26), (rng.randint(38, 52), 12)])
        birthday = self.today - timedelta(days=int(age * 365.25) + rng.randint(0, 364))
        industry, employers, bands, _ = pick(rng, v.INDUSTRIES, 3)
        employer, occupations = rng.choice(employers)
        band = weighted(rng, bands)
        if age <= 24 and band in ("20k_30k", "above_30k"):
            band = "10k_20k"
        if age <= 23 and rng.random() < 0.5:
            band = "5k_10k" if band != "below_5k" else band
        education = weighted(rng, v.EDUCATION)
        hometown, region, _ = pick(rng, v.HOMETOWNS, 2)
        source = weighted(rng, v.SOURCES)
        record = {"name": name, "mobile": self.mobile(rng), "gender": "male" if male else "female",
                  "birthday": iso(birthday), "occupation": rng.choice(occupations),
                  "industry": industry, "employer": employer, "education": education,
                  "income_band": band, "hometown": hometown, "city": v.CITY,
                  "district": c["district"], "source": source}
        if rng.random() < 0.55:
            if rng.random() < 0.35:
                record["email"] = f"{rng.randint(10 ** 7, 10 ** 10 - 1)}@qq.com"
            else:
                record["email"] = (f"{sp}{gp}{rng.randint(1, 999) if rng.random() < 0.7 else ''}"
                                   f"@{weighted(rng, v.EMAIL_DOMAINS)}")
        if rng.random() < 0.65:
            record["wechat_id"] = (f"wxid_{rng.getrandbits(40):010x}" if rng.random() < 0.4
                                   else f"{sp}{gp}_{rng.randint(10, 9999)}")
        if tenant and rng.random() < 0.92 or (not tenant and rng.random() < 0.08):
            record["id_number"] = id_number(region, birthday, male, rng)
        consent = {"sms": rng.random() < 0.72, "wechat": rng.random() < 0.62,
                   "in_app": rng.random() < 0.75, "phone": rng.random() < 0.5,
                   "email": "email" in record and rng.random() < 0.45}
        record["consent"] = consent
        if rng.random() < 0.35:
            record["tags"] = sorted({weighted(rng, v.FREE_TAGS)
                                     for _ in range(rng.randint(1, 2))})
        if rng.random() < 0.3:
            record["custom_fields"] = {"commute": rng.choice(v.COMMUTES),
                                       "preferred_contact_time": rng.choice(v.CONTACT_TIMES)}
        if company:
            record = self._company(rng, record)
        c["record"] = record
        c["payer"] = weighted(rng, [("punctual", 68), ("sometimes_late", 20),
                                    ("chronic_late", 9), ("defaulter", 3)])
        c["method"] = weighted(rng, v.PAYMENT_METHODS)
        c["name"] = record["name"]

    def _company(self, rng, person):
        prefix = rng.choice(["天府", "蜀汉", "锦城", "蓉创", "西部", "川渝", "云端", "数智"])
        kind = rng.choice(["科技", "网络", "信息技术", "文化传媒", "医疗科技", "咨询"])
        contact_title = rng.choice(["HR经理", "行政主管", "人事专员"])
        return {"kind": "company", "name": f"成都{prefix}{kind}有限公司",
                "mobile": person["mobile"], "industry": person["industry"],
                "city": v.CITY, "district": person["district"], "source": "corporate",
                "email": person.get("email"), "tags": ["企业客户"],
                "consent": {"sms": True, "email": "email" in person, "wechat": False,
                            "in_app": False, "phone": True},
                "contacts": [{"name": person["name"], "mobile": person["mobile"],
                              "title": contact_title, "is_primary": True}]}

    def _customer_record(self, c):
        return {"key": c["key"], "owner": c["owner"], "body": c["record"]}

    # ------------------------------------------------------------ leases, per unit

    def make_chains(self):
        """Per unit, in order: what to send (opportunity and viewing before a recent lease,
        the lease or the renewal, its payments, a termination, the deposit refund, …)."""
        rng = self.rng("chains")
        self.lease_index = {}  # key -> lease facts the tickets need
        self.viewing_slots = {}
        self.active_leases = []
        chains = []
        for unit, timeline in zip(self.units, self.timelines):
            steps = []
            previous = None
            tenancy_first_key = None
            for n, lease in enumerate(timeline):
                key = f"{unit['code']}#{n + 1}"
                lease["key"] = key
                customer = lease["customer"]
                actor = customer["owner"]
                if not lease["follow"]:
                    tenancy_first_key = key
                rent, deposit, cycle = self._terms(rng, unit, lease, previous)
                lease["rent"] = rent
                opportunity = None
                if not lease["follow"] and lease["start"] >= self.today - timedelta(days=25):
                    opportunity = self._recent_opportunity(rng, steps, unit, lease, customer, key)
                payment = {"payer": customer["payer"], "method": customer["method"],
                           "pay_seed": rng.getrandbits(32), "arrears": None}
                behind = rng.random()
                if (lease["start"] <= self.today - timedelta(days=20) <= lease["end"]
                        and not lease["via_renew"] and behind < 0.08):
                    # behind with the latest rent: unpaid, or paid in part (overdue now)
                    payment["arrears"] = "unpaid_last" if behind < 0.05 else "partial_last"
                if lease["via_renew"]:
                    steps.append({"op": "renew", "key": key, "of": previous["key"],
                                  "customer": customer["key"], "actor": actor,
                                  "body": {"end_date": iso(lease["planned_end"]),
                                           "monthly_rent": rent, "payment_cycle": cycle},
                                  "pay_until": None, **payment})
                else:
                    body = {"start_date": iso(lease["start"]), "end_date": iso(lease["end"]),
                            "monthly_rent": rent, "deposit": deposit, "payment_cycle": cycle}
                    if lease["api_terminate"]:  # signed for its term, terminated below
                        body["end_date"] = iso(lease["planned_end"])
                    steps.append({"op": "lease", "key": key, "customer": customer["key"],
                                  "actor": actor, "unit": unit["code"], "body": body,
                                  "opportunity": opportunity,
                                  "pay_until": iso(lease["api_terminate"])
                                  if lease["api_terminate"] else None, **payment})
                self.lease_index[key] = {"unit": unit["code"], "customer": customer["key"],
                                         "start": lease["start"], "end": lease["end"],
                                         "district": unit["district"]}
                active = lease["start"] <= self.today <= lease["end"]
                if active and (self.today - lease["start"]).days >= 20:
                    steps.append(self._utilities(rng, key, customer))
                if active or lease["start"] > self.today:
                    self.active_leases.append((customer["key"], key, unit))
                if lease["api_terminate"]:
                    steps.append({"op": "terminate", "lease": key, "actor": actor,
                                  "body": {"date": iso(lease["api_terminate"]),
                                           "reason": rng.choice(v.TERMINATION_REASONS)}})
                tenancy_over = lease["end"] < self.today and (
                    n + 1 == len(timeline) or not timeline[n + 1]["follow"])
                if tenancy_over and rng.random() < 0.85:
                    deductions = []
                    if rng.random() < 0.35:
                        for reason, amount in rng.sample(v.REFUND_DEDUCTIONS, rng.randint(1, 2)):
                            deductions.append({"reason": reason, "amount": amount})
                    steps.append({"op": "refund", "lease": tenancy_first_key,
                                  "actor": self.supervisor_of[actor],
                                  "body": {"deductions": deductions}})
                previous = lease
            vacant_now = not timeline or timeline[-1]["end"] < self.today
            if vacant_now and rng.random() < (0.15 if timeline else 0.1):
                unit["maintenance"] = True
                steps.append({"op": "maintenance", "unit": unit["code"],
                              "actor": self.projects[unit["project"]]["manager"]})
            unit["vacant"] = vacant_now and not unit["maintenance"]
            chains.append({"unit": unit["code"], "steps": steps})
        leases = [step for chain in chains for step in chain["steps"] if step["op"] == "lease"]
        if not any(step["arrears"] for step in leases):
            # even a small data set shows someone behind with the rent
            since = iso(self.today - timedelta(days=20))
            for step in leases:
                if not step["pay_until"] and step["body"]["start_date"] <= since \
                        <= step["body"]["end_date"]:
                    step["arrears"] = "unpaid_last"
                    break
        return chains

    def _terms(self, rng, unit, lease, previous):
        listing = float(Decimal(unit["monthly_rent"]))
        if lease["follow"] and previous is not None:
            rent = round_rent(float(Decimal(previous["rent"])) * rng.uniform(1.0, 1.05))
        else:
            years_ago = max(0.0, (self.today - lease["start"]).days / 365.25)
            rent = round_rent(listing * (1 - 0.035 * years_ago) * rng.uniform(0.96, 1.04))
        months = lease["months"]
        cycle = weighted(rng, [("monthly", 35), ("quarterly", 45), ("half_yearly", 12),
                               ("yearly", 8)])
        if months < 3:
            cycle = "monthly"
        elif months < 6 and cycle in ("half_yearly", "yearly"):
            cycle = "quarterly"
        elif months < 12 and cycle == "yearly":
            cycle = "half_yearly"
        if lease["follow"]:
            deposit = "0.00"  # the first lease's deposit carries over
        else:
            times = weighted(rng, [(1, 85), (2, 12), (0, 3)])
            deposit = money(Decimal(rent) * times)
        return rent, deposit, cycle

    def _utilities(self, rng, key, customer):
        due = self.today.replace(day=10)
        if self.today.day <= 10:
            due = add_months(due, -1)
        return {"op": "charge", "lease": key, "actor": customer["owner"],
                "body": {"kind": "utilities", "amount": money(Decimal(rng.randint(6000, 38000))
                                                              / 100),
                         "due_date": iso(due), "description": rng.choice(v.CHARGE_DESCRIPTIONS)},
                "payer": customer["payer"], "method": customer["method"],
                "pay_seed": rng.getrandbits(32)}

    def _viewing_slot(self, rng, staff, unit_code, day):
        """A free hour for ``staff`` and the unit near ``day`` (no double booking)."""
        earliest = self.today - timedelta(days=VIEWING_PAST_DAYS)
        for shift in (0, 1, -1, 2, -2, 3, -3, 4, 5, 6):
            candidate = day + timedelta(days=shift)
            if candidate < earliest:
                continue
            hours = list(range(10, 20))
            rng.shuffle(hours)
            for hour in hours:
                slot = (candidate, hour)
                if slot in self.viewing_slots.setdefault(("staff", staff), set()):
                    continue
                if slot in self.viewing_slots.setdefault(("unit", unit_code), set()):
                    continue
                self.viewing_slots[("staff", staff)].add(slot)
                self.viewing_slots[("unit", unit_code)].add(slot)
                return instant(candidate, hour)
        return None

    def _recent_opportunity(self, rng, steps, unit, lease, customer, lease_key):
        key = f"o-{lease_key}"
        owner = customer["owner"]
        source = v.OPPORTUNITY_SOURCE.get(customer["record"].get("source"),
                                          customer["record"].get("source")) or "other"
        day = min(lease["start"] - timedelta(days=rng.randint(2, 10)),
                  self.today - timedelta(days=1))
        day = max(day, self.today - timedelta(days=VIEWING_PAST_DAYS))
        viewing = self._viewing_slot(rng, owner, unit["code"], day)
        steps.append({
            "op": "opportunity", "key": key, "customer": customer["key"], "actor": owner,
            "body": {"source": source, "budget": round_rent(float(Decimal(unit["monthly_rent"]))
                                                            * rng.uniform(0.95, 1.15)),
                     "district": unit["district"], "layout": unit["layout"],
                     "move_in_date": iso(lease["start"]), "expected_close": iso(lease["start"])},
            "then": [{"stage": "contacted", "reason": "电话联系，确认了预算和入住时间"}],
            "viewing": {"unit": unit["code"], "scheduled_at": viewing,
                        "result": "interested",
                        "outcome": rng.choice(v.VIEWING_NOTES["interested"])} if viewing else None,
            "after": [{"stage": "negotiating", "reason": "沟通付款方式和入住时间"}],
        })
        return key

    # ------------------------------------------------------------ leads

    def make_leads(self):
        rng = self.rng("leads")
        leads = []
        units_by_district = {}  # viewings: vacant units first, never one under maintenance
        for unit in self.units:
            if unit["vacant"]:
                units_by_district.setdefault(unit["district"], []).append(unit)
        for unit in self.units:
            if not unit["vacant"] and not unit["maintenance"] \
                    and unit["district"] not in units_by_district:
                units_by_district.setdefault(("any", unit["district"]), []).append(unit)
        for customer in self.lead_customers:
            if rng.random() >= 0.65:
                continue
            record = customer["record"]
            district = customer["district"]
            units = (units_by_district.get(district)
                     or units_by_district.get(("any", district))
                     or [u for u in self.units if not u["maintenance"]])
            unit = rng.choice(units) if units else None
            budget = round_rent(float(Decimal(unit["monthly_rent"])) * rng.uniform(0.8, 1.1)) \
                if unit else "3000.00"
            source = v.OPPORTUNITY_SOURCE.get(record.get("source"), record.get("source")) \
                or "other"
            move_in = self.today + timedelta(days=rng.randint(5, 75))
            stage = weighted(rng, [("new", 15), ("contacted", 20), ("viewing_booked", 15),
                                   ("viewed", 12), ("negotiating", 8), ("lost", 30)])
            lead = {"key": f"o-{customer['key']}", "customer": customer["key"],
                    "actor": customer["owner"],
                    "body": {"source": source, "budget": budget, "district": district,
                             "layout": unit["layout"] if unit else None,
                             "move_in_date": iso(move_in), "expected_close": iso(move_in)},
                    "then": [], "viewing": None, "after": [], "plan_steps": []}
            if record.get("kind") == "company":
                lead["body"]["expected_value"] = money(Decimal(budget) * 12 * rng.randint(3, 10))
            if stage != "new":
                lead["then"].append({"stage": "contacted", "reason": "首次电话沟通需求"})
            viewed = stage in ("viewed", "negotiating") or (stage == "lost" and rng.random() < 0.4)
            if unit and (stage == "viewing_booked" or viewed):
                if stage == "viewing_booked":
                    day = self.today + timedelta(days=rng.randint(1, 10))
                else:
                    day = self.today - timedelta(days=rng.randint(1, VIEWING_PAST_DAYS - 4))
                slot = self._viewing_slot(rng, customer["owner"], unit["code"], day)
                if slot:
                    if viewed:
                        result = ("interested" if stage in ("viewed", "negotiating")
                                  else weighted(rng, [("not_interested", 60),
                                                      ("needs_second_viewing", 20),
                                                      ("no_show", 20)]))
                        outcome = rng.choice(v.VIEWING_NOTES[result])
                    else:
                        result = outcome = None
                    lead["viewing"] = {"unit": unit["code"], "scheduled_at": slot,
                                       "result": result, "outcome": outcome}
            if stage == "negotiating":
                lead["after"].append({"stage": "negotiating", "reason": "客户对房源满意，谈价格"})
            if stage == "lost":
                reason = weighted(rng, v.LOSS_REASONS)
                lead["after"].append({"stage": "lost", "loss_reason": reason,
                                      "loss_note": rng.choice(v.LOSS_NOTES[reason])})
            if stage not in ("lost",) and rng.random() < 0.3:
                for title in rng.sample(v.PLAN_STEPS, rng.randint(1, 3)):
                    due = self.today + timedelta(days=rng.randint(-5, 14))
                    done = due < self.today and rng.random() < 0.7
                    lead["plan_steps"].append({"title": title, "due_date": iso(due),
                                               "result": rng.choice(v.PLAN_RESULTS)
                                               if done else None})
            leads.append(lead)
        return leads

    # ------------------------------------------------------------ interactions

    def make_interactions(self):
        rng = self.rng("interactions")
        out = []
        agents = self.agents
        yesterday = self.today - timedelta(days=1)
        for customer in self.all_customers:
            if not customer["tenancies"]:
                for _ in range(rng.choice([1, 1, 2, 2, 3])):
                    channel, direction, text = rng.choice(v.LEAD_INTERACTIONS)
                    day = self.today - timedelta(days=rng.randint(1, 60))
                    summary = text.format(district=customer["district"],
                                          layout=rng.choice(["一室一厅", "开间", "两室"]),
                                          budget=rng.choice([2000, 2500, 3000, 3500, 4000]),
                                          month=(self.today.month % 12) + 1)
                    out.append(self._interaction(rng, customer, channel, direction, summary,
                                                 day, agents))
                continue
            leases = [l for t in customer["tenancies"] for l in t["leases"]]
            for _ in range(rng.choice([1, 1, 2, 2, 3])):
                channel, direction, text, when = rng.choice(v.TENANT_INTERACTIONS)
                lease = rng.choice(leases)
                span = max(1, (lease["end"] - lease["start"]).days)
                day = {"start": lease["start"],
                       "after_start": lease["start"] + timedelta(days=7),
                       "middle": lease["start"] + timedelta(days=rng.randrange(span)),
                       "before_end": lease["end"] - timedelta(days=rng.randint(20, 50)),
                       "end": lease["end"]}[when]
                if day > yesterday:
                    continue
                out.append(self._interaction(rng, customer, channel, direction, text, day,
                                             agents))
        return out

    def _interaction(self, rng, customer, channel, direction, summary, day, agents):
        actor = customer["owner"] if direction == "outbound" or rng.random() < 0.5 \
            else rng.choice(agents)["key"]
        return {"customer": customer["key"], "actor": actor,
                "body": {"channel": channel, "direction": direction, "summary": summary,
                         "occurred_at": instant(day, rng.randint(9, 20), rng.randrange(60))}}

    def _all_customers(self):
        return self.all_customers

    # ------------------------------------------------------------ tasks

    def make_tasks(self):
        rng = self.rng("tasks")
        customers = self.all_customers
        count = round(self.sizes["customers"] * 0.04)
        tasks = []
        for i in range(count):
            if not customers:
                break
            customer = rng.choice(customers)
            kind, title = rng.choice(v.TASK_TITLES)
            due = self.today + timedelta(days=rng.randint(-20, 15))
            due_at = instant(due, rng.choice([10, 14, 16]))
            remind_at = instant(due - timedelta(days=1), 18)
            if due < self.today:
                done = rng.random() < 0.65
            else:
                done = rng.random() < 0.1
            urge = not done and due < self.today and rng.random() < 0.4
            tasks.append({"key": f"t{i + 1:05d}", "customer": customer["key"],
                          "actor": customer["owner"],
                          "body": {"title": title.format(name=customer["name"]), "kind": kind,
                                   "due_at": due_at, "remind_at": remind_at},
                          "done": "已完成" if done else None,
                          "urged_by": self.supervisor_of[customer["owner"]] if urge else None})
        return tasks

    # ------------------------------------------------------------ tickets

    def make_tickets(self):
        rng = self.rng("tickets")
        n = self.sizes["tickets"]
        active = [(c, lease, unit) for c, lease, unit in self.active_leases
                  if self.lease_index[lease]["start"] <= self.today]
        former = []
        customers = {c["key"]: c for c in self.all_customers}
        active_keys = {c for c, _, _ in active}
        for key in sorted(customers):
            c = customers[key]
            if c["tenancies"] and key not in active_keys:
                former.append((key, c["tenancies"][-1]["leases"][-1]["key"]))
        leads = [c["key"] for c in self.lead_customers]
        tech_slots = {}
        tickets = []
        article_quota = 3
        types = {name: weight for name, (weight, _) in v.TICKETS.items()}
        for i in range(n):
            group = weighted(rng, [("active", 78 if active else 0),
                                   ("former", 12 if former else 0),
                                   ("lead", 10 if leads else 0)])
            unit_code = lease_key = None
            if group == "active":
                customer, lease_key, unit = rng.choice(active)
                unit_code = unit["code"]
                kind = weighted(rng, list(types.items()))
            elif group == "former":
                customer, lease_key = rng.choice(former)
                kind = weighted(rng, [("consultation", 60), ("complaint", 40)])
            else:
                customer = rng.choice(leads)
                kind = weighted(rng, [("consultation", 80), ("suggestion", 20)])
            description, resolution = rng.choice(v.TICKETS[kind][1])
            if group == "former" and kind == "consultation":
                description, resolution = rng.choice(
                    [t for t in v.TICKETS["consultation"][1] if "押金" in t[0] or "发票" in t[0]
                     or "退租" in t[0]])
            if group == "former" and kind == "complaint":
                description, resolution = v.TICKETS["complaint"][1][2]  # billing
            district = self.lease_index[lease_key]["district"] if lease_key else None
            creator = rng.choice(self.agents)["key"]
            # the satisfaction call (回访): the tenant's housekeeper, else the agent
            caller = customers[customer]["owner"] if group != "lead" else creator
            if kind in ("repair", "cleaning"):
                techs = [t for t in self.technicians if district in (t["covers"] or [])] \
                    or self.technicians
                assignee = rng.choice(techs)["key"]
            else:
                assignee = rng.choice(self.agents)["key"]
            final = weighted(rng, [("closed", 55), ("resolved", 24), ("in_progress", 6),
                                   ("awaiting_customer", 3), ("assigned", 5), ("new", 3),
                                   ("reopened", 4)])
            steps = []
            if final != "new":
                steps.append({"do": "assign", "actor": creator, "assignee": assignee})
            if final in ("in_progress", "awaiting_customer") or (
                    final in ("resolved", "closed", "reopened") and rng.random() < 0.6):
                steps.append({"do": "status", "actor": assignee, "status": "in_progress",
                              "note": None})
                if rng.random() < 0.6:
                    steps.append({"do": "comment", "actor": assignee,
                                  "body": rng.choice(v.PROGRESS_COMMENTS)})
            if final == "awaiting_customer":
                steps.append({"do": "status", "actor": assignee, "status": "awaiting_customer",
                              "note": rng.choice(v.AWAITING_NOTES)})
            if final in ("assigned", "in_progress") and kind in ("repair", "cleaning"):
                slot = self._tech_slot(rng, tech_slots, assignee)
                if slot:
                    steps.append({"do": "appointment", "actor": assignee, "scheduled_at": slot})
            if final in ("resolved", "closed", "reopened"):
                steps.append({"do": "status", "actor": assignee, "status": "resolved",
                              "note": resolution})
                if final == "reopened":
                    rating = rng.choice([1, 2])
                    steps.append({"do": "feedback", "actor": caller, "rating": rating,
                                  "comment": rng.choice(v.FEEDBACK[rating])})
                    steps.append({"do": "reopen", "actor": creator,
                                  "reason": rng.choice(v.REOPEN_REASONS)})
                    if rng.random() < 0.5:  # worked again and closed; else still reopened
                        steps.append({"do": "status", "actor": assignee,
                                      "status": "in_progress", "note": "重新上门处理"})
                        steps.append({"do": "status", "actor": assignee, "status": "resolved",
                                      "note": resolution + "（二次处理）"})
                        rating = weighted(rng, [(4, 60), (5, 25), (3, 15)])
                        steps.append({"do": "feedback", "actor": caller, "rating": rating,
                                      "comment": rng.choice(v.FEEDBACK[rating])})
                        steps.append({"do": "status", "actor": creator, "status": "closed",
                                      "note": "二次回访满意，关闭"})
                else:
                    rated = rng.random() < (0.85 if final == "closed" else 0.45)
                    if rated:
                        rating = weighted(rng, v.RATINGS)
                        steps.append({"do": "feedback", "actor": caller, "rating": rating,
                                      "comment": rng.choice(v.FEEDBACK[rating])})
                    if final == "closed":
                        steps.append({"do": "status", "actor": creator, "status": "closed",
                                      "note": "回访完成，关闭工单"})
                if article_quota and final == "closed" and kind in ("repair", "complaint"):
                    article_quota -= 1
                    steps.append({"do": "to_article", "actor": creator})
            tickets.append({
                "key": f"k{i + 1:06d}", "customer": customer, "actor": creator,
                "body": {"type": kind, "channel": weighted(rng, v.TICKET_CHANNELS),
                         "priority": weighted(rng, v.PRIORITIES), "description": description},
                "unit": unit_code, "lease": lease_key, "steps": steps})
        return tickets

    def _tech_slot(self, rng, slots, technician):
        taken = slots.setdefault(technician, set())
        for _ in range(6):
            day = self.today + timedelta(days=rng.randint(2, 8))
            hour, minute = rng.choice([(9, 0), (10, 30), (13, 30), (15, 0), (16, 30), (18, 0)])
            if (day, hour) not in taken:
                taken.add((day, hour))
                return instant(day, hour, minute)
        return None

    # ------------------------------------------------------------ stages, marketing, articles

    def make_stage_changes(self):
        """Former tenants who left long ago and did not come back: some marked churned."""
        rng = self.rng("stages")
        changes = []
        for customer in self.all_customers:
            if not customer["tenancies"]:
                continue
            last_end = customer["tenancies"][-1]["leases"][-1]["end"]
            if last_end < self.today - timedelta(days=120) and rng.random() < 0.3:
                reason, competitor = rng.choice(v.CHURN_REASONS)
                changes.append({"customer": customer["key"], "actor": customer["owner"],
                                "body": {"stage": "churned",
                                         "reason": reason + (f"（去了{competitor}）"
                                                             if competitor else "")}})
        return changes

    def make_marketing(self):
        rng = self.rng("marketing")
        marketer = self.marketers[0]["key"]
        segments = [{"name": name, "actor": marketer,
                     "body": {"name": name, "description": description, "rules": rules}}
                    for name, description, rules in v.SEGMENTS]
        campaigns = []
        for i, (name, segment, channel, template, cost, what) in enumerate(v.CAMPAIGNS):
            body = {"name": name, "channel": channel, "template": template, "cost": cost}
            if what == "scheduled":
                body["scheduled_at"] = instant(self.today + timedelta(days=7), 10)
            campaigns.append({"name": name, "segment": segment,
                              "actor": self.marketers[i % len(self.marketers)]["key"],
                              "body": body, "launch": what == "launch",
                              "response_rate": round(rng.uniform(0.02, 0.06), 3),
                              "response_seed": rng.getrandbits(32)})
        care = []
        for name, kind, channel, extra, template in v.CARE_RULES:
            care.append({"name": name, "actor": marketer,
                         "body": {"name": name, "kind": kind, "channel": channel,
                                  "template": template, **extra}})
        return {"segments": segments, "campaigns": campaigns, "care_rules": care,
                "responses": list(v.CAMPAIGN_RESPONSES)}

    def make_articles(self):
        rng = self.rng("articles")
        return [{"title": title, "actor": rng.choice(self.agents)["key"],
                 "body": {"title": title, "symptom": symptom, "solution": solution,
                          "tags": tags}}
                for title, symptom, solution, tags in v.ARTICLES]

    def make_agent_registry(self):
        """The service desk's assignment registry, filled last (new tickets after the demo
        are assigned by skill, district and load)."""
        entries = []
        all_districts = [d[0] for d in v.DISTRICTS]
        for agent in self.agents:
            entries.append({"staff": agent["key"], "actor": self.supervisors[0]["key"],
                            "body": {"skills": ["complaint", "consultation", "suggestion"],
                                     "districts": all_districts, "active": True,
                                     "max_open": 40}})
        for tech in self.technicians:
            entries.append({"staff": tech["key"], "actor": self.supervisors[0]["key"],
                            "body": {"skills": ["repair", "cleaning"],
                                     "districts": tech["covers"], "active": True,
                                     "max_open": 25}})
        return entries


def _term(rng, target_months):
    """A lease term in whole months near ``target_months``: mostly the standard 6 and 12."""
    options = [(1, 0.3), (2, 0.3), (3, 1.0), (6, 1.6), (12, 2.2), (24, 0.4)]
    weights = [pref * math.exp(-2.2 * abs(math.log(m / max(0.5, target_months))))
               for m, pref in options]
    return rng.choices([m for m, _ in options], weights)[0]


def _allocate(total, weights, rng, at_least_one=False, caps=None):
    """``total`` split over ``weights`` into whole numbers (largest remainders, ties by a
    random draw), each within its cap."""
    n = len(weights)
    if n == 0:
        return []
    base = [1 if at_least_one and total >= n else 0 for _ in range(n)]
    rest = total - sum(base)
    s = sum(weights) or 1.0
    shares = [rest * w / s for w in weights]
    counts = [b + int(share) for b, share in zip(base, shares)]
    order = sorted(range(n), key=lambda i: (-(shares[i] - int(shares[i])), rng.random()))
    missing = total - sum(counts)
    for i in order[:missing]:
        counts[i] += 1
    if caps:
        spill = 0
        for i in range(n):
            if counts[i] > caps[i]:
                spill += counts[i] - caps[i]
                counts[i] = caps[i]
        i = 0
        room = [caps[j] - counts[j] for j in range(n)]
        while spill and any(r > 0 for r in room):
            j = order[i % n]
            if room[j] > 0:
                counts[j] += 1
                room[j] -= 1
                spill -= 1
            i += 1
    return counts
