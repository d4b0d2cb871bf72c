"""Molecule's org template keys, resolved the way Molecule's platform resolves them.

The importer (orgs/importer.py) hands over the parsed file; this module turns every workspace
entry into a :class:`Member`: its own columns (name, role, tier, runtime, workspace_dir), its
template settings as ``Workspace.template`` keeps them, the files of its ``files_dir`` and the
secrets its ``.env`` files give. Every problem names its file and line, and nothing is written.

Molecule's rules, followed here (docs/architecture.md §10):

- **Defaults** (``defaults:``): runtime, tier, model, plugins, the initial and idle prompts
  (inline or ``*_file``), idle_interval_seconds, category_routing, initial_memories. A workspace
  takes each unless it sets its own; ``tier: 0`` or none means the default tier, then 2; no model
  means the runtime's own (``sonnet`` for claude-code, else ``anthropic:claude-opus-4-7``,
  applied when the agent starts).
- **Prompts**: inline wins over the file, the workspace's over the defaults'. A workspace's
  prompt files (and its schedules') are relative to its ``files_dir`` (the template root without
  one); the defaults' to the template root. Initial and idle prompts are trimmed as Molecule
  writes them into config.yaml; an idle prompt without an interval runs every 600 s.
- **Plugins**: the defaults' first, then the workspace's; ``!x`` or ``-x`` drops ``x``.
- **category_routing**: a workspace's category replaces the default's; an empty list drops it.
- **initial_memories**: the workspace's list, or the defaults' when it has none; scopes in upper
  case (LOCAL when absent). **global_memories** go to the first top-level workspace, scope GLOBAL.
- **``.env``**: the template root's, then the files_dir's (which wins per name). Both feed
  ``${VAR}`` (and ``$VAR``) in ``workspace_dir`` and in channel settings, before the import's own
  environment; a variable set nowhere is a problem. Every name in them becomes a secret of the
  workspace (not of an external one), so each must be a name a secret can have. A files_dir's
  own ``.env`` is never copied among its files.
- **Paths** stay inside the template root: files_dir, prompt files, includes. The files are
  capped (``orgs/tree.py``: 256 KiB a file, 2 MiB a workspace, 50 MiB an import).

Where Molecule and this console differ, on purpose: a key in neither schema is an error (Molecule
ignores it) with the closest known key suggested; a prompt file that cannot be read, a schedule
without a prompt or with a bad cron expression or time zone, a channel of an unknown type or
with a variable that is not set are errors (Molecule skips them with a log line).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orgs.orgfile import Parsed, Problem
from orgs.tree import (
    MAX_FILE,
    MAX_FILE_PATH,
    MAX_IMPORT_BYTES,
    MAX_WORKSPACE_BYTES,
    OUTSIDE,
    Tree,
    TreeError,
    join,
)
from workspaces import fields, vault
from workspaces import template_fields as tf

DEFAULT_KEYS = {
    "tier",
    "runtime",
    "model",
    "plugins",
    "initial_prompt",
    "initial_prompt_file",
    "idle_prompt",
    "idle_prompt_file",
    "idle_interval_seconds",
    "category_routing",
    "initial_memories",
}
WORKSPACE_KEYS = {
    "name",
    "role",
    "tier",
    "runtime",
    "workspace_dir",
    "children",
    "parent",
    "description",
    "model",
    "system_prompt",
    "initial_prompt",
    "initial_prompt_file",
    "idle_prompt",
    "idle_prompt_file",
    "idle_interval_seconds",
    "plugins",
    "category_routing",
    "initial_memories",
    "schedules",
    "channels",
    "max_concurrent_tasks",
    "canvas",
    "external",
    "url",
    "workspace_access",
    "template",
    "files_dir",
    "required_env",
    "recommended_env",
}
# Keys that are right somewhere else: said so instead of "unknown key".
ELSEWHERE = {
    "global_memories": "belongs at the top of org.yaml (Molecule seeds it on the first workspace)",
    "slug": "belongs at the top of org.yaml",
    "backend": "belongs at the top of org.yaml",
    "workspaces": "a workspace's own team goes under children",
}
ENV_FILE = ".env"
# Files an agent's configs directory has from the console, never from a template.
RESERVED_FILES = {".auth_token"}
MAX_ENV_FILE = 64 * 1024
DEFAULT_TIER = 2
DEFAULT_RUNTIME = "langgraph"
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
NEEDS_DIRECTORY = (
    "needs a template directory to read files from: import the directory "
    "(manage.py import_org DIR) or upload it as a .zip or .tar.gz"
)


def unknown_key(key: object, known: set[str]) -> str:
    """ "unknown key", with where it belongs or the known key it is most likely a typo of."""
    if key in ELSEWHERE:
        return f"unknown key here: {ELSEWHERE[str(key)]}"
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.75)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


@dataclass
class Member:
    """One workspace to create, resolved."""

    path: str
    name: str
    role: str
    tier: int
    runtime: str
    workspace_dir: str
    template: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    parent: str | None = None
    children: list[Member] = field(default_factory=list)
    # Where the tier was set: the entry's own key, or defaults.tier ("" for the built-in 2).
    tier_from: str = ""

    def creation_fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "tier": self.tier,
            "runtime": self.runtime,
            "workspace_dir": self.workspace_dir,
        }

    def spec_node(self, ids: Mapping[str, str] | None = None) -> dict[str, Any]:
        """This member as a node of its lead's team spec (workspaces/teamspec.py): columns,
        template settings, ``files_from`` (the workspace created from it, once ``ids`` maps
        its path to that id) and its own children."""
        node: dict[str, Any] = {"name": self.name, "tier": self.tier, "runtime": self.runtime}
        if self.role:
            node["role"] = self.role
        if self.workspace_dir:
            node["workspace_dir"] = self.workspace_dir
        node |= self.template
        if self.files and ids and self.path in ids:
            node["files_from"] = ids[self.path]
        if self.children:
            node["children"] = [child.spec_node(ids) for child in self.children]
        return node

    def walk(self) -> Iterator[Member]:
        stack = [self]
        while stack:
            member = stack.pop()
            yield member
            stack += reversed(member.children)


@dataclass
class Requirement:
    """One required_env / recommended_env entry: a name, or any one of a group."""

    path: str
    names: tuple[str, ...]
    group: bool


@dataclass
class Resolved:
    members: list[Member]
    required: list[Requirement]
    recommended: list[Requirement]
    files: int = 0
    file_bytes: int = 0


def merge_plugins(defaults: list[str], own: list[str]) -> list[str]:
    """The defaults' plugins, then the workspace's; ``!x``/``-x`` drops ``x`` (Molecule's
    single pass: a later plain ``x`` adds it back)."""
    merged: list[str] = []
    for name in defaults:
        if name and name not in merged:
            merged.append(name)
    for name in own:
        if name.startswith(("!", "-")):
            target = name.lstrip("!-")
            if target in merged:
                merged.remove(target)
        elif name and name not in merged:
            merged.append(name)
    return merged


def merge_routing(
    defaults: dict[str, list[str]], own: dict[str, list[str]]
) -> dict[str, list[str]]:
    merged = {key: list(roles) for key, roles in defaults.items() if key and roles}
    for key, roles in own.items():
        if not roles:
            merged.pop(key, None)
        else:
            merged[key] = list(roles)
    return dict(sorted(merged.items()))


def trimmed(prompt: str) -> str:
    """A prompt as Molecule writes it into config.yaml: lines right-trimmed, the whole trimmed."""
    return "\n".join(line.rstrip(" \t") for line in prompt.strip().split("\n"))


def memories(items: list[dict[str, Any]], *, scope: str | None = None) -> list[dict[str, str]]:
    return [
        {"content": item["content"], "scope": scope or str(item.get("scope", "LOCAL")).upper()}
        for item in items
    ]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Resolver:
    """Resolves a parsed template; ``problems`` collects everything wrong, by file and line."""

    def __init__(self, parsed: Parsed, tree: Tree | None, env: Mapping[str, str]) -> None:
        self.parsed = parsed
        self.tree = tree
        self.env = env
        self.problems: list[Problem] = []
        self.defaults: dict[str, Any] = {}
        self.root_env: dict[str, str] = {}
        self.required: list[Requirement] = []
        self.recommended: list[Requirement] = []
        self.files = 0
        self.file_bytes = 0

    # --- where problems go -----------------------------------------------------------------

    def at(self, path: str, message: str) -> None:
        self.problems.append(self.parsed.problem(path, message))

    def each(self, path: str, found: tf.Found) -> bool:
        """Record a rule's findings under ``path``; True when there were none."""
        for suffix, why in found:
            self.at(f"{path}{suffix}", why)
        return not found

    # --- files ------------------------------------------------------------------------------

    def _needs_tree(self, path: str) -> Tree | None:
        if self.tree is None:
            self.at(path, NEEDS_DIRECTORY)
        return self.tree

    def read_text(self, path: str, base: str, name: object, *, limit: int) -> str | None:
        """The text of the file ``name`` (relative to ``base``), named at ``path``."""
        if not self.each(path, tf.path_problems(name)) or self._needs_tree(path) is None:
            return None
        assert self.tree is not None and isinstance(name, str)
        try:
            target = join(base, name)
            data = self.tree.read(target, limit=limit)
        except TreeError as error:
            self.at(path, str(error))
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.at(path, f"{target} is not UTF-8 text")
            return None

    def prompt_file(self, path: str, base: str, name: object) -> str | None:
        text = self.read_text(path, base, name, limit=tf.MAX_PROMPT * 4)
        if text is None:
            return None
        found = tf.prompt_problems(text)
        if found:
            target = join(base, str(name))
            self.at(path, f"{target} {found[0][1]}")
            return None
        return text

    def env_file(self, folder: str) -> dict[str, str]:
        """A ``.env`` in ``folder`` (none is fine), read as Molecule reads it: NAME=value lines,
        ``#`` comments, one pair of quotes stripped, empty values dropped. Every name must be a
        secret's; a line that is not NAME=value is a problem (Molecule skips it)."""
        if self.tree is None:
            return {}
        name = join(folder, ENV_FILE)
        if self.tree.kind(name) is None:
            return {}
        try:
            text = self.tree.read(name, limit=MAX_ENV_FILE).decode("utf-8")
        except TreeError as error:
            self.problems.append(Problem(None, "", str(error), name))
            return {}
        except UnicodeDecodeError:
            self.problems.append(Problem(None, "", "is not UTF-8 text", name))
            return {}
        values: dict[str, str] = {}
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not sep:
                self.problems.append(Problem(number, "", "is not NAME=value", name))
                continue
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if why := tf.env_name_problem(key):
                self.problems.append(Problem(number, "", why, name))
            elif value and (why := vault.value_problem(value)):
                self.problems.append(Problem(number, "", f"the value of {key} {why}", name))
            elif value:
                values[key] = value
        if len(values) > tf.MAX_ENV:
            message = f"has {len(values)} variables; at most {tf.MAX_ENV} are taken"
            self.problems.append(Problem(None, "", message, name))
        return values

    def files_of(self, path: str, folder: str) -> dict[str, bytes]:
        """The regular files under ``folder`` (a files_dir) but its ``.env``, capped."""
        assert self.tree is not None
        try:
            listing = self.tree.files_under(folder)
        except TreeError as error:
            self.at(path, str(error))
            return {}
        found: dict[str, bytes] = {}
        total = 0
        for relative, inner in listing.files.items():
            if relative == ENV_FILE:
                continue
            if relative in RESERVED_FILES:
                self.at(path, f"{inner}: {relative} is the console's to write, not a template's")
                continue
            if why := fields.text_problem(relative, max_length=MAX_FILE_PATH):
                self.at(path, f"{inner[:120]!r}: the file's path {why}")
                continue
            try:
                data = self.tree.read(inner, limit=MAX_FILE)
            except TreeError as error:
                self.at(path, str(error))
                continue
            total += len(data)
            found[relative] = data
        if total > MAX_WORKSPACE_BYTES:
            self.at(
                path,
                f"{folder or '.'} holds {total} bytes of files; a workspace takes at most "
                f"{MAX_WORKSPACE_BYTES}",
            )
            return {}
        self.file_bytes += total
        self.files += len(found)
        if self.file_bytes > MAX_IMPORT_BYTES:
            self.at(
                path,
                f"with these files the import copies {self.file_bytes} bytes; one import "
                f"copies at most {MAX_IMPORT_BYTES}",
            )
        return found

    # --- ${VAR} -----------------------------------------------------------------------------

    def expand(
        self, path: str, text: str, variables: Mapping[str, str], sources: list[str] | None
    ) -> tuple[str, bool, bool]:
        """``text`` with ``${VAR}``/``$VAR`` expanded from the template's .env files, then the
        import's environment: (text, whether anything was expanded, whether every variable was
        set). A variable set nowhere is a problem at ``path``, unless ``sources`` is None (a
        files_dir that was refused: its .env could not be read)."""
        missing: list[str] = []

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            found = variables.get(name) or self.env.get(name)
            if not found:
                missing.append(name)
                return match.group(0)
            return found

        expanded = VAR.sub(value, text)
        for name in dict.fromkeys(missing if sources is not None else []):
            places = " or ".join(sources) if sources else "the template's .env"
            self.at(
                path,
                f"${{{name}}} is not set: give it in {places}, or with the import "
                f"(import_org --env {name}=… or its environment; the page's environment box)",
            )
        return expanded, expanded != text, not missing

    # --- defaults ---------------------------------------------------------------------------

    def resolve_defaults(self, raw: object) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.at("defaults", "must be a mapping, e.g. {runtime: langgraph, tier: 2}")
            return
        for key in raw:
            if key not in DEFAULT_KEYS:
                self.at(f"defaults.{key}", unknown_key(key, DEFAULT_KEYS))
        defaults: dict[str, Any] = {}
        tier = raw.get("tier", 0)
        if tier != 0 or isinstance(tier, bool):
            if why := fields.tier_problem(tier):
                self.at("defaults.tier", why)
            else:
                defaults["tier"] = tier
        if "runtime" in raw:
            if why := fields.runtime_problem(raw["runtime"]):
                self.at("defaults.runtime", why)
            else:
                defaults["runtime"] = raw["runtime"]
        checks = {
            "model": tf.model_problems,
            "plugins": tf.plugins_problems,
            "initial_prompt": tf.prompt_problems,
            "idle_prompt": tf.prompt_problems,
            "idle_interval_seconds": tf.idle_interval_problems,
            "category_routing": tf.routing_problems,
            "initial_memories": tf.memories_problems,
        }
        for key, check in checks.items():
            if key in raw and self.each(f"defaults.{key}", check(raw[key])):
                defaults[key] = raw[key]
        for prompt in ("initial_prompt", "idle_prompt"):
            key = f"{prompt}_file"
            if key in raw and not defaults.get(prompt):
                text = self.prompt_file(f"defaults.{key}", "", raw[key])
                if text:
                    defaults[prompt] = text
        self.defaults = defaults

    # --- workspaces -------------------------------------------------------------------------

    def resolve_tree(self, nodes: object, path: str, *, top: bool) -> list[Member]:
        if not isinstance(nodes, list):
            self.at(path, "must be a list of workspaces")
            return []
        members = []
        for index, node in enumerate(nodes):
            member = self.resolve_node(node, f"{path}[{index}]", top=top)
            if member is not None:
                members.append(member)
        return members

    def resolve_node(self, node: object, path: str, *, top: bool) -> Member | None:
        if not isinstance(node, dict):
            self.at(path, "must be a mapping with at least a name")
            return None
        for key in node:
            if key not in WORKSPACE_KEYS:
                self.at(f"{path}.{key}", unknown_key(key, WORKSPACE_KEYS))
        d = self.defaults
        columns: dict[str, Any] = {}
        for key in ("name", "role"):
            value = node.get(key, "" if key == "role" else None)
            if why := fields.CHECKS[key](value):
                self.at(f"{path}.{key}", why)
            columns[key] = value
        tier, tier_from = node.get("tier", 0), f"{path}.tier"
        if tier == 0 and not isinstance(tier, bool):
            tier = d.get("tier", DEFAULT_TIER)
            tier_from = "defaults.tier" if "tier" in d else ""
        elif why := fields.tier_problem(tier):
            self.at(f"{path}.tier", why)
        runtime = node.get("runtime", d.get("runtime", DEFAULT_RUNTIME))
        if "runtime" in node and (why := fields.runtime_problem(runtime)):
            self.at(f"{path}.runtime", why)

        # files_dir first: the prompts, the schedules and the .env are found there. A files_dir
        # that is refused leaves nothing to read them from: only its own problem is reported.
        folder = self.files_dir(node, path)
        base = "" if "files_dir" not in node else folder
        sources = [ENV_FILE] if self.tree is not None else []
        variables = dict(self.root_env)
        if folder:  # the root's .env is read already
            variables |= self.env_file(folder)
            sources.append(f"{folder}/{ENV_FILE}")
        quiet = base is None  # its .env could not be read: a missing variable is no news

        workspace_dir = node.get("workspace_dir", "")
        if "workspace_dir" in node:
            expanded = True
            if isinstance(workspace_dir, str) and workspace_dir:
                workspace_dir, _, expanded = self.expand(
                    f"{path}.workspace_dir", workspace_dir, variables, None if quiet else sources
                )
            if expanded and (why := fields.CHECKS["workspace_dir"](workspace_dir)):
                self.at(f"{path}.workspace_dir", why)

        template = self.resolve_template(node, path, base, variables, None if quiet else sources)
        self.each(path, tf.cross_problems({**template, "workspace_dir": workspace_dir}))

        parent = node.get("parent")
        if "parent" in node:
            if not top:
                self.at(
                    f"{path}.parent",
                    "only a top-level workspace takes parent: a child's parent is the "
                    "workspace it is listed under",
                )
            elif why := fields.name_problem(parent):
                self.at(f"{path}.parent", why)

        for kind, out in (("required_env", self.required), ("recommended_env", self.recommended)):
            if kind in node:
                self.requirements(f"{path}.{kind}", node[kind], out)

        files = self.files_of(f"{path}.files_dir", folder) if folder is not None else {}
        secrets = {} if template.get("external") else variables

        children = self.resolve_tree(node.get("children", []), f"{path}.children", top=False)
        return Member(
            path=path,
            name=columns["name"].strip() if isinstance(columns["name"], str) else "",
            role=columns["role"] if isinstance(columns["role"], str) else "",
            tier=tier,
            runtime=runtime,
            workspace_dir=workspace_dir if isinstance(workspace_dir, str) else "",
            template=template,
            files=files,
            secrets=secrets,
            parent=parent if top and isinstance(parent, str) else None,
            children=children,
            tier_from=tier_from,
        )

    def files_dir(self, node: dict[str, Any], path: str) -> str | None:
        """The workspace's files_dir from the root ("" is the root itself), or None."""
        if "files_dir" not in node:
            return None
        where = f"{path}.files_dir"
        if not self.each(where, tf.path_problems(node["files_dir"])) or not self._needs_tree(where):
            return None
        assert self.tree is not None
        try:
            folder = join("", node["files_dir"])
        except TreeError as error:
            self.at(where, str(error))
            return None
        kind = self.tree.kind(folder)
        if kind == OUTSIDE:
            self.at(where, f"{folder} is a symlink that leads out of the template directory")
            return None
        if kind != "dir":
            self.at(where, f"{folder} is not a folder of the template")
            return None
        return folder

    def resolve_template(
        self,
        node: dict[str, Any],
        path: str,
        folder: str | None,
        variables: Mapping[str, str],
        sources: list[str] | None,
    ) -> dict[str, Any]:
        d = self.defaults
        out: dict[str, Any] = {}
        plain = {
            "description": tf.description_problems,
            "model": tf.model_problems,
            "system_prompt": tf.prompt_problems,
            "max_concurrent_tasks": tf.concurrency_problems,
            "canvas": tf.canvas_problems,
            "external": tf.flag_problems,
            "url": tf.url_problems,
            "workspace_access": tf.access_problems,
            "template": tf.path_problems,
        }
        checked = {
            key: node[key]
            for key, check in plain.items()
            if key in node and self.each(f"{path}.{key}", check(node[key]))
        }
        if checked.get("description"):
            out["description"] = checked["description"]
        if model := checked.get("model") or d.get("model"):
            out["model"] = model
        if checked.get("system_prompt"):
            out["system_prompt"] = checked["system_prompt"]

        for prompt in ("initial_prompt", "idle_prompt"):
            text = ""
            if prompt in node and self.each(f"{path}.{prompt}", tf.prompt_problems(node[prompt])):
                text = node[prompt]
            key = f"{prompt}_file"
            if not text and key in node and folder is not None:
                text = self.prompt_file(f"{path}.{key}", folder, node[key]) or ""
            text = trimmed(text or d.get(prompt, ""))
            if text:
                out[prompt] = text
        interval = node.get("idle_interval_seconds", 0)
        if "idle_interval_seconds" in node and not self.each(
            f"{path}.idle_interval_seconds", tf.idle_interval_problems(interval)
        ):
            interval = 0
        if out.get("idle_prompt"):
            out["idle_interval_seconds"] = (
                interval or d.get("idle_interval_seconds") or tf.DEFAULT_IDLE_INTERVAL
            )

        own_plugins: list[str] = []
        if "plugins" in node and self.each(
            f"{path}.plugins", tf.plugins_problems(node["plugins"], raw=True)
        ):
            own_plugins = node["plugins"]
        if plugins := merge_plugins(d.get("plugins", []), own_plugins):
            out["plugins"] = plugins

        own_routing: dict[str, list[str]] = {}
        if "category_routing" in node and self.each(
            f"{path}.category_routing", tf.routing_problems(node["category_routing"])
        ):
            own_routing = node["category_routing"]
        if routing := merge_routing(d.get("category_routing", {}), own_routing):
            out["category_routing"] = routing

        own_memories: list[dict[str, Any]] = []
        if "initial_memories" in node and self.each(
            f"{path}.initial_memories", tf.memories_problems(node["initial_memories"])
        ):
            own_memories = node["initial_memories"]
        if seeded := memories(own_memories or d.get("initial_memories", [])):
            out["initial_memories"] = seeded

        if "schedules" in node:
            schedules = self.schedules(f"{path}.schedules", node["schedules"], folder)
            if schedules:
                out["schedules"] = schedules
        if "channels" in node:
            channels, expanded = self.channels(
                f"{path}.channels", node["channels"], variables, sources
            )
            if channels:
                out["channels"] = channels
            if expanded:
                out["from_env"] = expanded

        concurrency = checked.get("max_concurrent_tasks", 0)
        if concurrency:
            out["max_concurrent_tasks"] = concurrency
        for key in ("canvas", "external", "url", "workspace_access", "template"):
            if key in checked:
                out[key] = checked[key]
        if "files_dir" in node and isinstance(node["files_dir"], str):
            out["files_dir"] = node["files_dir"]
        for key in ("required_env", "recommended_env"):
            if key in node:
                out[key] = node[key]
        return out

    def schedules(self, path: str, raw: object, folder: str | None) -> list[dict[str, Any]]:
        if not self.each(path, tf.schedules_problems(raw, raw=True)):
            return []
        assert isinstance(raw, list)
        resolved = []
        for number, schedule in enumerate(raw):
            where = f"{path}[{number}]"
            prompt = schedule.get("prompt") or ""
            if not prompt and "prompt_file" in schedule:
                if folder is None:
                    continue
                prompt = self.prompt_file(f"{where}.prompt_file", folder, schedule["prompt_file"])
                if prompt is None:
                    continue
            if not prompt.strip():
                self.at(where, "has no prompt: give prompt or prompt_file (what the agent asks)")
                continue
            resolved.append(
                {
                    "name": schedule["name"],
                    "cron_expr": schedule["cron_expr"],
                    "timezone": schedule.get("timezone", "UTC"),
                    "prompt": prompt,
                    "enabled": schedule.get("enabled", True),
                }
            )
        return resolved

    def channels(
        self, path: str, raw: object, variables: Mapping[str, str], sources: list[str] | None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        if not self.each(path, tf.channels_problems(raw, raw=True)):
            return [], []
        assert isinstance(raw, list)
        resolved, expanded = [], []
        for number, channel in enumerate(raw):
            config = {}
            for key, value in (channel.get("config") or {}).items():
                where = f"{path}[{number}].config.{key}"
                text, changed, complete = self.expand(where, _text(value), variables, sources)
                if changed:
                    expanded.append(f"channels[{number}].config.{key}")
                if complete and (why := fields.text_problem(text, max_length=tf.MAX_CHANNEL_VALUE)):
                    self.at(where, f"once expanded {why}")
                config[key] = text
            resolved.append(
                {
                    "type": channel["type"],
                    "config": config,
                    "allowed_users": [_text(user) for user in channel.get("allowed_users", [])],
                    "enabled": channel.get("enabled", True),
                }
            )
        return resolved, expanded

    def requirements(self, path: str, raw: object, out: list[Requirement]) -> None:
        if not self.each(path, tf.env_problems(raw)):
            return
        assert isinstance(raw, list)
        for number, entry in enumerate(raw):
            if isinstance(entry, dict):
                out.append(Requirement(f"{path}[{number}]", tuple(entry["any_of"]), True))
            else:
                out.append(Requirement(f"{path}[{number}]", (entry,), False))


def resolve(
    data: dict[str, Any], parsed: Parsed, *, tree: Tree | None, env: Mapping[str, str]
) -> tuple[Resolved, list[Problem]]:
    """Every workspace of ``data`` resolved; the problems found, by file and line."""
    resolver = Resolver(parsed, tree, env)
    resolver.root_env = resolver.env_file("")
    resolver.resolve_defaults(data.get("defaults"))
    for kind, out in (
        ("required_env", resolver.required),
        ("recommended_env", resolver.recommended),
    ):
        if kind in data:
            resolver.requirements(kind, data[kind], out)
    members = resolver.resolve_tree(data.get("workspaces"), "workspaces", top=True)
    if "global_memories" in data and resolver.each(
        "global_memories", tf.memories_problems(data["global_memories"])
    ):
        seeded = memories(data["global_memories"], scope="GLOBAL")
        if seeded and members:
            members[0].template["global_memories"] = seeded
    resolved = Resolved(
        members, resolver.required, resolver.recommended, resolver.files, resolver.file_bytes
    )
    return resolved, resolver.problems
