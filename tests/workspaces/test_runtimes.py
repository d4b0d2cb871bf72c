"""The runtime catalogue: which program runs each runtime, and what no door lets through.

Without ``MOLECULE_RUNTIMES_FILE`` every runtime name Molecule knows runs the built-in agent; the
operator's TOML file adds or replaces entries. A runtime in neither is refused at create (every
door, the same sentence with the known names) and at import, and a row that still has one is
not started.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from orgs.importer import import_org
from orgs.models import Org
from orgs.orgfile import InvalidOrgFile
from tests.support.keys import Api, mint_token
from workspaces import dispatch, runtimes
from workspaces.checks import runtimes_file_check
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

CATALOGUE = """\
[runtimes.hermes]
command = ["/opt/hermes/start", "--a2a"]
image = "molecule-hermes:1.4"

[runtimes.in-house]
command = ["/usr/local/bin/our-agent"]
"""


@pytest.fixture
def runtimes_file(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "runtimes.toml"
    path.write_text(CATALOGUE)
    settings.MOLECULE_RUNTIMES_FILE = str(path)
    return path


def test_without_a_file_every_molecule_runtime_runs_the_built_in_agent(settings: Any) -> None:
    settings.MOLECULE_RUNTIMES_FILE = ""
    found = runtimes.catalogue()
    assert set(found) == set(runtimes.KNOWN)
    assert all(r.builtin_command and r.builtin_image for r in found.values())


def test_the_operators_file_adds_and_overrides(runtimes_file: Path) -> None:
    hermes, ours = runtimes.get("hermes"), runtimes.get("in-house")
    assert hermes.command == ("/opt/hermes/start", "--a2a")
    assert hermes.image == "molecule-hermes:1.4"
    assert ours.command == ("/usr/local/bin/our-agent",) and ours.builtin_image
    assert runtimes.get("langgraph").builtin_command  # the built-in names stay


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[runtimes.x\n", "is not TOML"),
        ("[runtimes.x]\ncommand = 'one string'\n", "must be a list of strings"),
        ("[runtimes.x]\nimage = ''\n", "must be a non-empty string"),
        ("[runtimes.x]\nimgae = 'typo'\n", "unknown keys: ['imgae']"),
        ("[other]\n", "must hold only [runtimes.<name>] tables"),
    ],
)
def test_a_bad_file_is_a_system_check_error_and_never_a_500(
    tmp_path: Path, settings: Any, org: Org, text: str, said: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    settings.MOLECULE_RUNTIMES_FILE = str(path)
    [error] = runtimes_file_check()
    assert said in error.msg and error.id == "workspaces.E001"
    with pytest.raises(ValidationError, match="runtime catalogue cannot be read"):
        dispatch.create_workspace(org=org, name="PM", runtime="langgraph", actor="test")


def test_every_door_refuses_an_unknown_runtime_with_the_known_ones(
    org: Org, recording: dict[str, Any], runtimes_file: Path
) -> None:
    sentence = "unknown runtime 'hermse': this console runs "
    with pytest.raises(ValidationError, match=sentence):
        dispatch.create_workspace(org=org, name="PM", runtime="hermse", actor="test")
    api = Api(mint_token(org), Client())
    response = api.post(f"orgs/{org.slug}/workspaces", {"name": "PM", "runtime": "hermse"})
    assert response.status_code == 400
    assert "in-house" in " ".join(response.json()["fields"]["runtime"])
    with pytest.raises(CommandError, match=sentence):
        call_command(
            "workspace",
            "create",
            "--org",
            org.slug,
            "--name",
            "PM",
            "--runtime",
            "hermse",
            stdout=io.StringIO(),
        )
    text = "name: Acme\nslug: acme-rt\nworkspaces:\n  - name: PM\n    runtime: hermse\n"
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(text, actor="test")
    assert any(p.line == 5 and sentence in p.message for p in invalid.value.problems)
    assert not Workspace.objects.exists()


def test_a_runtime_from_the_file_is_accepted(
    org: Org, recording: dict[str, Any], runtimes_file: Path
) -> None:
    workspace = dispatch.create_workspace(org=org, name="PM", runtime="in-house", actor="test")
    assert workspace.runtime == "in-house"


def test_the_spec_carries_what_the_catalogue_says(
    org: Org,
    recording: dict[str, Any],
    runtimes_file: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.create_workspace(org=org, name="PM", runtime="hermes", actor="test")
    [spec] = recording["local"].specs
    assert spec.command == ("/opt/hermes/start", "--a2a")
    assert spec.image == "molecule-hermes:1.4"


def test_a_row_whose_runtime_left_the_catalogue_is_not_started(
    org: Org,
    recording: dict[str, Any],
    runtimes_file: Path,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        workspace = dispatch.create_workspace(org=org, name="PM", runtime="in-house", actor="test")
    runtimes_file.write_text("")  # the operator dropped it
    other = runtimes_file.with_name("runtimes-2.toml")
    other.write_text("")
    settings.MOLECULE_RUNTIMES_FILE = str(other)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    failed = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.WORKSPACE_PROVISION_FAILED
    ).get()
    assert "unknown runtime 'in-house'" in failed.payload["error"]
