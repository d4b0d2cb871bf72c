"""Org import: a YAML file or a Molecule org template (docs/architecture.md §10) becomes an org
and its whole team tree.

Everything is validated before anything is written, and every problem names its file and line::

    line 9: workspaces[0].children[1].tier: unknown tier 9: use 1, 2, 3 or 4
    teams/dev.yaml line 12: workspaces[0].children[3].role: is longer than 200 characters

A bad file creates nothing. A valid one creates the org (unless imported into an existing one),
every workspace through ``dispatch.create_workspaces`` (so each is provisioned through dispatch
when the transaction commits) with its template settings (``Workspace.template``), its files
(``WorkspaceFile``) and its secrets, a Team row for every lead, and one ORG_IMPORTED event whose
payload lists the ids it created (the progress page reads them from there) — all in one
transaction, in bulk: one INSERT per depth level of the tree, one each for the teams, the files
(20 a statement), the secrets and the events, and one message per 100 starts, so an import is
about 25 statements whatever its size (tests/orgs/test_import_scale.py).

The source is one file (pasted, uploaded, ``import_org FILE``) or a template directory
(``import_org DIR``, or a ``.zip``/``.tar.gz`` of it on the page: orgs/archive.py) whose
``org.yaml`` may ``!include`` other files (orgs/include.py). Molecule's keys and how they are
resolved are in orgs/templates.py.

Decisions (also in the README):

- **Aliases are refused.** YAML anchors and aliases (``&a`` / ``*a``) are the only way a YAML file
  can describe a cycle (a workspace that contains itself) or a tree far bigger than the file
  (nested aliases). An alias that points into its own anchor is reported as a cycle; any other
  alias is refused too, with the line of its anchor: write each workspace out. Merge keys
  (``<<``) are refused with them. ``!include`` cycles are refused with every file and line.
- **A new org, or ``into`` an existing one.** Without ``into`` the file makes a new org: its
  ``slug`` must be new (a clash is an error that says how to import into that org instead); with
  no ``slug`` one is made from ``name`` (``Acme Lab`` → ``acme-lab``, then ``acme-lab-2`` … while
  taken). With ``into`` the tree is added to that org: the file's ``name`` and ``slug`` are then
  optional and ignored, a ``backend`` in the file must match the org's, and top-level names must
  not clash with the org's live top-level workspaces (siblings keep distinct names).
- **``parent``** (a top-level workspace entry only, importing ``into`` an org): the name of a live
  top-level workspace of that org; the entry and its team are created under it and appended to
  its team spec (through ``dispatch.edit_workspace``), so collapsing and expanding it brings them
  back. Molecule has no such key; nesting under ``children`` is how a template says the rest.
- **required_env names values the importer must be given.** ``required_env: [OPENAI_API_KEY]``
  means the agents need that variable: the import is refused unless a value is provided with it
  (``env``: the command takes them from its own environment or ``--env NAME=VALUE``; the page
  from its environment box). ``{any_of: [A, B]}`` needs any one of them. Workspaces may list
  their own (Molecule's union). ``recommended_env`` is the same, but a missing one is a warning,
  not a refusal. Each value given is stored as a secret of every imported workspace
  (``workspaces.vault``, AES-256-GCM) in the same transaction, so every agent starts with it.
  Values never appear in events, errors or pages; the names follow the secrets' rules (no
  ``MOLECULE_*``, no ``PATH``).
- **The backend must be one this console runs.** An unknown name is an error; so is a known
  backend this console is not configured for, since every workspace would fail at once.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from orgs import fields as org_fields
from orgs import services as org_services
from orgs.include import parse_tree
from orgs.models import Backend, Org, OrgMembership
from orgs.orgfile import InvalidOrgFile, Parsed, Problem, parse
from orgs.templates import Member, Requirement, resolve, unknown_key
from orgs.tree import Tree
from workspaces import dispatch, teamspec, vault
from workspaces import template_fields as tf
from workspaces.events import record as record_event
from workspaces.models import EventType, Status, StructureEvent, Workspace, WorkspaceFile

TOP_KEYS = {
    "name",
    "slug",
    "backend",
    "plan",
    "defaults",
    "required_env",
    "recommended_env",
    "workspaces",
    "description",
    "template_schema_version",
    "global_memories",
}
# The template_schema_version values this console reads (Molecule's templates say 1).
log = logging.getLogger(__name__)

SCHEMA_VERSIONS = (1,)
# Template files per INSERT: a file is at most 256 KiB, so a statement stays a few MiB.
FILES_PER_INSERT = 20
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
ENV_HOW = (
    "the command reads it from its environment or --env {name}=VALUE; "
    "the page from its environment box"
)

Source = str | Tree
Found = list[tuple[str, str] | Problem]


@dataclass(frozen=True)
class ImportResult:
    org: Org
    created_org: bool
    event: StructureEvent
    workspaces: list[Workspace]
    teams: int
    # Sentences with their file and line: a recommended variable with no value, …
    warnings: list[str] = field(default_factory=list)
    files: int = 0


# --- validation ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """A validated file, ready to write."""

    name: str
    slug: str
    backend: str
    plan: str
    # Names the org's agents need (kept on the org for expand), and the values given for every
    # name required or recommended, stored as every workspace's secrets.
    required_env: list[str]
    secrets: dict[str, str]
    members: list[Member]
    into: Org | None
    # Top-level entries created under an existing workspace (``parent``): path -> that row.
    parents: dict[str, Workspace] = field(default_factory=dict)
    description: str = ""
    schema_version: int | None = None
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    file_bytes: int = 0


def derived_slug(name: str) -> str:
    """A new org's slug from its name: ``Acme Lab`` → ``acme-lab``, then ``acme-lab-2`` …"""
    base = slugify(name)[: org_fields.MAX_SLUG].strip("-_") or "org"
    if base in org_fields.RESERVED_SLUGS:
        base = f"{base}-org"
    taken = set(Org.objects.filter(slug__startswith=base[:40]).values_list("slug", flat=True))
    candidate, number = base, 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate = base[: org_fields.MAX_SLUG - len(suffix)] + suffix
        number += 1
    return candidate


