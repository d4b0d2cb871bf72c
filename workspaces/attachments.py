"""A download as the console hands one out: bytes the browser saves and never renders."""

from __future__ import annotations

from urllib.parse import quote

from django.http import HttpResponse


def attachment(data: bytes, path: str) -> HttpResponse:
    """``data`` as a download named after the last part of ``path``."""
    response = HttpResponse(data, content_type="application/octet-stream")
    name = quote(path.rsplit("/", 1)[-1], safe="")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
    response["X-Content-Type-Options"] = "nosniff"
    # What a download holds is the workspace's, masked or not: no cache keeps a copy.
    response["Cache-Control"] = "no-store"
    return response
