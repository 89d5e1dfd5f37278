"""Solve a built capacity model with HiGHS through one of three interfaces.

- ``direct``: Pyomo's standard-form compiler -> numpy/scipy arrays -> ``Highs.passModel`` in
  bulk (`planner.solve.direct`); the fast path and the default.
- ``appsi``: ``pyomo.contrib.appsi.solvers.highs.Highs`` (persistent, expression by expression).
- ``legacy``: ``SolverFactory('highs')``, Pyomo 6.10's default HiGHS path.

All three load the solution into the Pyomo variables and read status, gap and HiGHS's own run
time from the same highspy object, so their reports compare like with like.

A MIP start (`mip_start=`, e.g. a neighbouring sweep point's plan) reaches HiGHS through
``direct`` (``Highs.setSolution``, sparse) and ``appsi`` (Pyomo's ``warmstart``); ``legacy``
refuses one: Pyomo's ``SolverFactory('highs')`` declares no warm start (``warm_start_capable()``
is False). Only MIPs get a start (decomposed, LPs too: `solve_decomposed`). What HiGHS 1.15
does with it: a complete start that meets every
row is taken as it is; otherwise (a column left undefined, or a row broken) it fixes the start's
integer values and solves the LP over the rest. The result, if feasible, is its first incumbent
("MIP start solution is feasible" in its log); if not, it goes on cold. A plan never records the
scenario values, so with our starts only their integer values (racks, blocks) matter. A
decomposed solve starts its loop from a start's racks, blocks and quotas instead
(`solve_decomposed`).

``direct`` with `solver.rounded_start` (the default) first builds its own start from the LP
relaxation (`planner.solve.rounding`), weighs a given start's integers against it, and offers HiGHS
the better complete plan; the relaxation's value then also bounds the reported gap. After every
solve the CVaR level is settled for the plan returned (`objective.best_cvar_level`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import highspy
import numpy as np
import pyomo.environ as pyo

from planner.errors import ScenarioError
from planner.model.objective import MONEY_SCALE_USD, best_cvar_level
from planner.schema.scenario import MAX_THREADS, SolverOptions
from planner.solve import decomposition
from planner.solve import direct as highs_direct
from planner.solve.rounding import RoundingReport, improves, rounded_start
from planner.solve.starts import TAKES_MIP_START, MipStart, start_values

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
    highs_version: str
    mip_start_values: int = 0
    """How many column values were offered to HiGHS as a MIP start, or a decomposition's loop
    started from (0: solved cold)."""
    start: str | None = None
    """Where HiGHS's start came from: "rounded" (`planner.solve.rounding`), "given" (`mip_start`;
    decomposed, LP or MILP: the loop started from its racks, blocks and quotas), None."""
    start_s: float = 0.0
    """Time spent by `planner.solve.rounding` (LP relaxation, rounding, re-solves); included in solve_s."""
    start_usd: float | None = None
    """The objective of the start `planner.solve.rounding` offered, US$ (None: it offered none)."""
    method: str = "extensive"
    """How the plan was found: "extensive" (one model of every scenario) or "decomposition"."""
    method_note: str | None = None
    """Why `solver.method` decomposition/auto ended as the extensive form, or the decomposition's summary."""
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    """When each part of `solve_model` ran, as `time.monotonic()` (start, end) windows that
    follow one another: "handoff" (the option check, then the model to HiGHS), "highs" (HiGHS's
    runs, with the rounded start's LPs) and "readback" (status, solution into the Pyomo
    variables, the CVaR level). One clock for every process on the machine, so `bench/` times
    its phases and attributes its memory samples by them. `legacy` hands the model over inside
    one Pyomo call: its windows are split by the measured `handoff_s` and `solve_s`."""

    @property
    def wall_s(self) -> float:
        """Wall time of the whole `solve_model` call (0 before it returns)."""
        if not self.phases:
            return 0.0
        return max(end for _, end in self.phases.values()) - min(start for start, _ in self.phases.values())

    @property
    def infeasible(self) -> bool:
        return self.model_status == highspy.HighsModelStatus.kInfeasible

    @property
    def unbounded(self) -> bool:
        return self.model_status in (
            highspy.HighsModelStatus.kUnbounded,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        )


