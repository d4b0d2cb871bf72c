"""Admin for workspaces and their event log. Actions are adapters: they call dispatch."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from orgs.access import actable_orgs, actor, can_act, visible_orgs
from workspaces import dispatch
from workspaces.lifecycle import Refused
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
    actable = set(actable_orgs(request.user).values_list("pk", flat=True))
    for workspace in queryset.select_related("org").order_by("created_at"):
        if workspace.org_id not in actable:
            modeladmin.message_user(
                request,
                f"Not allowed to {verb} {workspace.name!r}: you can only view the "
                f"{workspace.org.slug} org.",
                messages.ERROR,
            )
            continue
        try:
            dispatch.VERBS[verb](workspace_id=workspace.pk, actor=actor(request.user))
        except Refused as refused:
            modeladmin.message_user(request, str(refused), messages.ERROR)
        else:
            done.append(workspace.name)
    if done:
        modeladmin.message_user(request, f"{verb.capitalize()}: {', '.join(done)}.")
    return None


class WorkspaceAdminForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ("org", "name", "role", "tier", "runtime", "parent", "workspace_dir", "spec")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        parent, org = data.get("parent"), data.get("org") or getattr(self.instance, "org", None)
        if parent is not None and org is not None and parent.org_id != org.pk:
            self.add_error("parent", "The parent must be a workspace of the same org.")
        if data.get("tier") not in (None, 1, 2, 3, 4):
            self.add_error("tier", "Unknown tier: use 1, 2, 3 or 4.")
        return data


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceAdminForm
    list_display = ("name", "org", "status", "tier", "backend", "last_heartbeat_at", "parent")
    # Related-only: the stock filter would list every org, other tenants' slugs included.
    list_filter = ("status", "backend", "tier", ("org", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "role", "id", "instance_id")
    readonly_fields = LIFECYCLE_FIELDS
    fields = WorkspaceAdminForm.Meta.fields + LIFECYCLE_FIELDS
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

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        # The stock bulk delete would hard-delete rows behind dispatch's back.
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)
        return actions

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Moving a workspace to another org or parent is a verb with its own event, not an edit.
        return LIFECYCLE_FIELDS + (("org", "parent") if obj is not None else ())

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "org":
            kwargs["queryset"] = actable_orgs(request.user)
        elif db_field.name == "parent":
            kwargs["queryset"] = Workspace.objects.filter(
                org__in=actable_orgs(request.user)
            ).exclude(status="removed")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can_act(request.user, obj.org_id))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Workspace, form: Any, change: bool) -> None:
        if change:
            # Only what the form changed: the lifecycle columns belong to dispatch and the agents,
            # and a stale copy of them must not be written back.
            if form.changed_data:
                obj.save(update_fields=[*form.changed_data, "updated_at"])
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

    @admin.action(permissions=["change"], description="Provision (retry) selected workspaces")
    def provision_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "provision")

    @admin.action(permissions=["change"], description="Stop selected workspaces")
    def stop_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "stop")

    @admin.action(permissions=["change"], description="Restart selected workspaces")
    def restart_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "restart")

    @admin.action(
        permissions=["change"], description="Pause selected workspaces (and their children)"
    )
    def pause_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "pause")

    @admin.action(
        permissions=["change"], description="Resume selected workspaces (and their children)"
    )
    def resume_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "resume")

    @admin.action(
        permissions=["change"], description="Delete selected workspaces (and their children)"
    )
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
    list_filter = ("event_type", ("org", admin.RelatedOnlyFieldListFilter))
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
