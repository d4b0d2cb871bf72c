"""``/api/v1/orgs/<slug>/workspaces/<id>/files/<root>/…``: a workspace's files.

``root`` is ``workspace`` or ``configs`` (workspaces/dispatch/files.py has the rules):

* ``GET …/files/<root>?path=P``: the folder's entries (``P`` empty: the root);
* ``GET …/files/<root>/content?path=P``: ``{"path", "size", "binary", "text", "editable"}``,
  the text with the workspace's secrets masked (``null`` for a binary file), at most
  ``MOLECULE_FILE_MAX_BYTES``;
* ``GET …/files/<root>/download?path=P``: the bytes (a text file masked; a binary one holding a
  secret refused), at most ``MOLECULE_FILE_TRANSFER_MAX_BYTES``;
* ``PUT …/files/<root>/content?path=P``: the raw body becomes the file (an upload: the
  transfer cap); ``DELETE`` the same URL removes it (a folder whole);
* ``POST …/files/<root>/rename`` ``{"path", "to"}``.

Refusals: 400 for a bad root or path (``..``, absolute, NUL, ``.auth_token``), 404 for nothing
there, 413 over a cap, 409 when the storage refuses (a folder where a file is asked for, no
storage yet, a secret a download cannot mask), 502 when the backend cannot be reached. Org
tokens of the workspace's org and ADMIN_TOKEN, like every workspace route.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict

from django.http import Http404, HttpRequest, HttpResponse

from api.http import ApiError, endpoint, ok, org_in_reach, read_bounded, read_json
from orgs.bearer import Principal
from workspaces import fields
from workspaces.attachments import attachment
from workspaces.dispatch import files
from workspaces.models import Workspace


def _workspace_id(principal: Principal, slug: str, workspace_id: uuid.UUID) -> uuid.UUID:
    org = org_in_reach(principal, slug)
    if not Workspace.objects.filter(org=org, pk=workspace_id).exists():
        raise Http404
    return workspace_id


def _path(request: HttpRequest) -> str:
    path = request.GET.get("path", "")
    if fields.unstorable(path):
        raise ApiError(400, "The path must be text without NUL characters.")
    return path


def _failures[T](call: Callable[[], T]) -> T:
    try:
        return call()
    except files.FileNotFound as missing:
        raise ApiError(404, str(missing)) from None
    except files.FileTooLarge as large:
        raise ApiError(413, str(large)) from None
    except files.FilesFailed as failed:
        raise ApiError(502, str(failed)) from None


@endpoint()
def list_files(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, root: str
) -> HttpResponse:
    wid, path = _workspace_id(principal, slug, workspace_id), _path(request)
    listing = _failures(lambda: files.list_files(workspace_id=wid, root=root, path=path))
    return ok(
        {
            "root": root,
            "path": path,
            "entries": [asdict(entry) for entry in listing.entries],
            "truncated": listing.truncated,
        }
    )


@endpoint()
def read_file(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, root: str
) -> HttpResponse:
    wid, path = _workspace_id(principal, slug, workspace_id), _path(request)
    view = _failures(lambda: files.read_file(workspace_id=wid, root=root, path=path))
    return ok(
        {
            "root": root,
            "path": path,
            "size": view.size,
            "binary": view.text is None,
            "text": view.text,
            "editable": view.editable,
        }
    )


def _body(request: HttpRequest) -> bytes:
    return read_bounded(request, files.transfer_cap())


@endpoint()
def put_file(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, root: str
) -> HttpResponse:
    wid, path = _workspace_id(principal, slug, workspace_id), _path(request)
    data = _body(request)
    size = _failures(
        lambda: files.write_file(
            workspace_id=wid, actor=principal.actor, root=root, path=path, data=data, upload=True
        )
    )
    return ok({"root": root, "path": path, "size": size})


@endpoint()
def delete_file(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, root: str
) -> HttpResponse:
    wid, path = _workspace_id(principal, slug, workspace_id), _path(request)
    _failures(
        lambda: files.delete_file(workspace_id=wid, actor=principal.actor, root=root, path=path)
    )
    return HttpResponse(status=204)


@endpoint()
def download(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, root: str
) -> HttpResponse:
    wid, path = _workspace_id(principal, slug, workspace_id), _path(request)
    data = _failures(lambda: files.download(workspace_id=wid, root=root, path=path))
    return attachment(data, path)


@endpoint()
def rename(
    request: HttpRequest, principal: Principal, slug: str, workspace_id: uuid.UUID, root: str
) -> HttpResponse:
    wid = _workspace_id(principal, slug, workspace_id)
    data = read_json(request)
    path, to = data.get("path"), data.get("to")
    if not isinstance(path, str) or not isinstance(to, str):
        raise ApiError(400, 'The body must be {"path": "...", "to": "..."}.')
    _failures(
        lambda: files.rename_file(
            workspace_id=wid, actor=principal.actor, root=root, path=path, new_path=to
        )
    )
    return ok({"root": root, "path": to})
