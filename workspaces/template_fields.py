"""One rule per key of a workspace's template settings (``Workspace.template``), for every door.

A Molecule org template (docs/architecture.md §10) gives a workspace more than its own columns:
a model, prompts, plugins, schedules, channels, memories … The import resolves them (prompt
files read, ``${VAR}`` expanded, plugins merged, defaults applied) and keeps the result on the
row; a lead's team spec carries the same resolved keys for the members expand recreates. Org
import and team specs ask these functions, so a value gets the same answer at both doors, and a
length that no column or agent would take is a sentence with its line, never a database error.

Each rule returns ``[(suffix, why)]``: ``suffix`` is "" for the key itself, or the part of the
path below it (``[2].cron_expr``), so a caller can name the exact place. ``raw=True`` is the
template's own spelling (org import), which also takes what the import resolves away: plugin
opt-outs (``!x``/``-x``), a schedule's ``prompt_file``, channel values that are numbers.
"""

from __future__ import annotations

import functools
import json
import math
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

from workspaces import fields, vault

# The longest prompt (system, initial, idle, a schedule's) and memory: Molecule's platform cuts a
# memory at 100,000 bytes; a prompt longer than that would not fit an agent's context anyway.
MAX_PROMPT = 100_000
MAX_MODEL = 200
MAX_DESCRIPTION = 2_000
# Names in lists and maps: a plugin, a schedule, a category and its roles, a channel's config key,
# an allowed user.
MAX_LABEL = 200
MAX_PLUGINS = 100
MAX_SCHEDULES = 100
MAX_CHANNELS = 20
MAX_CHANNEL_VALUE = 2_000
MAX_MEMORIES = 1_000
MAX_ROUTES = 100
MAX_ENV = 100
MAX_CRON = 100
MAX_IDLE_INTERVAL = 30 * 24 * 3600
MAX_CONCURRENT_TASKS = 1_000
MAX_CANVAS = 1e9
# One workspace's settings as compact JSON, and a whole team spec (or one import's settings).
MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_SPEC_BYTES = 16 * 1024 * 1024
MAX_PATH = 500

MEMORY_SCOPES = ("LOCAL", "TEAM", "GLOBAL")
# The channel adapters Molecule's platform has; it skips any other type, we refuse it.
CHANNEL_TYPES = ("discord", "lark", "slack", "telegram")
WORKSPACE_ACCESS = ("none", "read_only", "read_write")
PLUGIN = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9@._:/+-]*\Z")
DEFAULT_IDLE_INTERVAL = 600  # Molecule's: an idle prompt without an interval runs every 10 min

Found = list[tuple[str, str]]


def _one(why: str | None, suffix: str = "") -> Found:
    return [(suffix, why)] if why else []


def _integer(value: object, *, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if not low <= value <= high:
        return f"must be between {low} and {high}"
    return None


def _label(value: object) -> str | None:
    if isinstance(value, str) and not value.strip():
        return "must not be empty"
    return fields.text_problem(value, max_length=MAX_LABEL, required=True)


def _list(value: object, *, most: int, what: str) -> str | None:
    if not isinstance(value, list):
        return f"must be a list of {what}"
    if len(value) > most:
        return f"has {len(value)} {what}; at most {most} are taken"
    return None


def _mapping(value: object, keys: set[str], *, what: str) -> Found:
    if not isinstance(value, dict):
        return [("", f"must be a mapping ({what})")]
    return [(f".{key}", "unknown key") for key in value if key not in keys]


# --- texts ---------------------------------------------------------------------------------------


def prompt_problems(value: object) -> Found:
    """A prompt or a memory: text of at most ``MAX_PROMPT`` characters, newlines welcome."""
    return _one(fields.text_problem(value, max_length=MAX_PROMPT, controls=False))


def model_problems(value: object) -> Found:
    return _one(fields.text_problem(value, max_length=MAX_MODEL))


def description_problems(value: object) -> Found:
    return _one(fields.text_problem(value, max_length=MAX_DESCRIPTION, controls=False))


def relative_path_problem(value: object, *, max_length: int = MAX_PATH) -> str | None:
    """A path inside the template (files_dir, a prompt file, an !include): relative, no ``..``
    that leaves it (checked against the tree where it is read), at most ``max_length``."""
    if isinstance(value, str) and not value.strip():
        return "must not be empty"
    if why := fields.text_problem(value, max_length=max_length, required=True):
        return why
    assert isinstance(value, str)
    if value.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", value):
        return f"{value[:80]!r} is absolute: give a path relative to the template"
    return None


def path_problems(value: object) -> Found:
    return _one(relative_path_problem(value))


def url_problems(value: object) -> Found:
    if why := fields.text_problem(value, max_length=fields.MAX_URL, required=True):
        return _one(why)
    assert isinstance(value, str)
    if not re.match(r"^https?://[^\s/]+", value):
        return [("", f"{value[:80]!r} is not an http:// or https:// URL")]
    return []


# --- numbers and flags ---------------------------------------------------------------------------


def idle_interval_problems(value: object) -> Found:
    return _one(_integer(value, low=0, high=MAX_IDLE_INTERVAL))


def concurrency_problems(value: object) -> Found:
    return _one(_integer(value, low=0, high=MAX_CONCURRENT_TASKS))


def flag_problems(value: object) -> Found:
    return [] if isinstance(value, bool) else [("", "must be true or false")]


def canvas_problems(value: object) -> Found:
    found = _mapping(value, {"x", "y"}, what="x and y, the position on Molecule's canvas")
    if found or not isinstance(value, dict):
        return found
    for axis in ("x", "y"):
        number = value.get(axis, 0)
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
            or abs(number) > MAX_CANVAS
        ):
            found.append((f".{axis}", f"must be a number of at most {MAX_CANVAS:g} either way"))
    return found


