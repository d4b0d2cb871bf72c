"""Fixtures of the org page tests: an org with a team tree, and a workspace of another org."""

from __future__ import annotations

from typing import Any

import pytest

from orgs.importer import import_org
from orgs.models import Org
from tests.support.org_pages import TREE
from workspaces.models import Workspace


@pytest.fixture
def tree(org: Org, django_capture_on_commit_callbacks: Any) -> dict[str, Workspace]:
    """PM leads Frontend and Backend; Backend leads DBA; Scout stands alone. All provisioning."""
    with django_capture_on_commit_callbacks(execute=True):
        import_org(TREE, actor="test", into=org)
    return {w.name: w for w in Workspace.objects.filter(org=org)}


@pytest.fixture
def theirs(other_org: Org, django_capture_on_commit_callbacks: Any) -> Workspace:
    with django_capture_on_commit_callbacks(execute=True):
        import_org("workspaces: [{name: Theirs}]\n", actor="test", into=other_org)
    return Workspace.objects.get(org=other_org)
