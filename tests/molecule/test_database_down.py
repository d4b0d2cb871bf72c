"""A lost database connection answers 503 with Retry-After (JSON under /api/), and is logged."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path


def lost_connection(request: HttpRequest) -> HttpResponse:
    # Stands in for PostgreSQL going away mid-request (the chaos suite restarts a real one).
    raise OperationalError("server closed the connection unexpectedly")


urlpatterns = [
    path("page/", lost_connection),
    path("api/v1/thing", lost_connection),
]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(("url", "json"), [("/page/", False), ("/api/v1/thing", True)])
def test_a_lost_database_connection_is_a_503_with_retry_after(
    url: str, json: bool, caplog: pytest.LogCaptureFixture
) -> None:
    response = Client(raise_request_exception=False).get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    sentence = "The console's database is unavailable; try again in a few seconds."
    if json:
        assert response.json() == {"error": sentence}
    else:
        assert response.content.decode() == sentence
    assert "server closed the connection unexpectedly" in caplog.text  # with its traceback
