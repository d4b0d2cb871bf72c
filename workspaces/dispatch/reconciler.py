"""The backend side of every verb: make the backend match the row, one generation at a time.

A backend call can take seconds (a container engine, a control plane's VM), so none runs inside
a database transaction: holding a transaction open across one would hold a row lock (and, on
SQLite, the whole database's write lock) for as long as the backend takes. Instead:

1. **claim** (a short transaction): check the generation, take the workspace's *lease*, decide
   what to do, mint the next agent's token;
2. **call** the backend, with no transaction open;
3. **record** (a short transaction): if the row still wants what we did, write it down and
   release the lease; if a later verb superseded us meanwhile, undo what we started.

The lease (``lease_owner``, ``lease_until``) serializes backend calls for one workspace, so a
restart racing a create never leaves two instances; a reconcile that finds it held waits for it.
It is short (``MOLECULE_RECONCILE_LEASE``) and renewed while the call runs, so a lease whose
worker died, or that could not be released, expires within that time. ``reconciled_generation``
records the generation the backend was last made to match: the reconcile sweep re-queues a row
left behind by a lost task.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone

from molecule import metrics
from workspaces import agent_config, backends, bearer_secrets, lifecycle, runtimes, vault
from workspaces.backends import Backend, BackendError, Instance, InstanceSpec
from workspaces.dispatch.core import RetryLater, console_tail, locked, recorded_instance
from workspaces.dispatch.tier_policy import tier_refusal
from workspaces.events import record as record_event
from workspaces.models import EventType, Status, Workspace
from workspaces.tiers import tier_settings

# How long a lease lasts unless its holder renews it. The holder renews it while its backend
# call runs (every third of it), so a lease outlives its worker by at most this much: a worker
# killed mid-call, or a database gone when the call ends, holds the workspace only that long,
# and then the reconcile sweep queues the call again.
LEASE_RENEW_DIVISOR = 3
# How long a reconcile waits for another one of the same workspace before retrying later.
LEASE_WAIT = 30.0
LEASE_POLL = 0.1
# Recording the outcome survives a short database outage (a restart, a failover).
RECORD_ATTEMPTS = 5
RECORD_BACKOFF = 0.5


def _lease() -> timedelta:
    return timedelta(seconds=settings.MOLECULE_RECONCILE_LEASE)


def _spec(workspace: Workspace, token: str) -> InstanceSpec:
    tier = tier_settings(workspace.tier)
    secrets = vault.environment(workspace)
    env = {
        # The workspace's secrets first, so the platform's own variables below always win.
        **secrets,
        # Their names (never values), so the agent can report which ones arrived.
        "MOLECULE_SECRET_KEYS": ",".join(sorted(secrets)),
        # The workspace id, its token and the console's URL reach the agent by the contract
        # (docs/agent-contract.md: WORKSPACE_ID, PLATFORM_URL, .auth_token), set by the backend.
        "MOLECULE_WORKSPACE_NAME": workspace.name,
        "MOLECULE_ORG": workspace.org.slug,
        "MOLECULE_RUNTIME": workspace.runtime,
        "MOLECULE_TIER": str(tier.tier),
        "MOLECULE_HEARTBEAT_INTERVAL": f"{settings.MOLECULE_HEARTBEAT_INTERVAL:g}",
    }
    runtime = runtimes.get(workspace.runtime)
    if runtime is None:
        # A row from before the catalogue held this name, or the operator's file dropped it.
        why = runtimes.unknown_runtime(workspace.runtime)
        raise BackendError(f"Not started: {why}.", permanent=True)
    return InstanceSpec(
        workspace_id=str(workspace.pk),
        name=workspace.name,
        org_slug=workspace.org.slug,
        runtime=workspace.runtime,
        tier=tier,
        generation=workspace.generation,
        env=env,
        workspace_dir=workspace.workspace_dir,
        token=token,
        platform_url=settings.MOLECULE_REGISTRY_URL,
        config=agent_config.config(workspace),
        files=agent_config.files(workspace),
        command=runtime.command,
        image=runtime.image,
    )


@dataclass
class Plan:
    """What one reconcile decided under its claim, and what its backend calls produced."""

    owner: str
    backend: Backend
    old: Instance | None
    wants_instance: bool
    remove_storage: Instance | None = None
    spec: InstanceSpec | None = None
    new: Instance | None = None
    error: BackendError | vault.SecretsUnreadable | None = None
    console: str = ""
    outcome: str = ""
    leftovers: list[Instance] = field(default_factory=list)


class _Busy(Exception):
    """Another reconcile of this workspace holds the lease."""


def _lease_free(workspace: Workspace, now: Any) -> bool:
    return not workspace.lease_owner or workspace.lease_until is None or workspace.lease_until < now


def _release(workspace: Workspace) -> None:
    workspace.lease_owner, workspace.lease_until = "", None


def _claim(workspace_id: Any, generation: int) -> Plan | str:
    """Phase 1: a plan with the lease taken, or what to return at once."""
    with transaction.atomic():
        try:
            workspace = locked(workspace_id)
        except Workspace.DoesNotExist:
            return "stale"
        if workspace.generation != generation:
            return "stale"
        if workspace.reconciled_generation >= generation:
            return "done"  # a second delivery of a task that already ran
        backend = backends.get(workspace.backend)
        if backend is None:
            workspace.reconciled_generation = generation
            workspace.save(update_fields=["reconciled_generation", "updated_at"])
            return "idle"
        now = timezone.now()
        if not _lease_free(workspace, now):
            raise _Busy
        old = recorded_instance(workspace)
        plan = Plan(
            owner=str(uuid.uuid4()),
            backend=backend,
            old=old,
            wants_instance=workspace.status == Status.PROVISIONING,
        )
        if workspace.status == Status.REMOVED and workspace.backend_state:
            plan.remove_storage = old or Instance("", state=dict(workspace.backend_state))
        fields = ["lease_owner", "lease_until", "updated_at"]
        if plan.wants_instance:
            token = bearer_secrets.mint()
            try:
                plan.spec = _spec(workspace, token)
                # A plugin the catalogue lacks is news for the operator, not a failed start:
                # the agent starts with the others (Molecule skips an unknown plugin too).
                for name in agent_config.missing_plugins(workspace):
                    record_event(
                        EventType.PLUGIN_MISSING,
                        actor="system:provision",
                        workspace=workspace,
                        payload={
                            "plugin": name[:100],
                            "error": f"Plugin {name[:100]!r} is not in the catalogue "
                            "(MOLECULE_PLUGINS_DIR); the agent starts without it.",
                        },
                    )
            except (vault.SecretsUnreadable, BackendError) as error:
                # Recorded in phase 3: never start an agent without its secrets or a runtime.
                plan.error = error
            # Asked again at every start: a row from before the rule, or trust withdrawn since.
            if why := tier_refusal(workspace.org, workspace.backend, workspace.tier):
                plan.error = BackendError(f"Not started: {why}.", permanent=True)
            # The next agent's token is valid from now: it may register before phase 3 runs.
            workspace.token_hash = bearer_secrets.hash_token(token)
            fields.append("token_hash")
        workspace.lease_owner, workspace.lease_until = plan.owner, now + _lease()
        workspace.save(update_fields=fields)
        return plan


def _call(plan: Plan) -> None:
    """Phase 2: the backend calls, with no transaction open."""
    try:
        if plan.old is not None:
            plan.backend.stop(plan.old)
        if plan.remove_storage is not None:
            plan.backend.remove_storage(plan.remove_storage)
        if plan.spec is not None and plan.error is None:
            plan.new = plan.backend.start(plan.spec)
    except BackendError as error:
        plan.error = error
    if plan.error is not None and plan.wants_instance:
        # Why it failed is often in the last lines of the instance that was there.
        plan.console = console_tail(plan.backend, plan.old)


def _record(workspace_id: Any, generation: int, plan: Plan, *, final_attempt: bool) -> str:
    """Phase 3: write down what happened, if the row still wants it."""
    with transaction.atomic():
        workspace = locked(workspace_id)
        if workspace.lease_owner != plan.owner:
            # Our lease expired and another reconcile took over: what we started is not ours.
            plan.leftovers += [plan.new] if plan.new else []
            return "stale"
        _release(workspace)
        fields = ["lease_owner", "lease_until", "updated_at"]
        if workspace.generation != generation:
            # A later verb superseded this one while the backend worked: its own reconcile
            # (waiting for our lease) decides what runs; nothing we started may stay.
            workspace.save(update_fields=fields)
            plan.leftovers += [plan.new] if plan.new else []
            return "stale"
        error = plan.error
        if error is not None and not (error.permanent or final_attempt):
            workspace.save(update_fields=fields)
            raise RetryLater(error.message)
        workspace.reconciled_generation = generation
        fields.append("reconciled_generation")
        if plan.old is not None:
            # backend_state stays: it still locates the instance's storage for a later delete.
            workspace.instance_id, workspace.url = "", ""
            fields += ["instance_id", "url"]
        if error is not None and lifecycle.is_allowed("provision_failed", workspace.status):
            workspace.save(update_fields=fields)
            lifecycle.apply(
                workspace,
                "provision_failed",
                actor="system:dispatch",
                payload={"error": error.message, "console": plan.console},
            )
            return "failed"
        if error is not None:
            workspace.save(update_fields=fields)
            record_event(
                EventType.BACKEND_CALL_FAILED,
                workspace=workspace,
                actor="system:dispatch",
                payload={
                    "call": "start" if plan.wants_instance else "stop",
                    "error": error.message,
                },
            )
            return "failed"
        if plan.new is None:
            workspace.save(update_fields=fields)
            return "stopped" if plan.old else "idle"
        workspace.instance_id, workspace.url = plan.new.instance_id, plan.new.url
        workspace.backend_state = plan.new.state
        workspace.instance_generation = generation
        workspace.ran = plan.new.ran[:500]
        fields += ["instance_id", "url", "backend_state", "instance_generation", "ran"]
        workspace.save(update_fields=fields)
        return "started"


class _Renewer:
    """Keeps a lease alive while its backend call runs, from a thread of its own."""

    def __init__(self, workspace_id: Any, owner: str) -> None:
        self.workspace_id, self.owner = workspace_id, owner
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        every = settings.MOLECULE_RECONCILE_LEASE / LEASE_RENEW_DIVISOR
        try:
            while not self.stop.wait(every):
                # A bare UPDATE of two columns: updated_at stays, which the sweep's grace reads.
                with contextlib.suppress(DatabaseError):
                    Workspace.objects.filter(pk=self.workspace_id, lease_owner=self.owner).update(
                        lease_until=timezone.now() + _lease()
                    )
        finally:
            connection.close()

    def done(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def _record_despite_outages(
    workspace_id: Any, generation: int, plan: Plan, *, final_attempt: bool
) -> str:
    """``_record``, tried again over a short database outage with a fresh connection."""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            return _record(workspace_id, generation, plan, final_attempt=final_attempt)
        except (OperationalError, InterfaceError):
            if attempt == RECORD_ATTEMPTS:
                raise
            connection.close()
            time.sleep(RECORD_BACKOFF * attempt)
    raise AssertionError("unreachable")


def _undo(plan: Plan) -> None:
    for instance in plan.leftovers:
        # If this fails too, the orphan sweep stops what no workspace owns.
        with contextlib.suppress(BackendError):
            plan.backend.stop(instance)


def _release_after_crash(workspace_id: Any, owner: str) -> None:
    # Best effort: with the database gone too, the lease simply expires (it is short).
    with contextlib.suppress(DatabaseError), transaction.atomic():
        workspace = Workspace.objects.for_change().filter(pk=workspace_id).first()
        if workspace is not None and workspace.lease_owner == owner:
            _release(workspace)
            workspace.save(update_fields=["lease_owner", "lease_until", "updated_at"])


def reconcile(*, workspace_id: Any, generation: int, final_attempt: bool = True) -> str:
    """Make the backend match the row, for the generation the task was queued with.

    Called by ``tasks.reconcile_workspace``. Returns what it did ("stale", "done", "started",
    "stopped", "failed", "idle"). Waits up to ``LEASE_WAIT`` for another reconcile of the same
    workspace, then asks for a retry. A transient ``BackendError`` raises ``RetryLater`` unless
    this is the final attempt; a permanent one (or the final attempt) marks a provisioning
    workspace failed with the error in the event, and records BACKEND_CALL_FAILED for a failed
    stop. Idempotent: a second delivery of the same task does nothing.
    """
    deadline = time.monotonic() + LEASE_WAIT
    while True:
        try:
            claimed = _claim(workspace_id, generation)
            break
        except _Busy:
            if time.monotonic() > deadline:
                raise RetryLater("another backend call for this workspace is running") from None
            time.sleep(LEASE_POLL)
    if isinstance(claimed, str):
        return claimed
    plan = claimed
    try:
        renewer = _Renewer(workspace_id, plan.owner)
        began = time.monotonic()
        try:
            _call(plan)
        finally:
            renewer.done()
            calls_took = time.monotonic() - began
        plan.outcome = _record_despite_outages(
            workspace_id, generation, plan, final_attempt=final_attempt
        )
        metrics.observe_backend_call(plan.backend.name, plan.outcome, calls_took)
    except BaseException:
        if not plan.outcome:
            plan.leftovers += [plan.new] if plan.new else []
            _release_after_crash(workspace_id, plan.owner)
        raise
    finally:
        _undo(plan)
    return plan.outcome
