"""What the agents report: registration, heartbeats and agent cards (docs/architecture.md §7).

The registry views in ``registry.py`` parse HTTP and call these. Each call locks the workspace
row, checks the agent's token against the hash minted at its start, and moves the state machine
where the report says so: provisioning → online on register or on the first heartbeat, online ↔
degraded by error rate or by the runtime saying it is wedged. The protocol, both the console's
own request shapes and Molecule's runtime's, is docs/registry-protocol.md.

A heartbeat that moves nothing (the common case: an online agent saying it is still fine) takes
the fast path, one conditional UPDATE with no lock and no transaction (``_quiet_beat``); every
other report, and a row that changed under it, takes the locked path with all its rules.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, replace
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from workspaces import lifecycle, redaction
from workspaces.fields import MAX_CURRENT_TASK, MAX_SAMPLE_ERROR, WEDGED
from workspaces.models import Status, Workspace

DEGRADED_AT = 0.5
RECOVERED_BELOW = 0.1
WEDGED_REASON = "the agent reports its runtime wedged"


class Unauthorized(Exception):
    """Unknown workspace, or a token that is not this workspace's current one."""


class Conflict(Exception):
    """A report the workspace's state does not take (it is paused, failed, offline, …)."""


@dataclass(frozen=True)
class Report:
    error_rate: float
    sample_error: str
    active_tasks: int
    uptime_seconds: int
    current_task: str
    # None: the heartbeat did not say (the key was absent). "wedged" or "" otherwise.
    runtime_state: str | None = None
    # None: absent, the stored metadata stays as it was.
    runtime_metadata: dict[str, Any] | None = None
    # Cents, already clamped; 0 leaves the stored value as it was.
    monthly_spend: int = 0

    @property
    def full(self) -> bool:
        """Molecule's heartbeat loop's beat, rather than one of its "mini-heartbeats" (a task's
        start or end, an activity: ``uptime_seconds`` 0 and no runtime fields), which say
        nothing about the runtime's health."""
        return (
            self.runtime_state is not None
            or self.runtime_metadata is not None
            or self.uptime_seconds > 0
        )


def _authorized(workspace_id: Any, token_hash: str) -> Workspace:
    workspace = Workspace.objects.for_change().filter(pk=workspace_id).first()
    if workspace is None or not workspace.token_hash:
        raise Unauthorized
    if not hmac.compare_digest(workspace.token_hash, token_hash):
        raise Unauthorized
    return workspace


def _actor(workspace: Workspace) -> str:
    return f"agent:{workspace.short_id}"


def _come_online(workspace: Workspace, *, payload: dict[str, Any], fields: tuple[str, ...]) -> None:
    """provisioning → online: a new instance, whose runtime has said nothing yet."""
    workspace.runtime_state = ""
    workspace.runtime_metadata = {}
    lifecycle.apply(
        workspace,
        "register",
        actor=_actor(workspace),
        payload=payload,
        update_fields=(*fields, "runtime_state", "runtime_metadata"),
    )


def _masked_card(workspace: Workspace, card: dict[str, Any]) -> dict[str, Any]:
    """The agent's card as the page and the API show it: the workspace's secrets masked."""
    if not card:
        return card
    redactor = redaction.for_instance(workspace.pk, workspace.token_hash)
    return card if redactor is None else cast(dict, redactor.value(card))


def register(
    *, workspace_id: Any, token_hash: str, url: str, agent_card: dict[str, Any]
) -> Workspace:
    with transaction.atomic():
        workspace = _authorized(workspace_id, token_hash)
        workspace.last_heartbeat_at = timezone.now()
        workspace.agent_card = _masked_card(workspace, agent_card)
        # The backend's URL (a published port, a VM address) wins over what the agent believes.
        workspace.url = workspace.url or url
        fields = ("last_heartbeat_at", "agent_card", "url")
        if workspace.status == Status.PROVISIONING:
            _come_online(workspace, payload={"url": workspace.url}, fields=fields)
        elif workspace.status in (Status.ONLINE, Status.DEGRADED):
            workspace.save(update_fields=[*fields, "updated_at"])  # a re-register: no new state
        else:
            raise Conflict(f"workspace is {workspace.status}; it does not accept registration")
        return workspace


def update_card(*, workspace_id: Any, token_hash: str, agent_card: dict[str, Any]) -> Workspace:
    """The agent's new card (its skills changed). No state moves and no event is written."""
    with transaction.atomic():
        workspace = _authorized(workspace_id, token_hash)
        if workspace.status not in (Status.PROVISIONING, Status.ONLINE, Status.DEGRADED):
            raise Conflict(f"workspace is {workspace.status}; it does not accept an agent card")
        workspace.agent_card = _masked_card(workspace, agent_card)
        workspace.save(update_fields=["agent_card", "updated_at"])
        return workspace


