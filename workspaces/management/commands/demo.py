"""``manage.py demo``: a demo org with a small team tree, imported like any org file."""

from __future__ import annotations

import time
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs import fields as org_fields
from orgs.importer import import_org
from orgs.models import Backend, Org
from orgs.orgfile import InvalidOrgFile
from workspaces.models import Status

DEMO_TREE = {
    "name": "PM",
    "role": "Lead",
    "tier": 2,
    "children": [
        {"name": "Frontend", "role": "Engineer", "tier": 1},
        {"name": "Backend", "role": "Engineer", "tier": 2},
        {"name": "Research", "role": "Analyst", "tier": 3},
    ],
}


class Command(BaseCommand):
    help = "Create a demo org with a lead and three team members, and provision them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", default="demo", help="Slug of the demo org (default demo).")
        parser.add_argument(
            "--backend",
            choices=[b.value for b in Backend],
            default=Backend.LOCAL,
            help="Backend the demo workspaces run on (default local).",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait up to this long for every demo workspace to come online.",
        )

    def handle(self, *args: Any, org: str, backend: str, wait: float, **options: Any) -> None:
        if why := org_fields.slug_problem(org):
            # The rule org import applies too; checked first, since the lookup below takes it.
            raise CommandError(f"Cannot create the demo org: --org {why}.")
        existing = Org.objects.filter(slug=org).first()
        if existing and existing.workspaces.exclude(status=Status.REMOVED).exists():
            self.stdout.write(f"The {org} org already has workspaces; nothing created.")
        else:
            self._create(org, backend, into=existing)
        if wait:
            self._wait(org, wait)

    def _create(self, slug: str, backend: str, *, into: Org | None) -> None:
        # The demo is an org file like any other: the same validation (a bad --org is refused
        # with the reason), the same org creation, the same tree through dispatch.
        document = {
            "name": f"{slug.capitalize()} Org",
            "slug": slug,
            "backend": str(backend),
            "workspaces": [DEMO_TREE],
        }
        try:
            result = import_org(
                yaml.safe_dump(document, sort_keys=False),
                actor="cli:demo",
                into=into,
                source="manage.py demo",
            )
        except InvalidOrgFile as invalid:
            raise CommandError(f"Cannot create the demo org: {invalid}") from None
        self.stdout.write(
            f"Demo org {slug!r}: {len(result.workspaces)} workspaces provisioning on the "
            f"{result.org.backend} backend."
        )

    def _wait(self, slug: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            rows = Org.objects.get(slug=slug).workspaces.exclude(status=Status.REMOVED)
            states = dict(rows.values_list("name", "status"))
            if states and all(s == Status.ONLINE for s in states.values()):
                self.stdout.write(self.style.SUCCESS(f"All online: {', '.join(states)}"))
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Not all demo workspaces came online within {seconds:g}s: {states}. "
                    "Is the Celery worker running?"
                )
            time.sleep(0.5)
