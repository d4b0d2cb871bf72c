"""``manage.py import_org``: the importer from the shell, with its errors as CommandError."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from orgs.models import Org
from workspaces import vault
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

GOOD = """\
name: Beta Labs
slug: beta
required_env: [OPENAI_API_KEY]
workspaces:
  - name: PM
    children:
      - {name: Frontend, tier: 1}
      - {name: Backend, tier: 3}
"""


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording backends, and no OPENAI_API_KEY leaking in from the machine running the tests."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def write(tmp_path: Path, text: str, name: str = "beta.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_org", *args, stdout=out)
    return out.getvalue()


def test_it_imports_the_file_and_provisions_through_dispatch(
    tmp_path: Path, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        output = run(write(tmp_path, GOOD), "--env", "OPENAI_API_KEY=sk-cli")
    org = Org.objects.get(slug="beta")
    event = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert output.strip() == (
        "Created org 'beta': 3 workspace(s) in 1 team(s), provisioning on the local backend "
        f"(import event {event.pk})."
    )
    assert event.payload["source"] == "beta.yaml"
    assert event.actor.startswith("cli:")
    rows = Workspace.objects.filter(org=org)
    assert sorted(rows.values_list("name", flat=True)) == ["Backend", "Frontend", "PM"]
    assert set(rows.values_list("status", flat=True)) == {Status.PROVISIONING}
    started = {ws for verb, ws in recording["local"].calls if verb == "start"}
    assert started == {str(pk) for pk in rows.values_list("pk", flat=True)}


def test_a_bad_file_is_a_command_error_with_every_line_and_creates_nothing(
    tmp_path: Path,
) -> None:
    bad = GOOD.replace("tier: 1", "tier: 7").replace("name: Backend", "name: Frontend")
    with pytest.raises(CommandError) as error:
        run(write(tmp_path, bad), "--env", "OPENAI_API_KEY=x")
    assert str(error.value) == (
        "beta.yaml was not imported; nothing was created. 2 problem(s):\n"
        "  line 7: workspaces[0].children[0].tier: unknown tier 7: use 1, 2, 3 or 4\n"
        "  line 8: workspaces[0].children[1].name: duplicate name 'Frontend' among siblings"
    )
    assert not Org.objects.exists()
    assert not StructureEvent.objects.exists()


def test_required_env_is_read_from_the_commands_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environ")
    run(write(tmp_path, GOOD))
    for workspace in Workspace.objects.all():
        assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == "sk-from-environ"


def test_an_env_option_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environ")
    run(write(tmp_path, GOOD), "--env", "OPENAI_API_KEY=sk-from-option")
    workspace = Workspace.objects.get(name="PM")
    assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == "sk-from-option"


def test_a_missing_required_env_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        CommandError, match=r"line 3: required_env\[0\]: OPENAI_API_KEY is required"
    ):
        run(write(tmp_path, GOOD))
    assert not Org.objects.exists()


def test_a_malformed_env_option_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as error:
        run(write(tmp_path, GOOD), "--env", "sk-a-value-without-a-name")
    assert str(error.value) == "--env number 1 is not NAME=VALUE."
    assert not Org.objects.exists()


def test_org_imports_into_an_existing_org(org: Org, tmp_path: Path) -> None:
    output = run(write(tmp_path, GOOD), "--org", org.slug, "--env", "OPENAI_API_KEY=x")
    assert output.startswith(f"Imported into org '{org.slug}': 3 workspace(s)")
    assert Workspace.objects.filter(org=org).count() == 3
    assert not Org.objects.filter(slug="beta").exists()


def test_an_unknown_org_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No org has the slug 'nope'"):
        run(write(tmp_path, GOOD), "--org", "nope", "--env", "OPENAI_API_KEY=x")


def test_an_existing_slug_without_org_says_how_to_import_into_it(org: Org, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=f"--org {org.slug}"):
        run(
            write(tmp_path, GOOD.replace("slug: beta", f"slug: {org.slug}")),
            "--env",
            "OPENAI_API_KEY=x",
        )
    assert not Workspace.objects.exists()


def test_a_dash_reads_the_file_from_standard_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD))
    run("-", "--env", "OPENAI_API_KEY=x")
    assert (
        StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED).payload["source"] == "stdin"
    )


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        run(str(tmp_path / "missing.yaml"))
