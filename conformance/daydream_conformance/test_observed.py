"""Memory and CPU, seen from inside the instance: the suite's `observe` component reports the
platform's own word (`ComponentContext.platform`), its address-space and cgroup memory limits
and its CPU set, and the suite compares those with the tier, not with the adapter's result.

A limit the instance shares with this process, on this machine, is the host's (the fake runs
environments here) and says nothing about the tier; every other limit is the platform's for
this instance and must be the tier's.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from daydream_conformance.support import TIMEOUT_S, Payload
from daydream_conformance.workflow import limits
from daydream_core.model import TIER_NAMES, Tier
from daydream_core.provider import FunctionHandle, Provider

MEMORY_TOLERANCE = 0.01  # an instance's limits may round the tier's memory, not change it
CPU_UNOBSERVABLE = "the instance's CPU share cannot be seen from inside here"


def instance_memory_limits(seen: dict[str, Any], here: dict[str, Any]) -> dict[str, float]:
    """The memory limits an instance has of its own, by where it saw them."""
    own: dict[str, float] = {}
    memory = seen["platform"].get("memory_mb")
    if memory is not None:
        own["the platform's context"] = float(memory)
    same_host = bool(seen["host"]) and seen["host"] == here["host"]
    for key, source in (("rlimit_as_mb", "RLIMIT_AS"), ("cgroup_memory_mb", "cgroup memory.max")):
        value = seen[key]
        if value is None or (same_host and value == here[key]):
            continue  # no limit, or the host's own
        own[source] = float(value)
    return own


@pytest.mark.parametrize("tier_name", TIER_NAMES)
def test_instances_run_with_their_tier_memory(
    tier_name: str,
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    tier = daydream_provider.tiers()[tier_name]
    seen = daydream_provider.invoke(
        daydream_functions[tier_name], daydream_payload("observe"), TIMEOUT_S
    ).output
    own = instance_memory_limits(seen, limits())
    assert own, (
        f"the {tier_name} instance sees no memory limit of its own: fill ComponentContext."
        "platform['memory_mb'] from the platform's context, or run it in a real envelope"
    )
    for source, memory_mb in own.items():
        assert memory_mb == pytest.approx(tier.memory_mb, rel=MEMORY_TOLERANCE), (
            f"the {tier_name} instance runs with {memory_mb:g} MB by {source}; its tier has "
            f"{tier.memory_mb} MB"
        )


@pytest.mark.parametrize("tier_name", TIER_NAMES)
def test_instances_run_with_their_tier_cpu_share(
    tier_name: str,
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    """Checked where the instance can see its share: the platform's word, or a CPU set that is
    narrower than this host's (on a share below one CPU, or at the host's size, it cannot)."""
    tier = daydream_provider.tiers()[tier_name]
    seen = daydream_provider.invoke(
        daydream_functions[tier_name], daydream_payload("observe"), TIMEOUT_S
    ).output
    here = limits()
    vcpus = seen["platform"].get("vcpus")
    pinned = bool(seen["host"]) and seen["host"] == here["host"] and seen["cpus"] != here["cpus"]
    if vcpus is None and not pinned:
        pytest.skip(
            f"{CPU_UNOBSERVABLE}: the platform says nothing and the {tier_name} instance may "
            f"use all {seen['cpus']} CPUs it sees"
        )
    if vcpus is not None:
        assert float(vcpus) == pytest.approx(tier.vcpus, rel=0.01), (
            f"the platform gives the {tier_name} instance {vcpus} vCPUs; its tier has {tier.vcpus}"
        )
    if pinned:
        assert _cpu_set_fits(seen["cpus"], tier, here["cpus"]), (
            f"the {tier_name} instance may run on {seen['cpus']} of this host's "
            f"{here['cpus']} CPUs; its tier has {tier.vcpus} vCPUs"
        )


def _cpu_set_fits(cpus: int, tier: Tier, host: int) -> bool:
    """A CPU set of `cpus` CPUs gives `tier`'s share on a host of `host` CPUs."""
    share = min(float(host), tier.vcpus)
    return max(1, math.floor(share)) <= cpus <= max(1, math.ceil(share))
