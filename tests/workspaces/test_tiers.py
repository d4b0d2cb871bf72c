from __future__ import annotations

import pytest

from workspaces.tiers import MiB, is_known_tier, tier_settings


@pytest.mark.parametrize("tier", [0, None, 5, -1, 99])
def test_unknown_or_zero_tier_means_standard(tier):
    assert tier_settings(tier) == tier_settings(2)


def test_tiers_widen_isolation_step_by_step():
    t1, t2, t3, t4 = (tier_settings(n) for n in (1, 2, 3, 4))
    assert (t1.read_only_rootfs, t1.tmpfs_tmp, t1.workspace_volume) == (True, True, False)
    assert (t2.memory_bytes, t2.cpus, t2.workspace_volume) == (512 * MiB, 1.0, True)
    assert not t2.privileged
    assert (t3.privileged, t3.host_pid, t3.host_network) == (True, True, False)
    assert (t4.privileged, t4.host_pid, t4.host_network, t4.engine_socket) == (True,) * 4


@pytest.mark.parametrize(("value", "known"), [(1, True), (4, True), (0, False), (True, False)])
def test_is_known_tier_accepts_only_the_four_tiers(value, known):
    assert is_known_tier(value) is known
