"""The pages under the Content-Security-Policy in a real browser: nothing the console or the
admin needs is blocked, and what hx-on did (reset the mint form) still happens."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from orgs.models import Org, OrgApiToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def test_the_token_page_mints_through_htmx_and_resets_its_form_under_the_policy(
    logged_in_page: Page, org: Org
) -> None:
    page = logged_in_page
    blocked = violations(page)
    page.goto("/tokens/")
    assert (
        "script-src 'self'"
        in (page.context.request.get("/tokens/").headers["content-security-policy"])
    )
    mint = page.locator("form[data-reset-on-success]")
    mint.get_by_label("Org").select_option(org.slug)
    mint.get_by_label("Name").fill("ci")
    mint.get_by_role("button", name="Mint").click()
    expect(page.locator("#minted-token")).to_be_visible()
    # console.js cleared the form once htmx had the 201 (no page load: the name is gone).
    expect(mint.get_by_label("Name")).to_have_value("")
    assert OrgApiToken.objects.filter(org=org, name="ci").count() == 1
    assert blocked == []


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/orgs/",
        "/events/",
        "/admin/",
        "/admin/orgs/org/add/",
        "/admin/orgs/orgmembership/add/",
    ],
)
def test_pages_and_the_admin_load_with_nothing_blocked(
    logged_in_page: Page, org: Org, path: str, settings: Any
) -> None:
    page = logged_in_page
    blocked = violations(page)
    page.goto(path)
    page.wait_for_load_state("networkidle")
    assert blocked == []


def test_the_watch_sees_what_the_policy_blocks(logged_in_page: Page) -> None:
    """Not vacuous: an inline style on a console page is refused, and reported."""
    page = logged_in_page
    blocked = violations(page)
    page.goto("/orgs/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_timeout(300)
    assert blocked and "style-src" in blocked[0]
