"""The console's own 404 and 500 pages, and its favicon.

Django renders ``404.html`` with the request's context and ``500.html`` with an empty one; both
must look like the console (its stylesheet and header bar) with DEBUG off, as in production.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import path


def broken(request: Any) -> Any:
    raise RuntimeError("a page broke on purpose")


# This module is also the URL configuration of the 500 tests: one route that always fails.
urlpatterns = [path("broken/", broken)]


def looks_like_the_console(content: str) -> None:
    assert '<link rel="stylesheet" href="/static/css/console.css">' in content
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in content
    assert re.search(r'<header class="topbar">\s*<a class="brand" href="/">Molecule</a>', content)


@override_settings(DEBUG=False)
def test_a_missing_page_is_a_404_in_the_consoles_look_with_a_way_back_to_the_fleet():
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert [t.name for t in response.templates][:2] == ["404.html", "base.html"]
    content = response.content.decode()
    looks_like_the_console(content)
    assert "<title>Not found · Molecule console</title>" in content
    assert '<a href="/">Back to the fleet</a>' in content
    # It says nothing of what was asked for.
    assert "no-such-page" not in content


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_a_signed_in_operator_keeps_the_consoles_navigation_on_a_404(owner: User):
    client = Client()
    client.force_login(owner)

    response = client.get("/workspaces/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404
    content = response.content.decode()
    assert '<a href="/orgs/">Orgs</a>' in content
    assert f"<span>{owner.get_username()}</span>" in content


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_a_server_error_is_a_500_in_the_consoles_look():
    response = Client(raise_request_exception=False).get("/broken/")

    assert response.status_code == 500
    assert [t.name for t in response.templates] == ["500.html"]
    content = response.content.decode()
    looks_like_the_console(content)
    assert "<h1>Server error</h1>" in content
    assert '<a href="/">Back to the fleet</a>' in content
    # Never the error itself: that is for the log.
    assert "broke on purpose" not in content


def test_the_500_page_renders_with_an_empty_context():
    # What django.views.defaults.server_error does: no request, no user, no CSRF token. A URL
    # lookup or a variable the page needs would fail here or leave a hole.
    from django.template import loader

    content = loader.get_template("500.html").render()

    looks_like_the_console(content)


def test_favicon_ico_leads_to_the_consoles_icon():
    client = Client()

    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content
    assert body.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')


def test_every_console_page_names_its_icon():
    from django.template import loader

    content = loader.get_template("base.html").render({})

    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in content
