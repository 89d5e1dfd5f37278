"""Fewer scenarios that stand for many: fast forward selection (Heitsch and Römisch, 2003).

A thousand demand scenarios may not fit in memory (`planner.model.size`), and every scenario
costs solve time. Forward selection keeps the n scenarios that best stand for the whole set in
the Kantorovich distance: it adds, one at a time, the scenario that most lowers the
probability-weighted distance from every scenario to its nearest kept one. Each scenario left
out gives its probability to its nearest kept scenario, so the kept probabilities sum to one.

The distance between two scenarios is the Euclidean distance between what their demand is worth
at the tenants' prices, per tenant and quarter: h x demand GPUs x price x (1 - credit share x
(1 - repayment share)) x the quarter's discount factor (US$). Demand that earns more counts for
more, and a scenario in which credits go unrepaid differs from one in which they are repaid.
What the distance does not see (the cost side, the buyback) is the same in every scenario.

The reduction keeps the distribution, not its tail: scenarios far out in the tail may be merged
into nearer ones, so a CVaR computed on the reduced set can differ from the full set's. Keep
more scenarios where the plan weighs CVaR heavily, and compare the two on a smaller case.
Pure: no files, no solver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from planner.errors import UserError
from planner.files import parse_scenario
from planner.schema.scenario import ID_MAX_CHARS, Scenario

REDUCED_SUFFIX = re.compile(r"-r[0-9]+$")
REDUCED_NOTE = re.compile(r" ?\([0-9]+ of [0-9]+ scenarios kept by fast forward selection\)$")
MAX_SCENARIOS_TO_REDUCE = 5000
"""Most scenarios a reduction reads: it holds their pairwise distances and two temporaries of
that size (about 600 MB at 5,000), and each scenario kept costs a pass over them (36 ms at
2,000 scenarios)."""


@dataclass(frozen=True)
class Reduction:
    kept: list[str]
    """The scenario ids kept, in the scenario file's order."""
    probability: dict[str, float]
    """Each kept scenario's new probability (its own and those it stands for)."""
    stands_for: dict[str, list[str]]
    """Each kept scenario's id -> the ids left out whose probability it took."""
    distance_usd: float
    """The Kantorovich distance between the full and the reduced set: each scenario left out's
    probability times its distance to the scenario that took it, summed (US$)."""
    spread_usd: float
    """The same distance from the full set to its expected scenario alone: a scale for
    `distance_usd` (0 where every scenario is the same)."""


def scenario_values_usd(scenario: Scenario) -> np.ndarray:
    """[scenario, tenant x quarter]: each tenant's demand per quarter valued as the module says."""
    h = scenario.periods.hours_per_period
    discount = np.asarray(scenario.periods.discount_factors())
    rows = []
    for case in scenario.scenarios:
        row = []
        for k in scenario.tenants:
            net = k.price_usd_per_gpu_hour * (1.0 - k.token_credit_share * (1.0 - k.repayment_share(case.id)))
            row.append(h * net * discount * np.asarray(k.demand_gpus[case.id], dtype=np.float64))
        rows.append(np.concatenate(row) if row else np.zeros(0))
    return np.asarray(rows, dtype=np.float64)


