"""Pieces of the admin's changelists whose cost does not grow with the fleet (docs/architecture.md
§11): a count that stops counting, filters whose choices never scan the listed table."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from orgs.access import visible_orgs
from workspaces.tiers import TIER_CHOICES

# Past this many rows the changelist says "10000" and offers 200 pages: nobody pages further
# by hand, and counting a million events would cost more than the page itself.
COUNT_CAP = 10_000
PER_PAGE = 50


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows (``SELECT COUNT(*) FROM (… LIMIT cap)``)."""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet):
            return rows[:COUNT_CAP].count()
        return min(len(rows), COUNT_CAP)


# The org filter lists at most this many orgs (by slug), and the one chosen.
ORG_CHOICES = 50


class VisibleOrgFilter(admin.RelatedFieldListFilter):
    """The orgs the user may see, read from the orgs table: the stock filter lists every org
    (other tenants' slugs included), and the related-only one scans the listed table for the
    distinct orgs in it. A thousand orgs are not listed: the first ``ORG_CHOICES`` are, and
    the others are chosen from the org's admin page or by the changelist's search (its slug).
    """

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[Any]:
        orgs = visible_orgs(request.user)
        picked = [v for v in self.lookup_val or [] if str(v).isdigit()]
        chosen = Q(pk__in=[int(v) for v in picked[:1]])
        first = orgs.order_by("slug").values("pk")[:ORG_CHOICES]
        return list(orgs.filter(Q(pk__in=first) | chosen).values_list("pk", "slug"))


class TierFilter(admin.SimpleListFilter):
    """The tiers from their table, not from a DISTINCT over every workspace."""

    title = "tier"
    parameter_name = "tier"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), label) for value, label in TIER_CHOICES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Model]) -> QuerySet[Model]:
        value = self.value()
        if value and value in {str(v) for v, _ in TIER_CHOICES}:
            return queryset.filter(tier=int(value))
        return queryset
