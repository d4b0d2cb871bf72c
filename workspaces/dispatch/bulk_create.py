"""Many workspaces created at once (an org import): what ``create_workspace`` does to each, in a
few statements for the whole tree.

The caller picks the ids, so a child names its parent and a lead's spec names the workspaces
created from its members (``files_from``) before anything is written. Rows go in one INSERT per
depth level (parents first), the leads' Team rows in one, the "(new) → provisioning" events in
one (``events.record_many``), and the first starts are queued on commit as one message per batch
(``dispatch.batch``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from orgs.models import Org
from workspaces import backends, fields, lifecycle
from workspaces.dispatch.batch import enqueue_generations
from workspaces.dispatch.core import InvalidRequest, no_backend_reason
from workspaces.dispatch.team_rows import ensure_teams
from workspaces.dispatch.tier_policy import tier_refusal
from workspaces.events import Pending, record_many
from workspaces.models import Workspace

CAUSE = "create"


@dataclass(frozen=True)
class NewWorkspace:
    """One workspace of the batch. ``parent_id``: a workspace of the batch or of the org."""

    id: uuid.UUID
    name: str
    role: str = ""
    tier: int = 2
    runtime: str = "langgraph"
    workspace_dir: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)
    parent_id: uuid.UUID | None = None


def _checked(org: Org, new: NewWorkspace) -> None:
    given = {"name": new.name, "role": new.role, "tier": new.tier, "runtime": new.runtime}
    given |= {"workspace_dir": new.workspace_dir, "spec": new.spec}
    if errors := fields.problems(given):
        raise ValidationError({f"{new.name}: {key}": value for key, value in errors.items()})
    if why := tier_refusal(org, org.backend, new.tier):
        raise ValidationError({f"{new.name}: tier": [why]})


def _depths(batch: Sequence[NewWorkspace]) -> dict[uuid.UUID, int]:
    """How deep each row sits below the batch's top (a parent outside the batch counts as 0)."""
    parent_of = {new.id: new.parent_id for new in batch}
    depths: dict[uuid.UUID, int] = {}
    for start in parent_of:
        chain: list[uuid.UUID] = []
        node: uuid.UUID | None = start
        while node in parent_of and node not in depths:
            chain.append(node)
            if len(chain) > len(parent_of):
                raise InvalidRequest("The workspaces to create name each other as parents.")
            node = parent_of[node]
        base = depths[node] + 1 if node in depths else 0
        for offset, member in enumerate(reversed(chain)):
            depths[member] = base + offset
    return depths


def create_workspaces(*, org: Org, batch: Sequence[NewWorkspace], actor: str) -> list[Workspace]:
    """Create and provision every workspace of ``batch`` (in the caller's transaction, if any).

    The same rules as ``create_workspace`` (field checks, the tier policy, a parent in the same
    org) and the same rows and events; the rows are returned in the batch's order. A backend
    this console does not run is refused (``InvalidRequest``) rather than failing every row.
    """
    if backends.get(org.backend) is None:
        raise InvalidRequest(no_backend_reason(org.backend))
    for new in batch:
        _checked(org, new)
    ours = {new.id for new in batch}
    outside = {new.parent_id for new in batch if new.parent_id and new.parent_id not in ours}
    with transaction.atomic():
        parents = {ws.pk: ws for ws in Workspace.objects.filter(pk__in=outside, org=org)}
        if missing := outside - parents.keys():
            raise InvalidRequest(
                f"{len(missing)} parent workspace(s) are not in the org {org.slug!r}; a team "
                "lives inside one org."
            )
        step = lifecycle.TRANSITIONS[CAUSE]
        rows = {
            new.id: Workspace(
                id=new.id,
                org=org,
                name=new.name.strip(),
                role=new.role,
                tier=new.tier,
                runtime=new.runtime,
                workspace_dir=new.workspace_dir,
                spec=new.spec,
                template=new.template,
                parent_id=new.parent_id,
                backend=org.backend,
                status=step.target,
                generation=1,
            )
            for new in batch
        }
        depths = _depths(batch)
        for level in sorted(set(depths.values())):
            Workspace.objects.bulk_create([rows[i] for i, d in depths.items() if d == level])
        leads = {new.parent_id for new in batch if new.parent_id}
        ensure_teams([rows.get(lead) or parents[lead] for lead in sorted(leads)])
        record_many(
            Pending(
                step.event,
                actor=actor,
                workspace_id=new.id,
                org_id=org.pk,
                payload=lifecycle.moved(
                    CAUSE, lifecycle.NEW, {"backend": org.backend, "tier": new.tier}
                ),
            )
            for new in batch
        )
        enqueue_generations((new.id, 1) for new in batch)
    return [rows[new.id] for new in batch]
