"""Who may see and act on what. Every view opens with one of these helpers.

Superusers see every org. Members see their orgs; owners and admins act, viewers only look.
An object of an org the user is not a member of answers 404, never 403, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from orgs.models import Org, OrgMembership

User = AbstractBaseUser | AnonymousUser


def visible_orgs(user: User) -> QuerySet[Org]:
    if not user.is_authenticated:
        return Org.objects.none()
    if user.is_superuser:
        return Org.objects.all()
    return Org.objects.filter(memberships__user=user)


def actable_orgs(user: User) -> QuerySet[Org]:
    if not user.is_authenticated:
        return Org.objects.none()
    if user.is_superuser:
        return Org.objects.all()
    return Org.objects.filter(
        memberships__user=user,
        memberships__role__in=[OrgMembership.Role.OWNER, OrgMembership.Role.ADMIN],
    )


def can_act(user: User, org_id: Any) -> bool:
    return actable_orgs(user).filter(pk=org_id).exists()


def check_visible(user: User, org_id: Any) -> None:
    if not visible_orgs(user).filter(pk=org_id).exists():
        raise Http404("No such object.")


def check_write(user: User, org_id: Any) -> None:
    """404 for outsiders, 403 for members who may only look."""
    check_visible(user, org_id)
    if not can_act(user, org_id):
        raise PermissionDenied("Viewers can look but not act on this org.")


def org_for(user: User, slug: str, *, write: bool = False) -> Org:
    """The org called ``slug`` if the user may see it (and act on it, with ``write``).

    404 for an org the user is not a member of, whether or not it exists; 403 for a viewer
    asking to act.
    """
    org = visible_orgs(user).filter(slug=slug).first()
    if org is None:
        raise Http404("No such org.")
    if write:
        check_write(user, org.pk)
    return org


def actor(user: User) -> str:
    return f"user:{user.get_username()}"
