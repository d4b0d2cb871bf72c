"""The WSGI application gunicorn serves (``manage.py run``).

Two Django handlers, one URLconf: the agents' ``/registry/`` endpoints go through a short
middleware chain (``workspaces.registry_handler`` says what it keeps and what it saves), every
page and the API through the full one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule.settings")
pages = get_wsgi_application()  # sets Django up: importable only after it

from workspaces.registry_handler import REGISTRY_PREFIX, RegistryHandler  # noqa: E402

registry = RegistryHandler()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "").startswith(REGISTRY_PREFIX):
        return registry(environ, start_response)
    return pages(environ, start_response)
