"""The RPC contracts: every RPC call a consumer makes binds to a method its producer serves.

The gateway calls the services over nameko RPC, and some services call each other, by service
and method *name* with positional arguments: nothing but a running system notices when a
producer renames a method, drops its ``@rpc``, or adds or reorders a required parameter. This
test notices it statically, without a broker, so each service can be deployed alone:

- consumers: every RPC call written in ``gateway/crm_gateway``, ``services/*/*_service`` and
  ``kit/crm_kit`` is read with ``ast`` (``collect``), in the forms the code uses —
  ``rpc.call(SERVICE, "method", *args)`` and ``rpc.call_with(client, correlation_id, SERVICE,
  "method", *args)`` of ``crm_gateway.rpc`` (also handed over as a callable, as the 360's
  ``pool.submit(rpc.call_with, …)``); ``client.call(service, "method", *args)`` of a
  ``crm_kit.rpc_client.RpcClient``; ``self.<dep>.call("method", *args)`` on a
  ``ServiceRpc("service")`` dependency; ``self.<dep>.method(*args)`` on a plain nameko
  ``RpcProxy``; ``proxy.<service>.<method>(*args)`` inside ``with ClusterRpcProxy(…) as proxy``.
  Service names written as module constants (``SALES = "sales"``) are resolved; so is a local
  wrapper that takes the service, the method or ``*args`` as parameters (``_page(method, …)``,
  the 360's ``submit(service, method, *args)``, ``_report(name, method, *args)``): each call of
  the wrapper is checked as a call site, at its own line;
- producers: each nameko service class (a class with ``name = "…"`` under
  ``services/*/*_service``) is imported, and its RPC entrypoints are the attributes nameko
  registered an ``Rpc`` entrypoint on (so ``CrmService``'s and ``AuditTrail``'s count, and
  any decorator wrapping ``@rpc``), with their signatures (``inspect``, ``self`` removed);
- each call must name a service that exists and one of its RPC entrypoints, and its arguments
  (how many positional ones, which keyword names) must bind to that method's signature
  (``inspect.Signature.bind`` with placeholders). Keywords the client takes itself
  (``timeout=`` …, read from the clients' definitions) are not the method's.

Nothing escapes silently: a call whose service or method is only known at run time must be
listed in ``DYNAMIC`` with the (service, method) pairs it can take; a ``.call(…)`` on a receiver
the collector cannot type must be listed in ``RECEIVERS``; a stale entry of either fails too.
What is not checked: argument *values* and return shapes (docs/rpc-contracts.md; the end-to-end
tests), and callers outside the scanned trees (``bench/``, the demo, the tests).
"""
import ast
import importlib
import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: where consumers are: the gateway, the services, and the kit the services share
CONSUMER_GLOBS = ("gateway/crm_gateway/**/*.py", "services/*/*_service/**/*.py",
                  "kit/crm_kit/**/*.py")
#: the RPC clients themselves (their ``call`` forwards a ``service, method`` it was given)
PLUMBING = frozenset({"gateway/crm_gateway/rpc.py", "kit/crm_kit/rpc.py",
                      "kit/crm_kit/rpc_client.py"})
SERVICES = ("customer", "sales", "service_desk", "marketing", "analytics")

