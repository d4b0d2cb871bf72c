"""Template filters for the console's pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.conf import settings
from django.utils import timezone

register = template.Library()


@register.filter
def ago(moment: datetime | None) -> str:
    """ "12 s ago", "4 min ago", "3 h ago": heartbeats need seconds, not timesince's minutes."""
    if moment is None:
        return "never"
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@register.filter
def why(payload: object) -> str:
    """The sentence an event's payload gives for itself: its reason, else its error.

    A filter rather than ``reason|default:error`` in the template: a filter *argument* that does
    not resolve raises instead of rendering empty, and most events carry only one of the two.
    """
    if not isinstance(payload, dict):
        return ""
    for key in ("reason", "error"):
        value = payload.get(key)
        if value:
            return str(value)
    return ""


@register.filter
def within_crash_window(moment: datetime | None) -> bool:
    """Whether an exit happened recently enough to count towards the crash-loop limit."""
    if moment is None:
        return False
    window = settings.MOLECULE_CRASH_LOOP_WINDOW
    return (timezone.now() - moment).total_seconds() < window
