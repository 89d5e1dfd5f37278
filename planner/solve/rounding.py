"""A first incumbent for the MIP, from its LP relaxation: relax, round, repair, re-solve.

Why: on the planner's MIPs HiGHS spends its time at the root (the LP, then cut rounds) and finds
few incumbents there, so the gap it reports within the time limit is set by a poor first plan
(issue 6 has the figures). The integer decisions are of two kinds: power blocks (a few per site,
each tens of MW of capex) and racks (hundreds per quarter). Rounding blocks is what costs value;
rounding racks costs almost none. So, on HiGHS's own model with integrality dropped, each LP
after the first re-solved from the previous basis (dual simplex: seconds, where the first LP
takes tens of seconds):

1. Solve the LP relaxation. Its value bounds the MIP's; it is returned as `relaxation_bound`.
2. Blocks: per site, round the cumulative orders to nearest; repair the block-only rows; fix
   them; re-solve (racks stay fractional and follow the rounded power).
3. While the local-search budget lasts: per site, try the floor or the ceiling of the
   cumulative orders instead; keep a change only if the re-solved value improves.
4. Racks: round cumulative builds down, repair every first-stage row by lowering the latest
   builds, fix them, re-solve. The result is a complete plan that meets every row.

A given start (a sweep neighbour's plan) is weighed the same way: its integers fixed, one more
re-solve, and the better plan is kept. Integrality and bounds are then restored and the plan
is offered to HiGHS (`setSolution`); its branch and bound starts from it. Any step that does not
end optimal abandons the rounded plan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from planner.solve.direct import DirectModel, load_solution

Rounding = Literal["floor", "ceil", "nearest"]

ROUNDING_TOLERANCE = 1e-6
"""LP values this close to a whole number count as that number."""

LOCAL_SEARCH_SHARE = 0.4
"""Local search (step 3) stops once this share of the time limit has been spent in total."""

BLOCK_ROWS = ("power_cap", "block_rate")
FIRST_STAGE_ROWS = ("power_fits", "power_cap", "gpu_cap", "build_rate", "block_rate")
"""The rows over integer variables only. Every other row can be met by the continuous
variables alone (no quota, nothing served, demand unserved), so a rounding that meets these
leaves the LP over the rest feasible."""


@dataclass
class RoundingReport:
    """What the rounding did; objective values in the model's money unit (US$ M)."""

    relaxation_bound: float | None = None
    start_objective: float | None = None
    seconds: float = 0.0
    lp_solves: int = 0
    search_improvements: int = 0
    source: str = "rounded"
    """"rounded", or "given" when a given start's integers re-solved to a better plan."""
    given_objective: float | None = None
    note: str = ""
    solution: np.ndarray | None = field(default=None, repr=False)
    """The start's column values in HiGHS's units (None: no start)."""


def improves(a: float, b: float, *, maximize: bool) -> bool:
    """Whether objective value `a` is better than `b` in the model's sense."""
    return a > b if maximize else a < b


def round_cumulative(values: Iterable[float], how: Rounding) -> list[int]:
    """Whole increments whose running sum is the rounded running sum of `values`.

    Rounding the running sum, not each value, keeps the total within one unit of the LP's at
    every period (rounding 0.5 + 0.5 + 0.5 + 0.5 each way gives 0 or 4; cumulatively, 2)."""
    out: list[int] = []
    before = 0
    running = 0.0
    for value in values:
        running += value
        if how == "floor":
            total = math.floor(running + ROUNDING_TOLERANCE)
        elif how == "ceil":
            total = math.ceil(running - ROUNDING_TOLERANCE)
        else:
            total = math.floor(running + 0.5)
        total = max(total, before)
        out.append(total - before)
        before = total
    return out


def _excess(con) -> float:
    """How far a constraint's body is above its upper bound (0 if it is met)."""
    if con.upper is None:
        return 0.0
    return max(0.0, pyo.value(con.body) - pyo.value(con.upper))


def repair(m: pyo.ConcreteModel, families: Sequence[str], movable: Sequence[pyo.Var]) -> int:
    """Lower integer values until every row of `families` is met; returns the rounds taken.

    Each broken row lowers its latest movable variable with a positive coefficient by as much
    as the row needs (never below 0). Lowering racks or blocks only relaxes these `<=` rows
    (capacity, cap and rate rows), so rounds end. Raises ValueError when a row cannot be met by
    lowering (it would be broken in every plan, which the LP would have reported)."""
    owners = {id(component) for component in movable}
    rows = [con for name in families if hasattr(m, name) for con in getattr(m, name).values()]
    rounds = 0
    while broken := [(con, excess) for con in rows if (excess := _excess(con)) > ROUNDING_TOLERANCE]:
        rounds += 1
        for con, excess in broken:
            excess = _excess(con)  # an earlier fix this round may have met it already
            if excess <= ROUNDING_TOLERANCE:
                continue
            repn = generate_standard_repn(con.body, compute_values=True)
            candidates = [
                (var.index()[-1], coef, var)
                for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True)
                if coef > 0
                and id(var.parent_component()) in owners
                and (var.value or 0) >= 1 - ROUNDING_TOLERANCE
            ]
            if not candidates:
                raise ValueError(f"row {con.name} cannot be met by lowering integer values")
            _, coef, var = max(candidates, key=lambda c: c[0])
            # At least 1: an excess above the tolerance but below coef x tolerance would
            # otherwise round to 0 and the loop would never end.
            lower_by = min(round(var.value), max(1, math.ceil(excess / coef - ROUNDING_TOLERANCE)))
            var.set_value(round(var.value) - lower_by)
    return rounds


