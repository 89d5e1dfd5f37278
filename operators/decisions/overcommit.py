"""A tenant's GPU grant per pool (from the pools' ledgers, `decisions.ledger`) and how it is
spread over the tenant's namespaces."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Grant:
    granted_by_pool: dict[str, int] = field(default_factory=dict)
    shortfalls: list[str] = field(default_factory=list)

    @property
    def overcommitted(self) -> bool:
        return bool(self.shortfalls)

    @property
    def total(self) -> int:
        return sum(self.granted_by_pool.values())


def shortfall(pool: str, capacity: int | None, granted: int, wanted: int) -> str | None:
    if granted >= wanted:
        return None
    if capacity is None:
        return f"pool {pool} does not exist or is invalid; {granted} of {wanted} GPUs granted"
    return (
        f"pool {pool} has {capacity} GPUs, held by earlier tenants first; {granted} of {wanted} GPUs granted"
    )


def split_evenly(total: int, parts: int) -> list[int]:
    """Split whole GPUs over namespaces; the sum is exactly `total`."""
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
