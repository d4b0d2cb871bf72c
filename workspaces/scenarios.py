"""Contract scenarios: what each row of the parity matrix checks, run against one backend.

Each scenario drives real workspaces through dispatch on the backend under test (agents really
start, register and heartbeat), observes the result through the rows and through
``dispatch.probes``, and raises ``ScenarioFailed`` with a sentence when the backend does not do
what the row says. The same functions run in ``manage.py parity --check``, from the parity page,
and in the contract tests (tests/contract/).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.db import transaction

from orgs import services as org_services
from orgs.models import Org
from workspaces import dispatch
from workspaces.dispatch import probes
from workspaces.models import EventType, Status, Workspace, WorkspaceFile
from workspaces.tiers import tier_settings

T = TypeVar("T")
ACTOR = "system:parity"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ScenarioFailed(AssertionError):
    pass


class ScenarioSkipped(Exception):
    pass


class Context:
    """One backend's scenarios in one run: an org of their own, waits, and clean-up."""

    def __init__(self, *, backend: str, org: Org, timeout: float) -> None:
        self.backend, self.org, self.timeout = backend, org, timeout
        self.created: list[Any] = []
        # Every org the scenarios made (the context's own, the import's): each is archived at
        # the end, so a check leaves no active scratch org behind.
        self.orgs: list[Org] = [org]

    @classmethod
    @contextlib.contextmanager
    def open(cls, *, backend: str, label: str, timeout: float) -> Iterator[Context]:
        # Through the org service like any org: validated, with its ORG_CREATED event.
        org = org_services.create_org(
            slug=f"parity-{label}-{backend}"[:64],
            name=f"Parity check {label} ({backend})",
            backend=backend,
            actor=ACTOR,
            via="parity",
            # The check verifies what every tier grants, T3 and T4 included: an operator's run.
            privileged_tiers=True,
        )
        context = cls(backend=backend, org=org, timeout=timeout)
        try:
            yield context
        finally:
            context.cleanup()
            context.archive()

    # --- helpers --------------------------------------------------------------------------
    def wait(self, what: str, probe: Callable[[], T], *, timeout: float | None = None) -> T:
        deadline = time.monotonic() + (timeout or self.timeout)
        value = probe()
        while not value:
            if time.monotonic() > deadline:
                raise ScenarioFailed(f"{what} did not happen within {timeout or self.timeout:g}s")
            time.sleep(0.2)
            value = probe()
        return value

    def row(self, workspace: Workspace) -> Workspace:
        return Workspace.objects.get(pk=workspace.pk)

    def create(self, name: str, **fields: Any) -> Workspace:
        workspace = dispatch.create_workspace(org=self.org, name=name, actor=ACTOR, **fields)
        self.created.append(workspace.pk)
        return workspace

    def reach(self, workspace: Workspace, status: str, *, what: str = "") -> Workspace:
        def arrived() -> Workspace | None:
            row = self.row(workspace)
            if row.status == Status.FAILED and status != Status.FAILED:
                event = row.events.first()
                raise ScenarioFailed(
                    f"{row.name} failed instead of reaching {status}: "
                    f"{event.payload.get('error', '') if event else ''}"
                )
            return row if row.status == status else None

        return self.wait(what or f"{workspace.name} reaching {status}", arrived)

    def online(self, name: str, **fields: Any) -> Workspace:
        return self.reach(self.create(name, **fields), Status.ONLINE)

    def gone(self, shot: probes.Snapshot, what: str) -> None:
        # Not running is not enough: an agent exits by itself once its token is refused, while
        # the instance (a container, a VM) may live on. Gone means the backend released it.
        self.wait(
            what,
            lambda: not probes.running(shot) and not probes.listed(shot.backend, shot.instance_id),
        )

    def cleanup(self) -> None:
        for workspace_id in self.created:
            with contextlib.suppress(dispatch.Refused, Workspace.DoesNotExist):
                dispatch.delete(workspace_id=workspace_id, actor=ACTOR)
        self.created.clear()

    def archive(self) -> None:
        """Archive every scratch org; whatever still lives in one is deleted through dispatch."""
        for org in self.orgs:
            with contextlib.suppress(org_services.OrgNotFound):
                org_services.archive_org(org_id=org.pk, actor=ACTOR, cascade=True)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


# --- the scenarios, one per row of workspaces/parity.py -------------------------------------------


def scenario_provision(ctx: Context) -> None:
    workspace = ctx.online("provision")
    _expect(bool(workspace.instance_id), "online without an instance id")
    _expect(probes.running(probes.snapshot(workspace)), "online but the backend says not running")