def _org_problems(data: dict[str, Any], into: Org | None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if into is not None and into.status == Org.OrgStatus.ARCHIVED:
        problems.append(("", f"the org {into.slug!r} is archived: it takes no new workspaces"))
    name, slug = data.get("name"), data.get("slug")
    # The rule every door shares (orgs/fields.py), then what only a new org must be.
    if (into is None or "name" in data) and (why := org_fields.name_problem(name)):
        problems.append(("name", why))
    if "slug" in data:
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
    if "description" in data:
        problems += [
            (f"description{at}", why) for at, why in tf.description_problems(data["description"])
        ]
    version = data.get("template_schema_version", SCHEMA_VERSIONS[0])
    if isinstance(version, bool) or version not in SCHEMA_VERSIONS:
        problems.append(
            (
                "template_schema_version",
                f"unknown version {str(version)[:20]!r}: this console reads "
                f"{', '.join(map(str, SCHEMA_VERSIONS))}",
            )
        )
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


@dataclass
class _Env:
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)


def _env_check(
    required: list[Requirement], recommended: list[Requirement], env: Mapping[str, str]
) -> _Env:
    """What the template needs against what the import was given."""
    out = _Env()
    for strict, requirements in ((True, required), (False, recommended)):
        for need in requirements:
            given = [name for name in need.names if env.get(name)]
            for name in given:
                if why := vault.value_problem(env[name]):
                    out.problems.append((need.path, f"the value given for {name} {why}"))
                else:
                    out.secrets[name] = env[name]
                    if strict and name not in out.required:
                        out.required.append(name)
            if given:
                continue
            listing = ", ".join(need.names)
            what = f"one of {listing} is" if need.group else f"{listing} is"
            how = ENV_HOW.format(name=need.names[0])
            if strict:
                out.problems.append(
                    (need.path, f"{what} required by this file but no value was provided ({how})")
                )
            else:
                out.warnings.append(
                    (
                        need.path,
                        f"{what} recommended by this file but no value was provided; what needs "
                        f"it will not work ({how})",
                    )
                )
    return out


