"""The agents' door with a short middleware chain: Django's handler, minus what pages need.

Every agent calls ``/registry/`` every 30 s, so at 100,000 workspaces this is nearly all of the
console's traffic. None of it has a session, a login, a CSRF cookie, messages, frames, htmx or a
compressible body, and the page middleware costs a heartbeat a third of its Python time (1.5 ms
against 1.1 ms per heartbeat, measured in one process, alternating, on PostgreSQL; the HTTP
figures are in docs/registry-protocol.md, "Performance"). ``molecule.wsgi`` sends ``/registry/``
here and everything else to the full chain.

Everything else is Django's, unchanged: the URLconf (so a 404 is the registry's JSON one), the
request signals (which close an old or broken database connection), the 500 handler and its
log. What the registry keeps of the chain:

- ``SecurityMiddleware``: its headers, and the HTTPS redirect when one is configured;
- ``RefuseNulMiddleware``: a NUL in the address is a JSON 400, as on every other door;
- ``CommonMiddleware``: it validates the Host header against ``ALLOWED_HOSTS``;
- ``DatabaseUnavailableMiddleware``: a lost database is a 503 with Retry-After, which tells an
  agent to come back rather than that its report was wrong.
"""

from __future__ import annotations

from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

REGISTRY_PREFIX = "/registry/"

REGISTRY_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "molecule.middleware.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Innermost, as in settings.MIDDLEWARE: it turns the view's lost connection into a 503.
    "molecule.middleware.DatabaseUnavailableMiddleware",
]


class RegistryHandler(WSGIHandler):
    """Django's WSGI handler whose middleware chain is ``REGISTRY_MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE and offers no other way in; the
        # override lasts while the chain is built, once per process, before any request.
        with override_settings(MIDDLEWARE=REGISTRY_MIDDLEWARE):
            super().load_middleware(is_async)
