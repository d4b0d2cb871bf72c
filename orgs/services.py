"""Org lifecycle for the API: create an org, archive it (the API's delete), its provision status.

Decisions:

- **Delete archives.** An org row is never removed: its workspaces and events keep pointing at
  it and stay readable. Deleting sets the status to ``archived``; an archived org's API tokens
  stop working, it takes no new workspaces, and deleting it again is "not found".
- **Refuse while live workspaces exist, unless asked to cascade.** A delete that would silently
  stop agents is the kind of surprise an operator does not want from one HTTP call. By default
  it is refused (409, with the count); with ``cascade`` every live workspace is deleted through
  ``dispatch.delete`` first (stopped, storage removed, events written), then the org archived.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orgs import fields as org_fields
from orgs.models import Backend, Org
from workspaces import dispatch
from workspaces.events import record as record_event
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, Workspace

MAX_SLUG = org_fields.MAX_SLUG
RESERVED_SLUGS = org_fields.RESERVED_SLUGS
MAX_NAME = org_fields.MAX_NAME


class OrgNotFound(Exception):
    """No such org in reach (an archived org counts as not found for a second delete)."""


def create_org(
    *,
    slug: object,
    name: object,
    actor: str,
    plan: object = Org.Plan.FREE,
    backend: object = Backend.LOCAL,
    via: str = "api",
    privileged_tiers: bool = False,
) -> Org:
    """Create an org; writes ORG_CREATED. ``ValidationError`` with field errors otherwise.

    ``privileged_tiers`` is the operator's trust (``Org.privileged_tiers``): no tenant-facing
    door passes it; the parity check's scratch orgs do, to verify what T3 and T4 grant.
    """
    # The rule every door shares (orgs/fields.py): the API, org import, the demo, parity.
    checks = {
        "slug": (org_fields.slug_problem, slug),
        "name": (org_fields.name_problem, name),
        "plan": (org_fields.plan_problem, plan),
        "backend": (org_fields.backend_problem, backend),
    }
    errors = {field: [why] for field, (rule, value) in checks.items() if (why := rule(value))}
    if errors:
        raise ValidationError(errors)
    assert isinstance(slug, str) and isinstance(name, str)
    taken = ValidationError({"slug": [f"an org with slug {slug!r} already exists"]})
    with transaction.atomic():
        if Org.objects.filter(slug=slug).exists():
            raise taken
        try:
            with transaction.atomic():
                org = Org.objects.create(
                    slug=slug,
                    name=name.strip(),
                    plan=plan,
                    backend=backend,
                    privileged_tiers=privileged_tiers,
                )
        except IntegrityError:
            raise taken from None  # created by a concurrent request since the check above
        record_event(
            EventType.ORG_CREATED,
            org_id=org.pk,
            actor=actor,
            payload={
                "slug": org.slug,
                "name": org.name,
                "via": via,
                **({"privileged_tiers": True} if privileged_tiers else {}),
            },
        )
        return org


def require_env(org: Org, names: list[str]) -> None:
    """Add ``names`` to the variables every agent of the org needs (org import's required_env).

    Kept on the org so that team expand, long after the import, still knows them.
    """
    merged = sorted(set(org.required_env) | set(names))
    if merged != sorted(org.required_env):
        org.required_env = merged
        org.save(update_fields=["required_env"])


def _live(org: Org) -> list[Workspace]:
    return list(
        Workspace.objects.filter(org=org).exclude(status=Status.REMOVED).order_by("created_at")
    )


def archive_org(*, org_id: Any, actor: str, cascade: bool = False) -> list[str]:
    """Archive an org (the API's delete); returns the ids of the workspaces it deleted.

    ``Refused`` while the org has live workspaces and ``cascade`` is false; ``OrgNotFound`` when
    it is already archived. With ``cascade`` each live tree is deleted through dispatch (which
    locks and cascades to descendants) in this same transaction, then the org is archived.
    """
    with transaction.atomic():
        org = Org.objects.select_for_update().filter(pk=org_id).first()
        if org is None or org.status == Org.OrgStatus.ARCHIVED:
            raise OrgNotFound(f"No org {org_id} to delete.")
        live = _live(org)
        if live and not cascade:
            raise Refused(
                f"Cannot delete org {org.slug!r}: it has {len(live)} live workspace(s). Delete "
                "them first, or ask for cascade=true to delete them all through dispatch."
            )
        deleted: list[str] = []
        live_ids = {ws.pk for ws in live}
        # The top of each live tree: deleting it cascades to everything below it.
        for workspace in live:
            if workspace.parent_id is None or workspace.parent_id not in live_ids:
                result = dispatch.delete(workspace_id=workspace.pk, actor=actor)
                deleted += [str(ws.pk) for ws in result.moved]
        org.status = Org.OrgStatus.ARCHIVED
        org.save(update_fields=["status"])
        record_event(
            EventType.ORG_ARCHIVED,
            org_id=org.pk,
            actor=actor,
            payload={"slug": org.slug, "cascade": cascade, "workspaces_deleted": deleted},
        )
        return deleted


def provision_status(org: Org) -> dict[str, Any]:
    """Where the org's workspaces are on their way up, for a partner polling after create.

    ``phase``: ``archived`` (the org was deleted), ``empty`` (no live workspace),
    ``provisioning`` (some still starting), ``failed`` (none starting, some failed), ``ready``
    (all online), otherwise ``partial`` (e.g. some paused or offline).
    """
    counts = Counter(
        Workspace.objects.filter(org=org)
        .exclude(status=Status.REMOVED)
        .values_list("status", flat=True)
    )
    total = sum(counts.values())
    if org.status == Org.OrgStatus.ARCHIVED:
        phase = "archived"
    elif total == 0:
        phase = "empty"
    elif counts[Status.PROVISIONING]:
        phase = "provisioning"
    elif counts[Status.FAILED]:
        phase = "failed"
    elif counts[Status.ONLINE] == total:
        phase = "ready"
    else:
        phase = "partial"
    return {
        "org": org.slug,
        "org_status": org.status,
        "phase": phase,
        "workspaces": total,
        "by_status": {s.value: counts.get(s.value, 0) for s in Status if s != Status.REMOVED},
    }
