"""Django's error views, answering JSON under ``/api/`` and ``/registry/``.

Clients of the API and the agents parse every answer as JSON, the errors too; the pages keep
the console's own 404 and 500 pages. Django has already logged a 500 (``django.request``, with
its traceback) before it calls :func:`server_error`, so nothing is logged here.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

JSON_PREFIXES = ("/api/", "/registry/")
SERVER_ERROR = "Internal error; it is logged, with its traceback, on the server."


def speaks_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if speaks_json(request):
        return JsonResponse({"error": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if speaks_json(request):
        return JsonResponse({"error": "Forbidden."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if speaks_json(request):
        return JsonResponse({"error": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if speaks_json(request):
        return JsonResponse({"error": SERVER_ERROR}, status=500)
    return defaults.server_error(request)
