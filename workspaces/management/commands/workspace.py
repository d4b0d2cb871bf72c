"""``manage.py workspace``: list workspaces, run lifecycle verbs, send messages and reach files
and plugins (``workspace files …``, ``workspace plugins …``: files_cli.py, plugins_cli.py) through
dispatch."""

from __future__ import annotations

import getpass
import json
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs.management.commands.token import find_org
from workspaces import dispatch
from workspaces.fields import unstorable
from workspaces.lifecycle import Refused
from workspaces.management import files_cli, plugins_cli
from workspaces.models import Status, Workspace
from workspaces.selectors import workspace_as_dict


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def find_workspace(ref: str, *, org: str | None = None) -> Workspace:
    """A workspace by full id, id prefix (4+ characters) or name; refuses ambiguity."""
    rows = Workspace.objects.select_related("org")
    if org:
        rows = rows.filter(org=find_org(org))
    if unstorable(ref):  # no name holds a NUL, and PostgreSQL would refuse one in the query
        raise CommandError(f"No workspace is called {ref!r}; see `manage.py workspace list`.")
    try:
        return rows.get(pk=uuid.UUID(ref))
    except ValueError:
        pass
    except Workspace.DoesNotExist:
        raise CommandError(f"No workspace has the id {ref}.") from None
    matches = list(rows.filter(name=ref).exclude(status=Status.REMOVED))
    if not matches and len(ref) >= 4:
        matches = [ws for ws in rows.exclude(status=Status.REMOVED) if str(ws.pk).startswith(ref)]
    if not matches:
        raise CommandError(f"No workspace is called {ref!r}; see `manage.py workspace list`.")
    if len(matches) > 1:
        listing = ", ".join(f"{ws.org.slug}/{ws.name} ({ws.pk})" for ws in matches)
        raise CommandError(f"{ref!r} matches several workspaces: {listing}. Use an id or --org.")
    return matches[0]


VERB_HELP = {
    "expand": "Create a lead's team members from its team spec and provision them.",
    "collapse": "Stop and remove every workspace below a lead (their secrets are kept).",
}


def _sentence(invalid: ValidationError) -> str:
    return "; ".join(
        f"{field}: {' '.join(messages)}" for field, messages in invalid.message_dict.items()
    )


