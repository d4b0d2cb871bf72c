"""What a workspace's template settings look like to a reader: the workspace page and the API.

``Workspace.template`` holds what a Molecule org template set (orgs/templates.py resolves it):
the agent gets all of it in its config.yaml. A reader gets it too, but for two things:

- **Secrets in channels are masked** (``MASK``): a channel setting whose value came from a
  ``${VAR}`` (the template's ``.env`` or the import's environment; the import lists them in
  ``from_env``), or whose name says it holds one (token, secret, password, key, webhook, auth,
  credential, signature, cookie …), is shown as ``••••``. What is masked is never sent to a
  page or an API client; the agent has it.
- **Memories are counted**, not listed: they are what the agent starts knowing, not settings.
"""

from __future__ import annotations

import re
from typing import Any

from workspaces.agent_config import CLAUDE_CODE_MODEL, DEFAULT_MODEL

MASK = "••••"
SECRET_NAME = re.compile(
    r"token|secret|passw|key|webhook|auth|credential|signature|cookie|session|private",
    re.IGNORECASE,
)
# Shown as they are, in this order (prompts, then the rest).
SHOWN = (
    "description",
    "model",
    "system_prompt",
    "initial_prompt",
    "idle_prompt",
    "idle_interval_seconds",
    "plugins",
    "schedules",
    "category_routing",
    "max_concurrent_tasks",
    "canvas",
    "external",
    "url",
    "workspace_access",
    "template",
    "files_dir",
    "required_env",
    "recommended_env",
)


def masked_channels(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's channels with every secret-looking setting replaced by ``MASK``."""
    expanded = set(template.get("from_env") or [])
    channels = []
    for number, channel in enumerate(template.get("channels") or []):
        if not isinstance(channel, dict):
            continue
        config = channel.get("config") or {}
        shown = {
            key: (
                MASK
                if f"channels[{number}].config.{key}" in expanded or SECRET_NAME.search(str(key))
                else value
            )
            for key, value in (config.items() if isinstance(config, dict) else [])
        }
        channels.append({**channel, "config": shown})
    return channels


def default_model(runtime: str) -> str:
    """The model an agent of ``runtime`` gets when the template names none (Molecule's)."""
    return CLAUDE_CODE_MODEL if runtime == "claude-code" else DEFAULT_MODEL


def settings(template: dict[str, Any] | None) -> dict[str, Any]:
    """The template settings as the API shows them: channels masked, memories counted."""
    template = template if isinstance(template, dict) else {}
    shown: dict[str, Any] = {key: template[key] for key in SHOWN if key in template}
    if "channels" in template:
        shown["channels"] = masked_channels(template)
    memories = {
        "initial": len(template.get("initial_memories") or []),
        "global": len(template.get("global_memories") or []),
    }
    if any(memories.values()):
        shown["memories"] = memories
    return shown
