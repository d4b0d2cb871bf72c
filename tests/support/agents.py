"""Agents for backend-level tests: a spec to start one with, and asking it whether it is up.

A backend test calls a backend directly with an ``InstanceSpec``, the way dispatch does, but
without a console: the agent is pointed at a closed port and keeps retrying to register, which
is all such a test needs of it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from workspaces.backends import InstanceSpec
from workspaces.tiers import tier_settings

# Nothing listens on the discard port: the agent logs "console unreachable" and retries.
CLOSED_REGISTRY = "http://127.0.0.1:9"


def make_spec(
    *, tier: int = 2, env: dict[str, str] | None = None, workspace_dir: str = "", **changes: Any
) -> InstanceSpec:
    workspace_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "workspace_id": workspace_id,
        "name": "probe",
        "org_slug": "acme",
        "runtime": "langgraph",
        "tier": tier_settings(tier),
        "generation": 1,
        "env": {
            "MOLECULE_WORKSPACE_NAME": "probe",
            "MOLECULE_ORG": "acme",
            "MOLECULE_RUNTIME": "langgraph",
            "MOLECULE_TIER": str(tier),
            "MOLECULE_HEARTBEAT_INTERVAL": "1",
            **(env or {}),
        },
        "workspace_dir": workspace_dir,
        # The agent contract: its token, the console to call (closed), config.yaml's content.
        "token": "not-a-real-token",
        "platform_url": CLOSED_REGISTRY,
        "config": {"name": "probe", "runtime": "langgraph", "tier": tier},
    }
    return InstanceSpec(**(fields | changes))


def health(url: str) -> int | None:
    """Status code of the agent's /health, or None while nothing answers.

    ``trust_env=False``: a proxy from the environment must never carry a loopback request.
    """
    try:
        return httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code
    except httpx.HTTPError:
        return None
