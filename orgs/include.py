"""``!include``: a template's ``org.yaml`` split into files, put back together as Molecule does.

A scalar tagged ``!include`` names a file, relative to the directory of the file it is written
in; the file's YAML takes the scalar's place (``- !include teams/dev.yaml``, or
``children: !include team.yaml`` for a whole list). The rules, each refused with the file and
line of the directive:

- the file must stay inside the template's root (``../role/workspace.yaml`` is fine while it
  does; an absolute path is refused);
- a file already being included further up the chain makes a **cycle**: the message names every
  file and line of the chain;
- at most ``MAX_INCLUDE_DEPTH`` files deep (Molecule's bound), and at most ``MAX_INCLUDED`` bytes
  of YAML read in all, counting a file each time it is included (a file included twice in each
  of many nested files would otherwise grow the template exponentially);
- each file is read with the single-file rules (orgs/orgfile.py: no aliases, no merge keys, no
  duplicate keys, bounded nesting), and every key remembers its file and line, so a problem reads
  ``teams/dev.yaml line 12: workspaces[0].children[3].role: …``.
"""

from __future__ import annotations

from yaml.nodes import Node, ScalarNode

from orgs.orgfile import (
    ROOT_FILE,
    InvalidOrgFile,
    Parsed,
    Problem,
    _line,
    compose,
    finish,
    includes,
)
from orgs.tree import Tree, TreeError, join, parent_of

MAX_INCLUDE_DEPTH = 16
MAX_INCLUDED = 4 * 1024 * 1024


class _Reader:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.read = 0
        self.problems: list[Problem] = []

    def text(self, file: str, at: Problem | None) -> str | None:
        """A YAML file's text, or None with a problem (at the directive that named it)."""
        where = at or Problem(None, "", "", file)
        try:
            data = self.tree.read(file)
        except TreeError as error:
            self.problems.append(Problem(where.line, "", f"!include: {error}", where.file))
            return None
        self.read += len(data)
        if self.read > MAX_INCLUDED:
            message = (
                "the template's YAML files, counted each time they are included, pass "
                f"{MAX_INCLUDED} bytes"
            )
            self.problems.append(Problem(where.line, "", message, where.file))
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.problems.append(Problem(None, "", "is not UTF-8 text", file))
            return None

    def node(self, file: str, chain: list[tuple[str, int]], at: Problem | None) -> Node | None:
        """``file`` composed, its own includes replaced; ``chain``: the files including it and
        the line of each directive, outermost first."""
        text = self.text(file, at)
        if text is None:
            return None
        try:
            node = compose(text, file)
        except InvalidOrgFile as invalid:
            self.problems += invalid.problems
            return None
        for directive in includes(node):
            replacement = self.include(directive, file, _line(directive), chain)
            if replacement is None:
                continue
            if directive is node:  # the whole file is one !include
                node = replacement
            else:
                _replace(node, directive, replacement)
        return node

    def include(
        self, directive: Node, file: str, line: int, chain: list[tuple[str, int]]
    ) -> Node | None:
        def refuse(message: str) -> None:
            self.problems.append(Problem(line, "", message, file))

        if not isinstance(directive, ScalarNode) or not str(directive.value).strip():
            refuse("!include takes the name of a file (e.g. !include teams/dev.yaml)")
            return None
        name = str(directive.value).strip()
        try:
            target = join(parent_of(file), name)
        except TreeError as error:
            refuse(f"!include {error}")
            return None
        files = [outer for outer, _ in chain] + [file]
        if target in files:
            steps = [*chain, (file, line)]
            start = files.index(target)
            targets = [*files[start + 1 :], target]
            route = ", ".join(
                f"{outer} line {at} includes {inner}"
                for (outer, at), inner in zip(steps[start:], targets, strict=True)
            )
            refuse(f"!include {name!r} makes a cycle: {route}")
            return None
        if len(chain) + 1 > MAX_INCLUDE_DEPTH:
            refuse(f"!include {name!r}: includes nest more than {MAX_INCLUDE_DEPTH} files deep")
            return None
        if self.tree.kind(target) == "dir":
            refuse(f"!include {name!r}: {target} is a directory, not a file")
            return None
        return self.node(target, [*chain, (file, line)], Problem(line, "", "", file))


def _replace(root: Node, old: Node, new: Node) -> None:
    """Put ``new`` where ``old`` is in the graph under ``root`` (once: nodes are not shared)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node.value, list):
            for index, item in enumerate(node.value):
                if isinstance(item, tuple):
                    key, value = item
                    if value is old:
                        node.value[index] = (key, new)
                        return
                    stack.append(value)
                elif item is old:
                    node.value[index] = new
                    return
                else:
                    stack.append(item)


def parse_tree(tree: Tree, root: str = ROOT_FILE) -> Parsed:
    """The template's data from ``root`` and what it includes; ``InvalidOrgFile`` with every
    problem found, by file and line."""
    if tree.kind(root) != "file":
        raise InvalidOrgFile([Problem(None, "", f"the template has no {root} at its top", root)])
    reader = _Reader(tree)
    node = reader.node(root, [], None)
    if reader.problems or node is None:
        raise InvalidOrgFile(reader.problems)
    return finish(node)
