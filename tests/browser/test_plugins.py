"""Installing a plugin from the workspace page, in a real browser, on a real local agent: the
agent reads the plugin's files at once, without a restart, and uninstalling takes them away."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from orgs.models import Org
from tests.support.browser import LogIn, mark_page, still_marked
from tests.support.rows import status_of
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import EventType, Status, StructureEvent, Workspace
from workspaces.scenarios_files import agent_reads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_installs_a_plugin_and_the_running_agent_has_it(
    log_in: LogIn, local_fleet: Path, org: Org, owner: User
) -> None:
    org.backend = "local"
    org.save(update_fields=["backend"])
    workspace = dispatch.create_workspace(org=org, name="Browser plugins", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    workspace = Workspace.objects.get(pk=workspace.pk)
    instance = workspace.instance_id

    page: Page = log_in(owner)
    page.goto(f"/workspaces/{workspace.pk}/")
    card = page.locator("#plugins")
    card.scroll_into_view_if_needed()
    mark_page(page)
    card.locator("select[name=name]").select_option("parity-probe")
    card.get_by_role("button", name="Install").click()
    expect(page.locator(".plugin-done")).to_contain_text("Installed parity-probe 1.0.0")
    expect(page.locator('tr[data-plugin="parity-probe"]')).to_be_visible()
    wait_for(lambda: agent_reads(workspace, "plugins/parity-probe/SKILL.md"), timeout=10)

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-plugin="parity-probe"]').get_by_role("button", name="Uninstall").click()
    expect(page.locator(".plugin-done")).to_contain_text("Uninstalled parity-probe")
    wait_for(lambda: agent_reads(workspace, "plugins/parity-probe/SKILL.md") is None, timeout=10)
    assert still_marked(page), "the page reloaded instead of swapping the plugins panel"
    assert Workspace.objects.get(pk=workspace.pk).instance_id == instance  # no restart
    kinds = sorted(
        StructureEvent.objects.filter(
            workspace=workspace, event_type__startswith="PLUGIN_"
        ).values_list("event_type", flat=True)
    )
    assert kinds == [EventType.PLUGIN_INSTALLED, EventType.PLUGIN_UNINSTALLED]
