"""Admin for workspaces and their event log. Actions are adapters: they call dispatch."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from orgs.access import actor, visible_orgs
from workspaces import dispatch
from workspaces.lifecycle import TransitionRefused
from workspaces.models import OrphanSuspect, StructureEvent, Workspace

LIFECYCLE_FIELDS = (
    "status",
    "backend",
    "url",
    "instance_id",
    "backend_state",
    "generation",
    "status_changed_at",
    "last_heartbeat_at",
    "last_error_rate",
    "last_sample_error",
    "active_tasks",
    "uptime_seconds",
    "current_task",
    "agent_card",
    "created_at",
    "updated_at",
)


def _run_verb(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, verb: str
) -> HttpResponse | None:
    """Run one verb over the selection through dispatch; destructive verbs confirm first."""
    if verb in dispatch.DESTRUCTIVE_VERBS and request.POST.get("confirmed") != "yes":
        return TemplateResponse(
            request,
            "admin/workspaces/confirm_verb.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{verb.capitalize()} {queryset.count()} workspace(s)?",
                "verb": verb,
                "action": request.POST.get("action"),
                "workspaces": queryset,
                "opts": modeladmin.model._meta,
            },
        )
    done = []
    for workspace in queryset.order_by("created_at"):
        try:
            dispatch.VERBS[verb](workspace_id=workspace.pk, actor=actor(request.user))
        except TransitionRefused as refused:
            modeladmin.message_user(request, str(refused), messages.ERROR)
        else:
            done.append(workspace.name)
    if done:
        modeladmin.message_user(request, f"{verb.capitalize()}: {', '.join(done)}.")
    return None


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "org", "status", "tier", "backend", "last_heartbeat_at", "parent")
    list_filter = ("status", "backend", "tier", "org")
    search_fields = ("name", "role", "id", "instance_id")
    readonly_fields = LIFECYCLE_FIELDS
    exclude = ("token_hash", "forwarded_to")
    actions = [
        "provision_action",
        "stop_action",
        "restart_action",
        "pause_action",
        "resume_action",
        "delete_action",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workspace]:
        return super().get_queryset(request).filter(org__in=visible_orgs(request.user))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The stock bulk delete would hard-delete rows behind dispatch's back.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Workspace, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = dispatch.create_workspace(
            org=obj.org,
            name=obj.name,
            role=obj.role,
            tier=obj.tier,
            runtime=obj.runtime,
            parent=obj.parent,
            workspace_dir=obj.workspace_dir,
            spec=obj.spec,
            actor=actor(request.user),
        )
        obj.pk, obj._state = created.pk, created._state

    @admin.action(description="Provision (retry) selected workspaces")
    def provision_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "provision")

    @admin.action(description="Stop selected workspaces")
    def stop_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "stop")

    @admin.action(description="Restart selected workspaces")
    def restart_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "restart")

    @admin.action(description="Pause selected workspaces (and their children)")
    def pause_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "pause")

    @admin.action(description="Resume selected workspaces (and their children)")
    def resume_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "resume")

    @admin.action(description="Delete selected workspaces (and their children)")
    def delete_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "delete")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StructureEvent)
class StructureEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event_type", "workspace", "org", "actor")
    list_filter = ("event_type", "org")
    search_fields = ("actor", "workspace__name", "workspace__id")
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[StructureEvent]:
        return (
            super()
            .get_queryset(request)
            .filter(org__in=visible_orgs(request.user))
            .select_related("workspace", "org")
        )


@admin.register(OrphanSuspect)
class OrphanSuspectAdmin(ReadOnlyAdmin):
    list_display = ("backend", "instance_id", "first_seen_at")
