"""scripts/test fails when the test run leaves something in the checkout (scripts/lib.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; . {LIB}; {script}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git work tree with one commit, one uncommitted edit and an ignored folder."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("var/\n")
    (tmp_path / "kept.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], cwd=tmp_path, check=True)
    (tmp_path / "kept.py").write_text("x = 2\n")  # work in progress: not the run's doing
    return tmp_path


def test_a_run_that_writes_into_the_checkout_fails_and_names_what_it_left(checkout):
    result = bash(
        "before=$(checkout_state); mkdir control; touch oom control/jobs.exchange var.txt; "
        'checkout_unchanged "$before"',
        checkout,
    )

    assert result.returncode == 1
    assert "left files in the checkout" in result.stderr
    for name in ("?? oom", "?? control/jobs.exchange", "?? var.txt"):
        assert name in result.stderr
    assert "kept.py" not in result.stderr


def test_a_run_that_writes_only_where_it_may_passes(checkout):
    result = bash(
        "before=$(checkout_state); mkdir -p var/broker; touch var/broker/x; "
        'checkout_unchanged "$before"',
        checkout,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_outside_a_git_work_tree_there_is_nothing_to_check(tmp_path):
    result = bash('before=$(checkout_state); touch oom; checkout_unchanged "$before"', tmp_path)

    assert result.returncode == 0, result.stderr