def _siblings(members: list[Member]) -> list[tuple[str, str]]:
    """Duplicate names among siblings (top-level entries are siblings when they go under the
    same ``parent``)."""
    problems: list[tuple[str, str]] = []
    tops: dict[str | None, list[Member]] = {}
    for member in members:
        tops.setdefault(member.parent, []).append(member)
    stack = list(tops.values())
    while stack:
        group = stack.pop()
        seen: set[str] = set()
        for member in group:
            if member.name in seen:
                problems.append(
                    (f"{member.path}.name", f"duplicate name {member.name!r} among siblings")
                )
            seen.add(member.name)
            stack.append(member.children)
    return problems


def _into_problems(
    members: list[Member], into: Org | None, parents: dict[str, Workspace]
) -> list[tuple[str, str]]:
    """Top-level names against the org's, and ``parent``: a live top-level workspace."""
    problems: list[tuple[str, str]] = []
    top = {}
    if into is not None:
        top = {
            w.name: w for w in into.workspaces.filter(parent=None).exclude(status=Status.REMOVED)
        }
    # Names a new entry must not take, under each parent (None: the top level).
    taken: dict[Any, set[str]] = {None: set(top)}
    for member in members:
        if member.parent is None:
            if member.name in taken[None]:
                problems.append(
                    (
                        f"{member.path}.name",
                        f"the org {into.slug!r} already has a top-level workspace {member.name!r}",
                    )
                )
            continue
        if into is None:
            problems.append(
                (
                    f"{member.path}.parent",
                    "parent names a workspace of the org you import into (manage.py import_org "
                    "... --org SLUG, or 'Into org' on the page)",
                )
            )
            continue
        lead = top.get(member.parent)
        if lead is None:
            problems.append(
                (
                    f"{member.path}.parent",
                    f"the org {into.slug!r} has no live top-level workspace {member.parent!r}",
                )
            )
            continue
        parents[member.path] = lead
        if lead.pk not in taken:
            live = lead.children.exclude(status=Status.REMOVED).values_list("name", flat=True)
            kept = [
                n.get("name") for n in (lead.spec or {}).get("children", []) if isinstance(n, dict)
            ]
            taken[lead.pk] = set(live) | {n for n in kept if isinstance(n, str)}
        if member.name in taken[lead.pk]:
            problems.append(
                (
                    f"{member.path}.name",
                    f"{lead.name!r} already has a member {member.name!r} "
                    "(live, or in its team spec)",
                )
            )
        taken[lead.pk].add(member.name)
    return problems


def _tier_problems(members: list[Member], org: Org, backend: str) -> list[tuple[str, str]]:
    """Tiers above what the org may use on its backend (dispatch's tier policy)."""
    problems = []
    for root in members:
        for member in root.walk():
            if why := dispatch.tier_refusal(org, backend, member.tier):
                problems.append((member.tier_from or member.path, why))
    return problems


def _parse(source: Source) -> Parsed:
    return parse(source) if isinstance(source, str) else parse_tree(source)