#: call sites whose service or method is only known at run time, by (file, function where the
#: call is written): every (service, method) pair it can take, read from the code.
#: ``test_the_dynamic_pairs_are_the_codes_own`` compares them with the data the code uses.
DYNAMIC = {
    # scopes.READERS: how a record of each kind is read, to check the caller reaches it
    ("gateway/crm_gateway/scopes.py", "_record"): {
        ("customer", "get_customer"), ("sales", "get_opportunity"), ("sales", "get_viewing"),
        ("sales", "get_lease"), ("sales", "get_bill"), ("sales", "get_task"),
        ("service_desk", "get_ticket"), ("marketing", "get_message")},
    ("gateway/crm_gateway/scopes.py", "fetch"): {
        ("customer", "get_customer"), ("sales", "get_opportunity"), ("sales", "get_viewing"),
        ("sales", "get_lease"), ("sales", "get_bill"), ("sales", "get_task"),
        ("service_desk", "get_ticket"), ("marketing", "get_message")},
    # audit_trail.SOURCES but the gateway's own: the services that keep an audit trail
    ("gateway/crm_gateway/audit_trail.py", "_page_of"): {
        ("customer", "audit_trail"), ("sales", "audit_trail")},
    # readiness pings each of CRM_GATEWAY_READY_SERVICES: any service
    ("gateway/crm_gateway/blueprints/ops.py", "_ping"): {(s, "ping") for s in SERVICES},
    # crm-dlq list|replay <any service>
    ("kit/crm_kit/dlq.py", "main"): {(s, m) for s in SERVICES
                                     for m in ("list_dead_letters", "replay_dead_letters")},
    # sales and the service desk pass their ServiceRpc("customer") caller
    ("kit/crm_kit/references.py", "live_customer"): {("customer", "get_customer")},
    # rebuild.SOURCES: the event histories the analytics store is rebuilt from
    ("services/analytics/analytics_service/service.py", "AnalyticsService.rebuild_store.<lambda>"):
        {("customer", "event_history"), ("sales", "event_history"),
         ("service_desk", "event_history")},
}

CLIENT = "RpcClient.call"  # x.call(service, method, *args): a crm_kit.rpc_client.RpcClient
CALLER = "ServiceRpc"      # x.call(method, *args): a ServiceRpc dependency handed over
NOT_RPC = "not RPC"
#: ``x.call(…)`` on a receiver the collector cannot type, by (file, function): what it is
RECEIVERS = {
    ("gateway/crm_gateway/blueprints/ops.py", "_ping"): CLIENT,  # rpc.get_client()
    ("kit/crm_kit/dlq.py", "main"): CLIENT,
    ("kit/crm_kit/references.py", "live_customer"): CALLER,
    ("services/analytics/analytics_service/service.py", "AnalyticsService.rebuild_store.<lambda>"):
        CALLER,
}

# ---------------------------------------------------------------- the forms of a call


@dataclass(frozen=True)
class Form:
    name: str
    lead: int                # positional arguments before the service (or the method)
    names_service: bool      # the service is an argument (else the receiver knows it)
    options: frozenset = frozenset()  # keywords the client takes itself, not passed on


def _definition(path, qualname):
    """The ast of ``qualname`` (``function`` or ``Class.name``) in ``path``, read, not imported:
    the gateway's code is read like the rest of the call sites, whose calls are found in the
    source, not by running it."""
    node = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for name in qualname.split("."):
        node = next(n for n in node.body if getattr(n, "name", None) == name)
    return node


def _form(name, path, qualname, names_service):
    """The form of a client function, from its definition."""
    function = _definition(path, qualname)
    names = _parameters(function)
    if "." in qualname:
        names = names[1:]  # self
    return Form(name, names.index("service" if names_service else "method"), names_service,
                frozenset(p.arg for p in function.args.kwonlyargs))


@lru_cache(maxsize=None)
def forms():
    return {"rpc.call": _form("rpc.call", "gateway/crm_gateway/rpc.py", "call", True),
            "rpc.call_with": _form("rpc.call_with", "gateway/crm_gateway/rpc.py", "call_with",
                                   True),
            CLIENT: _form(CLIENT, "kit/crm_kit/rpc_client.py", "RpcClient.call", True),
            CALLER: _form(CALLER, "kit/crm_kit/rpc.py", "ServiceCaller.call", False),
            "nameko proxy": Form("nameko proxy", 0, False)}


@dataclass(frozen=True)
class Call:
    """One call to check: ``service.method`` with ``args`` positional arguments (None: unpacked
    with ``*``, not countable) and ``keywords`` (None among them: ``**`` unpacked)."""
    where: str
    service: str
    method: str
    args: int
    keywords: tuple
    form: str


@dataclass(frozen=True)
class Param:
    """A name that is a parameter of ``function`` (an ast node)."""
    function: ast.AST
    name: str


