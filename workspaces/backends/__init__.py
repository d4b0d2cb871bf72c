"""Workspace backends. Import only from ``workspaces.dispatch`` (pinned by import-linter)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from workspaces.backends.base import (
    Backend,
    BackendError,
    Declared,
    Instance,
    InstanceSpec,
    Verdict,
)

__all__ = [
    "Backend",
    "BackendError",
    "Declared",
    "Instance",
    "InstanceSpec",
    "Verdict",
    "capabilities",
    "enabled",
    "get",
    "known",
]


def enabled() -> list[str]:
    return list(settings.MOLECULE_BACKENDS)


def known() -> list[str]:
    """Every backend this code base has, configured here or not (the parity matrix's columns)."""
    return list(settings.MOLECULE_BACKEND_CLASSES)


def capabilities(name: str) -> dict[str, Declared]:
    """What a backend declares, read from its class: no connection to anything is made."""
    return dict(import_string(settings.MOLECULE_BACKEND_CLASSES[name]).capabilities)


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
