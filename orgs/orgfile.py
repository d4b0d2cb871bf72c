"""Reading an org file: YAML data with the line of every key, and what is not data refused.

The import validates the data (orgs/importer.py); this module makes sure there is data to
validate and that every key, item and problem can name its line. Aliases, merge keys, duplicate
keys and too-deep nesting are refused here, before anything recurses or silently wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from workspaces.fields import MAX_NESTING

# Bounds that keep a pasted file from turning into a denial of service.
MAX_BYTES = 256 * 1024
# YAML levels (a team level is two: the node's mapping and its children list); the same bound as
# a JSON body's.
MAX_DEPTH = MAX_NESTING
# No field of an org file takes a number this long (the same bound as a JSON body's numbers);
# Python refuses to read one of over 4,300 digits anyway.
MAX_DIGITS = 30


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where (line, path) and a sentence saying what."""

    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class InvalidOrgFile(ValueError):
    """The file cannot be imported; ``problems`` lists every reason, in line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Parsed:
    data: Any
    # "workspaces[0].children[1].tier" -> line number (1-based) of that key or item.
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int | None:
        # A problem's path can be deeper than anything in the file (a missing key): fall back to
        # the closest enclosing key or item that is there.
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[: path.rindex("[")] if path.endswith("]") else path.rpartition(".")[0]
        return self.lines.get("")


def _line(node: Node | yaml.Event | yaml.Mark) -> int:
    mark = node if isinstance(node, yaml.Mark) else node.start_mark
    return mark.line + 1


def _syntax_problem(error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    text = f"{context}, {problem}" if context else problem
    return Problem(_line(mark) if mark else None, "", f"not valid YAML: {text}")


def _event_problems(text: str) -> list[Problem]:
    """Every alias in the file (those that point into their own anchor are cycles), and nesting
    deeper than ``MAX_DEPTH``; read from the parser's events, before anything recurses."""
    problems: list[Problem] = []
    anchors: dict[str, int] = {}
    open_anchors: list[str | None] = []
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor
            if anchor in open_anchors:
                message = (
                    f"*{anchor} makes a cycle: it refers to &{anchor} (line {anchors[anchor]}), "
                    "which contains it, so a workspace would contain itself"
                )
            else:
                message = (
                    f"YAML aliases are not allowed in an org file (*{anchor} refers to "
                    f"&{anchor} on line {anchors.get(anchor, '?')}): write each workspace out"
                )
            problems.append(Problem(_line(event), "", message))
            continue
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            anchors[event.anchor] = _line(event)
        if isinstance(event, yaml.CollectionStartEvent):
            open_anchors.append(event.anchor)
            if len(open_anchors) > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                return [*problems, Problem(_line(event), "", message)]
        elif isinstance(event, yaml.CollectionEndEvent):
            open_anchors.pop()
    return problems


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, whose numbers and dates fail as problems with their line.

    The stock one raises a bare ValueError for an integer of over 4,300 digits or a date that
    does not exist (2024-02-30), which would say neither where nor what.
    """

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            value = super().construct_yaml_int(node)
        except ValueError:
            value = None
        # A sexagesimal integer (1:2:3) grows without its digits being counted.
        if value is None or abs(value) >= 10**MAX_DIGITS:
            raise InvalidOrgFile(
                [Problem(_line(node), "", f"a number longer than {MAX_DIGITS} digits")]
            )
        return value

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as error:
            message = f"{node.value[:40]!r} is not a date that exists ({error})"
            raise InvalidOrgFile([Problem(_line(node), "", message)]) from None


Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)


def _index(node: Node, path: str, lines: dict[str, int], problems: list[Problem]) -> None:
    """Record the line of every key and item, and refuse what the constructor would hide."""
    lines.setdefault(path, _line(node))
    if isinstance(node, MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
            child = f"{path}.{key}" if path else key
            if key == "<<":
                problems.append(Problem(_line(key_node), path, "merge keys (<<) are not allowed"))
                continue
            if key in first_seen:
                # PyYAML would silently keep the last value; a typo'd copy must not win quietly.
                problems.append(
                    Problem(
                        _line(key_node),
                        child,
                        f"duplicate key (already given on line {first_seen[key]})",
                    )
                )
                continue
            first_seen[key] = _line(key_node)
            lines[child] = _line(key_node)
            _index(value_node, child, lines, problems)
    elif isinstance(node, SequenceNode):
        for number, item in enumerate(node.value):
            _index(item, f"{path}[{number}]", lines, problems)


def parse(text: str) -> Parsed:
    """The file's data with the line of every key; ``InvalidOrgFile`` for what is not data."""
    if len(text.encode()) > MAX_BYTES:
        raise InvalidOrgFile([Problem(None, "", f"the file is larger than {MAX_BYTES} bytes")])
    try:
        if problems := _event_problems(text):
            raise InvalidOrgFile(problems)
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise InvalidOrgFile([Problem(1, "", "the file is empty")])
            lines: dict[str, int] = {}
            problems = []
            _index(node, "", lines, problems)
            if problems:
                raise InvalidOrgFile(problems)
            return Parsed(loader.construct_document(node), lines)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise InvalidOrgFile([_syntax_problem(error)]) from None
