"""Solve a built capacity model with HiGHS through one of three interfaces.

- ``direct``: Pyomo's standard-form compiler -> numpy/scipy arrays -> ``Highs.passModel`` in
  bulk (`planner.highs_direct`); the fast path and the default.
- ``appsi``: ``pyomo.contrib.appsi.solvers.highs.Highs`` (persistent, expression by expression).
- ``legacy``: ``SolverFactory('highs')``, Pyomo 6.10's default HiGHS path.

All three load the solution into the Pyomo variables and read status, gap and HiGHS's own run
time from the same highspy object, so their reports compare like with like.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import highspy
import pyomo.environ as pyo

from planner import highs_direct
from planner.errors import ScenarioError
from planner.model.objective import MONEY_SCALE_USD
from planner.scenario import SolverOptions

Interface = Literal["direct", "appsi", "legacy"]
INTERFACES: tuple[Interface, ...] = ("direct", "appsi", "legacy")

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


def solve_direct(m: pyo.ConcreteModel, options: SolverOptions, *, warm_start: bool = False) -> SolveOutcome:
    direct = highs_direct.pass_to_highs(m)
    highs = direct.highs
    warm_s = 0.0
    if warm_start and direct.integer_columns:
        warm_s = highs_direct.warm_start_from_relaxation(direct, options.time_limit_s)
    for key, value in highs_options(options).items():
        if key == "time_limit":
            value = max(1e-3, float(value) - warm_s)
        highs.setOptionValue(key, value)
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


def solve_appsi(m: pyo.ConcreteModel, options: SolverOptions) -> SolveOutcome:
    from pyomo.contrib.appsi.solvers.highs import Highs

    opt = Highs()
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
) -> SolveOutcome:
    """Solve with the chosen interface (default: the scenario's); values land in the model."""
    chosen = interface or options.interface
    check_options(options)
    if chosen == "direct":
        return solve_direct(m, options, warm_start=warm_start)
    if chosen == "appsi":
        return solve_appsi(m, options)
    if chosen == "legacy":
        return solve_legacy(m, options)
    raise ValueError(f"unknown interface {chosen!r}; use one of {', '.join(INTERFACES)}")
