"""THE lifecycle service: the only package that talks to workspace backends.

Views, admin actions, management commands, the JSON API, Celery tasks, org import and team
expand/collapse call the verbs here; nothing else imports ``workspaces.backends`` (pinned by
import-linter and tests/test_architecture.py). That rule exists because of an incident
(docs/architecture.md §5): handlers that called one backend directly silently skipped work on the
other for months.

How every verb works:

1. lock the workspace row (and its descendants, in id order, for cascading verbs);
2. check the transition against ``lifecycle.TRANSITIONS`` (refused → ``TransitionRefused``);
3. write the structure event and update the row, bumping ``generation``;
4. on commit, enqueue ``tasks.reconcile_workspace(id, generation)``.

Modules: ``verbs`` (what operators call), ``teams`` (expand, collapse, move) and
``team_rows`` (the Team rows they keep), ``edits`` (changes to a workspace's own fields),
``reconciler`` (the backend side of every verb), ``a2a`` (messages to an agent), ``files``
(files in a workspace's storage: ``dispatch.files.list_files`` etc.), ``plugins`` (the
catalogue's plugins on a workspace, through the same file methods), ``sweeps``
(what beat runs), ``probes`` (the parity check's read-only looks at the backends), ``core``
(locks and transitions they share).

The task calls :func:`reconcile`, which makes the backend match the row in three steps: claim
the workspace's lease in a short transaction, call the backend with no transaction open, record
the outcome in another short transaction. A task whose generation is no longer the row's does
nothing, and the lease keeps two backend calls for one workspace from running at once, so racing
verbs on one workspace never leave two instances; different workspaces never wait on each other.
A call that was lost (a dead worker, a dropped message) is queued again by the reconcile sweep.

Routing: a new workspace takes its org's backend; every later verb uses the backend recorded on
the row, never a guess from what happens to be configured. With no such backend configured,
provision marks the workspace failed with the reason, and stop/pause/delete are recorded no-ops.
"""

from __future__ import annotations

from workspaces.dispatch.a2a import AgentFailed, Exchange, RequestTooLarge, send_message
from workspaces.dispatch.batch import enqueue_generations, reconcile_many
from workspaces.dispatch.bulk_create import NewWorkspace, create_workspaces
from workspaces.dispatch.core import InvalidRequest, RetryLater, VerbResult
from workspaces.dispatch.edits import AT_NEXT_START, EDITABLE, edit_problems, edit_workspace
from workspaces.dispatch.files import FileNotFound, FilesFailed, FileTooLarge
from workspaces.dispatch.reconciler import reconcile
from workspaces.dispatch.sweeps import (
    health_sweep,
    liveness_sweep,
    orphan_sweep,
    provision_timeout_sweep,
    reconcile_sweep,
)
from workspaces.dispatch.teams import collapse_team, expand_team, move_workspace
from workspaces.dispatch.tier_policy import tier_limit, tier_refusal
from workspaces.dispatch.verbs import (
    console,
    create_workspace,
    delete,
    has_backend,
    pause,
    provision,
    restart,
    resume,
    stop,
)
from workspaces.lifecycle import Refused, TransitionRefused

__all__ = [
    "AT_NEXT_START",
    "DESTRUCTIVE_VERBS",
    "EDITABLE",
    "TEAM_VERBS",
    "VERBS",
    "AgentFailed",
    "Exchange",
    "FileNotFound",
    "FileTooLarge",
    "FilesFailed",
    "InvalidRequest",
    "NewWorkspace",
    "Refused",
    "RequestTooLarge",
    "RetryLater",
    "TransitionRefused",
    "VerbResult",
    "collapse_team",
    "console",
    "create_workspace",
    "create_workspaces",
    "delete",
    "edit_problems",
    "edit_workspace",
    "enqueue_generations",
    "expand_team",
    "has_backend",
    "health_sweep",
    "liveness_sweep",
    "move_workspace",
    "orphan_sweep",
    "pause",
    "provision",
    "provision_timeout_sweep",
    "reconcile",
    "reconcile_many",
    "reconcile_sweep",
    "restart",
    "resume",
    "send_message",
    "stop",
    "tier_limit",
    "tier_refusal",
]

# Adapters (pages, admin, commands, API) look verbs up here by name rather than each keeping a
# copy of the list. Values are the functions above; all take (workspace_id=, actor=).
VERBS = {
    "provision": provision,
    "restart": restart,
    "stop": stop,
    "pause": pause,
    "resume": resume,
    "delete": delete,
}
# Verbs that interrupt a running agent: pages ask for confirmation first.
DESTRUCTIVE_VERBS = frozenset({"restart", "stop", "pause", "delete"})
# The team verbs, which every adapter offers beside the lifecycle verbs; move takes a parent.
TEAM_VERBS = {"expand": expand_team, "collapse": collapse_team}
