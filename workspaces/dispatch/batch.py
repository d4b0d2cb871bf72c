"""Queue many backend calls as a few messages: the set-based sweeps' and the import's enqueue.

A sweep that restarts a thousand workspaces, or an import that creates a thousand, would
otherwise send a thousand broker messages from inside its commit. Here the calls go out as one
``tasks.reconcile_workspaces`` message per :data:`BATCH`; the task runs them one after the other
and hands any that must wait (a lease held, a transient backend failure) to the single-call task,
which owns the retries and the backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from workspaces.dispatch.core import RetryLater
from workspaces.dispatch.reconciler import reconcile

log = logging.getLogger(__name__)

# Calls per message: a worker's task stays short (each call is a backend start or stop), and a
# crash loses at most this many, which the reconcile sweep queues again.
BATCH = 100

Call = tuple[str, int]


def enqueue_generations(calls: Iterable[tuple[Any, int]]) -> None:
    """Queue the backend call of each (workspace id, generation) once the transaction commits."""
    # Imported here for the reason core.enqueue_generation gives: tasks imports dispatch.
    from workspaces import tasks

    pending: list[Call] = [(str(workspace_id), generation) for workspace_id, generation in calls]
    if not pending:
        return

    def send() -> None:
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            try:
                tasks.reconcile_workspaces.delay([list(call) for call in chunk])
            except Exception:
                # As for one call: the rows are recorded, and the reconcile sweep queues them
                # again once the broker is back.
                log.warning(
                    "could not queue %d backend call(s); the reconcile sweep will queue them again",
                    len(chunk),
                    exc_info=True,
                )

    transaction.on_commit(send)


def reconcile_many(calls: Iterable[Call]) -> tuple[list[str], list[Call], Exception | None]:
    """Run each call in turn: what each did, the calls to retry on their own, the first error.

    A call that fails for another reason does not stop the ones after it; the caller raises the
    error once it has handed on the retries (the reconcile sweep queues the failed call again).
    """
    outcomes: list[str] = []
    retry: list[Call] = []
    failure: Exception | None = None
    for workspace_id, generation in calls:
        try:
            outcomes.append(
                reconcile(workspace_id=workspace_id, generation=generation, final_attempt=False)
            )
        except RetryLater:
            outcomes.append("retry")
            retry.append((workspace_id, generation))
        except Exception as error:
            log.exception("backend call of workspace %s (generation %s)", workspace_id, generation)
            outcomes.append("error")
            failure = failure or error
    return outcomes, retry, failure
