"""var/ holds the console's secrets: nobody else lists it, and every file of the console's there
is its own (0600). Local agents run as users of their own (the console is root) and must pass
through var/ to their directories under var/workspaces, so var/ is 0711 rather than 0700.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_settings(var: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MOLECULE_", "DATABASE_URL", "SECRET_KEY", "SECRETS_", "DJANGO_"))
    }
    env |= {"MOLECULE_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "molecule.settings"}
    subprocess.run(
        [sys.executable, "-c", "import molecule.settings"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )


def test_var_can_be_passed_through_but_not_listed_and_its_files_are_private(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    # Written before the console tightened anything (an older version, a careless hand).
    (var / "admin-password").write_text("hunter2")
    (var / "admin-password").chmod(0o644)

    load_settings(var)

    assert mode(var) == 0o711
    for name in ("secret_key", "secrets_encryption_key", "admin-password", "molecule.sqlite3"):
        assert mode(var / name) == 0o600, name
    assert mode(var / "broker") == 0o700
    # SQLite's write-ahead log and shared memory take the database file's mode.
    with sqlite3.connect(var / "molecule.sqlite3") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        assert mode(var / "molecule.sqlite3-wal") == mode(var / "molecule.sqlite3-shm") == 0o600
