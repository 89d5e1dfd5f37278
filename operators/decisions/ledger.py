"""The grant ledger of one GpuNodePool: who holds how many of its GPUs, in arrival order. Pure.

The ledger lives in the pool's `status.ledger` and is only written with the pool's
resourceVersion as a precondition, so two reconciles can never spend the same GPUs: the second
write fails with 409, re-reads, and decides again. Spec (capacity) and ledger share one object,
so a pool resize between the read and the write also makes the write fail.

Rules (`decide`), with capacity = racks × nodes per rack × GPUs per node:
1. Arrival order is the order of first reservation (`seq`), not creation timestamps.
2. A tenant holding `granted` keeps it: a raise or a newcomer only takes free GPUs
   (capacity − Σ granted), and only after every earlier tenant still waiting for GPUs has been
   served (their unmet requests are set aside), so freed GPUs go first-come first-served.
3. Lowering a request gives the difference back.
4. A pool that shrinks below its grants is cut last-in first-out: each tenant may keep at most
   what is left after every earlier arrival's grant (capacity − Σ earlier granted). Until the
   cut tenants have written their lower quotas, the pool reports Overgranted.
5. The operator writes a raise into the ledger before raising the quota, and lowers the quota
   before lowering the ledger, so Σ quota ≤ Σ ledger ≤ capacity at every instant (except the
   instant a shrink is applied to the spec, which rule 4 then repairs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Entry:
    tenant: str
    uid: str
    seq: int
    requested: int
    granted: int


@dataclass(frozen=True)
class Ledger:
    next_seq: int = 1
    entries: tuple[Entry, ...] = ()

    @property
    def granted(self) -> int:
        return sum(e.granted for e in self.entries)

    def entry(self, tenant: str, uid: str) -> Entry | None:
        """This Tenant's entry; one left by an earlier Tenant of the same name is not it."""
        return next((e for e in self.entries if e.tenant == tenant and e.uid == uid), None)

    def others(self, tenant: str, uid: str) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if not (e.tenant == tenant and e.uid == uid))


def read_ledger(pool: dict[str, Any]) -> Ledger:
    raw = (pool.get("status") or {}).get("ledger") or {}
    entries = []
    for e in raw.get("grants") or []:
        try:
            entries.append(
                Entry(
                    str(e["tenant"]),
                    str(e.get("uid", "")),
                    int(e["seq"]),
                    int(e.get("requestedGpus", 0)),
                    int(e.get("grantedGpus", 0)),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue  # an entry nobody can read grants nothing
    return Ledger(int(raw.get("nextSeq", 1) or 1), tuple(sorted(entries, key=lambda e: e.seq)))


def ledger_status(ledger: Ledger) -> dict[str, Any]:
    return {
        "nextSeq": ledger.next_seq,
        "grantedGpus": ledger.granted,
        "grants": [
            {
                "tenant": e.tenant,
                "uid": e.uid,
                "seq": e.seq,
                "requestedGpus": e.requested,
                "grantedGpus": e.granted,
            }
            for e in ledger.entries
        ],
    }


def decide(ledger: Ledger, capacity: int | None, tenant: str, uid: str, requested: int) -> int:
    """What the tenant may hold on this pool now (rules 2-4). `capacity` None: the pool is
    missing or invalid, so nothing is raised and nothing beyond the request is kept."""
    mine = ledger.entry(tenant, uid)
    held = mine.granted if mine else 0
    seq = mine.seq if mine else ledger.next_seq
    others = ledger.others(tenant, uid)  # an earlier namesake's entry holds GPUs until pruned
    if capacity is None:
        return min(held, requested)
    ceiling = max(0, capacity - sum(e.granted for e in others if e.seq < seq))
    if held > ceiling:
        return min(requested, ceiling)  # rule 4: cut, newest first
    if requested <= held:
        return requested  # rule 3
    free = capacity - held - sum(e.granted for e in others)
    waiting = sum(max(0, e.requested - e.granted) for e in others if e.seq < seq)
    return held + max(0, min(requested - held, free - waiting))  # rule 2


def record(ledger: Ledger, tenant: str, uid: str, requested: int, granted: int) -> Ledger:
    """The ledger with this tenant's entry set (a newcomer is appended; zero and zero removes it)."""
    mine = ledger.entry(tenant, uid)
    others = ledger.others(tenant, uid)
    if requested <= 0 and granted <= 0:
        return replace(ledger, entries=others)
    if mine is not None:
        entry = replace(mine, requested=requested, granted=granted)
        return replace(ledger, entries=tuple(sorted((*others, entry), key=lambda e: e.seq)))
    entry = Entry(tenant, uid, ledger.next_seq, requested, granted)
    return Ledger(ledger.next_seq + 1, (*others, entry))


def release(ledger: Ledger, tenant: str, uid: str) -> Ledger:
    return replace(ledger, entries=ledger.others(tenant, uid))


def prune(ledger: Ledger, live_uids: set[str]) -> Ledger:
    """Drop entries of Tenants that no longer exist (deleted without the operator's finalizer)."""
    return replace(ledger, entries=tuple(e for e in ledger.entries if e.uid in live_uids))


def overgranted(ledger: Ledger, capacity: int | None) -> int:
    """GPUs granted beyond the pool's capacity (after a shrink), 0 when within it."""
    return 0 if capacity is None else max(0, ledger.granted - capacity)
