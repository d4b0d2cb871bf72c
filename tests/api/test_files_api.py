"""``/api/v1/orgs/<slug>/workspaces/<id>/files/<root>/…``: a workspace's files over the API
(on the recording backend's in-memory files: the API is tested for what it asks dispatch)."""

from __future__ import annotations

from typing import Any

import pytest

from orgs.models import Org
from tests.support.keys import Api
from tests.support.rows import MakeWorkspace
from workspaces import vault
from workspaces.models import EventType, Workspace

pytestmark = pytest.mark.django_db


def url(workspace: Workspace, tail: str = "") -> str:
    return f"orgs/{workspace.org.slug}/workspaces/{workspace.pk}/files/configs{tail}"


def test_a_file_goes_in_comes_back_masked_moves_and_goes(
    org: Org, token: str, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    vault.set_secret(workspace_id=workspace.pk, key="API_KEY", value="s3cret-value", actor="t")
    put = client_a.put(url(workspace, "/content?path=notes/a.md"), raw=b"key s3cret-value\n")
    assert (put.status_code, put.json()["size"]) == (200, 17)
    listing = client_a.get(url(workspace, "?path=notes")).json()
    assert [(e["name"], e["kind"], e["size"]) for e in listing["entries"]] == [("a.md", "file", 17)]
    shown = client_a.get(url(workspace, "/content?path=notes/a.md")).json()
    assert shown == {
        "root": "configs",
        "path": "notes/a.md",
        "size": 17,
        "binary": False,
        "text": "key [secret:API_KEY]\n",
        "editable": False,
    }
    download = client_a.get(url(workspace, "/download?path=notes/a.md"))
    assert download.content == b"key [secret:API_KEY]\n"
    assert download["Content-Disposition"] == "attachment; filename*=UTF-8''a.md"
    moved = client_a.post(url(workspace, "/rename"), {"path": "notes/a.md", "to": "b.md"})
    assert moved.status_code == 200
    assert client_a.delete(url(workspace, "/content?path=b.md")).status_code == 204
    assert client_a.get(url(workspace, "/content?path=b.md")).status_code == 404
    kinds = list(
        workspace.events.filter(event_type__startswith="FILE_").values_list("event_type", flat=True)
    )
    assert sorted(kinds) == sorted(
        [EventType.FILE_WRITTEN, EventType.FILE_RENAMED, EventType.FILE_DELETED]
    )
    assert "s3cret" not in str(list(workspace.events.values_list("payload", flat=True)))


@pytest.mark.parametrize(
    ("tail", "status", "says"),
    [
        ("/content?path=../x", 400, "'..'"),
        ("/content?path=/etc/passwd", 400, "absolute"),
        ("/content?path=.auth_token", 400, "credential"),
        ("/content?path=%00", 400, "nvalid"),
        ("/content?path=missing.md", 404, "missing.md"),
    ],
)
def test_bad_paths_are_refused_with_the_reason(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, tail: str, status: int, says: str
) -> None:
    workspace = make_workspace(org)
    response = client_a.get(url(workspace, tail))
    assert response.status_code == status
    assert says in response.json()["error"]


def test_a_body_over_the_transfer_cap_is_413_and_writes_nothing(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, settings: Any
) -> None:
    settings.MOLECULE_FILE_MAX_BYTES = 1024
    settings.MOLECULE_FILE_TRANSFER_MAX_BYTES = 2048
    workspace = make_workspace(org)
    response = client_a.put(url(workspace, "/content?path=big.bin"), raw=b"x" * 2049)
    assert response.status_code == 413
    assert not workspace.events.filter(event_type=EventType.FILE_WRITTEN).exists()


def test_another_orgs_token_gets_404(
    org: Org, client_b: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    assert client_b.get(url(workspace)).status_code == 404
    assert client_b.put(url(workspace, "/content?path=a.md"), raw=b"x").status_code == 404
