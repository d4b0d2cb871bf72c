"""Edits of a workspace's descriptive fields (name, role, tier) outside the lifecycle.

None of these changes what runs, so no backend is called: a tier change applies at the next
start (restart, resume, provision), as DESIGN.md §4 says. The change is still history, so it
writes WORKSPACE_UPDATED with each field's old and new value, under the same row lock dispatch
takes. A parent change is a structure verb: ``dispatch.move_workspace``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from workspaces.events import record as record_event
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, Workspace
from workspaces.tiers import is_known_tier

EDITABLE = ("name", "role", "tier")
MAX_TEXT = 200


def _problems(changes: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field in set(changes) - set(EDITABLE):
        errors[field] = ["cannot be edited here"]
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TEXT:
            errors["name"] = [f"a name of 1 to {MAX_TEXT} characters is required"]
    if "role" in changes:
        role = changes["role"]
        if not isinstance(role, str) or len(role) > MAX_TEXT:
            errors["role"] = [f"must be text of at most {MAX_TEXT} characters"]
    if "tier" in changes and not is_known_tier(changes["tier"]):
        errors["tier"] = ["unknown tier: use 1, 2, 3 or 4"]
    return errors


def update_workspace(*, workspace_id: Any, actor: str, **changes: Any) -> dict[str, list[Any]]:
    """Apply ``changes`` (any of name, role, tier); returns {field: [old, new]} of what changed.

    ``ValidationError`` with field errors for bad values; ``Refused`` for a removed workspace.
    Values equal to the current ones change nothing and write no event.
    """
    if errors := _problems(changes):
        raise ValidationError(errors)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace_id)
        if workspace.status == Status.REMOVED:
            raise Refused(f"Cannot edit workspace {workspace.name!r}: it is removed.")
        changed = {
            field: [getattr(workspace, field), value]
            for field, value in changes.items()
            if getattr(workspace, field) != value
        }
        if not changed:
            return {}
        for field, (_, new) in changed.items():
            setattr(workspace, field, new)
        workspace.save(update_fields=[*changed, "updated_at"])
        payload: dict[str, Any] = {"changed": changed}
        if "tier" in changed:
            payload["note"] = "the new tier applies at the next start"
        record_event(
            EventType.WORKSPACE_UPDATED,
            workspace=workspace,
            actor=actor,
            payload=payload,
        )
        return changed
