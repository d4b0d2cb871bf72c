"""The backend contract, run against every backend for real (tests/contract/conftest.py).

Each scenario drives the backend through dispatch with a live console, as the console itself
does, and checks the outcome through the backend's harness (processes, containers, volumes seen
from outside). Celery is eager: a verb's backend call has run when the verb returns; the sweeps
are called directly instead of waiting for beat.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from tests.support.harness import Harness
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db(transaction=True)
# The engine fixtures (docker_engine, docker_settings, docker_console, docker_fleet).
pytest_plugins = ["tests.support.engine_fixtures", "tests.support.cpdouble_fixtures"]

E = EventType
# Generous: two cores, shared with other test runs, and a container start on top.
ONLINE_TIMEOUT = 90


def fresh(workspace: Workspace) -> Workspace:
    return Workspace.objects.get(pk=workspace.pk)


def status_of(workspace: Workspace) -> str:
    return fresh(workspace).status


def online(org: Any, name: str = "PM", **kwargs: Any) -> Workspace:
    workspace = dispatch.create_workspace(org=org, name=name, actor="test", **kwargs)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=ONLINE_TIMEOUT)
    return fresh(workspace)


def causes(workspace: Workspace) -> list[tuple[str, str]]:
    rows = StructureEvent.objects.filter(workspace=workspace).order_by("id")
    return [(e.event_type, e.payload.get("cause", "")) for e in rows]


def health(url: str) -> int | None:
    try:
        # trust_env=False: a proxy from the environment must never carry a loopback request.
        return httpx.get(f"{url}/health", timeout=5, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def test_provision_comes_online_through_registration_and_heartbeats(backend: Harness, org):
    workspace = online(org)

    assert workspace.backend == backend.name
    assert backend.instances_of(workspace) != []
    assert workspace.url.startswith("http://127.0.0.1:")
    assert health(workspace.url) == 200
    # Heartbeats keep arriving after registration.
    wait_for(lambda: fresh(workspace).uptime_seconds >= 1, timeout=30)
    assert causes(workspace) == [
        (E.WORKSPACE_PROVISIONING, "create"),
        (E.WORKSPACE_ONLINE, "register"),
    ]


def test_the_workspace_page_shows_what_ran(backend: Harness, org, owner):
    workspace = online(org)
    # A command line (local) or an image (docker, controlplane), recorded at the start.
    assert workspace.ran
    client = Client()
    client.force_login(owner)

    content = client.get(reverse("workspace", args=[workspace.pk])).content.decode()

    assert f'<dt>Ran</dt><dd class="ran"><code>{escape(workspace.ran)}</code></dd>' in content


def test_console_output_is_the_agents_log(backend: Harness, org):
    workspace = online(org)

    output = wait_for(
        lambda: (
            (text := dispatch.console(workspace_id=workspace.pk))
            and "registered with the console" in text
            and text
        ),
        timeout=30,
    )
    assert str(workspace.pk) in output


def test_stop_ends_the_instance_and_keeps_storage(backend: Harness, org):
    workspace = online(org)

    dispatch.stop(workspace_id=workspace.pk, actor="test")

    assert status_of(workspace) == Status.OFFLINE
    assert backend.instances_of(workspace) == []
    assert fresh(workspace).instance_id == ""
    assert backend.storage_exists(workspace)
    assert dispatch.health_sweep() == []
    assert backend.instances_of(workspace) == []


def test_restart_starts_a_new_instance_and_keeps_the_workspace_files(backend: Harness, org):
    workspace = online(org)
    backend.write_file(workspace, "notes.txt", "kept across restarts")

    dispatch.restart(workspace_id=workspace.pk, actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=ONLINE_TIMEOUT)

    restarted = fresh(workspace)
    assert restarted.instance_id != workspace.instance_id
    assert backend.instances_of(restarted) != []
    assert len(backend.instances_of(restarted)) == len(backend.instances_of(workspace))
    assert backend.read_file(restarted, "notes.txt") == "kept across restarts"


def test_pause_stops_the_instance_and_resume_brings_it_back(backend: Harness, org):
    workspace = online(org)

    dispatch.pause(workspace_id=workspace.pk, actor="test")

    assert status_of(workspace) == Status.PAUSED
    assert backend.instances_of(workspace) == []

    dispatch.resume(workspace_id=workspace.pk, actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=ONLINE_TIMEOUT)
    assert backend.instances_of(workspace) != []
    assert fresh(workspace).instance_id != workspace.instance_id


def test_delete_removes_the_instance_and_its_storage(backend: Harness, org):
    workspace = online(org)
    assert backend.storage_exists(workspace)

    dispatch.delete(workspace_id=workspace.pk, actor="test")

    assert status_of(workspace) == Status.REMOVED
    assert backend.instances_of(workspace) == []
    assert not backend.storage_exists(workspace)


def test_an_instance_killed_by_hand_goes_offline_and_is_restarted(backend: Harness, org):
    workspace = online(org)

    backend.kill(workspace)
    wait_for(lambda: backend.instances_of(workspace) == [], timeout=30)
    assert wait_for(dispatch.health_sweep, timeout=30) == [str(workspace.pk)]
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=ONLINE_TIMEOUT)

    assert fresh(workspace).instance_id != workspace.instance_id
    assert backend.instances_of(workspace) != []
    assert causes(workspace)[-3:] == [
        (E.WORKSPACE_OFFLINE, "instance_lost"),
        (E.WORKSPACE_PROVISIONING, "auto_restart"),
        (E.WORKSPACE_ONLINE, "register"),
    ]


def test_the_orphan_sweep_stops_an_unowned_instance_and_spares_owned_ones(
    backend: Harness, org, settings
):
    owned = online(org)
    orphan = backend.start_orphan()
    assert backend.orphan_alive(orphan)

    settings.MOLECULE_ORPHAN_GRACE = 60
    assert dispatch.orphan_sweep() == []  # within the grace period: maybe a start not committed
    assert backend.orphan_alive(orphan)

    settings.MOLECULE_ORPHAN_GRACE = 0
    assert dispatch.orphan_sweep() == [orphan]

    assert not backend.orphan_alive(orphan)
    event = StructureEvent.objects.get(event_type=E.ORPHAN_REMOVED)
    assert event.payload == {"backend": backend.name, "instance_id": orphan}
    assert status_of(owned) == Status.ONLINE
    assert backend.instances_of(owned) != []
    assert dispatch.orphan_sweep() == []
