"""Team verbs: expand a lead into its team, collapse it, move a workspace to another parent.

Every child is created and provisioned with ``create_workspace`` and every removal goes through
the delete transition, so teams get routing, events and the backend calls like any verb.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from workspaces import team_secrets, teamspec
from workspaces.dispatch.core import (
    VERB_LOCK_WAIT,
    InvalidRequest,
    VerbResult,
    locked,
    locked_tree,
    transition,
)
from workspaces.dispatch.team_rows import drop_teams, ensure_team
from workspaces.dispatch.tier_policy import tier_refusal
from workspaces.dispatch.verbs import create_workspace
from workspaces.events import record as record_event
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, Workspace


def expand_team(*, workspace_id: Any, actor: str) -> VerbResult:
    """Create the lead's children from its ``spec["children"]`` and provision each one.

    Routing: each child goes to the org's backend, like any new workspace. Children of children
    stay in each child's spec, to be expanded in turn (teams nest). Each child gets the template
    settings and files its node carries (``teamspec.give_template``). Refused when the lead is
    paused or removed, or already has live children (collapse first); ``InvalidRequest`` when the
    spec has no valid children. Writes WORKSPACE_EXPANDED with the child ids.
    """
    with transaction.atomic():
        lead = locked(workspace_id, busy_after=VERB_LOCK_WAIT)
        if lead.status in (Status.PAUSED, Status.REMOVED):
            raise Refused(f"Cannot expand workspace {lead.name!r}: it is {lead.status}.")
        live = lead.children.exclude(status=Status.REMOVED).count()
        if live:
            raise Refused(
                f"Cannot expand workspace {lead.name!r}: it already leads {live} live "
                "workspace(s); collapse the team first."
            )
        children = (lead.spec or {}).get("children") or []
        if not children:
            raise InvalidRequest(f"Workspace {lead.name!r} has no children in its team spec.")
        problems = teamspec.children_problems(children)
        problems += [
            (f"children[{index}].tier", why)
            for index, node in enumerate(children)
            if isinstance(node, dict)
            and (why := tier_refusal(lead.org, lead.org.backend, node.get("tier", 2)))
        ]
        if problems:
            listing = "; ".join(f"{path}: {message}" for path, message in problems)
            raise InvalidRequest(f"The team spec of {lead.name!r} is invalid: {listing}")
        created, restored, dropped = [], {}, []
        for node in children:
            child = create_workspace(
                org=lead.org,
                parent=lead,
                actor=actor,
                **teamspec.creation_fields(node, defaults={"runtime": lead.runtime}),
            )
            # In this transaction, before the children's first start is queued on commit: an
            # agent must start with its template settings, files and secrets or not at all (a
            # refusal rolls all this back).
            teamspec.give_template(child, node)
            if keys := team_secrets.restore(lead, child, actor=actor, dropped=dropped):
                restored[child.name] = keys
            team_secrets.give_required(
                lead, child, required=list(lead.org.required_env), actor=actor
            )
            created.append(child)
        record_event(
            EventType.WORKSPACE_EXPANDED,
            workspace=lead,
            actor=actor,
            payload={
                "children": [str(c.pk) for c in created],
                "names": [c.name for c in created],
                # Key names only, by member: what the collapse had kept for them.
                "secrets_restored": restored,
                # Kept secrets whose names the secret-name rule now refuses: never handed on.
                **({"secrets_dropped": dropped} if dropped else {}),
            },
        )
        return VerbResult(lead, created)


def collapse_team(*, workspace_id: Any, actor: str) -> VerbResult:
    """Stop and remove every descendant of the lead (through the delete transition).

    The lead itself keeps running, with its spec, so it can be expanded again. Refused when it
    has no live descendants. Writes WORKSPACE_COLLAPSED with the removed ids.
    """
    with transaction.atomic():
        lead, descendants = locked_tree(workspace_id, busy_after=VERB_LOCK_WAIT)
        removed = [ws for ws in descendants if ws.status != Status.REMOVED]
        if not removed:
            raise Refused(f"Cannot collapse workspace {lead.name!r}: it leads no live workspace.")
        # Before the members go: what expand will need to recreate them as they were.
        kept = team_secrets.set_aside(lead, removed)
        for workspace in removed:
            transition(workspace, "delete", actor=actor, payload={"cascaded_from": str(lead.pk)})
        drop_teams([lead, *descendants])
        team_secrets.discard(descendants)
        record_event(
            EventType.WORKSPACE_COLLAPSED,
            workspace=lead,
            actor=actor,
            payload={
                "children": [str(w.pk) for w in removed],
                "names": [w.name for w in removed],
                "secrets_kept": kept,
            },
        )
        return VerbResult(lead, removed)


def move_workspace(*, workspace_id: Any, parent_id: Any | None, actor: str) -> Workspace:
    """Give a workspace a new parent (or none); its subtree moves with it.

    No backend call: where a workspace sits in the tree does not change where it runs.
    ``InvalidRequest`` for another org's parent or a move under itself or its own descendant
    (a cycle); refused for removed workspaces. Moving to the current parent changes nothing and
    writes nothing. Writes WORKSPACE_MOVED with the old and new parent.
    """
    with transaction.atomic():
        workspace, descendants = locked_tree(workspace_id, busy_after=VERB_LOCK_WAIT)
        parent = locked(parent_id, busy_after=VERB_LOCK_WAIT) if parent_id is not None else None
        if workspace.status == Status.REMOVED:
            raise Refused(f"Cannot move workspace {workspace.name!r}: it is removed.")
        if parent is not None:
            if parent.org_id != workspace.org_id:
                raise InvalidRequest(
                    f"Cannot move {workspace.name!r} under {parent.name!r}: "
                    "a team lives in one org."
                )
            if parent.status == Status.REMOVED:
                raise Refused(f"Cannot move under {parent.name!r}: it is removed.")
            if parent.pk == workspace.pk or parent.pk in {d.pk for d in descendants}:
                raise InvalidRequest(
                    f"Cannot move {workspace.name!r} under {parent.name!r}: "
                    "that would make a cycle."
                )
        if workspace.parent_id == (parent.pk if parent else None):
            return workspace
        previous = workspace.parent_id
        workspace.parent = parent
        workspace.save(update_fields=["parent", "updated_at"])
        if parent is not None:
            ensure_team(parent)
        if (
            previous
            and not Workspace.objects.filter(parent_id=previous)
            .exclude(status=Status.REMOVED)
            .exists()
        ):
            drop_teams(Workspace.objects.filter(pk=previous))  # it leads no one any more
        record_event(
            EventType.WORKSPACE_MOVED,
            workspace=workspace,
            actor=actor,
            payload={
                "from_parent": str(previous) if previous else None,
                "to_parent": str(parent.pk) if parent else None,
            },
        )
        return workspace
