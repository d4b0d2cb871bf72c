from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from orgs.models import Backend, Org

# What the fleet table's heartbeat sort reads for a workspace that never sent one: the oldest.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class Status(models.TextChoices):
    PROVISIONING = "provisioning"
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    PAUSED = "paused"
    FAILED = "failed"
    REMOVED = "removed"


class EventType(models.TextChoices):
    WORKSPACE_PROVISIONING = "WORKSPACE_PROVISIONING"
    WORKSPACE_ONLINE = "WORKSPACE_ONLINE"
    WORKSPACE_DEGRADED = "WORKSPACE_DEGRADED"
    WORKSPACE_OFFLINE = "WORKSPACE_OFFLINE"
    WORKSPACE_PROVISION_FAILED = "WORKSPACE_PROVISION_FAILED"
    WORKSPACE_PAUSED = "WORKSPACE_PAUSED"
    WORKSPACE_REMOVED = "WORKSPACE_REMOVED"
    WORKSPACE_EXPANDED = "WORKSPACE_EXPANDED"
    WORKSPACE_COLLAPSED = "WORKSPACE_COLLAPSED"
    WORKSPACE_MOVED = "WORKSPACE_MOVED"
    # Outcomes of backend calls that change no state: a stop that failed, an orphan removed.
    BACKEND_CALL_FAILED = "BACKEND_CALL_FAILED"
    ORPHAN_REMOVED = "ORPHAN_REMOVED"
    ORG_CREATED = "ORG_CREATED"
    ORG_IMPORTED = "ORG_IMPORTED"
    # The API's org delete: orgs are archived, never removed, so their history stays readable.
    ORG_ARCHIVED = "ORG_ARCHIVED"
    # An edit of name, role or tier (through the API); the payload holds each field's old and new.
    WORKSPACE_UPDATED = "WORKSPACE_UPDATED"
    TOKEN_MINTED = "TOKEN_MINTED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    SECRET_SET = "SECRET_SET"
    SECRET_DELETED = "SECRET_DELETED"
    # One A2A exchange the console forwarded to an agent: who, sizes, status and latency, never
    # the text (workspaces/dispatch/a2a.py).
    A2A_MESSAGE = "A2A_MESSAGE"
    # A change to a file in a workspace's storage (workspaces/dispatch/files.py): root, path and
    # size, never the content.
    FILE_WRITTEN = "FILE_WRITTEN"
    FILE_RENAMED = "FILE_RENAMED"
    FILE_DELETED = "FILE_DELETED"
    # A plugin from MOLECULE_PLUGINS_DIR installed into or removed from a workspace's configs;
    # PLUGIN_MISSING: a template named one the catalogue does not hold (the start goes on).
    PLUGIN_INSTALLED = "PLUGIN_INSTALLED"
    PLUGIN_UNINSTALLED = "PLUGIN_UNINSTALLED"
    PLUGIN_MISSING = "PLUGIN_MISSING"


