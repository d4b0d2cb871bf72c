"""Org import: a YAML file (docs/architecture.md §10) becomes an org and its whole team tree.

Everything is validated before anything is written, and every problem names its line::

    line 9: workspaces[0].children[1].tier: unknown tier 9: use 1, 2, 3 or 4

A bad file creates nothing. A valid one creates the org (unless imported into an existing one),
every workspace through ``dispatch.create_workspace`` (so each is provisioned through dispatch
when the transaction commits), a Team row for every lead, and one ORG_IMPORTED event whose payload
lists the ids it created (the progress page reads them from there) — all in one transaction.

Decisions (also in the README):

- **Aliases are refused.** YAML anchors and aliases (``&a`` / ``*a``) are the only way a YAML file
  can describe a cycle (a workspace that contains itself) or a tree far bigger than the file
  (nested aliases). An alias that points into its own anchor is reported as a cycle; any other
  alias is refused too, with the line of its anchor: write each workspace out. Merge keys
  (``<<``) are refused with them.
- **A new org, or ``into`` an existing one.** Without ``into`` the file's ``slug`` must be new
  (a clash is an error that says how to import into that org instead). With ``into`` the tree is
  added to that org: the file's ``name`` and ``slug`` are then optional and ignored, a ``backend``
  in the file must match the org's, and top-level names must not clash with the org's live
  top-level workspaces (siblings keep distinct names).
- **required_env names values the importer must be given.** ``required_env: [OPENAI_API_KEY]``
  means the agents need that variable: the import is refused unless a value is provided with it
  (``env``: the command takes them from its own environment or ``--env NAME=VALUE``; the page
  from its environment box). Each value is stored as a secret of every imported workspace
  (``workspaces.vault``, AES-256-GCM) in the same transaction, so every agent starts with it.
  Values never appear in events, errors or pages; the names follow the secrets' rules (no
  ``MOLECULE_*``, no ``PATH``).
- **The backend must be one this console runs.** An unknown name is an error; so is a known
  backend this console is not configured for, since every workspace would fail at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orgs import fields as org_fields
from orgs import services as org_services
from orgs.models import Backend, Org, OrgMembership
from orgs.orgfile import InvalidOrgFile, Parsed, Problem, parse
from workspaces import dispatch, teamspec, vault
from workspaces import fields as workspace_fields
from workspaces.events import record as record_event
from workspaces.models import EventType, Status, StructureEvent, Workspace

TOP_KEYS = {"name", "slug", "backend", "plan", "defaults", "required_env", "workspaces"}
DEFAULT_KEYS = {"tier", "runtime"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ImportResult:
    org: Org
    created_org: bool
    event: StructureEvent
    workspaces: list[Workspace]
    teams: int


# --- validation ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """A validated file, ready to write."""

    name: str
    slug: str
    backend: str
    plan: str
    defaults: dict[str, Any]
    required_env: list[str]
    workspaces: list[dict[str, Any]]
    into: Org | None


def _org_problems(data: dict[str, Any], into: Org | None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if into is not None and into.status == Org.OrgStatus.ARCHIVED:
        problems.append(("", f"the org {into.slug!r} is archived: it takes no new workspaces"))
    name, slug = data.get("name"), data.get("slug")
    # The rule every door shares (orgs/fields.py), then what only a new org must be.
    if (into is None or "name" in data) and (why := org_fields.name_problem(name)):
        problems.append(("name", why))
    if into is None or "slug" in data:
        if why := org_fields.slug_problem(slug):
            problems.append(("slug", why))
        elif into is None and Org.objects.filter(slug=slug).exists():
            problems.append(
                (
                    "slug",
                    f"an org with slug {slug!r} already exists: import into it "
                    f"(manage.py import_org FILE --org {slug}, or choose it under "
                    "'Into org' on the import page) or change the slug",
                )
            )
    if "plan" in data and (why := org_fields.plan_problem(data["plan"])):
        problems.append(("plan", why))
    return problems


def _backend_problems(data: dict[str, Any], into: Org | None) -> list[tuple[str, str]]:
    backend = data.get("backend", into.backend if into else Backend.LOCAL)
    if why := org_fields.backend_problem(backend):
        return [("backend", why)]
    if into is not None and backend != into.backend:
        return [
            (
                "backend",
                f"the org {into.slug!r} runs new workspaces on {into.backend!r}, not {backend!r}",
            )
        ]
    # An unsaved Org is enough for dispatch to answer for "this org's new workspaces".
    if not dispatch.has_backend(org=Org(backend=backend)):
        where = "backend" if "backend" in data else ""
        return [
            (
                where,
                f"the {backend!r} backend is not configured on this console (MOLECULE_BACKENDS), "
                "so every workspace would fail",
            )
        ]
    return []


def _defaults_problems(defaults: object) -> list[tuple[str, str]]:
    if not isinstance(defaults, dict):
        return [("defaults", "must be a mapping, e.g. {runtime: langgraph, tier: 2}")]
    problems = [(f"defaults.{k}", "unknown key") for k in defaults if k not in DEFAULT_KEYS]
    # The same rule as the field it is the default of.
    problems += [
        (f"defaults.{key}", why)
        for key in ("tier", "runtime")
        if key in defaults and (why := workspace_fields.CHECKS[key](defaults[key]))
    ]
    return problems


def _env_problems(required: object, env: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(required, list):
        return [("required_env", "must be a list of environment variable names")]
    problems = []
    for number, name in enumerate(required):
        path = f"required_env[{number}]"
        if not isinstance(name, str) or not ENV_NAME.match(name):
            problems.append((path, f"{name!r} is not an environment variable name"))
        elif why := vault.key_problem(name):
            # The values become workspace secrets, so the names follow the secrets' rules.
            problems.append((path, f"cannot name a secret: {why}"))
        elif not env.get(name):
            problems.append(
                (
                    path,
                    f"{name} is required by this file but no value was provided "
                    f"(the command reads it from its environment or --env {name}=VALUE; "
                    "the page from its environment box)",
                )
            )
        elif why := vault.value_problem(env[name]):
            problems.append((path, f"the value given for {name} {why}"))
    return problems


def _tree_problems(nodes: object, into: Org | None) -> list[tuple[str, str]]:
    if not isinstance(nodes, list) or not nodes:
        return [("workspaces", "is required: a list of at least one workspace")]
    # Node by node with the rule every door shares, and at most fields.MAX_TEAM in all.
    problems = teamspec.children_problems(nodes, "workspaces")
    if problems:
        return problems
    if into is not None:
        taken = set(
            into.workspaces.filter(parent=None)
            .exclude(status=Status.REMOVED)
            .values_list("name", flat=True)
        )
        problems += [
            (
                f"workspaces[{number}].name",
                f"the org {into.slug!r} already has a top-level workspace {node['name']!r}",
            )
            for number, node in enumerate(nodes)
            if node["name"] in taken
        ]
    return problems


def _tier_problems(data: dict[str, Any], into: Org | None) -> list[tuple[str, str]]:
    """Tiers above what the org may use on its backend (dispatch's tier policy)."""
    nodes, defaults = data.get("workspaces"), data.get("defaults")
    if not isinstance(nodes, list) or not isinstance(defaults or {}, dict):
        return []  # reported by the other checks
    backend = into.backend if into else data.get("backend", Backend.LOCAL)
    # A new org is not trusted with privileged tiers: an operator allows them afterwards.
    org = into or Org(slug=str(data.get("slug", "")), backend=str(backend))
    default = (defaults or {}).get("tier", 2)
    problems = []
    stack = [(f"workspaces[{n}]", node) for n, node in enumerate(nodes)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        tier = node.get("tier", default)
        if why := dispatch.tier_refusal(org, str(backend), tier):
            problems.append((f"{path}.tier" if "tier" in node else "defaults.tier", why))
        children = node.get("children") or []
        if isinstance(children, list):
            stack += [(f"{path}.children[{n}]", child) for n, child in enumerate(children)]
    return problems


def validate(
    text: str, *, into: Org | None = None, env: Mapping[str, str] | None = None
) -> tuple[Parsed, Plan]:
    """Check the whole file against the rules above; ``InvalidOrgFile`` lists every problem."""
    parsed = parse(text)
    data = parsed.data
    if not isinstance(data, dict):
        raise InvalidOrgFile(
            [Problem(1, "", "the file must be a mapping with name, slug and workspaces")]
        )
    found = [(str(key), "unknown key") for key in data if key not in TOP_KEYS]
    found += _org_problems(data, into)
    found += _backend_problems(data, into)
    found += _defaults_problems(data.get("defaults", {}))
    found += _env_problems(data.get("required_env", []), env or {})
    found += _tree_problems(data.get("workspaces"), into)
    if not found:
        found += _tier_problems(data, into)
    if found:
        raise InvalidOrgFile([Problem(parsed.line_of(path), path, msg) for path, msg in found])
    return parsed, Plan(
        name=data.get("name", ""),
        slug=data.get("slug", ""),
        backend=into.backend if into else data.get("backend", Backend.LOCAL),
        plan=data.get("plan", Org.Plan.FREE),
        defaults=data.get("defaults", {}),
        required_env=data.get("required_env", []),
        workspaces=data["workspaces"],
        into=into,
    )


# --- writing ------------------------------------------------------------------------------------


def import_org(
    text: str,
    *,
    actor: str,
    into: Org | None = None,
    env: Mapping[str, str] | None = None,
    owner: AbstractBaseUser | None = None,
    source: str = "",
) -> ImportResult:
    """Validate ``text`` and create the org and its tree in one transaction.

    ``into``: add the tree to this existing org instead of creating one. ``env``: values for the
    file's ``required_env`` (checked, then stored as a secret of every imported workspace).
    ``owner``: made the new org's owner (ignored with ``into``). ``source``: a file name for the
    event. Raises ``InvalidOrgFile`` and writes nothing when the file is not valid.
    Every workspace is provisioned through dispatch once the transaction commits.
    """
    with transaction.atomic():
        if into is not None:
            # Two imports into one org must not both pass the sibling-name check.
            into = Org.objects.select_for_update().get(pk=into.pk)
        parsed, plan = validate(text, into=into, env=env)
        org, created_org = into, False
        if org is None:
            try:
                # A savepoint: a slug taken between the check and the insert (the unique index
                # decides) must not break the outer transaction before we can report it.
                with transaction.atomic():
                    org = org_services.create_org(
                        slug=plan.slug,
                        name=plan.name,
                        plan=plan.plan,
                        backend=plan.backend,
                        actor=actor,
                        via="import",
                    )
            except (IntegrityError, ValidationError):
                message = f"an org with slug {plan.slug!r} already exists"
                raise InvalidOrgFile([Problem(parsed.line_of("slug"), "slug", message)]) from None
            created_org = True
            if owner is not None and not owner.is_superuser:
                OrgMembership.objects.create(org=org, user=owner, role=OrgMembership.Role.OWNER)
        # Before the tree: expand reads it to give recreated members what the org requires.
        org_services.require_env(org, plan.required_env)
        created: list[Workspace] = []
        teams = _create_tree(
            plan.workspaces,
            org=org,
            parent=None,
            plan=plan,
            env=env or {},
            actor=actor,
            out=created,
        )
        event = record_event(
            EventType.ORG_IMPORTED,
            org_id=org.pk,
            actor=actor,
            payload={
                "source": source,
                "created_org": created_org,
                "workspaces": [str(w.pk) for w in created],
                "counts": {"workspaces": len(created), "teams": teams},
                # Names only: values are secrets.
                "required_env": list(plan.required_env),
            },
        )
        return ImportResult(org, created_org, event, created, teams)


def _create_tree(
    nodes: list[dict[str, Any]],
    *,
    org: Org,
    parent: Workspace | None,
    plan: Plan,
    env: Mapping[str, str],
    actor: str,
    out: list[Workspace],
) -> int:
    """Create ``nodes`` and their descendants depth-first; returns how many teams it made."""
    teams = 0
    for node in nodes:
        workspace = dispatch.create_workspace(
            org=org,
            parent=parent,
            actor=actor,
            **teamspec.creation_fields(node, defaults=plan.defaults),
        )
        out.append(workspace)
        for name in plan.required_env:
            # In this transaction, so the secret is there when the agent is first started.
            vault.set_secret(workspace_id=workspace.pk, key=name, value=env[name], actor=actor)
        children = node.get("children") or []
        if children:
            # Its Team row comes with its first member (dispatch.create_workspace).
            teams += 1 + _create_tree(
                children, org=org, parent=workspace, plan=plan, env=env, actor=actor, out=out
            )
    return teams
