"""The grant ledger's rules, computed without any server (operators/decisions/ledger.py)."""

from __future__ import annotations

import random

from operators.decisions.ledger import Entry, Ledger, decide, ledger_status, read_ledger, record, release


def _apply(ledger: Ledger, capacity: int | None, tenant: str, wanted: int) -> tuple[Ledger, int]:
    granted = decide(ledger, capacity, tenant, f"uid-{tenant}", wanted)
    return record(ledger, tenant, f"uid-{tenant}", wanted, granted), granted


def test_arrivals_are_served_in_order_and_the_last_gets_what_is_left() -> None:
    ledger = Ledger()
    ledger, a = _apply(ledger, 100, "a", 70)
    ledger, b = _apply(ledger, 100, "b", 50)
    ledger, c = _apply(ledger, 100, "c", 10)
    assert (a, b, c) == (70, 30, 0)
    assert [e.seq for e in ledger.entries] == [1, 2, 3]


def test_a_raise_by_an_older_tenant_never_takes_from_younger_ones() -> None:
    ledger = Ledger()
    ledger, _ = _apply(ledger, 100, "old", 20)
    ledger, _ = _apply(ledger, 100, "young", 60)
    ledger, raised = _apply(ledger, 100, "old", 80)
    assert raised == 40  # only the 20 free GPUs
    assert ledger.entry("young", "uid-young").granted == 60


def test_freed_gpus_go_to_the_earliest_tenant_still_waiting() -> None:
    ledger = Ledger()
    ledger, _ = _apply(ledger, 100, "a", 100)
    ledger, _ = _apply(ledger, 100, "b", 30)  # waits: 0 granted
    ledger, _ = _apply(ledger, 100, "c", 30)  # waits behind b
    ledger, _ = _apply(ledger, 100, "a", 60)  # gives 40 back
    ledger, c = _apply(ledger, 100, "c", 30)  # c reconciles first, but b is ahead of it
    assert c == 10
    ledger, b = _apply(ledger, 100, "b", 30)
    assert b == 30
    assert ledger.granted == 100


def test_a_shrink_cuts_the_latest_arrivals_first() -> None:
    ledger = Ledger()
    for name, wanted in [("a", 40), ("b", 40), ("c", 20)]:
        ledger, _ = _apply(ledger, 100, name, wanted)
    # the pool shrinks to 50: a keeps 40, b is cut to 10, c to 0
    assert decide(ledger, 50, "a", "uid-a", 40) == 40
    assert decide(ledger, 50, "b", "uid-b", 40) == 10
    assert decide(ledger, 50, "c", "uid-c", 20) == 0


def test_a_missing_or_invalid_pool_raises_nothing_and_keeps_at_most_the_request() -> None:
    ledger = Ledger((2), (Entry("a", "uid-a", 1, 10, 10),))
    assert decide(ledger, None, "a", "uid-a", 50) == 10
    assert decide(ledger, None, "a", "uid-a", 4) == 4
    assert decide(ledger, None, "new", "uid-new", 4) == 0


def test_an_entry_of_an_earlier_tenant_of_the_same_name_is_not_inherited() -> None:
    ledger = Ledger(2, (Entry("a", "old-uid", 1, 100, 100),))
    assert decide(ledger, 100, "a", "new-uid", 50) == 0  # the old grant still holds the pool


def test_zero_requested_and_granted_removes_the_entry_and_release_drops_it() -> None:
    ledger, _ = _apply(Ledger(), 100, "a", 10)
    assert record(ledger, "a", "uid-a", 0, 0).entries == ()
    assert release(ledger, "a", "uid-a").entries == ()


def test_ledger_round_trips_through_the_pool_status() -> None:
    ledger, _ = _apply(Ledger(), 100, "a", 10)
    ledger, _ = _apply(ledger, 100, "b", 95)
    pool = {"status": {"ledger": ledger_status(ledger)}}
    assert read_ledger(pool) == ledger
    assert pool["status"]["ledger"]["grantedGpus"] == 100


def test_no_sequence_of_requests_and_shrinks_grants_more_than_the_pool() -> None:
    rng = random.Random(7)
    for _trial in range(200):
        capacity, ledger = 100, Ledger()
        for _step in range(40):
            if rng.random() < 0.1:
                capacity = rng.randint(0, 120)
            tenant = rng.choice("abcdef")
            before = ledger.granted
            ledger, _ = _apply(ledger, capacity, tenant, rng.randint(0, 80))
            # the sum never grows past the capacity; after a shrink it only comes down
            assert ledger.granted <= max(capacity, before)
