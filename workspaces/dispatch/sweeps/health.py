"""The health sweep: recorded instances a backend no longer runs → offline → restart, or failed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.db.models import F

from workspaces import backends, lifecycle
from workspaces.backends import Backend, BackendError, Instance
from workspaces.dispatch.core import console_tail
from workspaces.dispatch.sweeps.failing import Failing, fail_all
from workspaces.dispatch.sweeps.offline import Silent, offline_then_restart_all
from workspaces.dispatch.sweeps.runs import SweepRun, run
from workspaces.models import Status, Workspace

log = logging.getLogger("workspaces.dispatch.sweeps")

ACTOR = "system:health"
LOST = "instance_lost"
FAILED = "provision_failed"
# Rows fetched per round trip while streaming the recorded instances.
CHUNK = 2000
# Dead instances acted on per transaction, and per run (memory: a small record each). A backend
# that lost everything at once (a Docker daemon restarted) is worked through over a few runs.
PAGE = 1000
PER_RUN = 10 * PAGE
# Console tails read per run: each is a backend call. Past it, the rest go without their last
# lines; the first ones already say what happened.
TAILS_PER_RUN = 50
JUDGED = (Status.PROVISIONING, Status.ONLINE, Status.DEGRADED)


@dataclass(frozen=True)
class Recorded:
    pk: Any
    instance_id: str
    generation: int
    instance_generation: int
    # Read only where they are needed (a probe, a console tail): decoding every row's JSON
    # state would be most of the cost of streaming the fleet.
    url: str = ""
    state: dict[str, Any] | None = None

    @property
    def instance(self) -> Instance:
        return Instance(self.instance_id, self.url, dict(self.state or {}))


NARROW = ("pk", "instance_id", "generation", "instance_generation")
WIDE = (*NARROW, "url", "backend_state")


def _recorded(name: str, columns: tuple[str, ...]) -> Any:
    # Only instances of the row's current generation: after a restart or an auto-restart the
    # row still records the previous generation's (dead) instance until reconcile replaces it,
    # and judging the new generation by it would fail a workspace that is starting fine.
    return (
        Workspace.objects.filter(backend=name, status__in=JUDGED)
        .exclude(instance_id="")
        .filter(instance_generation=F("generation"))
        .order_by()
        .values_list(*columns)
        .iterator(chunk_size=CHUNK)
    )


def _listing(name: str, backend: Backend) -> set[str] | None:
    running = backend.running_instances()
    return None if running is None else set(running)


def _not_running(backend: Backend, row: Recorded) -> bool:
    try:
        return not backend.is_running(row.instance)
    except BackendError as error:
        log.warning("health probe of %s failed: %s", row.pk, error.message)
        return False


def _dead(name: str, backend: Backend, result: SweepRun) -> list[Recorded]:
    """Recorded instances the backend does not run, at most ``PER_RUN``."""
    try:
        listed = _listing(name, backend)
    except BackendError as error:
        log.warning("health sweep: cannot list %s instances: %s", name, error.message)
        return []
    missing, seen = [], 0
    for values in _recorded(name, NARROW if listed is not None else WIDE):
        seen += 1
        # The common case first, on the bare tuple: a running instance costs one set lookup.
        if listed is not None and values[1] in listed:
            continue
        row = Recorded(*values)
        if listed is None and not _not_running(backend, row):
            continue  # a backend that cannot list: asked about each, as the rows stream by
        missing.append(row)
        if len(missing) >= PER_RUN:
            break
    result.count("recorded", seen)
    if listed is None or not missing:
        return missing
    # The listing is older than the rows read after it: an instance started in between is not
    # in it. A second listing, taken after the rows, settles it in one call.
    try:
        again = _listing(name, backend) or set()
    except BackendError as error:
        log.warning("health sweep: cannot list %s instances: %s", name, error.message)
        return []
    return [row for row in missing if row.instance_id not in again]


def _with_state(rows: list[Recorded]) -> list[Recorded]:
    """The rows with their instance's URL and state, read in one query (for console tails)."""
    if not rows or rows[0].state is not None:
        return rows
    found = {
        pk: (url, state)
        for pk, url, state in Workspace.objects.filter(pk__in=[row.pk for row in rows])
        .order_by()
        .values_list("pk", "url", "backend_state")
    }
    return [
        replace(row, url=found[row.pk][0], state=found[row.pk][1])
        for row in rows
        if row.pk in found
    ]


def _act_all(name: str, page: list[Recorded], tails: dict[Any, str]) -> list[str]:
    """Lock the page's rows, keep those still on the instance judged, move them in bulk."""
    recorded = {row.pk: row for row in page}
    rows = (
        Workspace.objects.filter(pk__in=list(recorded))
        .select_for_update(skip_locked=True, of=("self",))
        .order_by()
        .values_list("pk", "org_id", "status", "generation", "instance_generation", "instance_id")
    )
    failing, lost = [], []
    for pk, org_id, status, generation, instance_generation, instance_id in rows:
        judged = recorded[pk]
        if (generation, instance_generation, instance_id) != (
            judged.generation,
            judged.instance_generation,
            judged.instance_id,
        ):
            continue  # a verb or reconcile moved it on since the rows were read
        tail = tails.get(pk, "")
        if lifecycle.is_allowed(FAILED, status):
            error = "the instance exited before the agent registered"
            failing.append(Failing(pk, org_id, status, generation, error=error, console=tail))
        elif lifecycle.is_allowed(LOST, status):
            reason = f"the {name} backend reports the instance is not running"
            lost.append(Silent(pk, org_id, status, generation, reason=reason, console=tail))
    fail_all(failing, actor=ACTOR)
    offline_then_restart_all(lost, LOST, actor=ACTOR)
    return [str(row.pk) for row in [*failing, *lost]]


def _sweep(result: SweepRun) -> None:
    budget = TAILS_PER_RUN
    for name in backends.enabled():
        backend = backends.get(name)
        assert backend is not None
        dead = _dead(name, backend, result)
        for start in range(0, len(dead), PAGE):
            page = dead[start : start + PAGE]
            # Why it died (an out-of-memory kill, a crash) is in its last lines; read before
            # taking the rows' locks: no backend call runs inside a transaction.
            tails = {
                row.pk: console_tail(backend, row.instance) for row in _with_state(page[:budget])
            }
            budget -= len(tails)
            result.count("tails read", len(tails))
            with transaction.atomic():
                result.acted += _act_all(name, page, tails)


def health_sweep() -> list[str]:
    """Compare each backend's listing of what runs with the recorded instances; act on the
    missing ones.

    Online/degraded → offline → auto-restart. Provisioning → failed (the agent died before it
    registered; restarting it would only loop). The recorded instances are streamed, so memory
    does not grow with the fleet; a second listing confirms the missing ones; their rows are
    locked and re-checked, so a verb that changed one meanwhile wins, and moved in bulk.
    """
    return run("health", _sweep).acted