def lp_algorithm(options: SolverOptions) -> str:
    """HiGHS's `solver` value for LPs: the scenario's `lp_algorithm`, auto resolved
    (`SolverOptions.lp_solver`)."""
    return options.lp_solver()


def highs_options(options: SolverOptions) -> dict[str, float | int | str | bool]:
    """The HiGHS options a scenario asks for (extra raw options last, so they win). An LP
    (`relax_integrality`) gets `lp_algorithm`; a MIP keeps HiGHS's own choice for branch and
    bound (the rounded start applies `lp_algorithm` to its relaxation, `solve_direct`)."""
    out: dict[str, float | int | str | bool] = {
        "time_limit": float(options.time_limit_s),
        "mip_rel_gap": float(options.mip_rel_gap),
    }
    if options.relax_integrality:
        out["solver"] = lp_algorithm(options)
    if options.threads is not None:
        out["threads"] = options.threads
    out.update(options.extra)
    return out


def check_options(options: SolverOptions) -> None:
    """Refuse HiGHS options HiGHS does not know (or values of the wrong type) before solving."""
    refused = refused_option(options)
    if refused is not None:
        raise refused[1]


def refused_option(options: SolverOptions) -> tuple[str, ScenarioError] | None:
    """The first raw HiGHS option (`solver.extra`) refused, and the error saying why; None if
    HiGHS takes them all. The key lets a sweep name whichever file or point set it."""
    threads = options.extra.get("threads")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS
    ):
        # HiGHS takes any int, and 100,000 threads ran out of memory ("fewer scenarios", it said).
        return "threads", ScenarioError(
            f"solver.extra.threads: {threads!r} is not a thread count from 0 (HiGHS's choice) to {MAX_THREADS}",
            details=[
                f"Fix: set solver.threads (1 to {MAX_THREADS}) instead, and remove solver.extra.threads"
            ],
        )
    probe = highspy.Highs()
    probe.setOptionValue("output_flag", False)
    for key, value in options.extra.items():
        if probe.setOptionValue(key, value) != highspy.HighsStatus.kError:
            continue
        if key == "solver" and str(value).lower() == "hipo":
            return key, ScenarioError(
                "solver.extra.solver: HiGHS's HiPO interior point is not in this highspy",
                details=[
                    f"Fix: install the highspy-extras package of the same version ({_version()}) into "
                    "the project's environment, or use solver.lp_algorithm: ipm (HiPO was no faster "
                    "on this model: bench/README.md, session 16)"
                ],
            )
        return key, ScenarioError(
            f"solver.extra.{key}: HiGHS rejects the option {key}={value!r}",
            details=["Fix: use an option name and value type from the HiGHS options reference"],
        )
    return None


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
    if is_mip:
        # HiGHS's bound holds with or without a plan (a rounded start may become the plan).
        if math.isfinite(info.mip_dual_bound):
            bound = info.mip_dual_bound * MONEY_SCALE_USD
        if has_solution:
            gap = float(info.mip_gap)
    elif has_solution and status == highspy.HighsModelStatus.kOptimal:
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
        solve_s=highs.getRunTime(),
        highs_version=_version(),
    )


