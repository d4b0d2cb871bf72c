"""Files in a workspace's storage: list, read, write, rename, delete, through its backend.

Every door (the page's file browser, the API, ``manage.py workspace files``, the parity check)
calls these, so one set of rules holds:

* two roots, ``workspace`` (the agent's /workspace; none in T1) and ``configs`` (the agent
  contract's configs directory); a path in them is a plain relative path
  (``configs.path_problem``: no absolute path, no ``..``, no NUL), judged here and again by the
  backend, which never follows a link on the way;
* ``configs/.auth_token`` is the agent's credential: it is never read, written, renamed,
  replaced or deleted through this door (``InvalidRequest``). Secrets live in the vault and
  reach the agent's environment, never a file the door can write, so no write changes one;
* sizes are capped: ``MOLECULE_FILE_MAX_BYTES`` for what is shown and edited as text,
  ``MOLECULE_FILE_TRANSFER_MAX_BYTES`` for uploads and downloads (``FileTooLarge``);
* what leaves the console is masked (workspaces/redaction.py): text is shown with the
  workspace's secrets replaced by their names. A download of a text file is the masked text;
  a binary file is downloaded as it is unless it holds a secret's value, which cannot be
  masked without corrupting it: that download is refused (``Refused``). A text file holding a
  secret is shown masked but cannot be saved from the editor (its masks would replace the
  values): upload a replacement instead;
* every change (write, upload, rename, delete) is an event: root, path, size, never the
  content. Reads are not events.

A workspace that was removed has no storage (``Refused``); any other state is fine, since files
of a stopped workspace are reachable on every backend (on controlplane /configs lives in the
running VM only: its backend refuses it with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from workspaces import backends, events, redaction
from workspaces.backends import BackendError, Verdict
from workspaces.backends.configs import TOKEN_FILE, path_problem
from workspaces.backends.files import CONFIGS, ROOTS, FileProblem, Listing, Storage, join
from workspaces.dispatch.core import InvalidRequest, no_backend_reason
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, Workspace
from workspaces.tiers import tier_settings

ROW = "files"
__all__ = [
    # For the doors: the roots, a listing, and how a folder and a name make a path.
    "CONFIGS",
    "ROOTS",
    "FileNotFound",
    "FileTooLarge",
    "FileView",
    "FilesFailed",
    "Listing",
    "delete_file",
    "download",
    "join",
    "list_files",
    "read_file",
    "rename_file",
    "write_file",
]


class FileNotFound(LookupError):
    """No such file or folder (the API's 404)."""


class FileTooLarge(InvalidRequest):
    """Over a cap (the API's 413)."""


class FilesFailed(Exception):
    """The backend could not be reached or failed (the API's 502)."""


@dataclass(frozen=True)
class FileView:
    """A file as it may be shown: ``text`` (masked) for a UTF-8 file without NUL bytes, else
    None (binary: downloadable, not shown). ``editable``: masking changed nothing."""

    root: str
    path: str
    size: int
    text: str | None
    editable: bool


def text_cap() -> int:
    return int(settings.MOLECULE_FILE_MAX_BYTES)


def transfer_cap() -> int:
    return int(settings.MOLECULE_FILE_TRANSFER_MAX_BYTES)


def check_root(root: object) -> str:
    if root not in ROOTS:
        raise InvalidRequest(f"The root must be one of {', '.join(ROOTS)}, not {str(root)[:40]!r}.")
    return str(root)


def check_path(root: str, path: object, *, folder_ok: bool = False) -> str:
    """A path the door accepts in ``root`` ("" only for a folder: the root itself)."""
    if folder_ok and path == "":
        return ""
    if why := path_problem(path):
        raise InvalidRequest(f"The path {why}.")
    assert isinstance(path, str)
    if root == CONFIGS and path == TOKEN_FILE:
        raise InvalidRequest(
            f"{TOKEN_FILE} is the agent's credential: it is rewritten at every start and never "
            "read or changed through the file browser."
        )
    return path


def target(workspace_id: Any) -> tuple[Workspace, backends.Backend, Storage]:
    workspace = Workspace.objects.get(pk=workspace_id)
    if workspace.status == Status.REMOVED:
        raise Refused(f"Workspace {workspace.name!r} was deleted with its storage.")
    backend = backends.get(workspace.backend)
    if backend is None:
        raise Refused(no_backend_reason(workspace.backend))
    declared = backend.capabilities.get(ROW)
    if declared is not None and declared.verdict == Verdict.UNSUPPORTED:
        raise Refused(f"The {workspace.backend} backend cannot reach files: {declared.note}")
    tier = tier_settings(workspace.tier)
    storage = Storage(
        workspace_id=str(workspace.pk),
        workspace_dir=workspace.workspace_dir,
        workspace_volume=tier.workspace_volume,
    )
    return workspace, backend, storage


def translated(error: BackendError) -> Exception:
    if isinstance(error, FileProblem):
        if error.kind == "missing":
            return FileNotFound(error.message)
        if error.kind == "too_large":
            return FileTooLarge(error.message)
        return Refused(error.message)
    return FilesFailed(error.message)


def list_files(*, workspace_id: Any, root: str, path: str = "") -> Listing:
    root = check_root(root)
    path = check_path(root, path, folder_ok=True)
    _, backend, storage = target(workspace_id)
    try:
        return backend.list_files(storage, root, path)
    except BackendError as error:
        raise translated(error) from None


def _read(workspace_id: Any, root: str, path: str, cap: int) -> tuple[Workspace, bytes]:
    root = check_root(root)
    path = check_path(root, path)
    workspace, backend, storage = target(workspace_id)
    try:
        return workspace, backend.read_file(storage, root, path, max_bytes=cap)
    except BackendError as error:
        raise translated(error) from None


def as_text(data: bytes) -> str | None:
    """The file as text, or None when it is binary (a NUL byte, or not UTF-8)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_file(*, workspace_id: Any, root: str, path: str) -> FileView:
    """The file as it may be shown (at most MOLECULE_FILE_MAX_BYTES), its secrets masked."""
    workspace, data = _read(workspace_id, root, path, text_cap())
    text = as_text(data)
    if text is None:
        return FileView(root, path, len(data), None, False)
    masked = redaction.for_workspace(workspace).text(text)
    return FileView(root, path, len(data), masked, masked == text)


def download(*, workspace_id: Any, root: str, path: str) -> bytes:
    """The bytes a download hands out (at most MOLECULE_FILE_TRANSFER_MAX_BYTES): a text
    file's masked text; a binary file as it is, refused when it holds a secret's value."""
    workspace, data = _read(workspace_id, root, path, transfer_cap())
    redactor = redaction.for_workspace(workspace)
    text = as_text(data)
    if text is not None:
        return redactor.text(text).encode()
    # latin-1 maps every byte to one character: a secret's bytes show as its characters.
    raw = data.decode("latin-1")
    if redactor.text(raw) != raw:
        raise Refused(
            f"{path} is binary and holds a secret of this workspace, which cannot be masked "
            "without corrupting the file: it is not handed out."
        )
    return data


def _record(workspace: Workspace, actor: str, event: EventType, payload: dict[str, Any]) -> None:
    with transaction.atomic():
        events.record(
            event,
            actor=actor,
            workspace=workspace,
            payload={**payload, "backend": workspace.backend},
        )


def write_file(
    *, workspace_id: Any, actor: str, root: str, path: str, data: bytes, upload: bool = False
) -> int:
    """Write ``data`` to ``path`` (its folders made); returns its size. An edit (``upload``
    false) is capped at MOLECULE_FILE_MAX_BYTES and refused over a file that holds a secret
    (its shown text was masked); an upload at MOLECULE_FILE_TRANSFER_MAX_BYTES."""
    root = check_root(root)
    path = check_path(root, path)
    cap = transfer_cap() if upload else text_cap()
    if len(data) > cap:
        raise FileTooLarge(f"The file holds {len(data)} bytes, more than {cap}.")
    workspace, backend, storage = target(workspace_id)
    try:
        if not upload:
            try:
                current = backend.read_file(storage, root, path, max_bytes=text_cap())
            except FileProblem as problem:
                # Nothing readable there (none, a folder, a link): the write itself decides.
                if problem.kind not in ("missing", "conflict"):
                    raise
            else:
                text = as_text(current)
                if text is not None and redaction.for_workspace(workspace).text(text) != text:
                    raise Refused(
                        f"{path} holds a secret of this workspace, shown masked: saving the "
                        "masked text would destroy it. Upload a replacement instead."
                    )
        backend.write_file(storage, root, path, bytes(data))
    except BackendError as error:
        raise translated(error) from None
    _record(
        workspace,
        actor,
        EventType.FILE_WRITTEN,
        {"root": root, "path": path, "size": len(data), "via": "upload" if upload else "edit"},
    )
    return len(data)


def rename_file(*, workspace_id: Any, actor: str, root: str, path: str, new_path: str) -> None:
    root = check_root(root)
    path, new_path = check_path(root, path), check_path(root, new_path)
    if new_path == path:
        raise InvalidRequest("The new path is the same as the old one.")
    workspace, backend, storage = target(workspace_id)
    try:
        backend.rename_file(storage, root, path, new_path)
    except BackendError as error:
        raise translated(error) from None
    _record(workspace, actor, EventType.FILE_RENAMED, {"root": root, "path": path, "to": new_path})


def delete_file(*, workspace_id: Any, actor: str, root: str, path: str) -> None:
    root = check_root(root)
    path = check_path(root, path)
    workspace, backend, storage = target(workspace_id)
    try:
        backend.delete_file(storage, root, path)
    except BackendError as error:
        raise translated(error) from None
    _record(workspace, actor, EventType.FILE_DELETED, {"root": root, "path": path})
