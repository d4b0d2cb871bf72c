"""The AST pins behind the dispatcher rule: what each forbids, where it is allowed, the checker.

import-linter (pyproject.toml) sees imports only. These pins see what an import graph cannot: a
branch on a backend's name, a backend reached by a dotted string or an attribute, a state written
outside dispatch, an event or a Team row written by hand. ``tree.py`` decides which files they
read; ``tests/test_architecture.py`` runs them over the tree and over planted violations.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Pin:
    name: str
    rule: str
    # Paths (relative, posix) where the pinned thing is allowed: "dir/" for a package, else a file.
    allowed: tuple[str, ...]

    def allows(self, path: str) -> bool:
        return any(path.startswith(a) if a.endswith("/") else path == a for a in self.allowed)


BACKENDS = "workspaces/backends/"
DISPATCH = "workspaces/dispatch/"
SETTINGS = "molecule/settings.py"

PINS = {
    pin.name: pin
    for pin in [
        Pin("backend-import", "only dispatch imports workspaces.backends", (BACKENDS, DISPATCH)),
        Pin(
            "probes-import",
            "only the parity code imports workspaces.dispatch.probes",
            (
                "workspaces/parity.py",
                "workspaces/scenarios.py",
                "workspaces/management/commands/parity.py",
            ),
        ),
        Pin("sdk-import", "container and HTTP SDKs are imported only by backends", (BACKENDS,)),
        Pin(
            "backend-string",
            "only dispatch names workspaces.backends in a string",
            # Settings names each backend class by dotted path (MOLECULE_BACKEND_CLASSES): it is
            # read before any app is loaded, and dispatch resolves those paths.
            (BACKENDS, DISPATCH, SETTINGS),
        ),
        Pin("backend-call", "only dispatch calls a backend's verbs", (BACKENDS, DISPATCH)),
        Pin(
            "backend-list",
            "only dispatch reads which backends are configured",
            (BACKENDS, DISPATCH, SETTINGS),
        ),
        Pin(
            "backend-name",
            "only backends and dispatch branch on a backend's name",
            # Settings configures the backends themselves (per-backend hosts and credentials,
            # checked when that backend is enabled) and runs before dispatch can be imported.
            (BACKENDS, DISPATCH, SETTINGS),
        ),
        Pin(
            "state-change",
            "only dispatch and the agent registry change a workspace's state",
            (DISPATCH, "workspaces/lifecycle.py", "workspaces/heartbeats.py"),
        ),
        Pin(
            "event-write",
            "structure events are written only by events.record",
            ("workspaces/events.py",),
        ),
        Pin(
            "team-write",
            "Team rows are written only by dispatch's team code",
            # teams.py owns the team verbs; team_rows.py holds the two row writes that teams.py
            # and verbs.py (a workspace created under a lead) share.
            ("workspaces/dispatch/teams.py", "workspaces/dispatch/team_rows.py"),
        ),
    ]
}

SDKS = {"docker", "httpx", "requests", "urllib3", "podman"}
BACKEND_PACKAGE = "workspaces.backends"
PROBES = "workspaces.dispatch.probes"
BACKEND_VERBS = {"start", "stop", "is_running", "remove_storage", "list_instances", "console"}
# Reading which backends exist is dispatch's job (has_backend); settings defines them.
BACKEND_LISTS = {"MOLECULE_BACKENDS", "MOLECULE_BACKEND_CLASSES"}
BACKEND_NAMES = {"local", "docker", "controlplane"}
BACKEND_MEMBERS = {"LOCAL", "DOCKER", "CONTROLPLANE"}  # orgs.models.Backend
STATE_FUNCTIONS = {
    "workspaces.lifecycle.apply",
    "workspaces.lifecycle.create_event",
    "workspaces.dispatch.core.transition",
}
# Calls that load a module named by a string.
DYNAMIC_IMPORTS = {"import_module", "__import__", "import_string"}
ROW_WRITES = {"create", "get_or_create", "update_or_create", "bulk_create"}
STATUS_WRITES = {"update", "create", "get_or_create", "update_or_create", "bulk_update"}
TEAM_WRITES = ROW_WRITES | {"update", "bulk_update", "delete"}
BACKENDS_IN_STRING = re.compile(r"\bworkspaces\.backends\b")


@dataclass(frozen=True)
class Violation:
    pin: str
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.what} [{self.pin}: {PINS[self.pin].rule}]"


def module_name(path: str) -> tuple[str, bool]:
    """("workspaces.views", False) for workspaces/views.py; packages for __init__.py."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _dotted(node: ast.AST) -> list[str] | None:
    """["Team", "objects", "filter"] for Team.objects.filter(...); calls are looked through."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return parts[::-1]
        else:
            return None


def _is_string(node: ast.AST | None, value: str | None = None) -> bool:
    """A string literal (equal to ``value``, when given)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    return value is None or node.value == value


