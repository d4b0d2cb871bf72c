"""The local backend for real: agents are child processes that register and heartbeat.

Every test here goes through dispatch with a live console (``local_fleet``): the verbs and the
sweeps act on real processes, and the tests look at those processes from the outside (/proc,
signals, the agent's own HTTP port). Celery is eager, so a verb's backend call has run by the time
the verb returns; the sweeps are called directly instead of waiting for beat.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.support import page_walk
from tests.support.agents import CLOSED_REGISTRY, make_spec
from tests.support.procs import agent_pids, agent_token, group_members, is_alive
from tests.support.rows import status_of
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.backends.local import LocalBackend
from workspaces.lifecycle import TransitionRefused
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db(transaction=True)

E = EventType


def fresh(workspace: Workspace) -> Workspace:
    return Workspace.objects.get(pk=workspace.pk)


def events(workspace: Workspace) -> list[tuple[str, str]]:
    rows = StructureEvent.objects.filter(workspace=workspace).order_by("id")
    return [(e.event_type, e.payload.get("cause", "")) for e in rows]


def process(workspace: Workspace) -> tuple[int, int]:
    """(pid, start ticks) of the agent the row records."""
    state = fresh(workspace).backend_state
    return state["pid"], state["start_ticks"]


def online(org: Any, name: str = "PM", **kwargs: Any) -> Workspace:
    workspace = dispatch.create_workspace(org=org, name=name, actor="test", **kwargs)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    return fresh(workspace)


def post_faults(url: str, ratio: float) -> None:
    response = httpx.post(
        f"{url}/control/faults", json={"fail_ratio": ratio}, timeout=5, trust_env=False
    )
    assert response.json() == {"fail_ratio": ratio}


BOOTED = [(E.WORKSPACE_PROVISIONING, "create"), (E.WORKSPACE_ONLINE, "register")]


# --- the happy path ---------------------------------------------------------------------------


def test_a_provisioned_workspace_registers_and_comes_online(local_fleet, org):
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE)
    workspace.refresh_from_db()
    assert workspace.instance_id.startswith("local:")
    assert workspace.url.startswith("http://127.0.0.1:")
    wait_for(lambda: Workspace.objects.get(pk=workspace.pk).uptime_seconds >= 1, timeout=10)


# --- the sweeps notice what happened to the process -------------------------------------------


def test_a_killed_agent_is_found_by_the_health_sweep_and_restarted(local_fleet, org):
    workspace = online(org)
    old_pid, old_ticks = process(workspace)

    os.killpg(old_pid, signal.SIGKILL)
    assert wait_for(dispatch.health_sweep, timeout=20) == [str(workspace.pk)]
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)

    new_pid, new_ticks = process(workspace)
    assert (new_pid, new_ticks) != (old_pid, old_ticks)
    assert is_alive(new_pid, new_ticks)
    assert not is_alive(old_pid, old_ticks)
    assert agent_pids(local_fleet, workspace.pk) == [new_pid]
    assert events(workspace) == [
        *BOOTED,
        (E.WORKSPACE_OFFLINE, "instance_lost"),
        (E.WORKSPACE_PROVISIONING, "auto_restart"),
        (E.WORKSPACE_ONLINE, "register"),
    ]


def test_after_a_kill_by_hand_every_page_renders_and_says_why_it_restarted(
    local_fleet, org, superuser
):
    workspace = online(org)
    os.killpg(process(workspace)[0], signal.SIGKILL)
    assert wait_for(dispatch.health_sweep, timeout=20) == [str(workspace.pk)]
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    fills = {"slug": [org.slug], "workspace_id": [workspace.pk], "key": ["NONE"]}
    fills |= {"token_id": [], "key_id": [], "event_id": []}
    fills |= {"root": ["configs", "workspace"], "name": ["parity-probe"]}
    urls = [*page_walk.page_urls(fills), *page_walk.admin_urls()]
    assert len(urls) > 20
    assert page_walk.server_errors(client, urls) == []
    page = client.get(reverse("workspace", args=[workspace.pk])).content.decode()
    row = fresh(workspace)
    assert "1 automatic" in page
    assert "last exit" in page and row.last_exit_reason in page  # why
    assert row.last_exit_at.isoformat() in page  # when


def test_a_silent_agent_is_found_by_the_liveness_sweep_and_restarted(local_fleet, org, settings):
    settings.MOLECULE_LIVENESS_TIMEOUT = 2
    workspace = online(org)
    old_pid, old_ticks = process(workspace)
    # Frozen, not dead: the backend still sees it running, only the heartbeats stop.
    os.killpg(old_pid, signal.SIGSTOP)
    try:
        assert dispatch.health_sweep() == []
        # The sweep judges silence only after watching for a whole timeout: call it until it acts.
        assert wait_for(dispatch.liveness_sweep, timeout=30, interval=0.25) == [str(workspace.pk)]
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    finally:
        if is_alive(old_pid, old_ticks):
            os.killpg(old_pid, signal.SIGCONT)
            os.killpg(old_pid, signal.SIGKILL)

    new_pid, _ = process(workspace)
    assert new_pid != old_pid
    assert not is_alive(old_pid, old_ticks)
    assert agent_pids(local_fleet, workspace.pk) == [new_pid]
    assert events(workspace) == [
        *BOOTED,
        (E.WORKSPACE_OFFLINE, "heartbeat_lost"),
        (E.WORKSPACE_PROVISIONING, "auto_restart"),
        (E.WORKSPACE_ONLINE, "register"),
    ]


def test_a_crash_looping_agent_is_left_offline_after_the_limit(local_fleet, org, settings):
    settings.MOLECULE_CRASH_LOOP_LIMIT = 2
    workspace = online(org)

    for _ in range(2):  # each crash within the limit is restarted
        os.killpg(process(workspace)[0], signal.SIGKILL)
        assert wait_for(dispatch.health_sweep, timeout=20) == [str(workspace.pk)]
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    pid, ticks = process(workspace)
    os.killpg(pid, signal.SIGKILL)
    assert wait_for(dispatch.health_sweep, timeout=20) == [str(workspace.pk)]

    assert not is_alive(pid, ticks)
    assert status_of(workspace) == Status.OFFLINE
    assert agent_pids(local_fleet, workspace.pk) == []
    assert events(workspace)[-2:] == [
        (E.WORKSPACE_OFFLINE, "instance_lost"),
        (E.WORKSPACE_OFFLINE, "crash_loop"),
    ]
    assert [cause for _, cause in events(workspace)].count("auto_restart") == 2
    # Nothing brings it back by itself.
    assert dispatch.health_sweep() == []
    assert dispatch.liveness_sweep() == []
    assert status_of(workspace) == Status.OFFLINE


def test_an_agent_that_never_registers_times_out_and_is_stopped(local_fleet, org, settings):
    settings.MOLECULE_REGISTRY_URL = CLOSED_REGISTRY
    settings.MOLECULE_PROVISION_TIMEOUT = 1
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    pid, ticks = process(workspace)
    assert is_alive(pid, ticks)

    assert wait_for(dispatch.provision_timeout_sweep, timeout=20) == [str(workspace.pk)]

    assert status_of(workspace) == Status.FAILED
    assert not is_alive(pid, ticks)
    assert agent_pids(local_fleet, workspace.pk) == []
    failed = StructureEvent.objects.filter(
        workspace=workspace, event_type=E.WORKSPACE_PROVISION_FAILED
    ).get()
    assert failed.payload["error"] == "no registration within 1s"
    # The boot log travels with the event, so the operator sees why it never registered.
    assert "console unreachable" in failed.payload["console"]


def test_an_agent_that_dies_before_registering_is_failed_not_restarted(local_fleet, org, settings):
    settings.MOLECULE_REGISTRY_URL = CLOSED_REGISTRY
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    pid, ticks = process(workspace)

    os.killpg(pid, signal.SIGKILL)
    assert wait_for(dispatch.health_sweep, timeout=20) == [str(workspace.pk)]

    assert not is_alive(pid, ticks)
    assert status_of(workspace) == Status.FAILED
    assert events(workspace) == [
        (E.WORKSPACE_PROVISIONING, "create"),
        (E.WORKSPACE_PROVISION_FAILED, "provision_failed"),
    ]
    assert agent_pids(local_fleet, workspace.pk) == []
    assert dispatch.health_sweep() == []


def test_a_degraded_agent_is_marked_degraded_and_recovers(local_fleet, org):
    workspace = online(org)

    post_faults(workspace.url, 1.0)
    wait_for(lambda: status_of(workspace) == Status.DEGRADED, timeout=20)
    assert fresh(workspace).last_error_rate >= 0.5
    assert "injected fault" in fresh(workspace).last_sample_error

    post_faults(workspace.url, 0.0)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=20)
    assert events(workspace)[-2:] == [
        (E.WORKSPACE_DEGRADED, "degrade"),
        (E.WORKSPACE_ONLINE, "recover"),
    ]
    assert fresh(workspace).last_error_rate < 0.1


# --- the verbs ----------------------------------------------------------------------------------


def run_sweeps_for(seconds: float) -> list[str]:
    """Run every sweep repeatedly for a while; returns whatever they acted on."""
    acted: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        acted += dispatch.health_sweep() + dispatch.liveness_sweep()
        acted += dispatch.provision_timeout_sweep()
        time.sleep(0.1)
    return acted


def test_stop_kills_the_agent_and_no_sweep_restarts_it(local_fleet, org, settings):
    settings.MOLECULE_LIVENESS_TIMEOUT = 0.5
    settings.MOLECULE_PROVISION_TIMEOUT = 0.5
    workspace = online(org)
    pid, ticks = process(workspace)

    dispatch.stop(workspace_id=workspace.pk, actor="test")

    assert not is_alive(pid, ticks)
    assert status_of(workspace) == Status.OFFLINE
    assert fresh(workspace).instance_id == ""
    # Longer than the (shortened) timeouts: sweeps see the row but leave an operator's stop be.
    assert run_sweeps_for(1.5) == []
    assert status_of(workspace) == Status.OFFLINE
    assert agent_pids(local_fleet, workspace.pk) == []


def test_pause_cascades_to_a_child_and_resume_brings_both_back(local_fleet, org):
    lead = online(org, "Lead")
    child = online(org, "Worker", parent=lead)
    before = {ws.pk: process(ws) for ws in (lead, child)}

    result = dispatch.pause(workspace_id=lead.pk, actor="test")

    assert {ws.pk for ws in result.moved} == {lead.pk, child.pk}
    for ws in (lead, child):
        assert status_of(ws) == Status.PAUSED
        assert not is_alive(*before[ws.pk])
        assert agent_pids(local_fleet, ws.pk) == []

    dispatch.resume(workspace_id=lead.pk, actor="test")

    for ws in (lead, child):
        wait_for(lambda ws=ws: status_of(ws) == Status.ONLINE, timeout=30)
        assert process(ws) != before[ws.pk]
        assert agent_pids(local_fleet, ws.pk) == [process(ws)[0]]


def test_delete_stops_the_agents_and_removes_their_directories(local_fleet, org):
    lead = online(org, "Lead")
    child = online(org, "Worker", parent=lead)
    processes = {ws.pk: process(ws) for ws in (lead, child)}
    for ws in (lead, child):
        assert (local_fleet / str(ws.pk)).is_dir()

    dispatch.delete(workspace_id=lead.pk, actor="test")

    for ws in (lead, child):
        assert status_of(ws) == Status.REMOVED
        assert not is_alive(*processes[ws.pk])
        assert not (local_fleet / str(ws.pk)).exists()


def test_delete_of_a_stopped_workspace_removes_its_directory(local_fleet, org):
    workspace = online(org)
    dispatch.stop(workspace_id=workspace.pk, actor="test")
    assert (local_fleet / str(workspace.pk)).is_dir()

    dispatch.delete(workspace_id=workspace.pk, actor="test")

    assert status_of(workspace) == Status.REMOVED
    assert not (local_fleet / str(workspace.pk)).exists()


def test_restart_starts_a_new_process_and_refuses_the_old_token(local_fleet, org, live_server):
    workspace = online(org)
    old_pid, old_ticks = process(workspace)
    old_token = agent_token(old_pid)

    dispatch.restart(workspace_id=workspace.pk, actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)

    new_pid, _ = process(workspace)
    assert new_pid != old_pid
    assert not is_alive(old_pid, old_ticks)
    assert agent_pids(local_fleet, workspace.pk) == [new_pid]
    assert agent_token(new_pid) != old_token
    response = httpx.post(
        f"{live_server.url}/registry/heartbeat",
        json={"workspace_id": str(workspace.pk), "error_rate": 0},
        headers={"Authorization": f"Bearer {old_token}"},
        trust_env=False,
    )
    assert response.status_code == 401


def test_an_agent_holding_a_superseded_token_exits_by_itself(local_fleet, org, settings):
    # An agent the console no longer accepts (say a restart's stop failed to reach it) leaves on
    # its own at its next call, rather than reporting for a workspace that moved on.
    workspace = online(org)
    old_token = agent_token(process(workspace)[0])
    dispatch.restart(workspace_id=workspace.pk, actor="test")
    # A root of its own inside the fleet's (so teardown kills it if it lingers), but the
    # workspace's id and its previous token.
    spec = replace(
        make_spec(),
        workspace_id=str(workspace.pk),
        token=old_token,
        platform_url=settings.MOLECULE_REGISTRY_URL,
    )
    stray_backend = LocalBackend(local_fleet / "stray")
    stray = stray_backend.start(spec)

    wait_for(lambda: not stray_backend.is_running(stray), timeout=20)
    assert "no longer accepts this agent's token; exiting" in stray_backend.console(stray)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)


def test_concurrent_restart_and_provision_leave_exactly_one_agent(local_fleet, org):
    workspace = online(org)

    def in_thread(verb: Callable[..., Any], barrier: threading.Barrier, outcome: list) -> None:
        try:
            barrier.wait(timeout=10)
            verb(workspace_id=workspace.pk, actor="test")
            outcome.append("done")
        except TransitionRefused:
            outcome.append("refused")
        finally:
            connection.close()  # each thread has its own connection

    for _ in range(5):
        dispatch.stop(workspace_id=workspace.pk, actor="test")
        assert agent_pids(local_fleet, workspace.pk) == []
        barrier, outcome = threading.Barrier(2), []
        threads = [
            threading.Thread(target=in_thread, args=(verb, barrier, outcome))
            for verb in (dispatch.restart, dispatch.provision)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert "done" in outcome and len(outcome) == 2, outcome
        # Both verbs and their backend calls have finished: one agent, the one the row records.
        assert agent_pids(local_fleet, workspace.pk) == [process(workspace)[0]]
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
        assert agent_pids(local_fleet, workspace.pk) == [process(workspace)[0]]


# --- the orphan sweep ---------------------------------------------------------------------------


def test_the_orphan_sweep_stops_an_unowned_agent_and_leaves_owned_ones(local_fleet, org, settings):
    owned = online(org)
    # Started straight through the backend: an instance no workspace row records.
    orphan = LocalBackend().start(make_spec(env={"MOLECULE_AGENT_SIDECAR": "sleep 300"}))
    orphan_pid, orphan_ticks = orphan.state["pid"], orphan.state["start_ticks"]
    wait_for(lambda: len(group_members(orphan_pid)) == 2, timeout=20)

    settings.MOLECULE_ORPHAN_GRACE = 60
    assert dispatch.orphan_sweep() == []  # within the grace period: maybe a start not committed
    assert is_alive(orphan_pid, orphan_ticks)

    settings.MOLECULE_ORPHAN_GRACE = 0
    assert dispatch.orphan_sweep() == [orphan.instance_id]

    assert group_members(orphan_pid) == []
    event = StructureEvent.objects.get(event_type=E.ORPHAN_REMOVED)
    assert event.payload == {"backend": "local", "instance_id": orphan.instance_id}
    assert event.workspace is None
    owned_pid, owned_ticks = process(owned)
    assert is_alive(owned_pid, owned_ticks)
    assert status_of(owned) == Status.ONLINE
    assert dispatch.orphan_sweep() == []
    assert is_alive(owned_pid, owned_ticks)