def scenario_stop(ctx: Context) -> None:
    workspace = ctx.online("stop")
    shot = probes.snapshot(workspace)
    dispatch.stop(workspace_id=workspace.pk, actor=ACTOR)
    ctx.reach(workspace, Status.OFFLINE)
    ctx.gone(shot, "the instance stopping")


def scenario_restart(ctx: Context) -> None:
    workspace = ctx.online("restart")
    shot = probes.snapshot(workspace)
    dispatch.restart(workspace_id=workspace.pk, actor=ACTOR)
    ctx.wait(
        "a new instance coming online",
        lambda: (
            (row := ctx.row(workspace)).status == Status.ONLINE
            and row.instance_id != shot.instance_id
        ),
    )
    ctx.gone(shot, "the old instance stopping")


def scenario_pause_resume(ctx: Context) -> None:
    workspace = ctx.online("pause")
    shot = probes.snapshot(workspace)
    dispatch.pause(workspace_id=workspace.pk, actor=ACTOR)
    ctx.reach(workspace, Status.PAUSED)
    ctx.gone(shot, "the paused instance stopping")
    dispatch.resume(workspace_id=workspace.pk, actor=ACTOR)
    ctx.reach(workspace, Status.ONLINE)


def scenario_delete_storage(ctx: Context) -> None:
    workspace = ctx.online("delete")
    shot = probes.snapshot(workspace)
    _expect(probes.storage_exists(shot) is not False, "no storage even before delete")
    dispatch.delete(workspace_id=workspace.pk, actor=ACTOR)
    ctx.reach(workspace, Status.REMOVED)
    ctx.gone(shot, "the deleted instance stopping")
    if probes.storage_exists(shot) is None:
        raise ScenarioSkipped("the backend cannot tell whether storage exists")
    ctx.wait("the storage being removed", lambda: probes.storage_exists(shot) is False)


def scenario_org_import(ctx: Context) -> None:
    from orgs import importer

    source = (
        f"name: Parity import\nslug: {ctx.org.slug}-imp\nbackend: {ctx.backend}\n"
        "workspaces:\n  - name: Lead\n    children:\n      - {name: Member}\n"
    )
    result = importer.import_org(source, actor=ACTOR)
    ctx.orgs.append(result.org)
    ids = [w.pk for w in Workspace.objects.filter(org=result.org)]
    ctx.created += ids
    _expect(len(ids) == 2, f"the import created {len(ids)} workspaces, not 2 ({result})")
    for workspace in Workspace.objects.filter(pk__in=ids):
        _expect(workspace.backend == ctx.backend, f"{workspace.name} went to {workspace.backend}")
        ctx.reach(workspace, Status.ONLINE)


def scenario_team(ctx: Context) -> None:
    lead = ctx.online("lead", spec={"children": [{"name": "member-a"}, {"name": "member-b"}]})
    result = dispatch.expand_team(workspace_id=lead.pk, actor=ACTOR)
    ctx.created += [child.pk for child in result.moved]
    children = [ctx.reach(child, Status.ONLINE) for child in result.moved]
    shots = [probes.snapshot(child) for child in children]
    dispatch.collapse_team(workspace_id=lead.pk, actor=ACTOR)
    for child, shot in zip(children, shots, strict=True):
        ctx.reach(child, Status.REMOVED)
        ctx.gone(shot, f"{child.name}'s instance stopping")


def scenario_secrets(ctx: Context) -> None:
    from workspaces import vault

    workspace = ctx.online("secrets")
    vault.set_secret(workspace_id=workspace.pk, key="PARITY_TOKEN", value="s3cret", actor=ACTOR)
    dispatch.restart(workspace_id=workspace.pk, actor=ACTOR)
    ctx.wait(
        "the agent reporting the secret in its environment",
        lambda: "PARITY_TOKEN" in (ctx.row(workspace).agent_card or {}).get("secrets", []),
    )


def _console_facts() -> dict[str, str]:
    with open("/proc/self/status") as proc_status:
        status = dict(line.split(":", 1) for line in proc_status.read().splitlines() if ":" in line)
    return {
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "net_namespace": os.readlink("/proc/self/ns/net"),
        "capabilities": status.get("CapBnd", "").strip(),
    }


