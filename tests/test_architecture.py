"""Source-level pins for the dispatcher rule (DESIGN.md §6, SEED.txt's incident).

1. import-linter contracts (pyproject.toml): only ``workspaces.dispatch`` imports
   ``workspaces.backends``; container/HTTP SDKs stay inside the backends; backends never import
   the adapters or dispatch.
2. An AST walk of every project module, so a module that is new (and not yet listed in a
   contract) cannot bypass dispatch either: no import of the backends package, no call of a
   backend verb on something called a backend, no hand-made "is there a backend" test.

Each pin is also shown to fail on a planted violation.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("molecule", "orgs", "workspaces", "api")
ALLOWED_PACKAGE = "workspaces/dispatch/"
BACKEND_VERBS = {"start", "stop", "is_running", "remove_storage", "list_instances", "console"}
# Reading which backends exist is dispatch's job (has_backend); settings defines them.
BACKEND_LISTS = {"MOLECULE_BACKENDS", "MOLECULE_BACKEND_CLASSES"}


def violations(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            names = []
        if any(n == "workspaces.backends" or n.startswith("workspaces.backends.") for n in names):
            found.append(f"{filename}:{node.lineno} imports workspaces.backends")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in BACKEND_VERBS
            and "backend" in ast.unparse(node.func.value).lower()
        ):
            found.append(f"{filename}:{node.lineno} calls {ast.unparse(node.func)}() directly")
        if isinstance(node, ast.Attribute) and node.attr in BACKEND_LISTS:
            found.append(f"{filename}:{node.lineno} reads settings.{node.attr} by hand")
    return found


def project_modules() -> list[Path]:
    modules = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/backends/" in relative or "/migrations/" in relative:
                continue
            if relative.startswith(ALLOWED_PACKAGE):
                continue
            if relative == "molecule/settings.py":
                continue
            modules.append(path)
    return modules


def test_no_module_outside_dispatch_touches_a_backend():
    found = []
    for path in project_modules():
        found += violations(path.read_text(), path.relative_to(ROOT).as_posix())
    assert found == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ("from workspaces.backends.local import LocalBackend\n", "imports workspaces.backends"),
        ("import workspaces.backends\n", "imports workspaces.backends"),
        ("from workspaces import backends\n", "imports workspaces.backends"),
        ("def f(ws):\n    ws.backend_obj.stop(ws)\n", "calls ws.backend_obj.stop() directly"),
        (
            "def f(backend, spec):\n    return backend.start(spec)\n",
            "calls backend.start() directly",
        ),
        (
            "from django.conf import settings\nok = bool(settings.MOLECULE_BACKENDS)\n",
            "reads settings.MOLECULE_BACKENDS by hand",
        ),
    ],
)
def test_the_ast_pin_catches_a_planted_bypass(planted, expected):
    assert any(expected in v for v in violations(planted, "planted.py"))


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract", "line"),
    [
        (
            "workspaces/views.py",
            "from workspaces.backends import local",
            "Only workspaces.dispatch talks to backends",
            "workspaces.views -> workspaces.backends",
        ),
        (
            "api/workspaces.py",
            "import workspaces.backends.docker",
            "Only workspaces.dispatch talks to backends",
            "api.workspaces -> workspaces.backends",
        ),
        (
            "workspaces/admin.py",
            "import docker",
            "Container and HTTP SDKs stay inside the backends",
            "workspaces.admin -> docker",
        ),
        (
            "orgs/importer.py",
            "import httpx",
            "Container and HTTP SDKs stay inside the backends",
            "orgs.importer -> httpx",
        ),
        (
            "workspaces/backends/local.py",
            "from workspaces import dispatch",
            "Backends never import the adapters or dispatch",
            "workspaces.backends.local -> workspaces.dispatch",
        ),
    ],
    ids=[
        "view-imports-backend",
        "api-imports-backend",
        "admin-imports-sdk",
        "org-import-sdk",
        "backend-imports-dispatch",
    ],
)
def test_each_import_contract_catches_a_planted_violation(
    tmp_path, module, planted, contract, line
):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{planted}  # planted\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
    assert line in result.stdout
