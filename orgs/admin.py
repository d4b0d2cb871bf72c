"""Admin for orgs, memberships and teams, scoped like every page: see your orgs, act on the
ones you own or administer (docs/architecture.md §9). Creating or deleting an org is for
superusers; teams are read-only here (dispatch writes them)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orgs import fields as org_fields
from orgs import key_admin  # noqa: F401  (registers the token and partner key admins)
from orgs.access import actable_orgs, can_act, visible_orgs
from orgs.models import Org, OrgMembership, Team
from workspaces.admin_lists import PER_PAGE, VisibleOrgFilter
from workspaces.models import Status, Workspace


class OrgScopedAdmin(admin.ModelAdmin):
    """Rows of the user's orgs only; changes only where the user may act (not as a viewer)."""

    org_field = "org"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(**{f"{self.org_field}__in": visible_orgs(request.user)})
        )

    def _org_id(self, obj: Any) -> Any:
        return getattr(obj, f"{self.org_field}_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and actable_orgs(request.user).exists()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can_act(request.user, self._org_id(obj)))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or can_act(request.user, self._org_id(obj)))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Dropdowns list only what the user may act on: never another tenant's names.
        if db_field.name == "org":
            kwargs["queryset"] = actable_orgs(request.user)
        elif db_field.related_model is Workspace:
            kwargs["queryset"] = Workspace.objects.filter(
                org__in=actable_orgs(request.user)
            ).exclude(status=Status.REMOVED)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    model = OrgMembership
    extra = 0
    autocomplete_fields = ["user"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_add_permission(request, obj) and (
            obj is None or can_act(request.user, obj.pk)
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and (
            obj is None or can_act(request.user, obj.pk)
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and (
            obj is None or can_act(request.user, obj.pk)
        )


class OrgForm(forms.ModelForm):
    """The org's slug and name by the rule every door shares (orgs/fields.py)."""

    class Meta:
        model = Org
        fields = ("slug", "name", "plan", "backend", "status", "required_env", "privileged_tiers")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for field, rule in (("slug", org_fields.slug_problem), ("name", org_fields.name_problem)):
            if field in data and field in self.changed_data and (why := rule(data[field])):
                self.add_error(field, why)
        return data


@admin.register(Org)
class OrgAdmin(OrgScopedAdmin):
    form = OrgForm
    list_display = ("slug", "name", "plan", "backend", "status", "created_at")
    list_filter = ("plan", "backend", "status")
    list_per_page = PER_PAGE
    show_full_result_count = False
    search_fields = ("slug", "name")
    inlines = [MembershipInline]
    org_field = "pk"

    def _org_id(self, obj: Any) -> Any:
        return obj.pk

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Trusting an org with tiers that reach the host is the operator's call, never its own.
        return () if request.user.is_superuser else ("privileged_tiers",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Orgs are archived (their history stays), never deleted by a tenant's own staff.
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(OrgMembership)
class OrgMembershipAdmin(OrgScopedAdmin):
    list_display = ("org", "user", "role", "created_at")
    list_select_related = ("org", "user")
    # The user's orgs only: the stock filter would list every org, other tenants' slugs included.
    list_filter = ("role", ("org", VisibleOrgFilter))
    list_per_page = PER_PAGE
    show_full_result_count = False
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(OrgScopedAdmin):
    """Read-only: a Team row is written only by dispatch's team code (expand, collapse, move,
    creating a member), so the admin shows teams and their leads but never edits them."""

    list_display = ("name", "org", "lead", "created_at")
    # The lead's name reads its org: joined, not a query per row.
    list_select_related = ("org", "lead__org")
    list_filter = (("org", VisibleOrgFilter),)
    list_per_page = PER_PAGE
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