@dataclass
class _Raw:
    node: ast.AST      # where the call is written (after following wrappers: the wrapper's call)
    service: object    # str, or an ast expression
    method: object
    args: list         # ast expressions, ``ast.Starred`` included
    keywords: list     # names; None for ``**mapping``
    form: str
    origin: ast.AST    # the call as written (its function keys DYNAMIC)
    via: tuple = ()    # the wrapper calls followed, outermost first


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_FOLLOW_DEPTH = 4


def _name_of(expr):
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _parameters(function):
    a = function.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return names


class _Module:
    """The RPC call sites of one module's source."""

    def __init__(self, source, path, dynamic, receivers):
        self.path = path
        self.dynamic = dynamic
        self.receivers = receivers
        self.tree = ast.parse(source, filename=path)
        self.parent = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.constants = self._constants()
        self.gateway_modules, self.gateway_functions = self._gateway_imports()
        self.calls, self.issues, self.used = [], [], set()
        self.dependencies = {node: self._dependencies_of(node) for node in ast.walk(self.tree)
                             if isinstance(node, ast.ClassDef)}

    # -- reading the module ----------------------------------------------------------------
    def _constants(self):
        constants = {}
        for node in self.tree.body:
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = zip(target.elts, node.value.elts)
                for name, value in pairs:
                    if (isinstance(name, ast.Name) and isinstance(value, ast.Constant)
                            and isinstance(value.value, str)):
                        constants[name.id] = value.value
        return constants

    def _gateway_imports(self):
        """Local names of the ``crm_gateway.rpc`` module and of its call functions."""
        modules, functions = set(), {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module == "crm_gateway":
                modules |= {a.asname or a.name for a in node.names if a.name == "rpc"}
            elif isinstance(node, ast.ImportFrom) and node.module == "crm_gateway.rpc":
                functions.update({a.asname or a.name: a.name for a in node.names
                                  if a.name in ("call", "call_with")})
            elif isinstance(node, ast.Import):
                modules |= {a.asname for a in node.names
                            if a.name == "crm_gateway.rpc" and a.asname}
        return modules, functions

    def _gateway_function(self, expr):
        """``"rpc.call"`` / ``"rpc.call_with"`` when ``expr`` names one, else None."""
        if (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name)
                and expr.value.id in self.gateway_modules and expr.attr in ("call", "call_with")):
            return f"rpc.{expr.attr}"
        if isinstance(expr, ast.Name) and expr.id in self.gateway_functions:
            return f"rpc.{self.gateway_functions[expr.id]}"
        return None

    def _ancestors(self, node):
        while node in self.parent:
            node = self.parent[node]
            yield node

    def _function_of(self, node):
        return next((a for a in self._ancestors(node) if isinstance(a, _FUNCTIONS)), None)

    def qualname(self, node):
        names = [a.name if not isinstance(a, ast.Lambda) else "<lambda>"
                 for a in self._ancestors(node)
                 if isinstance(a, (*_FUNCTIONS, ast.ClassDef))]
        return ".".join(reversed(names)) or "<module>"

    def _dependencies(self, node):
        """``{attribute: (kind, service)}`` of the RPC dependencies of the class ``node`` is in."""
        cls = next((a for a in self._ancestors(node) if isinstance(a, ast.ClassDef)), None)
        return self.dependencies.get(cls, {})

    def _dependencies_of(self, cls):
        found = {}
        for statement in cls.body:
            if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
                continue
            kind = _name_of(statement.value.func)
            if kind not in ("ServiceRpc", "RpcProxy"):
                continue
            given = statement.value.args[:1] or [k.value for k in statement.value.keywords
                                                 if k.arg == "target_service"]
            service = self._resolve(given[0]) if given else None
            if not isinstance(service, str):
                self._issue(statement, f"{kind}(...) of a service the checker cannot read")
                continue
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = (kind, service)
        return found

    def _cluster_proxy(self, name, node):
        """The service of ``name`` when it is a ``ServiceRpcProxy`` of a ``with`` around
        ``node``; "*" for a ``ClusterRpcProxy``; else None."""
        for ancestor in self._ancestors(node):
            if not isinstance(ancestor, ast.With):
                continue
            for item in ancestor.items:
                if not (isinstance(item.optional_vars, ast.Name)
                        and item.optional_vars.id == name
                        and isinstance(item.context_expr, ast.Call)):
                    continue
                kind = _name_of(item.context_expr.func)
                if kind == "ClusterRpcProxy":
                    return "*"
                if kind == "ServiceRpcProxy" and item.context_expr.args:
                    return self._resolve(item.context_expr.args[0])
        return None

    def _resolve(self, expr):
        """A str, a ``Param`` of an enclosing function, or None (only known at run time)."""
        if isinstance(expr, str):
            return expr
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        if not isinstance(expr, ast.Name):
            return None
        for function in (a for a in self._ancestors(expr) if isinstance(a, _FUNCTIONS)):
            if expr.id in _parameters(function):
                return Param(function, expr.id)
            if any(isinstance(n, ast.Name) and n.id == expr.id and isinstance(n.ctx, ast.Store)
                   for n in ast.walk(function)):
                return None  # a local variable
        return self.constants.get(expr.id)

    # -- finding the calls -----------------------------------------------------------------
    def collect(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self._visit_call(node)
            elif self._gateway_function(node):
                parent = self.parent.get(node)
                if not (isinstance(parent, ast.Call)
                        and (node is parent.func or node in parent.args)):
                    self._issue(node, f"a reference to {self._gateway_function(node)} the "
                                      "checker cannot follow: call it, or pass it positionally")
        return self

    def _visit_call(self, call):
        func = call.func
        gateway = self._gateway_function(func)
        if gateway:
            return self._extract(call, gateway, call.args, call.keywords)
        for index, argument in enumerate(call.args):  # pool.submit(rpc.call_with, ...)
            handed = self._gateway_function(argument)
            if handed:
                return self._extract(call, handed, call.args[index + 1:], call.keywords)
        if not isinstance(func, ast.Attribute):
            return None
        receiver = func.value
        method = func.attr
        if method == "call_async" and isinstance(receiver, ast.Attribute):
            receiver, method = receiver.value, receiver.attr  # proxy.service.method.call_async
        # self.<dependency>.call(...) / self.<dependency>.<method>(...)
        if (isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name)
                and receiver.value.id == "self"):
            dependency = self._dependencies(call).get(receiver.attr)
            if dependency and dependency[0] == "ServiceRpc":
                if method != "call" or func.attr == "call_async":
                    return self._issue(call, f"self.{receiver.attr} is a ServiceRpc: it only "
                                             f"has .call(method, *args), not .{func.attr}")
                return self._extract(call, CALLER, call.args, call.keywords,
                                     service=dependency[1])
            if dependency:
                return self._add(call, "nameko proxy", dependency[1], method, call.args,
                                 [k.arg for k in call.keywords])
        # with ClusterRpcProxy(...) as proxy: proxy.<service>.<method>(...)
        if isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name):
            if self._cluster_proxy(receiver.value.id, call) == "*":
                return self._add(call, "nameko proxy", receiver.attr, method, call.args,
                                 [k.arg for k in call.keywords])
        if isinstance(receiver, ast.Name):
            service = self._cluster_proxy(receiver.id, call)
            if service and service != "*":
                return self._add(call, "nameko proxy", service, method, call.args,
                                 [k.arg for k in call.keywords])
        if func.attr != "call":
            return None
        key = (self.path, self.qualname(call))
        kind = self.receivers.get(key)
        if kind is None:
            return self._issue(call, f"{ast.unparse(func)}(...) on a receiver the checker "
                                     f"cannot type: say what it is in RECEIVERS[{key!r}]")
        self.used.add(("RECEIVERS", key))
        if kind != NOT_RPC:
            self._extract(call, kind, call.args, call.keywords)
        return None

    def _extract(self, call, form_name, positional, keywords, service=None):
        form = forms()[form_name]
        needed = form.lead + (2 if form.names_service else 1)
        named = positional[form.lead:needed]
        if len(named) < needed - form.lead or any(isinstance(a, ast.Starred) for a in named):
            return self._issue(call, f"{form_name}: the service and the method must be "
                                     "passed positionally")
        if form.names_service:
            service = named[0]
        names = [k.arg for k in keywords if k.arg not in form.options]
        self._add(call, form_name, service, named[-1], positional[needed:], names)
        return None

    def _add(self, call, form, service, method, args, keywords):
        raw = _Raw(call, service, method, list(args), list(keywords), form, call)
        for found in self._follow(raw, 0):
            self._finish(*found)

    # -- following wrappers ----------------------------------------------------------------
    def _vararg_param(self, argument):
        if isinstance(argument, ast.Starred):
            resolved = self._resolve(argument.value)
            if isinstance(resolved, Param) and resolved.function.args.vararg is not None \
                    and resolved.function.args.vararg.arg == resolved.name:
                return resolved
        return None

    def _follow(self, raw, depth):
        """``(raw, service, method)`` for each call ``raw`` stands for: through the callers of
        a wrapper whose parameters give the service, the method or ``*args``."""
        service, method = self._resolve(raw.service), self._resolve(raw.method)
        pending = [p for p in (service, method) if isinstance(p, Param)]
        pending += [p for p in map(self._vararg_param, raw.args) if p]
        if not pending:
            yield raw, service, method
            return
        function = pending[0].function
        callers = None
        if depth < _FOLLOW_DEPTH and all(p.function is function for p in pending):
            callers = self._callers(function)
        if callers is None:  # cannot follow: only known at run time
            yield (raw, None if isinstance(service, Param) else service,
                   None if isinstance(method, Param) else method)
            return
        for call, bound in callers:
            if bound is None or any(p.name not in bound for p in pending):
                yield (raw, None if isinstance(service, Param) else service,
                       None if isinstance(method, Param) else method)
                continue
            args = []
            for argument in raw.args:
                vararg = self._vararg_param(argument)
                args += bound[vararg.name] if vararg and vararg.function is function \
                    else [argument]
            yield from self._follow(_Raw(
                call, bound[service.name] if isinstance(service, Param) else service,
                bound[method.name] if isinstance(method, Param) else method,
                args, raw.keywords, raw.form, raw.origin, (call,) + raw.via), depth + 1)

    def _callers(self, function):
        """``[(call, {parameter: expression, vararg: [expressions]} or None)]`` of a wrapper
        called by name where it is defined; None if it can escape (a method, a lambda, a
        public module function, a reference other than a call) or is never called."""
        if isinstance(function, ast.Lambda):
            return None
        scope = self.parent[function]
        if isinstance(scope, ast.ClassDef):
            return None
        if isinstance(scope, ast.Module) and not function.name.startswith("_"):
            return None
        found = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Name) and node.id == function.name:
                call = self.parent.get(node)
                if not (isinstance(call, ast.Call) and call.func is node):
                    return None
                found.append((call, self._bind(function, call)))
        return found or None

    @staticmethod
    def _bind(function, call):
        if any(isinstance(a, ast.Starred) for a in call.args) \
                or any(k.arg is None for k in call.keywords):
            return None
        a = function.args
        positional = a.posonlyargs + a.args
        bound = {p.arg: d for p, d in zip(positional[len(positional) - len(a.defaults):],
                                          a.defaults)}
        bound.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
        bound.update({p.arg: value for p, value in zip(positional, call.args)})
        extra = call.args[len(positional):]
        if a.vararg is not None:
            bound[a.vararg.arg] = list(extra)
        elif extra:
            return None
        bound.update({k.arg: k.value for k in call.keywords})
        return bound

    # -- the calls found -------------------------------------------------------------------
    def _where(self, raw):
        where = f"{self.path}:{raw.node.lineno}"
        if raw.via:
            where += " (through line " + ", ".join(
                str(n.lineno) for n in (*raw.via[1:], raw.origin)) + ")"
        return where

    def _finish(self, raw, service, method):
        args = None if any(isinstance(a, ast.Starred) for a in raw.args) else len(raw.args)
        keywords = tuple(raw.keywords)
        where = self._where(raw)
        if isinstance(service, str) and isinstance(method, str):
            self.calls.append(Call(where, service, method, args, keywords, raw.form))
            return
        key = (self.path, self.qualname(raw.origin))
        what = " and the ".join(n for n, v in (("service", service), ("method", method))
                                if not isinstance(v, str))
        pairs = self.dynamic.get(key)
        if pairs is None:
            self.issues.append(f"{where}: the {what} of this call is only known at run time: "
                               f"list the (service, method) pairs it can take in "
                               f"DYNAMIC[{key!r}]")
            return
        self.used.add(("DYNAMIC", key))
        matching = sorted((s, m) for s, m in pairs
                          if (not isinstance(service, str) or s == service)
                          and (not isinstance(method, str) or m == method))
        if not matching:
            self.issues.append(f"{where}: none of DYNAMIC[{key!r}] is a call to "
                               f"{service or '?'}.{method or '?'}")
        for s, m in matching:
            self.calls.append(Call(where + " [DYNAMIC]", s, m, args, keywords, raw.form))

    def _issue(self, node, message):
        self.issues.append(f"{self.path}:{node.lineno}: {message}")


