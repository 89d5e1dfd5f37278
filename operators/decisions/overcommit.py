"""Granting GPU quota so that the tenants on a pool never exceed the pool's GPUs.

Tenants are served in a fixed order (oldest first, then by name) so the outcome is the same on
every reconcile and after every restart; the tenant that would overcommit gets what is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TenantRequest:
    name: str
    created: str  # RFC 3339 creationTimestamp; sorts chronologically as text
    gpus_by_pool: dict[str, int]


@dataclass
class Grant:
    granted_by_pool: dict[str, int] = field(default_factory=dict)
    shortfalls: list[str] = field(default_factory=list)

    @property
    def overcommitted(self) -> bool:
        return bool(self.shortfalls)


def grant_quotas(pool_gpus: dict[str, int], requests: list[TenantRequest]) -> dict[str, Grant]:
    """Grant each tenant at most what remains of each pool, in creation order."""
    remaining = dict(pool_gpus)
    grants: dict[str, Grant] = {}
    for request in sorted(requests, key=lambda r: (r.created, r.name)):
        grant = Grant()
        for pool, wanted in sorted(request.gpus_by_pool.items()):
            if pool not in remaining:
                grant.granted_by_pool[pool] = 0
                grant.shortfalls.append(f"pool {pool} does not exist; 0 of {wanted} GPUs granted")
                continue
            given = max(0, min(wanted, remaining[pool]))
            remaining[pool] -= given
            grant.granted_by_pool[pool] = given
            if given < wanted:
                grant.shortfalls.append(
                    f"pool {pool} has {pool_gpus[pool]} GPUs and {given} were left; {given} of {wanted} GPUs granted"
                )
        grants[request.name] = grant
    return grants


def split_evenly(total: int, parts: int) -> list[int]:
    """Split whole GPUs over namespaces; the sum is exactly `total`."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
