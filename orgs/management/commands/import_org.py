"""``manage.py import_org FILE [--org SLUG] [--env NAME=VALUE ...]``: org import from the shell."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import fields as org_fields
from orgs import importer
from orgs.models import Org


class Command(BaseCommand):
    help = (
        "Import an org and its team tree from a YAML file (docs/architecture.md §10) and "
        "provision every workspace through dispatch. The whole file is validated first; a bad "
        "file creates nothing. Values for the file's required_env come from --env NAME=VALUE "
        "or, failing that, from this command's own environment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The YAML file, or - to read it from standard input.")
        parser.add_argument(
            "--org",
            metavar="SLUG",
            help="Add the tree to this existing org instead of creating the file's org.",
        )
        parser.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A value for a name in required_env (repeatable).",
        )

    def handle(self, *args: Any, file: str, org: str | None, env: list[str], **opts: Any) -> None:
        text, source = self._read(file)
        into = None
        if org is not None:
            into = None if org_fields.slug_problem(org) else Org.objects.filter(slug=org).first()
            if into is None:
                raise CommandError(f"No org has the slug {org!r}; leave out --org to create it.")
        try:
            result = importer.import_org(
                text,
                actor=f"cli:{getpass.getuser()}",
                into=into,
                env=self._env(env),
                source=source,
            )
        except importer.InvalidOrgFile as invalid:
            problems = "\n".join(f"  {problem}" for problem in invalid.problems)
            raise CommandError(
                f"{source} was not imported; nothing was created. "
                f"{len(invalid.problems)} problem(s):\n{problems}"
            ) from None
        verb = "Created" if result.created_org else "Imported into"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} org {result.org.slug!r}: {len(result.workspaces)} workspace(s) in "
                f"{result.teams} team(s), provisioning on the {result.org.backend} backend "
                f"(import event {result.event.pk})."
            )
        )

    def _read(self, file: str) -> tuple[str, str]:
        if file == "-":
            return sys.stdin.read(), "stdin"
        path = Path(file)
        try:
            return path.read_text(encoding="utf-8"), path.name
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from None

    def _env(self, pairs: list[str]) -> dict[str, str]:
        # The process environment first, so an explicit --env wins.
        values = dict(os.environ)
        for number, pair in enumerate(pairs, 1):
            name, sep, value = pair.partition("=")
            if not sep or not importer.ENV_NAME.match(name):
                # Never echo it: the mistake may be a value without its name.
                raise CommandError(f"--env number {number} is not NAME=VALUE.")
            values[name] = value
        return values