def access_problems(value: object) -> Found:
    if value in WORKSPACE_ACCESS:
        return []
    listing = ", ".join(WORKSPACE_ACCESS)
    return [("", f"unknown workspace_access {str(value)[:40]!r}: use {listing}")]


# --- lists and maps ------------------------------------------------------------------------------


def plugins_problems(value: object, *, raw: bool = False) -> Found:
    """Plugin names; ``raw``: a workspace's own list, where ``!x`` or ``-x`` opts out of a
    default (the import merges them away)."""
    if why := _list(value, most=MAX_PLUGINS, what="plugin names"):
        return _one(why)
    found: Found = []
    seen: set[str] = set()
    assert isinstance(value, list)
    for number, name in enumerate(value):
        where = f"[{number}]"
        if why := fields.text_problem(name, max_length=MAX_LABEL, required=True):
            found.append((where, why))
            continue
        bare = name.lstrip("!-") if raw else name
        if not PLUGIN.match(bare):
            found.append(
                (where, f"{name[:80]!r} is not a plugin name (letters, digits, @ . _ : / + -)")
            )
        elif not raw and bare in seen:
            found.append((where, f"{bare!r} is listed twice"))
        seen.add(bare)
    return found


def routing_problems(value: object) -> Found:
    """category_routing: a category -> the roles that handle it (an empty list drops a
    default's category)."""
    if not isinstance(value, dict):
        return [("", "must be a mapping of a category to a list of roles")]
    if len(value) > MAX_ROUTES:
        return [("", f"has {len(value)} categories; at most {MAX_ROUTES} are taken")]
    found: Found = []
    for category, roles in value.items():
        where = f".{category}"
        if why := _label(category):
            found.append((where, f"a category name {why}"))
            continue
        if why := _list(roles, most=MAX_ROUTES, what="roles"):
            found.append((where, why))
            continue
        found += [(f"{where}[{n}]", why) for n, role in enumerate(roles) if (why := _label(role))]
    return found


def memories_problems(value: object) -> Found:
    """initial_memories / global_memories: ``{content, scope}`` items; scope LOCAL (the
    default), TEAM or GLOBAL, in any case."""
    if why := _list(value, most=MAX_MEMORIES, what="memories"):
        return _one(why)
    found: Found = []
    assert isinstance(value, list)
    for number, memory in enumerate(value):
        where = f"[{number}]"
        problems = _mapping(memory, {"content", "scope"}, what="content and scope")
        if problems or not isinstance(memory, dict):
            found += [(where + suffix, why) for suffix, why in problems]
            continue
        content = memory.get("content")
        if content is None:
            found.append((f"{where}.content", "is required: the memory's text"))
        elif isinstance(content, str) and not content.strip():
            found.append((f"{where}.content", "must not be empty"))
        else:
            found += [(f"{where}.content", why) for _, why in prompt_problems(content)]
        scope = memory.get("scope", "LOCAL")
        if not isinstance(scope, str) or scope.upper() not in MEMORY_SCOPES:
            found.append(
                (f"{where}.scope", f"unknown scope {str(scope)[:40]!r}: use local, team or global")
            )
    return found


def _cron_field(text: str, low: int, high: int, names: dict[str, int]) -> bool:
    def number(token: str) -> int | None:
        if token.upper() in names:
            return names[token.upper()]
        return int(token) if token.isdigit() and len(token) <= 2 else None

    for part in text.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or not 0 < int(step) <= high):
            return False
        if span in ("*", "?"):
            continue
        first, dash, last = span.partition("-")
        start, end = number(first), number(last) if dash else number(first)
        if start is None or end is None or not low <= start <= end <= high:
            return False
    return True


