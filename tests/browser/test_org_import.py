"""Org import in a real browser, onto the real local backend.

What only a browser shows: the pasted file's problems come back with their lines, the fixed file
imports, and the progress page follows the workspaces from provisioning to online by itself
(htmx polling swaps the counts and the tree's badges in place, then stops once settled).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orgs.models import Org
from tests.support.browser import RegistryGate, mark_page, still_marked
from tests.support.procs import agent_pids
from workspaces import vault
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Agents start, register and the page polls every 2 s; generous for a busy machine.
AGENT_TIMEOUT_MS = 45_000

ORG_YAML = """\
name: Browser Research
slug: browser-research
defaults: {runtime: langgraph, tier: 2}
required_env: [OPENAI_API_KEY]
workspaces:
  - name: PM
    role: Lead
    children:
      - {name: Frontend, tier: 1}
      - {name: Backend, tier: {TIER}}
      - {name: Research, tier: 3}
"""


def count(page: Page, name: str) -> str:
    return page.locator(f'#progress [data-progress="{name}"] strong').inner_text()


def test_operator_imports_an_org_in_the_browser_and_watches_it_come_online(
    logged_in_page: Page, held_registry: RegistryGate, local_fleet: Path
) -> None:
    page = logged_in_page
    page.goto("/orgs/")
    page.get_by_role("link", name="Import an org from YAML").click()
    expect(page).to_have_url(re.compile(r"/orgs/import/$"))

    # A typo first: the page names the line and creates nothing.
    page.get_by_label("…or paste it").fill(ORG_YAML.replace("{TIER}", "7"))
    page.locator("textarea[name=env]").fill("OPENAI_API_KEY=sk-browser")
    page.get_by_role("button", name="Validate and import").click()
    problem = page.locator("#problems li.problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text(
        "line 10: workspaces[0].children[1].tier: unknown tier 7: use 1, 2, 3 or 4"
    )
    expect(page.locator("#L10")).to_have_class("bad")
    expect(page.locator("textarea[name=env]")).to_have_value("")
    assert not Org.objects.filter(slug="browser-research").exists()

    # Fixed in the text box it came back in, and sent again.
    page.get_by_label("…or paste it").fill(ORG_YAML.replace("{TIER}", "2"))
    page.locator("textarea[name=env]").fill("OPENAI_API_KEY=sk-browser")
    with page.expect_navigation():
        page.get_by_role("button", name="Validate and import").click()

    org = Org.objects.get(slug="browser-research")
    event = StructureEvent.objects.get(org=org, event_type=EventType.ORG_IMPORTED)
    expect(page).to_have_url(re.compile(rf"/orgs/browser-research/imports/{event.pk}/$"))
    progress = page.locator("#progress")
    # The agents run but cannot register while the registry is held.
    expect(progress).to_have_attribute("data-settled", "false")
    assert count(page, "created") == "4"
    assert count(page, "provisioning") == "4"
    assert count(page, "online") == "0"
    mark_page(page)

    held_registry.release()

    expect(progress).to_have_attribute("data-settled", "true", timeout=AGENT_TIMEOUT_MS)
    assert count(page, "online") == "4"
    assert count(page, "provisioning") == "0"
    expect(progress.locator(".badge[data-status=online]")).to_have_count(4)
    expect(progress.locator('li[data-node="PM"] li[data-node="Research"]')).to_have_count(1)
    expect(progress).to_contain_text("Settled: 4 of 4 online")
    assert still_marked(page), "the progress page reloaded instead of updating in place"

    workspaces = Workspace.objects.filter(org=org)
    assert set(workspaces.values_list("status", flat=True)) == {Status.ONLINE}
    for workspace in workspaces:
        assert len(agent_pids(local_fleet, workspace.pk)) == 1
        assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == "sk-browser"

    # The org page shows the same tree, live.
    page.get_by_role("link", name="Go to the org").click()
    tree = page.locator("#tree")
    expect(tree.locator('li[data-node="PM"] > .node .badge')).to_have_attribute(
        "data-status", "online"
    )
    expect(tree.locator(".badge[data-status=online]")).to_have_count(4)
