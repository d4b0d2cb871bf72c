"""What the pins read: every module and template of the console, found on disk.

Nothing here lists the modules it checks: a module that is new is covered the day it is written,
and a new top-level package must be a root package (import-linter's and the walk's) or be named
out of scope below, with the reason.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support.architecture.pins import BACKEND_NAMES, Violation, violations

ROOT = Path(__file__).resolve().parents[3]

# Top-level packages deliberately outside both import-linter's root_packages and the walk. Every
# other top-level package must be a root package (test_every_top_level_package_is_in_scope), so a
# new app cannot start life unchecked.
OUT_OF_SCOPE = {
    # Tests set up states by hand and drive backends directly; they are not the console.
    "tests",
    # The benchmark suite (scripts/bench), for the same reasons: it seeds fleets by SQL and
    # stands in for the machines behind the backends.
    "bench",
    # The stand-in for the external control plane: the far side of the controlplane backend's
    # HTTP API, not console code. It imports nothing of the console (pinned), so the two
    # commands that start it cannot reach a backend through it.
    "cpdouble",
}


# Out of scope although they import the console: harnesses around it. The console must never
# import them (scope_problems), so they cannot become a way around a pin.
HARNESSES = {"tests", "bench"}


def root_packages(root: Path = ROOT) -> list[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["root_packages"])


def top_level_packages(root: Path = ROOT) -> set[str]:
    """Every top-level directory that holds Python: a package, or a namespace of modules."""
    return {
        path.name
        for path in root.iterdir()
        if path.is_dir()
        and not path.name.startswith(".")
        and (any(path.glob("*.py")) or (path / "__init__.py").exists())
    }


def scanned_modules(root: Path = ROOT) -> Iterator[Path]:
    """Every module the pins cover: found on disk, so a new module is in from its first commit."""
    yield from sorted(root.glob("*.py"))  # manage.py and any other top-level script
    for package in root_packages(root):
        for path in sorted((root / package).rglob("*.py")):
            # Migrations are frozen history run with historical models; they are not the code
            # that serves a request or a task.
            if "migrations" not in path.relative_to(root).parts:
                yield path


# Modules nobody has written yet, in apps other than workspaces: both import-linter and the walk
# must catch them (tests/test_import_contracts.py, tests/test_architecture.py).
BRAND_NEW_MODULES = {
    "orgs/newthing.py": (
        "import docker\n"
        "from workspaces.backends import local\n"
        "\n\n"
        "def start(spec):\n"
        "    return local.LocalBackend().start(spec)\n"
    ),
    "api/fresh.py": (
        "from workspaces.dispatch import probes\n"
        "\n\n"
        "def is_docker(ws):\n"
        '    return ws.backend == "docker"\n'
    ),
}


def scope_problems(root: Path = ROOT) -> list[str]:
    """Why the pins would not see all of the console's code (empty when they do)."""
    roots = set(root_packages(root))
    problems = [
        f"{name}/ holds Python but is neither a root package (pyproject.toml) nor out of scope"
        for name in sorted(top_level_packages(root) - roots - OUT_OF_SCOPE)
    ]
    # Out of scope only while it cannot be a way around the rule: it imports no console code.
    for name in sorted(OUT_OF_SCOPE - HARNESSES):
        for path in sorted((root / name).rglob("*.py")):
            problems += _imports_of(path, roots, root)
    # A harness may import the console, never the reverse.
    for path in scanned_modules(root):
        problems += _imports_of(path, HARNESSES, root)
    return problems


def _imports_of(path: Path, packages: set[str], root: Path) -> list[str]:
    """``path:line imports module`` for each absolute import of one of ``packages``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        else:
            continue
        found += [
            f"{path.relative_to(root).as_posix()}:{node.lineno} imports {m}"
            for m in modules
            if m.partition(".")[0] in packages
        ]
    return found


def tree_violations(root: Path = ROOT) -> list[Violation]:
    found: list[Violation] = []
    for path in scanned_modules(root):
        found += violations(path.read_text(), path.relative_to(root).as_posix())
    return found


# Templates branch too: {% if ws.backend == "docker" %} hides or shows something per backend.
_QUOTED_NAME = rf"""["'](?:{"|".join(sorted(BACKEND_NAMES))})["']"""
_TEST = r"(?:==|!=|\bin\b)"  # "not in" ends in "in"
TEMPLATE_BRANCH = re.compile(
    rf"\{{%-?\s*(?:if|elif)\b[^%]*?(?:{_TEST}\s*{_QUOTED_NAME}|{_QUOTED_NAME}\s*{_TEST})[^%]*%\}}"
)


def template_violations(source: str, path: str) -> list[Violation]:
    return [
        Violation(
            "backend-name",
            path,
            source.count("\n", 0, match.start()) + 1,
            f"branches on a backend's name in {match.group(0)!r}",
        )
        for match in TEMPLATE_BRANCH.finditer(source)
    ]


def template_tree_violations(root: Path = ROOT) -> list[Violation]:
    found: list[Violation] = []
    for folder in [root / "templates", *(root / p / "templates" for p in root_packages(root))]:
        for path in sorted(folder.rglob("*.html")) if folder.is_dir() else []:
            found += template_violations(path.read_text(), path.relative_to(root).as_posix())
    return found
