"""The chaos suite's stack, started once for the module, and its convergence table.

The stack is described in tests/support/chaos.py. Each fault test records its convergence time
with ``convergence``; the table is printed at the end of the session (``-m chaos`` selects these
tests alone).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import services
from tests.support.chaos import RESULTS, Redis, Result, Stack, create_database, table


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: faults injected into a real stack (tests/chaos; run with -m chaos)"
    )
    config.stash[RESULTS] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, [])
    if results:
        terminalreporter.section("chaos: convergence after each fault")
        for line in table(results):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")
    root = tmp_path_factory.mktemp("chaos")
    # Not under tmp_path (0700): agents run as users of their own when the suite runs as root,
    # and must pass through their root's parents.
    agents = Path(tempfile.mkdtemp(prefix="molecule-chaos-agents-"))
    agents.chmod(0o711)
    redis = Redis(services.free_port()).start()
    try:
        with services.postgres(services.free_port()) as pg:
            stack = Stack(root, agents, create_database(pg, "chaos"), pg, redis)
            try:
                yield stack.start()
            finally:
                stack.stop()
    finally:
        redis.stop()
        shutil.rmtree(agents, ignore_errors=True)


@pytest.fixture
def stack(chaos_stack: Stack) -> Iterator[Stack]:
    """The stack, converged before the test; what the test created is deleted after it, so
    few agents run at a time and a failed test's leftovers do not count against the next."""
    chaos_stack.converge(60)
    yield chaos_stack
    chaos_stack.clean_up()


@pytest.fixture
def convergence(request: pytest.FixtureRequest) -> Callable[..., Result]:
    """``convergence(fault, bound)``: a row of the table, filled in by the test."""

    def row(fault: str, bound: float) -> Result:
        result = Result(fault, bound)
        request.config.stash[RESULTS].append(result)
        return result

    return row
