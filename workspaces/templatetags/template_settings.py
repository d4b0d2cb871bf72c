"""The workspace page's "Template" section: what a Molecule org template set for the workspace.

``{% template_settings workspace as settings %}`` gives the settings as a reader sees them
(``workspaces/template_view.py``: channel secrets masked, memories counted), the model the agent
gets, the prompts in one list and the files of its configs directory (paths and sizes only).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Count, Sum

from workspaces.models import Workspace, WorkspaceFile
from workspaces.template_view import default_model, settings

register = template.Library()

# Files listed on the page; the count and total cover them all.
MAX_LISTED = 200
PROMPTS = (
    ("system_prompt", "System prompt (system-prompt.md)"),
    ("initial_prompt", "Initial prompt (first start)"),
    ("idle_prompt", "Idle prompt"),
)


@register.simple_tag
def template_settings(workspace: Workspace) -> dict[str, Any]:
    shown = settings(workspace.template)
    files = WorkspaceFile.objects.filter(workspace=workspace)
    totals = files.aggregate(count=Count("pk"), size=Sum("size"))
    return {
        **shown,
        "any": bool(shown) or bool(totals["count"]),
        "model_default": default_model(workspace.runtime),
        "prompts": [
            {"label": label, "text": shown[key]} for key, label in PROMPTS if shown.get(key)
        ],
        "file_count": totals["count"],
        "file_bytes": totals["size"] or 0,
        "files": list(files.order_by("path").values("path", "size")[:MAX_LISTED]),
    }