def _distances(x: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances, by the Gram matrix of the centred values (centred, its
    rounding is relative to the spread, not to the values: a scenario's distance to itself came
    out at up to US$181 otherwise), each scenario 0 from itself."""
    x = x - x.mean(axis=0)
    squared = (x * x).sum(axis=1)
    d = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(d, 0.0)
    return d


def forward_selection(d: np.ndarray, p: np.ndarray, n: int) -> list[int]:
    """The n indices fast forward selection keeps, in the order chosen: at each step the
    candidate u minimising sum_k p_k min(d[k, u], distance from k to the nearest kept)."""
    count = len(p)
    nearest = np.full(count, np.inf)
    """Each scenario's distance to its nearest kept scenario so far."""
    free = np.ones(count, dtype=bool)
    kept: list[int] = []
    for _ in range(n):
        candidates = np.flatnonzero(free)
        cost = p @ np.minimum(d[:, candidates], nearest[:, None])
        best = int(candidates[np.argmin(cost)])  # the first of equals: the file's order decides ties
        kept.append(best)
        free[best] = False
        nearest = np.minimum(nearest, d[:, best])
    return kept


def reduce_scenarios(scenario: Scenario, n: int) -> tuple[Scenario, Reduction]:
    """The scenario with only n of its scenarios, chosen and re-weighted as the module says."""
    count = len(scenario.scenarios)
    if count > MAX_SCENARIOS_TO_REDUCE:
        raise UserError(
            f"scenario '{scenario.name}': {count:,} scenarios; a reduction reads at most "
            f"{MAX_SCENARIOS_TO_REDUCE:,}",
            details=[
                "Fix: generate fewer scenarios where they come from (a coarser sample of the same "
                "distribution), then reduce those"
            ],
        )
    if count == 1:
        raise UserError(
            f"scenario '{scenario.name}': it has one scenario; there is nothing to reduce",
            details=["Fix: reduce a file with more scenarios, or solve this one as it is"],
        )
    if not 1 <= n < count:
        raise UserError(
            f"scenario '{scenario.name}': cannot keep {n} of its {count} scenarios",
            details=[f"Fix: ask for between 1 and {count - 1} scenarios"],
        )
    x = scenario_values_usd(scenario)
    p = np.asarray([c.probability for c in scenario.scenarios], dtype=np.float64)
    d = _distances(x)
    chosen = sorted(forward_selection(d, p, n))
    to = np.asarray(chosen)[np.argmin(d[:, chosen], axis=1)]
    to[chosen] = chosen  # a kept scenario stands for itself, whatever ties say
    ids = [c.id for c in scenario.scenarios]
    # Shares of the total, so a file whose probabilities sum to 1 within the checker's tolerance
    # (or float rounding) gives kept ones that do too, none above 1.
    taken = np.bincount(to, weights=p, minlength=count)[chosen]
    shares = np.minimum(taken / taken.sum(), 1.0)
    probability = {ids[u]: float(q) for u, q in zip(chosen, shares, strict=True)}
    stands_for: dict[str, list[str]] = {ids[u]: [] for u in chosen}
    for k in np.flatnonzero(to != np.arange(count)):
        stands_for[ids[to[k]]].append(ids[k])
    distance = float(p @ d[np.arange(count), to])
    mean = p @ x
    spread = float(p @ np.sqrt(((x - mean) ** 2).sum(axis=1)))
    kept_ids = set(probability)
    data = scenario.model_dump(mode="json")
    data["scenarios"] = [
        {**case, "probability": probability[case["id"]]}
        for case in data["scenarios"]
        if case["id"] in kept_ids
    ]
    for tenant in data["tenants"]:
        tenant["demand_gpus"] = {s: v for s, v in tenant["demand_gpus"].items() if s in kept_ids}
        tenant["credit_repayment_share_by_scenario"] = {
            s: v for s, v in tenant["credit_repayment_share_by_scenario"].items() if s in kept_ids
        }
    # A reduced file reduced again names the last reduction only.
    suffix = f"-r{n}"
    base = REDUCED_SUFFIX.sub("", scenario.name)
    data["name"] = base[: ID_MAX_CHARS - len(suffix)].rstrip("-") + suffix
    note = f"({n} of {count} scenarios kept by fast forward selection)"
    data["description"] = f"{REDUCED_NOTE.sub('', scenario.description)} {note}".strip()
    reduced = parse_scenario(data, f"scenario '{scenario.name}' reduced to {n} scenarios")
    return reduced, Reduction(
        kept=[ids[u] for u in chosen],
        probability=probability,
        stands_for=stands_for,
        distance_usd=distance,
        spread_usd=spread,
    )
