"""What a workspace's agent prints reaches the operator with the workspace's secrets masked.

The agent here is a real process the local backend starts from an operator's runtime catalogue
entry: a shell that prints a secret from its environment and its own token from the configs
directory, as a careless agent would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_for
from workspaces import dispatch, vault
from workspaces.models import EventType, StructureEvent

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sk-live-9a8b7c6d5e4f"
LEAKY = """
[runtimes.leaky]
command = [
  "/bin/sh", "-c",
  "echo key=$API_TOKEN; echo tok=$(cat \\"$CONFIGS_DIR/.auth_token\\"); exec sleep 120",
]
"""


@pytest.fixture
def leaky_runtime(settings: Any, tmp_path: Path, local_fleet: Path) -> str:
    path = tmp_path / "runtimes.toml"
    path.write_text(LEAKY)
    settings.MOLECULE_RUNTIMES_FILE = str(path)
    return "leaky"


def test_console_output_shows_secrets_and_the_agents_token_masked(
    org: Any, leaky_runtime: str
) -> None:
    workspace = dispatch.create_workspace(
        org=org, name="Leaky", actor="test", runtime=leaky_runtime
    )
    vault.set_secret(workspace_id=workspace.pk, key="API_TOKEN", value=SECRET, actor="test")
    # The secret reaches the agent at its next start.
    dispatch.VERBS["restart"](workspace_id=workspace.pk, actor="test")

    def printed() -> str | None:
        shown = dispatch.console(workspace_id=workspace.pk)
        return shown if "key=[secret:" in shown and "tok=" in shown else None

    shown = wait_for(printed, timeout=30)
    assert "key=[secret:API_TOKEN]" in shown
    assert "tok=[secret:auth_token]" in shown
    assert SECRET not in shown


def test_an_event_keeps_what_a_dying_agent_printed_with_its_secrets_masked(
    org: Any, settings: Any, tmp_path: Path, local_fleet: Path
) -> None:
    path = tmp_path / "runtimes.toml"
    path.write_text(
        '[runtimes.dying]\ncommand = ["/bin/sh", "-c", "echo key=$API_TOKEN; sleep 1; exit 1"]\n'
    )
    settings.MOLECULE_RUNTIMES_FILE = str(path)
    workspace = dispatch.create_workspace(org=org, name="Dying", actor="test", runtime="dying")
    vault.set_secret(workspace_id=workspace.pk, key="API_TOKEN", value=SECRET, actor="test")
    dispatch.VERBS["restart"](workspace_id=workspace.pk, actor="test")

    def failed() -> StructureEvent | None:
        dispatch.health_sweep()
        return StructureEvent.objects.filter(
            workspace=workspace, event_type=EventType.WORKSPACE_PROVISION_FAILED
        ).first()

    event = wait_for(failed, timeout=30, interval=0.5)
    assert "key=[secret:API_TOKEN]" in event.payload["console"]
    assert SECRET not in json.dumps(list(StructureEvent.objects.values("payload")))
