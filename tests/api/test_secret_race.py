"""Concurrent first writes of one secret through the API: exactly one answers 201 "created".

Before, the API asked whether the secret existed before the vault took the workspace's lock,
so several writers racing on a new key each saw "absent" and each answered 201. Now created or
replaced is decided under the lock (vault.put_secret). Real threads, real PostgreSQL, committed
rows (transaction=True), each thread on its own connection.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from orgs.models import Org
from tests.support.keys import api, mint_token
from workspaces import dispatch, vault
from workspaces.models import EventType, StructureEvent, WorkspaceSecret

WRITERS = 8


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_first_writes_of_one_secret_exactly_one_is_created(
    recording: dict[str, Any],
) -> None:
    org = Org.objects.create(slug="acme", name="Acme")
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    token = mint_token(org)
    path = f"orgs/acme/workspaces/{workspace.pk}/secrets/OPENAI_API_KEY"
    start = threading.Barrier(WRITERS)
    statuses: list[int] = []

    def write(number: int) -> None:
        try:
            client = api(token)
            start.wait(timeout=30)
            statuses.append(client.put(path, {"value": f"value-{number}"}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [200] * (WRITERS - 1) + [201]
    assert WorkspaceSecret.objects.filter(workspace=workspace).count() == 1
    created = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.SECRET_SET, payload__created=True
    )
    assert created.count() == 1
    # The value is the last writer's, whole.
    assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY").startswith("value-")
