"""Benders (L-shaped) decomposition of the extensive form by scenario (issue 16).

Given the first stage, every scenario's recourse (`served_gpu_hours`, `unserved_gpu_hours`,
`buyback_gpu_hours`, `buyback_open`) touches only its own rows, and the objective reads a
scenario only through V_s (`scenario_value[s]`), in which it is non-decreasing (the expectation
and the Rockafellar-Uryasev CVaR both are). So V_s <= (what the first stage gives) + the best the
scenario's recourse LP can add, and the master holds every non-recourse column (racks, blocks,
quotas, V_s, the CVaR level and shortfalls) with one cut family per scenario:

    V_s + (a_s / v_s + pi_s T_s) x <= b_s / v_s + phi_s(x^) + pi_s T_s x^

where `scenario_value_def[s]` reads v_s V_s + a_s x + g_s y_s = b_s, phi_s(x) = max -g_s y_s / v_s
over the scenario's rows L - T_s x <= W_s y_s <= U - T_s x, and pi_s are that LP's row duals
(HiGHS: d objective / d bound). Cuts are valid for any x because phi_s is concave in x.

The whole thing works on the matrix `planner.solve.direct` hands to HiGHS, in HiGHS's scaled
units, so any family added later is covered as long as the structure checks below hold; where
they do not, `NotDecomposable` says why and the caller solves the extensive form.

What is exact and what is not:
- Participation rows (`participation_*`, `party_value_def_*`, `party_cvar_shortfall_def`) couple
  scenarios through other values than V_s; they are left out here and checked a posteriori by the
  caller (the extensive form's second stage with this first stage fixed).
- `buyback_open` (a binary where the cloud's value is maximised) is relaxed in the recourse LP, so
  the master's bound is an upper bound of the true problem but the recourse it prices may be too
  optimistic; the caller re-solves the true second stage and reports the gap against that bound.
- Integer racks and blocks: after the LP cuts converge the master becomes a MIP over the same
  cuts and is re-solved, adding cuts at each integer plan, until the cuts hold at the plan to
  within the requested gap.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse
import scipy.sparse.csgraph

from planner.solve import direct as highs_direct
from planner.solve.rounding import ROUNDING_TOLERANCE, round_cumulative

INF = highspy.kHighsInf
RECOURSE_FAMILIES = ("served_gpu_hours", "unserved_gpu_hours", "buyback_gpu_hours", "buyback_open")
VALUE_FAMILY = "scenario_value"
CVAR_SHORTFALL_FAMILY = "cvar_shortfall"
FIRST_STAGE_FAMILIES = ("racks_built", "blocks_ordered", "quota_gpus")
LEFT_OUT_PREFIXES = ("participation_", "party_value_def_", "party_cvar_shortfall_def")
"""Rows coupling scenarios through party values: checked a posteriori (module docstring)."""
LP_CUT_TOLERANCE = 1e-9
"""Relative shortfall of a scenario's true value below the master's V_s that still counts as met."""
IN_OUT_WEIGHT = 0.5
"""In-out stabilisation (Ben-Ameur and Neto; Fischetti, Ljubic and Salvagnin 2017): LP-phase cuts
are taken at this weight of the master's point and 1 - it of a core point (the running average
of master points), which moves less than the master's vertex from round to round."""
MAX_ITERATIONS = 500
"""Master re-solves at most (LP phase plus MIP phase); convergence is usually 10-30."""


class NotDecomposable(Exception):
    """The model, as built, breaks an assumption of the decomposition; the message says which."""


@dataclass
class Decomposition:
    """The master's first stage and bound, for the caller to fix and complete."""

    first_stage: list[tuple[pyo.Var, float]]
    upper_bound: float
    """Master objective (LP) or dual bound (MIP), model units (US$ M): bounds the true optimum."""
    iterations: int
    cuts: int
    relaxed_recourse: bool
    """True when `buyback_open` binaries were relaxed in the recourse (the bound may be loose)."""
    converged: bool
    seconds: float
    log: list[str] = field(default_factory=list)


