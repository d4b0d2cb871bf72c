"""Celery tasks: thin adapters that take ids and call dispatch. They own their retries."""

from __future__ import annotations

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