def validate(
    source: Source, *, into: Org | None = None, env: Mapping[str, str] | None = None
) -> tuple[Parsed, Plan]:
    """Check the whole file (or template) against the rules above; ``InvalidOrgFile`` lists
    every problem, by file and line."""
    env = env or {}
    parsed = _parse(source)
    tree = None if isinstance(source, str) else source
    data = parsed.data
    if not isinstance(data, dict):
        raise InvalidOrgFile(
            [parsed.problem("", "the file must be a mapping with name, slug and workspaces")]
        )
    found: Found = [(str(key), unknown_key(key, TOP_KEYS)) for key in data if key not in TOP_KEYS]
    found += _org_problems(data, into)
    found += _backend_problems(data, into)
    nodes = data.get("workspaces")
    if not isinstance(nodes, list) or not nodes:
        found.append(("workspaces", "is required: a list of at least one workspace"))
        nodes = []
    elif why := teamspec.size_problem(nodes):
        found.append(("workspaces", why))
        nodes = []
    resolved, problems = resolve({**data, "workspaces": nodes}, parsed, tree=tree, env=env)
    found += problems
    members = resolved.members
    found += _siblings(members)
    parents: dict[str, Workspace] = {}
    found += _into_problems(members, into, parents)
    needs = _env_check(resolved.required, resolved.recommended, env)
    found += needs.problems
    backend = into.backend if into else str(data.get("backend", Backend.LOCAL))
    slug = data.get("slug", "")
    if not found and into is None and "slug" not in data:
        slug = derived_slug(data["name"])
    if not found:
        # A new org is not trusted with privileged tiers: an operator allows them afterwards.
        org = into or Org(slug=str(slug), backend=backend)
        found += _tier_problems(members, org, backend)
    if not found:
        # What each lead's team spec will hold, by the rule every door shares: a bug above must
        # be a problem here, never a database error or a refusal halfway through the writes.
        for member in members:
            found += teamspec.node_problems(member.spec_node(), member.path)
        if why := tf.size_problem(
            [m.template for root in members for m in root.walk()],
            most=tf.MAX_SPEC_BYTES,
            what="the template settings of all the workspaces",
        ):
            found.append(("workspaces", why))
    if found:
        raise InvalidOrgFile(
            [item if isinstance(item, Problem) else parsed.problem(*item) for item in found]
        )
    return parsed, Plan(
        name=data.get("name", ""),
        slug=slug,
        backend=backend,
        plan=data.get("plan", Org.Plan.FREE),
        required_env=needs.required,
        secrets=needs.secrets,
        members=members,
        into=into,
        parents=parents,
        description=data.get("description", ""),
        schema_version=data.get("template_schema_version"),
        warnings=[str(parsed.problem(path, why)) for path, why in needs.warnings],
        files=resolved.files,
        file_bytes=resolved.file_bytes,
    )


# --- writing ------------------------------------------------------------------------------------


def import_org(
    text: Source,
    *,
    actor: str,
    into: Org | None = None,
    env: Mapping[str, str] | None = None,
    owner: AbstractBaseUser | None = None,
    source: str = "",
) -> ImportResult:
    """Validate ``text`` (a file's text, or a template ``Tree``) and create the org and its
    tree in one transaction.

    ``into``: add the tree to this existing org instead of creating one. ``env``: values for the
    file's ``required_env`` and ``recommended_env`` (checked, then stored as a secret of every
    imported workspace) and for its ``${VAR}``s. ``owner``: made the new org's owner (ignored
    with ``into``). ``source``: a file name for the event (a tree's label by default). Raises
    ``InvalidOrgFile`` and writes nothing when the file is not valid. Every workspace is
    provisioned through dispatch once the transaction commits.
    """
    label = source or getattr(text, "label", "")
    started = time.perf_counter()
    result = _import(text, actor=actor, into=into, env=env, owner=owner, label=label)
    log.info(
        "org import %s: %d workspaces, %d teams, %d files in %.0f ms",
        result.org.slug,
        len(result.workspaces),
        result.teams,
        result.files,
        (time.perf_counter() - started) * 1000,
    )
    return result


def _import(
    text: Source,
    *,
    actor: str,
    into: Org | None,
    env: Mapping[str, str] | None,
    owner: AbstractBaseUser | None,
    label: str,
) -> ImportResult:
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
                raise InvalidOrgFile([parsed.problem("slug", message)]) from None
            created_org = True
            if owner is not None and not owner.is_superuser:
                OrgMembership.objects.create(org=org, user=owner, role=OrgMembership.Role.OWNER)
        # Before the tree: expand reads it to give recreated members what the org requires.
        org_services.require_env(org, plan.required_env)
        writer = _Writer(org=org, plan=plan, actor=actor)
        writer.write()
        writer.extend_parents()
        event = record_event(
            EventType.ORG_IMPORTED,
            org_id=org.pk,
            actor=actor,
            payload={
                "source": label,
                "created_org": created_org,
                "workspaces": [str(w.pk) for w in writer.created],
                "counts": {
                    "workspaces": len(writer.created),
                    "teams": writer.teams,
                    **({"files": plan.files, "file_bytes": plan.file_bytes} if plan.files else {}),
                },
                # Names only: values are secrets.
                "required_env": list(plan.required_env),
                **({"description": plan.description} if plan.description else {}),
                **(
                    {"template_schema_version": plan.schema_version}
                    if plan.schema_version is not None
                    else {}
                ),
                **({"warnings": plan.warnings} if plan.warnings else {}),
            },
        )
        return ImportResult(
            org, created_org, event, writer.created, writer.teams, plan.warnings, plan.files
        )


