"""Template filters for the event log."""

from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def readable(value: object) -> str:
    """A payload value for people: text as it is, lists and mappings as compact JSON."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)
