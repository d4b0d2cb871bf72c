"""One rule for workspace_dir, applied by import and by every backend that uses one."""

from __future__ import annotations

import pytest

from workspaces.backends import BackendError, InstanceSpec
from workspaces.backends.local import LocalBackend
from workspaces.paths import workspace_dir_problem
from workspaces.tiers import tier_settings


@pytest.mark.parametrize("path", ["/srv/acme/pm", "/home/ops/pm", "/data/ws"])
def test_a_directory_of_its_own_is_accepted(path):
    assert workspace_dir_problem(path) is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "must be a non-empty string"),
        ("srv/acme", "must be an absolute path"),
        ("/srv/../etc", "must not contain '..'"),
        ("/srv", "/srv is a whole top-level directory"),
        ("/usr/local/ws", "/usr/local/ws is a system path"),
        ("/etc/", "/etc/ is a system path"),
    ],
)
def test_a_dangerous_directory_is_refused_with_its_reason(path, problem):
    assert workspace_dir_problem(path) == problem


def test_the_local_backend_refuses_a_system_directory_before_creating_it(tmp_path):
    spec = InstanceSpec(
        workspace_id="w1",
        name="w",
        org_slug="acme",
        runtime="x",
        tier=tier_settings(2),
        generation=1,
        env={},
        workspace_dir="/usr/local/molecule-test-ws",
    )
    with pytest.raises(BackendError, match="is a system path") as refused:
        LocalBackend(tmp_path).start(spec)
    assert refused.value.permanent
    assert not (tmp_path / "w1" / "instance.json").exists()
