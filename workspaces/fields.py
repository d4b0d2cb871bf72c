"""One rule per field, for every door a value comes in by.

The forms, the admin, the JSON API, the commands, org import, team specs and the agents' registry
all ask these functions, so the same value gets the same answer everywhere (and never reaches the
database to fail there). Each returns the end of a sentence saying what is wrong, or None.

Here: what any stored text, JSON value or moment must be (``text_problem``, ``json_problem``,
``moment``), a workspace's own fields, what an agent reports (``REPORT``), and the event log's
filters. The org, token and key fields follow the same pattern in ``orgs/fields.py``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from workspaces import runtimes
from workspaces.paths import workspace_dir_problem
from workspaces.tiers import is_known_tier

# --- text, JSON and moments: what every stored value must be -----------------------------------

# Control characters cannot be shown, typed or stored everywhere (PostgreSQL refuses NUL).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Half of a UTF-16 pair, alone: JSON's "\ud800" decodes to one, and no database or environment
# variable can hold it (it has no UTF-8 form).
SURROGATE = re.compile(r"[\ud800-\udfff]")
SURROGATE_PROBLEM = "must be text (it holds an unpaired surrogate)"
NUL_PROBLEM = "must not contain a NUL character"
# JSON and YAML nesting: a team level is two (the node's mapping and its children list).
MAX_NESTING = 64
# The most workspaces one org import or one team spec creates.
MAX_TEAM = 2000
# Filters (query strings, the event log's form): longer than any column they are compared with.
MAX_FILTER = 500


def unstorable(value: str, *, controls: bool = False) -> str | None:
    """Why text cannot be stored (a NUL, a lone surrogate; with ``controls``, any control
    character), or None. What every rule below asks of a string before anything else."""
    if SURROGATE.search(value):
        return SURROGATE_PROBLEM
    if controls and CONTROL.search(value):
        return "must not contain control characters"
    if "\x00" in value:
        return NUL_PROBLEM
    return None


def text_problem(
    value: object, *, max_length: int, required: bool = False, controls: bool = True
) -> str | None:
    """A string of at most ``max_length`` characters; ``required``: not blank; ``controls``:
    no control characters at all (names, roles, filters) rather than only no NUL."""
    if not isinstance(value, str) or (required and not value.strip()):
        return "is required and must be a non-empty string" if required else "must be a string"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    return unstorable(value, controls=controls)


def json_problem(value: object) -> str | None:
    """A JSON value PostgreSQL's jsonb can hold: no NUL or lone surrogate in any key or string,
    no number that is not finite, at most ``MAX_NESTING`` levels. Walked without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"is nested more than {MAX_NESTING} levels deep"
        if isinstance(item, str):
            if SURROGATE.search(item):
                return "holds a string with an unpaired surrogate"
            if "\x00" in item:
                return "holds a string with a NUL character"
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number that is not finite"
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack += [(key, depth), (inner, depth + 1)]
        elif isinstance(item, list | tuple):
            stack += [(inner, depth + 1) for inner in item]
        elif item is not None and not isinstance(item, bool | int | float):
            return "must be JSON"
    return None


class InvalidJson(ValueError):
    """A body that is not JSON this console takes; the message is the end of a sentence."""


# No field takes a number this long; Python's own limit (4,300 digits) would raise mid-parse.
MAX_DIGITS = 30
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _no_constants(name: str) -> Any:
    raise InvalidJson("NaN, Infinity and -Infinity are not JSON numbers")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson(f"the number {text[:40]} is out of range")
    return value


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise InvalidJson(f"a number has more than {MAX_DIGITS} digits")
    return int(text)


