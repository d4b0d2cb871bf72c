"""Every parity row's scenario, on every backend, agrees with what the backend declares.

This is ``manage.py parity --check`` as a test: a declared "parity" must pass, and a declared
"divergent" must still fail, so a declaration that went stale in either direction (drift, or a
divergence that was fixed and never re-declared) fails CI.
"""

from __future__ import annotations

import pytest

from tests.support.harness import Harness
from workspaces import parity, scenarios
from workspaces.backends import Verdict
from workspaces.dispatch import probes

pytestmark = pytest.mark.django_db(transaction=True)
pytest_plugins = ["tests.support.engine_fixtures", "tests.support.cpdouble_fixtures"]


@pytest.mark.parametrize("row", parity.ROWS, ids=parity.ROW_IDS)
def test_the_scenario_agrees_with_the_declaration(backend: Harness, row: parity.Row, settings):
    settings.MOLECULE_ORPHAN_GRACE = 0
    declared = probes.declared(backend.name)[row.id]
    if declared.verdict == Verdict.UNSUPPORTED:
        pytest.skip(f"{backend.name} declares {row.id} unsupported: {declared.note}")
    with scenarios.Context.open(backend=backend.name, label="test", timeout=60) as context:
        if declared.verdict == Verdict.PARITY:
            row.scenario(context)
        else:
            with pytest.raises(scenarios.ScenarioFailed):
                row.scenario(context)
