"""Celery tasks: thin adapters that take ids and call dispatch. They own their retries."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from workspaces import dispatch

MAX_RETRIES = 4


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def reconcile_workspace(self, workspace_id: str, generation: int) -> str:
    try:
        return dispatch.reconcile(
            workspace_id=workspace_id,
            generation=generation,
            final_attempt=self.request.retries >= MAX_RETRIES,
        )
    except dispatch.RetryLater as error:
        if self.request.is_eager:
            # Run inline (tests, `parity --check`): there is no broker to come back through, and
            # Celery's eager retry would escape into the verb's caller; retry here, at once.
            retry = reconcile_workspace.apply(
                args=[workspace_id, generation], retries=self.request.retries + 1
            )
            return retry.result
        raise self.retry(exc=error, countdown=2**self.request.retries) from error


@shared_task(bind=True, acks_late=True)
def reconcile_workspaces(self, calls: list[list[Any]]) -> list[str]:
    """Many backend calls in one message (a sweep's restarts, an import's starts), in turn.

    A call that must wait (a lease held, a transient failure) goes on as its own
    ``reconcile_workspace`` task with that task's retries and backoff.
    """
    outcomes, retry, failure = dispatch.reconcile_many(
        [(str(workspace_id), int(generation)) for workspace_id, generation in calls]
    )
    for workspace_id, generation in retry:
        if self.request.is_eager:
            reconcile_workspace.apply(args=[workspace_id, generation], retries=1)
        else:
            reconcile_workspace.apply_async(args=[workspace_id, generation], retries=1, countdown=1)
    if failure is not None:
        raise failure
    return outcomes


@shared_task
def liveness_sweep() -> int:
    return len(dispatch.liveness_sweep())


@shared_task
def provision_timeout_sweep() -> int:
    return len(dispatch.provision_timeout_sweep())


@shared_task
def health_sweep() -> int:
    return len(dispatch.health_sweep())


@shared_task
def reconcile_sweep() -> int:
    return len(dispatch.reconcile_sweep())


@shared_task
def orphan_sweep() -> int:
    return len(dispatch.orphan_sweep())


@shared_task
def run_parity_check(run_id: int) -> int:
    from workspaces import parity
    from workspaces.models import ParityRun

    run = parity.execute(ParityRun.objects.get(pk=run_id))
    return run.drift().count()
