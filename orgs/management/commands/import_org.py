"""``manage.py import_org FILE|DIR [--org SLUG] [--env NAME=VALUE ...]``: org import from the shell.

FILE is one YAML file (``-`` for standard input), or a ``.zip``/``.tar.gz`` of a template
directory; DIR is a Molecule org template directory (its ``org.yaml``, what that includes, the
prompt files, ``.env`` files and each workspace's ``files_dir``).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import fields as org_fields
from orgs import importer
from orgs.archive import MAX_ARCHIVE, ArchiveError, is_archive, unpack
from orgs.models import Org
from orgs.tree import DirTree, Tree


class Command(BaseCommand):
    help = (
        "Import an org and its team tree from a YAML file or a Molecule org template directory "
        "(or a .zip/.tar.gz of one; docs/architecture.md §10) and provision every workspace "
        "through dispatch. The whole template is validated first; a bad one creates nothing. "
        "Values for its required_env, recommended_env and ${VAR}s come from --env NAME=VALUE "
        "or, failing that, from this command's own environment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            help="The YAML file (- reads standard input), a template directory holding "
            "org.yaml, or a .zip/.tar.gz of one.",
        )
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
            help="A value for a name in required_env or recommended_env, or for a ${VAR} "
            "(repeatable).",
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
        files = f", {result.files} file(s)" if result.files else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} org {result.org.slug!r}: {len(result.workspaces)} workspace(s) in "
                f"{result.teams} team(s){files}, provisioning on the {result.org.backend} "
                f"backend (import event {result.event.pk})."
            )
        )
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))

    def _read(self, file: str) -> tuple[str | Tree, str]:
        if file == "-":
            return sys.stdin.read(), "stdin"
        path = Path(file)
        if path.is_dir():
            return DirTree(path), f"{path.resolve().name}/"
        try:
            if path.stat().st_size > MAX_ARCHIVE:
                raise CommandError(f"Cannot read {file}: it is larger than {MAX_ARCHIVE} bytes.")
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from None
        if is_archive(data):
            try:
                return unpack(data, label=path.name), path.name
            except ArchiveError as error:
                raise CommandError(f"Cannot read {file}: {error}") from None
        try:
            return data.decode("utf-8"), path.name
        except UnicodeDecodeError as error:
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
