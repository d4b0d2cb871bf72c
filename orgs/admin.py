from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orgs import key_admin  # noqa: F401  (registers the token and partner key admins)
from orgs.access import visible_orgs
from orgs.models import Org, OrgMembership, Team


class MembershipInline(admin.TabularInline):
    model = OrgMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Org)
class OrgAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "plan", "backend", "status", "created_at")
    list_filter = ("plan", "backend", "status")
    search_fields = ("slug", "name")
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Org]:
        return super().get_queryset(request).filter(pk__in=visible_orgs(request.user))


@admin.register(OrgMembership)
class OrgMembershipAdmin(admin.ModelAdmin):
    list_display = ("org", "user", "role", "created_at")
    # Related-only: the stock filter would list every org, other tenants' slugs included.
    list_filter = ("role", ("org", admin.RelatedOnlyFieldListFilter))
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrgMembership]:
        return super().get_queryset(request).filter(org__in=visible_orgs(request.user))


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "org", "lead", "created_at")
    list_filter = (("org", admin.RelatedOnlyFieldListFilter),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).filter(org__in=visible_orgs(request.user))
