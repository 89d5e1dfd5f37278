"""Solve a built capacity model with HiGHS through one of three interfaces.

- ``direct``: Pyomo's standard-form compiler -> numpy/scipy arrays -> ``Highs.passModel`` in
  bulk (`planner.highs_direct`); the fast path and the default.
- ``appsi``: ``pyomo.contrib.appsi.solvers.highs.Highs`` (persistent, expression by expression).
- ``legacy``: ``SolverFactory('highs')``, Pyomo 6.10's default HiGHS path.

All three load the solution into the Pyomo variables and read status, gap and HiGHS's own run
time from the same highspy object, so their reports compare like with like.

A MIP start (`mip_start=`, e.g. a neighbouring sweep point's plan) reaches HiGHS through
``direct`` (``Highs.setSolution``, sparse) and ``appsi`` (Pyomo's ``warmstart``); ``legacy``
refuses one: Pyomo's ``SolverFactory('highs')`` declares no warm start (``warm_start_capable()``
is False). Only MIPs get a start. What HiGHS 1.15 does with it: a complete start that meets every
row is taken as it is; otherwise (a column left undefined, or a row broken) it fixes the start's
integer values and solves the LP over the rest. The result, if feasible, is its first incumbent
("MIP start solution is feasible" in its log); if not, it goes on cold. A plan never records the
scenario values, so with our starts only their integer values (racks, blocks) matter.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import highspy
import numpy as np
import pyomo.environ as pyo

from planner import highs_direct
from planner.errors import ScenarioError
from planner.model.objective import MONEY_SCALE_USD
from planner.scenario import SolverOptions

Interface = Literal["direct", "appsi", "legacy"]
INTERFACES: tuple[Interface, ...] = ("direct", "appsi", "legacy")
TAKES_MIP_START: frozenset[str] = frozenset({"direct", "appsi"})
"""The interfaces that pass a MIP start to HiGHS (legacy: Pyomo declares no warm start)."""

MipStart = Mapping[str, Mapping[Any, float]]
"""A MIP start: Pyomo Var component name -> index (tuple) -> value. A component it names gets a
value for every variable (absent indices: 0); components it does not name are left to HiGHS."""

SOLUTION_STATUSES = {
    highspy.HighsModelStatus.kOptimal,
    highspy.HighsModelStatus.kTimeLimit,
    highspy.HighsModelStatus.kIterationLimit,
    highspy.HighsModelStatus.kSolutionLimit,
    highspy.HighsModelStatus.kInterrupt,
    highspy.HighsModelStatus.kObjectiveBound,
    highspy.HighsModelStatus.kObjectiveTarget,
}


@dataclass
class SolveOutcome:
    """What HiGHS said about one solve; money in US$."""

    interface: str
    status: str
    model_status: highspy.HighsModelStatus
    has_solution: bool
    is_mip: bool
    objective_usd: float | None
    best_bound_usd: float | None
    mip_gap: float | None
    rows: int
    columns: int
    nonzeros: int
    integer_columns: int
    handoff_s: float
    solve_s: float
    warm_start_s: float
    highs_version: str
    mip_start_values: int = 0
    """How many column values were offered to HiGHS as a MIP start (0: solved cold)."""

    @property
    def infeasible(self) -> bool:
        return self.model_status == highspy.HighsModelStatus.kInfeasible

    @property
    def unbounded(self) -> bool:
        return self.model_status in (
            highspy.HighsModelStatus.kUnbounded,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        )


def highs_options(options: SolverOptions) -> dict[str, float | int | str | bool]:
    """The HiGHS options a scenario asks for (extra raw options last, so they win)."""
    out: dict[str, float | int | str | bool] = {
        "time_limit": float(options.time_limit_s),
        "mip_rel_gap": float(options.mip_rel_gap),
    }
    if options.threads is not None:
        out["threads"] = options.threads
    out.update(options.extra)
    return out


def check_options(options: SolverOptions) -> None:
    """Refuse HiGHS options HiGHS does not know (or values of the wrong type) before solving."""
    probe = highspy.Highs()
    probe.setOptionValue("output_flag", False)
    for key, value in options.extra.items():
        if probe.setOptionValue(key, value) == highspy.HighsStatus.kError:
            raise ScenarioError(
                f"solver.extra.{key}: HiGHS rejects the option {key}={value!r}",
                details=["Fix: use an option name and value type from the HiGHS options reference"],
            )


def _version() -> str:
    h = highspy.Highs()
    return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"


def _outcome(
    interface: str,
    highs: highspy.Highs,
    *,
    rows: int,
    columns: int,
    nonzeros: int,
    integer_columns: int,
    handoff_s: float,
    warm_start_s: float = 0.0,
    objective_usd: float | None = None,
) -> SolveOutcome:
    status = highs.getModelStatus()
    info = highs.getInfo()
    has_solution = status in SOLUTION_STATUSES and info.primal_solution_status == 2
    is_mip = integer_columns > 0
    if objective_usd is None and has_solution:
        objective_usd = info.objective_function_value * MONEY_SCALE_USD
    bound = None
    gap = None
    if has_solution:
        if is_mip:
            bound = info.mip_dual_bound * MONEY_SCALE_USD
            gap = float(info.mip_gap)
        elif status == highspy.HighsModelStatus.kOptimal:
            bound, gap = objective_usd, 0.0
    return SolveOutcome(
        interface=interface,
        status=highs.modelStatusToString(status),
        model_status=status,
        has_solution=has_solution,
        is_mip=is_mip,
        objective_usd=objective_usd if has_solution else None,
        best_bound_usd=bound,
        mip_gap=gap,
        rows=rows,
        columns=columns,
        nonzeros=nonzeros,
        integer_columns=integer_columns,
        handoff_s=handoff_s,
        solve_s=highs.getRunTime() + warm_start_s,
        warm_start_s=warm_start_s,
        highs_version=_version(),
    )


def start_values(m: pyo.ConcreteModel, start: MipStart) -> Iterator[tuple[Any, float]]:
    """(variable, value) for every variable of the components `start` names: absent indices
    are 0, integer values rounded, every value moved inside the variable's bounds (HiGHS
    rejects a whole start for one value out of bounds; a neighbour's plan may have one)."""
    for name, values in start.items():
        component = m.component(name)
        if not isinstance(component, pyo.Var):
            raise ValueError(f"MIP start names {name!r}, which is not a variable of the model")
        for index, var in component.items():
            value = float(values.get(index, 0.0))
            lower, upper = var.bounds
            if var.is_integer():
                value = float(round(value))
                lower = None if lower is None else math.ceil(lower - 1e-9)
                upper = None if upper is None else math.floor(upper + 1e-9)
            if lower is not None:
                value = max(value, lower)
            if upper is not None:
                value = min(value, upper)
            yield var, value


