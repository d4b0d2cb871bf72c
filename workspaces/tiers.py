"""Tiers: one pure function from a tier number to the runtime settings every backend applies.

T1 sandboxed  - read-only root filesystem, tmpfs /tmp, no /workspace, 512 MiB, 1 CPU
T2 standard   - 512 MiB, 1 CPU, a /workspace volume (the default, also for 0 or unknown)
T3 privileged - T2's volume, no memory/CPU cap, privileged, host PID namespace, workspace network
T4 full access- T3 plus the host network and the container engine's socket

The limits follow molecule-core's workspace-tiers.md: the privileged tiers exist for agents that
manage other processes, so they are not squeezed into the standard box.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class TierSettings:
    tier: int
    label: str
    read_only_rootfs: bool
    tmpfs_tmp: bool
    workspace_volume: bool
    memory_bytes: int | None
    cpus: float | None
    privileged: bool
    host_pid: bool
    host_network: bool
    engine_socket: bool


_TIERS = {
    1: TierSettings(
        1, "T1 sandboxed", True, True, False, 512 * MiB, 1.0, False, False, False, False
    ),
    2: TierSettings(
        2, "T2 standard", False, False, True, 512 * MiB, 1.0, False, False, False, False
    ),
    3: TierSettings(3, "T3 privileged", False, False, True, None, None, True, True, False, False),
    4: TierSettings(4, "T4 full access", False, False, True, None, None, True, True, True, True),
}
DEFAULT_TIER = 2
TIER_CHOICES = [(number, settings.label) for number, settings in _TIERS.items()]


def tier_settings(tier: int | None) -> TierSettings:
    """Runtime settings for a tier; 0, None or any unknown number means T2."""
    return _TIERS.get(tier or DEFAULT_TIER, _TIERS[DEFAULT_TIER])


def is_known_tier(tier: object) -> bool:
    return isinstance(tier, int) and not isinstance(tier, bool) and tier in _TIERS
