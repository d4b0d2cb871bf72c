"""Shared by the org page tests (tests/orgs/test_org_pages.py, test_team_verbs.py,
test_import_pages.py, test_event_log_page.py, test_org_admin.py): org files to import, a logged-in
client, the org pages' URLs and what a response or the rows say.

The ``tree`` and ``theirs`` fixtures that import ``TREE`` are in tests/orgs/conftest.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from workspaces.models import Status, Workspace

HTMX = {"HX-Request": "true"}
TREE = """\
workspaces:
  - name: PM
    role: Lead
    children:
      - {name: Frontend, tier: 1}
      - name: Backend
        tier: 3
        children: [{name: DBA}]
  - {name: Scout, tier: 4, role: Analyst}
"""
GOOD = """\
name: Beta Labs
slug: beta
required_env: [OPENAI_API_KEY]
workspaces:
  - name: PM
    children:
      - {name: Frontend, tier: 1}
"""
BAD = """\
name: Beta Labs
slug: beta
workspaces:
  - name: PM
    tier: 9
    children:
      - {name: A}
      - {name: A}
"""


def login(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def org_url(org: Org, **query: str) -> str:
    url = reverse("org", args=[org.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def team_url(workspace: Workspace, verb: str) -> str:
    return reverse("team-verb", args=[workspace.org.slug, workspace.pk, verb])


def messages_of(response: Any, level: str) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == level]


def live_children(workspace: Workspace) -> list[str]:
    return sorted(workspace.children.exclude(status=Status.REMOVED).values_list("name", flat=True))


def set_status(status: str, *workspaces: Workspace) -> None:
    # How the agents would get there (registering, failing) is tests/workspaces' business.
    Workspace.objects.filter(pk__in=[w.pk for w in workspaces]).update(status=status)