MONTHS = {
    month: number
    for number, month in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
DAYS = {day: number for number, day in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
CRON_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (0, 6, DAYS))


def cron_problem(value: object) -> str | None:
    """Five fields (minute hour day-of-month month day-of-week), as Molecule's scheduler reads
    them: numbers, ranges, lists, steps, ``*``/``?``, month and day names."""
    if why := fields.text_problem(value, max_length=MAX_CRON, required=True):
        return why
    assert isinstance(value, str)
    parts = value.split()
    if len(parts) != 5 or not all(
        _cron_field(part, low, high, names)
        for part, (low, high, names) in zip(parts, CRON_FIELDS, strict=True)
    ):
        return (
            f"{value!r} is not a cron expression: five fields, minute hour day month weekday "
            "(e.g. '0 9 * * 1-5')"
        )
    return None


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def timezone_problem(value: object) -> str | None:
    if why := fields.text_problem(value, max_length=64, required=True):
        return why
    if value not in _zones():
        return f"unknown time zone {str(value)[:40]!r} (an IANA name, e.g. Europe/Paris or UTC)"
    return None


SCHEDULE_KEYS = {"name", "cron_expr", "timezone", "prompt", "enabled"}


def schedules_problems(value: object, *, raw: bool = False) -> Found:
    """``{name, cron_expr, timezone?, prompt, enabled?}``; ``raw`` also takes ``prompt_file``
    (the import reads it into ``prompt``) and a missing prompt it will find there."""
    if why := _list(value, most=MAX_SCHEDULES, what="schedules"):
        return _one(why)
    keys = SCHEDULE_KEYS | ({"prompt_file"} if raw else set())
    found: Found = []
    names: set[str] = set()
    assert isinstance(value, list)
    for number, schedule in enumerate(value):
        where = f"[{number}]"
        problems = _mapping(schedule, keys, what="name, cron_expr, timezone, prompt, enabled")
        if problems or not isinstance(schedule, dict):
            found += [(where + suffix, why) for suffix, why in problems]
            continue
        name = schedule.get("name")
        if why := _label(name):
            found.append((f"{where}.name", why))
        elif name in names:
            found.append((f"{where}.name", f"another schedule is already named {name!r}"))
        if isinstance(name, str):
            names.add(name)
        if why := cron_problem(schedule.get("cron_expr")):
            found.append((f"{where}.cron_expr", why))
        if "timezone" in schedule and (why := timezone_problem(schedule["timezone"])):
            found.append((f"{where}.timezone", why))
        if "enabled" in schedule:
            found += [(f"{where}.enabled", why) for _, why in flag_problems(schedule["enabled"])]
        for key, check in (("prompt", prompt_problems), ("prompt_file", path_problems)):
            if key in schedule:
                found += [(f"{where}.{key}", why) for _, why in check(schedule[key])]
        if not raw and not schedule.get("prompt"):
            found.append((f"{where}.prompt", "is required: what the agent is asked on schedule"))
    return found


CHANNEL_KEYS = {"type", "config", "allowed_users", "enabled"}


def _scalar_text(value: object, *, raw: bool) -> bool:
    if isinstance(value, str):
        return True
    return raw and isinstance(value, int | float) and not isinstance(value, bool)


def channels_problems(value: object, *, raw: bool = False) -> Found:
    """``{type, config: {key: text}, allowed_users: [text], enabled?}``, one per type."""
    if why := _list(value, most=MAX_CHANNELS, what="channels"):
        return _one(why)
    found: Found = []
    types: set[str] = set()
    assert isinstance(value, list)
    for number, channel in enumerate(value):
        where = f"[{number}]"
        problems = _mapping(channel, CHANNEL_KEYS, what="type, config, allowed_users, enabled")
        if problems or not isinstance(channel, dict):
            found += [(where + suffix, why) for suffix, why in problems]
            continue
        kind = channel.get("type")
        if kind not in CHANNEL_TYPES:
            found.append(
                (
                    f"{where}.type",
                    f"unknown channel type {str(kind)[:40]!r}: use {', '.join(CHANNEL_TYPES)}",
                )
            )
        elif kind in types:
            found.append((f"{where}.type", f"a {kind} channel is already given; one per type"))
        if isinstance(kind, str):
            types.add(kind)
        config = channel.get("config", {})
        if not isinstance(config, dict):
            found.append((f"{where}.config", "must be a mapping of setting names to values"))
        else:
            for key, text in config.items():
                at = f"{where}.config.{key}"
                if why := _label(key):
                    found.append((at, f"a setting name {why}"))
                elif not _scalar_text(text, raw=raw):
                    found.append((at, "must be text"))
                elif why := fields.text_problem(str(text), max_length=MAX_CHANNEL_VALUE):
                    found.append((at, why))
        users = channel.get("allowed_users", [])
        if why := _list(users, most=MAX_MEMORIES, what="users"):
            found.append((f"{where}.allowed_users", why))
        else:
            for n, user in enumerate(users):
                if not _scalar_text(user, raw=raw):
                    found.append((f"{where}.allowed_users[{n}]", "must be text"))
                elif why := _label(str(user)):
                    found.append((f"{where}.allowed_users[{n}]", why))
        if "enabled" in channel:
            found += [(f"{where}.enabled", why) for _, why in flag_problems(channel["enabled"])]
    return found


def env_problems(value: object) -> Found:
    """required_env / recommended_env: names, or ``{any_of: [names]}`` groups (any one will
    do). The values become the agents' secrets, so the names follow the secrets' rule."""
    if why := _list(value, most=MAX_ENV, what="variables"):
        return _one(why)
    found: Found = []
    assert isinstance(value, list)
    for number, entry in enumerate(value):
        where = f"[{number}]"
        if isinstance(entry, dict):
            if set(entry) != {"any_of"}:
                found.append((where, "must be a name or {any_of: [NAME, ...]}"))
                continue
            members = entry["any_of"]
            if not isinstance(members, list) or not members:
                found.append((f"{where}.any_of", "must list at least one variable"))
                continue
            for n, name in enumerate(members):
                if why := env_name_problem(name):
                    found.append((f"{where}.any_of[{n}]", why))
        elif why := env_name_problem(entry):
            found.append((where, why))
    return found


def env_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\Z", name):
        return f"{str(name)[:80]!r} is not an environment variable name"
    if why := vault.key_problem(name):
        return f"cannot name a secret: {why}"
    return None


def expanded_problems(value: object) -> Found:
    """from_env: which channel values came from ``${VAR}`` (the page masks them)."""
    if why := _list(value, most=MAX_CHANNELS * MAX_ROUTES, what="paths"):
        return _one(why)
    assert isinstance(value, list)
    return [(f"[{n}]", why) for n, path in enumerate(value) if (why := _label(path))]


# The resolved keys, as Workspace.template and a team spec's nodes hold them.
TEMPLATE: dict[str, Callable[[Any], Found]] = {
    "description": description_problems,
    "model": model_problems,
    "system_prompt": prompt_problems,
    "initial_prompt": prompt_problems,
    "idle_prompt": prompt_problems,
    "idle_interval_seconds": idle_interval_problems,
    "plugins": plugins_problems,
    "category_routing": routing_problems,
    "initial_memories": memories_problems,
    "global_memories": memories_problems,
    "schedules": schedules_problems,
    "channels": channels_problems,
    "max_concurrent_tasks": concurrency_problems,
    "canvas": canvas_problems,
    "external": flag_problems,
    "url": url_problems,
    "workspace_access": access_problems,
    "template": path_problems,
    "files_dir": path_problems,
    "required_env": env_problems,
    "recommended_env": env_problems,
    "from_env": expanded_problems,
}


def cross_problems(node: dict[str, Any]) -> Found:
    """Rules between keys: workspace_access and workspace_dir, external and url. Suffixes are
    the key's name (``.url``)."""
    found: Found = []
    access = node.get("workspace_access", "none")
    if access in ("read_only", "read_write") and not node.get("workspace_dir"):
        found.append((".workspace_access", f"{access} needs a workspace_dir to give access to"))
    if node.get("external") is True and not node.get("url"):
        found.append((".external", "an external workspace needs the url its agent answers at"))
    if node.get("url") and node.get("external") is not True:
        found.append((".url", "only an external workspace (external: true) has a url"))
    return found


def size_problem(value: object, *, most: int, what: str) -> str | None:
    """JSON of ``value`` larger than ``most`` bytes."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > most:
        return f"{what} are {size} bytes as JSON; at most {most} are taken"
    return None


def template_problems(node: dict[str, Any], path: str) -> Found:
    """Every template key of ``node`` (resolved form) by the rules above, with full paths."""
    found = [
        (f"{path}.{key}{suffix}", why)
        for key, check in TEMPLATE.items()
        if key in node
        for suffix, why in check(node[key])
    ]
    found += [(f"{path}{suffix}", why) for suffix, why in cross_problems(node)]
    if not found:
        settings = {key: node[key] for key in TEMPLATE if key in node}
        if why := size_problem(settings, most=MAX_TEMPLATE_BYTES, what="its template settings"):
            found.append((path, why))
    return found
