"""import-linter's half of the dispatcher rule (pyproject.toml, ``[tool.importlinter]``).

``protected`` contracts name who may import the backends (dispatch), the container and HTTP SDKs
(the backends) and the parity probes (the parity code), so every other module is forbidden to,
including one written tomorrow in any app. The AST pins (``tests/test_architecture.py``) see what
an import graph cannot. Here: the contracts hold, cover every top-level package, and each breaks
on violations planted in a copy of the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support.architecture.tree import BRAND_NEW_MODULES, ROOT, root_packages, scope_problems

BACKENDS = "Only workspaces.dispatch talks to backends"
SDKS = "Container and HTTP SDKs stay inside the backends"
PROBES = "Only the parity code reads backends through probes"
BACKEND_DEPENDENCIES = "Backends never import the adapters or dispatch"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def contracts(root: Path = ROOT) -> list[dict[str, Any]]:
    config = tomllib.loads((root / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def broken_sections(stdout: str) -> dict[str, str]:
    """Each broken contract's report, by contract name (headings are underlined with dashes)."""
    lines = stdout.splitlines()
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line, underline in zip(lines, [*lines[1:], ""], strict=True):
        if line and underline == "-" * len(line) and line != "Broken contracts":
            current = sections.setdefault(line, [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(body) for name, body in sections.items()}


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_the_boundaries_name_who_may_import_not_who_may_not() -> None:
    # A forbidden contract lists its importers, and a module nobody listed was the gap: the
    # boundaries must stay "protected" (only allowed_importers may import).
    by_name = {c["name"]: c for c in contracts()}
    for name in (BACKENDS, SDKS, PROBES):
        assert by_name[name]["type"] == "protected", name
        assert "source_modules" not in by_name[name], name


def test_every_top_level_package_is_in_scope() -> None:
    assert scope_problems() == []


def test_a_new_top_level_package_must_join_the_root_packages(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in root_packages():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "__init__.py").write_text("")
    (tmp_path / "cpdouble").mkdir()
    (tmp_path / "cpdouble" / "server.py").write_text("from workspaces import dispatch\n")
    (tmp_path / "orgs" / "timing.py").write_text("import os\nfrom bench import seed\n")
    problems = scope_problems(tmp_path)
    assert any(p.startswith("billing/ holds Python") for p in problems), problems
    assert "cpdouble/server.py:1 imports workspaces" in problems
    # The harnesses (tests, bench) import the console; the console never imports them.
    assert "orgs/timing.py:2 imports bench" in problems


# (module, appended line or None for a brand-new module's own source, contract, report line).
# One copy of the tree carries every plant and lint-imports runs once: each contract must name
# its own plant in its own section.
PLANTS = [
    ("orgs/newthing.py", None, BACKENDS, "orgs.newthing -> workspaces.backends.local (l.2)"),
    ("orgs/newthing.py", None, SDKS, "orgs.newthing -> docker (l.1)"),
    ("api/fresh.py", None, PROBES, "api.fresh -> workspaces.dispatch.probes (l.1)"),
    ("workspaces/heartbeats.py", "import docker", SDKS, "workspaces.heartbeats -> docker"),
    ("orgs/importer.py", "import httpx", SDKS, "orgs.importer -> httpx"),
    ("api/keys.py", "import requests", SDKS, "api.keys -> requests"),
    ("workspaces/dispatch/verbs.py", "import httpx", SDKS, "workspaces.dispatch.verbs -> httpx"),
    (
        "workspaces/views.py",
        "from workspaces.backends import local",
        BACKENDS,
        "workspaces.views -> workspaces.backends.local",
    ),
    (
        "api/workspaces.py",
        "import workspaces.backends.docker",
        BACKENDS,
        "api.workspaces -> workspaces.backends.docker",
    ),
    (
        "workspaces/editing.py",
        "from .backends import controlplane",
        BACKENDS,
        "workspaces.editing -> workspaces.backends.controlplane",
    ),
    (
        "workspaces/parity_views.py",
        "from workspaces.dispatch import probes",
        PROBES,
        "workspaces.parity_views -> workspaces.dispatch.probes",
    ),
    (
        "workspaces/backends/local.py",
        "from workspaces import dispatch",
        BACKEND_DEPENDENCIES,
        "workspaces.backends.local -> workspaces.dispatch",
    ),
]


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tree = tmp_path_factory.mktemp("planted")
    for package in root_packages():
        shutil.copytree(ROOT / package, tree / package)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    for path, source in BRAND_NEW_MODULES.items():
        (tree / path).write_text(source)
    for module, line, _, _ in PLANTS:
        if line is not None:
            # Others edit this tree too: a module renamed meanwhile gets its plant all the same.
            target = tree / module
            before = target.read_text() if target.exists() else ""
            target.write_text(before + f"\n{line}  # planted\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout + result.stderr
    return broken_sections(result.stdout)


@pytest.mark.parametrize(
    ("module", "line", "contract", "reported"),
    PLANTS,
    ids=[f"{module}->{reported.split(' -> ')[1]}" for module, _, _, reported in PLANTS],
)
def test_each_contract_catches_a_planted_import(
    planted_report: dict[str, str], module: str, line: str | None, contract: str, reported: str
) -> None:
    assert contract in planted_report, f"{contract} was kept: {sorted(planted_report)}"
    assert reported in planted_report[contract]


def test_every_contract_has_a_planted_import() -> None:
    assert {contract for _, _, contract, _ in PLANTS} == {c["name"] for c in contracts()}