class Command(BaseCommand):
    help = "List workspaces, create one, or run a lifecycle or team verb on one (through dispatch)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="List workspaces.")
        listing.add_argument("--org", help="Only this org's workspaces (slug).")
        listing.add_argument("--status", choices=[s.value for s in Status])
        listing.add_argument(
            "--all", dest="include_removed", action="store_true", help="Include removed ones."
        )
        listing.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")
        create = sub.add_parser("create", help="Create a workspace and provision it.")
        create.add_argument("--org", required=True)
        create.add_argument("--name", required=True)
        create.add_argument("--role", default="")
        create.add_argument("--tier", type=int, default=2)
        create.add_argument("--runtime", default="langgraph")
        create.add_argument("--parent", help="Id or name of the parent workspace.")
        for verb in [*dispatch.VERBS, *dispatch.TEAM_VERBS]:
            one = sub.add_parser(verb, help=VERB_HELP.get(verb, f"{verb.capitalize()} it."))
            one.add_argument("workspace", help="Workspace id, id prefix or name.")
            one.add_argument("--org", help="Org slug, to tell same-named workspaces apart.")
        edit = sub.add_parser(
            "edit", help="Change a workspace's own fields (they apply at its next start)."
        )
        edit.add_argument("workspace", help="Workspace id, id prefix or name.")
        edit.add_argument("--org", help="Org slug, to tell same-named workspaces apart.")
        edit.add_argument("--name", dest="new_name")
        edit.add_argument("--role")
        edit.add_argument("--tier", type=int)
        edit.add_argument("--runtime")
        edit.add_argument("--workspace-dir", dest="workspace_dir")
        message = sub.add_parser(
            "message", help="Send the agent an A2A message and print its answer."
        )
        message.add_argument("workspace", help="Workspace id, id prefix or name.")
        message.add_argument("text", help="The message.")
        message.add_argument("--org", help="Org slug, to tell same-named workspaces apart.")
        message.add_argument(
            "--json", dest="as_json", action="store_true", help="Print the JSON-RPC response."
        )
        files_cli.add_parser(sub)
        plugins_cli.add_parser(sub)
        move = sub.add_parser("move", help="Give a workspace another parent (or none).")
        move.add_argument("workspace", help="Workspace id, id prefix or name.")
        move.add_argument("--org", help="Org slug, to tell same-named workspaces apart.")
        where = move.add_mutually_exclusive_group(required=True)
        where.add_argument("--parent", help="Id or name of the new parent workspace.")
        where.add_argument(
            "--top", action="store_true", help="Make it a top-level workspace (no parent)."
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self.list(**options)
        elif action == "create":
            self.create(**options)
        elif action == "move":
            self.move(**options)
        elif action == "edit":
            self.edit(**options)
        elif action == "message":
            self.message(**options)
        elif action == "files":
            target = find_workspace(options["workspace"], org=options.get("org"))
            files_cli.run(self, target.pk, cli_actor(), options)
        elif action == "plugins":
            target = find_workspace(options["workspace"], org=options.get("org"))
            plugins_cli.run(self, target.pk, cli_actor(), options)
        else:
            self.verb(action, **options)

    def list(
        self,
        *,
        org: str | None,
        status: str | None,
        include_removed: bool,
        as_json: bool,
        **_: Any,
    ) -> None:
        rows = Workspace.objects.select_related("org").order_by("org__slug", "created_at")
        if org:
            rows = rows.filter(org=find_org(org))
        if status:
            rows = rows.filter(status=status)
        elif not include_removed:
            rows = rows.exclude(status=Status.REMOVED)
        if as_json:
            self.stdout.write(json.dumps([workspace_as_dict(ws) for ws in rows], indent=2))
            return
        self.stdout.write(f"{'ID':<10}{'ORG':<14}{'NAME':<22}{'STATUS':<14}{'TIER':<6}BACKEND")
        for ws in rows:
            self.stdout.write(
                f"{ws.short_id:<10}{ws.org.slug:<14}{ws.name:<22}{ws.status:<14}"
                f"T{ws.tier:<5}{ws.backend}"
            )

    def create(
        self,
        *,
        org: str,
        name: str,
        role: str,
        tier: int,
        runtime: str,
        parent: str | None,
        **_: Any,
    ) -> None:
        org_row = find_org(org)
        parent_row = find_workspace(parent, org=org) if parent else None
        try:
            workspace = dispatch.create_workspace(
                org=org_row,
                name=name,
                role=role,
                tier=tier,
                runtime=runtime,
                parent=parent_row,
                actor=cli_actor(),
            )
        except ValidationError as invalid:
            raise CommandError(f"Workspace not created: {_sentence(invalid)}") from None
        except dispatch.InvalidRequest as invalid:
            raise CommandError(str(invalid)) from None
        self.stdout.write(f"{workspace.pk} {workspace.status}")

    def edit(
        self, *, workspace: str, org: str | None, new_name: str | None, **options: Any
    ) -> None:
        target = find_workspace(workspace, org=org)
        changes = {"name": new_name} if new_name is not None else {}
        changes |= {
            field: options[field]
            for field in ("role", "tier", "runtime", "workspace_dir")
            if options.get(field) is not None
        }
        if not changes:
            raise CommandError(
                "Nothing to change: give --name, --role, --tier, --runtime or --workspace-dir."
            )
        try:
            changed = dispatch.edit_workspace(workspace_id=target.pk, actor=cli_actor(), **changes)
        except ValidationError as invalid:
            raise CommandError(f"Not changed: {_sentence(invalid)}") from None
        except Refused as refused:
            raise CommandError(str(refused)) from None
        listing = ", ".join(f"{field}: {old!r} → {new!r}" for field, (old, new) in changed.items())
        self.stdout.write(self.style.SUCCESS(f"edit: {listing or 'nothing changed'}"))

    def move(
        self, *, workspace: str, org: str | None, parent: str | None, top: bool, **_: Any
    ) -> None:
        target = find_workspace(workspace, org=org)
        new_parent = None if top else find_workspace(parent or "", org=target.org.slug)
        try:
            dispatch.move_workspace(
                workspace_id=target.pk,
                parent_id=new_parent.pk if new_parent else None,
                actor=cli_actor(),
            )
        except (Refused, dispatch.InvalidRequest) as refused:
            raise CommandError(str(refused)) from None
        where = f"under {new_parent.name}" if new_parent else "at the top level"
        self.stdout.write(self.style.SUCCESS(f"move: {target.name} is now {where}"))

    def verb(self, verb: str, *, workspace: str, org: str | None, **_: Any) -> None:
        target = find_workspace(workspace, org=org)
        run = dispatch.VERBS.get(verb) or dispatch.TEAM_VERBS[verb]
        try:
            result = run(workspace_id=target.pk, actor=cli_actor())
        except (Refused, dispatch.InvalidRequest) as refused:
            raise CommandError(str(refused)) from None
        moved = getattr(result, "moved", [result])
        names = ", ".join(f"{ws.name} → {ws.status}" for ws in moved)
        self.stdout.write(self.style.SUCCESS(f"{verb}: {names or 'nothing to do'}"))

    def message(
        self, *, workspace: str, text: str, org: str | None, as_json: bool, **_: Any
    ) -> None:
        target = find_workspace(workspace, org=org)
        try:
            exchange = dispatch.send_message(workspace_id=target.pk, actor=cli_actor(), text=text)
        except (Refused, dispatch.InvalidRequest) as refused:
            raise CommandError(f"Not sent: {refused}") from None
        except dispatch.AgentFailed as failed:
            raise CommandError(f"No answer from {target.name}: {failed.message}") from None
        self.stdout.write(json.dumps(exchange.answer, indent=2) if as_json else exchange.text)
