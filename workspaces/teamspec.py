"""The shape of a team spec: the ``children`` of a lead, as org import and expand use them.

One node is ``{name, role?, tier?, runtime?, workspace_dir?, children?}`` plus the template
settings a Molecule org template gave that member, resolved (``workspaces/template_fields.py``:
model, prompts, plugins, schedules, channels, memories …), and ``files_from``: the id of the
workspace whose files (``WorkspaceFile``) the member gets, the one org import created from the
same template entry. Expand recreates each member with the same columns, the same template
settings and the same files. Validation returns every problem with its path
(``children[1].tier``) so org import can point at the YAML line and expand can refuse with a
sentence; only :func:`give_template` writes, in its caller's transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from workspaces import fields, template_fields
from workspaces.models import Workspace, WorkspaceFile

NODE_KEYS = {"name", "role", "tier", "runtime", "workspace_dir", "children"}
TEMPLATE_KEYS = set(template_fields.TEMPLATE)
FILES_FROM = "files_from"


def node_problems(node: object, path: str) -> list[tuple[str, str]]:
    """(path, message) for everything wrong with one node and its children."""
    if not isinstance(node, dict):
        return [(path, "must be a mapping with at least a name")]
    known = NODE_KEYS | TEMPLATE_KEYS | {FILES_FROM}
    problems = [(f"{path}.{key}", "unknown key") for key in node if key not in known]
    # The same rule per field as every other door (workspaces.fields, template_fields).
    problems += [
        (f"{path}.{key}", why)
        for key in ("name", "role", "tier", "runtime", "workspace_dir")
        if (key in node or key == "name") and (why := fields.CHECKS[key](node.get(key)))
    ]
    problems += template_fields.template_problems(node, path)
    if FILES_FROM in node and not _is_uuid(node[FILES_FROM]):
        problems.append((f"{path}.{FILES_FROM}", "must be a workspace id"))
    problems += children_problems(node.get("children", []), f"{path}.children")
    return problems


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def size_problem(children: object) -> str | None:
    """More than ``fields.MAX_TEAM`` workspaces in these nodes and all below them: the one cap
    for an org import's tree and a lead's team spec. Counted without recursion."""
    total, stack = 0, [children]
    while stack:
        nodes = stack.pop()
        if not isinstance(nodes, list):
            continue
        total += len(nodes)
        stack += [node.get("children") for node in nodes if isinstance(node, dict)]
    if total > fields.MAX_TEAM:
        return f"{total} workspaces; one import or team spec creates at most {fields.MAX_TEAM}"
    return None


def children_problems(children: object, path: str = "children") -> list[tuple[str, str]]:
    if not isinstance(children, list):
        return [(path, "must be a list")]
    if why := size_problem(children):
        return [(path, why)]
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, child in enumerate(children):
        problems += node_problems(child, f"{path}[{index}]")
        name = child.get("name") if isinstance(child, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    (f"{path}[{index}].name", f"duplicate name {name!r} among siblings")
                )
            seen.add(name)
    if not problems and (
        why := template_fields.size_problem(
            children, most=template_fields.MAX_SPEC_BYTES, what="the team's settings"
        )
    ):
        problems.append((path, why))
    return problems


def creation_fields(node: dict[str, Any], *, defaults: dict[str, Any]) -> dict[str, Any]:
    """The ``create_workspace`` keyword arguments for a validated node."""
    return {
        "name": node["name"],
        "role": node.get("role", ""),
        "tier": node.get("tier", defaults.get("tier", 2)),
        "runtime": node.get("runtime", defaults.get("runtime", "langgraph")),
        "workspace_dir": node.get("workspace_dir", ""),
        "spec": {"children": node.get("children", [])},
    }


def template_of(node: dict[str, Any]) -> dict[str, Any]:
    """The template settings of a validated node: what ``Workspace.template`` keeps."""
    return {key: node[key] for key in template_fields.TEMPLATE if key in node}


def give_template(workspace: Workspace, node: dict[str, Any]) -> int:
    """Give a workspace just created from ``node`` its template settings and files.

    In the caller's transaction, before the workspace's first start is queued on commit: the
    agent starts with its settings and files or not at all. The files are copied from the
    workspace ``files_from`` names, when it is one of the same org (a removed one too: its files
    stay). Returns how many files it copied.
    """
    template = template_of(node)
    if template:
        Workspace.objects.filter(pk=workspace.pk).update(template=template)
        workspace.template = template
    source = node.get(FILES_FROM)
    if not source or not _is_uuid(source):
        return 0
    rows = WorkspaceFile.objects.filter(workspace_id=source, workspace__org_id=workspace.org_id)
    copies = [
        WorkspaceFile(workspace=workspace, path=row.path, content=row.content, size=row.size)
        for row in rows
    ]
    WorkspaceFile.objects.bulk_create(copies)
    return len(copies)
