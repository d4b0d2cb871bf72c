"""The test suite's own layout: shared helpers live in tests/support/, nowhere else.

- No module under tests/ imports a test module (``test_*.py``, ``bench_*.py``) or a conftest:
  what two test modules share goes into tests/support/, so a test module can be moved, split or
  deleted without breaking another.
- Every import of ``tests.…`` points into ``tests.support`` (or a package ``ELSEWHERE`` names,
  with its reason), and every ``pytest_plugins`` entry too.
- A conftest.py holds fixtures (and pytest hooks) only: no helper functions, no classes.

Each rule is also shown to fail on a planted violation (written with ``{tests}`` for the package,
so that no line of this file reads as the imports it plants).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Packages of helpers that live beside tests/support/, each with the reason. Keep it empty if
# you can: a helper shared by test modules belongs in tests/support/.
ELSEWHERE: dict[str, str] = {}


def module_name(path: str) -> str:
    """``tests/orgs/test_x.py`` -> ``tests.orgs.test_x``; a package's __init__ is the package."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_test_module(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last == "conftest" or last.startswith(("test_", "bench_"))


def imported(tree: ast.Module, name: str, is_package: bool) -> list[tuple[int, list[str]]]:
    """For every import statement: its line and the modules it may import, relative imports
    resolved; ``from m import x`` may import ``m`` and ``m.x`` (x may be a submodule)."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, [alias.name]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, [module, *(f"{module}.{a.name}" for a in node.names)]))
    return found


def plugins(tree: ast.Module) -> list[tuple[int, str]]:
    """The ``pytest_plugins = [...]`` entries of a module."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            found += [
                (item.lineno, item.value)
                for item in ast.walk(node.value)
                if isinstance(item, ast.Constant) and isinstance(item.value, str)
            ]
    return found


def is_fixture(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
        if isinstance(target, ast.Name) and target.id == "fixture":
            return True
    return False


def in_support(module: str) -> bool:
    """Whether ``module`` is in tests/support/ (or a package allowed beside it). ``tests`` alone
    passes: ``from tests import support`` imports it first."""
    packages = ("tests.support", *ELSEWHERE)
    return module == "tests" or any(module == p or module.startswith(p + ".") for p in packages)


def violations(path: str, source: str) -> list[str]:
    """What ``path`` (relative to the checkout, e.g. "tests/orgs/test_x.py") does against the
    layout rules, one sentence each."""
    tree = ast.parse(source)
    name = module_name(path)
    found = []
    for line, modules in imported(tree, name, path.endswith("__init__.py")):
        ours = [m for m in modules if m == "tests" or m.startswith("tests.")]
        where = f"{path}:{line}"
        if tests := [m for m in ours if is_test_module(m)]:
            for module in tests:
                kind = "a conftest" if module.endswith("conftest") else "a test module"
                found.append(f"{where} imports {module}, {kind}: share through tests/support/")
        # ``from tests import x`` imports "tests" and "tests.x": the first outside is the one.
        elif outside := [m for m in ours if not in_support(m)]:
            found.append(f"{where} imports {outside[0]}, outside tests/support/")
    for line, plugin in plugins(tree):
        if not plugin.startswith("tests.support."):
            found.append(f"{path}:{line} loads the plugin {plugin}, outside tests/support/")
    if path.endswith("/conftest.py") or path == "conftest.py":
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                found.append(f"{path}:{node.lineno} defines class {node.name}: not a fixture")
            elif (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and not is_fixture(node)
                and not node.name.startswith("pytest_")
            ):
                found.append(
                    f"{path}:{node.lineno} defines {node.name}(), not a fixture: "
                    "helpers go to tests/support/"
                )
    return found


def test_no_module_imports_a_test_module_or_a_conftest_and_helpers_live_in_support() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        found += violations(relative, path.read_text())
    assert found == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "tests/orgs/test_new.py",
            "from {tests}.conftest import make_member\n",
            "tests/orgs/test_new.py:1 imports tests.conftest, a conftest",
        ),
        (
            "tests/orgs/test_new.py",
            "from {tests}.workspaces.test_local_backend import agent_pids\n",
            "imports tests.workspaces.test_local_backend, a test module",
        ),
        (
            "tests/orgs/test_new.py",
            "def f():\n    from {tests}.api.conftest import ADMIN_TOKEN\n",
            "tests/orgs/test_new.py:2 imports tests.api.conftest, a conftest",
        ),
        (
            "tests/orgs/test_new.py",
            "from .test_views import login\n",
            "imports tests.orgs.test_views, a test module",
        ),
        (
            "tests/orgs/test_new.py",
            "from . import conftest\n",
            "imports tests.orgs.conftest, a conftest",
        ),
        (
            "tests/orgs/test_new.py",
            "from {tests} import conftest\n",
            "imports tests.conftest, a conftest",
        ),
        (
            "tests/orgs/test_new.py",
            "import {tests}.browser.test_dashboard\n",
            "imports tests.browser.test_dashboard, a test module",
        ),
        (
            "tests/support/new.py",
            "from {tests}.workspaces.test_local_backend import environ\n",
            "tests/support/new.py:1 imports tests.workspaces.test_local_backend, a test module",
        ),
        (
            "tests/orgs/test_new.py",
            "from {tests}.helpers import status_of\n",
            "imports tests.helpers, outside tests/support/",
        ),
        (
            "tests/orgs/test_new.py",
            "from {tests} import isolation\n",
            "imports tests.isolation, outside tests/support/",
        ),
        (
            "tests/orgs/test_new.py",
            'pytest_plugins = ["{tests}.cpdouble_fixtures"]\n',
            "loads the plugin tests.cpdouble_fixtures, outside tests/support/",
        ),
        (
            "tests/orgs/conftest.py",
            "def login(user):\n    return user\n",
            "tests/orgs/conftest.py:1 defines login(), not a fixture",
        ),
        (
            "tests/orgs/conftest.py",
            "class Gate:\n    pass\n",
            "defines class Gate: not a fixture",
        ),
    ],
)
def test_a_planted_violation_is_reported(path: str, source: str, expected: str) -> None:
    found = violations(path, source.format(tests="tests"))
    assert [v for v in found if expected in v], found


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("tests/orgs/test_new.py", "from {tests}.support.users import make_member\n"),
        ("tests/orgs/test_new.py", "from {tests}.support import isolation, services\n"),
        ("tests/orgs/test_new.py", 'pytest_plugins = ["{tests}.support.engine_fixtures"]\n'),
        ("tests/support/isolation/cases.py", "from {tests}.support.isolation import admin\n"),
        ("tests/support/isolation/cases.py", "from . import admin\n"),
        ("tests/orgs/test_new.py", "import pytest\nfrom orgs.models import Org\n"),
        (
            "tests/orgs/conftest.py",
            "import pytest\n\n@pytest.fixture\ndef tree(org):\n    return org\n\n"
            "@pytest.fixture(scope='session')\ndef engine():\n    return 1\n\n"
            "def pytest_configure(config):\n    pass\n",
        ),
    ],
)
def test_what_the_rules_allow_is_not_reported(path: str, source: str) -> None:
    assert violations(path, source.format(tests="tests")) == []
