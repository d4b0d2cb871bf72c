"""The controlplane backend for real: workspaces whose VMs the control-plane double boots.

Every test goes through dispatch with a live console (``cp_fleet``): the org runs on the
controlplane backend, dispatch calls the double over HTTP, and the double's VMs are agent
processes that register and heartbeat with the live console. Celery is eager, so a verb's
backend call has run when the verb returns; the sweeps are called directly instead of by beat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import make_spec
from tests.support.cpdouble import PROVISION, agent_pid, client, post_faults, requests_to
from tests.support.procs import agent_token, environ, is_alive
from tests.support.waiting import wait_for
from workspaces import backends, bearer_secrets, dispatch
from workspaces.backends import Instance
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytest_plugins = ["tests.support.cpdouble_fixtures"]
pytestmark = pytest.mark.django_db(transaction=True)

E = EventType
BOOTED = [(E.WORKSPACE_PROVISIONING, "create"), (E.WORKSPACE_ONLINE, "register")]


def fresh(workspace: Workspace) -> Workspace:
    return Workspace.objects.get(pk=workspace.pk)


def status_of(workspace: Workspace) -> str:
    return fresh(workspace).status


def events(workspace: Workspace) -> list[tuple[str, str]]:
    rows = StructureEvent.objects.filter(workspace=workspace).order_by("id")
    return [(e.event_type, e.payload.get("cause", "")) for e in rows]


def vms_of(double: Any, workspace: Workspace) -> list[str]:
    """Instance ids of the double's VMs that run ``workspace``."""
    return [vm["instance_id"] for vm in double.vms() if vm["workspace_id"] == str(workspace.pk)]


def instance_of(workspace: Workspace) -> Instance:
    return Instance(fresh(workspace).instance_id)


def online(org: Any, name: str = "PM", **kwargs: Any) -> Workspace:
    workspace = dispatch.create_workspace(org=org, name=name, actor="test", **kwargs)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=60)
    return fresh(workspace)


# --- the happy path ---------------------------------------------------------------------------


def test_a_workspace_on_the_controlplane_gets_a_vm_that_registers_and_heartbeats(cp_fleet, cp_org):
    workspace = online(cp_org)

    assert workspace.backend == "controlplane"
    assert vms_of(cp_fleet, workspace) == [workspace.instance_id]
    assert workspace.instance_id.startswith("vm-")
    (vm,) = cp_fleet.vms()
    assert workspace.url == vm["url"]
    assert (vm["org"], vm["name"], vm["generation"]) == ("acme", "PM", workspace.generation)
    # The token that dispatch minted reached the VM and is the one the console accepts.
    token = agent_token(vm["pid"])
    assert bearer_secrets.hash_token(token) == workspace.token_hash
    wait_for(lambda: fresh(workspace).uptime_seconds >= 1, timeout=20)
    assert "registered with the console" in dispatch.console(workspace_id=workspace.pk)


def test_a_slow_boot_still_comes_online_and_is_not_taken_for_dead(cp_fleet, cp_org):
    post_faults(cp_fleet, slow_boot=2)
    workspace = dispatch.create_workspace(org=cp_org, name="PM", actor="test")

    assert status_of(workspace) == Status.PROVISIONING
    # Booting is running as far as the health sweep is concerned.
    assert dispatch.health_sweep() == []
    assert "booting slowly: 2s" in dispatch.console(workspace_id=workspace.pk)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=60)
    assert events(workspace) == BOOTED


# --- the verbs --------------------------------------------------------------------------------


def test_stop_destroys_the_vm_and_the_workspace_rests_offline(cp_fleet, cp_org):
    workspace = online(cp_org)
    pid = agent_pid(cp_fleet, instance_of(workspace))

    dispatch.stop(workspace_id=workspace.pk, actor="test")

    assert status_of(workspace) == Status.OFFLINE
    assert fresh(workspace).instance_id == ""
    assert cp_fleet.vms() == []
    assert not is_alive(pid)
    assert requests_to(cp_fleet, "DELETE", f"/cp/workspaces/{workspace.instance_id}") == [200]
    assert dispatch.health_sweep() == []
    assert status_of(workspace) == Status.OFFLINE