@dataclass
class Collected:
    calls: list
    issues: list
    used: set


def collect(sources, dynamic=None, receivers=None):
    """The RPC calls written in ``sources`` (``{path: source}``)."""
    dynamic = DYNAMIC if dynamic is None else dynamic
    receivers = RECEIVERS if receivers is None else receivers
    result = Collected([], [], set())
    for path, source in sorted(sources.items()):
        module = _Module(source, path, dynamic, receivers).collect()
        result.calls += module.calls
        result.issues += module.issues
        result.used |= module.used
    return result


def consumer_sources():
    paths = {p for pattern in CONSUMER_GLOBS for p in ROOT.glob(pattern)}
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted(paths)
            if str(p.relative_to(ROOT)) not in PLUMBING}


@lru_cache(maxsize=None)
def collected():
    return collect(consumer_sources())

# ---------------------------------------------------------------- the producers


@dataclass(frozen=True)
class Producer:
    name: str
    cls: type
    rpc: dict  # method name -> inspect.Signature, without self

    @property
    def where(self):
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


def _is_rpc(value):
    from nameko.rpc import Rpc

    return any(isinstance(e, Rpc) for e in getattr(value, "nameko_entrypoints", ()))


def _signature(function):
    signature = inspect.signature(function)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


@lru_cache(maxsize=None)
def producers():
    """``{service name: Producer}``: the nameko service classes under services/*/*_service."""
    found, duplicates = {}, []
    for path in sorted(ROOT.glob("services/*/*_service/**/*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)
                   and any(isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant)
                           and isinstance(s.value.value, str)
                           and any(isinstance(t, ast.Name) and t.id == "name"
                                   for t in s.targets) for s in node.body)]
        if not classes:
            continue
        # services/<folder>/<package>/…/<module>.py
        parts = path.relative_to(ROOT / "services").with_suffix("").parts[1:]
        module = importlib.import_module(".".join(parts).removesuffix(".__init__"))
        for class_name in classes:
            cls = getattr(module, class_name)
            members = {n: getattr(cls, n) for n in dir(cls) if not n.startswith("__")}
            if not any(hasattr(v, "nameko_entrypoints") for v in members.values()):
                continue  # a class with a name, not a service (e.g. a delivery channel)
            producer = Producer(cls.name, cls, {n: _signature(v) for n, v in members.items()
                                                if _is_rpc(v)})
            if producer.name in found:
                duplicates.append(f"{producer.name}: {found[producer.name].where} and "
                                  f"{producer.where}")
            found[producer.name] = producer
    assert not duplicates, f"two service classes with one name: {duplicates}"
    return found


