"""The matching rule's buyback (docs/model.md, "Buyback"), recomputed with the verifier's own
max-flow: per quarter and scenario, buyback hours = buyback_share x (Σ_i unsold_i - M*), M* the
most refused hours placed on unsold hours at sites their tenant may use, each hour once; a site's
part pro rata to its unsold hours. Shares no code with the planner's min cuts or LP
(`planner.results.matched_refused_gpu_hours`)."""

from __future__ import annotations

from collections import deque

import numpy as np

ROUND_OFF = 1e-12
"""Residual capacities below this share of the block's largest are round-off, not room."""


def max_flow(refused: list[float], unsold: list[float], may_use: list[list[bool]]) -> float:
    """The most of `refused` (per tenant) that can be placed on `unsold` (per site), tenant k only
    on sites i with may_use[k][i], each hour once: shortest augmenting paths (Edmonds-Karp, whose
    count of augmentations does not depend on the capacities, so float capacities end)."""
    n_k, n_i = len(refused), len(unsold)
    if not n_k or not n_i:
        return 0.0
    eps = ROUND_OFF * max(1.0, *refused, *unsold)
    flow = [[0.0] * n_i for _ in range(n_k)]
    left = list(refused)  # source -> tenant residuals
    room = list(unsold)  # site -> sink residuals
    total = 0.0
    while True:
        # BFS from the source over tenants with hours left; a tenant reaches every site it may use,
        # a site reaches back every tenant with flow on it.
        came_to_site: list[int | None] = [None] * n_i
        came_to_tenant: list[int | None] = [None] * n_k
        queue = deque(k for k in range(n_k) if left[k] > eps)
        start = [left[k] > eps for k in range(n_k)]
        end = None
        while queue and end is None:
            k = queue.popleft()
            for i in range(n_i):
                if may_use[k][i] and came_to_site[i] is None:
                    came_to_site[i] = k
                    if room[i] > eps:
                        end = i
                        break
                    for k2 in range(n_k):
                        if flow[k2][i] > eps and not start[k2] and came_to_tenant[k2] is None:
                            came_to_tenant[k2] = i
                            queue.append(k2)
        if end is None:
            return total
        # Walk back to a start tenant: path[j] = (tenant, site) is a placement added; between
        # path[j] and path[j + 1], tenant path[j][0] was reached by taking its hours off site
        # path[j + 1][1] (a placement undone).
        path: list[tuple[int, int]] = []
        site: int | None = end
        while site is not None:
            tenant = came_to_site[site]
            if tenant is None:  # pragma: no cover - every site the search reached has a tenant
                raise AssertionError("augmenting path broken")
            path.append((tenant, site))
            site = came_to_tenant[tenant]
        first = path[-1][0]
        undone = [(path[j][0], path[j + 1][1]) for j in range(len(path) - 1)]
        amount = min(left[first], room[end], *(flow[k][i] for k, i in undone))
        for k, i in path:
            flow[k][i] += amount
        for k, i in undone:
            flow[k][i] -= amount
        left[first] -= amount
        room[end] -= amount
        total += amount


def matching_buyback_gpu_hours(
    unsold: np.ndarray, unserved: np.ndarray, may_use: np.ndarray, share: float
) -> np.ndarray:
    """[T, S] buyback GPU-hours under the matching rule: share x (Σ_i unsold_i - M*), from
    `unsold` [I, T, S] (h x GPUs installed - served, at least 0), `unserved` [K, T, S] and
    `may_use` [K, I], M* by `max_flow` per quarter and scenario."""
    n_t, n_s = unsold.shape[1:]
    out = np.zeros((n_t, n_s))
    if share == 0.0:  # no buyback (a no-deal plan's terms): no max-flow to run
        return out
    for t in range(n_t):
        for s in range(n_s):
            tenants = np.flatnonzero(unserved[:, t, s] > 0.0)
            sites = np.flatnonzero(unsold[:, t, s] > 0.0)
            matched = max_flow(
                unserved[tenants, t, s].tolist(),
                unsold[sites, t, s].tolist(),
                may_use[np.ix_(tenants, sites)].tolist(),
            )
            out[t, s] = max(0.0, float(unsold[:, t, s].sum()) - matched)
    return share * out


def pro_rata(total: np.ndarray, unsold: np.ndarray) -> np.ndarray:
    """[I, T, S] each site's part of `total` [T, S]: pro rata to its `unsold` [I, T, S] hours, 0
    where nothing is unsold (the plan's convention for its per-site figures, docs/model.md)."""
    pooled = unsold.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(unsold > 0.0, total[None] * unsold / pooled[None], 0.0)
