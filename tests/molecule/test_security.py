"""Issue 9's security half: login throttling, a Content-Security-Policy on every response, and
`manage.py check --deploy` clean in the production profile (while the embedded default keeps
serving plain HTTP)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

ROOT = Path(settings.BASE_DIR)
WRONG = "not-the-password"

pytestmark = pytest.mark.django_db


# --- login throttling ---------------------------------------------------------------------------


def log_in(client: Client, username: str, password: str, path: str = "/accounts/login/") -> Any:
    return client.post(path, {"username": username, "password": password})


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("olga", password="the-right-one")


def test_five_wrong_passwords_lock_the_username_from_that_address(user: User, caplog) -> None:
    client = Client()
    for _ in range(settings.MOLECULE_LOGIN_FAILURES):
        assert log_in(client, "olga", WRONG).status_code == 200
    # Locked: even the right password is refused now, with a sentence and a delay to wait.
    response = log_in(client, "olga", "the-right-one")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 60
    assert (
        "Too many failed logins for this username from your address. Try again in 15 minutes."
        in (response.content.decode())
    )
    assert "_auth_user_id" not in client.session
    assert any(
        r.name == "molecule.login" and "olga" in r.getMessage() and "127.0.0.1" in r.getMessage()
        for r in caplog.records
    )


def test_the_refusal_is_the_same_whether_the_user_exists_or_not(user: User) -> None:
    answers = []
    for username in ("olga", "nobody-by-that-name"):
        client = Client()
        for _ in range(settings.MOLECULE_LOGIN_FAILURES):
            log_in(client, username, WRONG)
        response = log_in(client, username, WRONG)
        page = response.content.decode().replace(username, "?")
        answers.append((response.status_code, re.sub(r"[A-Za-z0-9]{64}", "", page)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 429


def test_another_address_or_username_is_not_locked(user: User) -> None:
    for _ in range(settings.MOLECULE_LOGIN_FAILURES):
        log_in(Client(), "olga", WRONG)
    assert log_in(Client(), "someone-else", WRONG).status_code == 200
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert log_in(elsewhere, "olga", "the-right-one").status_code == 302


def test_a_success_before_the_limit_clears_the_count(user: User) -> None:
    client = Client()
    for _ in range(settings.MOLECULE_LOGIN_FAILURES - 1):
        log_in(client, "olga", WRONG)
    assert log_in(client, "olga", "the-right-one").status_code == 302
    client = Client()
    for _ in range(settings.MOLECULE_LOGIN_FAILURES - 1):
        log_in(client, "olga", WRONG)
    assert log_in(client, "olga", "the-right-one").status_code == 302


def test_the_admin_login_counts_and_refuses_alike(superuser: User) -> None:
    client = Client()
    for _ in range(settings.MOLECULE_LOGIN_FAILURES):
        log_in(client, "root", WRONG, "/admin/login/")
    response = log_in(client, "root", "pw-root", "/admin/login/")
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The console's door shares the count.
    assert log_in(client, "root", "pw-root").status_code == 429


def test_the_lock_passes(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from orgs import login_throttle

    client = Client()
    for _ in range(settings.MOLECULE_LOGIN_FAILURES):
        log_in(client, "olga", WRONG)
    now = login_throttle.time.time()
    monkeypatch.setattr(
        login_throttle.time, "time", lambda: now + settings.MOLECULE_LOGIN_LOCKOUT + 1
    )
    assert log_in(client, "olga", "the-right-one").status_code == 302


def test_the_cache_is_one_every_web_process_shares() -> None:
    backend = settings.CACHES["default"]["BACKEND"]
    assert backend == "django.core.cache.backends.db.DatabaseCache"


# --- Content-Security-Policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/",
        "/",
        "/orgs/",
        "/events/",
        "/tokens/",
        "/no-such-page/",
        "/static/css/console.css",
        "/static/js/console.js",
        "/api/v1/orgs",
        "/registry/heartbeat",
    ],
)
def test_every_response_carries_the_policy(superuser: User, path: str) -> None:
    client = Client()
    client.force_login(superuser)
    policy = client.get(path)["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self';" in policy
    assert "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy


def test_the_admin_allows_inline_styles_and_nothing_else_more(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)
    for path in ("/admin/", "/admin/login/", "/admin/orgs/org/add/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "style-src 'self' 'unsafe-inline'" in policy
        assert "script-src 'self';" in policy


def test_no_template_has_an_inline_script_handler_or_style() -> None:
    """What the policy would block: inline <script>, on*= handlers, hx-on (eval), style=
    (the admin's own templates excepted: the admin's policy allows inline styles)."""
    found = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)", r"\son[a-z]+=", r"hx-on", r"<style"):
            if re.search(pattern, text):
                found.append(f"{template.relative_to(ROOT)}: {pattern}")
        if "style=" in text and "templates/admin/" not in str(template):
            found.append(f"{template.relative_to(ROOT)}: style=")
    assert found == []


# --- check --deploy -----------------------------------------------------------------------------


def check_deploy(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MOLECULE_", "SECURE_", "SESSION_", "CSRF_", "DEBUG", "DATABASE"))
    }
    env |= {"MOLECULE_VAR_DIR": str(tmp_path / "var"), **extra}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_the_production_profile(tmp_path: Path) -> None:
    done = check_deploy(tmp_path, MOLECULE_PROFILE="production")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_each_production_setting_can_be_turned_off_and_check_deploy_says_so(tmp_path) -> None:
    done = check_deploy(
        tmp_path,
        MOLECULE_PROFILE="production",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
    )
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr + done.stdout


def test_the_embedded_default_serves_plain_http(settings: Any) -> None:
    # The test settings are the embedded default's: no redirect, cookies over plain HTTP too.
    assert settings.MOLECULE_PROFILE == "embedded"
    assert not settings.SECURE_SSL_REDIRECT
    assert not settings.SESSION_COOKIE_SECURE and not settings.CSRF_COOKIE_SECURE
    assert settings.SECURE_HSTS_SECONDS == 0
    assert Client().get("/accounts/login/").status_code == 200