def test_restart_replaces_the_vm_and_keeps_the_volume(cp_fleet, cp_org):
    workspace = online(cp_org)
    old_pid = agent_pid(cp_fleet, instance_of(workspace))
    volume = Path(environ(old_pid)["MOLECULE_WORKSPACE_DIR"])
    (volume / "notes.txt").write_text("kept across restarts")

    dispatch.restart(workspace_id=workspace.pk, actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=60)

    new = fresh(workspace)
    assert new.instance_id != workspace.instance_id
    assert vms_of(cp_fleet, workspace) == [new.instance_id]
    assert not is_alive(old_pid)
    assert (volume / "notes.txt").read_text() == "kept across restarts"


def test_delete_destroys_the_vm_and_its_volume(cp_fleet, cp_org):
    workspace = online(cp_org)
    volume = Path(environ(agent_pid(cp_fleet, instance_of(workspace)))["MOLECULE_WORKSPACE_DIR"])
    assert volume.is_dir()

    dispatch.delete(workspace_id=workspace.pk, actor="test")

    assert status_of(workspace) == Status.REMOVED
    assert cp_fleet.vms() == []
    assert not volume.exists()


# --- the sweeps notice what happened to the VM --------------------------------------------------


def test_a_lost_vm_is_found_by_the_health_sweep_and_replaced(cp_fleet, cp_org):
    workspace = online(cp_org)
    old_pid = agent_pid(cp_fleet, instance_of(workspace))

    post_faults(cp_fleet, lose=workspace.instance_id)
    assert dispatch.health_sweep() == [str(workspace.pk)]
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=60)

    new = fresh(workspace)
    assert new.instance_id != workspace.instance_id
    assert vms_of(cp_fleet, workspace) == [new.instance_id]
    assert not is_alive(old_pid)
    assert events(workspace) == [
        *BOOTED,
        (E.WORKSPACE_OFFLINE, "instance_lost"),
        (E.WORKSPACE_PROVISIONING, "auto_restart"),
        (E.WORKSPACE_ONLINE, "register"),
    ]


def test_an_unreachable_control_plane_does_not_restart_the_fleet(cp_fleet, cp_org, settings):
    workspace = online(cp_org)
    settings.MOLECULE_CONTROLPLANE_URL = "http://127.0.0.1:9"  # nothing listens there
    backends.reset()

    # The probe fails, which is not the same as "not running": nothing is judged.
    assert dispatch.health_sweep() == []
    assert status_of(workspace) == Status.ONLINE
    assert "console unavailable: Cannot reach the control plane" in dispatch.console(
        workspace_id=workspace.pk
    )


def test_a_provision_that_keeps_failing_ends_failed_with_the_error_in_the_event(cp_fleet, cp_org):
    post_faults(cp_fleet, fail_next=1000)

    workspace = dispatch.create_workspace(org=cp_org, name="PM", actor="test")

    assert status_of(workspace) == Status.FAILED
    failed = StructureEvent.objects.get(
        workspace=workspace, event_type=E.WORKSPACE_PROVISION_FAILED
    )
    assert failed.payload["error"].startswith(
        f"The control plane at {cp_fleet.url} failed to provision workspace acme/PM: "
        "it answered 500"
    )
    # Every attempt of every task retry was bounded: 5 task attempts x (1 + 1 retry).
    assert requests_to(cp_fleet, *PROVISION) == [500] * 10
    assert cp_fleet.vms() == []

    # Once the control plane recovers, retrying the workspace brings it up.
    post_faults(cp_fleet, clear=True, fail_next=0)
    dispatch.provision(workspace_id=workspace.pk, actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=60)


def test_the_orphan_sweep_destroys_a_vm_no_workspace_owns(cp_fleet, cp_org, settings):
    owned = online(cp_org)
    # Booted straight through the backend: a VM no workspace row records.
    orphan = client(cp_fleet).start(make_spec())

    settings.MOLECULE_ORPHAN_GRACE = 60
    assert dispatch.orphan_sweep() == []  # within the grace period: maybe a start not committed
    settings.MOLECULE_ORPHAN_GRACE = 0
    assert dispatch.orphan_sweep() == [orphan.instance_id]

    assert [vm["instance_id"] for vm in cp_fleet.vms()] == [owned.instance_id]
    event = StructureEvent.objects.get(event_type=E.ORPHAN_REMOVED)
    assert event.payload == {"backend": "controlplane", "instance_id": orphan.instance_id}
    assert status_of(owned) == Status.ONLINE
