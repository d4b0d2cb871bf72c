"""Org import as a service: every kind of bad file is refused with its line and creates nothing;
a good one creates the org and its tree in one transaction and provisions through dispatch.

The recording backends (tests/support/fakes.py) stand in for real ones: what matters here is
what the importer asks dispatch to do. tests/orgs/test_import_fleet.py imports onto real agents.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from orgs import importer, orgfile
from orgs.importer import InvalidOrgFile, import_org
from orgs.models import Org, OrgMembership, Team
from workspaces import dispatch, fields, vault
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

ACME = """\
name: Acme Research
slug: acme-research
defaults: {runtime: crewai, tier: 3}
required_env: [OPENAI_API_KEY]
workspaces:
  - name: PM
    role: Lead
    tier: 2
    children:
      - {name: Frontend, tier: 1}
      - name: Backend
        workspace_dir: /srv/acme
        children:
          - {name: DBA, role: Database}
  - name: Scout
"""
ENV = {"OPENAI_API_KEY": "sk-test-not-a-real-key"}


@pytest.fixture(autouse=True)
def _recording(recording: dict[str, Any]) -> None:
    """No real agents here: every backend is the recording one."""


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def everything() -> tuple[int, int, int, int]:
    """What an import would write: orgs, workspaces, teams, events."""
    return (
        Org.objects.count(),
        Workspace.objects.count(),
        Team.objects.count(),
        StructureEvent.objects.count(),
    )


def problems_of(text: str, **kwargs: Any) -> list[str]:
    before = everything()
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(text, actor="test", **kwargs)
    assert everything() == before, "a refused file wrote something"
    return [str(p) for p in invalid.value.problems]


# --- a valid file -------------------------------------------------------------------------------


def test_a_valid_file_creates_the_org_and_the_whole_tree(
    recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        result = import_org(ACME, actor="user:olivia", env=ENV, source="acme.yaml")

    org = Org.objects.get(slug="acme-research")
    assert (org.name, org.backend, result.created_org) == ("Acme Research", "local", True)
    rows = {w.name: w for w in Workspace.objects.filter(org=org)}
    assert set(rows) == {"PM", "Frontend", "Backend", "DBA", "Scout"}
    assert rows["PM"].parent is None and rows["Scout"].parent is None
    assert rows["Frontend"].parent == rows["PM"]
    assert rows["Backend"].parent == rows["PM"]
    assert rows["DBA"].parent == rows["Backend"]
    # The node's own tier wins over the file's defaults; everything else gets the defaults.
    assert {n: w.tier for n, w in rows.items()} == {
        "PM": 2,
        "Frontend": 1,
        "Backend": 3,
        "DBA": 3,
        "Scout": 3,
    }
    assert {w.runtime for w in rows.values()} == {"crewai"}
    assert (rows["PM"].role, rows["DBA"].role) == ("Lead", "Database")
    assert rows["Backend"].workspace_dir == "/srv/acme"
    # Leads get a Team row and keep their children in the spec, so collapse/expand works.
    assert set(Team.objects.filter(org=org).values_list("lead__name", flat=True)) == {
        "PM",
        "Backend",
    }
    assert [c["name"] for c in rows["PM"].spec["children"]] == ["Frontend", "Backend"]
    assert result.teams == 2


def test_every_imported_workspace_is_provisioned_through_dispatch_after_commit(
    recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = import_org(ACME, actor="test", env=ENV)
    # Nothing reached a backend inside the transaction: the starts are queued together, one
    # message per batch of 100 (dispatch/batch.py), sent when the transaction commits.
    assert recording["local"].calls == []
    assert len(result.workspaces) == 5
    assert len(callbacks) == 1
    for callback in callbacks:
        callback()
    started = sorted(ws for verb, ws in recording["local"].calls if verb == "start")
    assert started == sorted(str(w.pk) for w in result.workspaces)
    assert set(Workspace.objects.values_list("status", flat=True)) == {Status.PROVISIONING}
    provisioning = StructureEvent.objects.filter(
        event_type=EventType.WORKSPACE_PROVISIONING, actor="test"
    )
    assert provisioning.count() == 5
    assert {e.payload["cause"] for e in provisioning} == {"create"}


def test_the_import_writes_org_created_and_org_imported_with_the_counts_and_ids() -> None:
    result = import_org(ACME, actor="user:olivia", env=ENV, source="acme.yaml")
    created = StructureEvent.objects.get(event_type=EventType.ORG_CREATED)
    assert (created.org, created.actor) == (result.org, "user:olivia")
    imported = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert imported == result.event
    assert imported.payload["counts"] == {"workspaces": 5, "teams": 2}
    assert sorted(imported.payload["workspaces"]) == sorted(
        str(pk) for pk in Workspace.objects.values_list("pk", flat=True)
    )
    assert imported.payload["source"] == "acme.yaml"
    assert imported.payload["created_org"] is True


def test_a_failure_halfway_through_the_tree_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One transaction: when the secrets cannot be written, after the workspaces, their teams and
    # their events were, the org and everything under it are rolled back.
    calls = []

    def failing(*args: Any, **kwargs: Any) -> int:
        calls.append((Workspace.objects.count(), Team.objects.count()))
        raise RuntimeError("database went away")

    monkeypatch.setattr(importer.vault, "add_new_secrets", failing)
    before = everything()
    with pytest.raises(RuntimeError):
        import_org(ACME, actor="test", env=ENV)
    _, workspaces, teams, _ = before
    assert calls == [(workspaces + 5, teams + 2)]  # written, then rolled back
    assert everything() == before


def test_a_non_superuser_importer_becomes_the_new_orgs_owner() -> None:
    olivia = User.objects.create_user("olivia")
    result = import_org(ACME, actor="user:olivia", env=ENV, owner=olivia)
    membership = OrgMembership.objects.get(org=result.org)
    assert (membership.user, membership.role) == (olivia, OrgMembership.Role.OWNER)


def test_the_example_file_in_docs_imports(django_capture_on_commit_callbacks: Any) -> None:
    # The README's walkthrough imports it: keep it valid.
    text = (Path(__file__).resolve().parents[2] / "docs" / "org-example.yaml").read_text()
    result = import_org(text, actor="test", env=ENV)
    assert (result.org.slug, len(result.workspaces), result.teams) == ("acme", 4, 1)


# --- required_env -------------------------------------------------------------------------------


def test_required_env_is_refused_without_its_value_with_the_line_of_the_name() -> None:
    [problem] = problems_of(ACME, env={})
    assert problem.startswith("line 4: required_env[0]: OPENAI_API_KEY is required by this file")
    assert "--env OPENAI_API_KEY=VALUE" in problem


def test_required_env_with_an_empty_value_counts_as_missing() -> None:
    [problem] = problems_of(ACME, env={"OPENAI_API_KEY": ""})
    assert "OPENAI_API_KEY is required" in problem


def test_required_env_names_are_recorded_and_values_never_are() -> None:
    import_org(ACME, actor="test", env={**ENV, "UNRELATED": "x"})
    imported = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert imported.payload["required_env"] == ["OPENAI_API_KEY"]
    for event in StructureEvent.objects.all():
        assert ENV["OPENAI_API_KEY"] not in str(event.payload)


def test_required_env_values_reach_every_agents_environment_as_secrets(
    recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        result = import_org(ACME, actor="test", env=ENV)
    specs = {spec.workspace_id: spec for spec in recording["local"].specs}
    assert set(specs) == {str(w.pk) for w in result.workspaces}
    for spec in specs.values():
        assert spec.env["OPENAI_API_KEY"] == ENV["OPENAI_API_KEY"]
    for workspace in result.workspaces:
        stored = vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY")
        assert stored == ENV["OPENAI_API_KEY"]


def test_a_required_env_name_reserved_for_the_platform_is_refused() -> None:
    text = ACME.replace("[OPENAI_API_KEY]", "[MOLECULE_WORKSPACE_TOKEN]")
    [problem] = problems_of(text, env={"MOLECULE_WORKSPACE_TOKEN": "x"})
    assert problem == (
        "line 4: required_env[0]: cannot name a secret: "
        "MOLECULE_WORKSPACE_TOKEN is reserved for the platform"
    )


def test_an_invalid_required_env_name_is_refused() -> None:
    text = ACME.replace("[OPENAI_API_KEY]", "[OPENAI_API_KEY, 2BAD]")
    [problem] = problems_of(text, env=ENV)
    assert problem == "line 4: required_env[1]: '2BAD' is not an environment variable name"


# --- every class of invalid file, with its line -------------------------------------------------

MINIMAL = "name: Beta\nslug: beta\nworkspaces:\n  - name: PM\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            MINIMAL + "colour: blue\n",
            "line 5: colour: unknown key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            MINIMAL + "    nmae: typo\n",
            "line 5: workspaces[0].nmae: unknown key (did you mean 'name'?)",
            id="unknown-node-key",
        ),
        pytest.param(
            MINIMAL + "    tier: 9\n",
            "line 5: workspaces[0].tier: unknown tier 9: use 1, 2, 3 or 4",
            id="bad-tier",
        ),
        pytest.param(
            "name: Beta\nslug: beta\ndefaults: {tier: 9}\nworkspaces: [{name: PM}]\n",
            "line 3: defaults.tier: unknown tier 9: use 1, 2, 3 or 4",
            id="bad-default-tier",
        ),
        pytest.param(
            MINIMAL + "    children:\n      - name: A\n      - name: B\n      - name: A\n",
            "line 8: workspaces[0].children[2].name: duplicate name 'A' among siblings",
            id="duplicate-siblings",
        ),
        pytest.param(
            MINIMAL + "  - name: PM\n",
            "line 5: workspaces[1].name: duplicate name 'PM' among siblings",
            id="duplicate-top-level",
        ),
        pytest.param(
            yaml("""
                name: Beta
                slug: beta
                workspaces:
                  - &lead
                    name: PM
                    children:
                      - *lead
                """),
            "line 7: *lead makes a cycle: it refers to &lead (line 4), which contains it, "
            "so a workspace would contain itself",
            id="cycle",
        ),
        pytest.param(
            yaml("""
                name: Beta
                slug: beta
                workspaces:
                  - &worker {name: Worker}
                  - name: PM
                    children: [*worker]
                """),
            "line 6: YAML aliases are not allowed in an org file (*worker refers to &worker "
            "on line 4): write each workspace out",
            id="alias",
        ),
        pytest.param(
            MINIMAL + "    workspace_dir: srv/acme\n",
            "line 5: workspaces[0].workspace_dir: must be an absolute path",
            id="relative-dir",
        ),
        pytest.param(
            MINIMAL + "    workspace_dir: /srv/../etc\n",
            "line 5: workspaces[0].workspace_dir: must not contain '..'",
            id="dotdot-dir",
        ),
        pytest.param(
            MINIMAL + "    workspace_dir: /etc/ssh\n",
            "line 5: workspaces[0].workspace_dir: /etc/ssh is a system path",
            id="system-dir",
        ),
        pytest.param(
            MINIMAL + "backend: kubernetes\n",
            "line 5: backend: unknown backend 'kubernetes': use local, docker, controlplane",
            id="unknown-backend",
        ),
        pytest.param(
            MINIMAL + "plan: platinum\n",
            "line 5: plan: unknown plan 'platinum': use free, team, enterprise",
            id="unknown-plan",
        ),
        pytest.param(
            "name: Beta\nslug: Beta Org\nworkspaces: [{name: PM}]\n",
            "line 2: slug: 'Beta Org' is not a slug: use up to 64 letters, digits, - and _",
            id="bad-slug",
        ),
        pytest.param(
            "name: Beta\nslug: import\nworkspaces: [{name: PM}]\n",
            "line 2: slug: 'import' is reserved for a console page",
            id="reserved-slug",
        ),
        pytest.param(
            "slug: beta\nworkspaces: [{name: PM}]\n",
            "line 1: name: is required and must be a non-empty string",
            id="missing-name",
        ),
        pytest.param(
            "name: Beta\nslug: beta\n",
            "line 1: workspaces: is required: a list of at least one workspace",
            id="missing-workspaces",
        ),
        pytest.param(
            MINIMAL + "    children:\n      - role: Nameless\n",
            "line 6: workspaces[0].children[0].name: is required and must be a non-empty string",
            id="nameless-node",
        ),
        pytest.param(
            "name: Beta\nslug: beta\nname: Gamma\nworkspaces: [{name: PM}]\n",
            "line 3: name: duplicate key (already given on line 1)",
            id="duplicate-key",
        ),
        pytest.param(
            "name: Beta\nslug: beta\nworkspaces:\n  - {name: PM\n",
            "line 5: not valid YAML: while parsing a flow mapping, expected ',' or '}', "
            "but got '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param(
            "- name: PM\n",
            "line 1: the file must be a mapping with name, slug and workspaces",
            id="not-a-mapping",
        ),
        pytest.param("", "line 1: the file is empty", id="empty"),
    ],
)
def test_an_invalid_file_is_refused_with_its_line_and_creates_nothing(
    text: str, expected: str
) -> None:
    assert problems_of(text) == [expected]


def test_a_slug_that_exists_is_refused_with_how_to_import_into_it(org: Org) -> None:
    [problem] = problems_of(MINIMAL.replace("beta", org.slug))
    assert problem.startswith(f"line 2: slug: an org with slug {org.slug!r} already exists")
    assert f"--org {org.slug}" in problem


def test_a_backend_this_console_does_not_run_is_refused(settings: Any) -> None:
    settings.MOLECULE_BACKENDS = ["local"]
    [problem] = problems_of(MINIMAL + "backend: docker\n")
    assert problem.startswith("line 5: backend: the 'docker' backend is not configured")


def test_too_many_workspaces_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one cap for an import's tree and a team spec (workspaces/fields.py).
    monkeypatch.setattr(fields, "MAX_TEAM", 3)
    text = MINIMAL + "    children: [{name: A}, {name: B}, {name: C}]\n"
    assert problems_of(text) == [
        "line 3: workspaces: 4 workspaces; one import or team spec creates at most 3"
    ]


def test_a_tree_nested_too_deeply_is_refused_before_it_is_built() -> None:
    depth = orgfile.MAX_DEPTH  # team levels: twice as many YAML levels
    lines = ["name: Beta", "slug: beta", "workspaces:"]
    for level in range(depth):
        indent = "  " * (2 * level)
        lines += [f"{indent}  - name: L{level}", f"{indent}    children:"]
    lines.append("  " * (2 * depth) + "  - name: Leaf")
    [problem] = problems_of("\n".join(lines) + "\n")
    assert problem.endswith(f"nested more than {orgfile.MAX_DEPTH} levels deep")


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = yaml("""
        name: Beta
        slug: beta
        colour: blue
        workspaces:
          - name: PM
            tier: 7
            children:
              - {name: A, workspace_dir: relative}
              - {name: A}
        """)
    assert problems_of(text) == [
        "line 3: colour: unknown key",
        "line 6: workspaces[0].tier: unknown tier 7: use 1, 2, 3 or 4",
        "line 8: workspaces[0].children[0].workspace_dir: must be an absolute path",
        "line 9: workspaces[0].children[1].name: duplicate name 'A' among siblings",
    ]


# --- into an existing org -----------------------------------------------------------------------


def test_importing_into_an_existing_org_adds_the_tree_without_creating_an_org(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        result = import_org(ACME, actor="test", env=ENV, into=org)
    assert result.org == org
    assert result.created_org is False
    assert not Org.objects.filter(slug="acme-research").exists()
    assert Workspace.objects.filter(org=org).count() == 5
    assert not StructureEvent.objects.filter(event_type=EventType.ORG_CREATED).exists()
    assert StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED).org == org


def test_importing_into_an_org_refuses_a_top_level_name_it_already_has(org: Org) -> None:
    dispatch.create_workspace(org=org, name="Scout", actor="test")
    [problem] = problems_of(ACME, env=ENV, into=org)
    assert (
        problem == "line 15: workspaces[1].name: the org 'acme' already has a top-level "
        "workspace 'Scout'"
    )


def test_importing_into_an_org_refuses_a_different_backend(org: Org) -> None:
    [problem] = problems_of(MINIMAL + "backend: docker\n", into=org)
    assert problem == "line 5: backend: the org 'acme' runs new workspaces on 'local', not 'docker'"
