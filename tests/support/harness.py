"""The backends the contract tests (tests/contract/) run against, each looked at from outside.

A contract test drives a backend only through dispatch, like the console does, and checks what
happened through a :class:`Harness`: a view of the backend's instances that does not use the
backend's own code (/proc for local processes, the engine's API for containers). To run the
contract against another backend, write its harness and add it to ``HARNESSES``; the ``backend``
fixture (tests/contract/conftest.py) runs every contract test once per harness.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any, ClassVar

import docker
import pytest

from tests.support.agents import CLOSED_REGISTRY
from tests.support.procs import environ, is_alive
from workspaces.backends import InstanceSpec
from workspaces.backends.docker import LABEL_WORKSPACE, DockerBackend, volume_name
from workspaces.backends.local import LocalBackend
from workspaces.models import Workspace
from workspaces.tiers import tier_settings


def orphan_spec() -> InstanceSpec:
    """A spec for an instance no workspace row will ever own."""
    workspace_id = str(uuid.uuid4())
    return InstanceSpec(
        workspace_id=workspace_id,
        name="orphan",
        org_slug="nobody",
        runtime="langgraph",
        tier=tier_settings(2),
        generation=1,
        env={},
        token="not-a-token",
        # Nothing listens there: an orphan's agent just keeps retrying to register.
        platform_url=CLOSED_REGISTRY,
    )


class Harness:
    """What a contract test needs to see of a backend, seen from outside it."""

    name: ClassVar[str]
    fixture: ClassVar[str]  # the fixture that configures the backend and a live console

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.context = request.getfixturevalue(self.fixture)

    def instances_of(self, workspace: Workspace) -> list[str]:
        """Instance ids of the workspace that are alive right now."""
        raise NotImplementedError

    def kill(self, workspace: Workspace) -> None:
        """Kill the workspace's instance by hand, the way an operator or a crash would."""
        raise NotImplementedError

    def storage_exists(self, workspace: Workspace) -> bool:
        raise NotImplementedError

    def write_file(self, workspace: Workspace, name: str, text: str) -> None:
        """Write a file into the workspace's /workspace, as its agent would."""
        raise NotImplementedError

    def read_file(self, workspace: Workspace, name: str) -> str:
        raise NotImplementedError

    def start_orphan(self) -> str:
        """Start an instance that no workspace owns; returns its instance id."""
        raise NotImplementedError

    def orphan_alive(self, instance_id: str) -> bool:
        raise NotImplementedError


class LocalHarness(Harness):
    name = "local"
    fixture = "local_fleet"

    @property
    def root(self) -> Path:
        return self.context

    def instances_of(self, workspace: Workspace) -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            env = environ(int(entry.name))
            mine = env.get("HOME", "").startswith(f"{self.root}/")
            ours = env.get("WORKSPACE_ID") == str(workspace.pk)
            if mine and ours and is_alive(int(entry.name)):
                found.append(entry.name)
        return found

    def kill(self, workspace: Workspace) -> None:
        os.killpg(workspace.backend_state["pid"], signal.SIGKILL)

    def _workspace_dir(self, workspace: Workspace) -> Path:
        return self.root / str(workspace.pk) / "workspace"

    def storage_exists(self, workspace: Workspace) -> bool:
        return (self.root / str(workspace.pk)).exists()

    def write_file(self, workspace: Workspace, name: str, text: str) -> None:
        (self._workspace_dir(workspace) / name).write_text(text)

    def read_file(self, workspace: Workspace, name: str) -> str:
        return (self._workspace_dir(workspace) / name).read_text()

    def start_orphan(self) -> str:
        return LocalBackend(self.root).start(orphan_spec()).instance_id

    def orphan_alive(self, instance_id: str) -> bool:
        record = json.dumps(instance_id)
        return any(
            record in path.read_text() for path in self.root.glob("*/instance.json")
        ) and is_alive(int(instance_id.split(":")[1]))


class DockerHarness(Harness):
    name = "docker"
    fixture = "docker_fleet"

    @property
    def client(self) -> docker.DockerClient:
        return self.context.client

    def instances_of(self, workspace: Workspace) -> list[str]:
        running = self.client.containers.list(
            filters={"label": f"{LABEL_WORKSPACE}={workspace.pk}", "status": "running"}
        )
        return [container.id for container in running]

    def kill(self, workspace: Workspace) -> None:
        self.client.containers.get(workspace.backend_state["container"]).kill()

    def storage_exists(self, workspace: Workspace) -> bool:
        try:
            self.client.volumes.get(volume_name(str(workspace.pk)))
        except docker.errors.NotFound:
            return False
        return True

    def _exec(self, workspace: Workspace, script: str) -> str:
        container = self.client.containers.get(workspace.backend_state["container"])
        code, output = container.exec_run(["sh", "-c", script])
        assert code == 0, output
        return output.decode()

    def write_file(self, workspace: Workspace, name: str, text: str) -> None:
        self._exec(workspace, f"printf %s '{text}' > /workspace/{name}")

    def read_file(self, workspace: Workspace, name: str) -> str:
        return self._exec(workspace, f"cat /workspace/{name}")

    def start_orphan(self) -> str:
        return DockerBackend().start(orphan_spec()).instance_id

    def orphan_alive(self, instance_id: str) -> bool:
        try:
            return self.client.containers.get(instance_id).status == "running"
        except docker.errors.NotFound:
            return False


class ControlplaneHarness(Harness):
    """The controlplane backend against the control-plane double (support/cpdouble_fixtures.py).

    Its VMs are agent processes that the double started; they are looked at through the double's
    own bookkeeping and /proc, never through the backend's client.
    """

    name = "controlplane"
    fixture = "cp_fleet"

    def _vms_of(self, workspace: Workspace) -> list[dict[str, Any]]:
        return [vm for vm in self.context.vms() if vm["workspace_id"] == str(workspace.pk)]

    def instances_of(self, workspace: Workspace) -> list[str]:
        return [
            vm["instance_id"]
            for vm in self._vms_of(workspace)
            if vm["running"] and vm["pid"] and is_alive(vm["pid"])
        ]

    def kill(self, workspace: Workspace) -> None:
        [vm] = [vm for vm in self._vms_of(workspace) if vm["instance_id"] == workspace.instance_id]
        os.killpg(vm["pid"], signal.SIGKILL)

    def _volume(self, workspace: Workspace) -> Path:
        return self.context.root / "volumes" / str(workspace.pk)

    def storage_exists(self, workspace: Workspace) -> bool:
        return self._volume(workspace).exists()

    def write_file(self, workspace: Workspace, name: str, text: str) -> None:
        (self._volume(workspace) / name).write_text(text)

    def read_file(self, workspace: Workspace, name: str) -> str:
        return (self._volume(workspace) / name).read_text()

    def start_orphan(self) -> str:
        from workspaces.backends.controlplane import ControlPlaneBackend

        return ControlPlaneBackend().start(orphan_spec()).instance_id

    def orphan_alive(self, instance_id: str) -> bool:
        return any(vm["instance_id"] == instance_id and vm["running"] for vm in self.context.vms())


HARNESSES: dict[str, type[Harness]] = {
    "local": LocalHarness,
    "docker": DockerHarness,
    "controlplane": ControlplaneHarness,
}