class _Relaxation:
    """HiGHS's model with integrality dropped, re-solved after each fixing (warm basis)."""

    def __init__(self, direct: DirectModel, deadline: float, first_lp: str = "simplex") -> None:
        self.direct = direct
        self.highs = direct.highs
        self.deadline = deadline
        self.solves = 0
        self.first_lp = first_lp
        kinds = np.array([highspy.HighsVarType.kContinuous] * len(direct.integer_index))
        self.highs.changeColsIntegrality(len(direct.integer_index), direct.integer_index, kinds)

    def restore(self) -> None:
        d = self.direct
        kinds = np.array([highspy.HighsVarType.kInteger] * len(d.integer_index))
        self.highs.changeColsBounds(len(d.integer_index), d.integer_index, d.integer_lower, d.integer_upper)
        self.highs.changeColsIntegrality(len(d.integer_index), d.integer_index, kinds)

    def solve(self) -> float | None:
        """The LP's value, or None if it did not end optimal (time, numerics)."""
        remaining = self.deadline - time.perf_counter()
        if remaining <= 0:
            return None
        # HiGHS checks time_limit against its clock since the object was made, not this run.
        self.highs.setOptionValue("time_limit", self.highs.getRunTime() + remaining)
        if self.solves == 0 and self.first_lp != "simplex":
            # The first LP from scratch with `first_lp` (interior point: several times faster
            # than dual simplex here, bench/README.md); crossover leaves a basis, so the re-solves
            # after each fixing stay warm dual simplex, and branch and bound HiGHS's own choice.
            asked = self.highs.getOptionValue("solver")  # (status, value) in highspy 1.15
            previous = asked[1] if isinstance(asked, tuple) else asked
            self.highs.setOptionValue("solver", self.first_lp)
            try:
                self.highs.run()
            finally:
                self.highs.setOptionValue("solver", previous)
        else:
            self.highs.run()
        self.solves += 1
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return float(self.highs.getInfo().objective_function_value)

    def values(self, variables: Sequence) -> np.ndarray:
        return np.asarray(self.highs.getSolution().col_value)[self.direct.numbers(variables)]

    def fix(self, variables: Sequence, values: Sequence[float]) -> None:
        columns = self.direct.numbers(variables).astype(np.int32)
        whole = np.asarray(values, dtype=np.float64)
        self.highs.changeColsBounds(len(columns), columns, whole, whole)


def rounded_start(
    m: pyo.ConcreteModel,
    direct: DirectModel,
    time_limit_s: float,
    *,
    given: tuple[np.ndarray, np.ndarray] | None = None,
    first_lp: str = "simplex",
) -> RoundingReport:
    """Steps 1-4 of the module docstring on `direct`'s HiGHS model, within `time_limit_s`.

    `given` (HiGHS integer columns, values), e.g. a sweep neighbour's build, is weighed too:
    its integers are fixed and the LP re-solved, and the better of the two plans is the start.
    On return HiGHS holds the MIP again (integrality and bounds as passed) and, if a start was
    found, that start; the report says what was found and how long it took."""
    started = time.perf_counter()
    report = RoundingReport()
    lp = _Relaxation(direct, started + time_limit_s, first_lp)
    try:
        _round(m, direct, lp, report, search_until=started + LOCAL_SEARCH_SHARE * time_limit_s)
        if given is not None and len(given[0]):
            _weigh_given(m, direct, lp, report, *given)
    except ValueError as error:
        report.note = f"no rounded start: {error}"
        report.solution = None
    finally:
        lp.restore()
        report.lp_solves = lp.solves
        report.seconds = time.perf_counter() - started
    if report.solution is not None:
        every = np.arange(len(report.solution), dtype=np.int32)
        if direct.highs.setSolution(len(every), every, report.solution) == highspy.HighsStatus.kError:
            report.note = "HiGHS rejected the rounded start"
            report.solution = None
    return report


