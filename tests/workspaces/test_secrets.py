"""Workspace secrets: sealed at rest, opened only into the agent's environment, rotatable.

The raw database column never holds a value; a wrong key fails loudly (never garbage, never an
agent started without its secrets); rotation keeps every value readable; the page shows keys
only. The last test starts a real agent and reads the secret from its /proc environment.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.keys import database_text
from tests.support.procs import agent_pids, environ
from tests.support.waiting import wait_for
from workspaces import dispatch, vault
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, StructureEvent, Workspace, WorkspaceSecret

VALUE = "sk-proj-9d8c7b6a-not-for-your-eyes"
HTMX = {"HX-Request": "true"}
MakeWorkspace = Callable[..., Workspace]

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_workspace(recording: dict[str, Any], django_capture_on_commit_callbacks: Any) -> Any:
    def make(org: Org, name: str = "PM", status: str = Status.ONLINE) -> Workspace:
        with django_capture_on_commit_callbacks(execute=True):
            workspace = dispatch.create_workspace(org=org, name=name, actor="test")
        Workspace.objects.filter(pk=workspace.pk).update(status=status)
        workspace.refresh_from_db()
        return workspace

    return make


def raw_column() -> list[str]:
    """The value column exactly as the database stores it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value_encrypted FROM {WorkspaceSecret._meta.db_table}")
        return [row[0] for row in cursor.fetchall()]


def put(workspace: Workspace, key: str = "OPENAI_API_KEY", value: str = VALUE) -> None:
    vault.set_secret(workspace_id=workspace.pk, key=key, value=value, actor="test")


# --- at rest ------------------------------------------------------------------------------------


