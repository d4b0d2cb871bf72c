"""Admin for workspaces and their event log. Actions are adapters: they call dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from orgs.access import actable_orgs, actor, can_act, visible_orgs
from workspaces import dispatch, selectors
from workspaces.admin_lists import PER_PAGE, CappedPaginator, TierFilter, VisibleOrgFilter
from workspaces.lifecycle import Refused
from workspaces.models import OrphanSuspect, Status, StructureEvent, Workspace
from workspaces.tiers import TIER_CHOICES
from workspaces.verb_text import consequence

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


def _confirm(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, verb: str
) -> TemplateResponse:
    rows = list(queryset.select_related("org").order_by("created_at"))
    return TemplateResponse(
        request,
        "admin/workspaces/confirm_verb.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": f"{verb.capitalize()} {len(rows)} workspace(s)?",
            "verb": verb,
            "action": request.POST.get("action"),
            # The same sentence the console's pages show for this verb and workspace.
            "workspaces": [
                (
                    ws,
                    consequence(
                        verb,
                        name=ws.name,
                        live_descendants=selectors.live_descendant_count(ws),
                    ),
                )
                for ws in rows
            ],
            "opts": modeladmin.model._meta,
        },
    )


def _each_actable(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    verb: str,
    run: Callable[[Workspace], object],
) -> None:
    """Run ``run`` on each selected workspace the user may act on, reporting each refusal."""
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
            run(workspace)
        except (Refused, dispatch.InvalidRequest) as refused:
            modeladmin.message_user(request, str(refused), messages.ERROR)
        else:
            done.append(workspace.name)
    if done:
        modeladmin.message_user(request, f"{verb.capitalize()} requested: {', '.join(done)}.")


def _run_verb(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, verb: str
) -> HttpResponse | None:
    """Run one verb over the selection through dispatch; destructive verbs confirm first."""
    confirm = verb in dispatch.DESTRUCTIVE_VERBS or verb == "collapse"
    if confirm and request.POST.get("confirmed") != "yes":
        return _confirm(modeladmin, request, queryset, verb)
    run = dispatch.VERBS.get(verb) or dispatch.TEAM_VERBS[verb]
    _each_actable(
        modeladmin,
        request,
        queryset,
        verb,
        lambda ws: run(workspace_id=ws.pk, actor=actor(request.user)),
    )
    return None


class MoveForm(forms.Form):
    parent = forms.ModelChoiceField(
        queryset=Workspace.objects.none(),
        required=False,
        empty_label="(none: top level)",
        help_text="The new parent; its subtree moves with each workspace.",
    )


def _move(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    orgs = set(queryset.values_list("org_id", flat=True))
    if len(orgs) != 1:
        modeladmin.message_user(
            request,
            "Select workspaces of one org to move: a team lives in one org.",
            messages.ERROR,
        )
        return None
    form = MoveForm(request.POST if request.POST.get("confirmed") == "yes" else None)
    form.fields["parent"].queryset = (
        Workspace.objects.filter(org_id__in=orgs, org__in=actable_orgs(request.user))
        .exclude(status=Status.REMOVED)
        .exclude(pk__in=queryset.values("pk"))
    )
    if not form.is_valid():
        return TemplateResponse(
            request,
            "admin/workspaces/move.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"Move {queryset.count()} workspace(s)",
                "form": form,
                "action": request.POST.get("action"),
                "workspaces": queryset.select_related("org", "parent"),
                "opts": modeladmin.model._meta,
            },
        )
    parent = form.cleaned_data["parent"]
    _each_actable(
        modeladmin,
        request,
        queryset,
        "move",
        lambda ws: dispatch.move_workspace(
            workspace_id=ws.pk, parent_id=parent.pk if parent else None, actor=actor(request.user)
        ),
    )
    return None


class WorkspaceAdminForm(forms.ModelForm):
    # Checked by ``clean`` with the rule every door shares, not by the model's own field limits,
    # so the admin answers a bad value with the same sentence as the page, the API and the CLI.
    name = forms.CharField(required=False)
    role = forms.CharField(required=False)
    tier = forms.IntegerField(widget=forms.Select(choices=TIER_CHOICES))
    runtime = forms.CharField(required=False)
    workspace_dir = forms.CharField(required=False)

    class Meta:
        model = Workspace
        fields = ("org", "name", "role", "tier", "runtime", "parent", "workspace_dir", "spec")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        parent, org = data.get("parent"), data.get("org") or getattr(self.instance, "org", None)
        if parent is not None and org is not None and parent.org_id != org.pk:
            self.add_error("parent", "The parent must be a workspace of the same org.")
        if self.instance.pk and self.instance.status == Status.REMOVED:
            raise forms.ValidationError("A removed workspace cannot be edited.")
        # The rule every door shares (workspaces.fields), for what this form would write.
        changed = {
            name: data[name]
            for name in dispatch.EDITABLE
            if name in data and (not self.instance.pk or name in self.changed_data)
        }
        for name, whys in dispatch.edit_problems(changed).items():
            field = name if name in self.fields else None
            for why in whys:
                self.add_error(field, f"{name}: {why}" if field is None else why)
        return data


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceAdminForm
    list_display = ("name", "org", "status", "tier", "backend", "last_heartbeat_at", "parent")
    # A changelist is a constant number of queries (docs/architecture.md §11): the parent's
    # name reads its org too; the count stops at a cap; each filter has an index
    # (workspaces/models.py) and none scans the table for its choices.
    list_select_related = ("org", "parent__org")
    list_filter = ("status", "backend", TierFilter, ("org", VisibleOrgFilter))
    list_per_page = PER_PAGE
    show_full_result_count = False
    paginator = CappedPaginator
    # Newest first, served by (created_at, id); the model's ordering would join and sort orgs.
    ordering = ("-created_at", "-id")
    # "=org__slug": an org past the org filter's first 50 is found by its slug.
    search_fields = ("name", "role", "id", "instance_id", "=org__slug")
    readonly_fields = LIFECYCLE_FIELDS
    fields = WorkspaceAdminForm.Meta.fields + LIFECYCLE_FIELDS
    actions = [
        "provision_action",
        "stop_action",
        "restart_action",
        "pause_action",
        "resume_action",
        "delete_action",
        "expand_action",
        "collapse_action",
        "move_action",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workspace]:
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        return rows.filter(org__in=visible_orgs(request.user))

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
            # Through dispatch's edit service, like the API's PATCH: the same rule, the same row
            # lock, and a WORKSPACE_UPDATED event. Only what the form changed: the lifecycle
            # columns belong to dispatch and the agents, and a stale copy must not be written.
            edits = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in dispatch.EDITABLE
            }
            if edits:
                try:
                    dispatch.edit_workspace(workspace_id=obj.pk, actor=actor(request.user), **edits)
                except Refused as refused:
                    self.message_user(request, str(refused), messages.ERROR)
            obj.refresh_from_db()
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

    @admin.action(permissions=["change"], description="Expand selected leads into their teams")
    def expand_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "expand")

    @admin.action(
        permissions=["change"], description="Collapse selected leads' teams (remove members)"
    )
    def collapse_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _run_verb(self, request, queryset, "collapse")

    @admin.action(permissions=["change"], description="Move selected workspaces under a parent…")
    def move_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _move(self, request, queryset)


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
    # Constant queries at a million events (docs/architecture.md §11): a workspace's name
    # reads its org; no date hierarchy (its year links are a DISTINCT over every event), a date
    # filter instead; the count stops at a cap; (event_type|org, created_at, id) serve filters.
    list_select_related = ("workspace__org", "org")
    list_filter = ("event_type", ("org", VisibleOrgFilter), "created_at")
    list_per_page = PER_PAGE
    show_full_result_count = False
    paginator = CappedPaginator
    search_fields = ("actor", "workspace__name", "workspace__id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[StructureEvent]:
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        return rows.filter(org__in=visible_orgs(request.user))


@admin.register(OrphanSuspect)
class OrphanSuspectAdmin(ReadOnlyAdmin):
    list_display = ("backend", "instance_id", "first_seen_at")
