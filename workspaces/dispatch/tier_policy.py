"""Which tiers an org's workspaces may have, on the backend they run on.

A tier above what a backend keeps inside its own isolation (``Backend.max_tenant_tier``: docker's
T3 and T4 are root on the host) is refused unless an operator trusted the org with it
(``Org.privileged_tiers``, a superuser's setting). Every door that sets a tier asks here: create,
edit, team expand, org import; and reconcile asks again before a start, for rows written before
the rule or before an operator withdrew the trust.
"""

from __future__ import annotations

from orgs.models import Org
from workspaces import backends


def tier_limit(org: Org, backend_name: str) -> int:
    backend = backends.get(backend_name)
    if org.privileged_tiers or backend is None:
        return 4
    return backend.max_tenant_tier


def tier_refusal(org: Org, backend_name: str, tier: object) -> str | None:
    """Why ``tier`` is not allowed for this org on that backend, or None."""
    limit = tier_limit(org, backend_name)
    if not isinstance(tier, int) or isinstance(tier, bool) or tier <= limit:
        return None
    return (
        f"tier {tier} on the {backend_name} backend gives the agent the host; the org "
        f"{org.slug!r} may use tiers up to {limit}. An operator can allow more (the org's "
        "'privileged tiers' setting, for superusers)"
    )
