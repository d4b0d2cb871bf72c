"""Tier isolation on the docker backend, checked from inside and outside every container.

Each workspace is provisioned through dispatch on a real engine and must come online (so its
agent reached the console from that tier's network). Then the test looks from inside the
container (``exec_run``: what the agent itself can do) and from outside (``inspect``: what the
engine was told), for every tier:

T1 cannot write to / but can write /tmp, and has no /workspace;
T2 has its memory and CPU limits in the container's own cgroup, and a /workspace volume;
T3 is privileged, sees the host's processes, and is on the workspace network;
T4 is on the host network and can talk to the engine through its socket.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import pytest
from docker.models.containers import Container

from tests.support.engine import Engine
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import Status, Workspace
from workspaces.tiers import MiB

pytestmark = pytest.mark.django_db(transaction=True)
# The engine fixtures (docker_engine, docker_settings, docker_console, docker_fleet).
pytest_plugins = ["tests.support.engine_fixtures"]

ONLINE_TIMEOUT = 90
PYTEST_PID = os.getpid()


@pytest.fixture
def docker_org(org: Any, docker_fleet: Engine) -> Any:
    org.backend = "docker"
    # These tests check what T3 and T4 grant: an operator has trusted this org with them.
    org.privileged_tiers = True
    org.save(update_fields=["backend", "privileged_tiers"])
    return org


def online(org: Any, *, tier: int, name: str = "PM") -> Workspace:
    workspace = dispatch.create_workspace(org=org, name=name, tier=tier, actor="test")
    wait_for(
        lambda: Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE,
        timeout=ONLINE_TIMEOUT,
    )
    return Workspace.objects.get(pk=workspace.pk)


def container_of(engine: Engine, workspace: Workspace) -> Container:
    return engine.client.containers.get(workspace.backend_state["container"])


def inside(container: Container, script: str) -> tuple[int, str]:
    """Run a shell script in the container: (exit code, output)."""
    code, output = container.exec_run(["sh", "-c", script])
    return code, output.decode(errors="replace").strip()


def cgroup_limits(container: Container) -> tuple[int, float]:
    """(memory limit in bytes, CPUs) as the container's own cgroup says, v1 or v2."""
    code, output = inside(
        container,
        "if [ -f /sys/fs/cgroup/memory.max ]; then cat /sys/fs/cgroup/memory.max "
        "/sys/fs/cgroup/cpu.max; else cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; fi",
    )
    assert code == 0, output
    values = output.split()
    quota, period = values[1], values[2]
    return int(values[0]), int(quota) / int(period)


def sees_host_process(container: Container) -> bool:
    # This test's own process lives outside every container.
    code, _ = inside(container, f"grep -q pytest /proc/{PYTEST_PID}/cmdline")
    return code == 0


def mounts_at(container: Container, destination: str) -> list[dict]:
    return [m for m in container.attrs["Mounts"] if m["Destination"] == destination]


# --- T1 sandboxed -------------------------------------------------------------------------------


