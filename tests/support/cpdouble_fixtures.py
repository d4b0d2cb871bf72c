"""Fixtures for the controlplane backend's tests: the control-plane double, in a thread.

Loaded by the test modules that need them with
``pytest_plugins = ["tests.support.cpdouble_fixtures"]``, and imported by nobody: the helpers that
go with them are in tests/support/cpdouble.py. The double is real: an HTTP
server on 127.0.0.1 whose VMs are agent processes, children of the test process; teardown stops
all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpdouble import ControlPlaneDouble
from orgs.models import Org
from tests.support.cpdouble import CP_TOKEN
from tests.support.procs import kill_all_under
from workspaces import backends


@pytest.fixture
def cp_double(tmp_path: Path) -> Iterator[ControlPlaneDouble]:
    """A running control-plane double that accepts ``CP_TOKEN``."""
    root = tmp_path / "cp"
    with ControlPlaneDouble(token=CP_TOKEN, root=root) as double:
        yield double
    # close() stopped every VM; this catches anything a broken double would have left behind.
    kill_all_under(root / "vms")


@pytest.fixture
def cp_fleet(settings: Any, live_server: Any, cp_double: ControlPlaneDouble) -> ControlPlaneDouble:
    """The controlplane backend on the double, agents calling back to a live console."""
    settings.MOLECULE_BACKENDS = ["controlplane"]
    settings.MOLECULE_CONTROLPLANE_URL = cp_double.url
    settings.MOLECULE_CONTROLPLANE_TOKEN = CP_TOKEN
    # Few, quick retries: with eager Celery every task retry also runs inline.
    settings.MOLECULE_CONTROLPLANE_RETRIES = 1
    settings.MOLECULE_CONTROLPLANE_BACKOFF = 0.05
    settings.MOLECULE_REGISTRY_URL = live_server.url
    settings.MOLECULE_HEARTBEAT_INTERVAL = 0.5
    backends.reset()
    return cp_double


@pytest.fixture
def cp_org(db: None) -> Org:
    return Org.objects.create(slug="acme", name="Acme Research", backend="controlplane")
