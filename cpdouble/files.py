"""The double's files endpoints: a workspace's /workspace volume and its current VM's /configs.

``/cp/files/<workspace_id>/<root>/{list,content,rename}`` (docs/controlplane-api.md). Paths are
plain relative paths; a link or a file where a folder of the path goes is refused (409
``conflict``), never followed, as a real control plane must keep a request inside the VM's
directory. Files land 0600, folders 0700, written under a draft name and renamed into place.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

from cpdouble.errors import RequestError

MAX_PATH = 500
MAX_ENTRIES = 1000
# What one PUT may carry (the console's transfer cap is below it).
MAX_FILE = 64 * 1024 * 1024


class Conflict(RequestError):
    def __init__(self, message: str, kind: str = "conflict") -> None:
        super().__init__(409, message)
        self.kind = kind


def checked(path: object, *, empty_ok: bool = False) -> str:
    if path == "" and empty_ok:
        return ""
    if (
        not isinstance(path, str)
        or not path
        or len(path) > MAX_PATH
        or path.startswith("/")
        or "\\" in path
        or any(ord(char) < 32 or ord(char) == 127 for char in path)
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise RequestError(422, f"path {str(path)[:80]!r} is not a plain relative path")
    return path


def _place(base: Path, path: str, *, create: bool = False) -> Path:
    """``base/path``, refusing a link or a file on the way (folders made when ``create``)."""
    here = base
    for part in path.split("/")[:-1] if path else []:
        here = here / part
        if create and not os.path.lexists(here):
            here.mkdir(mode=0o700)
        if here.is_symlink() or (os.path.lexists(here) and not here.is_dir()):
            raise Conflict(f"{part} is a link or a file, not a folder")
        if not here.exists():
            raise RequestError(404, f"no {path}")
    return base / path if path else base


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return "link" if stat.S_ISLNK(mode) else "other"


def listing(base: Path, path: str) -> dict[str, Any]:
    folder = _place(base, path + "/x" if path else "")
    folder = folder.parent if path else folder
    if not os.path.lexists(folder):
        raise RequestError(404, f"no {path}")
    if folder.is_symlink() or not folder.is_dir():
        raise Conflict(f"{path} is not a folder")
    entries = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        info = entry.stat(follow_symlinks=False)
        entries.append(
            {
                "name": entry.name,
                "kind": _kind(info.st_mode),
                "size": info.st_size,
                "modified": info.st_mtime,
            }
        )
    return {"entries": entries[:MAX_ENTRIES], "truncated": len(entries) > MAX_ENTRIES}


def read(base: Path, path: str, cap: int) -> bytes:
    target = _place(base, path)
    try:
        found = target.lstat()
    except FileNotFoundError:
        raise RequestError(404, f"no {path}") from None
    if not stat.S_ISREG(found.st_mode):
        raise Conflict(f"{path} is not a regular file")
    if found.st_size > cap:
        raise RequestError(413, f"{path} holds {found.st_size} bytes, more than {cap}")
    return target.read_bytes()


def write(base: Path, path: str, data: bytes) -> None:
    target = _place(base, path, create=True)
    if target.is_dir() and not target.is_symlink():
        raise Conflict(f"{path} is a folder, not a file")
    draft = target.with_name(f".draft-{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(draft, target)


def rename(base: Path, path: str, to: str) -> None:
    source = _place(base, path)
    if not os.path.lexists(source):
        raise RequestError(404, f"no {path}")
    target = _place(base, to, create=True)
    if os.path.lexists(target):
        raise Conflict(f"{to} exists already")
    try:
        os.rename(source, target)
    except OSError as error:
        raise Conflict(f"{path} cannot be moved to {to}: {error.strerror}") from None


def delete(base: Path, path: str) -> None:
    target = _place(base, path)
    if not os.path.lexists(target):
        raise RequestError(404, f"no {path}")
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    else:
        target.unlink()
