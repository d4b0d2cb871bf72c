"""The stand-in for Molecule's runtime (tests/support/molecule_agent.py) against a live registry.

No backend here: the test writes the configs directory and starts the stand-in itself, the way a
backend would (docs/agent-contract.md), so what is checked is the wire: the requests it sends are
Molecule's, field for field, and the registry takes them: register with ``id``, heartbeats, the
wedge and the mini-heartbeats, the token rule. tests/contract/test_molecule_runtime.py runs the
same program on every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.molecule_runtime import (
    Steer,
    configs_dir,
    expect_molecule_wire,
    free_port,
    started,
    write_token,
)
from tests.support.rows import status_of
from tests.support.waiting import wait_for
from workspaces import bearer_secrets
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = "0.3"


@pytest.fixture
def workspace(org: Any) -> tuple[Workspace, str]:
    token = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org, name="Molecule PM", backend="local", token_hash=bearer_secrets.hash_token(token)
    )
    return workspace, token


def launch(tmp_path: Path, live_server: Any, workspace: Workspace, token: str | None) -> Any:
    port = free_port()
    configs = configs_dir(
        tmp_path / "configs", token=token, workspace_id=str(workspace.pk), name="PM", port=port
    )
    env = {
        "WORKSPACE_ID": str(workspace.pk),
        "PLATFORM_URL": live_server.url,
        "CONFIGS_DIR": str(configs),
        "WORKSPACE_CONFIG_PATH": str(configs),
        "HOSTNAME": "127.0.0.1",
        "MOLECULE_HEARTBEAT_INTERVAL": INTERVAL,
    }
    return started(env, tmp_path / "agent.log"), f"http://127.0.0.1:{port}", configs


def moves(workspace: Workspace) -> list[tuple[str, str]]:
    rows = StructureEvent.objects.filter(workspace=workspace).order_by("id")
    return [(e.event_type, e.payload.get("cause", "")) for e in rows]


def ready(steer: Steer) -> bool:
    try:
        return bool(steer.card())
    except httpx.HTTPError:
        return False


def test_it_registers_with_id_heartbeats_and_wedges_like_molecules_runtime(
    workspace, tmp_path, live_server
) -> None:
    workspace, token = workspace
    process, url, configs = launch(tmp_path, live_server, workspace, token)
    with process:
        steer = Steer(url, token)
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=20)
        wait_for(lambda: ready(steer))
        row = Workspace.objects.get(pk=workspace.pk)
        assert row.agent_card["name"] == "PM"
        wait_for(lambda: Workspace.objects.get(pk=workspace.pk).runtime_metadata)
        # Its card, at both paths Molecule's runtime is read at.
        assert steer.card("/.well-known/agent.json") == steer.card() == row.agent_card

        steer.wedge("SDK init timeout — restart workspace")
        wait_for(lambda: status_of(workspace) == Status.DEGRADED, timeout=10)
        # A task starts and ends while wedged: two mini-heartbeats, still degraded.
        steer.task("Drafting report")
        steer.task("")
        row = Workspace.objects.get(pk=workspace.pk)
        assert (row.status, row.runtime_state) == (Status.DEGRADED, "wedged")
        assert row.last_sample_error == "SDK init timeout — restart workspace"

        steer.unwedge()
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=10)

        # The wedge by a file in the configs directory, for backends a test cannot reach.
        (configs / ".wedge").write_text("stuck in a tool call")
        wait_for(lambda: status_of(workspace) == Status.DEGRADED, timeout=10)
        (configs / ".wedge").unlink()
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=10)

        sent = steer.sent()
    expect_molecule_wire(sent, token=token, workspace_id=str(workspace.pk))
    assert {r["answer"] for r in sent} == {200}
    minis = [r["json"] for r in sent if "runtime_metadata" not in r["json"]][1:]
    assert [(m["current_task"], m["active_tasks"]) for m in minis] == [
        ("Drafting report", 1),
        ("", 0),
    ]
    assert any(r["json"].get("runtime_state") == "wedged" for r in sent)
    assert moves(workspace) == [
        (EventType.WORKSPACE_ONLINE, "register"),
        (EventType.WORKSPACE_DEGRADED, "degrade"),
        (EventType.WORKSPACE_ONLINE, "recover"),
        (EventType.WORKSPACE_DEGRADED, "degrade"),
        (EventType.WORKSPACE_ONLINE, "recover"),
    ]
    first = StructureEvent.objects.filter(workspace=workspace).order_by("id").first()
    assert "via" not in first.payload  # it came online by its registration


def test_a_token_written_after_it_started_brings_it_online_through_its_heartbeats(
    workspace, tmp_path, live_server
) -> None:
    # Molecule's runtime registers once: with no token yet, that one call is a 401 and is never
    # repeated. It reads the file again at each heartbeat until it finds a token, and the first
    # authenticated heartbeat is the registration.
    workspace, token = workspace
    process, url, configs = launch(tmp_path, live_server, workspace, None)
    with process:
        log = tmp_path / "agent.log"
        wait_for(lambda: log.read_text().count("Registered with platform: 401"))
        assert status_of(workspace) == Status.PROVISIONING
        write_token(configs, token)
        wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=10)
        sent = Steer(url, token).sent()
    assert [r["path"] for r in sent].count("/registry/register") == 1
    unauthorized = [r for r in sent if r["answer"] == 401]
    assert unauthorized and all("Authorization" not in r["headers"] for r in unauthorized)
    event = StructureEvent.objects.get(workspace=workspace)
    assert (event.payload["cause"], event.payload["via"]) == ("register", "heartbeat")
    assert Workspace.objects.get(pk=workspace.pk).agent_card == {}  # its register was refused


def test_a_wrong_token_never_brings_it_online(workspace, tmp_path, live_server) -> None:
    workspace, _token = workspace
    process, url, _configs = launch(tmp_path, live_server, workspace, "not-this-workspaces")
    with process:
        steer = Steer(url, "not-this-workspaces")
        wait_for(lambda: len(steer.sent()) >= 3 if ready(steer) else False)
        sent = steer.sent()
    assert {r["answer"] for r in sent} == {401}
    assert status_of(workspace) == Status.PROVISIONING
    assert not StructureEvent.objects.filter(workspace=workspace).exists()


def test_without_workspace_id_it_exits_as_molecules_runtime_does(tmp_path) -> None:
    configs = configs_dir(tmp_path / "c", token="t", workspace_id="x", name="PM", port=free_port())
    with started({"CONFIGS_DIR": str(configs)}, tmp_path / "agent.log") as process:
        assert process.wait(timeout=10) == 1
    assert "FATAL: WORKSPACE_ID env var is not set" in (tmp_path / "agent.log").read_text()