def _offer_start(direct: highs_direct.DirectModel, m: pyo.ConcreteModel, start: MipStart) -> int:
    """Map the start onto HiGHS's columns (`direct.columns` order) and set it, sparse."""
    pairs = list(start_values(m, start))
    index = [int(j) for j in direct.numbers([var for var, _ in pairs])]
    value = [x for _, x in pairs]
    if not index:
        return 0
    columns = np.asarray(index, dtype=np.int32)
    status = direct.highs.setSolution(
        len(index), columns, direct.to_highs(columns, np.asarray(value, dtype=np.float64))
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the MIP start (values are clipped to bounds, so this is a bug)")
    return len(index)


def _given_integers(direct: highs_direct.DirectModel, m: pyo.ConcreteModel, start: MipStart) -> tuple:
    """The integer values of a given start, as (HiGHS columns, values), for the rounding to
    weigh against its own (integer columns are never scaled)."""
    pairs = [(var, x) for var, x in start_values(m, start) if var.is_integer()]
    return direct.numbers([var for var, _ in pairs]).astype(np.int32), np.array(
        [x for _, x in pairs], dtype=np.float64
    )


ROUNDING_TIME_SHARE_WITH_START = 0.5
"""Share of the time limit the rounded start may use when a MIP start is given. With all of it,
the (10,3,20,6,50) LP relaxation outlasted a fallback's time and HiGHS, left 1 ms, never took
the decomposition's plan it was given."""


def solve_direct(
    m: pyo.ConcreteModel, options: SolverOptions, *, mip_start: MipStart | None = None
) -> SolveOutcome:
    entered = time.monotonic()
    direct = highs_direct.pass_to_highs(m)
    handed_off = time.monotonic()
    highs = direct.highs
    for key, value in highs_options(options).items():
        highs.setOptionValue(key, value)
    offered = 0
    rounding = None
    if direct.integer_columns and options.rounded_start:
        given = _given_integers(direct, m, mip_start) if mip_start else None
        first_lp = options.first_lp_solver()
        # With a start given, the rounding keeps to a share of the time: HiGHS then has the
        # rest with that start even where the LP relaxation alone would outlast the limit.
        share = ROUNDING_TIME_SHARE_WITH_START if mip_start else 1.0
        rounding = rounded_start(m, direct, share * options.time_limit_s, given=given, first_lp=first_lp)
        if rounding.solution is not None:
            offered = len(rounding.solution)
        elif mip_start:
            offered = _offer_start(direct, m, mip_start)
        highs.setOptionValue("time_limit", max(1e-3, options.time_limit_s - rounding.seconds))
    elif direct.integer_columns and mip_start:
        offered = _offer_start(direct, m, mip_start)
    # HiGHS's run-time clock runs on across run() calls; the rounding's LPs are counted apart.
    before_run_s = highs.getRunTime()
    highs.run()
    ran = time.monotonic()
    outcome = _outcome(
        "direct",
        highs,
        rows=direct.rows,
        columns=len(direct.columns),
        nonzeros=direct.nonzeros,
        integer_columns=direct.integer_columns,
        handoff_s=direct.handoff_s,
    )
    outcome.mip_start_values = offered
    outcome.start = (
        rounding.source if rounding and rounding.solution is not None else "given" if offered else None
    )
    outcome.solve_s -= before_run_s
    if outcome.has_solution:
        highs_direct.load_solution(direct)
        _settle_cvar(m, outcome)  # HiGHS's plan at its own value before it is weighed against the start
    if rounding is not None:
        start = _with_rounding(outcome, rounding, direct.maximize)
        if start is not None:
            highs_direct.load_solution(direct, start)
    outcome.phases = _windows(entered, handed_off, ran)
    return outcome


def _windows(entered: float, handed_off: float, ran: float) -> dict[str, tuple[float, float]]:
    """`SolveOutcome.phases` of a call that entered, handed off and ran HiGHS at these times
    and reads back until now."""
    return {"handoff": (entered, handed_off), "highs": (handed_off, ran), "readback": (ran, time.monotonic())}


def _with_rounding(outcome: SolveOutcome, rounding: RoundingReport, maximize: bool) -> np.ndarray | None:
    """Fold the rounded start into HiGHS's outcome: its time counts as solve time, the LP
    relaxation's value tightens the reported bound, and if HiGHS ended (out of time) without
    a plan as good as the start, the start is the plan. Returns the column values to load
    instead of HiGHS's, if any."""
    outcome.start_s = rounding.seconds
    outcome.solve_s += rounding.seconds
    if rounding.start_objective is not None:
        outcome.start_usd = rounding.start_objective * MONEY_SCALE_USD
    use_start = rounding.solution is not None and (
        not outcome.has_solution
        or (
            outcome.start_usd is not None
            and outcome.objective_usd is not None
            and improves(outcome.start_usd, outcome.objective_usd, maximize=maximize)
        )
    )
    if use_start:
        outcome.has_solution = True
        outcome.objective_usd = outcome.start_usd
    if outcome.has_solution and outcome.objective_usd is not None and rounding.relaxation_bound is not None:
        relaxation = rounding.relaxation_bound * MONEY_SCALE_USD
        bound = outcome.best_bound_usd
        if bound is None or math.isinf(bound) or improves(bound, relaxation, maximize=maximize):
            outcome.best_bound_usd = bound = relaxation
        outcome.mip_gap = _gap(outcome.objective_usd, bound)
    return rounding.solution if use_start else None


def _gap(objective: float, bound: float) -> float:
    """HiGHS's definition, |bound - objective| / |objective|, except that where HiGHS says
    infinity (objective 0, bound not) this says 1: a plan file holds no infinity."""
    if objective == 0:
        return 0.0 if bound == 0 else 1.0
    return abs(bound - objective) / abs(objective)


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

    entered = time.monotonic()
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
    handed_off = time.monotonic()
    results = opt.solve(m)
    ran = time.monotonic()
    highs = opt._solver_model
    rows, cols, nnz, ints = _counts(highs)
    outcome = _outcome(
        "appsi", highs, rows=rows, columns=cols, nonzeros=nnz, integer_columns=ints, handoff_s=handoff
    )
    outcome.mip_start_values = offered
    if outcome.has_solution:
        results.solution_loader.load_vars()
        outcome.objective_usd = _pyomo_objective_usd(m)
    outcome.phases = _windows(entered, handed_off, ran)
    return outcome


def solve_legacy(m: pyo.ConcreteModel, options: SolverOptions) -> SolveOutcome:
    opt = pyo.SolverFactory("highs")
    raw = {k: v for k, v in highs_options(options).items() if k != "time_limit"}
    entered = time.monotonic()
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
    # One Pyomo call hands over, solves and reads back: split its window by the durations.
    handed_off = entered + handoff
    ran = min(handed_off + outcome.solve_s, entered + wall)
    if outcome.has_solution:
        outcome.objective_usd = _pyomo_objective_usd(m)
    outcome.phases = _windows(entered, handed_off, ran)
    return outcome


_SCHEDULER = threading.local()
"""Per thread: the thread count its HiGHS task scheduler was last asked for (`_scheduler_sized_for`)."""


def _scheduler_sized_for(threads: int) -> None:
    """HiGHS sizes a thread's task scheduler at its first run there and fails a later run that
    asks for another size (status error, model status "Not Set"): a sweep or batch varying
    `solver.threads` in one process lost every point after the first, reported as out of time.
    Where this thread's last count asked differs, its scheduler is shut down (waiting for its
    workers) so the next run starts one of the size asked; so too where this thread's size is
    not known (a run outside this function may have set it). 0 (HiGHS's choice) runs on any."""
    if threads and getattr(_SCHEDULER, "threads", None) != threads:
        highspy.Highs.resetGlobalScheduler(True)
        _SCHEDULER.threads = threads


def solve_model(
    m: pyo.ConcreteModel,
    options: SolverOptions,
    interface: Interface | None = None,
    *,
    mip_start: MipStart | None = None,
) -> SolveOutcome:
    """Solve with the chosen interface (default: the scenario's); values land in the model.

    `mip_start` offers given values (see the module docstring). With `options.rounded_start`,
    `direct` weighs their integer values against its own rounded start and offers the better
    (`planner.solve.rounding`); `legacy` takes neither."""
    entered = time.monotonic()
    chosen = interface or options.interface
    check_options(options)
    _scheduler_sized_for(int(highs_options(options).get("threads") or 0))
    if mip_start and chosen not in TAKES_MIP_START:
        raise ValueError(
            f"the {chosen} interface takes no MIP start; use one of {', '.join(sorted(TAKES_MIP_START))}"
        )
    method, note = _method(m, options, chosen)
    if method == "decomposition":
        outcome = solve_decomposed(m, options, mip_start=mip_start)
    elif chosen == "direct":
        outcome = solve_direct(m, options, mip_start=mip_start)
    elif chosen == "appsi":
        outcome = solve_appsi(m, options, mip_start=mip_start)
    elif chosen == "legacy":
        outcome = solve_legacy(m, options)
    else:
        raise ValueError(f"unknown interface {chosen!r}; use one of {', '.join(INTERFACES)}")
    if note and outcome.method_note is None:
        outcome.method_note = note
    if outcome.has_solution:
        _settle_cvar(m, outcome)
    # The option check counts as hand-off, the CVaR level as read-back.
    outcome.phases["handoff"] = (entered, outcome.phases["handoff"][1])
    outcome.phases["readback"] = (outcome.phases["readback"][0], time.monotonic())
    return outcome


def _settle_cvar(m: pyo.ConcreteModel, outcome: SolveOutcome) -> None:
    """Put the CVaR level where it belongs for the plan HiGHS returned (see
    `objective.best_cvar_level`), and report the objective and gap of the plan as it now is."""
    gain_usd = best_cvar_level(m) * MONEY_SCALE_USD
    if gain_usd <= 0 or outcome.objective_usd is None:
        return
    outcome.objective_usd += gain_usd
    if outcome.is_mip and outcome.best_bound_usd is not None and not math.isinf(outcome.best_bound_usd):
        outcome.mip_gap = _gap(outcome.objective_usd, outcome.best_bound_usd)


COMPLETION_TIME_SHARE = 0.2
"""Share of `time_limit_s` the Benders loop leaves where its recourse relaxes buyback binaries:
half for solving them whole block by block, the rest for a completion should that not finish.
Otherwise the loop may use all of it, but `decomposition.DERIVED_TIME_SHARE` where the buyback
left its recourse (a plan breaking a participation requirement is then completed, or falls
back, in the time left)."""
LP_BOUND_TOLERANCE = 1e-6
"""Relative gap between the master's bound and the completed plan that an LP decomposition accepts."""


def _method(m: pyo.ConcreteModel, options: SolverOptions, interface: str) -> tuple[str, str | None]:
    """The method to run (`SolverOptions.method_for`) and, where a decomposition was asked for by
    name but is not run, why (`auto` says nothing: it picks)."""
    # A model with no scenario values is no planner model: nothing to decompose by.
    values = m.component("scenario_value")
    method = options.method_for(0 if values is None else len(values), interface)
    if options.method == "decomposition" and method == "extensive":
        return (
            "extensive",
            f"decomposition needs the direct interface, not {interface}: solved the extensive form",
        )
    # The elastic model (`pipeline.unmet_requirements`) prices its shortfall columns, which the
    # decomposition refuses: trying it first would only cost a compile. Buyback binaries in the
    # recourse (the cloud's and the guarantor's views) decompose too: the loop relaxes them and
    # the plan's blocks solve them whole (`decomposition._Recourse.exact`).
    data = getattr(m, "_dsx_data", None)
    if options.method == "auto" and data is not None and data.elastic:
        return "extensive", None
    return method, None


def solve_decomposed(
    m: pyo.ConcreteModel, options: SolverOptions, *, mip_start: MipStart | None = None
) -> SolveOutcome:
    """Benders by scenario (`planner.solve.decomposition`). The plan is written from the loop
    itself where it can be: the best plan evaluated, with every scenario's recourse LP solution
    at it (and the buyback's values from its rows, where it left the recourse:
    `decomposition.DERIVED_FAMILIES`), or, where the loop relaxed `buyback_open` binaries, each
    recourse block with a fractional binary solved again whole (`decomposition._Recourse.exact`;
    at (20,4,32,8,100) the extensive form with the first stage fixed, 2M columns, did not finish
    in 120 s). Otherwise (the binaries not solved in time, the buyback's values not found, or
    the plan breaks a participation requirement) the extensive form with the master's racks,
    blocks and quotas fixed completes it. The master's value bounds the plan. Falls back to the
    extensive form, saying why, where the structure does not hold, no plan is found, or the plan is
    further below the bound than asked (the left-out participation rows or the relaxed binaries
    bind); a MILP's starts from the decomposition's plan and keeps its bound, and where it ends
    with none or a worse one the decomposition's plan is restored. A MILP plan with less than
    `FALLBACK_MIN_TIME_SHARE` of the time limit left stands as it is. A `mip_start` is the
    loop's start where its racks, blocks and quotas fit (a sweep's neighbouring plan: no
    representatives' LP), and a fallback's that has no plan of the decomposition's to start from."""
    entered = time.monotonic()
    try:
        result = decomposition.decompose(
            m,
            integer=not options.relax_integrality,
            time_limit_s=options.time_limit_s,
            completion_share=COMPLETION_TIME_SHARE,
            mip_rel_gap=options.mip_rel_gap,
            highs_options=highs_options(options),
            start=_first_stage_start(m, mip_start),
        )
    except decomposition.FloorsUnmet as unmet:
        return _floors_unmet(options, unmet, entered)
    except decomposition.NotDecomposable as refused:
        return _fallback(m, options, entered, f"not decomposable ({refused})", given=mip_start)
    outcome = _written_plan(m, options, result, entered) or _completed_plan(m, options, result, entered)
    if not outcome.has_solution:
        return _fallback(
            m,
            options,
            entered,
            f"its plan completed as {outcome.status}{_completion_hint(outcome.status)}",
            spent=outcome,
            given=mip_start,
        )
    if result.given_values:
        outcome.start, outcome.mip_start_values = "given", result.given_values
    assert outcome.objective_usd is not None
    _settle_cvar(m, outcome)
    integer = not options.relax_integrality
    bound_usd = max(result.upper_bound * MONEY_SCALE_USD, outcome.objective_usd)
    gap = _gap(outcome.objective_usd, bound_usd)
    tolerance = options.mip_rel_gap if integer else LP_BOUND_TOLERANCE
    outcome.best_bound_usd, outcome.mip_gap = bound_usd, gap
    outcome.is_mip = integer
    outcome.method = "decomposition"
    if not result.converged:
        outcome.status = "Time limit reached"
    if gap > max(tolerance, decomposition.ROUNDOFF_GAP) and result.converged:
        left_s = options.time_limit_s - (time.monotonic() - entered)
        if integer and left_s < FALLBACK_MIN_TIME_SHARE * options.time_limit_s:
            # A MILP plan is in hand and the time limit nearly spent: the extensive form would run
            # past the limit (at (20,4,32,8,100) it was given 150 s beyond it, took the run from
            # about 5 GB to 14.2 GB, and kept the plan), so the plan stands, reported as out of time.
            outcome.status, outcome.model_status = "Time limit reached", highspy.HighsModelStatus.kTimeLimit
            outcome.method_note = (
                f"{outcome.method_note}; {gap:.2e} below the master's bound, and with {max(0.0, left_s):.0f} s "
                f"of the time limit left no fallback to the extensive form"
            )
            return outcome
        # The master left out participation rows and relaxed any buyback binaries; where either
        # binds, the plan is worth less than the master's bound.
        why = "buyback binaries or participation rows" if result.relaxed_recourse else "participation rows"
        note = f"{why} bind: the plan is {gap:.2e} below the master's bound"
        plan = [(var, var.value) for var in m.component_data_objects(pyo.Var, active=True)]
        start = (outcome.objective_usd, bound_usd, plan) if integer else None
        fallback = _fallback(m, options, entered, note, start=start, spent=outcome)
        slack_usd = SAME_VALUE_TOLERANCE * max(1.0, abs(outcome.objective_usd))
        if fallback.objective_usd is not None and fallback.objective_usd >= outcome.objective_usd - slack_usd:
            return fallback
        # HiGHS found no plan in the time left, or (its start not taken) a worse one: the
        # decomposition's plan stands, as the best found when time ran out.
        for var, value in plan:
            var.set_value(value, skip_validation=True)
        found = "none" if fallback.objective_usd is None else f"US$ {fallback.objective_usd / 1e6:,.1f} M"
        outcome.method_note = f"{outcome.method_note}; {note}, and the extensive form from it found {found}"
        if fallback.model_status in SOLUTION_STATUSES:
            outcome.status, outcome.model_status = fallback.status, fallback.model_status
        else:  # e.g. HiGHS out of time in presolve; never "Infeasible" beside a plan
            outcome.status, outcome.model_status = "Time limit reached", highspy.HighsModelStatus.kTimeLimit
        if (
            fallback.best_bound_usd is not None
            and fallback.best_bound_usd >= outcome.objective_usd - slack_usd
        ):
            outcome.best_bound_usd = max(outcome.objective_usd, min(bound_usd, fallback.best_bound_usd))
            outcome.mip_gap = _gap(outcome.objective_usd, outcome.best_bound_usd)
        outcome.handoff_s, outcome.solve_s = fallback.handoff_s, fallback.solve_s
        outcome.phases["highs"] = (outcome.phases["highs"][0], fallback.phases["highs"][1])
        outcome.phases["readback"] = (fallback.phases["highs"][1], time.monotonic())
    return outcome


def _first_stage_start(
    m: pyo.ConcreteModel, mip_start: MipStart | None
) -> list[tuple[pyo.Var, float]] | None:
    """A start's racks, blocks and quotas as (variable, value) pairs (`start_values`), for the
    decomposition: its recourse values would be millions of pairs at (20,4,32,8,100), and the
    loop solves the recourse itself."""
    if mip_start is None:
        return None
    named = {name: mip_start[name] for name in decomposition.FIRST_STAGE_FAMILIES if name in mip_start}
    return list(start_values(m, named))


def _completed_plan(
    m: pyo.ConcreteModel, options: SolverOptions, result: decomposition.Decomposition, entered: float
) -> SolveOutcome:
    """The extensive form with the master's racks, blocks and quotas fixed, in the time left."""
    # Bounds, not `fix`: a fixed row of fractional racks may miss by 1e-12, which Pyomo's
    # compiler calls infeasible; HiGHS applies its tolerances.
    kept = [(var, var.lb, var.ub) for var, _ in result.first_stage]
    for var, value in result.first_stage:
        var.setlb(value)
        var.setub(value)
    # HiGHS's limit starts when the model is handed over: the completion's own hand-off (the
    # whole model compiled again, about what the decomposition's took) comes out of the time
    # left first, or the run ends past the limit by it.
    left_s = options.time_limit_s - (time.monotonic() - entered) - result.handoff_s
    fixed = options.model_copy(update={"rounded_start": False, "time_limit_s": max(1.0, left_s)})
    try:
        outcome = solve_direct(m, fixed)
    finally:
        for var, lb, ub in kept:
            var.setlb(lb)
            var.setub(ub)
    outcome.method_note = _benders_note(result, "completed by the extensive form")
    outcome.handoff_s += result.handoff_s
    outcome.solve_s += result.seconds - result.handoff_s
    handed_off = entered + result.handoff_s
    outcome.phases = {
        "handoff": (entered, handed_off),
        "highs": (handed_off, outcome.phases["highs"][1]),
        "readback": outcome.phases["readback"],
    }
    return outcome


SAME_VALUE_TOLERANCE = 1e-9
"""Relative difference under which a fallback's plan or bound counts as the decomposition's own
value (HiGHS recomputes a start's value, a hair apart)."""
PLAN_VALUE_TOLERANCE = 1e-7
"""How far (relative) the model's objective at a plan the decomposition wrote may be from the
value the loop computed for it; further, the plan is completed instead (a bug, not a user's)."""


def _written_plan(
    m: pyo.ConcreteModel, options: SolverOptions, result: decomposition.Decomposition, entered: float
) -> SolveOutcome | None:
    """The plan the decomposition wrote whole, loaded into the model, or None where it wrote
    none or the model's own objective there disagrees."""
    if result.columns is None or result.direct is None or result.plan_value is None:
        return None
    ran = time.monotonic()
    direct = result.direct
    highs_direct.load_solution(direct, result.columns)
    objective_usd = _pyomo_objective_usd(m)
    plan_usd = result.plan_value * MONEY_SCALE_USD
    if abs(objective_usd - plan_usd) > PLAN_VALUE_TOLERANCE * max(1.0, abs(plan_usd)):
        log.warning(
            "decomposition: the model values the written plan at %.6f, the loop at %.6f; completing it",
            objective_usd,
            plan_usd,
        )
        return None
    status = highspy.HighsModelStatus.kOptimal
    how = "buyback binaries solved by block" if result.relaxed_recourse else "written from its recourse"
    note = _benders_note(result, how)
    return _decomposed_outcome(
        direct, options, status, objective_usd, result.handoff_s, result.seconds, note, entered, ran
    )


def _decomposed_outcome(
    direct: highs_direct.DirectModel,
    options: SolverOptions,
    status: highspy.HighsModelStatus,
    objective_usd: float | None,
    handoff_s: float,
    seconds: float,
    note: str,
    entered: float,
    ran: float,
) -> SolveOutcome:
    """A decomposed solve's outcome on the compiled model `direct`: a plan (`objective_usd`) or
    none, after `seconds` of which `handoff_s` the hand-off; its phases from `entered`, the
    loop's from the end of that hand-off to `ran`, then the read-back to now."""
    outcome = SolveOutcome(
        interface="direct",
        status=direct.highs.modelStatusToString(status),
        model_status=status,
        has_solution=objective_usd is not None,
        is_mip=not options.relax_integrality,
        objective_usd=objective_usd,
        best_bound_usd=None,
        mip_gap=None,
        rows=direct.rows,
        columns=len(direct.columns),
        nonzeros=direct.nonzeros,
        integer_columns=direct.integer_columns,
        handoff_s=handoff_s,
        solve_s=seconds - handoff_s,
        highs_version=_version(),
        method_note=note,
    )
    # The decomposition's first `handoff_s` (the model compiled and split) is its hand-off.
    handed_off = entered + handoff_s
    outcome.phases = {
        "handoff": (entered, handed_off),
        "highs": (handed_off, ran),
        "readback": (ran, time.monotonic()),
    }
    return outcome


def _floors_unmet(options: SolverOptions, unmet: decomposition.FloorsUnmet, entered: float) -> SolveOutcome:
    """The decomposition's proof that no plan meets the participation floors, as HiGHS's
    `Infeasible` (so the pipeline says which requirement falls short, as it does for the
    extensive form's)."""
    direct = unmet.direct
    assert direct is not None
    note = f"Benders: {unmet.iterations} master solves, {unmet.seconds:.1f} s; {unmet}: no plan meets every participation floor"
    status = highspy.HighsModelStatus.kInfeasible
    outcome = _decomposed_outcome(
        direct, options, status, None, unmet.handoff_s, unmet.seconds, note, entered, time.monotonic()
    )
    outcome.method = "decomposition"
    return outcome


def _benders_note(result: decomposition.Decomposition, how: str) -> str:
    """`SolveOutcome.method_note` of a decomposed solve whose plan was found `how`."""
    return (
        f"Benders: {result.iterations} master solves, {result.cuts} cuts, {result.seconds:.1f} s, plan {how}"
        + ("" if result.converged else ", stopped by the time limit")
    )


def _completion_hint(status: str) -> str:
    """Why a completion (the extensive form, first stage fixed) found no plan."""
    if "infeasible" in status.lower():
        return " (a participation requirement?)"
    if "time limit" in status.lower():
        return " (the time left after the Benders loop was too short for it)"
    return ""


FALLBACK_MIN_TIME_SHARE = 0.25
"""The least share of `time_limit_s` a fallback to the extensive form gets, however long the
decomposition took; where the decomposition has a MILP plan, the fallback runs only if this
share of the limit is still left."""


def _fallback(
    m: pyo.ConcreteModel,
    options: SolverOptions,
    entered: float,
    why: str,
    *,
    start: tuple[float, float, list] | None = None,
    spent: SolveOutcome | None = None,
    given: MipStart | None = None,
) -> SolveOutcome:
    """The extensive form instead. With `start` (the plan's value and the master's bound, US$,
    and the plan: every variable with its value), that plan is its MIP start and the bound is
    kept; without, the caller's start (`given`), if any. `spent`: the decomposition's outcome,
    whose hand-off and solve time are added."""
    mip_start: MipStart | None = given
    if start is not None:
        # Every column: where the rounded start does not finish, HiGHS takes a complete start as
        # it is (with one left out it fixes the integers and solves the LP over the rest, which
        # at (10,3,20,6,50) outlasted the time); where it does, it weighs the plan's integers
        # against its own and offers the better.
        plan_start: dict[str, dict] = {}
        for var, value in start[2]:
            plan_start.setdefault(var.parent_component().local_name, {})[var.index()] = float(value or 0.0)
        mip_start = plan_start
    # The decomposition's time counts against the limit, but the extensive form gets at least
    # a share of it.
    left_s = max(
        FALLBACK_MIN_TIME_SHARE * options.time_limit_s, options.time_limit_s - (time.monotonic() - entered)
    )
    outcome = solve_direct(m, options.model_copy(update={"time_limit_s": left_s}), mip_start=mip_start)
    outcome.method_note = f"decomposition fell back to the extensive form: {why}"
    if start is not None and outcome.objective_usd is not None:
        bound_usd = start[1] if outcome.best_bound_usd is None else min(outcome.best_bound_usd, start[1])
        outcome.best_bound_usd = max(bound_usd, outcome.objective_usd)
        outcome.mip_gap = _gap(outcome.objective_usd, outcome.best_bound_usd)
        outcome.method_note += f"; started from its plan (US$ {start[0] / 1e6:,.1f} M)"
    log.warning(outcome.method_note)
    outcome.phases["handoff"] = (entered, outcome.phases["handoff"][1])
    if spent is not None:
        # The decomposition's own hand-off and solve (`spent`, before the fallback) count too.
        outcome.handoff_s += spent.handoff_s
        outcome.solve_s += spent.solve_s
    return outcome


log = logging.getLogger(__name__)