@dataclass
class _Structure:
    """The extensive form's matrix split into master and per-scenario recourse."""

    n_scenarios: int
    master_cols: np.ndarray
    recourse_cols: np.ndarray
    recourse_scenario: np.ndarray
    value_cols_in_master: np.ndarray
    master: scipy.sparse.csr_array
    master_lower: np.ndarray
    master_upper: np.ndarray
    sub_W: scipy.sparse.csr_array
    sub_T: scipy.sparse.csr_array
    sub_lower: np.ndarray
    sub_upper: np.ndarray
    sub_row_scenario: np.ndarray
    value_A: scipy.sparse.csr_array
    """Value rows over master columns, divided by v_s (so V_s has coefficient 1)."""
    value_rhs: np.ndarray
    sub_cost: np.ndarray
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray
    relaxed_recourse: bool
    kappa: np.ndarray
    """Per scenario, how much the objective can move per unit of V_s (for the MIP stop rule)."""


def _family_columns(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, name: str) -> tuple[int, list]:
    comp = m.component(name)
    if comp is None or direct.lookup is None or id(comp) not in direct.lookup.start_of:
        return -1, []
    start = direct.lookup.start_of[id(comp)]
    return start, direct.columns[start : start + len(comp)]


def _structure(m: pyo.ConcreteModel, direct: highs_direct.DirectModel) -> _Structure:
    lp = direct.highs.getLp()
    n_row, n_col = lp.num_row_, lp.num_col_
    A = scipy.sparse.csc_array(
        (np.asarray(lp.a_matrix_.value_), np.asarray(lp.a_matrix_.index_), np.asarray(lp.a_matrix_.start_)),
        shape=(n_row, n_col),
    ).tocsr()
    cost = np.asarray(lp.col_cost_, dtype=np.float64)
    col_lower, col_upper = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    row_lower, row_upper = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    integer = (
        np.asarray(lp.integrality_, dtype=np.int32) if len(lp.integrality_) else np.zeros(n_col, np.int32)
    )
    scenario_ids = list(m.scenario_value.keys())
    code = {s: n for n, s in enumerate(scenario_ids)}
    n_s = len(scenario_ids)

    col_scenario = np.full(n_col, -1, dtype=np.int64)
    relaxed = False
    for name in RECOURSE_FAMILIES:
        start, variables = _family_columns(m, direct, name)
        if start < 0:
            continue
        col_scenario[start : start + len(variables)] = [code[v.index()[-1]] for v in variables]
        if integer[start : start + len(variables)].any():
            relaxed = True
    start, variables = _family_columns(m, direct, VALUE_FAMILY)
    value_col = np.array([start + n for n in range(len(variables))], dtype=np.int64)
    value_scenario = np.array([code[v.index()] for v in variables], dtype=np.int64)
    order = np.argsort(value_scenario)
    value_col = value_col[order]
    is_value = np.zeros(n_col, bool)
    is_value[value_col] = True

    recourse = col_scenario >= 0
    if np.any(cost[recourse] != 0):
        raise NotDecomposable(
            "a recourse column has its own objective term (the objective must read V_s only)"
        )
    if np.any(cost[value_col] < 0):
        raise NotDecomposable("the objective decreases in a scenario's value")

    row_of = np.repeat(np.arange(n_row), np.diff(A.indptr))
    nz_scenario = col_scenario[A.indices]
    rec_nz = nz_scenario >= 0
    row_min = np.full(n_row, n_s, dtype=np.int64)
    row_max = np.full(n_row, -1, dtype=np.int64)
    np.minimum.at(row_min, row_of[rec_nz], nz_scenario[rec_nz])
    np.maximum.at(row_max, row_of[rec_nz], nz_scenario[rec_nz])
    sub_row = row_max >= 0
    if np.any(sub_row & (row_min != row_max)):
        raise NotDecomposable("a row couples the recourse of two scenarios")
    val_nz = is_value[A.indices]
    has_value = np.zeros(n_row, bool)
    has_value[row_of[val_nz]] = True
    value_row = has_value & sub_row
    value_rows = np.flatnonzero(value_row)
    if len(value_rows) != n_s or not np.array_equal(np.sort(row_max[value_rows]), np.arange(n_s)):
        raise NotDecomposable("not exactly one value row (scenario_value_def) per scenario")
    value_rows = value_rows[np.argsort(row_max[value_rows])]
    if np.any(row_lower[value_rows] != row_upper[value_rows]):
        raise NotDecomposable("a scenario's value row is not an equality")
    # In master rows V_s may only appear where a larger V_s keeps the row feasible.
    master_row = ~sub_row
    coef = A.data
    bad_up = val_nz & master_row[row_of] & (coef > 0) & np.isfinite(row_upper[row_of])
    bad_down = val_nz & master_row[row_of] & (coef < 0) & np.isfinite(row_lower[row_of])
    if bad_up.any() or bad_down.any():
        raise NotDecomposable("a master row bounds a scenario's value from above")

    master_cols = np.flatnonzero(~recourse)
    recourse_cols = np.flatnonzero(recourse)
    V = A[value_rows]
    v = V[:, value_col].diagonal() if n_s else np.zeros(0)
    if np.any(v == 0) or np.any(V[:, value_col].count_nonzero() != n_s):
        raise NotDecomposable("a value row reads another scenario's value")
    scale = scipy.sparse.diags(1.0 / v)
    value_A = (scale @ V[:, master_cols]).tocsr()
    g = (scale @ V[:, recourse_cols]).tocsr()
    sub_cost = -np.asarray(g.sum(axis=0)).ravel()
    sub_rows = np.flatnonzero(sub_row & ~value_row)
    sub = A[sub_rows]
    if np.any(is_value[sub.indices]):
        raise NotDecomposable("a recourse row reads a scenario's value")

    master_of = np.full(n_col, -1, dtype=np.int64)
    master_of[master_cols] = np.arange(len(master_cols))
    kappa = cost[value_col].copy()
    start, variables = _family_columns(m, direct, CVAR_SHORTFALL_FAMILY)
    if start >= 0:
        shortfall_scenario = np.array([code[v.index()] for v in variables], dtype=np.int64)
        kappa[shortfall_scenario] += np.abs(cost[start : start + len(variables)])
    rows = np.flatnonzero(master_row)
    return _Structure(
        n_scenarios=n_s,
        master_cols=master_cols,
        recourse_cols=recourse_cols,
        recourse_scenario=col_scenario[recourse_cols],
        value_cols_in_master=master_of[value_col],
        master=A[rows][:, master_cols].tocsr(),
        master_lower=row_lower[rows],
        master_upper=row_upper[rows],
        sub_W=sub[:, recourse_cols].tocsr(),
        sub_T=sub[:, master_cols].tocsr(),
        sub_lower=row_lower[sub_rows],
        sub_upper=row_upper[sub_rows],
        sub_row_scenario=row_max[sub_rows],
        value_A=value_A,
        value_rhs=row_lower[value_rows] / v,
        sub_cost=sub_cost,
        cost=cost[master_cols],
        col_lower=col_lower,
        col_upper=col_upper,
        integer=integer,
        relaxed_recourse=relaxed,
        kappa=kappa,
    )


