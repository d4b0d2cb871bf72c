"""The health sweep: recorded instances a backend no longer runs → offline → restart, or failed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F

from workspaces import backends
from workspaces.backends import Backend, BackendError, Instance
from workspaces.dispatch.core import console_tail, locked, transition
from workspaces.dispatch.sweeps.offline import offline_then_restart
from workspaces.dispatch.sweeps.runs import SweepRun, run
from workspaces.models import Status, Workspace

log = logging.getLogger("workspaces.dispatch.sweeps")

ACTOR = "system:health"
# Rows fetched per round trip while streaming the recorded instances.
CHUNK = 2000
# Dead instances acted on per run, each a console read, a probe and a short transaction: a
# backend that lost everything at once (a Docker daemon restarted) is worked through over a few
# runs instead of one run that outlasts its interval.
ACT_PER_RUN = 500
JUDGED = (Status.PROVISIONING, Status.ONLINE, Status.DEGRADED)


@dataclass(frozen=True)
class Recorded:
    pk: Any
    instance_id: str
    url: str
    state: dict[str, Any]
    generation: int
    instance_generation: int

    @property
    def instance(self) -> Instance:
        return Instance(self.instance_id, self.url, dict(self.state))


def _recorded(name: str) -> Any:
    # Only instances of the row's current generation: after a restart or an auto-restart the
    # row still records the previous generation's (dead) instance until reconcile replaces it,
    # and judging the new generation by it would fail a workspace that is starting fine.
    return (
        Workspace.objects.filter(backend=name, status__in=JUDGED)
        .exclude(instance_id="")
        .filter(instance_generation=F("generation"))
        .order_by()
        .values_list(
            "pk", "instance_id", "url", "backend_state", "generation", "instance_generation"
        )
        .iterator(chunk_size=CHUNK)
    )


def _dead(name: str, backend: Backend, result: SweepRun, room: int) -> list[Recorded]:
    """Recorded instances the backend does not run, at most ``room``: memory bounded by that."""
    try:
        running = backend.running_instances()
    except BackendError as error:
        log.warning("health sweep: cannot list %s instances: %s", name, error.message)
        return []
    listed = None if running is None else set(running)
    missing = []
    for values in _recorded(name):
        row = Recorded(*values)
        result.count("recorded")
        if listed is not None and row.instance_id in listed:
            continue
        if listed is None and not _not_running(backend, row):
            continue  # a backend that cannot list: asked about each, as the rows stream by
        missing.append(row)
        if len(missing) >= room:
            break
    if listed is None:
        return missing
    # Asked about once more: the listing is older than the rows read after it, and an instance
    # started in between is not in it.
    return [row for row in missing if _not_running(backend, row)]


def _not_running(backend: Backend, row: Recorded) -> bool:
    try:
        return not backend.is_running(row.instance)
    except BackendError as error:
        log.warning("health probe of %s failed: %s", row.pk, error.message)
        return False


def _act(row: Recorded, tail: str, result: SweepRun) -> None:
    with transaction.atomic():
        current = locked(row.pk)
        if (current.generation, current.instance_generation, current.instance_id) != (
            row.generation,
            row.instance_generation,
            row.instance_id,
        ):
            return
        if current.status == Status.PROVISIONING:
            transition(
                current,
                "provision_failed",
                actor=ACTOR,
                payload={
                    "error": "the instance exited before the agent registered",
                    "console": tail,
                },
            )
        elif current.status in (Status.ONLINE, Status.DEGRADED):
            offline_then_restart(
                current,
                "instance_lost",
                actor=ACTOR,
                reason=f"the {current.backend} backend reports the instance is not running",
                console=tail,
            )
        else:
            return
        result.acted.append(str(row.pk))


def _sweep(result: SweepRun) -> None:
    room = ACT_PER_RUN
    for name in backends.enabled():
        backend = backends.get(name)
        assert backend is not None
        for row in _dead(name, backend, result, room):
            room -= 1
            # Why it died (an out-of-memory kill, a crash) is in its last lines; read them before
            # taking the row's lock: no backend call runs inside a transaction.
            _act(row, console_tail(backend, row.instance), result)
        if room <= 0:
            break


def health_sweep() -> list[str]:
    """Compare each backend's one listing of what runs with the recorded instances; act on the
    missing ones.

    Online/degraded → offline → auto-restart. Provisioning → failed (the agent died before it
    registered; restarting it would only loop). The recorded instances are streamed, so memory
    does not grow with the fleet; each missing one is asked about once more, then its row locked
    and re-checked, so a verb that changed it meanwhile wins.
    """
    return run("health", _sweep).acted