def runtime_state_after(workspace: Workspace, report: Report) -> str:
    """What the runtime's state is once ``report`` is taken.

    A heartbeat that says (``runtime_state`` present) is believed. A full heartbeat that does
    not say is healthy (Molecule's loop leaves the key out unless wedged). A partial one keeps
    what the last full one said: Molecule's mini-heartbeats never carry the key, and letting
    one clear a wedge would bring a wedged workspace back online mid-turn."""
    if report.runtime_state is not None:
        return report.runtime_state
    if report.full:
        return ""
    return workspace.runtime_state


# The quiet beat on PostgreSQL, written out: the same statement built through the ORM costs a
# heartbeat 0.8 ms more of Python (1.2 against 0.4 ms a statement, measured alternating in one
# process), which was most of what the registry itself spends on a beat. Its conditions are
# _quiet_beat's; tests/workspaces/test_heartbeat_hot_path.py runs both ways of writing them.
_QUIET_BEAT_SQL = """
UPDATE workspaces_workspace
   SET last_heartbeat_at = %(now)s,
       last_error_rate = %(error_rate)s,
       last_sample_error = %(sample_error)s,
       active_tasks = %(active_tasks)s,
       uptime_seconds = %(uptime_seconds)s,
       current_task = %(current_task)s,
       monthly_spend = COALESCE(%(monthly_spend)s, monthly_spend)
 WHERE id = %(id)s
   AND token_hash = %(token_hash)s
   AND status = 'online'
   AND CASE WHEN %(full)s THEN runtime_state = %(runtime_state)s
            ELSE runtime_state <> 'wedged' END
   AND (%(runtime_metadata)s::jsonb IS NULL OR runtime_metadata = %(runtime_metadata)s::jsonb)
"""


def _written_out() -> bool:
    """Whether the quiet beat runs ``_QUIET_BEAT_SQL`` (PostgreSQL) or the ORM's statement."""
    return connection.vendor == "postgresql"


def _quiet_beat(*, workspace_id: Any, token_hash: str, report: Report) -> bool:
    """Take ``report`` in one statement if it cannot move the state machine; False otherwise.

    Whether it can is decided twice: here from the report alone (not wedged, error rate below
    ``DEGRADED_AT``), and in the UPDATE's WHERE from the row (this token, ``online``, a runtime
    state the report leaves as it is, the same runtime metadata). A row that is anything else
    (provisioning, degraded, paused, another token, a wedge to keep or a state or capabilities
    that change) matches nothing and the caller runs the locked path, whose rules then decide.

    ``updated_at`` is left alone, on purpose: it says when the row's state or configuration last
    changed. The pages poll on it, and the reconcile sweep waits for it to be ``grace`` old
    before queueing a lost backend call again; a heartbeat every 30 s touching it would make the
    pages re-send unchanged rows and keep a heartbeating workspace's lost verb from ever being
    reconciled.
    """
    if report.runtime_state == WEDGED or report.error_rate >= DEGRADED_AT:
        return False
    now = timezone.now()
    # Autocommit: one statement, one round trip; the row lock lasts as long as the UPDATE.
    if _written_out():
        metadata = report.runtime_metadata
        with connection.cursor() as cursor:
            cursor.execute(
                _QUIET_BEAT_SQL,
                {
                    "now": now,
                    "error_rate": report.error_rate,
                    "sample_error": report.sample_error,
                    "active_tasks": report.active_tasks,
                    "uptime_seconds": report.uptime_seconds,
                    "current_task": report.current_task,
                    # 0 leaves the stored spend as it was.
                    "monthly_spend": report.monthly_spend or None,
                    "id": workspace_id,
                    "token_hash": token_hash,
                    "full": report.full,
                    "runtime_state": report.runtime_state or "",
                    "runtime_metadata": None if metadata is None else json.dumps(metadata),
                },
            )
            return cursor.rowcount == 1
    rows = Workspace.objects.filter(pk=workspace_id, token_hash=token_hash, status=Status.ONLINE)
    if report.full:
        # A full beat sets the runtime state; fast only when that is what is stored already.
        rows = rows.filter(runtime_state=report.runtime_state or "")
    else:
        # A partial beat keeps the stored state; a stored wedge needs the locked path's rules.
        rows = rows.exclude(runtime_state=WEDGED)
    if report.runtime_metadata is not None:
        # The page shows the capabilities: a change of them is a change of the row's state.
        rows = rows.filter(runtime_metadata=report.runtime_metadata)
    changes: dict[str, Any] = {
        "last_heartbeat_at": now,
        "last_error_rate": report.error_rate,
        "last_sample_error": report.sample_error,
        "active_tasks": report.active_tasks,
        "uptime_seconds": report.uptime_seconds,
        "current_task": report.current_task,
    }
    if report.monthly_spend > 0:
        changes["monthly_spend"] = report.monthly_spend
    return rows.update(**changes) == 1


