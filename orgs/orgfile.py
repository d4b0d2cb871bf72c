"""Reading an org file: YAML data with the file and line of every key, and what is not data
refused.

The import validates the data (orgs/importer.py); this module makes sure there is data to
validate and that every key, item and problem can name its line. Aliases, merge keys, duplicate
keys and too-deep nesting are refused here, before anything recurses or silently wins. A
template directory's ``org.yaml`` and the files it ``!include``s are composed by
``orgs/include.py`` with the same functions, each node remembering the file it came from.
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
    """One thing wrong with the file: where (file, line, path) and a sentence saying what.

    ``file`` is relative to the template's root ("" for a single pasted or uploaded file)."""

    line: int | None
    path: str
    message: str
    file: str = ""

    @property
    def where(self) -> str:
        if self.file and self.line:
            return f"{self.file} line {self.line}"
        return self.file or (f"line {self.line}" if self.line else "")

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class InvalidOrgFile(ValueError):
    """The file cannot be imported; ``problems`` lists every reason, by file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(
            set(problems), key=lambda p: (p.file != ROOT_FILE, p.file, p.line or 0, p.path)
        )
        super().__init__("\n".join(str(p) for p in self.problems))


# A template directory's top file.
ROOT_FILE = "org.yaml"
# The name PyYAML gives a string it reads; a single pasted file has no name of its own.
UNNAMED = "<unicode string>"


@dataclass
class Parsed:
    data: Any
    # "workspaces[0].children[1].tier" -> line number (1-based) of that key or item.
    lines: dict[str, int] = field(default_factory=dict)
    # ... and the file it is written in (absent: the one file of a single-file import).
    files: dict[str, str] = field(default_factory=dict)

    def _closest(self, path: str) -> str:
        # A problem's path can be deeper than anything in the file (a missing key): fall back to
        # the closest enclosing key or item that is there.
        while path:
            if path in self.lines:
                return path
            path = path[: path.rindex("[")] if path.endswith("]") else path.rpartition(".")[0]
        return ""

    def line_of(self, path: str) -> int | None:
        return self.lines.get(self._closest(path))

    def file_of(self, path: str) -> str:
        return self.files.get(self._closest(path), "")

    def problem(self, path: str, message: str) -> Problem:
        """A problem at ``path``, placed in the file and on the line that path is written."""
        closest = self._closest(path)
        return Problem(self.lines.get(closest), path, message, self.files.get(closest, ""))


def _line(node: Node | yaml.Event | yaml.Mark) -> int:
    mark = node if isinstance(node, yaml.Mark) else node.start_mark
    return mark.line + 1


def _file(node: Node | yaml.Event | yaml.Mark) -> str:
    mark = node if isinstance(node, yaml.Mark) else node.start_mark
    return "" if mark.name == UNNAMED else str(mark.name)


def _syntax_problem(error: yaml.YAMLError, file: str = "") -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    text = f"{context}, {problem}" if context else problem
    return Problem(_line(mark) if mark else None, "", f"not valid YAML: {text}", file)


def _event_problems(text: str, file: str = "") -> list[Problem]:
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
            problems.append(Problem(_line(event), "", message, file))
            continue
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            anchors[event.anchor] = _line(event)
        if isinstance(event, yaml.CollectionStartEvent):
            open_anchors.append(event.anchor)
            if len(open_anchors) > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                return [*problems, Problem(_line(event), "", message, file)]
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
            message = f"a number longer than {MAX_DIGITS} digits"
            raise InvalidOrgFile([Problem(_line(node), "", message, _file(node))])
        return value

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as error:
            message = f"{node.value[:40]!r} is not a date that exists ({error})"
            raise InvalidOrgFile([Problem(_line(node), "", message, _file(node))]) from None


Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)


INCLUDE = "!include"


def _index(node: Node, lines: dict[str, int], files: dict[str, str]) -> list[Problem]:
    """Record the file and line of every key and item, and refuse what the constructor would
    hide (merge keys, duplicate keys). Walked without recursion: a template's includes nest
    files inside each other."""
    problems: list[Problem] = []
    stack: list[tuple[Node, str]] = [(node, "")]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, _line(node))
        files.setdefault(path, _file(node))
        if isinstance(node, MappingNode):
            first_seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
                child = f"{path}.{key}" if path else key
                where = _file(key_node)
                if key == "<<":
                    message = "merge keys (<<) are not allowed"
                    problems.append(Problem(_line(key_node), path, message, where))
                    continue
                if key in first_seen:
                    # PyYAML would silently keep the last value; a typo'd copy must not win.
                    message = f"duplicate key (already given on line {first_seen[key]})"
                    problems.append(Problem(_line(key_node), child, message, where))
                    continue
                first_seen[key] = _line(key_node)
                lines[child] = _line(key_node)
                files[child] = where
                stack.append((value_node, child))
        elif isinstance(node, SequenceNode):
            stack += [(item, f"{path}[{n}]") for n, item in enumerate(node.value)]
    return problems


def depth_problem(node: Node) -> Problem | None:
    """Nesting deeper than ``MAX_DEPTH`` once files are included in each other."""
    stack = [(node, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep"
            return Problem(_line(node), "", message, _file(node))
        if isinstance(node, MappingNode):
            stack += [(value, depth + 1) for _, value in node.value]
        elif isinstance(node, SequenceNode):
            stack += [(item, depth + 1) for item in node.value]
    return None


def includes(node: Node) -> list[ScalarNode | Node]:
    """Every node tagged ``!include`` (a scalar naming a file, when it is well formed)."""
    found, stack = [], [node]
    while stack:
        node = stack.pop()
        if node.tag == INCLUDE:
            found.append(node)
        elif isinstance(node, MappingNode):
            stack += [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            stack += node.value
    return found


def compose(text: str, file: str = "") -> Node:
    """One file's YAML as a node graph, every node knowing ``file`` and its line; aliases and
    too-deep nesting refused first. ``InvalidOrgFile`` for what is not data."""
    if len(text.encode()) > MAX_BYTES:
        message = f"the file is larger than {MAX_BYTES} bytes"
        raise InvalidOrgFile([Problem(None, "", message, file)])
    try:
        if problems := _event_problems(text, file):
            raise InvalidOrgFile(problems)
        loader = Loader(text)
        loader.name = file or UNNAMED
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise InvalidOrgFile([_syntax_problem(error, file)]) from None
    if node is None:
        raise InvalidOrgFile([Problem(1, "", "the file is empty", file)])
    return node


def finish(node: Node) -> Parsed:
    """The data of a composed (and included) node graph, with the place of every key."""
    if problem := depth_problem(node):
        raise InvalidOrgFile([problem])
    lines: dict[str, int] = {}
    files: dict[str, str] = {}
    if problems := _index(node, lines, files):
        raise InvalidOrgFile(problems)
    loader = Loader("")
    try:
        return Parsed(loader.construct_document(node), lines, files)
    except yaml.YAMLError as error:
        raise InvalidOrgFile([_syntax_problem(error, _file(node))]) from None
    finally:
        loader.dispose()


def parse(text: str) -> Parsed:
    """A single file's data with the line of every key; ``InvalidOrgFile`` for what is not data.

    ``!include`` needs the directory the file belongs to: a single file refuses it."""
    node = compose(text)
    if found := includes(node):
        message = (
            "!include needs a template directory to read files from: import the directory "
            "(manage.py import_org DIR) or upload it as a .zip or .tar.gz"
        )
        raise InvalidOrgFile([Problem(_line(item), "", message) for item in found])
    return finish(node)
