"""The admin: each model admin's rules (``ADMIN_MODELS``), the URLs Django makes for one
(``ADMIN_ACTIONS``) and the admin site's own views (``ADMIN_SITE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orgs.models import OrgMembership
from tests.support.isolation.expect import Expect
from tests.support.isolation.request import Request, get
from tests.support.isolation.world import World

HERE = "tests/support/isolation/admin.py"


@dataclass(frozen=True)
class AdminModel:
    """A model admin's rules. ``scope``: "org" (rows of one org: staff see their orgs' only),
    "global" (rows of no org, for every staff with the permission), "locked" (nothing for the
    staff here: superuser-only, or permissions they do not hold).
    ``add``/``delete``: whether staff with the permission may add / delete at all.
    ``markers``: A's markers its changelist shows A's staff. ``add_post``: a form adding a row
    into org A, which only A's owner may do (the status they get: ``add_status``);
    ``change_post``: a form changing A's object, which only A's owner may do."""

    scope: str
    obj: Callable[[World], Any]
    add: bool = True
    delete: bool = True
    markers: tuple[str, ...] = ()
    add_post: Callable[[World], dict[str, Any]] | None = None
    add_status: int = 302
    change_post: Callable[[World], dict[str, Any]] | None = None
    # The add form opens only for staff who may act on some org (a viewer-only staff: 403).
    add_needs_acting: bool = False


ADMIN_MODELS: dict[str, AdminModel] = {
    "orgs.org": AdminModel(
        "org",
        lambda w: w.org_a.pk,
        # Creating and deleting orgs is for superusers; a tenant's staff archive through the API.
        add=False,
        delete=False,
        markers=("slug", "org"),
        change_post=lambda w: {
            "slug": w.org_a.slug,
            "name": "Renamed",
            "plan": w.org_a.plan,
            "backend": w.org_a.backend,
            "status": w.org_a.status,
            # The membership inline, sent empty: the rows it has stay as they are.
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    ),
    "orgs.orgmembership": AdminModel(
        "org",
        lambda w: w.membership_a.pk,
        markers=("viewer",),
        add_post=lambda w: {
            "org": w.org_a.pk,
            "user": w.users["outsider"].pk,
            "role": OrgMembership.Role.OWNER,
        },
        add_needs_acting=True,
        # The viewer's own membership, made an owner.
        change_post=lambda w: {
            "org": w.org_a.pk,
            "user": w.users["viewer"].pk,
            "role": OrgMembership.Role.OWNER,
        },
    ),
    # Read-only: Team rows are written by dispatch's team verbs alone.
    "orgs.team": AdminModel(
        "org", lambda w: w.team_a.pk, add=False, delete=False, markers=("team",)
    ),
    "orgs.orgapitoken": AdminModel(
        "org",
        lambda w: w.victim_token.pk,
        delete=False,
        markers=("victim", "token"),
        add_post=lambda w: {"org": w.org_a.pk, "name": "added"},
        add_status=200,  # the page that shows the plaintext once
    ),
    "orgs.partnerapikey": AdminModel("locked", lambda w: w.key_a.pk),
    "workspaces.workspace": AdminModel(
        "org",
        lambda w: w.ws_a.pk,
        delete=False,
        markers=("workspace", "workspace2"),
        add_post=lambda w: {
            "org": w.org_a.pk,
            "name": "Added",
            "role": "",
            "tier": "2",
            "runtime": "langgraph",
            "parent": "",
            "workspace_dir": "",
            "spec": "{}",
        },
        change_post=lambda w: {
            "name": "Renamed",
            "role": "",
            "tier": "2",
            "runtime": "langgraph",
            "workspace_dir": "",
            "spec": "{}",
        },
    ),
    "workspaces.structureevent": AdminModel(
        "org", lambda w: w.import_a.pk, add=False, delete=False, markers=("actor",)
    ),
    "workspaces.orphansuspect": AdminModel(
        "global", lambda w: w.orphan.pk, add=False, delete=False
    ),
    "auth.user": AdminModel("locked", lambda w: w.users["owner"].pk),
    "auth.group": AdminModel("locked", lambda w: w.group.pk),
}

# The model admin URLs Django makes, by their last piece.
ADMIN_ACTIONS = {
    "": "changelist",
    "add/": "add",
    "<path:object_id>/history/": "history",
    "<path:object_id>/delete/": "delete",
    "<path:object_id>/change/": "change",
    "<path:object_id>/": "redirect",  # the pre-1.9 change URL, redirected
    "<id>/password/": "password",  # UserAdmin's
}

# The admin site's own views: what its staff get (B's staff, when 200, see nothing of A's),
# and what a logged-out caller or a member who is not staff gets (the admin's login if None).
ADMIN_SITE: dict[str, tuple[Request, Expect, Expect | None]] = {
    "index": (get(), Expect(200), None),
    "login": (get(), Expect(302, location="{admin}"), Expect(200)),
    # Logged out, logging out goes to the index (then the login); staff must POST.
    "logout": (get(), Expect(405), Expect(302, location="{admin}")),
    "password_change": (get(), Expect(200), None),
    "password_change_done": (get(), Expect(200), None),
    # Users are the auth app's, whose permissions the staff here do not hold.
    "autocomplete": (
        Request("GET", "?app_label=orgs&model_name=orgmembership&field_name=user&term="),
        Expect(403),
        None,
    ),
    "jsi18n": (get(), Expect(200), None),
    # The console's models have no get_absolute_url: nothing to redirect to, for anyone.
    "view_on_site": (get(), Expect(404), None),
    "app_list": (get(), Expect(200), None),
    "(?P<url>.*)$": (get(), Expect(404), None),
}
