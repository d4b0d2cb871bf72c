"""Middleware of the console's own: requests no page, filter or lookup can take, refused before
any view runs; the admin's Content-Security-Policy.

A NUL character cannot be stored in or even compared with a PostgreSQL text column: a URL path
or a query parameter holding one would fail in the database (a 500) wherever it reached a query,
and the admin's searches and filters, every page's filters and the API's query parameters all
reach one. This refuses it where the address carries it: 400, with a sentence (JSON under
``/api/`` and ``/registry/``). Bodies are the fields' business: their rules
(``workspaces/fields.py``, ``orgs/fields.py``, Django's form fields) refuse a NUL with the
field's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from api.errors import speaks_json
from workspaces.fields import NUL_PROBLEM

log = logging.getLogger("molecule.errors")


def _nul_parameter(request: HttpRequest) -> str | None:
    """The first query parameter whose name or value holds a NUL, or None."""
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "")[:40]
    return None


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return self._refuse(request, "The address holds a NUL character, which no URL takes.")
        if (name := _nul_parameter(request)) is not None:
            message = f"The query parameter {name!r} holds a NUL character, which no filter takes."
            # The API's own shape for a bad query: which parameter, and why.
            return self._refuse(request, message, fields={name: [NUL_PROBLEM]})
        return self.get_response(request)

    def _refuse(
        self, request: HttpRequest, message: str, fields: dict[str, list[str]] | None = None
    ) -> HttpResponse:
        if speaks_json(request):
            body = {"error": "Invalid query.", "fields": fields} if fields else {"error": message}
            return JsonResponse(body, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


class AdminContentSecurityPolicy:
    """The admin's pages get ``MOLECULE_ADMIN_CSP`` instead of ``SECURE_CSP`` (settings say
    why); placed inside Django's CSP middleware, which then writes it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        in_admin = match is not None and "admin" in match.namespaces
        if in_admin and not hasattr(response, "_csp_config"):
            response._csp_config = settings.MOLECULE_ADMIN_CSP  # type: ignore[attr-defined]
        return response


class DatabaseUnavailableMiddleware:
    """A lost database connection answers 503 with Retry-After, not a bare 500.

    While PostgreSQL restarts (or fails over) every request that touches it fails; the operator,
    the API client and the agents should be told to come back in a moment, and nothing was
    written. The error is still logged with its traceback: it escaped the view.
    """

    RETRY_AFTER = 5

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.error("database unavailable for %s %s", request.method, request.path, exc_info=True)
        message = "The console's database is unavailable; try again in a few seconds."
        if speaks_json(request):
            response: HttpResponse = JsonResponse({"error": message}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(self.RETRY_AFTER)
        return response
