"""Sending a message to an agent from the workspace page, in a real browser, to a real local
agent: the answer appears in the message panel without a reload, and the exchange is an event.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from orgs.models import Org
from tests.support.browser import LogIn, mark_page, still_marked
from tests.support.rows import MakeWorkspace, status_of
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import EventType, Status, StructureEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_sends_a_message_and_sees_the_agents_answer(
    log_in: LogIn, local_fleet: Path, org: Org, owner: User
) -> None:
    org.backend = "local"
    org.save(update_fields=["backend"])
    workspace = dispatch.create_workspace(org=org, name="Browser PM", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)

    page: Page = log_in(owner)
    page.goto(f"/workspaces/{workspace.pk}/")
    panel = page.locator("#a2a")
    expect(panel.get_by_role("heading", name="Messages")).to_be_visible()
    mark_page(page)
    panel.get_by_label("Message").fill("What are you working on?")
    panel.get_by_role("button", name="Send").click()

    expect(page.locator("#a2a .a2a-answer")).to_have_text(
        "Browser PM heard: What are you working on?"
    )
    expect(page.locator("#a2a .a2a-sent")).to_have_text("What are you working on?")
    assert still_marked(page), "the page reloaded instead of swapping the message panel"
    event = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.A2A_MESSAGE
    ).get()
    assert event.actor == f"user:{owner.get_username()}"
    assert "working on" not in str(event.payload)


def test_a_viewer_sees_the_panel_without_a_form(
    log_in: LogIn, local_fleet: Path, org: Org, viewer: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    page: Page = log_in(viewer)
    page.goto(f"/workspaces/{workspace.pk}/")
    expect(page.locator("#a2a").get_by_role("heading", name="Messages")).to_be_visible()
    expect(page.locator("#a2a form")).to_have_count(0)
