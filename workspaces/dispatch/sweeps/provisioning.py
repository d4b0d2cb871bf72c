"""The provision-timeout sweep: provisioning workspaces that never registered in time → failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workspaces import backends, lifecycle
from workspaces.backends import Instance
from workspaces.dispatch.core import console_tail, locked, transition
from workspaces.dispatch.sweeps.failing import CAUSE, Failing, fail_all
from workspaces.dispatch.sweeps.runs import SweepRun, run
from workspaces.models import Workspace

ACTOR = "system:provision-timeout"
PAGE = 1000
PER_RUN = 10 * PAGE
# Console tails read per run: each is a backend call (a file read, an HTTP request). Past this
# many timed-out rows in one run (a backend that failed every start) the rest fail with an
# empty console; the first ones already say why.
TAILS_PER_RUN = 50


def _tails(rows: list[tuple[Any, ...]], budget: int) -> dict[Any, tuple[str, str]]:
    """(instance id, console tail) of the first ``budget`` rows: backend calls, no transaction."""
    tails = {}
    for workspace_id, backend_name, instance_id, url, state in rows[:budget]:
        backend = backends.get(backend_name)
        if backend is None or not instance_id:
            continue
        tails[workspace_id] = (
            instance_id,
            console_tail(backend, Instance(instance_id, url, state)),
        )
    return tails


def _fail_all(
    ids: list[Any], tails: dict[Any, tuple[str, str]], *, cutoff: Any, timeout: float
) -> list[str]:
    """Lock the rows still timed out and fail them (``failing.fail_all``)."""
    rows = list(
        Workspace.objects.filter(
            pk__in=ids,
            status__in=lifecycle.TRANSITIONS[CAUSE].sources,
            status_changed_at__lt=cutoff,
        )
        .select_for_update(skip_locked=True, of=("self",))
        .order_by()
        .values_list("pk", "org_id", "status", "generation", "instance_id")
    )
    failing = []
    for workspace_id, org_id, status, generation, instance_id in rows:
        read_from, tail = tails.get(workspace_id, ("", ""))
        failing.append(
            Failing(
                pk=workspace_id,
                org_id=org_id,
                status=status,
                generation=generation,
                error=f"no registration within {timeout:g}s",
                # A new instance since the read: the lines belong to another one.
                console=tail if read_from == instance_id else "",
            )
        )
    fail_all(failing, actor=ACTOR)
    return [str(row.pk) for row in failing]


def _sweep(result: SweepRun) -> None:
    timeout = settings.MOLECULE_PROVISION_TIMEOUT
    cutoff = timezone.now() - timedelta(seconds=timeout)
    timed_out = Workspace.objects.filter(
        status__in=lifecycle.TRANSITIONS[CAUSE].sources, status_changed_at__lt=cutoff
    )
    budget = TAILS_PER_RUN
    # No ORDER BY: by id, PostgreSQL would walk the whole primary key to find the few timed-out
    # rows; unsorted, it reads them from the index on status. At most PER_RUN a run (memory).
    found = list(
        timed_out.filter(backend__in=backends.enabled())
        .order_by()
        .values_list("pk", "backend", "instance_id", "url", "backend_state")[:PER_RUN]
    )
    pages = [found[start : start + PAGE] for start in range(0, len(found), PAGE)]
    for rows in pages:
        # The console's last lines, read before any lock: no backend call inside a transaction.
        tails = _tails(rows, budget)
        budget -= len(tails)
        result.count("tails read", len(tails))
        with transaction.atomic():
            result.acted += _fail_all(
                [row[0] for row in rows], tails, cutoff=cutoff, timeout=timeout
            )
    # Rows on a backend this console does not run: the per-row path records them settled.
    others = timed_out.exclude(backend__in=backends.enabled()).order_by()
    for workspace_id in others.values_list("pk", flat=True):
        with transaction.atomic():
            workspace = locked(workspace_id)
            if lifecycle.is_allowed(CAUSE, workspace.status) and (
                workspace.status_changed_at < cutoff
            ):
                transition(
                    workspace,
                    CAUSE,
                    actor=ACTOR,
                    payload={"error": f"no registration within {timeout:g}s", "console": ""},
                )
                result.acted.append(str(workspace_id))


def provision_timeout_sweep() -> list[str]:
    """Provisioning workspaces that never registered within the timeout → failed.

    Set-based: a page of rows locked, failed in one UPDATE and one INSERT of events; the console
    tails (backend calls) are read before, outside any transaction, for at most
    ``TAILS_PER_RUN`` rows a run.
    """
    return run("provision-timeout", _sweep).acted
