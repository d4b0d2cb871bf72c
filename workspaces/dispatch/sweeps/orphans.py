"""The orphan sweep: instances no live workspace owns, stopped once past a grace period."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workspaces import backends
from workspaces.backends import BackendError, Instance
from workspaces.dispatch.sweeps.runs import SweepRun, run
from workspaces.events import Pending, record_many
from workspaces.models import EventType, OrphanSuspect, Status, Workspace

log = logging.getLogger("workspaces.dispatch.sweeps")

ACTOR = "system:orphan-sweep"
CHUNK = 2000


def _unowned(name: str, running: set[str]) -> set[str]:
    """The listed instances no live row records: the rows streamed, ``CHUNK`` at a time.

    One pass over the backend's rows rather than ``instance_id IN (<the whole listing>)``:
    memory stays the listing's, whatever the fleet, and the statement stays small.
    """
    unowned = set(running)
    owned = (
        Workspace.objects.filter(backend=name)
        .exclude(status=Status.REMOVED)
        .exclude(instance_id="")
        .order_by()
        .values_list("instance_id", flat=True)
        .iterator(chunk_size=CHUNK)
    )
    for instance_id in owned:
        unowned.discard(instance_id)
    return unowned


def _sweep(result: SweepRun, grace: timedelta) -> None:
    now = timezone.now()
    for name in backends.enabled():
        backend = backends.get(name)
        assert backend is not None
        try:
            running = set(backend.list_instances())
        except BackendError as error:
            log.warning("orphan sweep: cannot list %s instances: %s", name, error.message)
            continue
        result.count("listed", len(running))
        unowned = _unowned(name, running)
        OrphanSuspect.objects.filter(backend=name).exclude(instance_id__in=unowned).delete()
        if not unowned:
            continue
        # Usually a handful; a new suspect is written in one INSERT with the others.
        seen = dict(
            OrphanSuspect.objects.filter(backend=name, instance_id__in=unowned).values_list(
                "instance_id", "first_seen_at"
            )
        )
        OrphanSuspect.objects.bulk_create(
            [
                OrphanSuspect(backend=name, instance_id=instance_id, first_seen_at=now)
                for instance_id in sorted(unowned - seen.keys())
            ],
            ignore_conflicts=True,
        )
        stopped = []
        for instance_id in sorted(unowned):
            if now - seen.get(instance_id, now) < grace:
                continue
            try:
                backend.stop(Instance(instance_id))
            except BackendError as error:
                log.warning("orphan sweep: cannot stop %s: %s", instance_id, error.message)
                continue
            stopped.append(instance_id)
        if not stopped:
            continue
        # The stops are backend calls, made outside any transaction; what they did is recorded
        # together, in one INSERT of events and one DELETE.
        with transaction.atomic():
            record_many(
                Pending(
                    EventType.ORPHAN_REMOVED,
                    actor=ACTOR,
                    payload={"backend": name, "instance_id": instance_id},
                )
                for instance_id in stopped
            )
            OrphanSuspect.objects.filter(backend=name, instance_id__in=stopped).delete()
        result.acted += stopped


def orphan_sweep(*, grace: float | None = None) -> list[str]:
    """Stop instances that no live workspace owns, once they stayed unowned past a grace period.

    The grace period (``MOLECULE_ORPHAN_GRACE`` unless given) covers an instance whose start has
    not committed yet. Storage is kept: an orphan's data is the operator's to delete. Each stop
    writes an ORPHAN_REMOVED event.
    """
    wait = timedelta(seconds=settings.MOLECULE_ORPHAN_GRACE if grace is None else grace)
    return run("orphan", lambda result: _sweep(result, wait)).acted