def problems(calls, servers):
    """What is wrong with each of ``calls`` against the producers ``servers``."""
    found = []
    for call in calls:
        target = f"{call.service}.{call.method}"
        server = servers.get(call.service)
        if server is None:
            found.append(f"{call.where}: calls {target}, but no service is named "
                         f"{call.service!r} (there are {', '.join(sorted(servers))})")
            continue
        signature = server.rpc.get(call.method)
        if signature is None:
            what = ("is not an RPC entrypoint" if hasattr(server.cls, call.method)
                    else "does not exist")
            found.append(f"{call.where}: calls {target}, but {server.where}.{call.method} "
                         f"{what}")
            continue
        if call.args is None or None in call.keywords:
            found.append(f"{call.where}: calls {target} with unpacked arguments (* or **): "
                         "their number cannot be checked")
            continue
        given = f"{call.args} positional argument(s)" + (
            f" and keyword(s) {', '.join(call.keywords)}" if call.keywords else "")
        try:
            signature.bind(*[None] * call.args, **dict.fromkeys(call.keywords))
        except TypeError as error:
            found.append(f"{call.where}: calls {target}{signature} with {given}: {error}")
    return found

# ---------------------------------------------------------------- the tests


def test_every_rpc_call_binds_to_a_method_its_producer_serves():
    result = collected()
    found = result.issues + problems(result.calls, producers())
    assert not found, "RPC calls that break their producer's contract:\n" + "\n".join(found)


