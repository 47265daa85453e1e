"""How an instance's requests started, as every cloud handler counts them (one mechanism)."""

from __future__ import annotations

from daydream_core.model import StartKind
from daydream_core.runtime import WARMUP, StartLedger


def test_a_cold_instance_then_warm() -> None:
    ledger = StartLedger()
    assert ledger.record("echo") == (True, StartKind.COLD)
    assert ledger.record("echo") == (False, StartKind.WARM)


def test_a_hot_start_is_hot_for_its_first_component_only() -> None:
    ledger = StartLedger()
    assert ledger.record(WARMUP) == (True, StartKind.HOT)
    assert ledger.record(WARMUP) == (False, StartKind.HOT)  # a second warm-up, still unused
    assert ledger.record("echo") == (False, StartKind.HOT)
    assert ledger.record("echo") == (False, StartKind.WARM)


def test_a_warm_up_after_use_does_not_make_it_hot_again() -> None:
    ledger = StartLedger()
    assert ledger.record("echo")[1] is StartKind.COLD
    assert ledger.record(WARMUP)[1] is StartKind.HOT  # the warm-up itself
    assert ledger.record("echo")[1] is StartKind.WARM