def _offer_start(direct: highs_direct.DirectModel, m: pyo.ConcreteModel, start: MipStart) -> int:
    """Map the start onto HiGHS's columns (`direct.columns` order) and set it, sparse."""
    column_of = {id(var): j for j, var in enumerate(direct.columns)}
    index: list[int] = []
    value: list[float] = []
    for var, x in start_values(m, start):
        j = column_of.get(id(var))
        if j is not None:  # a variable in no row and not in the objective is not a column
            index.append(j)
            value.append(x)
    if not index:
        return 0
    columns = np.asarray(index, dtype=np.int32)
    status = direct.highs.setSolution(
        len(index), columns, direct.to_highs(columns, np.asarray(value, dtype=np.float64))
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the MIP start (values are clipped to bounds, so this is a bug)")
    return len(index)


def solve_direct(
    m: pyo.ConcreteModel,
    options: SolverOptions,
    *,
    warm_start: bool = False,
    mip_start: MipStart | None = None,
) -> SolveOutcome:
    direct = highs_direct.pass_to_highs(m)
    highs = direct.highs
    warm_s = 0.0
    if warm_start and direct.integer_columns:
        warm_s = highs_direct.warm_start_from_relaxation(direct, options.time_limit_s)
    for key, value in highs_options(options).items():
        if key == "time_limit":
            value = max(1e-3, float(value) - warm_s)
        highs.setOptionValue(key, value)
    offered = _offer_start(direct, m, mip_start) if mip_start and direct.integer_columns else 0
    highs.run()
    outcome = _outcome(
        "direct",
        highs,
        rows=direct.rows,
        columns=len(direct.columns),
        nonzeros=direct.nonzeros,
        integer_columns=direct.integer_columns,
        handoff_s=direct.handoff_s,
        warm_start_s=warm_s,
    )
    outcome.mip_start_values = offered
    if outcome.has_solution:
        highs_direct.load_solution(direct)
    return outcome


def _pyomo_objective_usd(m: pyo.ConcreteModel) -> float:
    return pyo.value(m.value) * MONEY_SCALE_USD


def _counts(highs: highspy.Highs) -> tuple[int, int, int, int]:
    lp = highs.getLp()
    integrality = list(lp.integrality_)
    integer_columns = sum(1 for kind in integrality if kind == highspy.HighsVarType.kInteger)
    return lp.num_row_, lp.num_col_, highs.getNumNz(), integer_columns


def solve_appsi(
    m: pyo.ConcreteModel, options: SolverOptions, *, mip_start: MipStart | None = None
) -> SolveOutcome:
    from pyomo.contrib.appsi.solvers.highs import Highs

    opt = Highs()
    offered = 0
    if mip_start:
        # appsi offers every variable's current value (None counts as 0) as one dense start.
        pairs = list(start_values(m, mip_start))
        if any(var.is_integer() for var, _ in pairs):
            for var, value in pairs:
                var.set_value(value, skip_validation=True)
            offered = len(pairs)
            opt.config.warmstart = True
    opt.config.time_limit = options.time_limit_s
    opt.config.mip_gap = options.mip_rel_gap
    opt.config.load_solution = False
    opt.highs_options = {
        k: v for k, v in highs_options(options).items() if k not in ("time_limit", "mip_rel_gap")
    }
    start = time.perf_counter()
    opt.set_instance(m)
    handoff = time.perf_counter() - start
    results = opt.solve(m)
    highs = opt._solver_model
    rows, cols, nnz, ints = _counts(highs)
    outcome = _outcome(
        "appsi", highs, rows=rows, columns=cols, nonzeros=nnz, integer_columns=ints, handoff_s=handoff
    )
    outcome.mip_start_values = offered
    if outcome.has_solution:
        results.solution_loader.load_vars()
        outcome.objective_usd = _pyomo_objective_usd(m)
    return outcome


def solve_legacy(m: pyo.ConcreteModel, options: SolverOptions) -> SolveOutcome:
    opt = pyo.SolverFactory("highs")
    raw = {k: v for k, v in highs_options(options).items() if k != "time_limit"}
    start = time.perf_counter()
    try:
        # Pyomo logs (and raises) when there is no solution to load; the status says it better.
        logging.getLogger("pyomo.contrib.solver").disabled = True
        opt.solve(m, load_solutions=True, timelimit=options.time_limit_s, solver_options=raw)
    except Exception:  # the HiGHS status below explains the failure
        pass
    finally:
        logging.getLogger("pyomo.contrib.solver").disabled = False
    wall = time.perf_counter() - start
    highs = opt._solver_model
    rows, cols, nnz, ints = _counts(highs)
    handoff = max(0.0, wall - highs.getRunTime())
    outcome = _outcome(
        "legacy", highs, rows=rows, columns=cols, nonzeros=nnz, integer_columns=ints, handoff_s=handoff
    )
    if outcome.has_solution:
        outcome.objective_usd = _pyomo_objective_usd(m)
    return outcome


def solve_model(
    m: pyo.ConcreteModel,
    options: SolverOptions,
    interface: Interface | None = None,
    *,
    warm_start: bool = False,
    mip_start: MipStart | None = None,
) -> SolveOutcome:
    """Solve with the chosen interface (default: the scenario's); values land in the model.

    `warm_start` offers the rounded LP relaxation, `mip_start` given values (see the module
    docstring); they exclude each other, and `legacy` takes neither."""
    chosen = interface or options.interface
    check_options(options)
    if mip_start and warm_start:
        raise ValueError("give warm_start or mip_start, not both (each is a start for HiGHS)")
    if mip_start and chosen not in TAKES_MIP_START:
        raise ValueError(
            f"the {chosen} interface takes no MIP start; use one of {', '.join(sorted(TAKES_MIP_START))}"
        )
    if chosen == "direct":
        return solve_direct(m, options, warm_start=warm_start, mip_start=mip_start)
    if chosen == "appsi":
        return solve_appsi(m, options, mip_start=mip_start)
    if chosen == "legacy":
        return solve_legacy(m, options)
    raise ValueError(f"unknown interface {chosen!r}; use one of {', '.join(INTERFACES)}")
