"""Molecule org templates import as they are: a directory whose org.yaml includes team and role
files, with Molecule's keys resolved as Molecule resolves them (defaults, prompt files relative
to files_dir, plugins merged, ${VAR} from .env files), files_dir copied into the workspace's
files, .env names made secrets; and team expand recreates members with the same settings and
files. The recording backends stand in for real ones (tests/orgs/test_template_fleet.py starts
real agents).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from orgs.importer import import_org
from orgs.models import Org
from orgs.tree import DirTree
from tests.support.org_pages import login
from tests.support.templates import (
    HARBOR,
    HARBOR_ENV,
    HARBOR_TEAMS,
    HARBOR_WORKSPACES,
    write_template,
)
from workspaces import agent_config, dispatch, teamspec, vault
from workspaces.models import EventType, StructureEvent, Workspace, WorkspaceFile

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]

WEBHOOK = "https://hooks.example.test/services/T0HARBOR/B0STUDIO/not-a-real-secret"


def harbor(**kwargs: Any) -> Any:
    return import_org(DirTree(HARBOR), actor="test", env=HARBOR_ENV, **kwargs)


def by_path(org: Org) -> dict[str, Workspace]:
    """Every workspace of the org by its names from the top: "Director/Platform Lead/Builder"."""
    rows = list(Workspace.objects.filter(org=org))
    ids = {w.pk: w for w in rows}

    def path(w: Workspace) -> str:
        return f"{path(ids[w.parent_id])}/{w.name}" if w.parent_id else w.name

    return {path(w): w for w in rows}


def files_of(workspace: Workspace) -> dict[str, bytes]:
    return {f.path: bytes(f.content) for f in WorkspaceFile.objects.filter(workspace=workspace)}


# --- the whole template -------------------------------------------------------------------------


def test_the_template_directory_imports_with_its_includes() -> None:
    result = harbor()
    org = result.org
    # No slug in the template: made from the name.
    assert (org.slug, org.name) == ("harbor-works", "Harbor Works")
    assert len(result.workspaces) == HARBOR_WORKSPACES
    assert result.teams == HARBOR_TEAMS
    rows = by_path(org)
    leads = ["Platform", "Product", "Research", "Quality", "Docs", "Support"]
    roles = ["Builder", "Reviewer", "Tester", "Writer", "Analyst", "Scout"]
    assert set(rows) == {
        "Director",
        *(f"Director/{lead} Lead" for lead in leads),
        *(f"Director/{lead} Lead/{role}" for lead in leads for role in roles),
    }
    # The recommended variable nobody gave is a warning with its file and line, not a refusal.
    assert result.warnings == [
        "org.yaml line 10: recommended_env[0]: HARBOR_PAGER_TOKEN is recommended by this file "
        "but no value was provided; what needs it will not work (the command reads it from its "
        "environment or --env HARBOR_PAGER_TOKEN=VALUE; the page from its environment box)"
    ]
    imported = result.event.payload
    assert imported["counts"]["workspaces"] == HARBOR_WORKSPACES
    assert imported["counts"]["files"] == WorkspaceFile.objects.count()
    assert imported["description"].startswith("A small software studio")
    assert imported["template_schema_version"] == 1
    assert imported["source"] == "harbor-works"


def test_columns_take_molecule_defaults_tier_zero_and_the_runtime() -> None:
    rows = by_path(harbor().org)
    director, quality = rows["Director"], rows["Director/Quality Lead"]
    # defaults: claude-code, tier 2; "tier: 0" means the default; the role files' own tier wins.
    assert (director.tier, director.runtime) == (2, "claude-code")
    assert rows["Director/Platform Lead"].tier == 2  # tier: 0 in teams/platform.yaml
    assert quality.tier == 1
    assert rows["Director/Docs Lead/Tester"].tier == 1
    assert rows["Director/Research Lead"].runtime == "langgraph"
    # ${HARBOR_DATA} from the import's environment.
    assert director.workspace_dir == "/srv/harbor-test/director"
    assert rows["Director/Docs Lead/Writer"].role == (
        "Explains what changed, for people who were not there"
    )


def test_prompts_resolve_inline_first_then_files_dir_then_the_defaults() -> None:
    rows = by_path(harbor().org)
    kickoff = (HARBOR / "shared" / "kickoff.md").read_text().strip()
    director = rows["Director"].template
    # Inline system prompt; initial prompt from the Director's files_dir (director/prompts/…).
    assert director["system_prompt"].startswith("You are the director of Harbor Works.")
    assert director["initial_prompt"] == (
        (HARBOR / "director" / "prompts" / "first-day.md").read_text().strip()
    )
    # No initial prompt of its own: the defaults' file, relative to the template root, trimmed.
    assert rows["Director/Platform Lead"].template["initial_prompt"] == kickoff
    # Inline wins over the defaults'.
    assert rows["Director/Docs Lead/Writer"].template["initial_prompt"] == (
        "Read the last three changelog entries before you write anything."
    )
    # The idle prompt: the lead's file (its files_dir) or the defaults' inline one; the
    # defaults' interval.
    lead = rows["Director/Support Lead"].template
    assert lead["idle_prompt"].startswith("The support team is quiet.")
    assert lead["idle_interval_seconds"] == 900
    assert (
        rows["Director/Support Lead/Scout"]
        .template["idle_prompt"]
        .startswith("Nothing is assigned to you right now.")
    )


def test_plugins_memories_routing_and_the_model_follow_molecules_merges() -> None:
    rows = by_path(harbor().org)
    director = rows["Director"].template
    assert director["model"] == "opus"
    assert "model" not in rows["Director/Platform Lead"].template  # the runtime's own at start
    assert rows["Director/Research Lead"].template["model"] == "anthropic:claude-opus-4-7"
    # Defaults first; "!careful-shell" drops one, "-ticket-bridge" another.
    assert director["plugins"] == ["harbor-memory", "ticket-bridge", "weekly-digest"]
    assert rows["Director/Product Lead/Builder"].template["plugins"] == [
        "harbor-memory",
        "careful-shell",
        "code-index",
    ]
    assert rows["Director/Product Lead/Reviewer"].template["plugins"] == [
        "harbor-memory",
        "careful-shell",
        "ticket-bridge",
    ]
    # category_routing: the workspace's key replaces the default's, an empty list drops it.
    assert director["category_routing"] == {
        "docs": ["Docs Lead", "Writer"],
        "roadmap": ["Director", "Product Lead"],
        "security": ["Platform Lead", "Reviewer"],
    }
    # initial_memories: the workspace's list, else the defaults'; scopes upper-cased.
    analyst = rows["Director/Quality Lead/Analyst"].template["initial_memories"]
    assert [m["scope"] for m in analyst] == ["LOCAL", "LOCAL"]
    assert rows["Director/Quality Lead"].template["initial_memories"][1]["scope"] == "TEAM"
    assert [m["scope"] for m in director["initial_memories"]] == ["LOCAL", "TEAM"]
    # global_memories: on the first top-level workspace only, scope GLOBAL.
    assert [m["scope"] for m in director["global_memories"]] == ["GLOBAL", "GLOBAL"]
    assert not any(
        "global_memories" in w.template for name, w in rows.items() if name != "Director"
    )


def test_schedules_read_their_prompt_files_from_files_dir() -> None:
    rows = by_path(harbor().org)
    monday, friday = rows["Director"].template["schedules"]
    assert monday == {
        "name": "Monday priorities",
        "cron_expr": "0 8 * * 1",
        "timezone": "Europe/Lisbon",
        "prompt": (HARBOR / "director" / "prompts" / "monday.md").read_text(),
        "enabled": True,
    }
    assert (friday["timezone"], friday["enabled"]) == ("UTC", False)
    [daily] = rows["Director/Docs Lead/Analyst"].template["schedules"]
    assert daily["prompt"] == (HARBOR / "roles" / "analyst" / "prompts" / "daily.md").read_text()


def test_channels_expand_variables_from_the_env_files_and_remember_which() -> None:
    rows = by_path(harbor().org)
    [channel] = rows["Director"].template["channels"]
    assert channel["config"] == {"webhook_url": WEBHOOK, "channel": "#studio"}
    assert rows["Director"].template["from_env"] == ["channels[0].config.webhook_url"]
    # The Scout's own .env (roles/scout/.env) wins per name; $VAR works like ${VAR}.
    [scout] = rows["Director/Platform Lead/Scout"].template["channels"]
    assert scout["config"] == {
        "webhook_url": WEBHOOK,
        "channel": "#scout-feed",
        "region": "eu-west",
    }


def test_files_dir_is_copied_but_its_env_and_the_console_reads_the_rest() -> None:
    rows = by_path(harbor().org)
    director = files_of(rows["Director"])
    assert set(director) == {
        "notes/charter.md",
        "prompts/first-day.md",
        "prompts/monday.md",
        "system-prompt.md",
    }
    scout = files_of(rows["Director/Docs Lead/Scout"])
    assert ".env" not in scout
    assert scout["system-prompt.md"] == (HARBOR / "roles/scout/system-prompt.md").read_bytes()
    # Binary files are files too.
    writer = files_of(rows["Director/Docs Lead/Writer"])
    assert writer["assets/mark.bin"] == bytes(range(256)) * 4
    row = WorkspaceFile.objects.get(workspace=rows["Director/Docs Lead/Writer"], path="CLAUDE.md")
    assert row.size == len(bytes(row.content))


def test_what_the_agent_gets_in_its_configs_directory() -> None:
    rows = by_path(harbor().org)
    director = rows["Director"]
    config = agent_config.config(director)
    assert config["model"] == "opus"
    assert config["initial_prompt"] == director.template["initial_prompt"]
    assert config["initial_memories"] == director.template["initial_memories"]
    assert config["schedules"][0]["name"] == "Monday priorities"
    assert config["prompt_files"] == ["system-prompt.md"]
    files = agent_config.files(director)
    # The inline system_prompt wins over the system-prompt.md files_dir ships (Molecule's order).
    assert files["system-prompt.md"].decode().startswith("You are the director")
    assert files["notes/charter.md"].startswith(b"# Studio charter")
    builder = rows["Director/Platform Lead/Builder"]
    assert agent_config.config(builder)["model"] == agent_config.CLAUDE_CODE_MODEL


def test_env_files_become_secrets_and_the_import_gives_what_it_requires() -> None:
    rows = by_path(harbor().org)
    director, scout = rows["Director"], rows["Director/Quality Lead/Scout"]

    def keys(w: Workspace) -> set[str]:
        return {s.key for s in vault.secrets_of(w)}

    # The root .env's names, and the value given for the required any_of group (the recommended
    # one had none; HARBOR_DATA was given for a ${VAR} and is required too).
    assert keys(director) == {"ANTHROPIC_API_KEY", "HARBOR_DATA", "HARBOR_REGION", "HARBOR_WEBHOOK"}
    assert keys(scout) == keys(director) | {"SCOUT_CHANNEL", "SCOUT_FEED_TOKEN"}
    assert vault.reveal(workspace_id=scout.pk, key="SCOUT_FEED_TOKEN") == "feed-token-for-tests"
    assert vault.reveal(workspace_id=director.pk, key="HARBOR_REGION") == "eu-west"
    # Names only in events: never a value.
    for event in StructureEvent.objects.all():
        assert WEBHOOK not in str(event.payload)
        assert "feed-token-for-tests" not in str(event.payload)
    assert sorted(Org.objects.get().required_env) == ["ANTHROPIC_API_KEY", "HARBOR_DATA"]


def test_a_single_file_template_takes_molecules_keys_without_files() -> None:
    text = """\