def test_the_tables_of_dynamic_calls_and_receivers_are_current():
    used = collected().used
    stale = [f"DYNAMIC[{key!r}]" for key in DYNAMIC if ("DYNAMIC", key) not in used]
    stale += [f"RECEIVERS[{key!r}]" for key in RECEIVERS if ("RECEIVERS", key) not in used]
    assert not stale, "entries no call site uses any more (moved or renamed?): " + ", ".join(
        stale)


def module_value(path, name):
    """The value of the module-level ``name = <literal>`` in ``path`` (its string constants
    resolved), read without importing the module."""
    source = (ROOT / path).read_text(encoding="utf-8")
    module = _Module(source, path, {}, {})
    value = next(n.value for n in module.tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == name for t in n.targets))

    class Constants(ast.NodeTransformer):
        def visit_Name(self, node):
            return ast.Constant(module.constants[node.id])

    return ast.literal_eval(Constants().visit(value))


def test_the_dynamic_pairs_are_the_codes_own():
    assert set(producers()) == set(SERVICES)
    readers = set(module_value("gateway/crm_gateway/scopes.py", "READERS").values())
    assert DYNAMIC[("gateway/crm_gateway/scopes.py", "_record")] == readers
    assert DYNAMIC[("gateway/crm_gateway/scopes.py", "fetch")] == readers
    assert DYNAMIC[("gateway/crm_gateway/audit_trail.py", "_page_of")] == {
        (source, "audit_trail")
        for source in module_value("gateway/crm_gateway/audit_trail.py", "SOURCES")
        if source != "gateway"}
    assert DYNAMIC[("services/analytics/analytics_service/service.py",
                    "AnalyticsService.rebuild_store.<lambda>")] == {
        (source, "event_history")
        for source in module_value("services/analytics/analytics_service/rebuild.py",
                                   "SOURCES")}


