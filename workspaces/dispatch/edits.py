"""Edits of a workspace's own fields: the one write path for name, role, tier, runtime,
workspace_dir and the team spec, whichever door (admin change form, API PATCH, page) they come by.

None of these changes what runs now, so no backend is called: they apply at the next start
(restart, resume, provision), as a tier change does. The change is still history, so it writes
WORKSPACE_UPDATED with each field's old and new value, under the same row lock and busy timeout
as the verbs. The values are checked by ``workspaces.fields``, the rule every door shares. A
parent change is a structure verb: ``move_workspace``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from workspaces import fields
from workspaces.dispatch.core import VERB_LOCK_WAIT, locked
from workspaces.dispatch.tier_policy import tier_refusal
from workspaces.events import record as record_event
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status

EDITABLE = fields.EDITABLE
# Fields whose new value only the next instance sees.
AT_NEXT_START = frozenset({"tier", "runtime", "workspace_dir"})


def edit_problems(changes: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors for ``changes``; what forms show before calling :func:`edit_workspace`."""
    return fields.problems(changes)


def edit_workspace(*, workspace_id: Any, actor: str, **changes: Any) -> dict[str, list[Any]]:
    """Apply ``changes`` (any of ``EDITABLE``); returns {field: [old, new]} of what changed.

    ``ValidationError`` with field errors for bad values (nothing written); ``Refused`` for a
    removed workspace or when a backend call holds the row past the verbs' busy timeout. Values
    equal to the current ones change nothing and write no event.
    """
    if errors := edit_problems(changes):
        raise ValidationError(errors)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    with transaction.atomic():
        workspace = locked(workspace_id, busy_after=VERB_LOCK_WAIT)
        if workspace.status == Status.REMOVED:
            raise Refused(f"Cannot edit workspace {workspace.name!r}: it is removed.")
        if "tier" in changes and (
            why := tier_refusal(workspace.org, workspace.backend, changes["tier"])
        ):
            raise ValidationError({"tier": [why]})
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
        if later := sorted(AT_NEXT_START & set(changed)):
            payload["note"] = f"{', '.join(later)}: applies at the next start"
        record_event(EventType.WORKSPACE_UPDATED, workspace=workspace, actor=actor, payload=payload)
        return changed
