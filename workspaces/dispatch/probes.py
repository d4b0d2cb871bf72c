"""Read-only looks at the backends, and two controlled faults, for the parity check.

The parity check (workspaces/parity.py) verifies what each backend declares by running contract
scenarios through the verbs; to observe the result it needs to ask the backend directly ("is that
old instance really gone?", "is the storage deleted?"). Those questions live here so that dispatch
stays the only code that talks to backends. ``lose_instance`` and ``start_unowned`` make the two
faults the sweeps exist for: an instance that dies behind the console's back, and one that no
workspace owns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from workspaces import backends
from workspaces.backends import Declared, Instance, InstanceSpec
from workspaces.dispatch.core import recorded_instance
from workspaces.models import Workspace
from workspaces.tiers import tier_settings


@dataclass(frozen=True)
class Snapshot:
    """A workspace's instance as recorded at one moment; it outlives later verbs."""

    backend: str
    instance_id: str
    state: dict[str, Any] = field(default_factory=dict)

    def instance(self) -> Instance:
        return Instance(self.instance_id, state=dict(self.state))


def enable_in_this_process(name: str) -> None:
    """Add a backend to this process's MOLECULE_BACKENDS and reload the backends.

    For ``parity --double``, which points the controlplane backend at a double it just started.
    """
    if name not in settings.MOLECULE_BACKENDS:
        settings.MOLECULE_BACKENDS = [*settings.MOLECULE_BACKENDS, name]
    backends.reset()


def available() -> list[str]:
    return backends.enabled()


def known() -> list[str]:
    return backends.known()


def declared(backend: str) -> dict[str, Declared]:
    return backends.capabilities(backend)


def registry_listen_host(names: list[str]) -> str:
    """Where a registry served for agents of these backends must listen (loopback if it can)."""
    for name in names:
        backend = backends.get(name)
        if backend is not None and backend.agents_call_in_from_outside_loopback:
            return "0.0.0.0"
    return "127.0.0.1"


def snapshot(workspace: Workspace) -> Snapshot:
    return Snapshot(workspace.backend, workspace.instance_id, dict(workspace.backend_state))


def _backend(name: str) -> backends.Backend:
    backend = backends.get(name)
    if backend is None:
        raise LookupError(f"the {name} backend is not configured here")
    return backend


def running(shot: Snapshot) -> bool:
    return bool(shot.instance_id) and _backend(shot.backend).is_running(shot.instance())


def storage_exists(shot: Snapshot) -> bool | None:
    return _backend(shot.backend).has_storage(shot.instance())


def listed(backend: str, instance_id: str) -> bool:
    return instance_id in _backend(backend).list_instances()


def lose_instance(workspace: Workspace) -> None:
    """Stop the workspace's instance behind the console's back (the row still says it runs)."""
    instance = recorded_instance(workspace)
    if instance is not None:
        _backend(workspace.backend).stop(instance)


def start_unowned(backend: str, *, org_slug: str) -> str:
    """Start an instance that no workspace owns; its agent cannot reach any console.

    It gets no ``PLATFORM_URL``: the agent serves but never registers (nor is told to exit),
    exactly the stray the orphan sweep exists for.
    """
    workspace_id = str(uuid.uuid4())
    spec = InstanceSpec(
        workspace_id=workspace_id,
        name="parity-orphan",
        org_slug=org_slug,
        runtime="langgraph",
        tier=tier_settings(2),
        generation=1,
        env={"MOLECULE_HEARTBEAT_INTERVAL": f"{settings.MOLECULE_HEARTBEAT_INTERVAL:g}"},
        token="orphan",
        platform_url="",
        config={"name": "parity-orphan"},
    )
    return _backend(backend).start(spec).instance_id