def test_the_collector_found_the_calls_of_every_form_and_consumer():
    calls = collected().calls
    # 133 call sites (a wrapper's callers each count) and 163 checks (a DYNAMIC site once per
    # pair) when this was written: far fewer means the collector has gone blind
    sites = {c.where for c in calls}
    assert len(sites) >= 125 and len(calls) >= 150, (len(sites), len(calls))
    assert {c.form for c in calls} == {"rpc.call", "rpc.call_with", CLIENT, CALLER,
                                       "nameko proxy"}
    assert {c.service for c in calls} == set(SERVICES)
    consumers = {c.where.split("/")[0] + ("/" + c.where.split("/")[1]
                                          if c.where.startswith("services") else "")
                 for c in calls}
    # (sales calls the customer service through kit/crm_kit/references.py only)
    assert consumers >= {"gateway", "kit", "services/service-desk", "services/marketing",
                         "services/analytics"}
    through_wrappers = [c for c in calls if "(through" in c.where]
    assert len(through_wrappers) >= 20  # _page, submit, _report: at their callers' lines


SYNTHETIC = '''\
from crm_gateway import rpc
from crm_kit.rpc import ServiceRpc

CUSTOMER = "customer"


def _page(method, query):
    return rpc.call(CUSTOMER, method, {}, query["page"], query["per_page"])


def views(customer_id, service):
    rpc.call(CUSTOMER, "get_customer", customer_id)
    rpc.call(CUSTOMER, "get_customers", customer_id)
    rpc.call(CUSTOMER, "get_customer", customer_id, "extra")
    rpc.call(CUSTOMER, "update_customer", customer_id, timeout=3)
    rpc.call(CUSTOMER, "get_customer", customer_id, verbose=True)
    rpc.call(CUSTOMER, "stagnation_timer")
    rpc.call("billing", "get_bill", "b1")
    _page("list_customers", {})
    _page("list_customerz", {})
    rpc.call(service, "ping")


class Consumer:
    customers = ServiceRpc("customer")

    def check(self, data):
        self.customers.call("get_customer", data["id"], data)
        return self.customers.get_customer(data["id"])
'''


