"""Workspace backends. Import only from ``workspaces.dispatch`` (pinned by import-linter)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from workspaces.backends.base import Backend, BackendError, Instance, InstanceSpec

__all__ = ["Backend", "BackendError", "Instance", "InstanceSpec", "enabled", "get"]


def enabled() -> list[str]:
    return list(settings.MOLECULE_BACKENDS)


def get(name: str) -> Backend | None:
    """The configured backend called ``name``, or None when this console has no such backend."""
    if name not in settings.MOLECULE_BACKENDS:
        return None
    return _load(settings.MOLECULE_BACKEND_CLASSES[name])


@cache
def _load(dotted_path: str) -> Backend:
    return import_string(dotted_path)()


def reset() -> None:
    """Forget loaded backend objects (after settings change, e.g. in tests)."""
    _load.cache_clear()
