"""The matching rule's min cut: which classes of sites a quarter-scenario's buyback is billed on.

Per quarter and scenario the buyback is share x (Sum_c unsold_c - M*), M* the max flow placing
each tenant's refused hours on the unsold hours of classes it may use (docs/model.md, "Buyback").
By max-flow/min-cut that is max over sets T of classes of unsold(T) - refused of the tenants who
may use a class of T (T = {} gives 0). The model closes its buyback from above with a binary per
class (`buyback_open`, constraints.define_buyback_rule) that must mark a maximising T; the
rounding (`planner.solve.rounding`) opens one found here from a plan's hours. Pure numpy.
"""

from __future__ import annotations

from collections import deque

import numpy as np

MAX_ENUMERATED_CLASSES = 12
"""Up to this many classes every subset is tried (4,096 at most, one matrix product); past it,
a max flow and its residual graph's cut."""


def most_without_buyer(
    unsold: np.ndarray,
    refused: np.ndarray,
    may_use: np.ndarray,
    *,
    max_enumerated: int = MAX_ENUMERATED_CLASSES,
) -> tuple[float, np.ndarray]:
    """(value, opened): the most hours with no buyer, max over sets T of classes of
    Sum_{c in T} unsold_c - Sum_{k may use a class of T} refused_k, and a T attaining it (a mask
    over classes). `unsold` [C] and `refused` [K] in any one unit; `may_use` [K, C]. A class with
    nothing unsold is never opened (it adds nothing and may add buyers); among maximising sets
    the enumeration keeps the first met, the cut the one on the sink's side."""
    unsold = np.asarray(unsold, dtype=np.float64)
    refused = np.maximum(np.asarray(refused, dtype=np.float64), 0.0)
    may_use = np.asarray(may_use, dtype=bool).reshape(len(refused), len(unsold))
    n_c = len(unsold)
    if n_c <= max_enumerated:
        subsets = (np.arange(2**n_c)[:, None] >> np.arange(n_c)) & 1
        buyers = (subsets @ may_use.T.astype(np.int64)) > 0
        values = subsets @ unsold - buyers @ refused
        best = int(np.argmax(values))
        opened = subsets[best].astype(bool)
        return float(values[best]), opened
    opened = _sink_side(np.maximum(unsold, 0.0), refused, may_use)
    opened &= unsold > 0
    value = float(unsold[opened].sum() - refused[may_use[:, opened].any(axis=1)].sum())
    return value, opened


def _sink_side(unsold: np.ndarray, refused: np.ndarray, may_use: np.ndarray) -> np.ndarray:
    """The classes on the sink's side of a min cut of source -> tenant (refused) -> class (any
    it may use, no limit) -> sink (unsold): Edmonds-Karp on a dense residual matrix (tenants and
    classes are tens), then the classes the source no longer reaches."""
    n_k, n_c = len(refused), len(unsold)
    n = n_k + n_c + 2
    source, sink = 0, n - 1
    scale = max(1.0, float(unsold.sum()), float(refused.sum()))
    eps = 1e-12 * scale
    capacity = np.zeros((n, n))
    capacity[source, 1 : 1 + n_k] = refused
    tenants, classes = np.nonzero(may_use)
    capacity[1 + tenants, 1 + n_k + classes] = np.inf
    capacity[1 + n_k : 1 + n_k + n_c, sink] = unsold
    residual = capacity.copy()

    def reach() -> np.ndarray:
        parent = np.full(n, -1)
        parent[source] = source
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for nxt in np.flatnonzero((residual[node] > eps) & (parent < 0)):
                parent[nxt] = node
                queue.append(int(nxt))
        return parent

    while True:
        parent = reach()
        if parent[sink] < 0:
            break
        path, node = [], sink
        while node != source:
            path.append((parent[node], node))
            node = parent[node]
        push = min(residual[a, b] for a, b in path)
        for a, b in path:
            residual[a, b] -= push
            residual[b, a] += push
    return parent[1 + n_k : 1 + n_k + n_c] < 0
