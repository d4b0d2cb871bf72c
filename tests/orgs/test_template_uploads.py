"""A template directory from the page (a .zip or .tar.gz upload) and from the shell
(``import_org DIR``, or an archive file): the same import, and archives bounded before anything
in them is trusted (size, entries, what they unpack to, where their entries point).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from orgs import archive
from orgs.models import Org
from tests.support.org_pages import login, messages_of
from tests.support.templates import (
    HARBOR,
    HARBOR_ENV,
    HARBOR_WORKSPACES,
    copy_harbor,
    everything,
    tarred,
    zipped,
)
from workspaces.models import Workspace, WorkspaceFile

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]

ENV_BOX = "\n".join(f"{name}={value}" for name, value in HARBOR_ENV.items())


def upload(client: Any, name: str, data: bytes, **extra: str) -> Any:
    return client.post(
        reverse("org-import"),
        {"file": SimpleUploadedFile(name, data), "env": ENV_BOX, **extra},
    )


# --- the page -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("harbor-works.zip", lambda: zipped(HARBOR)),
        ("harbor-works.zip", lambda: zipped(HARBOR, top="harbor-works")),
        ("harbor-works.tar.gz", lambda: tarred(HARBOR)),
        ("harbor-works.tar.gz", lambda: tarred(HARBOR, top="harbor-works")),
    ],
    ids=["zip", "zip-in-a-folder", "tar.gz", "tar.gz-in-a-folder"],
)
def test_an_uploaded_template_archive_imports(superuser: User, name: str, pack: Any) -> None:
    response = upload(login(superuser), name, pack())
    assert response.status_code == 302, response.content.decode()[:2000]
    org = Org.objects.get(slug="harbor-works")
    assert Workspace.objects.filter(org=org).count() == HARBOR_WORKSPACES
    writer = Workspace.objects.filter(org=org, name="Writer").first()
    assert bytes(writer.files.get(path="assets/mark.bin").content) == bytes(range(256)) * 4
    files = WorkspaceFile.objects.filter(workspace__org=org).count()
    assert messages_of(response, "success") == [
        f"Imported {HARBOR_WORKSPACES} workspace(s) with {files} file(s) into harbor-works."
    ]
    # The recommended variable nobody gave is a warning, with its file and line.
    [warning] = messages_of(response, "warning")
    assert warning.startswith("org.yaml line 10: recommended_env[0]: HARBOR_PAGER_TOKEN is")


def test_a_bad_template_archive_shows_each_problem_with_its_file_and_line(
    superuser: User, tmp_path: Path
) -> None:
    folder = copy_harbor(tmp_path)
    text = (folder / "teams/docs.yaml").read_text()
    (folder / "teams/docs.yaml").write_text(text.replace('role: "', 'role: "' + "x" * 3000, 1))
    before = everything()
    response = upload(login(superuser), "bad.zip", zipped(folder))
    assert response.status_code == 400
    content = response.content.decode()
    assert "Nothing was imported: 1 problem in the template" in content
    assert (
        '<span class="where">teams/docs.yaml line 3</span>: '
        "<code>workspaces[0].children[4].role</code>: is longer than 200 characters"
    ) in content
    assert everything() == before


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"../evil.yaml": b"x", "org.yaml": b"name: A\n"}, "leads out of the template directory"),
        ({"/abs/org.yaml": b"x"}, "must be a relative path"),
        ({"notes.md": b"x"}, "The archive has no org.yaml at its top"),
        ({"a/org.yaml": b"x", "b/org.yaml": b"x"}, "The archive has no org.yaml at its top"),
    ],
    ids=["dotdot", "absolute", "no-org-yaml", "two-folders"],
)
def test_archive_entries_are_confined(superuser: User, entries: dict, expected: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as packed:
        for name, body in entries.items():
            packed.writestr(name, body)
    before = everything()
    response = upload(login(superuser), "t.zip", buffer.getvalue())
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert everything() == before


def test_a_symlink_in_a_zip_is_refused(superuser: User) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as packed:
        packed.writestr("org.yaml", "name: A\nworkspaces: [{name: A, files_dir: d}]\n")
        link = zipfile.ZipInfo("d/passwd")
        link.external_attr = 0o120777 << 16
        packed.writestr(link, "/etc/passwd")
    response = upload(login(superuser), "t.zip", buffer.getvalue())
    assert response.status_code == 400
    assert "&#x27;d/passwd&#x27; is not a regular file (symlinks and devices are refused)" in (
        response.content.decode()
    )
    assert not Org.objects.exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_links_devices_and_fifos_in_a_tar_are_refused(superuser: User, kind: bytes) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as packed:
        body = b"name: A\nworkspaces: [{name: A}]\n"
        info = tarfile.TarInfo("org.yaml")
        info.size = len(body)
        packed.addfile(info, io.BytesIO(body))
        odd = tarfile.TarInfo("d/odd")
        odd.type = kind
        odd.linkname = "/etc/shadow"
        packed.addfile(odd)
    response = upload(login(superuser), "t.tar.gz", buffer.getvalue())
    assert response.status_code == 400
    assert "is not a regular file (symlinks, hard links and devices are refused)" in (
        response.content.decode()
    )
    assert not Org.objects.exists()


def test_a_zip_bomb_stops_at_the_unpacked_cap(
    superuser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_UNPACKED", 1024 * 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("org.yaml", "name: A\nworkspaces: [{name: A}]\n")
        packed.writestr("zeros.bin", b"\0" * (8 * 1024 * 1024))
    assert len(buffer.getvalue()) < 64 * 1024  # 8 MiB of zeros packs small
    response = upload(login(superuser), "bomb.zip", buffer.getvalue())
    assert response.status_code == 400
    assert "The archive unpacks to more than 1048576 bytes (at zeros.bin)." in (
        response.content.decode()
    )
    assert not Org.objects.exists()


def test_a_tar_bomb_stops_at_the_unpacked_cap_before_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(archive, "MAX_UNPACKED", 1024 * 1024)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as packed:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 8 * 1024 * 1024
        packed.addfile(info, io.BytesIO(b"\0" * info.size))
    with pytest.raises(archive.ArchiveError, match="unpacks to more than 1048576 bytes"):
        archive.unpack(buffer.getvalue())


def test_too_many_entries_and_too_large_an_upload_are_refused(
    superuser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_ENTRIES", 3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as packed:
        for n in range(5):
            packed.writestr(f"f{n}.md", "x")
    with pytest.raises(archive.ArchiveError, match="more than 3 entries"):
        archive.unpack(buffer.getvalue())
    monkeypatch.setattr(archive, "MAX_ARCHIVE", 10)
    with pytest.raises(archive.ArchiveError, match="larger than 10 bytes"):
        archive.unpack(buffer.getvalue())


def test_a_yaml_upload_still_works_and_a_pasted_template_keeps_its_lines(superuser: User) -> None:
    text = "name: Paste\nworkspaces:\n  - name: A\n    tier: 9\n"
    response = login(superuser).post(reverse("org-import"), {"text": text})
    assert response.status_code == 400
    content = response.content.decode()
    assert '<a href="#L4">line 4</a>: <code>workspaces[0].tier</code>' in content
    response = upload(login(superuser), "paste.yaml", text.replace("9", "1").encode())
    assert response.status_code == 302
    assert Org.objects.get(slug="paste").workspaces.get().tier == 1


# --- the command --------------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_org", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def env_options() -> list[str]:
    return [part for name, value in HARBOR_ENV.items() for part in ("--env", f"{name}={value}")]


def test_import_org_takes_a_template_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARBOR_PAGER_TOKEN", raising=False)
    out, err = run(str(HARBOR), *env_options())
    org = Org.objects.get(slug="harbor-works")
    files = WorkspaceFile.objects.filter(workspace__org=org).count()
    assert out.startswith(
        f"Created org 'harbor-works': {HARBOR_WORKSPACES} workspace(s) in 7 team(s), "
        f"{files} file(s), provisioning on the local backend"
    )
    assert err.startswith("Warning: org.yaml line 10: recommended_env[0]: HARBOR_PAGER_TOKEN")


def test_import_org_takes_an_archive_file(tmp_path: Path) -> None:
    path = tmp_path / "harbor.tar.gz"
    path.write_bytes(tarred(HARBOR, top="harbor-works"))
    out, _ = run(str(path), *env_options())
    assert f"{HARBOR_WORKSPACES} workspace(s)" in out


def test_import_org_refuses_a_bad_directory_with_file_and_line(tmp_path: Path) -> None:
    folder = copy_harbor(tmp_path)
    (folder / "teams/a.yaml").write_text("name: A\nchildren:\n  - !include b.yaml\n")
    (folder / "teams/b.yaml").write_text("name: B\nchildren:\n  - !include a.yaml\n")
    text = (folder / "org.yaml").read_text()
    (folder / "org.yaml").write_text(text.replace("teams/support.yaml", "teams/a.yaml"))
    before = everything()
    with pytest.raises(CommandError) as error:
        run(str(folder), *env_options())
    assert str(error.value) == (
        "harbor-works/ was not imported; nothing was created. 1 problem(s):\n"
        "  teams/b.yaml line 3: !include 'a.yaml' makes a cycle: teams/a.yaml line 3 includes "
        "teams/b.yaml, teams/b.yaml line 3 includes teams/a.yaml"
    )
    assert everything() == before