class _Checker:
    def __init__(self, source: str, path: str) -> None:
        self.path = path
        self.tree = ast.parse(source, path)
        name, is_package = module_name(path)
        self.package = name if is_package else name.rpartition(".")[0]
        self.nodes = list(ast.walk(self.tree))
        self.aliases: dict[str, str] = {}
        for node in self.nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.partition(".")[0]
                        self.aliases[head] = head
            elif isinstance(node, ast.ImportFrom):
                base = self._from(node)
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        # Bare string statements (docstrings) only describe; they load nothing.
        self.inert = {
            id(node.value)
            for node in self.nodes
            if isinstance(node, ast.Expr) and _is_string(node.value)
        }
        self.found: list[Violation] = []

    @cached_property
    def owner(self) -> dict[int, ast.ClassDef]:
        """The class each node is written in: self.status in ApiError is its own field."""
        owner: dict[int, ast.ClassDef] = {}
        for cls in (n for n in self.nodes if isinstance(n, ast.ClassDef)):
            for sub in ast.walk(cls):  # inner classes come later in the walk and win
                owner[id(sub)] = cls
        return owner

    def _from(self, node: ast.ImportFrom) -> str:
        return _absolute(node.module, node.level, self.package)

    def qualified(self, node: ast.AST) -> list[str]:
        """The dotted path of an expression with its first name resolved through the imports."""
        parts = _dotted(node) or []
        if parts and parts[0] in self.aliases:
            parts = self.aliases[parts[0]].split(".") + parts[1:]
        return parts

    def flag(self, pin: str, node: ast.AST, what: str) -> None:
        if not PINS[pin].allows(self.path):
            self.found.append(Violation(pin, self.path, getattr(node, "lineno", 0), what))

    def run(self) -> list[Violation]:
        for node in self.nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imports(node)
            elif isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.Compare):
                self.compare(node)
            elif isinstance(node, ast.MatchValue) and self.is_backend_name(node.value):
                self.flag("backend-name", node, f"matches a case on {ast.unparse(node.value)}")
            elif isinstance(node, ast.Dict):
                self.table(node)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                self.assign(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.string(node, node.value)
            elif isinstance(node, ast.BinOp) and _is_string(node.left) and _is_string(node.right):
                # "workspaces." + "backends.local" is one string to import_string.
                self.string(node, node.left.value + node.right.value)  # type: ignore[attr-defined]
            if isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
                self.reference(node)
        return self.found

    # --- imports ------------------------------------------------------------------------------

    def imported(self, node: ast.AST, names: Iterable[str], how: str) -> None:
        names = [n for n in names if n]
        if any(_within(n, BACKEND_PACKAGE) for n in names):
            self.flag("backend-import", node, f"{how} workspaces.backends")
        if any(_within(n, PROBES) for n in names):
            self.flag("probes-import", node, f"{how} {PROBES}")
        for sdk in sorted({n.partition(".")[0] for n in names} & SDKS):
            self.flag("sdk-import", node, f"{how} {sdk}")

    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            self.imported(node, [a.name for a in node.names], "imports")
            return
        base = self._from(node)
        self.imported(node, [base, *(f"{base}.{a.name}" for a in node.names)], "imports")
        for alias in node.names:
            if f"{base}.{alias.name}" in STATE_FUNCTIONS:
                self.flag("state-change", node, f"imports {base}.{alias.name}")

    def dynamic_import(self, node: ast.Call, function: str) -> None:
        if not node.args or not _is_string(node.args[0]):
            return
        target: str = node.args[0].value  # type: ignore[attr-defined]
        if target.startswith("."):
            anchor = node.args[1] if len(node.args) > 1 else None
            for keyword in node.keywords:
                if keyword.arg == "package":
                    anchor = keyword.value
            level = len(target) - len(target.lstrip("."))
            package = anchor.value if _is_string(anchor) else self.package  # type: ignore[union-attr]
            target = _absolute(target.lstrip(".") or None, level, package)
        self.imported(node, [target], f"loads by name ({function})")

    # --- calls --------------------------------------------------------------------------------

    def call(self, node: ast.Call) -> None:
        func = node.func
        function = _dotted(func)
        last = function[-1] if function else ""
        if last in DYNAMIC_IMPORTS:
            self.dynamic_import(node, last)
        if last == "setattr" and len(node.args) > 1 and _is_string(node.args[1], "status"):
            self.flag("state-change", node, "sets status with setattr()")
        if isinstance(func, ast.Attribute):
            if func.attr in BACKEND_VERBS and "backend" in ast.unparse(func.value).lower():
                self.flag("backend-call", node, f"calls {ast.unparse(func)}() directly")
            self.row_write(node, func)
        model = self.qualified(func)
        if model and model[-1] == "StructureEvent":
            self.flag("event-write", node, "constructs a StructureEvent by hand")
        if model and model[-1] == "Team":
            self.flag("team-write", node, "constructs a Team row by hand")
        if model and model[-1] == "Workspace" and self.writes_status(node):
            self.flag("state-change", node, "creates a Workspace with a status by hand")

    def row_write(self, node: ast.Call, func: ast.Attribute) -> None:
        if func.attr not in ROW_WRITES | STATUS_WRITES | TEAM_WRITES | {"save"}:
            return
        raw = _dotted(func.value) or []
        path = self.qualified(func.value)
        text = ast.unparse(func)

        def rows_of(model: str, related: str) -> bool:
            # The model by name anywhere in the chain, or its related manager (x.events); a
            # related name as the root is a local variable (a dict called "teams"), not the manager.
            return model in path or related in raw[1:]

        if func.attr in ROW_WRITES and rows_of("StructureEvent", "events"):
            self.flag("event-write", node, f"writes an event with {text}()")
        # Team rows: every write, plus lead.team.save() / .delete() through the one-to-one.
        if (func.attr in TEAM_WRITES and rows_of("Team", "teams")) or (
            func.attr in {"save", "delete"} and raw[-1:] == ["team"]
        ):
            self.flag("team-write", node, f"writes a Team row with {text}()")
        if func.attr in STATUS_WRITES and self.writes_status(node) and self.maybe_workspace(path):
            self.flag("state-change", node, f"writes status with {text}()")

    def writes_status(self, node: ast.Call) -> bool:
        for keyword in node.keywords:
            if keyword.arg == "status" and not self.is_org_status(keyword.value):
                return True
            # .update(**{"status": ...}) and get_or_create(defaults={"status": ...})
            if keyword.arg in {None, "defaults", "create_defaults"} and isinstance(
                keyword.value, ast.Dict
            ):
                for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                    if _is_string(key, "status") and not self.is_org_status(value):
                        return True
            if keyword.arg == "fields" and "'status'" in ast.unparse(keyword.value):
                return True
        # bulk_update(rows, ["status", ...])
        return any(
            isinstance(arg, ast.List | ast.Tuple) and any(_is_string(e, "status") for e in arg.elts)
            for arg in node.args
        )

    @staticmethod
    def maybe_workspace(path: list[str]) -> bool:
        # Org.objects....update(status=...) is another model's status; without a model class in
        # sight (a queryset in a variable, org.workspaces, self.model) it is taken for a
        # workspace's: that is the case the pin exists for.
        models = [p for p in path if p[:1].isupper()]
        return not models or "Workspace" in models

    def is_org_status(self, node: ast.AST) -> bool:
        return "OrgStatus" in self.qualified(node)

    # --- state, names, strings ----------------------------------------------------------------

    def reference(self, node: ast.Attribute | ast.Name) -> None:
        name = ".".join(self.qualified(node))
        if name in STATE_FUNCTIONS:
            self.flag("state-change", node, f"uses {name}")
        if not isinstance(node, ast.Attribute):
            return
        if node.attr in BACKEND_LISTS:
            self.flag("backend-list", node, f"reads settings.{node.attr} by hand")
        # A module reached as an attribute needs no import of its own: after `import
        # workspaces.dispatch`, workspaces.backends is there; so is core.backends in dispatch.core.
        owner = self.qualified(node.value)
        if node.attr == "backends" and owner[:1] == ["workspaces"]:
            self.flag("backend-import", node, f"reaches workspaces.backends as {name}")
        if node.attr == "probes" and owner == ["workspaces", "dispatch"]:
            self.flag("probes-import", node, f"reaches {PROBES} as {name}")

    def assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is not None and self.is_org_status(node.value):
            return
        for target in targets:
            for sub in ast.walk(target):
                if not (isinstance(sub, ast.Attribute) and sub.attr == "status"):
                    continue
                # self.status is a workspace's only in Workspace itself (or a subclass, a proxy).
                if ast.unparse(sub.value) == "self" and not self.in_workspace_class(node):
                    continue
                self.flag("state-change", node, f"assigns {ast.unparse(sub)}")

    def in_workspace_class(self, node: ast.AST) -> bool:
        cls = self.owner.get(id(node))
        if cls is None:
            return True  # self outside any class: nothing says it is not a workspace
        names = [cls.name, *(".".join(_dotted(b) or []) for b in cls.bases)]
        return any(n == "Workspace" or n.endswith(".Workspace") for n in names)

    def is_backend_name(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        if _is_string(node):
            return node.value in BACKEND_NAMES  # type: ignore[attr-defined]
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(self.is_backend_name(e) for e in node.elts)
        path = self.qualified(node)
        return len(path) > 1 and path[-1] in BACKEND_MEMBERS and path[-2] == "Backend"

    def compare(self, node: ast.Compare) -> None:
        for operand in [node.left, *node.comparators]:
            if self.is_backend_name(operand):
                self.flag("backend-name", node, f"compares with {ast.unparse(operand)}")
                return

    def table(self, node: ast.Dict) -> None:
        # {"docker": a, "local": b}[ws.backend] is a branch on the name, written as a lookup.
        names = [k for k in node.keys if self.is_backend_name(k)]
        if names:
            self.flag("backend-name", node, f"keys a table by {ast.unparse(names[0])}")

    def string(self, node: ast.AST, value: str) -> None:
        if id(node) in self.inert:
            return
        if BACKENDS_IN_STRING.search(value):
            self.flag("backend-string", node, f"names workspaces.backends in {value!r}")
        if value in BACKEND_LISTS:
            self.flag("backend-list", node, f"names settings.{value} in a string")


def violations(source: str, path: str) -> list[Violation]:
    """Every pin that ``source``, as the module at ``path`` (relative, posix), breaks."""
    return _Checker(source, path).run()
