"""The redaction row's scenario: a secret planted in a workspace, then looked for everywhere the
console shows or keeps what that workspace says (workspaces/redaction.py).

Run like every scenario (workspaces/scenarios.py): a real workspace on the backend under test,
its real agent. The agent is handed the secret in its environment, then told it in a message;
it says it back (its A2A answer), writes it into its log (its console output), and a file holding
it sits in its configs directory. None of them may show the value, and no event may keep it.
"""

from __future__ import annotations

import json

from workspaces import dispatch, vault
from workspaces.dispatch import files
from workspaces.models import StructureEvent
from workspaces.scenarios import ACTOR, Context, _expect

PLANTED_KEY = "PARITY_PLANTED"
PLANTED = "pl4nted-Secret-for-parity-0451"
MASK = f"[secret:{PLANTED_KEY}]"


def scenario_redaction(ctx: Context) -> None:
    workspace = ctx.online("redaction")
    vault.set_secret(workspace_id=workspace.pk, key=PLANTED_KEY, value=PLANTED, actor=ACTOR)
    dispatch.restart(workspace_id=workspace.pk, actor=ACTOR)
    ctx.wait(
        "the restarted agent, holding the planted secret",
        lambda: PLANTED_KEY in (ctx.row(workspace).agent_card or {}).get("secrets", []),
    )

    exchange = dispatch.send_message(
        workspace_id=workspace.pk, actor=ACTOR, text=f"remember {PLANTED} for me"
    )
    _expect(PLANTED not in exchange.text, "the A2A answer shows the secret")
    _expect(MASK in exchange.text, f"the A2A answer is not masked: {exchange.text!r}")

    console = ctx.wait(
        "the agent's log of the message",
        lambda: (
            (shown := dispatch.console(workspace_id=workspace.pk)) and "heard:" in shown and shown
        ),
    )
    _expect(PLANTED not in console, "the console output shows the secret")
    _expect(MASK in console, "the console output does not show the masked message")

    files.write_file(
        workspace_id=workspace.pk,
        actor=ACTOR,
        root="configs",
        path="notes/planted.txt",
        data=f"token={PLANTED}\n".encode(),
        upload=True,
    )
    shown = files.read_file(workspace_id=workspace.pk, root="configs", path="notes/planted.txt")
    _expect(shown.text == f"token={MASK}\n", f"the file is shown as {shown.text!r}")
    downloaded = files.download(workspace_id=workspace.pk, root="configs", path="notes/planted.txt")
    _expect(PLANTED.encode() not in downloaded, "the file's download holds the secret")

    kept = json.dumps(
        list(StructureEvent.objects.filter(workspace=workspace).values_list("payload", flat=True))
    )
    _expect(PLANTED not in kept, "an event keeps the secret")
    row = ctx.row(workspace)
    reported = json.dumps([row.agent_card, row.current_task, row.last_sample_error])
    _expect(PLANTED not in reported, "what the agent reported shows the secret")
