"""Files in a workspace's storage on the local backend's real filesystem: the rules every door
shares (workspaces/dispatch/files.py) and the confinement the backend adds.

The workspace's directories are laid out as a start leaves them; no agent runs (the agent
reading what was written is the parity row's part, tests/contract/)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orgs.models import Org
from workspaces import backends, dispatch, vault
from workspaces.dispatch import files
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db

SECRET = "sup3r-secret-value-42"


@pytest.fixture
def workspace(settings: Any, tmp_path: Path, org: Org) -> Workspace:
    settings.MOLECULE_BACKENDS = ["local"]
    settings.MOLECULE_LOCAL_ROOT = tmp_path / "root"
    backends.reset()
    row = Workspace.objects.create(
        org=org, name="Files", backend="local", status=Status.OFFLINE, tier=2
    )
    base = tmp_path / "root" / str(row.pk)
    for folder in ("configs", "workspace"):
        (base / folder).mkdir(parents=True, mode=0o700)
        os.chown(base / folder, 201234, 201234)  # the agent's uid, as a start leaves it
    (base / "configs" / ".auth_token").write_text("the-token")
    vault.set_secret(workspace_id=row.pk, key="API_KEY", value=SECRET, actor="test")
    return row


def configs_of(workspace: Workspace, tmp_path: Path) -> Path:
    return tmp_path / "root" / str(workspace.pk) / "configs"


def test_a_written_file_is_the_agents_0600_and_reads_back_with_its_folders_0700(
    workspace: Workspace, tmp_path: Path
) -> None:
    size = files.write_file(
        workspace_id=workspace.pk, actor="t", root="configs", path="skills/a/SKILL.md", data=b"hi"
    )
    written = configs_of(workspace, tmp_path) / "skills" / "a" / "SKILL.md"
    assert size == 2 and written.read_bytes() == b"hi"
    assert (written.stat().st_uid, stat.S_IMODE(written.stat().st_mode)) == (201234, 0o600)
    folder = written.parent.parent
    assert (folder.stat().st_uid, stat.S_IMODE(folder.stat().st_mode)) == (201234, 0o700)
    view = files.read_file(workspace_id=workspace.pk, root="configs", path="skills/a/SKILL.md")
    assert (view.text, view.size, view.editable) == ("hi", 2, True)
    listing = files.list_files(workspace_id=workspace.pk, root="configs", path="")
    assert [(e.name, e.kind) for e in listing.entries] == [
        ("skills", "folder"),
        (".auth_token", "file"),
    ]
    event = workspace.events.get(event_type=EventType.FILE_WRITTEN)
    assert event.payload == {
        "root": "configs",
        "path": "skills/a/SKILL.md",
        "size": 2,
        "via": "edit",
        "backend": "local",
    }


@pytest.mark.parametrize(
    ("root", "path"),
    [
        ("configs", "../escape"),
        ("configs", "/etc/passwd"),
        ("configs", "a/../../b"),
        ("configs", "a\x00b"),
        ("configs", ".auth_token"),
        ("configs", "x" * 600),
        ("configs", ""),
        ("etc", "passwd"),
    ],
)
def test_a_path_outside_the_rules_is_refused_before_the_storage_is_touched(
    workspace: Workspace, root: str, path: str
) -> None:
    for call in (
        lambda: files.read_file(workspace_id=workspace.pk, root=root, path=path),
        lambda: files.write_file(
            workspace_id=workspace.pk, actor="t", root=root, path=path, data=b"x"
        ),
        lambda: files.delete_file(workspace_id=workspace.pk, actor="t", root=root, path=path),
        lambda: files.rename_file(
            workspace_id=workspace.pk, actor="t", root=root, path="ok.md", new_path=path
        ),
    ):
        with pytest.raises(dispatch.InvalidRequest):
            call()
    assert workspace.events.filter(event_type__startswith="FILE_").count() == 0


def test_a_link_the_agent_left_is_never_followed(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "host-secret").write_text("host")
    configs = configs_of(workspace, tmp_path)
    os.symlink(outside, configs / "link")
    os.symlink(outside / "host-secret", configs / "file-link")

    with pytest.raises(dispatch.Refused, match="link"):
        files.read_file(workspace_id=workspace.pk, root="configs", path="link/host-secret")
    with pytest.raises(dispatch.Refused, match="link"):
        files.read_file(workspace_id=workspace.pk, root="configs", path="file-link")
    with pytest.raises(dispatch.Refused, match="link"):
        files.write_file(
            workspace_id=workspace.pk, actor="t", root="configs", path="link/new", data=b"x"
        )
    with pytest.raises(dispatch.Refused, match="link"):
        files.list_files(workspace_id=workspace.pk, root="configs", path="link")
    # Replacing the link itself writes a file in its place; the target is untouched.
    files.write_file(
        workspace_id=workspace.pk, actor="t", root="configs", path="file-link", data=b"x"
    )
    assert (outside / "host-secret").read_text() == "host"
    assert not (configs / "file-link").is_symlink()
    files.delete_file(workspace_id=workspace.pk, actor="t", root="configs", path="link")
    assert outside.exists() and not os.path.lexists(configs / "link")
    assert sorted(p.name for p in outside.iterdir()) == ["host-secret"]


def test_secrets_are_masked_when_shown_and_a_masked_file_cannot_be_saved_over(
    workspace: Workspace,
) -> None:
    text = f"key: {SECRET}\n".encode()
    files.write_file(
        workspace_id=workspace.pk,
        actor="t",
        root="configs",
        path="env.yaml",
        data=text,
        upload=True,
    )
    view = files.read_file(workspace_id=workspace.pk, root="configs", path="env.yaml")
    assert view.text == "key: [secret:API_KEY]\n" and not view.editable
    assert files.download(workspace_id=workspace.pk, root="configs", path="env.yaml") == (
        b"key: [secret:API_KEY]\n"
    )
    with pytest.raises(dispatch.Refused, match="holds a secret"):
        files.write_file(
            workspace_id=workspace.pk, actor="t", root="configs", path="env.yaml", data=b"new"
        )
    binary = b"\x00\x01" + SECRET.encode() + b"\xff"
    files.write_file(
        workspace_id=workspace.pk,
        actor="t",
        root="configs",
        path="blob.bin",
        data=binary,
        upload=True,
    )
    assert files.read_file(workspace_id=workspace.pk, root="configs", path="blob.bin").text is None
    with pytest.raises(dispatch.Refused, match="cannot be masked"):
        files.download(workspace_id=workspace.pk, root="configs", path="blob.bin")
    plain = b"\x00\x01plain\xff"
    files.write_file(
        workspace_id=workspace.pk,
        actor="t",
        root="configs",
        path="plain.bin",
        data=plain,
        upload=True,
    )
    assert files.download(workspace_id=workspace.pk, root="configs", path="plain.bin") == plain
    assert SECRET not in str(list(workspace.events.values_list("payload", flat=True)))


def test_sizes_are_capped_for_text_and_for_transfers(workspace: Workspace, settings: Any) -> None:
    settings.MOLECULE_FILE_MAX_BYTES = 1024
    settings.MOLECULE_FILE_TRANSFER_MAX_BYTES = 4096
    with pytest.raises(dispatch.FileTooLarge):
        files.write_file(
            workspace_id=workspace.pk, actor="t", root="workspace", path="a.txt", data=b"a" * 1025
        )
    files.write_file(
        workspace_id=workspace.pk,
        actor="t",
        root="workspace",
        path="a.txt",
        data=b"a" * 4096,
        upload=True,
    )
    with pytest.raises(dispatch.FileTooLarge):
        files.write_file(
            workspace_id=workspace.pk,
            actor="t",
            root="workspace",
            path="b.txt",
            data=b"a" * 4097,
            upload=True,
        )
    with pytest.raises(dispatch.FileTooLarge):
        files.read_file(workspace_id=workspace.pk, root="workspace", path="a.txt")
    assert len(files.download(workspace_id=workspace.pk, root="workspace", path="a.txt")) == 4096
    assert workspace.events.filter(event_type=EventType.FILE_WRITTEN).count() == 1


def test_rename_and_delete_refuse_what_is_not_there_or_already_taken(
    workspace: Workspace, tmp_path: Path
) -> None:
    for path in ("a.md", "b.md"):
        files.write_file(workspace_id=workspace.pk, actor="t", root="configs", path=path, data=b"x")
    with pytest.raises(dispatch.Refused, match="exists already"):
        files.rename_file(
            workspace_id=workspace.pk, actor="t", root="configs", path="a.md", new_path="b.md"
        )
    with pytest.raises(dispatch.FileNotFound):
        files.rename_file(
            workspace_id=workspace.pk, actor="t", root="configs", path="nope.md", new_path="c.md"
        )
    with pytest.raises(dispatch.FileNotFound):
        files.delete_file(workspace_id=workspace.pk, actor="t", root="configs", path="nope.md")
    files.rename_file(
        workspace_id=workspace.pk, actor="t", root="configs", path="a.md", new_path="d/a.md"
    )
    assert (configs_of(workspace, tmp_path) / "d" / "a.md").read_bytes() == b"x"
    # The token is out of reach of a rename in either direction.
    with pytest.raises(dispatch.InvalidRequest, match="credential"):
        files.rename_file(
            workspace_id=workspace.pk,
            actor="t",
            root="configs",
            path="b.md",
            new_path=".auth_token",
        )
    assert (configs_of(workspace, tmp_path) / ".auth_token").read_text() == "the-token"


def test_t1_has_no_workspace_root_and_a_removed_workspace_no_files(workspace: Workspace) -> None:
    Workspace.objects.filter(pk=workspace.pk).update(tier=1)
    with pytest.raises(dispatch.Refused, match="T1"):
        files.list_files(workspace_id=workspace.pk, root="workspace")
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.REMOVED)
    with pytest.raises(dispatch.Refused, match="deleted"):
        files.list_files(workspace_id=workspace.pk, root="configs")


def test_the_command_puts_lists_prints_and_removes_a_file(
    workspace: Workspace, tmp_path: Path
) -> None:
    source = tmp_path / "notes.md"
    source.write_text(f"from the command line {SECRET}\n")
    out = io.StringIO()
    wid = str(workspace.pk)
    call_command("workspace", "files", "put", wid, "configs", "notes.md", str(source), stdout=out)
    call_command("workspace", "files", "ls", wid, "configs", stdout=out)
    call_command("workspace", "files", "cat", wid, "configs", "notes.md", stdout=out)
    call_command("workspace", "files", "rm", wid, "configs", "notes.md", stdout=out)
    said = out.getvalue()
    assert "configs/notes.md: 44 bytes written" in said
    assert "notes.md" in said and "from the command line [secret:API_KEY]" in said
    assert SECRET not in said
    assert not (configs_of(workspace, tmp_path) / "notes.md").exists()
    with pytest.raises(CommandError, match="credential"):
        call_command("workspace", "files", "cat", wid, "configs", ".auth_token", stdout=out)
    with pytest.raises(CommandError, match=r"There is no notes\.md"):
        call_command("workspace", "files", "rm", wid, "configs", "notes.md", stdout=out)