def _highs(options: dict) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in options.items():
        h.setOptionValue(key, value)
    return h


def _pass(h: highspy.Highs, cost, lower, upper, A: scipy.sparse.csr_array, row_lower, row_upper) -> None:
    csc = A.tocsc()
    status = h.passModel(
        len(cost),
        A.shape[0],
        int(csc.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMaximize),
        0.0,
        np.ascontiguousarray(cost, dtype=np.float64),
        np.ascontiguousarray(lower, dtype=np.float64),
        np.ascontiguousarray(upper, dtype=np.float64),
        np.ascontiguousarray(row_lower, dtype=np.float64),
        np.ascontiguousarray(row_upper, dtype=np.float64),
        csc.indptr.astype(np.int32),
        csc.indices.astype(np.int32),
        csc.data.astype(np.float64),
        np.zeros(len(cost), dtype=np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected a decomposition model")


class RecourseOutOfTime(Exception):
    """A recourse LP did not finish before the decomposition's deadline."""


class _Recourse:
    """Every scenario's recourse LP (buyback_open relaxed) as its own HiGHS model; each
    evaluation only moves their row bounds, so each warm-starts from its last basis. One model
    per scenario, not one block-diagonal model of all: dual simplex prices every row of its LP
    each iteration, so one model of S scenarios costs about S times as much per iteration (at
    (20,4,32,8,100) one warm re-solve of the whole took more than 4 minutes). The blocks are the
    connected components of the recourse rows (at most one quarter of one scenario; one
    tenant's fractional knapsack where no buyback row joins the tenants of a site), and each
    gets its own epigraph column and cuts in the master (multi-cut)."""

    def __init__(self, st: _Structure, options: dict) -> None:
        self.st = st
        self.models: list[tuple[highspy.Highs, np.ndarray, np.ndarray]] = []
        for s in range(st.n_scenarios):
            rows = np.flatnonzero(st.sub_row_scenario == s)
            cols = np.flatnonzero(st.recourse_scenario == s)
            h = _highs(options)
            _pass(
                h,
                st.sub_cost[cols],
                st.col_lower[st.recourse_cols[cols]],
                st.col_upper[st.recourse_cols[cols]],
                st.sub_W[rows][:, cols],
                st.sub_lower[rows],
                st.sub_upper[rows],
            )
            self.models.append((h, rows, cols))
        n_rows = st.sub_W.shape[0]
        graph = scipy.sparse.bmat([[None, st.sub_W], [st.sub_W.T, None]]).tocsr()
        self.n_blocks, label = scipy.sparse.csgraph.connected_components(graph, directed=False)
        self.row_block = label[:n_rows]
        self.col_block = label[n_rows:]
        self.block_scenario = np.zeros(self.n_blocks, dtype=np.int64)
        self.block_scenario[self.col_block] = st.recourse_scenario
        self.picker = scipy.sparse.csr_array(
            (np.ones(n_rows), (self.row_block, np.arange(n_rows))), shape=(self.n_blocks, n_rows)
        )
        self.deadline = INF
        self.n_master = len(st.master_cols)
        self.n_blocks_of = np.bincount(self.block_scenario, minlength=st.n_scenarios)

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, scipy.sparse.csr_array, np.ndarray]:
        """Each block's value phi_b at master point x (first stage only), and its cut
        theta_b + (pi_b T_b) x <= phi_b + pi_b T_b x^ (matrix over master columns and the
        epigraph columns, right-hand sides)."""
        st = self.st
        first = x[: self.n_master]
        shift = st.sub_T @ first
        lower, upper = st.sub_lower - shift, st.sub_upper - shift
        y = np.zeros(len(st.recourse_cols))
        pi = np.zeros(len(st.sub_lower))
        for h, rows, cols in self.models:
            remaining = self.deadline - time.perf_counter()
            if remaining <= 0:
                raise RecourseOutOfTime
            # HiGHS's run-time clock runs on across run() calls; its limit is on that clock.
            h.setOptionValue("time_limit", h.getRunTime() + min(remaining, 1e9))
            # In highspy 1.15 but not in its type stubs.
            h.changeRowsBounds(len(rows), np.arange(len(rows), dtype=np.int32), lower[rows], upper[rows])  # type: ignore[attr-defined]
            h.run()
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kTimeLimit:
                raise RecourseOutOfTime
            if status != highspy.HighsModelStatus.kOptimal:
                raise NotDecomposable(f"a scenario's recourse LP is {h.modelStatusToString(status)}")
            solution = h.getSolution()
            y[cols] = solution.col_value
            pi[rows] = solution.row_dual
        phi = np.bincount(self.col_block, weights=st.sub_cost * y, minlength=self.n_blocks)
        piT = (self.picker @ scipy.sparse.diags(pi) @ st.sub_T).tocsr()
        theta = scipy.sparse.identity(self.n_blocks, format="csr")
        cuts = scipy.sparse.hstack([piT, theta]).tocsr()
        rhs = phi + piT @ first
        return phi, cuts, rhs

    def tolerance(self, x: np.ndarray) -> np.ndarray:
        """Per block, how far its epigraph may stand above its value and the cut count as met:
        `LP_CUT_TOLERANCE` of its scenario's value, shared by the scenario's blocks (they add up
        to it)."""
        scenario_value = np.abs(x[self.st.value_cols_in_master])[self.block_scenario]
        return (
            LP_CUT_TOLERANCE
            * np.maximum(1.0, scenario_value)
            / np.maximum(1, self.n_blocks_of[self.block_scenario])
        )

    def value_rows(self) -> tuple[scipy.sparse.csr_array, np.ndarray]:
        """V_s + (a_s / v_s) x - Sum_b theta_b <= b_s / v_s, one per scenario, over master and
        epigraph columns."""
        st = self.st
        theta = scipy.sparse.csr_array(
            (-np.ones(self.n_blocks), (self.block_scenario, np.arange(self.n_blocks))),
            shape=(st.n_scenarios, self.n_blocks),
        )
        return scipy.sparse.hstack([st.value_A, theta]).tocsr(), st.value_rhs


def decompose(
    m: pyo.ConcreteModel,
    *,
    integer: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    highs_options: dict | None = None,
) -> Decomposition:
    """Solve the model's master over Benders cuts; raise `NotDecomposable` where the structure
    does not hold. `integer`: finish with an integer master (racks and blocks whole)."""
    started = time.perf_counter()
    deadline = started + time_limit_s
    # Every re-solve here starts from the last basis (the master after new cuts, the recourse
    # after new bounds), which only the simplex method can use: an interior-point `solver`
    # (the LP default) would start each of them cold (4 s a master solve instead of 0.8 s at
    # (10,3,20,6,10)). It stays the fallback when simplex stalls (`_run_master`).
    options = {
        k: v for k, v in (highs_options or {}).items() if k not in ("time_limit", "mip_rel_gap", "solver")
    }
    options["solver"] = "simplex"
    left_out = [
        c
        for c in m.component_objects(pyo.Constraint, active=True)
        if c.local_name.startswith(LEFT_OUT_PREFIXES)
    ]
    for c in left_out:
        c.deactivate()
    try:
        direct = highs_direct.pass_to_highs(m)
    finally:
        for c in left_out:
            c.activate()
    st = _structure(m, direct)
    direct.highs.clearModel()
    log = [
        f"{st.n_scenarios} scenarios, {len(st.master_cols)} master and {len(st.recourse_cols)} recourse columns"
    ]
    recourse = _Recourse(st, options)
    recourse.deadline = deadline
    log.append(f"{recourse.n_blocks} recourse blocks (one epigraph column each)")
    master = _highs(options)
    lower = np.concatenate([st.col_lower[st.master_cols], np.full(recourse.n_blocks, -INF)])
    upper = np.concatenate([st.col_upper[st.master_cols], np.full(recourse.n_blocks, INF)])
    cost = np.concatenate([st.cost, np.zeros(recourse.n_blocks)])
    value_rows, value_rhs = recourse.value_rows()
    rows = scipy.sparse.vstack(
        [
            scipy.sparse.hstack([st.master, scipy.sparse.csr_array((st.master.shape[0], recourse.n_blocks))]),
            value_rows,
        ]
    ).tocsr()
    _pass(
        master,
        cost,
        lower,
        upper,
        rows,
        np.concatenate([st.master_lower, np.full(st.n_scenarios, -INF)]),
        np.concatenate([st.master_upper, value_rhs]),
    )
    x = np.clip(np.zeros(len(lower)), lower, upper)
    try:
        _, cuts, rhs = recourse.evaluate(x)
    except RecourseOutOfTime:
        raise NotDecomposable("the time limit came before the recourse LPs were first solved") from None
    n_cuts = _add_cuts(master, cuts, rhs, np.arange(recourse.n_blocks))
    block_kappa = st.kappa[recourse.block_scenario]
    iterations, converged, bound = 0, False, INF
    series = _integer_series(m, direct, st) if integer else None
    core: np.ndarray | None = None
    for phase in ("lp", "mip") if integer else ("lp",):
        if phase == "mip":
            master_int = np.concatenate([st.integer[st.master_cols], np.zeros(recourse.n_blocks, np.int32)])
            columns = np.flatnonzero(master_int).astype(np.int32)
            if len(columns) == 0:
                break
            lp_bound = bound
            assert series is not None
            start = _rounded_master(master, recourse, st, series, x, deadline, log)
            if start is not None:
                x_start, start_value, rounds = start
                iterations += rounds
                if lp_bound - start_value <= mip_rel_gap * max(1e-9, abs(start_value)):
                    # The rounded point is within the gap of the LP bound: no branch and bound.
                    x, bound, converged = x_start, lp_bound, True
                    log.append(
                        f"rounded start {start_value:.6f} within the gap of the LP bound {lp_bound:.6f}"
                    )
                    break
                if st.relaxed_recourse:
                    # An integer master would optimise against relaxed buyback binaries (197 s
                    # at (10,3,20,6,10), and its plan completed 1.6% below the bound): the
                    # completion, which solves them exactly, decides on the rounded point.
                    x, bound, converged = x_start, lp_bound, True
                    log.append(f"rounded start {start_value:.6f}; recourse relaxed, no integer master")
                    break
            master.changeColsIntegrality(len(columns), columns, master_int[columns].astype(np.uint8))
            master.setOptionValue("solver", "choose")
            if start is not None:
                every = np.arange(len(start[0]), dtype=np.int32)
                master.setSolution(len(every), every, start[0])
            master.setOptionValue("mip_rel_gap", mip_rel_gap / 2)
        converged = False
        while iterations < MAX_ITERATIONS:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                log.append(f"time limit reached in the {phase} phase")
                break
            # HiGHS's run-time clock runs on across run() calls; its limit is on that clock.
            master.setOptionValue("time_limit", master.getRunTime() + remaining)
            run_started = time.perf_counter()
            _run_master(master, phase)
            master_s = time.perf_counter() - run_started
            iterations += 1
            info = master.getInfo()
            status = master.getModelStatus()
            out_of_time = status == highspy.HighsModelStatus.kTimeLimit
            if out_of_time and iterations > 1 and (phase == "lp" or info.primal_solution_status != 2):
                # No better point than the last one (an LP stopped mid-way is no plan): keep it.
                log.append(f"time limit reached in the {phase} phase's master; the last master point stands")
                break
            if status != highspy.HighsModelStatus.kOptimal and not (
                out_of_time and info.primal_solution_status == 2
            ):
                raise NotDecomposable(f"the master has no solution ({master.modelStatusToString(status)})")
            x = np.asarray(master.getSolution().col_value)
            objective = info.objective_function_value
            bound = info.mip_dual_bound if phase == "mip" else objective
            tolerance = recourse.tolerance(x)
            try:
                violated = np.zeros(0, dtype=np.int64)
                if phase == "lp" and core is not None:
                    # In-out: cut at a point between the master's and the core; kept only where it
                    # cuts off the master's point (cuts are valid everywhere, phi being concave).
                    _, cuts, rhs = recourse.evaluate(IN_OUT_WEIGHT * x + (1 - IN_OUT_WEIGHT) * core)
                    violated = np.flatnonzero(cuts @ x - rhs > tolerance)
                    core = 0.5 * (core + x)
                elif phase == "lp":
                    core = x.copy()
                if len(violated):
                    done = False
                else:
                    # At the master's point itself: this is what proves convergence.
                    phi, cuts, rhs = recourse.evaluate(x)
                    shortfall = x[recourse.n_master :] - phi
                    violated = np.flatnonzero(shortfall > tolerance)
                    if phase == "lp":
                        done = len(violated) == 0
                    else:
                        loss = float(block_kappa @ np.maximum(shortfall, 0.0))
                        done = loss <= (mip_rel_gap / 2) * max(1e-9, abs(objective))
            except RecourseOutOfTime:
                log.append(
                    f"time limit reached in the {phase} phase's recourse; the last master point stands"
                )
                break
            log.append(
                f"{phase} {iterations}: master {objective:.6f} in {master_s:.2f} s "
                f"({info.simplex_iteration_count} simplex iterations), {len(violated)} cuts violated"
            )
            if done:
                converged = True
                break
            n_cuts += _add_cuts(master, cuts, rhs, violated)
        if not converged:
            break
    first_stage = _first_stage(m, direct, st, x)
    return Decomposition(
        first_stage=first_stage,
        upper_bound=float(bound),
        iterations=iterations,
        cuts=n_cuts,
        relaxed_recourse=st.relaxed_recourse,
        converged=converged,
        seconds=time.perf_counter() - started,
        log=log,
    )


@dataclass
class _Series:
    """Master columns of each pool's `racks_built` and each site's `blocks_ordered`, in quarter
    order, for rounding their running sums (`planner.solve.rounding.round_cumulative`), and
    every master column's quarter (-1 where not one of them) for the repair."""

    members: list[tuple[str, np.ndarray]]
    quarter: np.ndarray


def _integer_series(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, st: _Structure) -> _Series:
    master_of = np.full(len(st.col_lower), -1, dtype=np.int64)
    master_of[st.master_cols] = np.arange(len(st.master_cols))
    quarter = np.full(len(st.master_cols), -1, dtype=np.int64)
    out: list[tuple[str, np.ndarray]] = []
    for name, how in (("blocks_ordered", "ceil"), ("racks_built", "floor")):
        start, variables = _family_columns(m, direct, name)
        if start < 0:
            continue
        by_key: dict[tuple, list[tuple[int, int]]] = {}
        for n, var in enumerate(variables):
            index = var.index()
            by_key.setdefault(tuple(index[:-1]), []).append((index[-1], master_of[start + n]))
            quarter[master_of[start + n]] = index[-1]
        for members in by_key.values():
            out.append((how, np.array([col for _, col in sorted(members)], dtype=np.int64)))
    return _Series(out, quarter)


ROUNDED_START_ROUNDS = 30
"""LP rounds at most with the rounded racks and blocks fixed (cuts added at that point)."""


def _rounded_master(
    master: highspy.Highs,
    recourse: _Recourse,
    st: _Structure,
    series: _Series,
    x_lp: np.ndarray,
    deadline: float,
    log: list[str],
) -> tuple[np.ndarray, float, int] | None:
    """An integer first stage near the LP master's point, and its exact value: power blocks'
    running sums rounded up (never less power than the LP), racks' rounded down (never more
    racks), then lowered where a row of integer columns only (power, GPU cap, build and block
    rates) is broken; fixed, and the LP master re-solved with cuts at that point until they
    hold, so its objective is the point's true value. None when no such point solves in time.
    The master's bounds are restored."""
    n_master = recourse.n_master
    value = x_lp.copy()
    for how, cols in series.members:
        value[cols] = round_cumulative(x_lp[cols], how)  # type: ignore[arg-type]
    integer_cols = np.flatnonzero(series.quarter >= 0)
    _repair(st, value, series.quarter)
    fixed = integer_cols.astype(np.int32)
    lower, upper = st.col_lower[st.master_cols][fixed], st.col_upper[st.master_cols][fixed]
    master.changeColsBounds(len(fixed), fixed, value[fixed], value[fixed])
    rounds = 0
    try:
        while rounds < ROUNDED_START_ROUNDS and time.perf_counter() < deadline:
            master.setOptionValue("time_limit", master.getRunTime() + deadline - time.perf_counter())
            _run_master(master, "lp")
            rounds += 1
            if master.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                log.append(f"rounded start: master {master.modelStatusToString(master.getModelStatus())}")
                return None
            x = np.asarray(master.getSolution().col_value)
            try:
                phi, cuts, rhs = recourse.evaluate(x)
            except RecourseOutOfTime:
                log.append("rounded start: the time limit came first")
                return None
            shortfall = x[n_master:] - phi
            violated = np.flatnonzero(shortfall > recourse.tolerance(x))
            if len(violated) == 0:
                objective = master.getInfo().objective_function_value
                log.append(
                    f"rounded start: {objective:.6f} after {rounds} rounds with racks and blocks fixed"
                )
                return x, objective, rounds
            _add_cuts(master, cuts, rhs, violated)
        log.append("rounded start: cuts did not settle in time")
        return None
    finally:
        master.changeColsBounds(len(fixed), fixed, lower, upper)


def _repair(st: _Structure, value: np.ndarray, quarter: np.ndarray) -> None:
    """Lower rounded integer columns until every master row over integer columns only holds
    its upper bound: each broken row lowers its last column with a positive coefficient (the
    latest quarter, the series being in quarter order) by what the row needs. Lowering only
    relaxes those rows (capacity, cap and rate rows, all of the form Sum a x <= u with the
    rows' integer columns), as in `planner.solve.rounding.repair`."""
    is_int = quarter >= 0
    A = st.master
    row_of = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    only_int = np.ones(A.shape[0], bool)
    np.logical_and.at(only_int, row_of, is_int[A.indices])
    rows = np.flatnonzero(only_int & np.isfinite(st.master_upper) & (np.diff(A.indptr) > 0))
    for _ in range(1000):
        activity = A[rows] @ value[: A.shape[1]]
        broken = rows[activity > st.master_upper[rows] + ROUNDING_TOLERANCE]
        if len(broken) == 0:
            return
        for row in broken:
            cols = A.indices[A.indptr[row] : A.indptr[row + 1]]
            coefs = A.data[A.indptr[row] : A.indptr[row + 1]]
            excess = float(coefs @ value[cols]) - st.master_upper[row]
            if excess <= ROUNDING_TOLERANCE:
                continue
            movable = [(c, a) for c, a in zip(cols, coefs, strict=True) if a > 0 and value[c] >= 1]
            if not movable:
                return  # cannot be met by lowering: the LP master will say infeasible
            col, coef = max(movable, key=lambda ca: (quarter[ca[0]], ca[0]))
            value[col] -= min(value[col], max(1, math.ceil(excess / coef - ROUNDING_TOLERANCE)))


def _run_master(master: highspy.Highs, phase: str) -> None:
    """Re-solve the master from its last basis; where dual simplex stalls on the cuts' numerics
    (status Unknown: seen at (10,3,20,6,10) after 19 rounds, dual infeasibility 0.05), solve that
    round again by interior point with crossover, which gives a fresh basis to go on from."""
    master.run()
    if phase != "lp" or master.getModelStatus() != highspy.HighsModelStatus.kUnknown:
        return
    master.setOptionValue("solver", "ipm")
    try:
        master.run()
    finally:
        master.setOptionValue("solver", "simplex")


def _add_cuts(master: highspy.Highs, cuts: scipy.sparse.csr_array, rhs: np.ndarray, which: np.ndarray) -> int:
    if len(which) == 0:
        return 0
    block = cuts[which].tocsr()
    block.eliminate_zeros()
    master.addRows(
        len(which),
        np.full(len(which), -INF),
        rhs[which].astype(np.float64),
        int(block.nnz),
        block.indptr[:-1].astype(np.int32),
        block.indices.astype(np.int32),
        block.data.astype(np.float64),
    )
    return len(which)


def _first_stage(
    m: pyo.ConcreteModel, direct: highs_direct.DirectModel, st: _Structure, x: np.ndarray
) -> list[tuple[pyo.Var, float]]:
    """The master's racks, blocks and quotas in model units (integers rounded to whole)."""
    full = np.zeros(len(st.col_lower))
    full[st.master_cols] = x[: len(st.master_cols)]
    out: list[tuple[pyo.Var, float]] = []
    for name in FIRST_STAGE_FAMILIES:
        start, variables = _family_columns(m, direct, name)
        if start < 0:
            continue
        values = full[start : start + len(variables)]
        if direct.column_scale is not None:
            values = values / direct.column_scale[start : start + len(variables)]
        values = np.clip(
            values, st.col_lower[start : start + len(variables)], st.col_upper[start : start + len(variables)]
        )
        if st.integer[start : start + len(variables)].any():
            values = np.where(st.integer[start : start + len(variables)] > 0, np.round(values), values)
        out.extend(zip(variables, values.tolist(), strict=True))
    return out
