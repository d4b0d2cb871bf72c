"""``manage.py demo``: a demo org with a small team tree, provisioned through dispatch."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from orgs.models import Backend, Org, Team
from workspaces import dispatch
from workspaces.events import record as record_event
from workspaces.models import EventType, Status

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
        existing = Org.objects.filter(slug=org).first()
        if existing and existing.workspaces.exclude(status=Status.REMOVED).exists():
            self.stdout.write(f"The {org} org already has workspaces; nothing created.")
        else:
            self._create(org, backend)
        if wait:
            self._wait(org, wait)

    def _create(self, slug: str, backend: str) -> None:
        actor = "cli:demo"
        with transaction.atomic():
            org, created = Org.objects.get_or_create(
                slug=slug, defaults={"name": f"{slug.capitalize()} Org", "backend": backend}
            )
            if created:
                record_event(
                    EventType.ORG_CREATED, org_id=org.pk, actor=actor, payload={"slug": slug}
                )
            elif org.backend != backend:
                org.backend = backend
                org.save(update_fields=["backend"])
            lead = dispatch.create_workspace(
                org=org,
                name=DEMO_TREE["name"],
                role=DEMO_TREE["role"],
                tier=DEMO_TREE["tier"],
                spec={"children": DEMO_TREE["children"]},
                actor=actor,
            )
            Team.objects.create(org=org, lead=lead, name=f"{lead.name} team")
            for child in DEMO_TREE["children"]:
                dispatch.create_workspace(org=org, parent=lead, actor=actor, **child)
        self.stdout.write(f"Demo org {slug!r}: 4 workspaces provisioning on the {backend} backend.")

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