def _line(fragment):
    return next(n for n, line in enumerate(SYNTHETIC.splitlines(), 1) if fragment in line)


def test_the_checker_reports_what_breaks_a_contract():
    result = collect({"synthetic.py": SYNTHETIC}, dynamic={}, receivers={})
    found = result.issues + problems(result.calls, producers())

    def reported(fragment, *words):
        where = f"synthetic.py:{_line(fragment)}"
        hits = [p for p in found if p.startswith(where + ":") or p.startswith(where + " (")]
        assert any(all(w in p for w in words) for p in hits), (fragment, words, found)

    reported('"get_customers"', "customer.get_customers", "does not exist")
    reported('customer_id, "extra"', "customer.get_customer", "too many positional arguments")
    reported('"update_customer"', "missing a required argument: 'changes'")
    reported("verbose=True", "unexpected keyword argument 'verbose'")
    reported('"stagnation_timer"', "is not an RPC entrypoint")
    reported('"billing"', "no service is named 'billing'")
    reported('_page("list_customerz"', "customer.list_customerz", "does not exist",
             f"(through line {_line('return rpc.call(CUSTOMER, method')})")
    reported("rpc.call(service,", "only known at run time", "DYNAMIC[('synthetic.py', 'views')]")
    reported('data["id"], data)', "customer.get_customer", "too many positional arguments")
    reported("self.customers.get_customer", "only has .call")
    assert len(found) == 10, "\n".join(found)  # and nothing about the good calls
    wrapper, caller = _line("return rpc.call(CUSTOMER, method"), _line('_page("list_customers"')
    assert ("customer", "list_customers", f"synthetic.py:{caller} (through line {wrapper})") \
        in {(c.service, c.method, c.where) for c in result.calls}


def test_a_dynamic_call_is_checked_against_every_pair_listed():
    result = collect({"synthetic.py": SYNTHETIC},
                     dynamic={("synthetic.py", "views"): {("sales", "ping"),
                                                          ("billing", "ping"),
                                                          ("sales", "pong")}},
                     receivers={})
    where = f"synthetic.py:{_line('rpc.call(service,')} [DYNAMIC]"
    assert {(c.service, c.method) for c in result.calls if c.where == where} == {
        ("sales", "ping"), ("billing", "ping")}  # the method written, "ping", picks them
    found = problems([c for c in result.calls if c.where == where], producers())
    assert len(found) == 1 and found[0].startswith(
        f"{where}: calls billing.ping, but no service is named 'billing'"), found
    assert ("DYNAMIC", ("synthetic.py", "views")) in result.used
