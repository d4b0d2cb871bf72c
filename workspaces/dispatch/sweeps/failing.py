"""Provisioning → failed for a whole set of rows: the provision timeout's and the health sweep's."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from django.db.models import F
from django.utils import timezone

from workspaces import lifecycle
from workspaces.dispatch.batch import enqueue_generations
from workspaces.dispatch.core import AGENT_REPORT
from workspaces.events import Pending, record_many
from workspaces.models import Workspace

CAUSE = "provision_failed"


@dataclass(frozen=True)
class Failing:
    """A row the caller locked and found failed: its id, org, status and generation then."""

    pk: Any
    org_id: Any
    status: str
    generation: int
    error: str
    console: str = ""


def fail_all(rows: list[Failing], *, actor: str) -> None:
    """What ``core.transition(row, "provision_failed")`` does to each row, in three statements.

    The rows are locked by the caller and on a configured backend: one UPDATE moves them to the
    transition's target (the generation bumped, the agent's report and token cleared), one
    INSERT writes their events, one message per batch queues the stops on commit.
    """
    if not rows:
        return
    step = lifecycle.TRANSITIONS[CAUSE]
    for row in rows:
        if row.status not in step.sources:
            raise ValueError(f"{CAUSE} does not start from {row.status} (workspace {row.pk})")
    now = timezone.now()
    Workspace.objects.filter(pk__in=[row.pk for row in rows]).update(
        **{name: copy.copy(empty) for name, empty in AGENT_REPORT.items()},
        status=step.target,
        status_changed_at=now,
        updated_at=now,
        generation=F("generation") + 1,
        crash_looping=False,
        token_hash="",
    )
    record_many(
        Pending(
            step.event,
            actor=actor,
            workspace_id=row.pk,
            org_id=row.org_id,
            payload=lifecycle.moved(
                CAUSE, row.status, {"error": row.error, "console": row.console}
            ),
        )
        for row in rows
    )
    enqueue_generations((row.pk, row.generation + 1) for row in rows)
