"""The sweeps Celery beat runs: liveness, provision timeout, health, reconcile and orphans.

Each run takes its sweep's advisory lock (``runs.exclusive``: two workers never run the same
sweep at once; the second returns at once), logs its duration and counts in one INFO line, and
keeps them in ``runs.LAST_RUNS``. The database work is set-based: a page of rows locked with
``SELECT … FOR UPDATE SKIP LOCKED``, moved in one UPDATE per target state, their events written
in one INSERT (``events.record_many``) and their backend calls queued as one message per batch
(``dispatch.batch``); backend listings are compared with the recorded instances streamed in
chunks. A sweep's cost is a few statements a page, whatever the fleet's size.
"""

from __future__ import annotations

from workspaces.dispatch.sweeps.health import health_sweep
from workspaces.dispatch.sweeps.liveness import liveness_sweep
from workspaces.dispatch.sweeps.orphans import orphan_sweep
from workspaces.dispatch.sweeps.provisioning import provision_timeout_sweep
from workspaces.dispatch.sweeps.reconcile import reconcile_sweep
from workspaces.dispatch.sweeps.runs import LAST_RUNS, SweepRun

__all__ = [
    "LAST_RUNS",
    "SweepRun",
    "health_sweep",
    "liveness_sweep",
    "orphan_sweep",
    "provision_timeout_sweep",
    "reconcile_sweep",
]