def isolation_mismatches(tier: int, facts: dict[str, Any], host: dict[str, str]) -> list[str]:
    """What an agent's isolation facts contradict in its tier's promise, as sentences."""
    settings = tier_settings(tier)
    problems = []

    def check(ok: bool, sentence: str) -> None:
        if not ok:
            problems.append(sentence)

    # Privileged: every capability the console's host has (the agent's set covers the host's).
    host_caps = int(host["capabilities"] or "0", 16)
    privileged = int(facts.get("capabilities") or "0", 16) & host_caps == host_caps
    host_pid = facts.get("pid_namespace") == host["pid_namespace"]
    host_net = facts.get("net_namespace") == host["net_namespace"]
    check(
        facts.get("root_writable") is not settings.read_only_rootfs,
        "root filesystem writability does not match the tier",
    )
    check(bool(facts.get("tmp_writable")), "/tmp is not writable")
    check(
        bool(facts.get("workspace_dir")) is settings.workspace_volume,
        "/workspace presence does not match the tier",
    )
    if settings.memory_bytes:
        limit = facts.get("memory_limit")
        check(
            limit is not None and limit <= settings.memory_bytes,
            f"memory limit is {limit}, not at most {settings.memory_bytes}",
        )
    if settings.cpus:
        check(
            float(facts.get("cpu_limit") or 0) <= settings.cpus,
            f"CPU limit is {facts.get('cpu_limit')}, not at most {settings.cpus:g}",
        )
    check(
        privileged is settings.privileged,
        f"privileged is {privileged}, the tier says {settings.privileged}",
    )
    check(
        host_pid is settings.host_pid,
        f"host PID namespace is {host_pid}, the tier says {settings.host_pid}",
    )
    check(
        host_net is settings.host_network,
        f"host network is {host_net}, the tier says {settings.host_network}",
    )
    socket = bool(facts.get("engine_socket"))
    check(
        socket is settings.engine_socket,
        f"engine socket is {socket}, the tier says {settings.engine_socket}",
    )
    return problems


def _tier(ctx: Context, tier: int) -> None:
    workspace = ctx.online(f"tier-{tier}", tier=tier)
    facts = (workspace.agent_card or {}).get("isolation")
    _expect(isinstance(facts, dict), "the agent reported no isolation facts")
    problems = isolation_mismatches(tier, facts, _console_facts())
    _expect(not problems, "; ".join(problems))


def scenario_tier_1(ctx: Context) -> None:
    _tier(ctx, 1)


def scenario_tier_2(ctx: Context) -> None:
    _tier(ctx, 2)


def scenario_tier_3(ctx: Context) -> None:
    _tier(ctx, 3)


def scenario_tier_4(ctx: Context) -> None:
    _tier(ctx, 4)


def scenario_console(ctx: Context) -> None:
    workspace = ctx.online("console")
    ctx.wait("console output", lambda: dispatch.console(workspace_id=workspace.pk).strip())


def scenario_liveness(ctx: Context) -> None:
    workspace = ctx.online("liveness")
    shot = probes.snapshot(workspace)
    probes.lose_instance(workspace)

    def noticed() -> bool:
        dispatch.health_sweep()
        return ctx.row(workspace).instance_id != shot.instance_id

    ctx.wait("the health sweep noticing the lost instance", noticed)
    ctx.wait(
        "the restarted workspace coming online",
        lambda: ctx.row(workspace).status == Status.ONLINE,
    )


def scenario_orphans(ctx: Context) -> None:
    instance_id = probes.start_unowned(ctx.backend, org_slug=ctx.org.slug)
    ctx.wait("the stray instance being listed", lambda: probes.listed(ctx.backend, instance_id))
    removed = dispatch.orphan_sweep(grace=0)
    _expect(instance_id in removed, f"the orphan sweep did not stop {instance_id}")
    ctx.wait("the stray instance going away", lambda: not probes.listed(ctx.backend, instance_id))


def scenario_url(ctx: Context) -> None:
    workspace = ctx.online("url")
    host = urlsplit(workspace.url).hostname or ""
    if host not in LOOPBACK:
        raise ScenarioSkipped(f"{workspace.url} is not on loopback; the check only probes loopback")
    with urllib.request.urlopen(workspace.url.rstrip("/") + "/health", timeout=10) as response:
        _expect(response.status == 200, f"{workspace.url}/health answered {response.status}")


def scenario_runtime_from_db(ctx: Context) -> None:
    workspace = ctx.online("runtime", runtime="langgraph")
    Workspace.objects.filter(pk=workspace.pk).update(runtime="hermes")
    dispatch.restart(workspace_id=workspace.pk, actor=ACTOR)
    ctx.wait(
        "the restarted agent reporting the runtime from the database",
        lambda: (ctx.row(workspace).agent_card or {}).get("runtime") == "hermes",
    )


# --- what a template carries reaches the agent (docs/agent-contract.md) --------------------------