def test_t1_has_a_read_only_root_a_writable_tmp_and_no_workspace(docker_org, docker_fleet):
    workspace = online(docker_org, tier=1)
    container = container_of(docker_fleet, workspace)

    code, output = inside(container, "touch /escape")
    assert code != 0 and "Read-only file system" in output
    assert inside(container, "echo scratch > /tmp/note && cat /tmp/note") == (0, "scratch")
    assert inside(container, "test -e /workspace")[0] != 0

    config = container.attrs["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert "/tmp" in config["Tmpfs"]
    assert mounts_at(container, "/workspace") == []
    assert config["Memory"] == 512 * MiB
    assert cgroup_limits(container) == (512 * MiB, 1.0)
    assert not config["Privileged"]
    assert not sees_host_process(container)


# --- T2 standard --------------------------------------------------------------------------------


def test_t2_has_memory_and_cpu_limits_in_its_cgroup_and_a_workspace_volume(
    docker_org, docker_fleet
):
    workspace = online(docker_org, tier=2)
    container = container_of(docker_fleet, workspace)

    assert cgroup_limits(container) == (512 * MiB, 1.0)
    assert inside(container, "echo kept > /workspace/f && cat /workspace/f") == (0, "kept")
    assert inside(container, "touch /rootfs-is-writable")[0] == 0
    assert not sees_host_process(container)

    config = container.attrs["HostConfig"]
    assert (config["Memory"], config["NanoCpus"]) == (512 * MiB, 1_000_000_000)
    assert not config["Privileged"]
    assert config["ReadonlyRootfs"] is False
    [mount] = mounts_at(container, "/workspace")
    assert (mount["Type"], mount["Name"]) == ("volume", f"ws-{workspace.pk}-workspace")
    assert list(container.attrs["NetworkSettings"]["Networks"]) == ["molecule-net"]


def test_a_row_with_an_unknown_tier_gets_t2(docker_org, docker_fleet):
    # Every door refuses tier 0 now; a row from before that rule can still hold it.
    workspace = online(docker_org, tier=1)
    Workspace.objects.filter(pk=workspace.pk).update(tier=0)
    dispatch.restart(workspace_id=workspace.pk, actor="test")
    wait_for(
        lambda: Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE,
        timeout=ONLINE_TIMEOUT,
    )
    container = container_of(docker_fleet, Workspace.objects.get(pk=workspace.pk))

    assert cgroup_limits(container) == (512 * MiB, 1.0)
    assert len(mounts_at(container, "/workspace")) == 1


# --- T3 privileged ------------------------------------------------------------------------------


def test_t3_is_privileged_sees_host_pids_and_is_on_the_workspace_network(docker_org, docker_fleet):
    workspace = online(docker_org, tier=3)
    container = container_of(docker_fleet, workspace)

    assert sees_host_process(container)
    # Privileged: the host's devices are there, e.g. the kernel message buffer.
    assert inside(container, "test -e /dev/kmsg")[0] == 0
    assert inside(container, "echo kept > /workspace/f && cat /workspace/f") == (0, "kept")

    config = container.attrs["HostConfig"]
    assert config["Privileged"] is True
    assert config["PidMode"] == "host"
    assert config["Memory"] == 0  # no cap: privileged tiers manage other processes
    assert list(container.attrs["NetworkSettings"]["Networks"]) == ["molecule-net"]
    assert workspace.url.startswith("http://127.0.0.1:")


# --- T4 full access -----------------------------------------------------------------------------


def test_t4_is_on_the_host_network_and_talks_to_the_engine_socket(docker_org, docker_fleet):
    # A listener on the host's loopback: only a container on the host network can reach it.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    heard: list[bytes] = []

    def answer_once() -> None:
        connection, _ = listener.accept()
        with connection:
            heard.append(connection.recv(100))
            connection.sendall(b"host loopback")

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    workspace = online(docker_org, tier=4)
    container = container_of(docker_fleet, workspace)

    code, output = inside(
        container,
        "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', "
        f"{port}), 10); s.sendall(b'from T4'); print(s.recv(100).decode())\"",
    )
    thread.join(10)
    listener.close()
    assert (code, output, heard) == (0, "host loopback", [b"from T4"])

    code, output = inside(
        container,
        'python3 -c "import socket; s = socket.socket(socket.AF_UNIX); '
        "s.connect('/var/run/docker.sock'); "
        "s.sendall(b'GET /_ping HTTP/1.0\\r\\nHost: d\\r\\n\\r\\n'); "
        'print(s.recv(1000).decode())"',
    )
    assert code == 0 and output.startswith("HTTP/1.0 200") and output.endswith("OK"), output
    assert sees_host_process(container)

    config = container.attrs["HostConfig"]
    assert config["NetworkMode"] == "host"
    assert config["Privileged"] is True
    assert config["PidMode"] == "host"
    assert len(mounts_at(container, "/var/run/docker.sock")) == 1
    assert config["PortBindings"] in ({}, None)
    # Its agent listens on the host's loopback directly, at the port recorded as its URL.
    assert workspace.url == f"http://127.0.0.1:{workspace.backend_state['port']}"


# --- tier changes ---------------------------------------------------------------------------------


def test_a_tier_change_applies_at_the_next_restart(docker_org, docker_fleet):
    workspace = online(docker_org, tier=2)
    assert inside(container_of(docker_fleet, workspace), "touch /ok")[0] == 0

    Workspace.objects.filter(pk=workspace.pk).update(tier=1)
    dispatch.restart(workspace_id=workspace.pk, actor="test")
    wait_for(
        lambda: Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE,
        timeout=ONLINE_TIMEOUT,
    )

    container = container_of(docker_fleet, Workspace.objects.get(pk=workspace.pk))
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert inside(container, "touch /ok")[0] != 0
