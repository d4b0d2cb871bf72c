"""Online/degraded → offline → auto-restart: per row (health) and for a whole set (liveness).

Both follow ``lifecycle.TRANSITIONS`` and write the same events: the cause's move to offline,
then either the auto-restart or, for a workspace restarted ``MOLECULE_CRASH_LOOP_LIMIT`` times
within ``MOLECULE_CRASH_LOOP_WINDOW``, a note that it is held offline.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, TextField, Value, When
from django.utils import timezone

from workspaces import lifecycle
from workspaces.dispatch.batch import enqueue_generations
from workspaces.dispatch.core import AGENT_REPORT, transition
from workspaces.events import Pending, record, record_many
from workspaces.models import EventType, StructureEvent, Workspace

RESTART = "auto_restart"


def crash_loop_note() -> dict[str, str]:
    return {
        "reason": f"not restarted: {settings.MOLECULE_CRASH_LOOP_LIMIT} automatic "
        f"restarts within {settings.MOLECULE_CRASH_LOOP_WINDOW:g}s; restart it by hand",
        "cause": "crash_loop",
    }


def crash_looping(workspace_ids: Iterable[Any]) -> set[Any]:
    """The workspaces among these with the crash-loop limit of auto-restarts in the window.

    One aggregate query, whatever the number of workspaces.
    """
    since = timezone.now() - timedelta(seconds=settings.MOLECULE_CRASH_LOOP_WINDOW)
    return set(
        StructureEvent.objects.filter(
            workspace_id__in=list(workspace_ids),
            event_type=EventType.WORKSPACE_PROVISIONING,
            payload__cause=RESTART,
            created_at__gte=since,
        )
        .order_by()
        .values("workspace_id")
        .annotate(restarts=Count("id"))
        .filter(restarts__gte=settings.MOLECULE_CRASH_LOOP_LIMIT)
        .values_list("workspace_id", flat=True)
    )


def offline_then_restart(
    workspace: Workspace, cause: str, *, actor: str, reason: str, console: str = ""
) -> None:
    """One locked row: the caller holds its lock, in its transaction."""
    transition(workspace, cause, actor=actor, payload={"reason": reason, "console": console})
    workspace.last_exit_reason, workspace.last_exit_at = reason, timezone.now()
    fields = ["last_exit_reason", "last_exit_at"]
    if workspace.pk in crash_looping([workspace.pk]):
        workspace.crash_looping = True
        workspace.save(update_fields=[*fields, "crash_looping", "updated_at"])
        record(
            EventType.WORKSPACE_OFFLINE, workspace=workspace, actor=actor, payload=crash_loop_note()
        )
        return
    transition(workspace, RESTART, actor=actor, payload={"reason": reason})
    workspace.restart_count += 1
    workspace.save(update_fields=[*fields, "restart_count", "updated_at"])


@dataclass(frozen=True)
class Silent:
    """A row the caller locked and found judged: its id, org, status and generation then."""

    pk: Any
    org_id: Any
    status: str
    generation: int
    reason: str
    console: str = ""


def _by_reason(rows: list[Silent]) -> Case:
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.reason].append(row.pk)
    return Case(
        *[When(pk__in=ids, then=Value(reason)) for reason, ids in groups.items()],
        default=F("last_exit_reason"),
        output_field=TextField(),
    )


def offline_then_restart_all(rows: list[Silent], cause: str, *, actor: str) -> None:
    """What :func:`offline_then_restart` does to each row, for all of them in five statements.

    The rows are locked by the caller (``SELECT … FOR UPDATE`` in its transaction), are on a
    configured backend, and are in a source state of ``cause``. One aggregate finds the crash
    loops, one UPDATE takes those offline and holds them there, one takes the others straight to
    the auto-restart's target (the generation bumped twice, as the two transitions would), one
    INSERT writes every event, one message per batch queues the backend calls on commit.
    """
    if not rows:
        return
    down, up = lifecycle.TRANSITIONS[cause], lifecycle.TRANSITIONS[RESTART]
    if down.target not in up.sources:
        raise ValueError(f"{RESTART} does not start from {down.target}, where {cause} ends")
    for row in rows:
        if row.status not in down.sources:
            raise ValueError(f"{cause} does not start from {row.status} (workspace {row.pk})")
    looping = crash_looping(row.pk for row in rows)
    now = timezone.now()
    # What core.transition resets on every step, plus the exit the sweep found.
    common: dict[str, Any] = {
        **{name: copy.copy(empty) for name, empty in AGENT_REPORT.items()},
        "token_hash": "",
        "status_changed_at": now,
        "updated_at": now,
        "last_exit_at": now,
    }
    held = [row for row in rows if row.pk in looping]
    restarted = [row for row in rows if row.pk not in looping]
    if held:
        Workspace.objects.filter(pk__in=[row.pk for row in held]).update(
            **common,
            status=down.target,
            generation=F("generation") + 1,
            crash_looping=True,
            last_exit_reason=_by_reason(held),
        )
    if restarted:
        Workspace.objects.filter(pk__in=[row.pk for row in restarted]).update(
            **common,
            status=up.target,
            generation=F("generation") + 2,
            crash_looping=False,
            restart_count=F("restart_count") + 1,
            last_exit_reason=_by_reason(restarted),
        )
    events: list[Pending] = []
    calls: list[tuple[Any, int]] = []
    for row in rows:
        where = {"workspace_id": row.pk, "org_id": row.org_id, "actor": actor}
        events.append(
            Pending(
                down.event,
                payload=lifecycle.moved(
                    cause, row.status, {"reason": row.reason, "console": row.console}
                ),
                **where,
            )
        )
        calls.append((row.pk, row.generation + 1))
        if row.pk in looping:
            events.append(Pending(EventType.WORKSPACE_OFFLINE, payload=crash_loop_note(), **where))
        else:
            events.append(
                Pending(
                    up.event,
                    payload=lifecycle.moved(RESTART, str(down.target), {"reason": row.reason}),
                    **where,
                )
            )
            calls.append((row.pk, row.generation + 2))
    record_many(events)
    enqueue_generations(calls)


def judged(queryset: Any, *, limit: int) -> list[dict[str, Any]]:
    """A page of candidate rows, locked for this transaction.

    Rows another transaction holds (a heartbeat, a verb) are skipped: the next run sees them.
    No ORDER BY: sorted by id, PostgreSQL would walk the primary key through the whole fleet to
    find the few candidates; unsorted, it reads them from the index the WHERE uses. Never
    waiting for a lock, the sweep cannot deadlock whatever order it locks in.
    """
    return list(
        queryset.select_for_update(skip_locked=True, of=("self",))
        .order_by()
        .values("pk", "org_id", "status", "generation", "last_heartbeat_at", "instance_id")[:limit]
    )
