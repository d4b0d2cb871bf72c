"""How to fill each URL kwarg (``FILL``) with a value pointing into org A, and which verb to
put in a route's URL (``VERBS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from orgs.models import Org
from tests.support.isolation.admin import ADMIN_MODELS
from tests.support.isolation.walk import Route
from tests.support.isolation.world import World

# How to fill each URL kwarg: a value pointing into org A (``own_org``: the slug of B).
FILL: dict[str, Callable[[World, Route, bool], Any]] = {
    "slug": lambda w, r, own: (w.org_b if own else w.org_a).slug,
    "workspace_id": lambda w, r, own: w.ws_a.pk,
    "event_id": lambda w, r, own: w.import_a.pk,
    "token_id": lambda w, r, own: w.victim_token.pk,
    "key_id": lambda w, r, own: w.key_a.pk,
    "key": lambda w, r, own: w.secret_key,
    "verb": lambda w, r, own: VERBS[r.key],
    # A file root (A's workspace's files are the recording backend's, in memory).
    "root": lambda w, r, own: "configs",
    # A plugin of the shipped catalogue (plugins/), not installed on A's workspace.
    "name": lambda w, r, own: "parity-probe",
    # The admin's.
    "object_id": lambda w, r, own: admin_object(w, r),
    "content_type_id": lambda w, r, own: ContentType.objects.get_for_model(Org).pk,
    "app_label": lambda w, r, own: "orgs",
    "url": lambda w, r, own: "no-such-page/",
    "id": lambda w, r, own: w.users["owner"].pk,  # the admin's user password page
    # Django's password reset confirmation: A's owner, a token that is not valid.
    "uidb64": lambda w, r, own: urlsafe_base64_encode(force_bytes(w.users["owner"].pk)),
    "token": lambda w, r, own: "set-password",
}
# A verb per route: refused from the workspace's state (online), so the owner passes the access
# check and the state machine then refuses: nothing changes.
VERBS = {"workspace-verb": "resume", "team-verb": "collapse", "api-workspace-verb": "resume"}
# URL kwargs whose value is a second object of org A beside the org in the slug: with these, the
# outsider also calls with their own org's slug (an object id from another org must not pass).
OBJECT_KWARGS = {"workspace_id", "event_id", "token_id"}


def admin_object(world: World, route: Route) -> Any:
    if route.key == "view_on_site":
        return world.org_a.pk
    label = str(route.pieces[-2]).strip("/").replace("/", ".")
    return ADMIN_MODELS[label].obj(world)
