"""Team rows: the one place that writes them (``orgs.models.Team``).

A Team row says "this workspace leads a team". It exists while the lead has members: created
when the first member is created under it (org import, expand, the API, a move) and deleted
when collapse removes them. The verbs, the team verbs and the bulk create call these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from orgs.models import Team
from workspaces.models import Workspace

MAX_TEAM_NAME = 200
SUFFIX = " team"


def team_name(lead: Workspace) -> str:
    # A lead's name may take the whole column; the team's name must still fit its own.
    return lead.name[: MAX_TEAM_NAME - len(SUFFIX)] + SUFFIX


def ensure_team(lead: Workspace) -> bool:
    """The lead's Team row, created if it has none; True when it was created."""
    _, created = Team.objects.get_or_create(
        lead=lead, defaults={"org_id": lead.org_id, "name": team_name(lead)}
    )
    return created


def ensure_teams(leads: Iterable[Workspace]) -> int:
    """The Team rows of these leads that are missing, in one INSERT; how many it created."""
    leads = list(leads)
    have = set(Team.objects.filter(lead__in=leads).values_list("lead_id", flat=True))
    missing = [lead for lead in leads if lead.pk not in have]
    Team.objects.bulk_create(
        Team(lead=lead, org_id=lead.org_id, name=team_name(lead)) for lead in missing
    )
    return len(missing)


def drop_teams(leads: Iterable[Workspace]) -> None:
    Team.objects.filter(lead__in=list(leads)).delete()
