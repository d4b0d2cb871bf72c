"""One rule per workspace field, for every door a value comes in by.

The forms, the admin, the JSON API, the commands, org import and team specs all ask these
functions, so the same value gets the same answer everywhere (and never reaches the database
to fail there). Each returns the end of a sentence saying what is wrong, or None.
"""

from __future__ import annotations

import re
from typing import Any

from workspaces.paths import workspace_dir_problem
from workspaces.tiers import is_known_tier

# The column sizes in workspaces/models.py.
MAX_NAME = 200
MAX_ROLE = 200
MAX_RUNTIME = 64
MAX_WORKSPACE_DIR = 500
RUNTIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Control characters cannot be shown, typed or stored everywhere (PostgreSQL refuses NUL).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

EDITABLE = ("name", "role", "tier", "runtime", "workspace_dir", "spec")


def name_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "is required and must be a non-empty string"
    if len(value) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if CONTROL.search(value):
        return "must not contain control characters"
    return None


def role_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_ROLE:
        return f"is longer than {MAX_ROLE} characters"
    if CONTROL.search(value):
        return "must not contain control characters"
    return None


def tier_problem(value: object) -> str | None:
    return None if is_known_tier(value) else f"unknown tier {value!r}: use 1, 2, 3 or 4"


def runtime_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_RUNTIME:
        return f"is longer than {MAX_RUNTIME} characters"
    if not RUNTIME.match(value):
        return "must be letters, digits, '.', '_' and '-' (e.g. langgraph)"
    return None


def workspace_dir_field_problem(value: object) -> str | None:
    """An optional directory: empty means the backend's default."""
    if value == "":
        return None
    if isinstance(value, str) and len(value) > MAX_WORKSPACE_DIR:
        return f"is longer than {MAX_WORKSPACE_DIR} characters"
    if isinstance(value, str) and CONTROL.search(value):
        return "must not contain control characters"
    return workspace_dir_problem(value)


def spec_problems(value: object, path: str = "spec") -> list[tuple[str, str]]:
    """A lead's team spec: an object with only ``children`` (teamspec's nodes)."""
    from workspaces import teamspec  # teamspec validates its nodes with this module

    if not isinstance(value, dict) or set(value) - {"children"}:
        return [(path, 'must be an object with only "children"')]
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
