"""The file browser of the workspace page: list, open, edit, upload, rename, delete, download.

Every request goes through ``workspaces.dispatch.files`` (the rules are there: roots, confined
paths, caps, masking, events). The browser is one htmx partial (``files.html#browser``) that
re-renders itself after each change; the editor another (``files.html#editor``). Without
JavaScript every page is a plain GET and every change a POST that redirects back to the folder
with a message. Viewers list, read (masked) and download; only owners and admins change
anything (403); another org's workspace is 404.

A ``<textarea>`` submits its lines ending in CRLF: a file that had no CR is saved with LF
endings again, so editing a line does not rewrite every other one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orgs.access import actor, can_act, check_write
from workspaces import fields, selectors
from workspaces.attachments import attachment
from workspaces.dispatch import InvalidRequest, Refused, files
from workspaces.dispatch.files import CONFIGS, ROOTS, join
from workspaces.models import Workspace

FAILURES = (InvalidRequest, Refused, files.FileNotFound, files.FilesFailed)


def _status(error: Exception) -> int:
    if isinstance(error, files.FileTooLarge):
        return 413
    if isinstance(error, InvalidRequest):
        return 400
    # 409 for the rest, which htmx swaps in: a file gone meanwhile is news in the panel.
    return 409


def _where(request: HttpRequest) -> tuple[str, str]:
    data = request.POST if request.method == "POST" else request.GET
    root, path = data.get("root", CONFIGS), data.get("path", "")
    if fields.unstorable(root) or fields.unstorable(path):
        return CONFIGS, "\x00"  # refused by dispatch as any bad path is
    return root, path


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = path.split("/") if path else []
    return [(part, "/".join(parts[: n + 1])) for n, part in enumerate(parts)]


def browser_url(workspace: Workspace, root: str, path: str = "") -> str:
    query = urlencode({"root": root, "path": path} if path else {"root": root})
    return f"{reverse('workspace-files', args=[workspace.pk])}?{query}"


def _browser(
    request: HttpRequest,
    workspace: Workspace,
    root: str,
    folder: str,
    *,
    status: int = 200,
    problem: str = "",
    refused: str = "",
    done: str = "",
    editor: dict[str, Any] | None = None,
) -> HttpResponse:
    listing = None
    if not problem:
        try:
            listing = files.list_files(workspace_id=workspace.pk, root=root, path=folder)
        except FAILURES as error:
            problem, status = str(error), _status(error)
    context = {
        "workspace": workspace,
        "can_act": can_act(request.user, workspace.org_id),
        "roots": ROOTS,
        "root": root if root in ROOTS else CONFIGS,
        "folder": folder if not problem or listing else "",
        "crumbs": _crumbs(folder) if listing else [],
        "listing": listing,
        "entries": [
            (entry, join(folder, entry.name), datetime.fromtimestamp(entry.modified, UTC))
            for entry in listing.entries
        ]
        if listing
        else [],
        "problem": problem,
        "refused": refused,
        "done": done,
        "editor": editor,
        "text_cap": files.text_cap(),
        "transfer_cap": files.transfer_cap(),
    }
    template = "workspaces/files.html#browser" if request.htmx else "workspaces/files.html"
    return render(request, template, context, status=status)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _after_change(
    request: HttpRequest,
    workspace: Workspace,
    root: str,
    folder: str,
    error: Exception | None,
    done: str,
) -> HttpResponse:
    if request.htmx:
        if error is not None:
            # The listing as it is now, with the refusal above it.
            return _browser(
                request, workspace, root, folder, status=_status(error), refused=str(error)
            )
        return _browser(request, workspace, root, folder, done=done)
    if error is not None:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect(browser_url(workspace, root if root in ROOTS else CONFIGS, folder))


@login_required
@require_GET
def files_browse(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    root, folder = _where(request)
    return _browser(request, workspace, root, folder)


def _editor(workspace: Workspace, root: str, path: str) -> dict[str, Any]:
    view = files.read_file(workspace_id=workspace.pk, root=root, path=path)
    return {
        "root": root,
        "path": path,
        "size": view.size,
        "text": view.text,
        "binary": view.text is None,
        "editable": view.editable,
        "crlf": view.text is not None and "\r\n" in view.text,
    }


@login_required
@require_http_methods(["GET", "POST"])
def file_open(request: HttpRequest, workspace_id: str) -> HttpResponse:
    """GET: the file in the editor (or, binary, its download link). POST: save the text."""
    workspace = selectors.workspace_for(request.user, workspace_id)
    root, path = _where(request)
    if request.method == "POST":
        return _save(request, workspace, root, path)
    status = 200
    try:
        editor = _editor(workspace, root, path)
    except files.FileNotFound:
        # A new file: an empty editor, written on save.
        editor = {"root": root, "path": path, "text": "", "editable": True, "new": True}
    except (*FAILURES, files.FileTooLarge) as error:
        editor, status = {"root": root, "path": path, "problem": str(error)}, _status(error)
    context = {
        "workspace": workspace,
        "can_act": can_act(request.user, workspace.org_id),
        "editor": editor,
        "text_cap": files.text_cap(),
    }
    if request.htmx:
        return render(request, "workspaces/files.html#editor", context, status=status)
    return _browser(request, workspace, root, _parent(path), status=status, editor=editor)


def _save(request: HttpRequest, workspace: Workspace, root: str, path: str) -> HttpResponse:
    check_write(request.user, workspace.org_id)
    text = request.POST.get("text", "")
    if request.POST.get("crlf") != "1":
        text = text.replace("\r\n", "\n")
    problem, done = "", ""
    status = 200
    if fields.unstorable(text):
        problem, status = "The text must not hold NUL or other unstorable characters.", 400
    else:
        try:
            size = files.write_file(
                workspace_id=workspace.pk,
                actor=actor(request.user),
                root=root,
                path=path,
                data=text.encode(),
            )
            done = f"Saved {path} ({size} bytes)."
        except (*FAILURES, files.FileTooLarge) as error:
            problem, status = str(error), _status(error)
    if not request.htmx:
        if problem:
            messages.error(request, f"Not saved: {problem}")
        else:
            messages.success(request, done)
        query = urlencode({"root": root, "path": path})
        return redirect(f"{reverse('workspace-file', args=[workspace.pk])}?{query}")
    editor = {
        "root": root,
        "path": path,
        "text": text,
        "binary": False,
        "editable": True,
        "size": len(text.encode()),
        "crlf": request.POST.get("crlf") == "1",
        "problem": problem,
        "done": done,
    }
    context = {
        "workspace": workspace,
        "can_act": True,
        "editor": editor,
        "text_cap": files.text_cap(),
    }
    return render(request, "workspaces/files.html#editor", context, status=status)


@login_required
@require_POST
def file_upload(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    root, folder = _where(request)
    upload = request.FILES.get("file")
    error: Exception | None = None
    done = ""
    if upload is None:
        error = InvalidRequest("Choose a file to upload.")
    elif upload.size is not None and upload.size > files.transfer_cap():
        error = files.FileTooLarge(
            f"{upload.name} holds {upload.size} bytes, more than {files.transfer_cap()}."
        )
    else:
        name = request.POST.get("name") or upload.name or ""
        try:
            target = join(folder, name) if folder else name
            size = files.write_file(
                workspace_id=workspace.pk,
                actor=actor(request.user),
                root=root,
                path=target,
                data=upload.read(files.transfer_cap() + 1),
                upload=True,
            )
            done = f"Uploaded {target} ({size} bytes)."
        except (*FAILURES, files.FileTooLarge) as failed:
            error = failed
    return _after_change(request, workspace, root, folder, error, done)


@login_required
@require_POST
def file_rename(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    root, path = _where(request)
    to = request.POST.get("to", "")
    error: Exception | None = None
    done = ""
    if fields.unstorable(to):
        error = InvalidRequest("The new path must be text without NUL characters.")
    else:
        try:
            files.rename_file(
                workspace_id=workspace.pk,
                actor=actor(request.user),
                root=root,
                path=path,
                new_path=to,
            )
            done = f"Renamed {path} to {to}."
        except FAILURES as failed:
            error = failed
    return _after_change(request, workspace, root, _parent(path), error, done)


@login_required
@require_http_methods(["GET", "POST"])
def file_delete(request: HttpRequest, workspace_id: str) -> HttpResponse:
    """GET: the confirmation page; POST: delete (a folder with everything in it)."""
    workspace = selectors.workspace_for(request.user, workspace_id)
    check_write(request.user, workspace.org_id)
    root, path = _where(request)
    if request.method == "GET":
        context = {
            "workspace": workspace,
            "root": root,
            "path": path,
            "back": browser_url(workspace, root if root in ROOTS else CONFIGS, _parent(path)),
        }
        return render(request, "workspaces/file_delete.html", context)
    error: Exception | None = None
    try:
        files.delete_file(
            workspace_id=workspace.pk, actor=actor(request.user), root=root, path=path
        )
    except FAILURES as failed:
        error = failed
    return _after_change(request, workspace, root, _parent(path), error, f"Deleted {path}.")


@login_required
@require_GET
def file_download(request: HttpRequest, workspace_id: str) -> HttpResponse:
    workspace = selectors.workspace_for(request.user, workspace_id)
    root, path = _where(request)
    try:
        data = files.download(workspace_id=workspace.pk, root=root, path=path)
    except (*FAILURES, files.FileTooLarge) as error:
        status = 404 if isinstance(error, files.FileNotFound) else _status(error)
        return _browser(request, workspace, root, _parent(path), status=status, refused=str(error))
    return attachment(data, path)