name: Solo Lab
template_schema_version: 1
defaults: {runtime: hermes, plugins: [a, b], model: m-1}
workspaces:
  - name: Lone
    tier: 0
    plugins: ["!a", c]
    system_prompt: Be brief.
    idle_prompt: Anything new?
    schedules: [{name: tick, cron_expr: "*/5 * * * *", prompt: tock}]
    initial_memories: [{content: remember me, scope: global}]
"""
    result = import_org(text, actor="test")
    lone = result.workspaces[0]
    assert (result.org.slug, lone.tier, lone.runtime) == ("solo-lab", 2, "hermes")
    assert lone.template == {
        "model": "m-1",
        "system_prompt": "Be brief.",
        "idle_prompt": "Anything new?",
        "idle_interval_seconds": 600,
        "plugins": ["b", "c"],
        "initial_memories": [{"content": "remember me", "scope": "GLOBAL"}],
        "schedules": [
            {
                "name": "tick",
                "cron_expr": "*/5 * * * *",
                "timezone": "UTC",
                "prompt": "tock",
                "enabled": True,
            }
        ],
    }


def test_a_slug_made_from_the_name_is_made_unique() -> None:
    Org.objects.create(slug="harbor-works", name="Someone else")
    assert harbor().org.slug == "harbor-works-2"


# --- team expand --------------------------------------------------------------------------------


def test_a_leads_spec_carries_its_members_settings_and_where_their_files_are() -> None:
    rows = by_path(harbor().org)
    lead = rows["Director/Product Lead"]
    [builder] = [n for n in lead.spec["children"] if n["name"] == "Builder"]
    original = rows["Director/Product Lead/Builder"]
    assert builder["files_from"] == str(original.pk)
    assert teamspec.template_of(builder) == original.template
    assert (builder["tier"], builder["runtime"]) == (original.tier, original.runtime)
    # The Director's spec holds the whole tree, files_from at every level.
    [product] = [n for n in rows["Director"].spec["children"] if n["name"] == "Product Lead"]
    assert product["files_from"] == str(lead.pk)
    assert {c["files_from"] for c in product["children"]} == {
        str(w.pk) for name, w in rows.items() if name.startswith("Director/Product Lead/")
    }


def test_collapse_then_expand_recreates_members_with_their_settings_and_files(
    django_capture_on_commit_callbacks: Any,
) -> None:
    org = harbor().org
    before = by_path(org)
    lead = before["Director/Research Lead"]
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
        result = dispatch.expand_team(workspace_id=lead.pk, actor="test")
    assert sorted(w.name for w in result.moved) == sorted(
        ["Builder", "Reviewer", "Tester", "Writer", "Analyst", "Scout"]
    )
    for child in result.moved:
        child = Workspace.objects.get(pk=child.pk)
        old = before[f"Director/Research Lead/{child.name}"]
        assert child.pk != old.pk
        assert child.template == old.template
        assert (child.tier, child.runtime, child.role) == (old.tier, old.runtime, old.role)
        assert files_of(child) == files_of(old)
    # Collapse and expand again: the files come from the first members, still there.
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
        again = dispatch.expand_team(workspace_id=lead.pk, actor="test")
    writer = next(w for w in again.moved if w.name == "Writer")
    assert files_of(writer)["assets/mark.bin"] == bytes(range(256)) * 4


def test_expand_copies_files_only_from_a_workspace_of_the_same_org(
    other_org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    theirs = import_org(DirTree(HARBOR), actor="test", env=HARBOR_ENV, into=other_org)
    secret_source = theirs.workspaces[0]
    ours = import_org("name: Ours\nworkspaces: [{name: Lead}]\n", actor="test")
    lead = ours.workspaces[0]
    spec = {"children": [{"name": "Spy", "files_from": str(secret_source.pk)}]}
    dispatch.edit_workspace(workspace_id=lead.pk, actor="test", spec=spec)
    with django_capture_on_commit_callbacks(execute=True):
        [spy] = dispatch.expand_team(workspace_id=lead.pk, actor="test").moved
    assert files_of(spy) == {}


def test_a_spec_with_a_bad_template_setting_is_refused_at_every_door(
    django_capture_on_commit_callbacks: Any,
) -> None:
    lead = import_org("name: Ours\nworkspaces: [{name: Lead}]\n", actor="test").workspaces[0]
    spec = {"children": [{"name": "A", "schedules": [{"name": "x", "cron_expr": "every day"}]}]}
    with pytest.raises(ValidationError) as refused:
        dispatch.edit_workspace(workspace_id=lead.pk, actor="test", spec=spec)
    assert "is not a cron expression" in str(refused.value.message_dict)
    assert "spec.children[0].schedules[0].cron_expr" in refused.value.message_dict


# --- the page and the API show it -----------------------------------------------------------------


def test_the_workspace_page_shows_the_template_with_channel_secrets_masked(
    superuser: Any,
) -> None:
    rows = by_path(harbor().org)
    page = login(superuser).get(f"/workspaces/{rows['Director'].pk}/").content.decode()
    assert '<section id="template"' in page
    assert "<code>opus</code>" in page
    assert '<details class="prompt"><summary>System prompt' in page
    assert "<code>weekly-digest</code>" in page
    assert "Monday priorities" in page and "<code>0 8 * * 1</code>" in page
    assert "<code>webhook_url</code> ••••" in page
    assert "<code>channel</code> #studio" in page
    assert WEBHOOK not in page
    assert "2 initial, 2 global" in page
    assert "4 files" in page
    scout = rows["Director/Support Lead/Scout"]
    page = login(superuser).get(f"/workspaces/{scout.pk}/").content.decode()
    # The runtime's model when the template names none; every ${VAR} value masked.
    assert '<code>sonnet</code> <span class="muted">(the runtime\'s default)' in page
    assert "#scout-feed" not in page and "eu-west" not in page


def test_the_api_shows_the_template_with_channel_secrets_masked() -> None:
    from tests.support.keys import api, mint_token

    org = harbor().org
    director = by_path(org)["Director"]
    body = api(mint_token(org)).get(f"orgs/{org.slug}/workspaces/{director.pk}").json()
    template = body["template"]
    assert template["model"] == "opus"
    assert template["plugins"] == ["harbor-memory", "ticket-bridge", "weekly-digest"]
    assert template["channels"][0]["config"] == {"webhook_url": "••••", "channel": "#studio"}
    assert template["memories"] == {"initial": 2, "global": 2}
    assert "initial_memories" not in template and "from_env" not in template
    assert template["schedules"][0]["name"] == "Monday priorities"
    assert template["initial_prompt"].startswith("It is your first day")
    assert WEBHOOK not in str(body)


# --- into an org, under a workspace it has ------------------------------------------------------


def test_parent_puts_a_top_level_entry_under_a_workspace_of_the_org(
    org: Org, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    existing = import_org("workspaces: [{name: PM}]\n", actor="test", into=org).workspaces[0]
    folder = write_template(
        tmp_path,
        {
            "org.yaml": """
                workspaces:
                  - name: Helper
                    parent: PM
                    files_dir: helper
                    children: [{name: Sidekick}]
                """,
            "helper/notes.md": "hello\n",
        },
    )
    result = import_org(DirTree(folder), actor="test", into=org)
    helper = Workspace.objects.get(org=org, name="Helper")
    assert helper.parent_id == existing.pk
    assert [w.name for w in result.workspaces] == ["Helper", "Sidekick"]
    # It joins the PM's team spec (one WORKSPACE_UPDATED), with where its files are.
    pm = Workspace.objects.get(pk=existing.pk)
    [node] = pm.spec["children"]
    assert (node["name"], node["files_from"]) == ("Helper", str(helper.pk))
    assert StructureEvent.objects.filter(
        workspace=pm, event_type=EventType.WORKSPACE_UPDATED
    ).exists()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=pm.pk, actor="test")
        [again] = dispatch.expand_team(workspace_id=pm.pk, actor="test").moved
    assert files_of(again) == {"notes.md": b"hello\n"}
