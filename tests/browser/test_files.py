"""Editing a file from the workspace page, in a real browser, on a real local agent: the saved
text reaches the agent's configs directory and the agent reads the new content."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from orgs.models import Org
from tests.support.browser import LogIn, mark_page, still_marked
from tests.support.rows import MakeWorkspace, status_of
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.dispatch import files
from workspaces.models import EventType, Status, StructureEvent, Workspace
from workspaces.scenarios_files import agent_reads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_edits_a_config_file_and_the_agent_reads_the_new_content(
    log_in: LogIn, local_fleet: Path, org: Org, owner: User
) -> None:
    org.backend = "local"
    org.save(update_fields=["backend"])
    workspace = dispatch.create_workspace(org=org, name="Browser files", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    workspace = Workspace.objects.get(pk=workspace.pk)
    files.write_file(
        workspace_id=workspace.pk, actor="test", root="configs", path="notes.md", data=b"first\n"
    )

    page: Page = log_in(owner)
    page.goto(f"/workspaces/{workspace.pk}/")
    card = page.locator("#files")
    card.scroll_into_view_if_needed()
    mark_page(page)
    card.get_by_role("link", name="notes.md").click()
    editor = page.get_by_label("Content of notes.md")
    expect(editor).to_have_value("first\n")
    editor.fill("second version\nwith two lines\n")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".file-saved")).to_contain_text("Saved notes.md")
    assert still_marked(page), "the page reloaded instead of swapping the editor"

    wanted = hashlib.sha256(b"second version\nwith two lines\n").hexdigest()
    wait_for(lambda: (agent_reads(workspace, "notes.md") or {}).get("sha256") == wanted, timeout=10)
    event = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.FILE_WRITTEN, actor=f"user:{owner.username}"
    ).get()
    assert event.payload == {
        "root": "configs",
        "path": "notes.md",
        "size": 30,
        "via": "edit",
        "backend": "local",
    }


def test_a_viewer_reads_a_file_but_cannot_save_it(
    log_in: LogIn, local_fleet: Path, org: Org, viewer: User, make_workspace: MakeWorkspace
) -> None:
    org.backend = "local"
    org.save(update_fields=["backend"])
    workspace = dispatch.create_workspace(org=org, name="Viewed files", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    files.write_file(
        workspace_id=workspace.pk, actor="test", root="configs", path="read-me.md", data=b"hi\n"
    )
    page: Page = log_in(viewer)
    page.goto(f"/workspaces/{workspace.pk}/files/?root=configs")
    page.get_by_role("link", name="read-me.md").click()
    editor = page.get_by_label("Content of read-me.md")
    expect(editor).to_have_value("hi\n")
    expect(editor).to_have_attribute("readonly", "")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.locator("form.file-upload")).to_have_count(0)
