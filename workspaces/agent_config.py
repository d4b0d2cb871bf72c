"""What an agent finds in its configs directory: ``config.yaml`` and the files beside it.

Built from the workspace row and the Molecule template settings kept on it (``template``), at
every start, so an edit or a new template applies at the next restart. The keys follow
Molecule's runtime (its ``config.yaml``: name, description, version, tier, runtime, model, the
prompts, ``a2a`` …); the backend adds ``a2a.port``, the port it exposes, before it writes the
file. Written as JSON, which is YAML too: Molecule's runtime reads it with a YAML parser, the
built-in agent with the standard library's.
"""

from __future__ import annotations

from typing import Any

from workspaces import plugins as catalogue
from workspaces.configfile import render
from workspaces.models import Workspace, WorkspaceFile

__all__ = ["config", "files", "missing_plugins", "render"]

DEFAULT_MODEL = "anthropic:claude-opus-4-7"
CLAUDE_CODE_MODEL = "sonnet"
# Template settings that go into config.yaml as they are (the import resolved prompt files and
# ${VAR}s already). Everything else of the template stays on the row, shown on the page.
PASSED_ON = (
    "initial_prompt",
    "idle_prompt",
    "idle_interval_seconds",
    "plugins",
    "category_routing",
    "initial_memories",
    "global_memories",
    "schedules",
    "channels",
    "max_concurrent_tasks",
)
SYSTEM_PROMPT_FILE = "system-prompt.md"


def config(workspace: Workspace) -> dict[str, Any]:
    """config.yaml's content, without ``a2a.port`` (the backend's to add)."""
    template = workspace.template or {}
    model = template.get("model") or (
        CLAUDE_CODE_MODEL if workspace.runtime == "claude-code" else DEFAULT_MODEL
    )
    content: dict[str, Any] = {
        "name": workspace.name,
        "description": workspace.role,
        "role": workspace.role,
        "version": "1.0.0",
        "tier": workspace.tier,
        "runtime": workspace.runtime,
        "model": model,
        "workspace_id": str(workspace.pk),
        "org": workspace.org.slug,
        "a2a": {"streaming": True, "push_notifications": True},
    }
    content |= {key: template[key] for key in PASSED_ON if key in template}
    if template.get("system_prompt"):
        content["prompt_files"] = [SYSTEM_PROMPT_FILE]
    return content


def _plugin_names(workspace: Workspace) -> list[str]:
    names = (workspace.template or {}).get("plugins")
    return [str(name) for name in names] if isinstance(names, list) else []


def missing_plugins(workspace: Workspace) -> list[str]:
    """The plugins the workspace names that the catalogue (MOLECULE_PLUGINS_DIR) lacks."""
    return catalogue.delivered(_plugin_names(workspace))[1]


def files(workspace: Workspace) -> dict[str, bytes]:
    """The files beside config.yaml: the plugins it names (from the catalogue, under
    ``plugins/<name>/``), the template's files_dir, then what the settings make."""
    found, _ = catalogue.delivered(_plugin_names(workspace))
    found |= {
        row.path: bytes(row.content)
        for row in WorkspaceFile.objects.filter(workspace=workspace).order_by("path")
    }
    if prompt := (workspace.template or {}).get("system_prompt"):
        # Molecule writes it after the template's files: it wins over one files_dir ships.
        found[SYSTEM_PROMPT_FILE] = str(prompt).encode()
    return found
