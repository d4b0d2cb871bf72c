"""The controlplane backend's files: the control plane's files endpoints, by workspace id.

docs/controlplane-api.md is the contract (``/cp/files/<workspace_id>/<root>/...``): ``list``
(GET, ``?path=``), ``content`` (GET ``?path=&max=``, the raw bytes; PUT, the raw body; DELETE)
and ``rename`` (POST ``{"path", "to"}``). The control plane keeps the /workspace volume by
workspace id and reaches /configs in the workspace's current VM. Its answers map onto
:class:`FileProblem`: 404 ``missing``, 413 ``too_large``, 409 ``conflict`` or ``unavailable``
(its ``kind`` says which); the rest is the backend's usual BackendError.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from workspaces.backends.base import BackendError
from workspaces.backends.files import (
    FileEntry,
    FileProblem,
    Listing,
    Storage,
    missing,
    sorted_listing,
)

ANSWERED = frozenset({409, 413})


class ControlPlaneFiles:
    """The file methods of :class:`~workspaces.backends.controlplane.ControlPlaneBackend`."""

    url: str
    # ControlPlaneBackend._call: one request with bounded retries.
    _call: Any

    def _files(
        self,
        method: str,
        storage: Storage,
        root: str,
        op: str,
        *,
        path: str,
        what: str,
        **request: Any,
    ) -> httpx.Response:
        response = self._call(
            method,
            f"/cp/files/{quote(storage.workspace_id, safe='')}/{root}/{op}",
            what=what,
            missing_ok=True,
            answer=ANSWERED,
            **request,
        )
        if response is None:
            raise missing(root, path)
        if response.status_code in ANSWERED:
            try:
                body = response.json()
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            kind = "too_large" if response.status_code == 413 else str(body.get("kind", ""))
            if kind not in ("too_large", "conflict", "unavailable"):
                kind = "conflict"
            raise FileProblem(
                kind, str(body.get("error") or f"The control plane refused to {what}.")
            )
        return response

    def list_files(self, storage: Storage, root: str, path: str) -> Listing:
        what = f"list {path or root} of workspace {storage.workspace_id}"
        response = self._files(
            "GET", storage, root, "list", path=path, what=what, params={"path": path}
        )
        try:
            data = response.json()
            entries = [
                FileEntry(
                    str(item["name"]),
                    str(item["kind"]),
                    int(item.get("size") or 0),
                    float(item.get("modified") or 0),
                )
                for item in data["entries"]
            ]
        except (ValueError, KeyError, TypeError) as error:
            raise BackendError(
                f"The control plane at {self.url} answered the request to {what} with no "
                f"listing ({error}).",
                permanent=True,
            ) from None
        listing = sorted_listing(entries)
        return Listing(listing.entries, listing.truncated or bool(data.get("truncated")))

    def read_file(self, storage: Storage, root: str, path: str, *, max_bytes: int) -> bytes:
        what = f"read {path} of workspace {storage.workspace_id}"
        params = {"path": path, "max": max_bytes}
        response = self._files("GET", storage, root, "content", path=path, what=what, params=params)
        if len(response.content) > max_bytes:
            raise FileProblem("too_large", f"{path} is larger than {max_bytes} bytes.")
        return response.content

    def write_file(self, storage: Storage, root: str, path: str, data: bytes) -> None:
        what = f"write {path} of workspace {storage.workspace_id}"
        self._files(
            "PUT",
            storage,
            root,
            "content",
            path=path,
            what=what,
            params={"path": path},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def rename_file(self, storage: Storage, root: str, path: str, new_path: str) -> None:
        what = f"rename {path} of workspace {storage.workspace_id}"
        body = {"path": path, "to": new_path}
        self._files("POST", storage, root, "rename", path=path, what=what, json=body)

    def delete_file(self, storage: Storage, root: str, path: str) -> None:
        what = f"delete {path} of workspace {storage.workspace_id}"
        self._files("DELETE", storage, root, "content", path=path, what=what, params={"path": path})
