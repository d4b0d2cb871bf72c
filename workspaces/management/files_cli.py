"""``manage.py workspace files …``: a workspace's files from the command line, through dispatch.

    workspace files ls  WORKSPACE [ROOT] [PATH]     a folder (ROOT: configs or workspace)
    workspace files cat WORKSPACE ROOT PATH         a text file, the workspace's secrets masked
    workspace files get WORKSPACE ROOT PATH OUT     download it to OUT ("-": stdout)
    workspace files put WORKSPACE ROOT PATH [SRC]   upload SRC (default "-": stdin)
    workspace files mv  WORKSPACE ROOT PATH NEW     rename
    workspace files rm  WORKSPACE ROOT PATH         delete (a folder with everything in it)

The same rules as the page and the API (workspaces/dispatch/files.py); every refusal is a
CommandError with its reason, and nothing is half done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from workspaces.dispatch import InvalidRequest, Refused, files


def add_parser(sub: Any) -> None:
    parser: CommandParser = sub.add_parser("files", help="List, read, write or remove files.")
    verbs = parser.add_subparsers(dest="files_action", required=True)
    for name, help_text, extra in (
        ("ls", "List a folder.", ()),
        ("cat", "Print a text file (secrets masked).", ("path",)),
        ("get", "Download a file.", ("path", "out")),
        ("put", "Upload a file from SRC or stdin.", ("path",)),
        ("mv", "Rename a file or folder.", ("path", "new")),
        ("rm", "Delete a file or folder.", ("path",)),
    ):
        verb = verbs.add_parser(name, help=help_text)
        verb.add_argument("workspace", help="Workspace id, id prefix or name.")
        verb.add_argument("--org", help="Org slug, to tell same-named workspaces apart.")
        if name == "ls":
            verb.add_argument("root", nargs="?", default="configs")
            verb.add_argument("path", nargs="?", default="")
            continue
        verb.add_argument("root", help="configs or workspace")
        for argument in extra:
            verb.add_argument(argument)
        if name == "put":
            verb.add_argument("src", nargs="?", default="-", help="A local file, or - for stdin.")


def _refusals[T](call: Callable[[], T]) -> T:
    try:
        return call()
    except (InvalidRequest, Refused, files.FileNotFound, files.FilesFailed) as refused:
        raise CommandError(str(refused)) from None


def run(command: Any, workspace_id: Any, actor: str, options: dict[str, Any]) -> None:
    action, root = options["files_action"], options["root"]
    path = options.get("path", "")
    out = command.stdout
    if action == "ls":
        listing = _refusals(
            lambda: files.list_files(workspace_id=workspace_id, root=root, path=path)
        )
        for entry in listing.entries:
            suffix = "/" if entry.kind == "folder" else ""
            size = f"{entry.size:>10}" if entry.kind == "file" else f"{entry.kind:>10}"
            out.write(f"{size}  {entry.name}{suffix}")
        if listing.truncated:
            out.write("(more entries not listed)")
    elif action == "cat":
        view = _refusals(lambda: files.read_file(workspace_id=workspace_id, root=root, path=path))
        if view.text is None:
            raise CommandError(f"{path} is binary: use `workspace files get` to download it.")
        out.write(view.text, ending="")
    elif action == "get":
        data = _refusals(lambda: files.download(workspace_id=workspace_id, root=root, path=path))
        if options["out"] == "-":
            sys.stdout.buffer.write(data)
        else:
            Path(options["out"]).write_bytes(data)
            out.write(f"{path}: {len(data)} bytes written to {options['out']}")
    elif action == "put":
        cap = files.transfer_cap()
        try:
            source = sys.stdin.buffer if options["src"] == "-" else open(options["src"], "rb")  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"Cannot read {options['src']}: {error.strerror}.") from None
        with source:
            data = source.read(cap + 1)
        size = _refusals(
            lambda: files.write_file(
                workspace_id=workspace_id, actor=actor, root=root, path=path, data=data, upload=True
            )
        )
        out.write(f"{root}/{path}: {size} bytes written")
    elif action == "mv":
        _refusals(
            lambda: files.rename_file(
                workspace_id=workspace_id,
                actor=actor,
                root=root,
                path=path,
                new_path=options["new"],
            )
        )
        out.write(f"{root}/{path} renamed to {options['new']}")
    elif action == "rm":
        _refusals(
            lambda: files.delete_file(workspace_id=workspace_id, actor=actor, root=root, path=path)
        )
        out.write(f"{root}/{path} deleted")
