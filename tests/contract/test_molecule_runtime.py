"""Molecule's runtime on every backend: its stand-in comes online, degrades when wedged, recovers.

The stand-in (tests/support/molecule_agent.py) speaks exactly Molecule's runtime's requests
(docs/registry-protocol.md): it registers once with ``id``, reads its token from
``$CONFIGS_DIR/.auth_token`` and its name and port from ``$WORKSPACE_CONFIG_PATH/config.yaml``,
and heartbeats with ``runtime_state`` and ``runtime_metadata``. Nothing here is special to it:
the operator's runtime catalogue (``MOLECULE_RUNTIMES_FILE``) names it, as it would name
Molecule's own runtime, with a command for the local backend and an image for docker and the
control plane, and each backend starts it under the agent contract (docs/agent-contract.md).

The control-plane double boots every VM with one program, its ``agent``; here that is the
stand-in, as a control plane whose image is Molecule's runtime would.

The wedge is switched by a file in the agent's configs directory (``.wedge``; the stand-in reads
it at every heartbeat), written where each backend keeps that directory.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpdouble import ControlPlaneDouble
from tests.support.cpdouble import CP_TOKEN
from tests.support.harness import Harness
from tests.support.molecule_runtime import AGENT, CAPABILITY_KEYS, build_image
from tests.support.procs import kill_all_under
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db(transaction=True)
pytest_plugins = ["tests.support.engine_fixtures", "tests.support.cpdouble_fixtures"]

E = EventType
RUNTIME = "molecule-test"
ONLINE_TIMEOUT = 90
REASON = "SDK init timeout — restart workspace"
# The stand-in needs only the standard library; the interpreter every agent user can run (the
# test's own may live under a home directory the agents' uids cannot read).
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "python3"


def fresh(workspace: Workspace) -> Workspace:
    return Workspace.objects.get(pk=workspace.pk)


def status_of(workspace: Workspace) -> str:
    return fresh(workspace).status


def causes(workspace: Workspace) -> list[tuple[str, str]]:
    rows = StructureEvent.objects.filter(workspace=workspace).order_by("id")
    return [(e.event_type, e.payload.get("cause", "")) for e in rows]


# --- where each backend keeps the agent's configs directory --------------------------------------


def set_wedge(backend: Harness, workspace: Workspace, reason: str | None) -> None:
    """Write (``reason``) or remove (None) ``.wedge`` in the running agent's configs directory."""
    workspace = fresh(workspace)
    if backend.name == "docker":
        container = backend.client.containers.get(workspace.backend_state["container"])
        if reason is None:
            code, output = container.exec_run(["rm", "-f", "/configs/.wedge"])
            assert code == 0, output
            return
        data = reason.encode()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(".wedge")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        assert container.put_archive("/configs", archive.getvalue())
        return
    if backend.name == "local":
        configs = Path(backend.context) / str(workspace.pk) / "configs"
    else:  # the control-plane double: the VM's /configs
        configs = Path(backend.context.root) / "vms" / workspace.instance_id / "configs"
    assert configs.is_dir(), configs
    if reason is None:
        (configs / ".wedge").unlink(missing_ok=True)
    else:
        (configs / ".wedge").write_text(reason)


@pytest.fixture
def cp_double(tmp_path: Path) -> Iterator[ControlPlaneDouble]:
    """The control-plane double (tests/support/cpdouble_fixtures.py) whose VMs run the stand-in."""
    root = tmp_path / "cp"
    with ControlPlaneDouble(token=CP_TOKEN, root=root, agent=AGENT) as double:
        yield double
    kill_all_under(root / "vms")


@pytest.fixture
def molecule_runtime(backend: Harness, tmp_path: Path, settings: Any) -> str:
    """The catalogue entry that runs the stand-in: its command locally, its image elsewhere."""
    image = "molecule-test-runtime:vm"  # the double runs its one program whatever the image
    if backend.name == "docker":
        image = build_image(backend.client, settings.MOLECULE_WORKSPACE_IMAGE)
    catalogue = tmp_path / "runtimes.toml"
    catalogue.write_text(
        f'[runtimes.{RUNTIME}]\ncommand = ["{PYTHON}", "-I", "-u", "{AGENT}"]\nimage = "{image}"\n'
    )
    settings.MOLECULE_RUNTIMES_FILE = str(catalogue)
    return RUNTIME


def test_molecules_runtime_comes_online_degrades_when_wedged_and_recovers(
    backend: Harness, org: Any, molecule_runtime: str
) -> None:
    workspace = dispatch.create_workspace(
        org=org, name="Molecule PM", actor="test", runtime=molecule_runtime
    )
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=ONLINE_TIMEOUT)
    assert backend.instances_of(workspace) != []
    row = fresh(workspace)
    # Its registration (Molecule's: ``id``, the card built from config.yaml) brought it online,
    # not a heartbeat standing in for a lost one.
    online = StructureEvent.objects.filter(workspace=workspace, event_type=E.WORKSPACE_ONLINE)
    assert [e.payload.get("via") for e in online] == [None]
    assert row.agent_card["name"] == "Molecule PM"
    assert set(row.agent_card) == {
        "name",
        "description",
        "version",
        "url",
        "skills",
        "capabilities",
    }
    # Its heartbeats: runtime_metadata with Molecule's seven capabilities.
    wait_for(lambda: fresh(workspace).runtime_metadata, timeout=30)
    # (jsonb keeps keys in an order of its own.)
    assert sorted(fresh(workspace).runtime_metadata["capabilities"]) == sorted(CAPABILITY_KEYS)

    set_wedge(backend, workspace, REASON)
    wait_for(lambda: status_of(workspace) == Status.DEGRADED, timeout=30)
    row = fresh(workspace)
    assert (row.runtime_state, row.last_sample_error) == ("wedged", REASON)
    degraded = StructureEvent.objects.get(workspace=workspace, event_type=E.WORKSPACE_DEGRADED)
    assert degraded.actor == f"agent:{row.short_id}"
    assert (degraded.payload["runtime_state"], degraded.payload["sample_error"]) == (
        "wedged",
        REASON,
    )

    # Degraded, it still takes a message, at its URL itself, as Molecule's A2A proxy posts it.
    exchange = dispatch.send_message(workspace_id=workspace.pk, actor="test", text="Still there?")
    assert exchange.text == "Molecule PM received the message"

    set_wedge(backend, workspace, None)
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    assert fresh(workspace).runtime_state == ""
    assert causes(workspace) == [
        (E.WORKSPACE_PROVISIONING, "create"),
        (E.WORKSPACE_ONLINE, "register"),
        (E.WORKSPACE_DEGRADED, "degrade"),
        (E.A2A_MESSAGE, ""),
        (E.WORKSPACE_ONLINE, "recover"),
    ]
    output = dispatch.console(workspace_id=workspace.pk)
    assert "Registered with platform: 200" in output