def json_body(body: bytes) -> Any:
    """A request body (the API's, the registry's) as JSON, or ``InvalidJson`` saying why not:
    not UTF-8, nested deeper than ``MAX_NESTING`` (counted before parsing, so nothing recurses),
    NaN or Infinity (Python's json accepts them; JSON has no such numbers), a float that is not
    finite (1e999) or an integer of more than ``MAX_DIGITS`` digits."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("it is not UTF-8") from None
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(depth, deepest)
    if deepest > MAX_NESTING:
        raise InvalidJson(f"it is nested more than {MAX_NESTING} levels deep")
    try:
        return json.loads(
            text, parse_constant=_no_constants, parse_float=_finite_float, parse_int=_short_int
        )
    except InvalidJson:
        raise
    except ValueError as error:
        raise InvalidJson(str(error)) from None


MOMENT_PROBLEM = (
    "must be an ISO 8601 date and time between years 1 and 9999 in UTC, e.g. 2030-01-31T12:00:00Z"
)


def moment(value: object) -> datetime | None:
    """An ISO 8601 date and time, in UTC (naive means UTC); None when ``value`` is not one, or
    is one only another calendar has (month 13, or year 0 or 10000 once in UTC)."""
    if not isinstance(value, str) or unstorable(value):
        return None
    try:
        parsed = parse_datetime(value.strip())
        if parsed is None:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # month 13; 9999-12-31T23:59-01:00 is year 10000 in UTC
        return None


def filter_problem(value: object) -> str | None:
    """A text filter (a query parameter, the event log's actor): compared, never stored, but
    PostgreSQL refuses a NUL even in a comparison."""
    return text_problem(value, max_length=MAX_FILTER)


# --- a workspace's own fields -----------------------------------------------------------------

# The column sizes in workspaces/models.py.
MAX_NAME = 200
MAX_ROLE = 200
MAX_RUNTIME = 64
MAX_WORKSPACE_DIR = 500
RUNTIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")

EDITABLE = ("name", "role", "tier", "runtime", "workspace_dir", "spec")


def name_problem(value: object) -> str | None:
    return text_problem(value, max_length=MAX_NAME, required=True)


def role_problem(value: object) -> str | None:
    return text_problem(value, max_length=MAX_ROLE)


def tier_problem(value: object) -> str | None:
    if is_known_tier(value):
        return None
    # repr() of an int of thousands of digits raises; no tier is that long anyway.
    shown = "(a huge number)" if isinstance(value, int) and abs(value) > 10**30 else repr(value)
    return f"unknown tier {shown[:40]}: use 1, 2, 3 or 4"


def runtime_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_RUNTIME:
        return f"is longer than {MAX_RUNTIME} characters"
    if not RUNTIME.match(value):
        return "must be letters, digits, '.', '_' and '-' (e.g. langgraph)"
    # Only what the runtime catalogue can start (MOLECULE_RUNTIMES_FILE and the built-in names).
    return runtimes.unknown_runtime(value)


def workspace_dir_field_problem(value: object) -> str | None:
    """An optional directory: empty means the backend's default."""
    if value == "":
        return None
    if isinstance(value, str) and (why := text_problem(value, max_length=MAX_WORKSPACE_DIR)):
        return why
    return workspace_dir_problem(value)


def spec_problems(value: object, path: str = "spec") -> list[tuple[str, str]]:
    """A lead's team spec: an object with only ``children`` (teamspec's nodes), at most
    ``MAX_TEAM`` workspaces in all, like one org import."""
    from workspaces import teamspec  # teamspec validates its nodes with this module

    if not isinstance(value, dict) or set(value) - {"children"}:
        return [(path, 'must be an object with only "children"')]
    if why := json_problem(value):
        return [(path, why)]
    return teamspec.children_problems(value.get("children", []), f"{path}.children")


CHECKS = {
    "name": name_problem,
    "role": role_problem,
    "tier": tier_problem,
    "runtime": runtime_problem,
    "workspace_dir": workspace_dir_field_problem,
}


def problems(values: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors for the given values (only the keys present are checked)."""
    errors: dict[str, list[str]] = {}
    for field, value in values.items():
        if field == "spec":
            for where, why in spec_problems(value):
                errors.setdefault(where, []).append(why)
        elif field in CHECKS:
            if why := CHECKS[field](value):
                errors.setdefault(field, []).append(why)
        else:
            errors.setdefault(field, []).append("cannot be set here")
    return errors


# --- what an agent reports (the registry) -----------------------------------------------------

# The columns' sizes: PositiveIntegerField is a 32-bit integer on PostgreSQL. An agent claiming
# more than 68 years of uptime is broken, so such a report is refused (400), not clamped.
MAX_COUNT = 2**31 - 1
MAX_URL = 500
MAX_CURRENT_TASK = 500
MAX_SAMPLE_ERROR = 2000


def number_problem(value: object, *, low: int, high: int, whole: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if whole and value != int(value):
        return "must be a whole number"
    if not low <= value <= high:
        return f"must be between {low} and {high}"
    return None


def report_text_problem(value: object) -> str | None:
    """An agent's free text (its URL, its task, an error sample): longer text is cut to the
    column, control characters such as newlines are fine, NUL and lone surrogates are not."""
    return text_problem(value, max_length=10**9, controls=False)


# Molecule's runtime sends about 300 bytes of metadata and 1 KiB of card; a report that is a
# hundred times that is broken, and is refused (400) like the rest of a broken report: half an
# object cannot be stored, so nothing is cut here (docs/registry-protocol.md).
MAX_RUNTIME_METADATA = 16 * 1024
MAX_AGENT_CARD = 32 * 1024
# The runtime_state column; Molecule's runtime only ever says "wedged".
MAX_RUNTIME_STATE = 20
WEDGED = "wedged"
# Molecule's platform clamps the month's spend (cents) to [0, 10^12], $10 billion: a value
# beyond it is stored as the bound, not refused. 0 means "unchanged".
MAX_MONTHLY_SPEND = 10**12


def report_object_problem(value: object, *, max_bytes: int) -> str | None:
    """A JSON object an agent reports (its card, its runtime metadata), at most ``max_bytes``
    once written as compact JSON."""
    if not isinstance(value, dict):
        return "must be an object"
    if why := json_problem(value):
        return why
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        return f"is {size} bytes as JSON; at most {max_bytes} are taken"
    return None


def runtime_state_problem(value: object) -> str | None:
    """What the agent says of its runtime: "wedged" or "" (healthy). Another word (Molecule's
    runtime sends none) is taken and stored, cut to the column, and means "not wedged": a
    newer runtime's state is no reason to refuse the heartbeat that keeps it alive."""
    return report_text_problem(value)


def monthly_spend_problem(value: object) -> str | None:
    """Whole cents; negatives count as 0 and more than ``MAX_MONTHLY_SPEND`` as that bound."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a whole number of cents"
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        return "must be a whole number of cents"
    return None


def monthly_spend(value: int | float) -> int:
    return min(max(int(value), 0), MAX_MONTHLY_SPEND)


REPORT = {
    "error_rate": lambda v: number_problem(v, low=0, high=1, whole=False),
    "active_tasks": lambda v: number_problem(v, low=0, high=1_000_000, whole=True),
    "uptime_seconds": lambda v: number_problem(v, low=0, high=MAX_COUNT, whole=True),
    "sample_error": report_text_problem,
    "current_task": report_text_problem,
    "url": report_text_problem,
    "agent_card": lambda v: report_object_problem(v, max_bytes=MAX_AGENT_CARD),
    "runtime_state": runtime_state_problem,
    "runtime_metadata": lambda v: report_object_problem(v, max_bytes=MAX_RUNTIME_METADATA),
    "monthly_spend": monthly_spend_problem,
}
