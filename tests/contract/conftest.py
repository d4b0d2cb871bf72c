"""The contract tests' ``backend`` fixture: every contract test runs once per backend harness.

The harnesses, each backend seen from outside, are in tests/support/harness.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.harness import HARNESSES, Harness


@pytest.fixture(params=list(HARNESSES))
def backend(request: pytest.FixtureRequest, org: Any) -> Harness:
    """The backend under test, configured with a live console; the org's workspaces use it."""
    harness = HARNESSES[request.param](request)
    org.backend = harness.name
    org.save(update_fields=["backend"])
    return harness