def _masked(workspace_id: Any, token_hash: str, report: Report) -> Report:
    """The report with the workspace's secrets masked in what the agent wrote (the page shows
    it, events keep it). A report with no text costs nothing; one with text costs one query
    once per instance (``redaction.for_instance``)."""
    if not (report.sample_error or report.current_task or report.runtime_metadata):
        return report
    redactor = redaction.for_instance(workspace_id, token_hash)
    if redactor is None or redactor.empty:
        return report  # not this workspace's token: refused below, nothing is stored
    metadata = report.runtime_metadata
    return replace(
        report,
        # A mask can be longer than the value it hides: cut to the column again.
        sample_error=redactor.text(report.sample_error)[:MAX_SAMPLE_ERROR],
        current_task=redactor.text(report.current_task)[:MAX_CURRENT_TASK],
        runtime_metadata=None if metadata is None else cast(dict, redactor.value(metadata)),
    )


def heartbeat(*, workspace_id: Any, token_hash: str, report: Report) -> str:
    """Take one heartbeat; the workspace's status after it.

    Raises ``Unauthorized`` (no such workspace, another token) and ``Conflict`` (a state that
    takes no heartbeats)."""
    report = _masked(workspace_id, token_hash, report)
    if _quiet_beat(workspace_id=workspace_id, token_hash=token_hash, report=report):
        return Status.ONLINE
    return _locked_beat(workspace_id=workspace_id, token_hash=token_hash, report=report).status


def _locked_beat(*, workspace_id: Any, token_hash: str, report: Report) -> Workspace:
    with transaction.atomic():
        workspace = _authorized(workspace_id, token_hash)
        now = timezone.now()
        if workspace.status == Status.PROVISIONING:
            # Molecule's runtime registers once, at boot, and never again: when that one call
            # was lost or refused, its heartbeats are all there is. The token proves which
            # instance is speaking, so the first heartbeat counts as the registration.
            workspace.last_heartbeat_at = now
            _come_online(
                workspace,
                payload={"url": workspace.url, "via": "heartbeat"},
                fields=("last_heartbeat_at",),
            )
        elif workspace.status not in (Status.ONLINE, Status.DEGRADED):
            raise Conflict(f"workspace is {workspace.status}; it does not accept heartbeats")
        was_wedged = workspace.runtime_state == WEDGED
        state = runtime_state_after(workspace, report)
        wedged = state == WEDGED
        sample_error = report.sample_error
        if wedged and was_wedged and report.runtime_state is None and not sample_error:
            # A partial beat's empty sample is no news: the page keeps saying why it is wedged.
            sample_error = workspace.last_sample_error
        workspace.last_heartbeat_at = now
        workspace.last_error_rate = report.error_rate
        workspace.last_sample_error = sample_error
        workspace.active_tasks = report.active_tasks
        workspace.uptime_seconds = report.uptime_seconds
        workspace.current_task = report.current_task
        # What the page shows of the runtime (its state, its capabilities) changing is a change
        # of the row; the figures of a beat are not (see _quiet_beat on updated_at).
        shown_changed = workspace.runtime_state != state
        workspace.runtime_state = state
        fields = [
            "last_heartbeat_at",
            "last_error_rate",
            "last_sample_error",
            "active_tasks",
            "uptime_seconds",
            "current_task",
            "runtime_state",
        ]
        if report.runtime_metadata is not None:
            shown_changed = shown_changed or workspace.runtime_metadata != report.runtime_metadata
            workspace.runtime_metadata = report.runtime_metadata
            fields.append("runtime_metadata")
        if report.monthly_spend > 0:
            workspace.monthly_spend = report.monthly_spend
            fields.append("monthly_spend")
        payload: dict[str, Any] = {"error_rate": report.error_rate, "sample_error": sample_error}
        move = None
        if workspace.status == Status.ONLINE and wedged:
            move = "degrade"
            payload = {"runtime_state": WEDGED, "sample_error": sample_error}
            payload["reason"] = WEDGED_REASON
        elif workspace.status == Status.ONLINE and report.error_rate >= DEGRADED_AT:
            move = "degrade"
        elif (
            workspace.status == Status.DEGRADED
            and not wedged
            and report.error_rate < RECOVERED_BELOW
        ):
            move = "recover"
            if was_wedged:
                payload["runtime_state"] = state
        if move:
            lifecycle.apply(
                workspace, move, actor=_actor(workspace), payload=payload, update_fields=(*fields,)
            )
        else:
            workspace.save(update_fields=[*fields, "updated_at"] if shown_changed else fields)
        return workspace
