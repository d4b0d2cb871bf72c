"""The walk: every pattern of the URL configuration, the admin's included, as a ``Route``,
and the path of a route with its kwargs filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern

# Where a route's kwargs get their values (``FILL``), for the message when one is wrong.
FILL_HERE = "tests/support/isolation/fill.py"


@dataclass(frozen=True)
class Route:
    """One URL pattern with the prefixes of the resolvers above it."""

    pattern: str  # joined, e.g. "workspaces/<uuid:workspace_id>/"
    name: str | None  # with its namespace, e.g. "admin:orgs_org_change"
    callback: Callable[..., Any]
    pieces: tuple[Any, ...]  # each level's pattern object, outermost first
    app_name: str  # "admin" for every admin site

    @property
    def kwargs(self) -> tuple[str, ...]:
        return tuple(name for piece in self.pieces for name in piece.regex.groupindex)

    @property
    def label(self) -> str:
        return f"{self.pattern} ({self.name})" if self.name else self.pattern

    @property
    def key(self) -> str:
        """What the tables call it: its name, or for an unnamed pattern its last piece."""
        if self.name:
            return self.name.rpartition(":")[2]
        return str(self.pieces[-1])


def walk(
    patterns: Iterable[Any] | None = None,
    pieces: tuple[Any, ...] = (),
    namespace: str = "",
    app_name: str = "",
) -> list[Route]:
    """Every URL pattern reachable from ``patterns`` (the root URL configuration by default)."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    found: list[Route] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or ""
            joined = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            found += walk(
                entry.url_patterns, (*pieces, entry.pattern), joined, entry.app_name or app_name
            )
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            chain = (*pieces, entry.pattern)
            found.append(
                Route(
                    pattern="".join(str(p) for p in chain),
                    name=name,
                    callback=entry.callback,
                    pieces=chain,
                    app_name=app_name,
                )
            )
        else:  # pragma: no cover - Django has only these two
            raise TypeError(f"unknown URL entry {entry!r}")
    return found


_ROUTE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")


def url_for(route: Route, values: dict[str, Any]) -> str:
    """The path of ``route`` with ``values`` in its kwargs; checked to resolve back to it."""
    parts = []
    for piece in route.pieces:
        text = str(piece)
        if isinstance(piece, RoutePattern):
            parts.append(_ROUTE_PARAM.sub(lambda m: str(values[m[1]]), text))
        else:
            parts.append(_REGEX_GROUP.sub(lambda m: str(values[m[1]]), text).strip("^$"))
    path = "/" + "".join(parts)
    match = resolve(path)
    if match.func is not route.callback:
        raise AssertionError(
            f"the isolation suite filled {route.label} as {path}, which resolves to "
            f"{match.route!r} instead: fix FILL in {FILL_HERE}"
        )
    return path
