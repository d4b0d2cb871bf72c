"""One rule for workspace_dir, the same at every door, and again at the moment a backend uses it.

Issue 9: ``//etc`` and ``//root/.ssh`` passed the system-path check (``posixpath.normpath``
keeps a leading ``//``) and an agent ran with its working directory in /etc. Here a catalogue
of spellings goes through every door a directory comes in by: the rule itself, the JSON API's
create and PATCH, a team spec (PATCH, and expand of a spec stored before the rule) and org
import (YAML); each must give the very same sentence. Then the backends, which judge it again
when they start an agent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orgs.importer import InvalidOrgFile, import_org
from orgs.models import Org
from tests.support.agents import make_spec
from tests.support.keys import Api, api, mint_token
from tests.support.procs import kill_all_under
from workspaces import dispatch, fields
from workspaces.backends import BackendError, InstanceSpec
from workspaces.backends.containers import validated_workspace_dir
from workspaces.backends.local import LocalBackend
from workspaces.models import Workspace
from workspaces.paths import normal_form, workspace_dir_problem
from workspaces.tiers import tier_settings

SYSTEM = "is a system path"
# (spelling, the sentence every door answers). /ETC is not here: Linux is case-sensitive, so
# /ETC is a directory of its own, not /etc (were it /etc under another name, e.g. on a
# case-insensitive mount, the same-file check below would refuse it).
REFUSED = [
    ("//etc", "//etc is a system path (/etc)"),
    ("///etc/", "///etc/ is a system path (/etc)"),
    ("/./etc", "/./etc is a system path (/etc)"),
    ("/etc/.", "/etc/. is a system path (/etc)"),
    ("/etc/", "/etc/ is a system path (/etc)"),
    ("/etc/ssh", "/etc/ssh is a system path"),
    ("/srv/../etc", "must not contain '..'"),
    ("/srv/acme/..", "must not contain '..'"),
    ("/etc\x00", "must not contain control characters"),
    ("/srv/acme\n", "must not contain control characters"),
    ("/root//.ssh", "/root//.ssh is a system path (/root/.ssh)"),
    ("//root/.ssh", "//root/.ssh is a system path (/root/.ssh)"),
    ("/proc/self/cwd", "/proc/self/cwd is a system path"),
    ("/var//lib/x", "/var//lib/x is a system path (/var/lib/x)"),
    ("/var/run/docker.sock", "/var/run/docker.sock is a system path"),
    ("/usr/local/ws", "/usr/local/ws is a system path"),
    ("/", "/ is a whole top-level directory"),
    ("//", "// is a whole top-level directory (/)"),
    ("/srv/", "/srv/ is a whole top-level directory (/srv)"),
    ("srv/acme", "must be an absolute path"),
    # Acceptable directories, but only in their plain spelling, which is what gets stored.
    ("/srv/acme/", "/srv/acme/ is not written plainly: write it as /srv/acme"),
    ("//srv//acme", "//srv//acme is not written plainly: write it as /srv/acme"),
    ("/srv/./acme", "/srv/./acme is not written plainly: write it as /srv/acme"),
]
ACCEPTED = ["/srv/acme", "/home/ops/pm", "/data/ws", "/ETC", "/srv/acme.d/x_y-1"]


@pytest.fixture
def link_to_etc(tmp_path: Path) -> Path:
    link = tmp_path / "link"
    link.symlink_to("/etc")
    return link


def symlink_cases(link: Path) -> list[tuple[str, str]]:
    how = "through a symbolic link; name the real directory"
    return [
        (str(link), f"{link} resolves to /etc {how}"),
        (f"{link}/ssh", f"{link}/ssh resolves to /etc/ssh {how}"),
        (f"{link}/new/dir", f"{link}/new/dir resolves to /etc/new/dir {how}"),
    ]


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "problem"), REFUSED)
def test_every_spelling_of_a_dangerous_directory_is_refused_with_its_reason(path, problem):
    assert workspace_dir_problem(path) == problem
    # The field rule every door asks (empty means the backend's default) says the same.
    assert fields.workspace_dir_field_problem(path) == problem


@pytest.mark.parametrize("path", ACCEPTED)
def test_a_directory_of_its_own_is_accepted(path):
    assert workspace_dir_problem(path) is None
    assert normal_form(path) == path


def test_a_symbolic_link_out_of_where_it_says_is_refused(link_to_etc, tmp_path):
    for path, problem in symlink_cases(link_to_etc):
        assert workspace_dir_problem(path) == problem
    # A link to a harmless place is refused too: a directory is named by its real path.
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert "through a symbolic link" in workspace_dir_problem(str(tmp_path / "alias"))
    assert workspace_dir_problem(str(tmp_path / "real" / "ws")) is None


def test_another_name_for_a_system_directory_is_refused(tmp_path):
    # A bind mount of /etc, in a mount namespace of its own so the host never sees it.
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to bind-mount in a private mount namespace")
    alias = tmp_path / "etc-again"
    alias.mkdir()
    check = (
        "import sys; from workspaces.paths import workspace_dir_problem as p; "
        "print(p(sys.argv[1])); print(p(sys.argv[1] + '/ssh'))"
    )
    script = 'mount --bind /etc "$1" && exec "$2" -c "$3" "$1"'
    unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    ran = subprocess.run(
        [*unshare, str(alias), sys.executable, check],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    if ran.returncode and "mount" in ran.stderr:
        pytest.skip(f"cannot bind-mount here: {ran.stderr.strip()}")
    assert ran.stdout.splitlines() == [
        f"{alias} is the system path /etc under another name ({alias})",
        f"{alias}/ssh is the system path /etc under another name ({alias})",
    ], ran.stderr


# --- every door gives the same answer ---------------------------------------------------------


@pytest.fixture
def doors(recording: dict[str, Any], org: Org, django_capture_on_commit_callbacks: Any):
    """The answer each door gives for a workspace_dir: {door: sentence or None}."""
    client: Api = api(mint_token(org))
    base = f"orgs/{org.slug}/workspaces"
    with django_capture_on_commit_callbacks(execute=True):
        lead = dispatch.create_workspace(org=org, name="Lead", actor="test")
    counter = iter(range(10_000))

    def field_error(response: Any, field: str) -> str | None:
        if response.status_code in (200, 201):
            return None
        assert response.status_code == 400, response.content
        return response.json()["fields"][field][0]

    def imported(value: str) -> str | None:
        text = (
            f"name: Paths\nslug: paths-{next(counter)}\nworkspaces:\n"
            f"  - name: W\n    workspace_dir: {json.dumps(value)}\n"
        )
        try:
            with django_capture_on_commit_callbacks(execute=True):
                import_org(text, actor="test")
        except InvalidOrgFile as invalid:
            [problem] = [str(p) for p in invalid.problems]
            prefix = "line 5: workspaces[0].workspace_dir: "
            assert problem.startswith(prefix), problem
            return problem.removeprefix(prefix)
        return None

    def expanded(value: str) -> str | None:
        # A spec stored before the rule (written straight to the row): expand judges it again.
        spec = {"children": [{"name": f"C{next(counter)}", "workspace_dir": value}]}
        Workspace.objects.filter(pk=lead.pk).update(spec=spec)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"{base}/{lead.pk}/expand")
        if response.status_code in (200, 202):
            with django_capture_on_commit_callbacks(execute=True):
                dispatch.collapse_team(workspace_id=lead.pk, actor="test")
            return None
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        prefix = "The team spec of 'Lead' is invalid: children[0].workspace_dir: "
        assert error.startswith(prefix), error
        return error.removeprefix(prefix)

    def answers(value: str) -> dict[str, str | None]:
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post(base, {"name": f"W{next(counter)}", "workspace_dir": value})
        patched = client.patch(f"{base}/{lead.pk}", {"workspace_dir": value})
        spec = {"spec": {"children": [{"name": "A", "workspace_dir": value}]}}
        specced = client.patch(f"{base}/{lead.pk}", spec)
        found = {
            "rule": workspace_dir_problem(value),
            "api create": field_error(created, "workspace_dir"),
            "api patch": field_error(patched, "workspace_dir"),
            "org import": imported(value),
        }
        if "\x00" in value:
            # PostgreSQL stores no NUL: a spec holding one anywhere may be refused as JSON
            # before its fields are looked at, and no stored spec can have kept one to expand.
            assert specced.status_code == 400, specced.content
        else:
            found["api team spec"] = field_error(specced, "spec.children[0].workspace_dir")
            found["expand"] = expanded(value)
        return found

    return answers


@pytest.mark.django_db
def test_every_door_refuses_every_spelling_with_the_same_sentence(doors, link_to_etc):
    for path, problem in [*REFUSED, *symlink_cases(link_to_etc)]:
        answers = doors(path)
        assert answers == dict.fromkeys(answers, problem), path
    assert not Workspace.objects.filter(workspace_dir__contains="etc").exists()


@pytest.mark.django_db
def test_every_door_accepts_a_plain_directory_and_stores_it_as_written(doors):
    for path in ACCEPTED:
        answers = doors(path)
        assert answers == dict.fromkeys(answers), path
        stored = set(Workspace.objects.exclude(workspace_dir="").values_list("workspace_dir"))
        assert stored <= {(p,) for p in ACCEPTED}


# --- the backends judge it again when they use it ---------------------------------------------


def spec_with(workspace_dir: str) -> InstanceSpec:
    return InstanceSpec(
        workspace_id="w1",
        name="w",
        org_slug="acme",
        runtime="x",
        tier=tier_settings(2),
        generation=1,
        env={},
        workspace_dir=workspace_dir,
    )


@pytest.mark.parametrize("path", ["/usr/local/molecule-test-ws", "//etc", "//root/.ssh"])
def test_the_local_backend_refuses_a_system_directory_before_creating_anything(path, tmp_path):
    with pytest.raises(BackendError, match="is a system path") as refused:
        LocalBackend(tmp_path).start(spec_with(path))
    assert refused.value.permanent
    assert not (tmp_path / "w1").exists()
    assert not Path("/usr/local/molecule-test-ws").exists()


def test_a_symbolic_link_made_after_the_directory_was_accepted_is_refused_at_start(
    tmp_path, local_root
):
    # Accepted when it was set (nothing there yet); by the start it is a link into /etc.
    target = tmp_path / "srv" / "acme"
    assert workspace_dir_problem(str(target)) is None
    target.parent.mkdir()
    target.symlink_to("/etc")
    with pytest.raises(BackendError, match="resolves to /etc through a symbolic link"):
        LocalBackend(local_root).start(spec_with(str(target)))
    with pytest.raises(BackendError, match="resolves to /etc through a symbolic link"):
        validated_workspace_dir(str(target))
    assert not (local_root / "w1").exists()


def test_a_row_spelt_before_the_rule_is_used_in_its_normal_form(local_root, tmp_path):
    # "/srv/acme/" was accepted before the spelling rule: the backends use /srv/acme.
    folder = tmp_path / "ops" / "acme"
    assert validated_workspace_dir(f"/{folder}//") == str(folder)
    backend = LocalBackend(local_root / "root")
    try:
        instance = backend.start(make_spec(workspace_dir=f"{folder}/"))
        pid = instance.state["pid"]
        assert instance.state["workspace_dir"] == str(folder)
        assert os.readlink(f"/proc/{pid}/cwd") == str(folder)
        backend.stop(instance)
    finally:
        kill_all_under(local_root / "root")
