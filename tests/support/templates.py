"""Molecule org templates for the import tests: the 43-workspace one in tests/data/templates/,
copies of it to break, small ones written on the spot, and what an import wrote.

``harbor-works`` is written for these tests in Molecule's format (no Molecule template is
copied): org.yaml includes one file per team (teams/*.yaml), each team includes the shared role
files (roles/<role>/workspace.yaml) whose files_dir holds a system prompt, prompt files, notes
and, for the Scout, a .env of its own.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import textwrap
import zipfile
from pathlib import Path

from orgs.models import Org, Team
from workspaces.models import StructureEvent, Workspace, WorkspaceFile, WorkspaceSecret

HARBOR = Path(__file__).resolve().parents[1] / "data" / "templates" / "harbor-works"
# What the import must be given: one of the any_of group, and the ${HARBOR_DATA} of the
# Director's workspace_dir (HARBOR_PAGER_TOKEN is only recommended).
HARBOR_ENV = {"ANTHROPIC_API_KEY": "sk-ant-test-not-real", "HARBOR_DATA": "/srv/harbor-test"}
HARBOR_WORKSPACES = 43  # the Director, 6 leads, 6 members each
HARBOR_TEAMS = 7


def copy_harbor(where: Path) -> Path:
    """A copy of harbor-works to change."""
    target = where / "harbor-works"
    shutil.copytree(HARBOR, target, symlinks=True)
    return target


def write_template(where: Path, files: dict[str, str | bytes]) -> Path:
    """A template directory holding ``files`` (path -> text, dedented, or bytes)."""
    for name, body in files.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(textwrap.dedent(body).lstrip("\n"))
    return where


def everything() -> dict[str, int]:
    """What an import writes, counted: a refused one must leave every count as it was."""
    return {
        "orgs": Org.objects.count(),
        "workspaces": Workspace.objects.count(),
        "teams": Team.objects.count(),
        "files": WorkspaceFile.objects.count(),
        "secrets": WorkspaceSecret.objects.count(),
        "events": StructureEvent.objects.count(),
    }


def zipped(folder: Path, *, top: str = "") -> bytes:
    """``folder`` as a zip; ``top``: inside one top-level folder of that name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                archive.write(path, f"{top}/{name}" if top else name)
    return buffer.getvalue()


def tarred(folder: Path, *, top: str = "") -> bytes:
    """``folder`` as a .tar.gz; ``top``: inside one top-level folder of that name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=top or ".")
    return buffer.getvalue()
