"""The fleet dashboard and the workspace page in a real browser, on the real local backend.

What only a browser can show: htmx keeps the pages live (the dashboard's polling swaps a row's
state badge in place, with no reload) and the verb buttons ask for confirmation before posting.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Dialog, Locator, Page, expect

from orgs.models import Org
from tests.support.browser import RegistryGate, mark_page, still_marked
from tests.support.procs import agent_pids
from workspaces.models import EventType, Status, StructureEvent, Workspace
from workspaces.verb_text import consequence

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Waiting on an agent (start, register, stop) and on a 2 s poll; generous for a busy machine.
AGENT_TIMEOUT_MS = 30_000


def row_badge(page: Page, name: str) -> Locator:
    return page.locator(f'tr[data-workspace="{name}"] span.badge[data-status]')


def test_operator_provisions_a_workspace_and_watches_it_come_online_then_stops_it(
    logged_in_page: Page,
    held_registry: RegistryGate,
    local_fleet: Path,
    org: Org,
    superuser: User,
) -> None:
    page, name = logged_in_page, "Browser PM"

    # Create and provision through the dashboard's form.
    page.goto("/")
    new = page.locator("section.card").filter(has=page.get_by_role("heading", name="New workspace"))
    new.get_by_label("Org").select_option(org.slug)
    new.get_by_label("Name").fill(name)
    with page.expect_navigation():
        new.get_by_role("button", name="Create and provision").click()

    workspace = Workspace.objects.get(org=org, name=name)
    expect(page).to_have_url(re.compile(rf"/workspaces/{workspace.pk}/$"))
    expect(page.locator("#state .badge")).to_have_attribute("data-status", "provisioning")

    # The agent is running but cannot register while the registry is held: the dashboard
    # shows the workspace provisioning until the test lets it through.
    page.goto("/")
    badge = row_badge(page, name)
    expect(badge).to_have_attribute("data-status", "provisioning")
    mark_page(page)

    held_registry.release()

    expect(badge).to_have_attribute("data-status", "online", timeout=AGENT_TIMEOUT_MS)
    expect(badge).to_have_text("online")
    assert still_marked(page), "the dashboard reloaded instead of updating the row in place"

    # Stop it from the workspace page, confirming the prompt.
    page.locator(f'tr[data-workspace="{name}"]').get_by_role("link", name=name).click()
    state_badge = page.locator("#state .badge[data-status]")
    expect(state_badge).to_have_attribute("data-status", "online")
    mark_page(page)
    prompts: list[str] = []

    def confirm(dialog: Dialog) -> None:
        prompts.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.locator("#state").get_by_role("button", name="Stop", exact=True).click()

    expect(state_badge).to_have_attribute("data-status", "offline", timeout=AGENT_TIMEOUT_MS)
    expect(state_badge).to_have_text("offline")
    # The same sentence the page without JavaScript shows.
    assert prompts == [f"Stop {name}? {consequence('stop', name=name)}"]
    assert still_marked(page), "the stop navigated away instead of posting through htmx"

    workspace.refresh_from_db()
    assert workspace.status == Status.OFFLINE
    assert StructureEvent.objects.filter(
        workspace=workspace,
        event_type=EventType.WORKSPACE_OFFLINE,
        actor=f"user:{superuser.get_username()}",
    ).exists()
    assert agent_pids(local_fleet, workspace.pk) == []