class _Writer:
    """Writes the planned tree in bulk, in the import's transaction: every workspace through
    ``dispatch.create_workspaces`` (one INSERT a depth level, one for the events, the starts
    queued as one message per batch), then the files and the secrets in one INSERT each."""

    def __init__(self, *, org: Org, plan: Plan, actor: str) -> None:
        self.org, self.plan, self.actor = org, plan, actor
        self.created: list[Workspace] = []
        self.rows: dict[str, Workspace] = {}
        self.teams = 0

    def _members(self) -> list[tuple[Member, uuid.UUID | None]]:
        """Every member with its parent's id, depth-first (the order of the event's ids)."""
        found: list[tuple[Member, uuid.UUID | None]] = []
        ids: dict[str, uuid.UUID] = {}

        def visit(member: Member, parent: uuid.UUID | None) -> None:
            ids[member.path] = uuid.uuid4()
            found.append((member, parent))
            for child in member.children:
                visit(child, ids[member.path])

        for root in self.plan.members:
            lead = self.plan.parents.get(root.path)
            visit(root, lead.pk if lead is not None else None)
        self.ids = {path: str(value) for path, value in ids.items()}
        self._uuids = ids
        return found

    def _spec(self, member: Member) -> dict[str, Any]:
        # A lead whose members bring files names, for each, the workspace created from it
        # (``files_from``): expand copies that one's files, after a collapse too.
        with_files = any(m.files for child in member.children for m in child.walk())
        ids = self.ids if with_files else None
        return {"children": [child.spec_node(ids) for child in member.children]}

    def write(self) -> None:
        members = self._members()
        batch = [
            dispatch.NewWorkspace(
                id=self._uuids[member.path],
                parent_id=parent,
                spec=self._spec(member),
                template=teamspec.template_of(member.template),
                **member.creation_fields(),
            )
            for member, parent in members
        ]
        self.created = dispatch.create_workspaces(org=self.org, batch=batch, actor=self.actor)
        self.rows = {
            member.path: row for (member, _), row in zip(members, self.created, strict=True)
        }
        self.teams = sum(1 for member, _ in members if member.children)
        for member, _ in members:
            if teamspec.FILES_FROM in member.template:
                teamspec.give_template(self.rows[member.path], member.template)
        # In this transaction, before the first starts are queued on commit: each agent starts
        # with its files and secrets, or not at all.
        WorkspaceFile.objects.bulk_create(
            (
                WorkspaceFile(
                    workspace=self.rows[member.path], path=path, content=data, size=len(data)
                )
                for member, _ in members
                for path, data in sorted(member.files.items())
            ),
            batch_size=FILES_PER_INSERT,
        )
        # The template's .env files win over the import's environment, as a workspace's own
        # secret wins over a global one in Molecule.
        vault.add_new_secrets(
            (
                (
                    self.rows[member.path],
                    key,
                    value,
                    "template .env" if key in member.secrets else "import",
                )
                for member, _ in members
                for key, value in sorted((self.plan.secrets | member.secrets).items())
            ),
            actor=self.actor,
        )

    def extend_parents(self) -> None:
        """Entries imported under an existing workspace join its team spec."""
        ids = self.ids
        for lead in {row.pk: row for row in self.plan.parents.values()}.values():
            added = [
                member.spec_node(ids)
                for member in self.plan.members
                if self.plan.parents.get(member.path) == lead
            ]
            current = Workspace.objects.get(pk=lead.pk).spec or {}
            spec = {**current, "children": [*current.get("children", []), *added]}
            dispatch.edit_workspace(workspace_id=lead.pk, actor=self.actor, spec=spec)