def test_the_raw_column_holds_a_versioned_blob_never_the_value(
    org: Org, make_workspace: MakeWorkspace, settings: Any
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    [blob] = raw_column()
    version, kid, payload = blob.split(":")
    assert version == "v1"
    assert kid == vault.key_id(vault.decode_key(settings.SECRETS_ENCRYPTION_KEY, name="k"))
    assert len(base64.urlsafe_b64decode(payload)) == 12 + len(VALUE.encode()) + 16
    assert VALUE not in blob
    assert VALUE not in database_text()
    assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == VALUE


def test_the_same_value_seals_differently_every_time(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    put(workspace, "A")
    put(workspace, "B")
    first, second = raw_column()
    assert first.split(":")[2] != second.split(":")[2]  # a fresh nonce per write


def test_values_are_kept_exactly(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org)
    for key, value in {"SPACES": "  padded  ", "EMPTY": "", "UNICODE": "clé→秘密"}.items():
        put(workspace, key, value)
        assert vault.reveal(workspace_id=workspace.pk, key=key) == value


# --- failing loudly -----------------------------------------------------------------------------


def test_a_wrong_key_fails_loudly_naming_both_key_ids(
    org: Org, make_workspace: MakeWorkspace, settings: Any
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    written_with = raw_column()[0].split(":")[1]
    settings.SECRETS_ENCRYPTION_KEY = vault.new_key()
    with pytest.raises(vault.SecretsUnreadable) as caught:
        vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY")
    message = caught.value.message
    assert f"encrypted under key id {written_with}" in message
    assert "set SECRETS_ENCRYPTION_KEY" in message
    assert VALUE not in message


def test_a_wrong_key_at_provision_fails_the_workspace_instead_of_starting_it(
    org: Org,
    make_workspace: MakeWorkspace,
    settings: Any,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    starts = len(recording["local"].specs)
    settings.SECRETS_ENCRYPTION_KEY = vault.new_key()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    assert len(recording["local"].specs) == starts  # no agent started without its secrets
    event = StructureEvent.objects.filter(workspace=workspace).latest("id")
    assert event.event_type == EventType.WORKSPACE_PROVISION_FAILED
    assert "SECRETS_ENCRYPTION_KEY" in event.payload["error"]
    assert VALUE not in str(event.payload)


def test_a_blob_moved_to_another_workspace_does_not_open(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    ours, theirs = make_workspace(org, "Ours"), make_workspace(org, "Theirs")
    put(ours)
    put(theirs, value="something else")
    stolen = WorkspaceSecret.objects.get(workspace=ours).value_encrypted
    WorkspaceSecret.objects.filter(workspace=theirs).update(value_encrypted=stolen)
    with pytest.raises(vault.SecretsUnreadable, match="failed authentication"):
        vault.reveal(workspace_id=theirs.pk, key="OPENAI_API_KEY")


def test_a_tampered_blob_does_not_open(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org)
    put(workspace)
    blob = raw_column()[0]
    flipped = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    WorkspaceSecret.objects.update(value_encrypted=flipped)
    with pytest.raises(vault.SecretsUnreadable):
        vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY")


def test_an_unknown_blob_version_is_refused(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org)
    put(workspace)
    WorkspaceSecret.objects.update(value_encrypted="v9:abcd:xyz")
    with pytest.raises(vault.SecretsUnreadable, match="not a v1 blob"):
        vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY")


# --- rotation -----------------------------------------------------------------------------------


@pytest.fixture
def several(org: Org, other_org: Org, make_workspace: MakeWorkspace) -> dict[tuple[Any, str], str]:
    values = {}
    for workspace in (
        make_workspace(org, "A"),
        make_workspace(org, "B"),
        make_workspace(other_org),
    ):
        for key in ("ONE", "TWO"):
            value = f"{workspace.name}-{key}-{VALUE}"
            put(workspace, key, value)
            values[(workspace.pk, key)] = value
    return values


def all_readable(values: dict[tuple[Any, str], str]) -> bool:
    return all(
        vault.reveal(workspace_id=ws, key=key) == value for (ws, key), value in values.items()
    )


def test_rotation_re_seals_every_row_and_keeps_every_value_readable(
    several: dict[tuple[Any, str], str], settings: Any
) -> None:
    before = raw_column()
    new = vault.new_key()
    assert vault.rotate(new_key=new) == len(several)
    after = raw_column()
    new_kid = vault.key_id(vault.decode_key(new, name="new"))
    assert {blob.split(":")[1] for blob in after} == {new_kid}
    assert not set(before) & set(after)
    settings.SECRETS_ENCRYPTION_KEY = new
    assert all_readable(several)
    assert VALUE not in database_text()


def test_rotation_with_a_key_that_opens_nothing_changes_nothing(
    several: dict[tuple[Any, str], str], settings: Any
) -> None:
    before = raw_column()
    original = settings.SECRETS_ENCRYPTION_KEY
    settings.SECRETS_ENCRYPTION_KEY = vault.new_key()  # the rows' key is not configured any more
    with pytest.raises(vault.SecretsUnreadable):
        vault.rotate(new_key=vault.new_key())
    assert sorted(raw_column()) == sorted(before)
    settings.SECRETS_ENCRYPTION_KEY = original
    assert all_readable(several)


def test_rotation_opens_rows_with_an_old_key_given_on_the_command_line(
    several: dict[tuple[Any, str], str], settings: Any
) -> None:
    old = settings.SECRETS_ENCRYPTION_KEY
    new = vault.new_key()
    settings.SECRETS_ENCRYPTION_KEY = new  # deployed first; the rows are still under the old key
    out = io.StringIO()
    call_command("rotate_secrets_key", "--new-key", new, "--old-key", old, stdout=out)
    assert f"Re-encrypted {len(several)} secret(s)" in out.getvalue()
    assert all_readable(several)


def test_fallback_keys_open_rows_until_they_are_rotated(
    several: dict[tuple[Any, str], str], settings: Any
) -> None:
    old = settings.SECRETS_ENCRYPTION_KEY
    settings.SECRETS_ENCRYPTION_KEY = vault.new_key()
    settings.SECRETS_ENCRYPTION_KEY_FALLBACKS = [old]
    assert all_readable(several)
    vault.rotate(new_key=settings.SECRETS_ENCRYPTION_KEY)
    settings.SECRETS_ENCRYPTION_KEY_FALLBACKS = []
    assert all_readable(several)


def test_the_command_reads_the_new_key_from_stdin(
    several: dict[tuple[Any, str], str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = vault.new_key()
    monkeypatch.setattr("sys.stdin", io.StringIO(new + "\n"))
    call_command("rotate_secrets_key", "--new-key", "-", stdout=io.StringIO())
    settings.SECRETS_ENCRYPTION_KEY = new
    assert all_readable(several)


@pytest.mark.parametrize("bad", ["short", "bm90IDMyIGJ5dGVz", ""])
def test_the_command_refuses_a_malformed_new_key_and_changes_nothing(
    several: dict[tuple[Any, str], str], bad: str
) -> None:
    before = raw_column()
    with pytest.raises(CommandError, match=r"Nothing was changed: .*32 bytes"):
        call_command("rotate_secrets_key", "--new-key", bad, stdout=io.StringIO())
    assert raw_column() == before


# --- validation and events ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("", "x", "key"),
        ("1ABC", "x", "key"),
        ("A B", "x", "key"),
        ("A-B", "x", "key"),
        ("molecule_token", "x", "key"),
        ("LD_PRELOAD", "x", "key"),
        # The shape is an allowlist: upper case, digits and _, starting with a letter.
        ("openai_api_key", "x", "key"),
        ("OpenAI_Key", "x", "key"),
        ("http_proxy", "x", "key"),
        ("_TOKEN", "x", "key"),
        ("A" * 129, "x", "key"),
        # Reserved: the platform's, the interpreter's (dead weight under python -I) and the
        # dynamic loader's, which acts before any program runs.
        ("MOLECULE_WORKSPACE_TOKEN", "x", "key"),
        ("PATH", "x", "key"),
        ("HOME", "x", "key"),
        ("PYTHONWARNINGS", "x", "key"),
        ("PYTHONSTARTUP", "x", "key"),
        ("LD_AUDIT", "x", "key"),
        ("GLIBC_TUNABLES", "x", "key"),
        ("GCONV_PATH", "x", "key"),
        ("OK", "a\x00b", "value"),
        ("OK", "x" * (32 * 1024 + 1), "value"),
    ],
)
def test_keys_are_environment_variable_names_and_values_fit_an_environment(
    org: Org, make_workspace: MakeWorkspace, key: str, value: str, field: str
) -> None:
    workspace = make_workspace(org)
    with pytest.raises(ValidationError) as caught:
        put(workspace, key, value)
    assert field in caught.value.message_dict
    assert value not in str(caught.value.message_dict) or len(value) < 4
    assert not WorkspaceSecret.objects.exists()


def test_set_and_delete_write_events_that_hold_the_key_only(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    put(workspace, value=VALUE + "-new")
    vault.delete_secret(workspace_id=workspace.pk, key="OPENAI_API_KEY", actor="user:olivia")
    events = StructureEvent.objects.filter(
        event_type__in=[EventType.SECRET_SET, EventType.SECRET_DELETED]
    ).order_by("id")
    assert [(e.event_type, e.payload) for e in events] == [
        (EventType.SECRET_SET, {"key": "OPENAI_API_KEY", "created": True}),
        (EventType.SECRET_SET, {"key": "OPENAI_API_KEY", "created": False}),
        (EventType.SECRET_DELETED, {"key": "OPENAI_API_KEY"}),
    ]
    with pytest.raises(vault.SecretNotFound):
        vault.delete_secret(workspace_id=workspace.pk, key="OPENAI_API_KEY", actor="test")


def test_a_removed_workspace_refuses_new_secrets(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org, status=Status.REMOVED)
    with pytest.raises(Refused):
        put(workspace)
    assert not WorkspaceSecret.objects.exists()


# --- into the agent's environment ---------------------------------------------------------------


def test_secrets_are_in_the_environment_of_every_start(
    org: Org,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    put(workspace, "OTHER", "two")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    env = recording["local"].specs[-1].env
    assert (env["OPENAI_API_KEY"], env["OTHER"]) == (VALUE, "two")


@pytest.mark.parametrize("key", ["A", "OPENAI_API_KEY", "PGPASSWORD", "A1_B2", "BROWSER"])
def test_a_name_of_the_right_shape_is_accepted(
    org: Org, make_workspace: MakeWorkspace, key: str
) -> None:
    assert vault.key_problem(key) is None
    put(make_workspace(org), key)
    assert WorkspaceSecret.objects.get().key == key


@pytest.mark.parametrize("key", ["openai_api_key", "MOLECULE_WORKSPACE_ID", "PYTHONWARNINGS"])
def test_a_stored_name_the_rule_no_longer_accepts_fails_the_start_with_a_sentence(
    org: Org,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    key: str,
) -> None:
    # Written behind validation's back, as a row from before the rule (lower-case names were
    # accepted then) or a hand-edited database would be. It never reaches an agent: the start
    # is refused, saying which secret to delete, and deleting it lets the workspace start.
    workspace = make_workspace(org)
    put(workspace)
    WorkspaceSecret.objects.create(
        workspace=workspace,
        key=key,
        value_encrypted=vault.seal("hijacked", workspace_id=workspace.pk, key=key),
    )
    starts = len(recording["local"].specs)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=workspace.pk, actor="test")
    workspace.refresh_from_db()
    assert workspace.status == Status.FAILED
    assert len(recording["local"].specs) == starts
    event = StructureEvent.objects.filter(workspace=workspace).latest("id")
    assert event.event_type == EventType.WORKSPACE_PROVISION_FAILED
    assert event.payload["error"].startswith(
        f"Workspace 'PM' has secrets whose names no agent is started with: {key!r} ({key!r} "
    )
    assert "Delete them" in event.payload["error"]
    assert "hijacked" not in str(event.payload)

    vault.delete_secret(workspace_id=workspace.pk, key=key, actor="test")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.provision(workspace_id=workspace.pk, actor="test")
    env = recording["local"].specs[-1].env
    assert env.get(key) != "hijacked"
    assert env["MOLECULE_SECRET_KEYS"] == "OPENAI_API_KEY"
    assert env["OPENAI_API_KEY"] == VALUE
    assert recording["local"].specs[-1].workspace_id == str(workspace.pk)


# --- the workspace page -------------------------------------------------------------------------


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def set_url(workspace: Workspace) -> str:
    return reverse("workspace-secret-set", args=[workspace.pk])


def delete_url(workspace: Workspace, key: str) -> str:
    return reverse("workspace-secret-delete", args=[workspace.pk, key])


def test_an_owner_sets_a_secret_on_the_page_and_sees_only_its_key(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client = login(owner)
    response = client.post(set_url(workspace), {"key": "OPENAI_API_KEY", "value": VALUE})
    assert response.status_code == 302
    assert response.url == reverse("workspace", args=[workspace.pk]) + "#secrets"
    assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == VALUE
    event = StructureEvent.objects.filter(workspace=workspace).latest("id")
    assert (event.event_type, event.actor) == (EventType.SECRET_SET, "user:olivia")
    page = client.get(response.url).content.decode()
    assert 'data-secret="OPENAI_API_KEY"' in page
    assert "next start" in page
    assert VALUE not in page


def test_setting_with_htmx_answers_the_secrets_section(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = login(owner).post(set_url(workspace), {"key": "TOKEN", "value": VALUE}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="secrets"' in content
    assert 'data-secret="TOKEN"' in content
    assert "<html" not in content
    assert VALUE not in content


def test_a_bad_key_on_the_page_is_refused_with_a_message_that_never_quotes_the_value(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = login(owner).post(
        set_url(workspace), {"key": "BAD-KEY", "value": VALUE}, follow=True
    )
    content = html.unescape(response.content.decode())
    assert "Secret not set: must be upper-case letters, digits and _" in content
    assert VALUE not in content
    assert not WorkspaceSecret.objects.exists()


def test_a_viewer_sees_keys_but_cannot_set_or_delete(
    org: Org, viewer: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    client = login(viewer)
    page = client.get(reverse("workspace", args=[workspace.pk])).content.decode()
    assert 'data-secret="OPENAI_API_KEY"' in page
    assert set_url(workspace) not in page
    assert client.post(set_url(workspace), {"key": "X", "value": "y"}).status_code == 403
    assert client.post(delete_url(workspace, "OPENAI_API_KEY")).status_code == 403
    assert list(WorkspaceSecret.objects.values_list("key", flat=True)) == ["OPENAI_API_KEY"]


def test_an_outsider_gets_404_for_another_orgs_secrets(
    org: Org, outsider: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    client = login(outsider)
    assert client.post(set_url(workspace), {"key": "X", "value": "y"}).status_code == 404
    assert client.get(delete_url(workspace, "OPENAI_API_KEY")).status_code == 404
    assert client.post(delete_url(workspace, "OPENAI_API_KEY")).status_code == 404
    assert WorkspaceSecret.objects.count() == 1


def test_deleting_on_the_page_asks_first_then_deletes_and_a_second_time_is_404(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    put(workspace)
    client = login(owner)
    confirm = client.get(delete_url(workspace, "OPENAI_API_KEY"))
    assert "Delete secret OPENAI_API_KEY?" in confirm.content.decode()
    assert WorkspaceSecret.objects.exists()
    assert client.post(delete_url(workspace, "OPENAI_API_KEY")).status_code == 302
    assert not WorkspaceSecret.objects.exists()
    assert client.post(delete_url(workspace, "OPENAI_API_KEY")).status_code == 404


def test_setting_a_secret_needs_a_csrf_token(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(set_url(workspace), {"key": "X", "value": "y"}).status_code == 403
    assert not WorkspaceSecret.objects.exists()


# --- a real agent -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_secret_reaches_a_real_agents_environment_and_only_the_key_is_written_down(
    local_fleet: Any, org: Org
) -> None:
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    wait_for(lambda: Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE, timeout=30)
    put(workspace)
    dispatch.restart(workspace_id=workspace.pk, actor="test")
    wait_for(lambda: Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE, timeout=30)
    [pid] = wait_for(lambda: agent_pids(local_fleet, workspace.pk), timeout=10)
    assert environ(pid)["OPENAI_API_KEY"] == VALUE
    assert VALUE not in database_text()
    # Nor in anything the backend wrote to disk for this workspace (logs, records).
    for path in local_fleet.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path


# --- configuration ------------------------------------------------------------------------------


def test_the_embedded_default_generates_one_key_once_and_keeps_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from molecule import settings as project_settings

    monkeypatch.delenv("SECRETS_ENCRYPTION_KEY", raising=False)
    monkeypatch.setattr(project_settings, "VAR_DIR", tmp_path)
    first = project_settings._secrets_encryption_key()
    assert len(vault.decode_key(first, name="generated")) == 32
    assert (tmp_path / "secrets_encryption_key").stat().st_mode & 0o777 == 0o600
    assert project_settings._secrets_encryption_key() == first
    assert [p.name for p in tmp_path.iterdir()] == ["secrets_encryption_key"]


@pytest.mark.parametrize("bad", ["too-short", "bm90IDMyIGJ5dGVz", "!" * 44])
def test_a_malformed_configured_key_stops_the_console_at_start(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from molecule import settings as project_settings

    monkeypatch.setenv("SECRETS_ENCRYPTION_KEY", bad)
    with pytest.raises(ImproperlyConfigured, match="SECRETS_ENCRYPTION_KEY must be 32 random"):
        project_settings._secrets_encryption_key()
    monkeypatch.setenv("SECRETS_ENCRYPTION_KEY", vault.new_key())
    assert project_settings._secrets_encryption_key()


# --- every door asks the one name rule ----------------------------------------------------------


@pytest.mark.parametrize("key", ["openai_api_key", "PYTHONWARNINGS", "LD_AUDIT"])
def test_every_door_refuses_a_name_with_the_rules_own_sentence(
    org: Org, owner: User, make_workspace: MakeWorkspace, tmp_path: Any, key: str
) -> None:
    from orgs.importer import InvalidOrgFile, import_org
    from tests.support.keys import api, mint_token

    why = vault.key_problem(key)
    assert why
    workspace = make_workspace(org)
    # The JSON API.
    response = api(mint_token(org)).put(
        f"orgs/{org.slug}/workspaces/{workspace.pk}/secrets/{key}", {"value": VALUE}
    )
    assert (response.status_code, response.json()["fields"]) == (400, {"key": [why]})
    # The workspace page.
    page = login(owner).post(set_url(workspace), {"key": key, "value": VALUE}, follow=True)
    assert f"Secret not set: {why}" in html.unescape(page.content.decode())
    # Org import's required_env, from the page or the API (the service) ...
    text = f"name: Doors\nslug: doors\nrequired_env: [{key}]\nworkspaces:\n  - name: PM\n"
    with pytest.raises(InvalidOrgFile) as invalid:
        import_org(text, actor="test", env={key: VALUE})
    assert [str(p) for p in invalid.value.problems] == [
        f"line 3: required_env[0]: cannot name a secret: {why}"
    ]
    # ... and from the command, with --env.
    path = tmp_path / "doors.yaml"
    path.write_text(text)
    with pytest.raises(CommandError) as refused:
        call_command("import_org", str(path), "--env", f"{key}={VALUE}", stdout=io.StringIO())
    assert f"line 3: required_env[0]: cannot name a secret: {why}" in str(refused.value)
    assert VALUE not in str(refused.value)
    assert not WorkspaceSecret.objects.exists()
