"""The secrets of a team's members across a collapse and the expand that recreates them.

Collapse removes every workspace below a lead, and their secrets would go with them: the agents
that expand recreates would start without the credentials they had (the org's ``required_env``
among them), and nothing would say so. So collapse sets each member's secrets aside, re-sealed
for the lead and for the member's place in the team (``TeamSecret``), and expand gives them back
to the member it recreates in that place. A member that still lacks a variable its org requires
inherits the lead's value of it; when the lead has none either, expand refuses with the names.

Values stay sealed throughout: they are opened only to be sealed again for their new owner, in
``workspaces.vault``'s format, inside the verb's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from workspaces import vault
from workspaces.lifecycle import Refused
from workspaces.models import TeamSecret, Workspace, WorkspaceSecret


def _path(names: Iterable[str]) -> str:
    # JSON, not a separator: a workspace name may contain any character.
    return json.dumps(list(names), ensure_ascii=False)


def _member_paths(lead: Workspace, members: list[Workspace]) -> dict[Any, list[str]]:
    by_id = {ws.pk: ws for ws in members}
    paths: dict[Any, list[str]] = {lead.pk: []}

    def path_of(ws: Workspace) -> list[str]:
        if ws.pk not in paths:
            parent = by_id.get(ws.parent_id)
            paths[ws.pk] = [*(path_of(parent) if parent else []), ws.name]
        return paths[ws.pk]

    for ws in members:
        path_of(ws)
    return paths


def set_aside(lead: Workspace, members: list[Workspace]) -> dict[str, list[str]]:
    """Keep the secrets of ``members`` (the lead's descendants, locked) sealed for the lead.

    Returns the key names set aside by member path (" / "-joined names), for the event.
    """
    paths = _member_paths(lead, members)
    ring = vault.keyring()
    kept: dict[str, list[str]] = {}
    for member in members:
        member_path = _path(paths[member.pk])
        for secret in WorkspaceSecret.objects.filter(workspace=member).order_by("key"):
            value = vault.open_blob(
                secret.value_encrypted, workspace_id=member.pk, key=secret.key, ring=ring
            )
            blob = vault.seal_with(value, aad=vault.team_aad(lead.pk, member_path, secret.key))
            TeamSecret.objects.update_or_create(
                lead=lead,
                member_path=member_path,
                key=secret.key,
                defaults={"value_encrypted": blob},
            )
            kept.setdefault(" / ".join(paths[member.pk]), []).append(secret.key)
    return kept


def restore(
    lead: Workspace, member: Workspace, *, actor: str, dropped: list[str] | None = None
) -> list[str]:
    """Give ``member``, just recreated under ``lead``, what was set aside for its place.

    Secrets of the member itself become its secrets again; those of its own descendants are set
    aside under it, for when it is expanded in turn. Returns the keys the member got; a kept
    secret whose name today's rule refuses (it was set before the rule) is dropped, its name
    added to ``dropped``, rather than handed to an agent.
    """
    ring = vault.keyring()
    restored = []
    for row in TeamSecret.objects.filter(lead=lead).order_by("member_path", "key"):
        names = json.loads(row.member_path)
        if not names or names[0] != member.name:
            continue
        if vault.key_problem(row.key):
            if dropped is not None:
                dropped.append(f"{' / '.join(names)}: {row.key}")
            row.delete()
            continue
        where = f"the set-aside secret {row.key!r} of {member.name!r}"
        value = vault.open_with(
            row.value_encrypted,
            aad=vault.team_aad(lead.pk, row.member_path, row.key),
            where=where,
            ring=ring,
        )
        if len(names) == 1:
            vault.set_secret(
                workspace_id=member.pk,
                key=row.key,
                value=value,
                actor=actor,
                origin=f"kept by the collapse of {lead.name}",
            )
            restored.append(row.key)
        else:
            rest = _path(names[1:])
            TeamSecret.objects.update_or_create(
                lead=member,
                member_path=rest,
                key=row.key,
                defaults={
                    "value_encrypted": vault.seal_with(
                        value, aad=vault.team_aad(member.pk, rest, row.key)
                    )
                },
            )
        row.delete()
    return restored


def give_required(lead: Workspace, member: Workspace, *, required: list[str], actor: str) -> None:
    """Make sure ``member`` has every variable its org requires, from the lead if need be.

    ``Refused`` naming the missing variables when neither the member nor the lead has them: an
    agent started without a credential its org requires only fails later, and less clearly.
    """
    have = set(WorkspaceSecret.objects.filter(workspace=member).values_list("key", flat=True))
    missing = [name for name in required if name not in have]
    if not missing:
        return
    from_lead = {
        secret.key: secret
        for secret in WorkspaceSecret.objects.filter(workspace=lead, key__in=missing)
    }
    lacking = [name for name in missing if name not in from_lead]
    if lacking:
        names = ", ".join(lacking)
        raise Refused(
            f"Cannot expand workspace {lead.name!r}: its org requires {names}, and "
            f"{member.name!r} would start without it. Set {names} as a secret of "
            f"{lead.name!r} (the members it creates inherit it) and expand again."
        )
    for name in missing:
        value = vault.open_blob(from_lead[name].value_encrypted, workspace_id=lead.pk, key=name)
        vault.set_secret(
            workspace_id=member.pk,
            key=name,
            value=value,
            actor=actor,
            origin=f"inherited from {lead.name} (the org requires it)",
        )


def discard(leads: Iterable[Workspace]) -> int:
    """Drop what was set aside for removed leads: nothing can expand them any more."""
    deleted, _ = TeamSecret.objects.filter(lead__in=list(leads)).delete()
    return deleted
