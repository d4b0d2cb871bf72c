"""The shape of a team spec: the ``children`` of a lead, as org import YAML and expand use it.

One node is ``{name, role?, tier?, runtime?, workspace_dir?, children?}``. Validation returns
every problem with its path (``children[1].tier``) so org import can point at the YAML line and
expand can refuse with a sentence; nothing here writes anything.
"""

from __future__ import annotations

from typing import Any

from workspaces import fields

NODE_KEYS = {"name", "role", "tier", "runtime", "workspace_dir", "children"}


def node_problems(node: object, path: str) -> list[tuple[str, str]]:
    """(path, message) for everything wrong with one node and its children."""
    if not isinstance(node, dict):
        return [(path, "must be a mapping with at least a name")]
    problems = [(f"{path}.{key}", "unknown key") for key in node if key not in NODE_KEYS]
    # The same rule per field as every other door (workspaces.fields).
    problems += [
        (f"{path}.{key}", why)
        for key in ("name", "role", "tier", "runtime", "workspace_dir")
        if (key in node or key == "name") and (why := fields.CHECKS[key](node.get(key)))
    ]
    problems += children_problems(node.get("children", []), f"{path}.children")
    return problems


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