class WorkspaceQuerySet(models.QuerySet["Workspace"]):
    def for_change(self) -> WorkspaceQuerySet:
        """Rows locked for an update of their own columns, and nothing else locked.

        Without ``of`` a lock query that joins the org (``select_related``, or ``first()`` on the
        default ordering, which is by org) locks the org's row too, and every heartbeat of the
        org waits behind any slow transaction on it. ``no_key``: events that reference the row
        (they take a key-share lock) are not blocked by it.
        """
        return self.select_for_update(of=("self",), no_key=True).order_by("pk")


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="workspaces")
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=200, blank=True)
    tier = models.PositiveSmallIntegerField(default=2)
    runtime = models.CharField(max_length=64, default="langgraph")
    status = models.CharField(max_length=20, choices=Status, default=Status.PROVISIONING)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    forwarded_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    url = models.CharField(max_length=500, blank=True)
    # Where the workspace actually runs. Set once at creation from the org; every verb after that
    # routes here, whatever backends happen to be configured (docs/architecture.md §3).
    backend = models.CharField(max_length=20, choices=Backend)
    instance_id = models.CharField(max_length=200, blank=True)
    backend_state = models.JSONField(default=dict, blank=True)
    # Bumped by every verb; a backend task carries the generation it was queued for and does
    # nothing once a later verb has superseded it.
    generation = models.PositiveIntegerField(default=0)
    # The generation whose reconcile started the recorded instance. Until reconcile replaces it,
    # a row that moved on (a restart, an auto-restart) still records the previous generation's
    # instance; sweeps judge an instance only against the generation that started it.
    instance_generation = models.PositiveIntegerField(default=0)
    # The generation the backend was last made to match (a start, a stop, a failure recorded).
    # Behind ``generation`` for longer than a grace period means the backend call was lost (a
    # worker died, the broker dropped the task): the reconcile sweep queues it again.
    reconciled_generation = models.PositiveIntegerField(default=0)
    # Who is calling the backend for this workspace right now, until when. Backend calls run
    # outside any database transaction; this lease is what keeps two of them for one workspace
    # from running at once. An expired lease (its worker died) is free to take.
    lease_owner = models.CharField(max_length=36, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    token_hash = models.CharField(max_length=64, blank=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error_rate = models.FloatField(default=0.0)
    last_sample_error = models.TextField(blank=True)
    active_tasks = models.PositiveIntegerField(default=0)
    uptime_seconds = models.PositiveIntegerField(default=0)
    current_task = models.CharField(max_length=500, blank=True)
    agent_card = models.JSONField(default=dict, blank=True)
    # What the agent says of its runtime (Molecule's heartbeat): "wedged" holds the workspace
    # degraded until the agent stops saying it; its capabilities; what it spent this month.
    runtime_state = models.CharField(max_length=20, blank=True)
    runtime_metadata = models.JSONField(default=dict, blank=True)
    monthly_spend = models.BigIntegerField(null=True, blank=True)  # cents
    # What the backend ran for the current instance: a command line or an image (the runtime
    # catalogue, workspaces/runtimes.py), for the workspace page.
    ran = models.CharField(max_length=500, blank=True)
    # Crashes, kept on the row because they are over before a 2 s poll can see them: how often a
    # sweep restarted the workspace, why and when its instance was last found dead, and whether
    # the crash-loop limit now holds it offline (cleared by the next operator verb).
    restart_count = models.PositiveIntegerField(default=0)
    last_exit_reason = models.TextField(blank=True)
    last_exit_at = models.DateTimeField(null=True, blank=True)
    crash_looping = models.BooleanField(default=False)
    # The lead's team spec: {"children": [{name, role, tier, ...}, ...]} used by team expand.
    spec = models.JSONField(default=dict, blank=True)
    # A Molecule org template's settings for this workspace, kept as the template gave them
    # (model, prompts, plugins, schedules, channels, memories, …): they reach the agent in its
    # config.yaml at every start (docs/agent-contract.md).
    template = models.JSONField(default=dict, blank=True)
    workspace_dir = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["org", "created_at"]
        indexes = [
            models.Index(fields=["status", "last_heartbeat_at"]),
            models.Index(fields=["org", "status"]),
            # One per sort of the fleet table, with the primary key that breaks ties: a keyset
            # page is one range scan of these (docs/architecture.md §11). The name search's
            # index (UPPER(name) text_pattern_ops) is PostgreSQL's only: migration 0009.
            models.Index(fields=["name", "id"], name="ws_name_keyset"),
            models.Index(fields=["status", "id"], name="ws_status_keyset"),
            models.Index(
                Coalesce("last_heartbeat_at", Value(NEVER)), F("id"), name="ws_heartbeat_keyset"
            ),
            models.Index(fields=["created_at", "id"], name="ws_created_keyset"),
            # The dashboard's counts: by state and backend (index-only), and the latest state
            # change, which versions them for the counts poll's ETag.
            models.Index(fields=["status", "backend"], name="ws_status_backend"),
            models.Index(fields=["status_changed_at"], name="ws_status_changed"),
            # The admin's and the dashboard's other filters.
            models.Index(fields=["backend", "id"], name="ws_backend_keyset"),
            models.Index(fields=["tier", "id"], name="ws_tier_keyset"),
        ]

    def __str__(self) -> str:
        return f"{self.org.slug}/{self.name}"

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]


class WorkspaceFile(models.Model):
    """A file the agent finds in its configs directory at every start (a template's files_dir).

    Stored in the console so that every backend can deliver it (a local directory, a container's
    config volume, a control plane's provision request). ``path`` is relative and confined (no
    ``..``, no absolute path); sizes are capped by the import that writes them.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    content = models.BinaryField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "path"], name="one_file_per_path")
        ]

    def __str__(self) -> str:
        return self.path


class TeamSecret(models.Model):
    """A team member's secret that collapse set aside, for expand to give back.

    Collapse removes the lead's descendants; their secrets would go with them and the recreated
    agents would start without the credentials they had. Each one is re-sealed here
    (``workspaces.vault``), bound to the lead and to the member's place in the team
    (``member_path``: the JSON list of names from the lead down), and expand restores it to the
    member it recreates. Deleted with the lead; rotated with every other secret.
    """

    lead = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="team_secrets")
    member_path = models.TextField()
    key = models.CharField(max_length=128)
    value_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["member_path", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "member_path", "key"], name="one_team_secret_per_member_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_path}:{self.key}"


class StructureEventQuerySet(models.QuerySet["StructureEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Structure events are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Structure events are append-only: they cannot be deleted.")


class AppendOnlyError(Exception):
    pass


class StructureEvent(models.Model):
    """Append-only log. The workspace row is a projection of these events.

    The ORM refuses updates and deletes here; on PostgreSQL a trigger (migration 0002) refuses
    them too, so raw SQL cannot rewrite history either.
    """

    event_type = models.CharField(max_length=40, choices=EventType, db_index=True)
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = StructureEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The event log's keyset pages, newest first, unfiltered and by each indexed filter.
        indexes = [
            models.Index(fields=["created_at", "id"], name="event_time"),
            models.Index(fields=["org", "created_at", "id"], name="event_org_time"),
            models.Index(fields=["workspace", "created_at", "id"], name="event_workspace_time"),
            models.Index(fields=["event_type", "created_at", "id"], name="event_type_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Structure events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Structure events are append-only: they cannot be deleted.")


class OrphanSuspect(models.Model):
    """An instance a backend reports that no live workspace owns, and since when.

    The orphan sweep stops it only once it stayed unowned past ``MOLECULE_ORPHAN_GRACE``, so an
    instance whose start has not committed yet is never taken for an orphan.
    """

    backend = models.CharField(max_length=20)
    instance_id = models.CharField(max_length=200)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["backend", "instance_id"], name="one_suspect")
        ]

    def __str__(self) -> str:
        return f"{self.backend}:{self.instance_id}"


class SweepState(models.Model):
    """When a sweep last ran, and since when it has been watching without a gap.

    After the console (or its beat) was down, every agent looks silent; the liveness sweep only
    judges silence once it has itself been watching for a whole liveness timeout.
    """

    name = models.CharField(max_length=40, primary_key=True)
    last_run_at = models.DateTimeField()
    watching_since = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class WorkspaceSecret(models.Model):
    """One environment variable for a workspace's agent, encrypted at rest (workspaces/vault.py).

    ``value_encrypted`` is a versioned AES-256-GCM blob (``v1:<key id>:<nonce+ciphertext>``);
    the plaintext is never stored, shown, logged or written to an event. The agent receives it
    in its environment when it is (re)started.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=128)
    value_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="one_secret_per_key")
        ]

    def __str__(self) -> str:
        return self.key


# Recorded parity-check runs live in their own module; importing them here registers them.
from workspaces.parity_models import ParityResult, ParityRun  # noqa: E402

__all__ = [
    "AppendOnlyError",
    "EventType",
    "OrphanSuspect",
    "ParityResult",
    "ParityRun",
    "Status",
    "StructureEvent",
    "SweepState",
    "TeamSecret",
    "Workspace",
    "WorkspaceFile",
    "WorkspaceSecret",
]