TEMPLATE_FILES = {
    "skills/research/SKILL.md": b"# Research\nRead the sources before writing.\n",
    "notes/seed.bin": bytes(range(256)) * 4,
    "README.md": "Unicode survives: \u00fcber, \u2713\n".encode(),
}
SYSTEM_PROMPT = "You are the parity check's agent."
MEMORIES = [
    {"content": "The parity check seeded this memory.", "scope": "LOCAL"},
    {"content": "The team remembers this.", "scope": "TEAM"},
    {"content": "Everyone remembers this.", "scope": "GLOBAL"},
]
PLUGINS = ["molecule-dev", "browser-automation"]


def _templated(
    ctx: Context,
    name: str,
    *,
    template: dict[str, Any],
    files: dict[str, bytes] | None = None,
    **fields: Any,
) -> Workspace:
    """A workspace whose template settings and files are on the row before its first start, as
    the org import leaves them (created in one transaction: it starts when that commits)."""
    with transaction.atomic():
        workspace = ctx.create(name, **fields)
        Workspace.objects.filter(pk=workspace.pk).update(template=template)
        for path, content in (files or {}).items():
            WorkspaceFile.objects.create(
                workspace_id=workspace.pk, path=path, content=content, size=len(content)
            )
    return ctx.reach(workspace, Status.ONLINE)


def _configs(ctx: Context, workspace: Workspace) -> dict[str, Any]:
    """What the agent reported of its configs directory (its card's ``configs``)."""
    return (ctx.row(workspace).agent_card or {}).get("configs") or {}


def scenario_template_files(ctx: Context) -> None:
    workspace = _templated(
        ctx, "template-files", template={"system_prompt": SYSTEM_PROMPT}, files=TEMPLATE_FILES
    )
    report = ctx.wait("the agent reporting its configs", lambda: _configs(ctx, workspace))
    found = report.get("files") or {}
    expected = TEMPLATE_FILES | {"system-prompt.md": SYSTEM_PROMPT.encode()}
    for path, content in expected.items():
        _expect(
            found.get(path) == hashlib.sha256(content).hexdigest(),
            f"the agent found {'other bytes at' if path in found else 'no'} {path} in its "
            "configs directory",
        )
    _expect(
        report.get("token_mode") == "0600",
        f"the agent's .auth_token has mode {report.get('token_mode') or '(none)'}, not 0600",
    )


def scenario_memories(ctx: Context) -> None:
    workspace = _templated(
        ctx, "memories", template={"initial_memories": MEMORIES, "plugins": PLUGINS}
    )
    report = ctx.wait("the agent reporting its configs", lambda: _configs(ctx, workspace))
    _expect(
        report.get("initial_memories") == len(MEMORIES),
        f"the agent's config.yaml holds {report.get('initial_memories')} initial memories, "
        f"not {len(MEMORIES)}",
    )
    _expect(
        report.get("plugins") == PLUGINS,
        f"the agent's config.yaml lists the plugins {report.get('plugins')}, not {PLUGINS}",
    )


def scenario_config_restart(ctx: Context) -> None:
    workspace = _templated(
        ctx, "config-restart", template={"model": "parity:model-a"}, role="first role"
    )
    ctx.wait(
        "the agent reporting its first model and role",
        lambda: (
            (report := _configs(ctx, workspace)).get("model") == "parity:model-a"
            and report.get("role") == "first role"
        ),
    )
    dispatch.edit_workspace(workspace_id=workspace.pk, actor=ACTOR, role="second role")
    Workspace.objects.filter(pk=workspace.pk).update(template={"model": "parity:model-b"})
    dispatch.restart(workspace_id=workspace.pk, actor=ACTOR)

    def restarted() -> bool:
        report = _configs(ctx, workspace)
        return report.get("model") == "parity:model-b" and report.get("role") == "second role"

    ctx.wait("the restarted agent's config.yaml holding the new model and role", restarted)


# --- reaching into a workspace ----------------------------------------------------------------

A2A_TEXT = "Parity check: are you there? \u2713"


def scenario_a2a(ctx: Context) -> None:
    workspace = ctx.online("a2a")
    exchange = dispatch.send_message(workspace_id=workspace.pk, actor=ACTOR, text=A2A_TEXT)
    expected = f"{workspace.name} heard: {A2A_TEXT}"
    _expect(exchange.text == expected, f"the agent answered {exchange.text!r}, not {expected!r}")
    event = ctx.row(workspace).events.filter(event_type=EventType.A2A_MESSAGE).first()
    _expect(event is not None, "the exchange left no A2A_MESSAGE event")
    payload = event.payload if event else {}
    _expect(payload.get("status") == 200, f"the event records the status {payload.get('status')}")
    _expect(
        A2A_TEXT not in str(payload) and "heard" not in str(payload),
        "the exchange's event holds the message's text",
    )
