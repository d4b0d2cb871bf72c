"""Bad Molecule org templates are refused with the file and the line of every problem, and
create nothing: no org, no workspace, no team, no file, no secret, no event.

The issue's cases first (a cycle of includes, an include outside the root, a missing ${VAR}, a
3,000 character role, a typo'd key), each in the 43-workspace template or a small one written
here; then every other way out of the template directory and every bound.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orgs import tree as tree_module
from orgs.importer import InvalidOrgFile, import_org
from orgs.include import MAX_INCLUDE_DEPTH
from orgs.tree import DirTree
from tests.support.templates import HARBOR_ENV, copy_harbor, everything, write_template
from workspaces import template_fields

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]


def refused(folder: Path, env: dict[str, str] | None = None, **kwargs: Any) -> list[str]:
    """The problems of importing ``folder``, having checked that nothing was written."""
    before = everything()
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(DirTree(folder), actor="test", env=HARBOR_ENV if env is None else env, **kwargs)
    assert everything() == before, "a refused template wrote something"
    return [str(problem) for problem in invalid.value.problems]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# --- the five -----------------------------------------------------------------------------


def test_a_cycle_of_includes_names_both_files_and_lines(tmp_path: Path) -> None:
    folder = write_template(
        tmp_path,
        {
            "org.yaml": """
                name: Loop
                workspaces:
                  - !include teams/a.yaml
                """,
            "teams/a.yaml": """
                name: A
                children:
                  - !include b.yaml
                """,
            "teams/b.yaml": """
                name: B
                children:
                  - !include a.yaml
                """,
        },
    )
    assert refused(folder) == [
        "teams/b.yaml line 3: !include 'a.yaml' makes a cycle: teams/a.yaml line 3 includes "
        "teams/b.yaml, teams/b.yaml line 3 includes teams/a.yaml"
    ]


def test_a_cycle_through_the_big_template_is_refused(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    # The Writer's role file includes the docs team, which includes the Writer again.
    with (folder / "roles/writer/workspace.yaml").open("a") as handle:
        handle.write("children:\n  - !include ../../teams/docs.yaml\n")
    docs = line_of(folder / "teams/docs.yaml", "roles/writer/workspace.yaml")
    writer = line_of(folder / "roles/writer/workspace.yaml", "teams/docs.yaml")
    problems = refused(folder)
    # From org.yaml through the docs team, and through any other team to the Writer.
    assert (
        f"roles/writer/workspace.yaml line {writer}: !include '../../teams/docs.yaml' makes a "
        f"cycle: teams/docs.yaml line {docs} includes roles/writer/workspace.yaml, "
        f"roles/writer/workspace.yaml line {writer} includes teams/docs.yaml"
    ) in problems
    assert (
        f"teams/docs.yaml line {docs}: !include '../roles/writer/workspace.yaml' makes a "
        f"cycle: roles/writer/workspace.yaml line {writer} includes teams/docs.yaml, "
        f"teams/docs.yaml line {docs} includes roles/writer/workspace.yaml"
    ) in problems
    assert all("makes a cycle" in p for p in problems)


def test_a_file_including_itself_is_a_cycle(tmp_path: Path) -> None:
    folder = write_template(
        tmp_path,
        {"org.yaml": "name: Me\nworkspaces:\n  - name: A\n    children: !include org.yaml\n"},
    )
    assert refused(folder) == [
        "org.yaml line 4: !include 'org.yaml' makes a cycle: org.yaml line 4 includes org.yaml"
    ]


@pytest.mark.parametrize(
    "target",
    ["../../outside.yaml", "../../../etc/passwd", "/etc/passwd", "..\\\\outside.yaml"],
)
def test_an_include_outside_the_root_is_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.yaml").write_text("name: Outside\n")
    folder = copy_harbor(tmp_path)
    edit(
        folder / "teams/support.yaml",
        "- !include ../roles/scout/workspace.yaml",
        f"- !include {target}",
    )
    [problem] = refused(folder)
    assert problem.startswith(f"teams/support.yaml line 22: !include {target!r}"), problem
    assert problem.endswith(
        ("leads out of the template directory", "must be a relative path (with / between folders)")
    )


def test_a_missing_variable_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    edit(
        folder / "org.yaml",
        '          channel: "#studio"',
        "          bot_token: ${DIRECTOR_BOT_TOKEN}",
    )
    line = line_of(folder / "org.yaml", "DIRECTOR_BOT_TOKEN")
    assert refused(folder) == [
        f"org.yaml line {line}: workspaces[0].channels[0].config.bot_token: "
        "${DIRECTOR_BOT_TOKEN} "
        "is not set: give it in .env or director/.env, or with the import (import_org --env "
        "DIRECTOR_BOT_TOKEN=… or its environment; the page's environment box)"
    ]


def test_a_workspace_dir_variable_the_import_does_not_give_is_refused(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    required = line_of(folder / "org.yaml", "- HARBOR_DATA")
    used = line_of(folder / "org.yaml", "workspace_dir: ${HARBOR_DATA}")
    problems = refused(folder, env={"ANTHROPIC_API_KEY": "sk"})
    assert problems == [
        f"org.yaml line {required}: required_env[1]: HARBOR_DATA is required by this file but "
        "no value was provided (the command reads it from its environment or --env "
        "HARBOR_DATA=VALUE; the page from its environment box)",
        f"org.yaml line {used}: workspaces[0].workspace_dir: ${{HARBOR_DATA}} is not set: give "
        "it in "
        ".env or director/.env, or with the import (import_org --env HARBOR_DATA=… or its "
        "environment; the page's environment box)",
    ]


def test_a_3000_character_role_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    edit(folder / "teams/docs.yaml", 'role: "Keeps guides', f'role: "{"x" * 3000} Keeps guides')
    assert refused(folder) == [
        "teams/docs.yaml line 3: workspaces[0].children[4].role: is longer than 200 characters"
    ]


def test_a_typod_key_is_refused_with_the_key_it_was_meant_to_be(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    edit(folder / "teams/quality.yaml", "idle_prompt_file:", "idle_prompt_fiel:")
    assert refused(folder) == [
        "teams/quality.yaml line 6: workspaces[0].children[3].idle_prompt_fiel: unknown key "
        "(did you mean 'idle_prompt_file'?)"
    ]


def test_a_typod_key_in_a_shared_role_file_is_refused_where_each_include_puts_it(
    tmp_path: Path,
) -> None:
    folder = copy_harbor(tmp_path)
    edit(folder / "roles/analyst/workspace.yaml", "schedules:", "schedule:")
    line = line_of(folder / "roles/analyst/workspace.yaml", "schedule:")
    # The Analyst of each team: one problem each, at the one line they share.
    assert refused(folder) == [
        f"roles/analyst/workspace.yaml line {line}: workspaces[0].children[{team}].children[4]"
        ".schedule: unknown key (did you mean 'schedules'?)"
        for team in range(6)
    ]


def test_a_typod_key_in_defaults_and_at_the_top_is_refused(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    edit(folder / "org.yaml", "  idle_interval_seconds: 900", "  idle_interval_secs: 900")
    edit(folder / "org.yaml", "global_memories:", "global_memory:")
    interval = line_of(folder / "org.yaml", "idle_interval_secs")
    memories = line_of(folder / "org.yaml", "global_memory:")
    assert refused(folder) == [
        f"org.yaml line {interval}: defaults.idle_interval_secs: unknown key "
        "(did you mean 'idle_interval_seconds'?)",
        f"org.yaml line {memories}: global_memory: unknown key (did you mean 'global_memories'?)",
    ]


# --- leaving the template -------------------------------------------------------------------------


def test_files_dir_outside_the_root_or_absolute_is_refused(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    edit(folder / "org.yaml", "files_dir: director", "files_dir: ../..")
    edit(folder / "teams/product.yaml", "files_dir: teams/product", "files_dir: /etc")
    line = line_of(folder / "org.yaml", "files_dir: ../..")
    # Nothing is read from a files_dir that is refused: its prompt files are not looked for.
    assert refused(folder) == [
        f"org.yaml line {line}: workspaces[0].files_dir: '../..' leads out of the template "
        "directory",
        "teams/product.yaml line 5: workspaces[0].children[1].files_dir: '/etc' is absolute: "
        "give a path relative to the template",
    ]


def test_a_prompt_file_outside_its_root_or_missing_is_refused(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    edit(
        folder / "org.yaml",
        "initial_prompt_file: prompts/first-day.md",
        "initial_prompt_file: ../../x.md",
    )
    edit(folder / "org.yaml", "prompt_file: prompts/monday.md", "prompt_file: prompts/tuesday.md")
    initial = line_of(folder / "org.yaml", "../../x.md")
    monday = line_of(folder / "org.yaml", "prompts/tuesday.md")
    assert refused(folder) == [
        f"org.yaml line {initial}: workspaces[0].initial_prompt_file: '../../x.md' leads out of "
        "the template directory",
        f"org.yaml line {monday}: workspaces[0].schedules[0].prompt_file: "
        "director/prompts/tuesday.md does not exist in the template",
    ]


def test_a_symlink_out_of_the_root_is_refused_in_files_dir(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("the console's own secret\n")
    folder = copy_harbor(tmp_path)
    (folder / "director/leak.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "roles/escape").symlink_to(tmp_path, target_is_directory=True)
    edit(folder / "roles/scout/workspace.yaml", "files_dir: roles/scout", "files_dir: roles/escape")
    director = line_of(folder / "org.yaml", "files_dir: director")
    scout = line_of(folder / "roles/scout/workspace.yaml", "files_dir:")
    problems = refused(folder)
    assert problems[0] == (
        f"org.yaml line {director}: workspaces[0].files_dir: director/leak.txt is a symlink that "
        "leads out of the template directory"
    )
    assert problems[1:] == [
        f"roles/scout/workspace.yaml line {scout}: workspaces[0].children[{team}].children[5]"
        ".files_dir: roles/escape is a symlink that leads out of the template directory"
        for team in range(6)
    ]


def test_a_symlink_out_of_the_root_is_refused_as_an_include(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("name: Secret\n")
    folder = copy_harbor(tmp_path)
    (folder / "teams/outside.yaml").symlink_to(tmp_path / "secret.yaml")
    edit(folder / "org.yaml", "- !include teams/support.yaml", "- !include teams/outside.yaml")
    line = line_of(folder / "org.yaml", "teams/outside.yaml")
    assert refused(folder) == [
        f"org.yaml line {line}: !include: teams/outside.yaml is a symlink that leads out of the "
        "template directory"
    ]


def test_a_symlink_inside_the_root_is_followed(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    (folder / "director/shared-kickoff.md").symlink_to(folder / "shared/kickoff.md")
    result = import_org(DirTree(folder), actor="test", env=HARBOR_ENV)
    director = result.workspaces[0]
    assert director.files.get(path="shared-kickoff.md").size == (
        (folder / "shared/kickoff.md").stat().st_size
    )


def test_a_fifo_in_files_dir_is_refused_without_being_opened(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    os.mkfifo(folder / "director/pipe")
    line = line_of(folder / "org.yaml", "files_dir: director")
    assert refused(folder) == [
        f"org.yaml line {line}: workspaces[0].files_dir: director/pipe is not a regular file or "
        "a directory"
    ]


def test_include_and_files_need_a_directory_when_the_file_is_pasted() -> None:
    text = "name: Pasted\nworkspaces:\n  - !include teams/a.yaml\n"
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(text, actor="test")
    assert [str(p) for p in invalid.value.problems] == [
        "line 3: !include needs a template directory to read files from: import the directory "
        "(manage.py import_org DIR) or upload it as a .zip or .tar.gz"
    ]
    text = "name: Pasted\nworkspaces:\n  - name: A\n    files_dir: a\n"
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(text, actor="test")
    assert [str(p) for p in invalid.value.problems] == [
        "line 4: workspaces[0].files_dir: needs a template directory to read files from: import "
        "the directory (manage.py import_org DIR) or upload it as a .zip or .tar.gz"
    ]


# --- bounds -------------------------------------------------------------------------------------


def test_includes_nest_at_most_sixteen_files_deep(tmp_path: Path) -> None:
    files = {"org.yaml": "name: Deep\nworkspaces:\n  - !include f1.yaml\n"}
    for n in range(1, MAX_INCLUDE_DEPTH + 2):
        files[f"f{n}.yaml"] = f"name: N{n}\nchildren:\n  - !include f{n + 1}.yaml\n"
    files[f"f{MAX_INCLUDE_DEPTH + 2}.yaml"] = "name: Leaf\n"
    problems = refused(write_template(tmp_path, files))
    assert problems == [
        f"f{MAX_INCLUDE_DEPTH}.yaml line 3: !include 'f{MAX_INCLUDE_DEPTH + 1}.yaml': includes "
        f"nest more than {MAX_INCLUDE_DEPTH} files deep"
    ]


def test_a_file_included_over_and_over_is_bounded(tmp_path: Path) -> None:
    # Each level includes the next twice: 2^20 copies of the last file without a bound.
    files = {"org.yaml": "name: Wide\nworkspaces:\n  - !include w1.yaml\n"}
    for n in range(1, 15):
        files[f"w{n}.yaml"] = (
            f"name: W{n}\nrole: {'r' * 150}\nchildren:\n  - !include w{n + 1}.yaml\n"
            f"  - !include w{n + 1}.yaml\n"
        )
    files["w15.yaml"] = "name: Leaf\nrole: " + "l" * 150 + "\n"
    problems = refused(write_template(tmp_path, files))
    assert any("counted each time they are included, pass" in p for p in problems), problems


def test_file_size_caps_are_problems_with_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_harbor(tmp_path)
    (folder / "director/big.bin").write_bytes(b"x" * (tree_module.MAX_FILE + 1))
    line = line_of(folder / "org.yaml", "files_dir: director")
    [problem] = refused(folder)
    assert problem == (
        f"org.yaml line {line}: workspaces[0].files_dir: director/big.bin is "
        f"{tree_module.MAX_FILE + 1} bytes; at most {tree_module.MAX_FILE} are taken"
    )


def test_a_workspace_and_an_import_are_capped_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orgs.templates as templates

    monkeypatch.setattr(templates, "MAX_WORKSPACE_BYTES", 100)
    [problem] = refused(
        write_template(
            tmp_path / "one",
            {
                "org.yaml": "name: One\nworkspaces:\n  - {name: A, files_dir: a}\n",
                "a/x.md": "x" * 101,
            },
        )
    )
    assert problem == (
        "org.yaml line 3: workspaces[0].files_dir: a holds 101 bytes of files; a workspace takes "
        "at most 100"
    )
    monkeypatch.setattr(templates, "MAX_WORKSPACE_BYTES", 10_000)
    monkeypatch.setattr(templates, "MAX_IMPORT_BYTES", 150)
    problems = refused(
        write_template(
            tmp_path / "two",
            {
                "org.yaml": "name: Two\nworkspaces:\n  - {name: A, files_dir: a}\n"
                "  - {name: B, files_dir: a}\n",
                "a/x.md": "x" * 100,
            },
        )
    )
    assert problems == [
        "org.yaml line 4: workspaces[1].files_dir: with these files the import copies 200 bytes; "
        "one import copies at most 150"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("model: " + "m" * 201, "workspaces[0].model: is longer than 200 characters"),
        ("name: " + "n" * 201, "workspaces[0].name: is longer than 200 characters"),
        (
            "system_prompt: " + "p" * (template_fields.MAX_PROMPT + 1),
            f"workspaces[0].system_prompt: is longer than {template_fields.MAX_PROMPT} characters",
        ),
        (
            "plugins: [" + "q" * 201 + "]",
            "workspaces[0].plugins[0]: is longer than 200 characters",
        ),
        (
            "schedules: [{name: " + "s" * 201 + ", cron_expr: '* * * * *', prompt: go}]",
            "workspaces[0].schedules[0].name: is longer than 200 characters",
        ),
        (
            "channels: [{type: slack, config: {channel: " + "c" * 2001 + "}}]",
            "workspaces[0].channels[0].config.channel: is longer than 2000 characters",
        ),
        (
            "initial_memories: [{content: " + "m" * (template_fields.MAX_PROMPT + 1) + "}]",
            "workspaces[0].initial_memories[0].content: is longer than "
            f"{template_fields.MAX_PROMPT} characters",
        ),
        (
            "workspace_dir: /srv/" + "d" * 500,
            "workspaces[0].workspace_dir: is longer than 500 characters",
        ),
        ("description: " + "d" * 2001, "workspaces[0].description: is longer than 2000 characters"),
        (
            "max_concurrent_tasks: 5000",
            "workspaces[0].max_concurrent_tasks: must be between 0 and 1000",
        ),
        (
            "idle_interval_seconds: -1",
            "workspaces[0].idle_interval_seconds: must be between 0 and 2592000",
        ),
    ],
    ids=[
        "model",
        "name",
        "prompt",
        "plugin",
        "schedule",
        "channel",
        "memory",
        "dir",
        "description",
        "concurrency",
        "interval",
    ],
)
def test_every_length_limit_is_a_problem_with_its_line(
    tmp_path: Path, line: str, expected: str
) -> None:
    folder = write_template(
        tmp_path,
        {"org.yaml": f"name: Limits\nworkspaces:\n  - role: r\n    {line}\n    name: ok\n"},
    )
    if line.startswith("name:"):
        folder = write_template(
            tmp_path, {"org.yaml": f"name: Limits\nworkspaces:\n  - role: r\n    {line}\n"}
        )
    assert refused(folder) == [f"org.yaml line 4: {expected}"]


def test_a_files_path_longer_than_the_column_is_refused(tmp_path: Path) -> None:
    deep = "/".join(["d" * 100] * 5) + "/file.md"  # 508 characters
    folder = write_template(
        tmp_path,
        {"org.yaml": "name: Long\nworkspaces:\n  - {name: A, files_dir: a}\n", f"a/{deep}": "x"},
    )
    [problem] = refused(folder)
    assert problem.startswith("org.yaml line 3: workspaces[0].files_dir: ")
    assert problem.endswith("the file's path is longer than 500 characters")


# --- what Molecule skips and we refuse ------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            "runtime: cobol-agent",
            "workspaces[0].runtime: unknown runtime 'cobol-agent': this console runs autogen, "
            "claude-code, crewai, deepagents, gemini-cli, hermes, langgraph, openclaw "
            "(MOLECULE_RUNTIMES_FILE adds more)",
        ),
        (
            "schedules: [{name: x, cron_expr: '61 * * * *', prompt: go}]",
            "workspaces[0].schedules[0].cron_expr: '61 * * * *' is not a cron expression: five "
            "fields, minute hour day month weekday (e.g. '0 9 * * 1-5')",
        ),
        (
            "schedules: [{name: x, cron_expr: '0 9 * * *', timezone: Mars/Olympus, prompt: go}]",
            "workspaces[0].schedules[0].timezone: unknown time zone 'Mars/Olympus' (an IANA name, "
            "e.g. Europe/Paris or UTC)",
        ),
        (
            "schedules: [{name: x, cron_expr: '0 9 * * *'}]",
            "workspaces[0].schedules[0]: has no prompt: give prompt or prompt_file (what the "
            "agent asks)",
        ),
        (
            "channels: [{type: carrier-pigeon}]",
            "workspaces[0].channels[0].type: unknown channel type 'carrier-pigeon': use discord, "
            "lark, slack, telegram",
        ),
        (
            "initial_memories: [{content: x, scope: everyone}]",
            "workspaces[0].initial_memories[0].scope: unknown scope 'everyone': use local, team "
            "or global",
        ),
        (
            "workspace_access: read_only",
            "workspaces[0].workspace_access: read_only needs a workspace_dir to give access to",
        ),
        (
            "external: true",
            "workspaces[0].external: an external workspace needs the url its agent answers at",
        ),
        ("tier: 9", "workspaces[0].tier: unknown tier 9: use 1, 2, 3 or 4"),
        (
            "parent: PM",
            "workspaces[0].parent: parent names a workspace of the org you import into (manage.py "
            "import_org ... --org SLUG, or 'Into org' on the page)",
        ),
        (
            "global_memories: []",
            "workspaces[0].global_memories: unknown key here: belongs at the top of org.yaml "
            "(Molecule seeds it on the first workspace)",
        ),
    ],
    ids=[
        "runtime",
        "cron",
        "timezone",
        "no-prompt",
        "channel",
        "scope",
        "access",
        "external",
        "tier",
        "parent",
        "misplaced",
    ],
)
def test_what_molecule_would_skip_is_refused_with_its_line(
    tmp_path: Path, setting: str, expected: str
) -> None:
    folder = write_template(
        tmp_path, {"org.yaml": f"name: Skips\nworkspaces:\n  - name: A\n    {setting}\n"}
    )
    assert refused(folder) == [f"org.yaml line 4: {expected}"]


def test_a_bad_env_file_is_refused_with_its_lines(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    (folder / "roles/scout/.env").write_text(
        "# names must be a secret's\nlower_case=1\nNO_EQUALS_SIGN\nPATH=/tmp\nSCOUT_CHANNEL=#s\n"
    )
    problems = refused(folder)
    assert problems == [
        "roles/scout/.env line 2: cannot name a secret: must be upper-case letters, digits and _, "
        "starting with a letter (like OPENAI_API_KEY)",
        "roles/scout/.env line 3: is not NAME=value",
        "roles/scout/.env line 4: cannot name a secret: PATH is reserved for the platform",
    ]


def test_a_required_group_with_no_member_given_is_refused() -> None:
    from tests.support.templates import HARBOR

    before = everything()
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(DirTree(HARBOR), actor="test", env={"HARBOR_DATA": "/srv/x"})
    line = line_of(HARBOR / "org.yaml", "any_of")
    assert [str(p) for p in invalid.value.problems] == [
        f"org.yaml line {line}: required_env[0]: one of ANTHROPIC_API_KEY, "
        "CLAUDE_CODE_OAUTH_TOKEN is "
        "required by this file but no value was provided (the command reads it from its "
        "environment or --env ANTHROPIC_API_KEY=VALUE; the page from its environment box)"
    ]
    assert everything() == before


def test_a_tier_above_what_the_org_may_use_is_the_tier_policys_problem(
    tmp_path: Path, settings: Any
) -> None:
    settings.MOLECULE_BACKENDS = ["local", "docker"]
    folder = write_template(
        tmp_path,
        {
            "org.yaml": "name: Tiers\nbackend: docker\ndefaults: {tier: 3}\nworkspaces:\n"
            "  - name: A\n    tier: 0\n  - {name: B, tier: 4}\n"
        },
    )
    problems = refused(folder)
    assert problems[0].startswith("org.yaml line 3: defaults.tier: tier 3 on the docker backend")
    assert problems[1].startswith(
        "org.yaml line 7: workspaces[1].tier: tier 4 on the docker backend"
    )


def test_a_template_schema_version_this_console_does_not_read_is_refused(tmp_path: Path) -> None:
    folder = write_template(
        tmp_path, {"org.yaml": "name: V\ntemplate_schema_version: 2\nworkspaces: [{name: A}]\n"}
    )
    assert refused(folder) == [
        "org.yaml line 2: template_schema_version: unknown version '2': this console reads 1"
    ]


def test_a_template_without_org_yaml_is_refused(tmp_path: Path) -> None:
    write_template(tmp_path, {"org.yml": "name: Wrong file\n"})
    assert refused(tmp_path) == ["org.yaml: the template has no org.yaml at its top"]