def _round(m, direct: DirectModel, lp: _Relaxation, report: RoundingReport, search_until: float) -> None:
    bound = lp.solve()
    if bound is None:
        raise ValueError("the LP relaxation did not solve to optimality within the time limit")
    report.relaxation_bound = bound
    blocks = _series(m.blocks_ordered)
    lp_blocks = {site: lp.values(vs) for site, vs in blocks.items()}
    how: dict[tuple, Rounding] = dict.fromkeys(blocks, "nearest")

    def fix_blocks() -> float | None:
        for site, variables in blocks.items():
            for var, value in zip(variables, round_cumulative(lp_blocks[site], how[site]), strict=True):
                var.set_value(value)
        repair(m, BLOCK_ROWS, [m.blocks_ordered])
        every = [var for variables in blocks.values() for var in variables]
        lp.fix(every, [var.value for var in every])
        return lp.solve()

    value = fix_blocks()
    if value is None:
        raise ValueError("the LP with rounded power blocks did not solve")
    for site in blocks:
        for alternative in ("floor", "ceil"):
            if time.perf_counter() >= search_until:
                break
            kept = how[site]
            if round_cumulative(lp_blocks[site], alternative) == round_cumulative(lp_blocks[site], kept):
                continue
            how[site] = alternative
            tried = fix_blocks()
            if tried is not None and improves(tried, value, maximize=direct.maximize):
                value = tried
                report.search_improvements += 1
            else:
                how[site] = kept
    if fix_blocks() is None:  # back to the best blocks, and their basis
        raise ValueError("the LP with the chosen power blocks did not solve")

    racks = list(_series(m.racks_built).values())
    for variables in racks:
        for var, built in zip(variables, round_cumulative(lp.values(variables), "floor"), strict=True):
            var.set_value(built)
    repair(m, FIRST_STAGE_ROWS, [m.racks_built])
    every = [var for variables in racks for var in variables]
    lp.fix(every, [var.value for var in every])
    polished = lp.solve()
    if polished is None:
        raise ValueError("the LP with rounded racks did not solve")
    if hasattr(m, "buyback_open"):
        polished = _fix_buyback_open(m, direct, lp)
    report.start_objective = polished
    report.solution = _fixed_solution(direct)


BUYBACK_OPEN_TOLERANCE_GPUS = 1e-7
"""Hours with no buyer (average GPUs) a set of classes may fall short of the most by and still
be taken over the empty set (which opens nothing)."""


def _fix_buyback_open(m, direct: DirectModel, lp: _Relaxation) -> float:
    """5. With the build fixed, open the buyback (binary 1) on exactly the classes of a
    maximising set T of the matching rule's min cut (docs/model.md, "Buyback";
    `planner.model.matching.most_without_buyer`), found per quarter and scenario from the
    re-solved plan's unsold hours per class and refused hours per tenant; fix those binaries
    and re-solve. That plan meets the rows with them fixed, so the LP stays feasible."""
    from planner.model.constraints import buyback_cut_inputs, buyback_cut_orders
    from planner.model.matching import most_without_buyer

    load_solution(direct)
    classes, _tenants, may_use = buyback_cut_orders(m)
    per_hour = 1.0 / m._dsx_data.h
    opened: dict[tuple[str, int, str], float] = {}
    for (t, s), (unsold, refused) in buyback_cut_inputs(m).items():
        most, chosen = most_without_buyer(unsold * per_hour, refused * per_hour, may_use)
        if most <= BUYBACK_OPEN_TOLERANCE_GPUS:
            chosen[:] = False
        for c, is_open in zip(classes, chosen, strict=True):
            opened[c, t, s] = 1.0 if is_open else 0.0
    opens = list(m.buyback_open.values())
    values = [opened[index] for index in m.buyback_open]
    lp.fix(opens, values)
    value = lp.solve()
    if value is None:
        raise ValueError("the LP with the buyback opened on a min cut of the matching rule did not solve")
    return value


def _weigh_given(m, direct, lp: _Relaxation, report: RoundingReport, columns, values) -> None:
    """Fix the given integer values, re-solve, and keep that plan if it beats the rounded one
    (with the buyback binaries, if any, opened from the given build's own re-solve)."""
    if hasattr(m, "buyback_open"):  # the rounded plan fixed them; the given build decides anew
        opens = list(m.buyback_open.values())
        columns_open = direct.numbers(opens).astype(np.int32)
        direct.highs.changeColsBounds(len(opens), columns_open, np.zeros(len(opens)), np.ones(len(opens)))
    direct.highs.changeColsBounds(len(columns), columns, values, values)
    value = lp.solve()
    if value is not None and hasattr(m, "buyback_open"):
        try:
            value = _fix_buyback_open(m, direct, lp)
        except ValueError:
            value = None
    report.given_objective = value
    if value is not None and (
        report.start_objective is None or improves(value, report.start_objective, maximize=direct.maximize)
    ):
        report.start_objective = value
        report.solution = _fixed_solution(direct)
        report.source = "given"


def _fixed_solution(direct: DirectModel) -> np.ndarray:
    """HiGHS's solution with every integer column fixed (racks, blocks, the buyback's binaries)
    at its whole value: with the matching rule's rows, HiGHS left a fixed rack at 4e-13."""
    solution = np.asarray(direct.highs.getSolution().col_value).copy()
    solution[direct.integer_index] = np.round(solution[direct.integer_index])
    return solution


def _series(component: pyo.Var) -> dict[tuple, list]:
    """A Var indexed (..., quarter) as one list per leading index, in quarter order: blocks
    per site, racks per (site, rack type)."""
    out: dict[tuple, list] = {}
    for index, var in sorted(component.items(), key=lambda kv: kv[0]):
        out.setdefault(index[:-1], []).append(var)
    return out
