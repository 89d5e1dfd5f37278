"""Benders (L-shaped) decomposition of the extensive form by scenario (issue 16).

Given the first stage, every scenario's recourse (`served_gpu_hours`, `unserved_gpu_hours` and
the buyback's `BUYBACK_FAMILIES`) touches only its own rows, and the objective reads a
scenario only through V_s (`scenario_value[s]`), in which it is non-decreasing (the expectation
and the Rockafellar-Uryasev CVaR both are). `scenario_value_def[s]` reads v_s V_s + a_s x + g_s y_s
= b_s, so V_s(x) = b_s / v_s - (a_s / v_s) x + Sum_b phi_b(x), where the blocks b of scenario s are
the connected components of its recourse rows (one quarter of one scenario where the buyback's
matching rows join its tenants) and phi_b(x) = max -g_b y_b / v_s over L - T_b x <= W_b y_b <= U - T_b x,
concave in x: phi_b(x') <= phi_b(x^) + pi_b T_b (x^ - x'), pi_b that LP's row duals (HiGHS:
d objective / d bound).

The master holds every non-recourse column (racks, blocks, quotas, V_s, the CVaR level and
shortfalls) and row, and bounds the V_s through aggregated cuts (`_Master`): for each scenario
weighting q met (the supergradient of the objective in V at an evaluated plan, `_ValueSide`),
each cluster of scenarios and each block shape (blocks of different scenarios over the same
quarter, or tenant's quarter where the buyback left the recourse), one epigraph column bounded
by the cluster's cuts summed with weights q_s (summed over the clusters too until the loop is
near the bound: `_Master.refine`). Its size grows with the block shapes, clusters and
weightings, not with the scenarios. It stops when its bound is within the requested gap of
the best plan evaluated exactly.

The whole thing works on the matrix `planner.solve.direct` compiles for HiGHS
(`compile_to_arrays`: the arrays, never passed whole), in HiGHS's scaled units, so any family
added later is covered as long as the structure checks below hold; where they do not,
`NotDecomposable` says why and the caller solves the extensive form.

What is exact and what is not:
- Where no value row reads the buyback (`DERIVED_FAMILIES`: the syndicate's view, in which its
  price cancels between cloud and guarantor), the buyback columns, their binaries and every row
  they are in leave the recourse: a relaxation whose value is the true one, since a rule of the
  model gives them values meeting those rows whatever the rest (found on the plan from those
  rows, `_derived_values`). A block is then one tenant's quarter.
- Participation rows (`participation_*`, `party_value_def_*`, `party_cvar_shortfall_def`) couple
  scenarios through other values than V_s; they are set aside with the columns only they read and
  checked a posteriori on the plan (`_set_aside`); where the plan breaks one, the caller completes
  it (the extensive form's second stage with this first stage fixed). The expected-value floors among them
  (`_floors`) also cut the master: a floor cut (`_Recourse.floor_cut`) holds wherever some
  recourse meets the floor, so a master they leave empty is `FloorsUnmet`, the proof no plan
  does, and a point no recourse completes is never the best (its value -inf).
- `buyback_open` (a binary where the cloud's value is rewarded), where a value row reads the
  buyback (the cloud's and the guarantor's views), is relaxed in the recourse LP, so
  the master's bound is an upper bound of the true problem but the recourse it prices may be too
  optimistic; the plan's blocks with a fractional binary are solved again whole, each by a
  branch and bound over its LP, else by HiGHS's MIP (`_Recourse.exact`), and the caller
  reports the gap against that bound, tightened where needed by the master solved once as a
  MIP (`_integer_bound`). Otherwise the recourse LPs are
  the true second stage. Either way the plan is written from the loop (`Decomposition.columns`).
- A given start (`decompose`'s `start`: a sweep's neighbouring plan) takes the representatives'
  place where its racks, blocks and quotas keep the master's rows (`_given_plan`; else the
  representatives start the loop, or with one scenario per cluster x = 0); naming every
  rack and block, it is also a whole plan the rounding is weighed against. The
  representatives' point, where it breaks a master row (say an interior iterate cut short), keeps
  its racks, blocks and quotas and has the rest completed the same way.
- Integer racks and blocks: after the LP phase (converged, or out of its share of the time:
  `LP_PHASE_TIME_SHARE`), the master's last point is rounded (racks
  and blocks together, or the blocks first: `_blocks_first`), then its best plan, each
  completed with the quotas re-solved (`_rounded_master`); where none is within the gap and the
  recourse is exact, or none was found, the master becomes a MIP over the same
  cuts and is re-solved, adding cuts at each integer plan, until its dual bound is within the
  requested gap of the best integer plan evaluated.

The scenarios' recourse LPs and the blocks' branch and bound run on worker threads
(`_Recourse._spread`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import os
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse
import scipy.sparse.csgraph

from planner.solve import direct as highs_direct
from planner.solve.rounding import ROUNDING_TOLERANCE, Rounding, round_cumulative

INF = highspy.kHighsInf
BUYBACK_FAMILIES = (
    "buyback_gpu_hours",
    "buyback_matched_gpu_hours",
    "buyback_cut_unsold_gpu_hours",
    "buyback_cut_refused_gpu_hours",
    "buyback_open",
)
"""The matching rule's columns (planner/model/constraints.py, `define_buyback_rule`): per
quarter and scenario, the buyback per class of sites, the flows placing refused hours on
unsold ones, and, where the cloud's value rewards buyback, the min cut's binaries and hours."""
RECOURSE_FAMILIES = ("served_gpu_hours", "unserved_gpu_hours", *BUYBACK_FAMILIES)
HELD_FAMILIES = ("served_gpu_hours",)
"""Recourse families a block's whole solution of last resort holds at its LP's values
(`_Recourse.exact`): with the LP's served hours (and unserved ones its rows allow, the LP's
among them) the buyback's binaries need only mark a maximising set of the matching rule's min
cut at those hours (one always exists: docs/model.md, "Buyback"), and the buyback, flows and
cut hours follow, to meet every buyback row. Unserved hours are left free: held too, the
demand rows would rest on the LP's tolerances."""
DERIVED_FAMILIES = BUYBACK_FAMILIES
"""Recourse families a rule of the model sets from the rest of their scenario's recourse and
first stage (docs/model.md, "Buyback": buyback = share x (unsold - the max matching of refused
hours on it), the binaries a maximising min cut), so some values always meet their rows. Where
no value row reads them (the syndicate's view: the buyback's price cancels between cloud and
guarantor; only a party's value, in a participation row set aside, may read them) they and
every row they are in leave the recourse: what is left is a relaxation, so the master's bound
stays an upper bound, and its value is the true one since none of theirs enters it. Without
those rows no row joins the tenants of a quarter, so a recourse block is one tenant's quarter,
not every tenant's: at (10,3,20,6,50), syndicate without party requirements, LP to 1e-7, the
loop took 8.1 s instead of 23.1 s (16 rounds instead of 41). The plan's values are found from
their rows (`_derived_values`: the least buyback, `DERIVED_LEAST`); where they could not be,
the plan is completed."""
DERIVED_LEAST = ("buyback_gpu_hours",)
"""The derived family whose sum `_derived_values` makes least: the buyback (the rule, with the
flows a max matching); the flows and cut hours are free there (made least too, the flows would
fall to 0 wherever share < 1 and the buyback rise with them)."""
DERIVED_ROWS = (
    "buyback_no_buyer",
    "buyback_matched_within_refused",
    "buyback_within_unsold",
    "buyback_only_if_open",
    "buyback_refused_if_open",
    "buyback_within_cut",
)
"""The rows of that rule (planner/model/constraints.py, `define_buyback_rule`): where any other
kept row reads a derived column, nothing leaves the recourse (its values might not meet it)."""
DERIVED_TIME_SHARE = 0.02
"""Share of the time limit the loop leaves for the derived columns' values on the plan, where
there are any (measured at (20,4,32,8,100): 0.40 s for 128,000 columns at an LP plan; with
none left, the plan went to a completion with no time for it)."""
VALUE_FAMILY = "scenario_value"
FIRST_STAGE_FAMILIES = ("racks_built", "blocks_ordered", "quota_gpus")
LEFT_OUT_PREFIXES = ("participation_", "party_value_def_", "party_cvar_shortfall_def")
"""Rows coupling scenarios through party values: checked a posteriori (module docstring)."""
LP_GAP_TOLERANCE = 1e-7
"""An LP decomposition stops when the master's bound is this close (relative) to the best plan's
true value; the caller accepts 1e-6 (`planner.solve.interfaces.LP_BOUND_TOLERANCE`)."""
LP_PHASE_TIME_SHARE = 0.6
"""MILP: the share of the loop's time (from the split on) after which the LP phase stops and its
points are rounded, converged or not. At (20,4,32,8,100) on a machine about 1.5 to 1.6 times slower
than the one of the bench's earlier figures, the LP phase (16 rounds, after the representatives'
start had run out of its time at 116.9 s) took the loop's whole time: nothing was rounded, and
no plan was written."""
LP_PHASE_GAP_SHARE = 0.1
"""The LP phase's gap before the integer phase, as a share of the MIP gap asked for: the
rounding loses more than the LP's own gap. 0.25 at (10,3,20,6,50), cloud, left a plan 0.14%
worse that needed the master MIP for its bound (31.9 s against 19.6 s)."""
ROUNDOFF_GAP = 1e-12
"""A relative gap this small is floating-point round-off, not a gap: asked for a gap of 0, a loop
whose plan was 1e-16 below its bound (the bound reached) neither stopped nor fell back cleanly."""
CUT_TOLERANCE = 1e-9
"""A cut counts as broken at a master point when it is off by more than this, relative to its
right-hand side."""
WEIGHTING_TOLERANCE = 1e-6
"""Two scenario weightings this close (relative to the largest weight) are taken as one."""
MASTER_FEASIBILITY_TOLERANCE = 1e-7
"""How far (relative, at least absolute) a master point may break one of the master's rows."""
SCENARIO_CLUSTERS = 4
"""Scenarios are split into this many clusters (in their order); each block shape's cuts are
summed per cluster once the loop is near the bound (`FINE_CUTS_GAP`) or its summed cuts hold at
an open gap, over all of them before. (The start has representatives of its own,
`REPRESENTATIVES`.) Measured with cuts per cluster from the first round, at (10,3,20,6,50), LP
to 1e-7 with the start of then (one representative per cluster): 2 clusters 31.3 s (73 rounds),
4 25.0 s (41), 8 28.0 s (27, the start 12.1 s of it), 50 (a cut per block) 112.7 s (27)."""
FINE_CUTS_GAP = 1e-3
"""Cuts are summed over every scenario (one per block shape and weighting, on the sum of its
clusters' epigraph columns) until the loop's relative gap is this small, then per cluster.
Fewer, coarser cuts keep the master cheap where its re-solves bound the loop; per-cluster cuts
close the last of the gap in fewer rounds (a MILP's LP phase stops at a tenth of its gap, so
at a gap of 1% or more it splits only where no summed cut is broken at an open gap; the integer
phase never does). Measured with a fixed split, one cluster's master (a quarter
of the epigraph columns; the same four-representative start) against four's: at
(20,4,32,8,100), LP, 300 s, the cloud 0.47% (20 rounds) against 2.6%, the syndicate 0.19% (10
rounds, master solves of 4-26 s) against 3.81% (6 rounds, 17-46 s); at (10,3,20,6,50), cloud,
the MILP (LP phase to 1e-3) 22.2 s against 23.7 s, but the LP to 1e-7 57.6 s (141 rounds)
against 30.8 s (42)."""
PURGE_AFTER_IDLE_SOLVES = 3
"""LP phase: a cut whose dual was 0 in this many master solves in a row is deleted."""
IN_OUT_WEIGHT = 0.2
"""In-out stabilisation (Ben-Ameur and Neto; Fischetti, Ljubic and Salvagnin 2017): LP-phase cuts
are taken at this weight of the master's point and 1 - it of the best plan so far, which moves
less than the master's vertex from round to round. 0.2 rather than 0.5, measured (bench/README.md,
session 22): the (10,3,20,6,50) cloud MILP's LP phase took 15-16 rounds at 0.1-0.3 against 22 at
0.5, 28 at 0.7 and 34 at 0.8 (the run 31.4-33.9 s against 36.5-38.6 s); at (20,4,32,8,100), after
7 rounds, a bound of 49,270.6 and a best plan of 47,162.4 against 49,799.4 and 46,735.3 (the
start, not improved on) at 0.5. Its LP to 1e-7 took 61 rounds against 60, the syndicate's MILP 6
against 5."""
INTEGRAL_TOLERANCE = 1e-9
"""A binary of a recourse LP solution this close to 0 or 1 counts as whole: its block is not
solved again. Above it, a fractional binary rounds up (`_opened`)."""
RECOURSE_MIP_GAP = 1e-6
"""Relative gap to which each recourse block (buyback binaries whole) is solved, by its branch
and bound or HiGHS's MIP: the plan's value is what it reaches, so it should lose no more than
the LP tolerance."""
BLOCK_LP_LIMIT = 200
"""LPs after which a recourse block's branch and bound (`_block_branch_and_bound`) stops (it may
finish the node it is at, two more) and the block goes to HiGHS's MIP, which starts from the
best it found: about one MIP's time at both block shapes measured. Without a limit, on 300
blocks of (10,3,20,6,50), cloud, 21.8 LPs a block on average and 301 at most, 4.1 ms a block
against HiGHS's 20.3 ms; on blocks of 20 sites ((20,4,32,8,10), cloud), 504 on average and
10,462 at most, 205 ms against 78 ms."""
MAX_ITERATIONS = 500
"""Master re-solves at most per phase (LP, MIP); the LP phase took 27-73 rounds at (10,3,20,6,50)."""


class NotDecomposable(Exception):
    """The model, as built, breaks an assumption of the decomposition; the message says which."""


class FloorsUnmet(Exception):
    """The master, with the floors' cuts, has no solution: no plan meets every participation
    floor (each cut holds at every first stage where some recourse meets its floor,
    `_Recourse.floor_cut`, so HiGHS's proof on the master is one on the model). Carries what the
    caller reports: the compiled model (`direct`), the hand-off and total seconds, the rounds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.direct: highs_direct.DirectModel | None = None
        self.handoff_s = 0.0
        self.seconds = 0.0
        self.iterations = 0


@dataclass
class Decomposition:
    """The master's bound, the plan written whole where it could be, and the first stage for
    the caller to fix and complete where it could not."""

    first_stage: list[tuple[pyo.Var, float]]
    upper_bound: float
    """Master objective (LP) or dual bound (MIP), model units (US$ M): bounds the true optimum."""
    iterations: int
    cuts: int
    relaxed_recourse: bool
    """True when `buyback_open` binaries were relaxed in the recourse (the bound may be loose)."""
    converged: bool
    seconds: float
    """Wall time of `decompose`, `handoff_s` (the model compiled to arrays and split into master
    and recourse) included."""
    handoff_s: float = 0.0
    given_values: int = 0
    """How many values of a given start (`decompose`'s `start`) the loop started from; 0 where
    none was given or it did not fit this model's master rows."""
    log: list[str] = field(default_factory=list)
    plan_value: float | None = None
    """The plan's true objective, model units, where the decomposition wrote the whole plan."""
    direct: highs_direct.DirectModel | None = None
    columns: np.ndarray | None = None
    """Every column of the extensive form at the plan (HiGHS's units, for
    `highs_direct.load_solution(direct, columns)`): the best plan, whole, with its recourse (any
    buyback binaries solved whole) and its participation rows met; then no completion is
    needed. None where one of those failed."""


@dataclass
class _Structure:
    """The extensive form's matrix split into master and per-scenario recourse."""

    n_scenarios: int
    master_cols: np.ndarray
    master_of: np.ndarray
    """Per column of the extensive form, its position among the master's (-1: not a master
    column)."""
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
    recourse_key: np.ndarray
    """Per recourse column, a code of its family and index but for the scenario."""
    held: np.ndarray
    """Per recourse column, whether it is of `HELD_FAMILIES`."""
    aside_cols: np.ndarray
    """Columns only the left-out rows read (neither master nor recourse)."""
    aside: scipy.sparse.csr_array
    """The left-out rows (participation), over every column, and their bounds."""
    aside_lower: np.ndarray
    aside_upper: np.ndarray
    derived_cols: np.ndarray
    """Recourse columns of `DERIVED_FAMILIES` where no value row reads them: in neither the
    recourse LPs nor the master; the plan gets them from their rows (`_derived_values`)."""
    derived_scenario: np.ndarray
    derived_least: np.ndarray
    """Per derived column, whether it is of `DERIVED_LEAST` (its sum made least)."""
    derived: scipy.sparse.csr_array
    """Every row they are in (over every column), with its bounds and scenario."""
    derived_lower: np.ndarray
    derived_upper: np.ndarray
    derived_row_scenario: np.ndarray
    floor_master: scipy.sparse.csr_array
    """Per floor (`_floors`: a left-out row bounding a party's value from below), its value
    written out over the master columns; with `floor_recourse` and `floor_constant` the floor
    reads floor_master x + floor_recourse y + floor_constant >= floor_lower."""
    floor_recourse: scipy.sparse.csr_array
    floor_constant: np.ndarray
    floor_lower: np.ndarray


def _family_columns(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, name: str) -> tuple[int, list]:
    comp = m.component(name)
    if comp is None or direct.lookup is None or id(comp) not in direct.lookup.start_of:
        return -1, []
    start = direct.lookup.start_of[id(comp)]
    return start, direct.columns[start : start + len(comp)]


def _family_indices(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, name: str) -> tuple[int, list]:
    """A Var family's first column and its indices in column order (`highs_direct.
    component_keys`), not read from each variable: `VarData.index()` looks the variable up in
    its parent."""
    comp = m.component(name)
    if comp is None or direct.lookup is None or id(comp) not in direct.lookup.start_of:
        return -1, []
    return direct.lookup.start_of[id(comp)], highs_direct.component_keys(comp)


_LAST = operator.itemgetter(-1)
_ALL_BUT_LAST = operator.itemgetter(slice(None, -1))


HIGHS_SMALL_MATRIX_VALUE = 1e-9
HIGHS_INFINITE_BOUND = 1e20
"""HiGHS's defaults of `small_matrix_value` and `infinite_bound`, which `passModel` applies."""


def _infinite(bound: np.ndarray) -> np.ndarray:
    return np.where(np.abs(bound) >= HIGHS_INFINITE_BOUND, np.copysign(INF, bound), bound)


def _structure(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, left_out: set[str]) -> _Structure:
    """The split, from the model compiled to arrays (`highs_direct.compile_to_arrays`). At
    (20,4,32,8,100) the hand-off and split took 15.6 s and 3.27 GB (process peak) when the
    model was passed to HiGHS, read back (`getLp`, lists) and its indices read per variable;
    6.3 s and 2.57 GB this way."""
    lp = direct.arrays
    assert lp is not None, "compile the model with compile_to_arrays"
    # As HiGHS's own copy of the passed model had them: entries of at most its
    # small_matrix_value dropped (the checks below read which columns a row has), each row's
    # columns in order (so the recourse LPs, and simplex's path through ties, are as they
    # were), bounds of at least its infinite_bound infinite. Duplicate entries, which
    # passModel would refuse and the compiler makes none of, are summed.
    A = lp.A
    A.data[np.abs(A.data) <= HIGHS_SMALL_MATRIX_VALUE] = 0.0
    A.eliminate_zeros()
    A.sum_duplicates()
    n_col = A.shape[1]
    if lp.offset != 0:
        raise NotDecomposable("the objective has a constant term (the plan's value would leave it out)")
    cost = lp.cost
    col_lower, col_upper = _infinite(lp.lower), _infinite(lp.upper)
    row_lower, row_upper = _infinite(lp.row_lower), _infinite(lp.row_upper)
    # The left-out rows are set aside, with the columns only they read (party values, their
    # CVaR level and shortfalls), for the check of a plan (`_set_aside`).
    aside_row = direct.rows_of(left_out)
    aside = A[np.flatnonzero(aside_row)]
    A = A[np.flatnonzero(~aside_row)]
    aside_lower, aside_upper = row_lower[aside_row], row_upper[aside_row]
    row_lower, row_upper = row_lower[~aside_row], row_upper[~aside_row]
    n_row = A.shape[0]
    in_kept = np.zeros(n_col, bool)
    in_kept[A.indices] = True
    aside_col = np.zeros(n_col, bool)
    aside_col[aside.indices] = True
    aside_col &= ~in_kept
    if np.any(cost[aside_col] != 0):
        raise NotDecomposable("a column only the left-out rows read has an objective term")
    integer = np.asarray(lp.integrality, dtype=np.int32)
    scenario_ids = list(m.scenario_value.keys())
    code = {s: n for n, s in enumerate(scenario_ids)}
    n_s = len(scenario_ids)

    col_scenario = np.full(n_col, -1, dtype=np.int64)
    col_key = np.full(n_col, -1, dtype=np.int64)
    key_offset = 0
    held = np.zeros(n_col, bool)
    for name in RECOURSE_FAMILIES:
        start, indices = _family_indices(m, direct, name)
        if start < 0:
            continue
        end = start + len(indices)
        held[start:end] = name in HELD_FAMILIES
        # Per column its scenario's code, and a code of its index but for the scenario: the
        # position in the family where that prefix was first met, after the families before
        # it (only their order counts, `_Recourse.groups`). `map` over C-level getters, not a
        # loop per column (a tenth of a second at (10,3,20,6,50), which a 10 s solve feels),
        # and no prefix kept but the first of each (each kept one is a tuple the garbage
        # collector would walk).
        col_scenario[start:end] = np.fromiter(
            map(code.__getitem__, map(_LAST, indices)), dtype=np.int64, count=len(indices)
        )
        first_met: dict[tuple, int] = {}
        col_key[start:end] = np.fromiter(
            map(first_met.setdefault, map(_ALL_BUT_LAST, indices), itertools.count(key_offset)),
            dtype=np.int64,
            count=len(indices),
        )
        key_offset += len(indices)
    start, indices = _family_indices(m, direct, VALUE_FAMILY)
    value_col = start + np.arange(len(indices), dtype=np.int64)
    value_scenario = np.array([code[index] for index in indices], dtype=np.int64)
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

    # Per non-zero, in 32 bits as HiGHS's indices are: half the fresh memory, each page of
    # which costs a fault.
    row_of = np.repeat(np.arange(n_row, dtype=np.int32), np.diff(A.indptr))
    nz_scenario = col_scenario.astype(np.int32)[A.indices]
    # The least and greatest scenario of each row's recourse columns (n_s and -1: none), by
    # segments of the row-wise matrix; `reduceat` reads a segment from each start to the next,
    # so only the rows with entries are given one.
    filled = np.flatnonzero(np.diff(A.indptr))
    row_min = np.full(n_row, n_s, dtype=np.int64)
    row_max = np.full(n_row, -1, dtype=np.int64)
    if len(filled):
        starts = A.indptr[filled]
        row_max[filled] = np.maximum.reduceat(nz_scenario, starts)
        row_min[filled] = np.minimum.reduceat(np.where(nz_scenario >= 0, nz_scenario, n_s), starts)
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
    at = np.flatnonzero(val_nz)  # the value columns' entries only
    row, coef = row_of[at], A.data[at]
    bad_up = master_row[row] & (coef > 0) & np.isfinite(row_upper[row])
    bad_down = master_row[row] & (coef < 0) & np.isfinite(row_lower[row])
    if bad_up.any() or bad_down.any():
        raise NotDecomposable("a master row bounds a scenario's value from above")

    floor, floor_constant, floor_lower = _floors(aside, aside_col, aside_lower, aside_upper)
    if np.any(floor[:, np.flatnonzero(is_value)].count_nonzero()):
        raise NotDecomposable("a participation row reads a scenario's value")
    derived_col = _derived_columns(m, direct, n_col, A, row_of, value_row)
    derived_row = np.zeros(n_row, bool)
    derived_row[row_of[derived_col[A.indices]]] = True
    if derived_col.any() and (derived_row & ~direct.rows_of(set(DERIVED_ROWS))[~aside_row]).any():
        # A row the rule does not make reads them (a cap on the buyback, say): left in.
        derived_col[:] = False
        derived_row[:] = False
    # A floor reading derived columns (a party's value in the syndicate's view, where the
    # buyback's price cancels) has no exact cut from the recourse LPs, which leave them out:
    # it is left to the check of the plan, as the other left-out rows are.
    cut = abs(floor) @ derived_col.astype(np.float64) == 0
    floor, floor_constant, floor_lower = floor[np.flatnonzero(cut)], floor_constant[cut], floor_lower[cut]
    recourse &= ~derived_col
    least = np.zeros(n_col, bool)
    for name in DERIVED_LEAST:
        start, indices = _family_indices(m, direct, name)
        if start >= 0:
            least[start : start + len(indices)] = True
    master_cols = np.flatnonzero(~recourse & ~aside_col & ~derived_col)
    recourse_cols = np.flatnonzero(recourse)
    derived_cols = np.flatnonzero(derived_col)
    V = A[value_rows]
    v = V[:, value_col].diagonal() if n_s else np.zeros(0)
    if np.any(v == 0) or np.any(V[:, value_col].count_nonzero() != n_s):
        raise NotDecomposable("a value row reads another scenario's value")
    scale = scipy.sparse.diags(1.0 / v)
    value_A = (scale @ V[:, master_cols]).tocsr()
    g = (scale @ V[:, recourse_cols]).tocsr()
    sub_cost = -np.asarray(g.sum(axis=0)).ravel()
    sub_rows = np.flatnonzero(sub_row & ~value_row & ~derived_row)
    sub = A[sub_rows]
    if np.any(is_value[sub.indices]):
        raise NotDecomposable("a recourse row reads a scenario's value")

    master_of = np.full(n_col, -1, dtype=np.int64)
    master_of[master_cols] = np.arange(len(master_cols))
    rows = np.flatnonzero(master_row)
    return _Structure(
        n_scenarios=n_s,
        master_cols=master_cols,
        master_of=master_of,
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
        relaxed_recourse=bool(integer[recourse_cols].any()),
        recourse_key=col_key[recourse_cols],
        held=held[recourse_cols],
        aside_cols=np.flatnonzero(aside_col),
        aside=aside,
        aside_lower=aside_lower,
        aside_upper=aside_upper,
        derived_cols=derived_cols,
        derived_scenario=col_scenario[derived_cols],
        derived_least=least[derived_cols],
        derived=A[np.flatnonzero(derived_row)],
        derived_lower=row_lower[derived_row],
        derived_upper=row_upper[derived_row],
        derived_row_scenario=row_max[derived_row],
        floor_master=floor[:, master_cols].tocsr(),
        floor_recourse=floor[:, recourse_cols].tocsr(),
        floor_constant=floor_constant,
        floor_lower=floor_lower,
    )


def _floors(
    aside: scipy.sparse.csr_array, aside_col: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[scipy.sparse.csr_array, np.ndarray, np.ndarray]:
    """The left-out rows that bound a linear function of the party values from one side (the
    expected-value floors, `participation_expected_value`), each written out over the other
    columns through the rows defining those values (`party_value_def_*`: an equality reading
    one set-aside column) and turned to a lower bound: rows F and constants c, lower bounds L,
    with F z + c >= L. Such a floor's greatest value at a first stage is the sum of per-scenario
    LPs over the recourse (the cloud's own recourse need not be the party's best), so its cuts
    are exact (`_Recourse.floor_cut`); rows reading any other set-aside column (a CVaR level or
    shortfall) are left to the check of the plan."""
    n_col = aside.shape[1]
    empty = scipy.sparse.csr_array((0, n_col))
    if aside.shape[0] == 0:
        return empty, np.zeros(0), np.zeros(0)
    columns = np.flatnonzero(aside_col)
    X = aside[:, columns].tocsr()
    reads = np.diff(X.indptr)
    equality = np.isfinite(lower) & (lower == upper)
    single = np.flatnonzero(equality & (reads == 1))
    defined_by = np.full(len(columns), -1, dtype=np.int64)
    times = np.bincount(X.indices[X.indptr[single]], minlength=len(columns))
    once = times[X.indices[X.indptr[single]]] == 1
    defined_by[X.indices[X.indptr[single[once]]]] = single[once]
    is_definition = np.zeros(aside.shape[0], bool)
    is_definition[single[once]] = True
    defined = defined_by >= 0
    one_sided = np.isfinite(lower) != np.isfinite(upper)
    pattern = X.copy()
    pattern.data[:] = 1.0
    only_defined = (reads > 0) & (pattern @ defined.astype(np.float64) == reads)
    rows = np.flatnonzero(one_sided & ~is_definition & only_defined)
    if not len(rows):
        return empty, np.zeros(0), np.zeros(0)
    # A defined column j, by its row r: w_j W_j + A_r,rest z = b_r, so W_j = (b_r - A_r,rest z) / w_j.
    definers = defined_by[defined]
    w = X[definers][:, np.flatnonzero(defined)].diagonal()
    others = scipy.sparse.diags((~aside_col).astype(np.float64))
    rest = aside[definers] @ others
    C = X[rows][:, np.flatnonzero(defined)].tocsr() @ scipy.sparse.diags(1.0 / w)
    F = (aside[rows] @ others - C @ rest).tocsr()
    F.eliminate_zeros()
    constant = C @ lower[definers]
    # A row bounded above (-value <= -floor) turned into a lower bound.
    sign = np.where(np.isfinite(lower[rows]), 1.0, -1.0)
    bound = np.where(sign > 0, lower[rows], -upper[rows])
    return (scipy.sparse.diags(sign) @ F).tocsr(), sign * constant, bound


def _derived_columns(
    m: pyo.ConcreteModel,
    direct: highs_direct.DirectModel,
    n_col: int,
    A: scipy.sparse.csr_array,
    row_of: np.ndarray,
    value_row: np.ndarray,
) -> np.ndarray:
    """The columns of `DERIVED_FAMILIES`, where no value row reads any of them (else none)."""
    derived = np.zeros(n_col, bool)
    for name in DERIVED_FAMILIES:
        start, indices = _family_indices(m, direct, name)
        if start >= 0:
            derived[start : start + len(indices)] = True
    if derived[A.indices[value_row[row_of]]].any():
        derived[:] = False
    return derived


def _derived_values(st: _Structure, columns: np.ndarray, options: dict, deadline: float) -> np.ndarray | None:
    """The derived columns' values at a plan (`columns`, the others set): per scenario, those
    meeting every row they are in with the least summed buyback (`DERIVED_LEAST`), their
    integers whole. None where a
    scenario has none (the rule could not be met: the caller completes the plan instead) or
    time ran out."""
    values = np.zeros(len(st.derived_cols))
    if not len(st.derived_cols):
        return values
    others = columns.copy()
    others[st.derived_cols] = 0.0
    rest = st.derived @ others
    D = st.derived[:, st.derived_cols].tocsr()
    integer = st.integer[st.derived_cols] > 0
    for s in range(st.n_scenarios):
        rows = np.flatnonzero(st.derived_row_scenario == s)
        cols = np.flatnonzero(st.derived_scenario == s)
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        h = _highs({**options, "solver": "choose"})
        h.setOptionValue("time_limit", remaining)
        h.setOptionValue("mip_rel_gap", RECOURSE_MIP_GAP)
        _pass(
            h,
            -st.derived_least[cols].astype(np.float64),
            st.col_lower[st.derived_cols[cols]],
            st.col_upper[st.derived_cols[cols]],
            D[rows][:, cols],
            st.derived_lower[rows] - rest[rows],
            st.derived_upper[rows] - rest[rows],
        )
        whole = np.flatnonzero(integer[cols]).astype(np.int32)
        if len(whole):
            h.changeColsIntegrality(len(whole), whole, np.ones(len(whole), np.uint8))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        values[cols] = h.getSolution().col_value
    return values


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
    tenant's fractional knapsack where no buyback row joins the tenants of a quarter); the master
    sums their cuts by shape, and later by shape and scenario cluster (`_Master`). Rows with one
    recourse entry are folded into column bounds: at (20,4,32,8,100) an evaluation took 41.7 s with them and
    4.4 s without (later warm ones 7.2 s and 1.2-3.0 s)."""

    def __init__(self, st: _Structure, options: dict, pool: Executor | None = None, workers: int = 1) -> None:
        self.st = st
        self.pool = pool if workers > 1 else None
        self.workers = workers
        self.stop = threading.Event()
        """Set when a worker fails: the others stop at their next scenario or block."""
        self.restarted: list[int] = []
        """Scenarios whose LP was solved again from scratch (`evaluate`: at most once per
        scenario and evaluation), each time it happened."""
        # HiGHS gives each user thread a task scheduler of its own, sized by the first run in
        # it; on a worker one thread is all it needs (its LPs and small MIPs run serially), so
        # each of its instances says so (a second size in the same thread would be an error).
        options = {**options, "threads": 1} if self.pool is not None else options
        W = st.sub_W
        # Rows with one recourse entry (`serve_within_quota`: served <= h x quota, one per served
        # column, most of the recourse's rows) become that column's bounds: dual simplex then
        # works on the few coupling rows only, and their duals are read from the column's.
        nnz = np.diff(W.indptr)
        self.single = np.flatnonzero(nnz == 1)
        self.single_col = W.indices[W.indptr[self.single]]
        self.single_coef = W.data[W.indptr[self.single]]
        kept = np.flatnonzero(nnz != 1)
        self.kept = kept
        self.options = options
        self.models = self._models(st.sub_cost)
        self.floor_models: dict[int, list[tuple[highspy.Highs, np.ndarray, np.ndarray]]] = {}
        """Per floor (`_Structure.floor_lower`), the scenarios' LPs maximising its value: made
        when a point first breaks it."""
        n_rows = W.shape[0]
        graph = scipy.sparse.bmat([[None, W], [W.T, None]]).tocsr()
        self.n_blocks, label = scipy.sparse.csgraph.connected_components(graph, directed=False)
        row_block = label[:n_rows]
        self.kept_block = row_block[kept]
        self.col_block = label[n_rows:]
        self.block_scenario = np.zeros(self.n_blocks, dtype=np.int64)
        self.block_scenario[self.col_block] = st.recourse_scenario
        self.picker = scipy.sparse.csr_array(
            (np.ones(n_rows), (row_block, np.arange(n_rows))), shape=(self.n_blocks, n_rows)
        )
        self.deadline = INF
        self.n_master = len(st.master_cols)
        self.fractional_blocks = 0
        """How many blocks the last `exact` found with a fractional binary."""
        self.mip_blocks = 0
        """How many of those went to HiGHS's MIP (the others were solved by their branch and bound)."""
        self.block_lps = 0
        """How many LPs the branch and bound of those blocks solved (their rounded-up LPs included)."""
        self.unproven_blocks = 0
        """How many of those kept a whole solution not proven within the gap: time ran out."""
        self.held_blocks = 0
        """How many of those had no solution with their binaries rounded up, and one with their
        served hours held (a whole solution of last resort)."""
        self.held_tried = 0
        """How many of those were tried so (a held solve may run out of its share of time)."""

    def _models(self, cost: np.ndarray) -> list[tuple[highspy.Highs, np.ndarray, np.ndarray]]:
        """Each scenario's recourse LP maximising `cost` (over the recourse columns), with its
        rows (of the kept ones) and columns."""
        st = self.st
        models = []
        for s in range(st.n_scenarios):
            rows = self.kept[st.sub_row_scenario[self.kept] == s]
            cols = np.flatnonzero(st.recourse_scenario == s)
            h = _highs(self.options)
            _pass(
                h,
                cost[cols],
                st.col_lower[st.recourse_cols[cols]],
                st.col_upper[st.recourse_cols[cols]],
                st.sub_W[rows][:, cols],
                st.sub_lower[rows],
                st.sub_upper[rows],
            )
            models.append((h, rows, cols))
        return models

    def at_bounds(self, x: np.ndarray) -> np.ndarray:
        """Master point x's master columns, each moved onto its bounds where it is outside them.
        HiGHS returns columns slightly outside their bounds (its tolerances apply to the scaled
        problem: a quota at -4.5e-7 GPUs at (10,3,20,6,50)); folded into a recourse column's bounds
        (`served <= h quota`) that is an upper bound below its lower, and the recourse LP
        infeasible."""
        st = self.st
        return np.clip(x[: self.n_master], st.col_lower[st.master_cols], st.col_upper[st.master_cols])

    def _bounds_at(self, first: np.ndarray) -> tuple[np.ndarray, ...]:
        """At master point `first` (within its column bounds, `at_bounds`): the recourse rows'
        bounds (shifted by T x), the recourse column bounds with the singleton rows' folded in,
        and for each singleton row whether it gives its column's lower or upper bound (first on
        ties)."""
        st = self.st
        shift = st.sub_T @ first
        lower, upper = st.sub_lower - shift, st.sub_upper - shift
        a = self.single_coef
        lo_r, up_r = lower[self.single], upper[self.single]
        with np.errstate(invalid="ignore"):
            implied_lo = np.where(a > 0, lo_r / a, up_r / a)
            implied_up = np.where(a > 0, up_r / a, lo_r / a)
        implied_lo = np.nan_to_num(implied_lo, nan=-INF, posinf=INF, neginf=-INF)
        implied_up = np.nan_to_num(implied_up, nan=INF, posinf=INF, neginf=-INF)
        col_lo = st.col_lower[st.recourse_cols].copy()
        col_up = st.col_upper[st.recourse_cols].copy()
        np.maximum.at(col_lo, self.single_col, implied_lo)
        np.minimum.at(col_up, self.single_col, implied_up)
        gives_lo = np.zeros(len(a), bool)
        gives_up = np.zeros(len(a), bool)
        for gives, implied, bound in ((gives_lo, implied_lo, col_lo), (gives_up, implied_up, col_up)):
            tight = np.flatnonzero(np.isfinite(implied) & (implied == bound[self.single_col]))
            _, at = np.unique(self.single_col[tight], return_index=True)
            gives[tight[at]] = True
        return lower, upper, col_lo, col_up, gives_lo, gives_up

    def _spread(self, work, n: int) -> None:
        """work(range(k, n, workers)) for each worker k, side by side on the pool (HiGHS lets
        go of the GIL while it solves, and each HiGHS instance is only ever used by one worker
        at a time). A worker's error (or the caller's, say an interrupt while it waits) stops
        the others at their next item (`stop`); once all are done, an error other than running
        out of time is raised in preference, among those the workers met. Never on the
        caller's thread when there is a pool: the instances are sized for the workers."""
        self.stop.clear()
        if self.pool is None:
            work(range(n))
            return

        def guarded(items: range) -> None:
            try:
                work(items)
            except BaseException:
                self.stop.set()
                raise

        futures = [self.pool.submit(guarded, range(k, n, self.workers)) for k in range(min(self.workers, n))]
        try:
            errors = [error for error in (f.exception() for f in futures) if error is not None]
        except BaseException:
            self.stop.set()
            raise
        errors.sort(key=lambda error: isinstance(error, RecourseOutOfTime))
        if errors:
            raise errors[0]

    def block_values(self, y: np.ndarray, cost: np.ndarray | None = None) -> np.ndarray:
        """Each block's value phi_b at recourse solution y (of `cost`, by default the scenario
        value's recourse part)."""
        cost = self.st.sub_cost if cost is None else cost
        return np.bincount(self.col_block, weights=cost * y, minlength=self.n_blocks)

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, scipy.sparse.csr_array, np.ndarray, np.ndarray]:
        """Each block's value phi_b at master point x (master columns), its cut
        phi_b(x') <= phi_b + pi_b T_b (x^ - x'): pi_b T_b over the master columns, and
        phi_b + pi_b T_b x^, and the recourse columns' values (the second stage at x)."""
        return self._solved(self.at_bounds(x), self.models, self.st.sub_cost)

    def floor_cut(self, x: np.ndarray, f: int) -> tuple[np.ndarray, float, np.ndarray]:
        """Floor f's cut at master point x: (a, b) with a x' <= b wherever some recourse meets
        the floor at x' (its greatest value there, a sum of concave per-block LP values, is at
        most its cut's), and the recourse reaching that greatest value at x."""
        st = self.st
        cost = st.floor_recourse[[f]].toarray().ravel()
        if f not in self.floor_models:
            self.floor_models[f] = self._models(cost)
        _, piT, rhs, y = self._solved(self.at_bounds(x), self.floor_models[f], cost)
        row = np.asarray(piT.sum(axis=0)).ravel() - st.floor_master[[f]].toarray().ravel()
        return row, float(st.floor_constant[f] + rhs.sum() - st.floor_lower[f]), y

    def _solved(
        self, first: np.ndarray, models: list[tuple[highspy.Highs, np.ndarray, np.ndarray]], cost: np.ndarray
    ) -> tuple[np.ndarray, scipy.sparse.csr_array, np.ndarray, np.ndarray]:
        """`evaluate` at master point `first` (within its bounds) for the scenarios' LPs `models`,
        which maximise `cost`."""
        st = self.st
        lower, upper, col_lo, col_up, gives_lo, gives_up = self._bounds_at(first)
        y = np.zeros(len(st.recourse_cols))
        reduced = np.zeros(len(st.recourse_cols))
        pi = np.zeros(len(st.sub_lower))

        def solve(scenarios: range) -> None:
            """Scenarios' LPs in turn; their columns and rows are disjoint, so each worker
            writes its own slices of y, reduced and pi."""
            for s in scenarios:
                if self.stop.is_set():
                    return
                h, rows, cols = models[s]
                remaining = self.deadline - time.perf_counter()
                if remaining <= 0:
                    raise RecourseOutOfTime
                h.setOptionValue("time_limit", _time_limit(h, min(remaining, 1e9), mip=False))
                # In highspy 1.15 but not in its type stubs.
                h.changeRowsBounds(len(rows), np.arange(len(rows), dtype=np.int32), lower[rows], upper[rows])  # type: ignore[attr-defined]
                h.changeColsBounds(
                    len(cols), np.arange(len(cols), dtype=np.int32), col_lo[cols], col_up[cols]
                )
                h.run()
                status = h.getModelStatus()
                if status == highspy.HighsModelStatus.kUnknown:
                    # Warm dual simplex can stall on the numerics (seen at (3,2,8,4,6), seed 1,
                    # syndicate, a rounded master point): solved again from scratch.
                    self.restarted.append(s)
                    h.clearSolver()
                    h.run()
                    status = h.getModelStatus()
                if status == highspy.HighsModelStatus.kTimeLimit:
                    raise RecourseOutOfTime
                if status != highspy.HighsModelStatus.kOptimal:
                    raise NotDecomposable(f"a scenario's recourse LP is {h.modelStatusToString(status)}")
                solution = h.getSolution()
                y[cols] = solution.col_value
                reduced[cols] = solution.col_dual
                pi[rows] = solution.row_dual

        self._spread(solve, len(models))
        # A singleton row's dual is its column's reduced cost (d objective / d bound) over its
        # coefficient, where the row gives the bound the reduced cost's sign says is active.
        d = reduced[self.single_col]
        active = (gives_up & (d > 0)) | (gives_lo & (d < 0))
        pi[self.single] = np.where(active, d / self.single_coef, 0.0)
        phi = self.block_values(y, cost)
        piT = (self.picker @ scipy.sparse.diags(pi) @ st.sub_T).tocsr()
        return phi, piT, phi + piT @ first, y

    def exact(self, x: np.ndarray, y: np.ndarray, gap: float, deadline: float) -> np.ndarray | None:
        """The true second stage at master point x, given y, the recourse LPs' solution there:
        each block with a fractional integer column (`buyback_open`) solved again whole to
        `gap`, shared out to the workers in two passes. First each block's LP with its binaries
        rounded up (`_opened`: any fraction opens), kept where it attains the relaxed value
        within `gap`, else a whole solution to fall back on (where that LP has none, the block
        with its served hours held, `held_blocks`); then the others by a branch and bound over
        their LP (`_block_branch_and_bound`, from y's values there and that solution), and
        where that needs more than `BLOCK_LP_LIMIT` LPs, or one of its LPs fails, by HiGHS's
        MIP from the best it found; the blocks with no whole solution yet first. Where time
        runs out in the second pass, a block keeps the best whole solution found
        (`unproven_blocks`): a plan whose value is what it attains, rather than none. Blocks,
        not scenarios: at (10,3,20,6,50) one scenario's MIP (20 quarters' blocks, 200 binaries)
        took 35.9 s to prove 0.1%, its neighbours 0.02 and 1.35 s. None where a block has no
        whole solution: none exists, or none was found in time."""
        st = self.st
        lower, upper, col_lo, col_up, _, _ = self._bounds_at(self.at_bounds(x))
        integer = st.integer[st.recourse_cols] > 0
        col_order = np.argsort(self.col_block, kind="stable")
        col_start = np.searchsorted(self.col_block[col_order], np.arange(self.n_blocks + 1))
        row_order = np.argsort(self.kept_block, kind="stable")
        row_start = np.searchsorted(self.kept_block[row_order], np.arange(self.n_blocks + 1))
        # A block whose binaries the LP already set whole has its MIP's optimum there.
        fractional = integer & (np.abs(y - np.round(y)) > INTEGRAL_TOLERANCE)
        blocks = np.unique(self.col_block[fractional])
        self.fractional_blocks = len(blocks)
        relaxed_y = y
        y = y.copy()
        unsolved: list[int] = []
        rounded: dict[int, tuple[float, np.ndarray | None]] = {}
        """Each block left for the second pass: the value and solution of its first pass's
        whole solution (its rounded-up LP's, else its held one's; None where neither has one)."""
        unproven: list[int] = []
        # MIPs solved and LPs of the branch and bound, per worker (each writes its own entry).
        mips = np.zeros(max(1, self.workers), dtype=np.int64)
        lps = np.zeros(max(1, self.workers), dtype=np.int64)
        helds = np.zeros(max(1, self.workers), dtype=np.int64)
        tried = np.zeros(max(1, self.workers), dtype=np.int64)
        optimal = highspy.HighsModelStatus.kOptimal

        def share(mine: range, n: int) -> float:
            """An equal share of the time a worker's blocks have left, for its n-th block's
            MIP."""
            return (deadline - time.perf_counter()) / (len(mine) - n)

        def load(h: highspy.Highs, b: int, local: np.ndarray, remaining: float):
            """Block b's LP (binaries relaxed) into h: its columns, their A and binaries."""
            cols = col_order[col_start[b] : col_start[b + 1]]
            rows = self.kept[row_order[row_start[b] : row_start[b + 1]]]
            local[cols] = np.arange(len(cols))
            W = st.sub_W[rows]
            A = scipy.sparse.csr_array((W.data, local[W.indices], W.indptr), shape=(len(rows), len(cols)))
            h.clearModel()
            _pass(h, st.sub_cost[cols], col_lo[cols], col_up[cols], A, lower[rows], upper[rows])
            h.setOptionValue("time_limit", _time_limit(h, remaining, mip=False))
            return cols, np.flatnonzero(integer[cols]).astype(np.int32)

        def held_whole(
            h: highspy.Highs, cols: np.ndarray, whole: np.ndarray, seconds: float
        ) -> tuple[float, np.ndarray | None]:
            """Block `cols` (loaded in h) solved whole in `seconds` with its served hours held at
            the relaxed LP's (`HELD_FAMILIES`): the binaries then need only mark a maximising set
            of site classes for those hours, which always exists, so a whole solution of last
            resort where the binaries rounded up have none (opening every class a fraction
            touches is seldom a maximising set). Its value is only what the second pass must
            beat. (value, solution), or
            (-inf, None) where none was found in time."""
            if seconds <= 0:
                return -INF, None
            held = np.flatnonzero(st.held[cols]).astype(np.int32)
            at = np.clip(relaxed_y[cols][held], col_lo[cols][held], col_up[cols][held])
            h.changeColsBounds(len(whole), whole, col_lo[cols][whole], col_up[cols][whole])
            h.changeColsBounds(len(held), held, at, at)
            h.changeColsIntegrality(len(whole), whole, np.ones(len(whole), np.uint8))
            h.setOptionValue("time_limit", _time_limit(h, seconds, mip=True))
            h.run()
            if h.getInfo().primal_solution_status != 2:
                return -INF, None
            return h.getInfo().objective_function_value, np.asarray(h.getSolution().col_value)

        def first(mine: range) -> None:
            """A worker's blocks, binaries rounded up: settled, or kept for the second pass."""
            worker = mine.start % len(mips)
            h = _highs({**self.options, "solver": "choose", "mip_rel_gap": gap})
            local = np.full(len(st.recourse_cols), -1, dtype=np.int64)
            for n, b in enumerate(blocks[k] for k in mine):
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.stop.is_set():
                    unsolved.append(b)
                    return
                cols, whole = load(h, b, local, remaining)
                opened = _opened(relaxed_y[cols][whole])
                value, solution = -INF, None
                if np.all(opened >= col_lo[cols][whole]) and np.all(opened <= col_up[cols][whole]):
                    h.changeColsBounds(len(whole), whole, opened, opened)
                    h.run()
                    lps[worker] += 1
                    if h.getModelStatus() == optimal:
                        value = h.getInfo().objective_function_value
                        solution = np.asarray(h.getSolution().col_value)
                if solution is None:
                    value, solution = held_whole(h, cols, whole, share(mine, n))
                    helds[worker] += solution is not None
                    tried[worker] += 1
                relaxed = float(st.sub_cost[cols] @ relaxed_y[cols])
                if solution is not None and relaxed - value <= gap * max(1.0, abs(relaxed)):
                    y[cols] = solution
                else:
                    rounded[b] = (value, solution)

        def keep(b: int, solution: np.ndarray | None, proven: bool) -> bool:
            """Write block b's whole solution (counted unproven unless `proven`); False where it
            has none, or another worker gave up: the block is unsolved and the others stop."""
            if solution is None or self.stop.is_set():
                unsolved.append(b)
                self.stop.set()
                return False
            y[col_order[col_start[b] : col_start[b + 1]]] = solution
            if not proven:
                unproven.append(b)
            return True

        def second(mine: range) -> None:
            """A worker's blocks left, in turn, on a HiGHS instance of its own; a MIP gets an
            equal share of the time its worker's blocks have left. Out of time, a block keeps
            the best whole solution found."""
            worker = mine.start % len(mips)
            h = _highs({**self.options, "solver": "choose", "mip_rel_gap": gap})
            local = np.full(len(st.recourse_cols), -1, dtype=np.int64)
            for n, b in enumerate(left[k] for k in mine):
                start = rounded[b]
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.stop.is_set():
                    if not keep(b, start[1], proven=False):
                        return
                    continue
                cols, whole = load(h, b, local, remaining)
                relaxed = float(st.sub_cost[cols] @ relaxed_y[cols])
                search = _block_branch_and_bound(
                    h,
                    whole,
                    col_lo[cols][whole],
                    col_up[cols][whole],
                    relaxed,
                    relaxed_y[cols],
                    gap,
                    deadline,
                    BLOCK_LP_LIMIT,
                    rounded_root=start,
                )
                lps[worker] += search.lps
                # "optimal" with no solution: none exists; "time limit": the best found, if any.
                if search.status in ("optimal", "time limit"):
                    if not keep(b, search.y, proven=search.status == "optimal"):
                        return
                    continue
                # Past its LP limit, or an LP HiGHS could not solve: HiGHS's MIP, from the best found.
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.stop.is_set():
                    if not keep(b, search.y, proven=False):
                        return
                    continue
                mips[worker] += 1
                load(h, b, local, remaining)
                h.changeColsIntegrality(len(whole), whole, np.ones(len(whole), np.uint8))
                if search.y is not None:
                    h.setSolution(len(cols), np.arange(len(cols), dtype=np.int32), search.y)
                h.setOptionValue("time_limit", _time_limit(h, share(mine, n), mip=True))
                h.run()
                info = h.getInfo()
                found = info.primal_solution_status == 2
                # HiGHS found none, or a worse one (its start not taken): the search's stands.
                searched = search.y is not None and (
                    not found or search.value > info.objective_function_value
                )
                solution = np.asarray(h.getSolution().col_value) if found and not searched else search.y
                if not keep(b, solution, proven=found and h.getModelStatus() == optimal):
                    return

        self._spread(first, len(blocks))
        # The blocks with no whole solution yet first: out of time, the others keep theirs.
        left = np.asarray(sorted(rounded, key=lambda b: (rounded[b][1] is not None, b)), dtype=np.int64)
        if not unsolved:
            self._spread(second, len(left))
        self.mip_blocks = int(mips.sum())
        self.held_blocks = int(helds.sum())
        self.held_tried = int(tried.sum())
        self.block_lps = int(lps.sum())
        self.unproven_blocks = len(unproven)
        if unsolved:
            return None
        # HiGHS's values, as the extensive form's are loaded: rounding a binary off by its
        # integrality tolerance could break a big-M buyback row by M times that.
        return y

    def groups(self) -> tuple[int, np.ndarray]:
        """Each block's group: blocks of different scenarios with the same shape (the same
        recourse columns but for the scenario index, so the same quarter, or tenant's quarter)
        share one; the master splits each by scenario cluster, and one epigraph column per
        group, cluster and weighting aggregates their cuts (summed over the clusters until
        `_Master.refine`)."""
        key = np.full(self.n_blocks, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(key, self.col_block, self.st.recourse_key)
        _, group = np.unique(key, return_inverse=True)
        return int(group.max()) + 1 if len(group) else 0, group

    def values(self, x: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """V_s at master point x given the blocks' values: b_s / v_s - (a_s / v_s) x + Sum_b phi_b."""
        st = self.st
        first = x[: self.n_master].copy()
        first[st.value_cols_in_master] = 0.0
        return (
            st.value_rhs
            - st.value_A @ first
            + np.bincount(self.block_scenario, weights=phi, minlength=st.n_scenarios)
        )


def _opened(values: np.ndarray) -> np.ndarray:
    """Binaries rounded up: any fraction opens (`_block_branch_and_bound`)."""
    return np.where(values > INTEGRAL_TOLERANCE, 1.0, 0.0)


@dataclass
class _BlockSearch:
    """What `_block_branch_and_bound` found: its best whole solution (None: none), its value,
    and why it stopped: "optimal" (within the gap, or none exists: y None), "lp limit",
    "time limit" or "failed" (an LP neither optimal nor infeasible)."""

    status: str
    y: np.ndarray | None
    value: float
    lps: int


def _block_branch_and_bound(
    h: highspy.Highs,
    whole: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    root_value: float,
    root_y: np.ndarray,
    gap: float,
    deadline: float,
    lp_limit: int,
    *,
    rounded_root: tuple[float, np.ndarray | None] | None = None,
) -> _BlockSearch:
    """Maximise the LP loaded in `h` with columns `whole` binary (within `lower` and `upper`, their
    bounds there), given its optimum (`root_value` at `root_y`): best first over the nodes' LP
    values, each node's binaries rounded up (`_opened`: any fraction opens) and that LP solved
    for a whole solution, the most fractional binary branched on, until the best whole solution
    is within `gap` (relative to the bound, at least absolute) of the best bound left. The LP
    stays loaded: a node only moves the binaries' bounds, so each solve starts from the last
    basis. Not HiGHS's MIP first: its set-up (presolve, cuts, heuristics) took 19.5 ms a block
    on average at (10,3,20,6,50), cloud, and this 4.6 ms, to the same optima (within 1e-13); on
    blocks of 20 sites some need thousands of LPs, hence `lp_limit`. `rounded_root`: the root's
    binaries rounded up, already solved (its value, and its solution, or another whole solution,
    or None). The binaries' bounds are left as the last LP set them (the caller reloads the
    model)."""
    optimal, infeasible = highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible
    best_y: np.ndarray | None = None
    best = -INF
    tried: set[bytes] = set()
    lps = 0
    if rounded_root is not None:
        tried.add(_opened(root_y[whole]).tobytes())
        if rounded_root[1] is not None:
            best, best_y = rounded_root

    def lp(lo: np.ndarray, up: np.ndarray) -> tuple[str, float, np.ndarray | None]:
        nonlocal lps
        lps += 1
        h.changeColsBounds(len(whole), whole, lo, up)
        h.run()
        status = h.getModelStatus()
        if status == optimal:
            return "optimal", h.getInfo().objective_function_value, np.asarray(h.getSolution().col_value)
        if status == infeasible:
            return "infeasible", -INF, None
        return ("time limit" if status == highspy.HighsModelStatus.kTimeLimit else "failed"), -INF, None

    def closed(bound: float) -> bool:
        return best_y is not None and bound - best <= gap * max(1.0, abs(bound))

    heap: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray]] = [
        (-root_value, 0, lower, upper, root_y)
    ]
    pushed = 1
    while heap:
        bound = -heap[0][0]
        if closed(bound):
            break
        if lps >= lp_limit:
            return _BlockSearch("lp limit", best_y, best, lps)
        if time.perf_counter() >= deadline:
            return _BlockSearch("time limit", best_y, best, lps)
        _, _, lo, up, y = heapq.heappop(heap)
        binaries = y[whole]
        # A binary the node fixed is whole, whatever HiGHS's tolerances leave of its value.
        off = np.where(lo == up, 0.0, np.abs(binaries - np.round(binaries)))
        if np.all(off <= INTEGRAL_TOLERANCE):
            if bound > best:
                best, best_y = bound, y
            continue
        opened = np.where(lo == up, lo, _opened(binaries))
        key = opened.tobytes()
        if key not in tried and np.all(opened >= lo) and np.all(opened <= up):
            tried.add(key)
            status, value, solution = lp(opened, opened)
            if status in ("time limit", "failed"):
                return _BlockSearch(status, best_y, best, lps)
            if solution is not None and value > best:
                best, best_y = value, solution
            if closed(bound):
                break
        branch = int(np.argmax(off))
        for side in (1.0, 0.0):
            child_lo, child_up = lo.copy(), up.copy()
            child_lo[branch] = child_up[branch] = side
            status, value, solution = lp(child_lo, child_up)
            if status in ("time limit", "failed"):
                return _BlockSearch(status, best_y, best, lps)
            if solution is not None:
                heapq.heappush(heap, (-value, pushed, child_lo, child_up, solution))
                pushed += 1
    return _BlockSearch("optimal", best_y, best, lps)


class _ValueSide:
    """How the objective reads the scenario values: F(V) = the best the value-side columns (V
    itself, the CVaR level and shortfalls) give with V fixed, a small LP of the master's rows
    that read V. F is concave and non-decreasing, so its column duals at V are a weighting q >= 0
    with F(V') <= F(V) + q (V' - V) (for the expectation and CVaR: (1 - w) p + w zeta, zeta the
    worst-case weights of the alpha tail)."""

    def __init__(self, st: _Structure, options: dict) -> None:
        A = st.master.tocsc()
        n = A.shape[1]
        is_value = np.zeros(n, bool)
        is_value[st.value_cols_in_master] = True
        reads_value = np.zeros(A.shape[0], bool)
        reads_value[A[:, st.value_cols_in_master].indices] = True
        rows = np.flatnonzero(reads_value)
        R = st.master[rows]
        side = np.zeros(n, bool)
        side[np.unique(R.indices)] = True
        side |= is_value
        if not reads_value[A[:, np.flatnonzero(side & ~is_value)].indices].all():
            raise NotDecomposable("a column beside the scenario values appears in a first-stage row")
        self.rows = rows
        self.side = np.flatnonzero(side)
        self.other = np.flatnonzero(~side)
        self.R_other = R[:, self.other].tocsr()
        position = np.full(n, -1, dtype=np.int64)
        position[self.side] = np.arange(len(self.side))
        self.value_pos = position[st.value_cols_in_master].astype(np.int32)
        self.cost_other = st.cost[self.other]
        self.st = st
        self.h = _highs(options)
        _pass(
            self.h,
            st.cost[self.side],
            st.col_lower[st.master_cols][self.side],
            st.col_upper[st.master_cols][self.side],
            R[:, self.side].tocsr(),
            st.master_lower[rows],
            st.master_upper[rows],
        )

    def evaluate(self, x: np.ndarray, V: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """The true objective at first stage x with scenario values V, the weighting q, and x
        with its value-side columns (V, the CVaR level and shortfalls) at their best."""
        st = self.st
        shift = self.R_other @ x[self.other]
        h = self.h
        h.changeRowsBounds(  # type: ignore[attr-defined]
            len(self.rows),
            np.arange(len(self.rows), dtype=np.int32),
            st.master_lower[self.rows] - shift,
            st.master_upper[self.rows] - shift,
        )
        h.changeColsBounds(len(V), self.value_pos, V, V)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise NotDecomposable(
                f"the objective's value side is {h.modelStatusToString(h.getModelStatus())}"
            )
        solution = h.getSolution()
        q = np.maximum(np.asarray(solution.col_dual)[self.value_pos], 0.0)
        settled = x.copy()
        settled[self.side] = solution.col_value
        return float(self.cost_other @ x[self.other]) + h.getInfo().objective_function_value, q, settled


@dataclass
class _Point:
    """A master point evaluated exactly: its true objective, its blocks' cuts and the plan it
    makes (master columns with the value side settled, and the recourse columns)."""

    x: np.ndarray
    value: float
    weighting: np.ndarray
    piT: scipy.sparse.csr_array
    rhs: np.ndarray
    settled: np.ndarray
    y: np.ndarray
    floor_cuts: list[tuple[np.ndarray, float]] = field(default_factory=list)
    """The cuts of the floors its cloud's own recourse broke (`_floor_cuts`)."""


class _Master:
    """The master LP/MIP: the master columns and rows of the extensive form, then per weighting
    q^k one epigraph column Theta_{k,g} per block group g and one row per scenario cluster c
    (its scenarios s, its groups g)

        Sum_s q_s V_s + Sum_s q_s (a_s / v_s) x - Sum_g Theta_{k,g} <= Sum_s q_s b_s / v_s,

    with cuts Theta_{k,g} + (Sum_{b in g} q_s(b) pi_b T_b) x <= Sum_{b in g} q_s(b) (phi_b +
    pi_b T_b x^). Valid because q >= 0 and each phi_b is concave; exact at convergence because
    the weighting of the point's own supergradient is among them (`_ValueSide`). Its size grows
    with the groups (block shapes times scenario clusters) and weightings, not with the
    scenarios: per-block cuts (3,200 a round of about 720 non-zeros at (20,4,32,8,100)) made
    each warm re-solve slower than the last (1, 17, 66, 182 s). The rows (one per cluster) and
    cuts (one per group) are first summed over the clusters (`coarse`: one row per weighting, one
    cut per shape), then split (`refine`, `FINE_CUTS_GAP`)."""

    def __init__(self, st: _Structure, recourse: _Recourse, options: dict) -> None:
        self.st, self.recourse = st, recourse
        self.n_master = len(st.master_cols)
        shapes, shape = recourse.groups()
        clusters = min(SCENARIO_CLUSTERS, st.n_scenarios)
        self.n_clusters = clusters
        self.singletons = clusters == st.n_scenarios
        self.cluster = (np.arange(st.n_scenarios) * clusters) // max(1, st.n_scenarios)
        self.n_groups = shapes * clusters
        self.group = shape * clusters + self.cluster[recourse.block_scenario]
        self.shape, self.n_shapes = shape, shapes
        self.coarse = 1 < clusters < st.n_scenarios
        """Whether cuts are summed over the clusters yet (`FINE_CUTS_GAP`)."""
        self.weightings: list[np.ndarray] = []
        self.h = _highs(options)
        _pass(
            self.h,
            st.cost,
            st.col_lower[st.master_cols],
            st.col_upper[st.master_cols],
            st.master,
            st.master_lower,
            st.master_upper,
        )
        self.cuts = 0
        self.refactored = 0
        self.cold = 0
        """Master solves whose basis was refactorised, and repeated from scratch (`solve`)."""
        self.last_x = np.zeros(self.n_master)
        """The last master point (master columns)."""
        self.is_cut = np.zeros(st.master.shape[0], bool)
        self.idle = np.zeros(st.master.shape[0], np.int64)
        """Per master row, whether it is a cut, and for how many solves in a row its dual was 0."""
        self.is_summed = np.zeros(st.master.shape[0], bool)
        """Per master row, whether it is a weighting's summed tie row (`_tie`, deleted at `refine`)."""
        self.floor_cuts = 0

    @property
    def n_cols(self) -> int:
        return self.n_master + self.n_groups * len(self.weightings)

    def integer_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """The master's integer columns (racks and blocks) and their integrality kinds, for
        making it a MIP."""
        kinds = np.zeros(self.n_cols, np.int32)
        kinds[: self.n_master] = self.st.integer[self.st.master_cols]
        columns = np.flatnonzero(kinds).astype(np.int32)
        return columns, kinds[columns].astype(np.uint8)

    def knows(self, q: np.ndarray) -> bool:
        """Whether a weighting like q is in already (with one scenario per cluster, any is)."""
        if self.singletons:
            return bool(self.weightings)
        scale = max(1e-12, float(q.max(initial=0.0)))
        return any(float(np.max(np.abs(q - w))) <= WEIGHTING_TOLERANCE * scale for w in self.weightings)

    def add_weighting(self, point: _Point) -> int:
        """A new weighting (the point's own), its epigraph columns, its rows (`_tie`) and the
        cuts at the point; how many cuts. With one scenario per cluster the weighting is 1
        (per-scenario rows need no other)."""
        q = np.ones(self.st.n_scenarios) if self.singletons else point.weighting
        G = self.n_groups
        self.weightings.append(q)
        lower, upper = self._theta_bounds()
        self.h.addCols(
            G, np.zeros(G), lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)
        )
        self._tie(len(self.weightings) - 1)
        cuts, rhs = self._cuts(point, [len(self.weightings) - 1])
        return self._add(cuts, rhs, np.arange(cuts.shape[0]))

    def _theta_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """One weighting's epigraph columns' bounds: free, but while `coarse` only each shape's
        first cluster's, the others fixed at 0. Its rows and cuts read only their sum, so C
        identical free columns would only make the master's LP degenerate."""
        lower, upper = np.full(self.n_groups, -INF), np.full(self.n_groups, INF)
        if self.coarse:
            others = np.arange(self.n_groups) % self.n_clusters > 0
            lower[others] = upper[others] = 0.0
        return lower, upper

    def _tie(self, k: int) -> None:
        """Weighting k's rows tying the scenario values to its epigraph columns: one per
        cluster c, Sum_{s in c} q_s V_s + ... <= Sum_g Theta_{k,g,c} + ..., or while `coarse`
        their sum alone (so the master is the one-cluster master: a Theta_{k,g,c} bounded only
        in its sum over c would let value move between clusters' V unbounded)."""
        st, G, C = self.st, self.n_groups, self.n_clusters
        q, first = self.weightings[k], self.n_master + k * G
        if self.coarse:
            rows = [(q, first + np.arange(G))]
        else:
            rows = [(np.where(self.cluster == c, q, 0.0), first + np.arange(c, G, C)) for c in range(C)]
        for weights, thetas in rows:
            coefs = np.asarray(weights @ st.value_A).ravel()
            cols = np.flatnonzero(coefs)
            index = np.concatenate([cols, thetas]).astype(np.int32)
            values = np.concatenate([coefs[cols], -np.ones(len(thetas))])
            self.h.addRow(-INF, float(weights @ st.value_rhs), len(index), index, values)
        self._rows_added(len(rows), cut=False)

    def refine(self, now: bool, points: list[_Point]) -> int:
        """Tie and cut per cluster from now on if `now` (the loop's gap is `FINE_CUTS_GAP` or
        less, or no summed cut is broken while it is open); the cuts added (0: no change). The
        summed rows and cuts are deleted for every weighting's per-cluster rows, and its cuts per
        cluster at `points` (each once): kept beside them, they held the bound (dual > 0) while
        the per-cluster cuts stayed idle and were purged, so the loop cycled (500 rounds at
        (3,2,8,4,6) against 18 without the purge)."""
        if not (now and self.coarse):
            return 0
        self.coarse = False
        lower, upper = self._theta_bounds()
        K = len(self.weightings)
        thetas = (self.n_master + np.arange(K * self.n_groups)).astype(np.int32)
        self.h.changeColsBounds(len(thetas), thetas, np.tile(lower, K), np.tile(upper, K))
        # The summed cuts and tie rows go: per-cluster cuts are tighter at the same points, and
        # the summed tie row is the per-cluster rows' sum. The earlier points' cuts are lost, so
        # the master's value may rise for a while; the loop keeps its least bound so far.
        self._delete_rows(self.is_cut | self.is_summed)
        for k in range(len(self.weightings)):
            self._tie(k)
        added = 0
        for point in {id(point): point for point in points}.values():
            cuts, rhs = self._cuts(point, list(range(len(self.weightings))))
            added += self._add(cuts, rhs, np.arange(cuts.shape[0]))
        return added

    def _cuts(self, point: _Point, which: list[int]) -> tuple[scipy.sparse.csr_array, np.ndarray]:
        """The aggregated cuts of the weightings `which` at the point, over every master column:
        per group, or while `coarse` per block shape (its clusters' cuts summed, on the sum of
        their epigraph columns: valid as a sum of valid cuts)."""
        scenario = self.recourse.block_scenario
        G, C, n_b = self.n_groups, self.n_clusters, len(scenario)
        # Row j * R + r sums row r's blocks under weighting which[j]: r is the block's group, or
        # while coarse its shape; its epigraph columns are Theta_{which[j], g} for the groups g
        # of r.
        R, row = (self.n_shapes, self.shape) if self.coarse else (G, self.group)
        per_row = C if self.coarse else 1
        M = scipy.sparse.csr_array(
            (
                np.concatenate([self.weightings[k][scenario] for k in which]),
                (
                    np.concatenate([j * R + row for j in range(len(which))]),
                    np.tile(np.arange(n_b), len(which)),
                ),
            ),
            shape=(R * len(which), n_b),
        )
        # Group g is shape * C + cluster (`__init__`): a shape's groups are C in a row.
        theta = scipy.sparse.csr_array(
            (
                np.ones(G * len(which)),
                (
                    np.repeat(np.arange(R * len(which)), per_row),
                    np.concatenate([k * G + np.arange(G) for k in which]),
                ),
            ),
            shape=(R * len(which), self.n_cols - self.n_master),
        )
        return scipy.sparse.hstack([(M @ point.piT).tocsr(), theta]).tocsr(), M @ point.rhs

    def take(self, point: _Point) -> None:
        """Every cut of the point (its weighting too, if new): for a point not from the master."""
        known = list(range(len(self.weightings)))
        if known:
            cuts, rhs = self._cuts(point, known)
            self._add(cuts, rhs, np.arange(cuts.shape[0]))
        if not self.knows(point.weighting):
            self.add_weighting(point)
        self.add_floor_cuts(point)

    def separate(self, point: _Point, x: np.ndarray) -> int:
        """Add the point's cuts (every weighting) that the master point x breaks; how many."""
        cuts, rhs = self._cuts(point, list(range(len(self.weightings))))
        excess = cuts @ x[: self.n_cols] - rhs
        return self._add(cuts, rhs, np.flatnonzero(excess > CUT_TOLERANCE * np.maximum(1.0, np.abs(rhs))))

    def solve(self, phase: str) -> None:
        """Re-solve from the last basis; where the point breaks a master row (recomputed from
        its columns) by more than `MASTER_FEASIBILITY_TOLERANCE`, solve again from scratch.
        Why: after many warm re-solves with dense cuts HiGHS's dual simplex reported optimal
        points at (10,3,20,6,10) whose columns broke first-stage rows by up to 1.57 (its own row
        values, from the basis, said 8e-8); fixed in the completion, such a plan is infeasible.
        A MIP's points are HiGHS's own checked incumbents: not repeated (a MIP has no basis to
        refactorise). A point still broken after a cold solve is refused."""
        _run_master(self.h, phase)
        optimal = highspy.HighsModelStatus.kOptimal
        if phase != "lp" or self.h.getModelStatus() != optimal or self.feasible():
            return
        # The basis refactorised from scratch usually gives accurate values in a few iterations.
        self.refactored += 1
        basis = self.h.getBasis()
        self.h.clearSolver()
        self.h.setBasis(basis)
        _run_master(self.h, phase)
        if self.h.getModelStatus() != optimal or self.feasible():
            return
        self.cold += 1
        self.h.clearSolver()
        _run_master(self.h, phase)
        if self.h.getModelStatus() == optimal and not self.feasible():
            raise NotDecomposable("the master's optimal point breaks its rows even solved from scratch")

    def feasible(self, x: np.ndarray | None = None, slack: np.ndarray | float = 0.0) -> bool:
        """Whether x (by default the master's point) keeps every master row, each within its
        `slack` more."""
        st = self.st
        if x is None:
            x = np.asarray(self.h.getSolution().col_value)
        x = x[: self.n_master]
        activity = st.master @ x
        excess = np.maximum(st.master_lower - activity, activity - st.master_upper)
        return bool(
            np.all(excess <= MASTER_FEASIBILITY_TOLERANCE * np.maximum(1.0, np.abs(activity)) + slack)
        )

    def purge(self) -> int:
        """Delete the cuts idle (dual 0) in the last `PURGE_AFTER_IDLE_SOLVES` master solves;
        how many. Most cuts soon go slack (835 of 4,187 bound after 9 rounds at (20,4,32,8,100)),
        and with them the master re-solved in 8.8 s instead of 70 s (cold dual simplex)."""
        dual = np.asarray(self.h.getSolution().row_dual)
        self.idle = np.where(np.abs(dual) > 0.0, 0, self.idle + 1)
        return self._delete_rows(self.is_cut & (self.idle >= PURGE_AFTER_IDLE_SOLVES))

    def _delete_rows(self, drop: np.ndarray) -> int:
        """Delete the master rows `drop` (a mask over them) with their bookkeeping; how many."""
        rows = np.flatnonzero(drop).astype(np.int32)
        if len(rows):
            self.h.deleteRows(len(rows), rows)
            self.is_cut, self.idle, self.is_summed = (
                self.is_cut[~drop],
                self.idle[~drop],
                self.is_summed[~drop],
            )
        return len(rows)

    def _rows_added(self, n: int, *, cut: bool, kept: bool = False) -> None:
        """The bookkeeping of n rows just added: cuts, tie rows (summed while `coarse`), or rows
        `kept` for good (floor cuts: neither purged nor deleted at `refine`)."""
        self.is_cut = np.append(self.is_cut, np.full(n, cut))
        self.idle = np.append(self.idle, np.zeros(n, np.int64))
        self.is_summed = np.append(self.is_summed, np.full(n, self.coarse and not cut and not kept))

    def add_floor_cuts(self, point: _Point, x: np.ndarray | None = None) -> int:
        """The point's floor cuts (`_Recourse.floor_cut`) that the master point x breaks (every
        one where x is None); how many. Rows on the first stage alone, kept for good (neither purged nor deleted at
        `refine`): few, and each a condition for a plan to exist."""
        broken = [
            (row, rhs)
            for row, rhs in point.floor_cuts
            if x is None or row @ x[: self.n_master] - rhs > CUT_TOLERANCE * max(1.0, abs(rhs))
        ]
        if broken:
            rows = scipy.sparse.csr_array(np.vstack([row for row, _ in broken]))
            _add_cuts(self.h, rows, np.array([rhs for _, rhs in broken]), np.arange(len(broken)))
            self._rows_added(len(broken), cut=False, kept=True)
        self.floor_cuts += len(broken)
        return len(broken)

    def _add(self, cuts: scipy.sparse.csr_array, rhs: np.ndarray, which: np.ndarray) -> int:
        self.cuts += _add_cuts(self.h, cuts, rhs, which)
        self._rows_added(len(which), cut=True)
        return len(which)


def decompose(
    m: pyo.ConcreteModel,
    *,
    integer: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    completion_share: float = 0.0,
    highs_options: dict | None = None,
    workers: int | None = None,
    start: list[tuple[pyo.Var, float]] | None = None,
) -> Decomposition:
    """Solve the model's master over Benders cuts; raise `NotDecomposable` where the structure
    does not hold. `integer`: finish with an integer master (racks and blocks whole). Where the
    loop's recourse is the true second stage, the plan is written whole (`Decomposition.columns`)
    and the loop may use all of `time_limit_s` but `DERIVED_TIME_SHARE` where the buyback left
    the recourse; otherwise it keeps `completion_share` of it for the caller's completion. The
    scenarios' recourse LPs and the binaries' block MIPs are shared out to `workers` threads
    (default: `highs_options["threads"]`, else `OMP_NUM_THREADS` (`planner.engine` gives each
    local worker process its share of the CPUs there), else one per CPU the process may use).
    `start`: (variable, value) pairs of a plan, model units (a neighbouring sweep point's,
    say), whose racks, blocks and quotas the loop starts from instead of the representatives'
    LP where they keep this model's master rows (`_given_plan`)."""
    if workers is None:
        workers = int((highs_options or {}).get("threads") or 0) or _threads_from_environment()
    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dsx-recourse") as pool:
        return _decompose(
            m,
            integer=integer,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
            completion_share=completion_share,
            highs_options=highs_options,
            pool=pool,
            workers=workers,
            start=start,
        )


def _threads_from_environment() -> int:
    """`OMP_NUM_THREADS` (its first level where it lists several) where it is a positive whole
    number, else the CPUs this process may run on."""
    try:
        threads = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        threads = 0
    if threads >= 1:
        return threads
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _decompose(
    m: pyo.ConcreteModel,
    *,
    integer: bool,
    time_limit_s: float,
    mip_rel_gap: float,
    completion_share: float,
    highs_options: dict | None,
    pool: Executor,
    workers: int,
    start: list[tuple[pyo.Var, float]] | None = None,
) -> Decomposition:
    started = time.perf_counter()
    # Every re-solve here starts from the last basis (the master after new cuts, the recourse
    # after new bounds), which only the simplex method can use: an interior-point `solver`
    # (the LP default) would start each of them cold (4 s a master solve instead of 0.8 s at
    # (10,3,20,6,10)). It stays the fallback when simplex stalls (`_run_master`).
    options = {
        k: v for k, v in (highs_options or {}).items() if k not in ("time_limit", "mip_rel_gap", "solver")
    }
    options["solver"] = "simplex"
    left_out = {
        c.local_name
        for c in m.component_objects(pyo.Constraint, active=True)
        if c.local_name.startswith(LEFT_OUT_PREFIXES)
    }
    direct = highs_direct.compile_to_arrays(m)
    st = _structure(m, direct, left_out)
    direct.arrays = None
    # The split is the decomposition's hand-off: the model made into its solver's arrays.
    handoff_s = time.perf_counter() - started
    # With buyback binaries relaxed in the loop, part of the time is kept for the true second
    # stage (`_Recourse.exact`, else the caller's completion); with derived columns, for their
    # values on the plan.
    kept_share = (
        completion_share if st.relaxed_recourse else DERIVED_TIME_SHARE if len(st.derived_cols) else 0.0
    )
    deadline = started + time_limit_s * (1.0 - kept_share)
    log = [
        f"{st.n_scenarios} scenarios, {len(st.master_cols)} master and {len(st.recourse_cols)} recourse columns"
        + (
            f" ({len(st.derived_cols)} buyback columns no value reads left out with their rows)"
            if len(st.derived_cols)
            else ""
        )
    ]
    recourse = _Recourse(st, options, pool, workers)
    recourse.deadline = deadline
    value_side = _ValueSide(st, options)
    master = _Master(st, recourse, options)
    log.append(f"{recourse.n_blocks} recourse blocks in {master.n_groups} groups")

    def evaluate(x: np.ndarray) -> _Point:
        first = recourse.at_bounds(x)
        phi, piT, rhs, y = recourse.evaluate(first)
        floor_cuts: list[tuple[np.ndarray, float]] = []
        reachable = True
        if len(st.floor_lower):
            floor_cuts, reachable = _floor_cuts(st, recourse, first, y)
        value, q, settled = value_side.evaluate(first, recourse.values(first, phi))
        if not reachable:
            # No recourse meets a floor here: a point to cut off, never a plan.
            value = -INF
        return _Point(first, value, q, piT, rhs, settled, y, floor_cuts)

    def learn(point: _Point, x: np.ndarray) -> int:
        """Cuts from an evaluated point that the master point x breaks, and its weighting if new."""
        added = master.separate(point, x) if master.weightings else 0
        added += master.add_floor_cuts(point, x)
        if not master.knows(point.weighting):
            added += master.add_weighting(point)
        return added

    x = np.clip(np.zeros(master.n_master), st.col_lower[st.master_cols], st.col_upper[st.master_cols])
    try:
        learn(evaluate(x), x)
    except RecourseOutOfTime:
        raise NotDecomposable("the time limit came before the recourse LPs were first solved") from None
    first = None
    given_values = 0
    warm_started = time.perf_counter()
    x_hat = None
    covers = False
    """Whether the given start names every integer master column (every rack and block)."""
    if start:
        columns, values = _given_columns(direct, st, start)
        x_hat, status = _given_plan(master, columns, values, deadline)
        # HiGHS may return a fixed column off by its solve's error (3.2e-9 on racks at
        # (10,3,20,6,50)) and the sites' GPUs fitted to that: kept as it is, `_whole` rounds it
        # with the slack that explains, as for every master point.
        if x_hat is not None and not master.feasible(x_hat):
            x_hat, status = None, "breaks a master row by more than its tolerance"
        if x_hat is None:
            log.append(
                f"the given start ({len(columns)} values), fixed in the master: {status}; not used, "
                # With one scenario per cluster (four or fewer) no representatives' start is made.
                + (
                    "the loop starts from x = 0"
                    if master.singletons
                    else "the representatives' start instead"
                )
            )
        else:
            given_values = len(columns)
            covers = bool(np.isin(np.flatnonzero(st.integer[st.master_cols] > 0), columns).all())
    how = (
        "the given start"
        if x_hat is not None
        else f"{len(_representatives(st.n_scenarios)[0])} representative scenarios"
    )
    # With one scenario per cluster (four scenarios or fewer) the loop's cuts are per scenario
    # and starts from x = 0: the start's LP, two of those scenarios, would be about half the
    # extensive form.
    tried, status = x_hat is None and not master.singletons, "optimal"
    completion = ""
    """The master LP's status in words where a point off the master rows had its rest completed
    ("" where none was)."""
    if tried:
        x_hat, status = _representatives_plan(st, master, options, deadline)
        notes = (
            [f"HiGHS says {status}: its last iterate"] if status != "optimal" and x_hat is not None else []
        )
        if x_hat is not None and not master.feasible(x_hat):
            # An interior iterate keeps the rows only to its residual (at (10,3,20,6,50), stopped
            # at 56 of 83 iterations: rows defining a site's GPUs from its racks off by about
            # 1e-6), and even an optimal point may be off by more than the master's tolerance.
            # Its racks, blocks and quotas fixed, the master LP puts the rest back on the rows.
            decisions = _decision_columns(m, direct, st)
            x_hat, completion = _given_plan(master, decisions, x_hat[decisions], deadline)
            if x_hat is not None:
                notes.append("its racks, blocks and quotas kept and the rest completed by the master LP")
        if notes:
            how += f" ({', '.join(notes)})"
    usable = x_hat is not None and master.feasible(x_hat)
    if usable and x_hat is not None:  # (narrowed for the type checker)
        try:
            first = evaluate(x_hat)
            master.take(first)
            log.append(f"start from {how}: {first.value:.6f} in {time.perf_counter() - warm_started:.1f} s")
        except RecourseOutOfTime:
            first = None
    if tried and first is None:
        why = (
            "its point breaks a master row, and with its racks, blocks and quotas fixed the "
            f"master LP gave no point: {completion}"
            if x_hat is None and completion
            else f"HiGHS says {status}, no point"
            if x_hat is None
            else "its completed point breaks a master row by more than its tolerance"
            if not usable  # (any other point off the rows was completed)
            else "its recourse ran out of time"
        )
        log.append(f"no start from {how} ({why}): the loop starts from x = 0")
    if first is None and given_values:
        log.append("the given start's recourse ran out of time: the loop starts from x = 0")
        given_values = 0
    given: _Point | None = None
    """A given start naming every rack and block (whole: `start_values` rounds them), in a MILP:
    a plan to weigh against the rounding's. One naming them in part has the rest completed by
    the master's LP, fractional as likely as not: a start for the loop only."""
    if given_values and integer and first is not None:
        if covers:
            given = first
        else:
            log.append("the given start does not name every rack and block: a start for the loop, not a plan")
    lp_gap = mip_rel_gap * LP_PHASE_GAP_SHARE if integer else LP_GAP_TOLERANCE
    lp_deadline = started + LP_PHASE_TIME_SHARE * (deadline - started) if integer else deadline

    def unmet(error: FloorsUnmet, before: int) -> FloorsUnmet:
        error.direct, error.handoff_s = direct, handoff_s
        error.seconds, error.iterations = time.perf_counter() - started, before + error.iterations
        return error

    try:
        best, bound, iterations, converged = _benders(
            master, evaluate, learn, lp_deadline, lp_gap, log, stabilise=True, incumbent=first
        )
    except FloorsUnmet as error:
        raise unmet(error, 0) from None
    iterations_lp = iterations
    lp_converged = converged
    finished = True
    """False where the plan stands on a rounding of an LP phase cut short (reported out of time)."""
    integer_master = False
    """Whether the master was solved as a MIP (then it is not solved again for its bound)."""
    if integer and best is not None and bound < INF:
        if not converged:
            # Its bound is the LP master's, an upper bound however far the loop got: the
            # rounding still gives a whole plan, and the gap says how good it is.
            log.append(f"lp phase not converged: rounded from its points, bound {bound:.6f}")
        series = _integer_series(m, direct, st)
        converged = False
        # Round the master's last point (a vertex) and, until one is within the gap, again with
        # the power blocks first, then the best plan evaluated (a mix of master points: its
        # floors can lose more racks). With the buyback binaries relaxed, the rounded point's
        # value is not yet its plan's (the binaries cost the cloud's view 0.2-0.3% at
        # (10,3,20,6,50)), so the blocks come first from the start.
        # A given start (a sweep's neighbouring plan) is weighed against at least the first
        # rounding, as the extensive form's rounded start weighs it: within the MIP gap alone it
        # would be carried from point to point of a sweep unchanged. Only one within the LP
        # phase's own gap, as near the bound as the LP phase was asked to get, skips it.
        start_point: _Point | None = given
        attempts = [(master.last_x, False), (master.last_x, True), (best.x, False)]
        for x_lp, blocks_first in attempts[st.relaxed_recourse :]:
            if _closed(start_point, bound, lp_gap):
                break
            found = _rounded_master(
                master, evaluate, learn, st, series, x_lp, deadline, lp_gap, log, blocks_first=blocks_first
            )
            if found is not None:
                iterations += found[1]
                # (A rounding no recourse meets the floors at is no start.)
                if math.isfinite(found[0].value) and (
                    start_point is None or found[0].value > start_point.value
                ):
                    start_point = found[0]
            if _closed(start_point, bound, mip_rel_gap):
                break
        if start_point is not None:
            point = start_point
            which = "given" if point is given else "rounded"
            if _closed(point, bound, mip_rel_gap):
                log.append(f"{which} start {point.value:.6f} within the gap of the LP bound {bound:.6f}")
                best, converged = point, True
            elif st.relaxed_recourse:
                # An integer master would optimise against relaxed buyback binaries (197 s at
                # (10,3,20,6,10), and its plan completed 1.6% below the bound): the completion,
                # which solves them exactly, decides on the rounded point.
                log.append(f"{which} start {point.value:.6f}; recourse relaxed, no integer master")
                # Finished only where the LP phase was: cut short, its bound is still an upper
                # bound, but the run ends out of time (no fallback from a plan this far off).
                best, converged, finished = point, True, lp_converged
        if not converged:
            integer_master = True
            columns, kinds = master.integer_columns()
            master.h.changeColsIntegrality(len(columns), columns, kinds)
            master.h.setOptionValue("solver", "choose")
            master.h.setOptionValue("mip_rel_gap", mip_rel_gap / 2)
            try:
                integer_best, mip_bound, more, converged = _benders(
                    master,
                    evaluate,
                    learn,
                    deadline,
                    mip_rel_gap,
                    log,
                    incumbent=start_point,
                    integer_cols=columns,
                )
            except FloorsUnmet as error:
                raise unmet(error, iterations) from None
            iterations += more
            if integer_best is not None:
                best, bound = integer_best, min(bound, mip_bound)
    converged = converged and finished
    if best is None:
        raise NotDecomposable("no master point was evaluated before the time limit")
    if not math.isfinite(best.value):
        raise NotDecomposable("no first stage found at which a recourse meets every participation floor")
    log.append(
        f"{iterations_lp} LP rounds, {iterations} in all, {len(master.weightings)} weightings, "
        f"{master.refactored} master bases refactorised, {master.cold} solves repeated from scratch"
        + (f", {master.floor_cuts} floor cuts" if master.floor_cuts else "")
        + (f", {len(recourse.restarted)} recourse LPs too" if recourse.restarted else "")
    )
    first_stage = _first_stage(m, direct, st, best.x)
    whole = _whole(best, st, master, evaluate, recourse, log)
    plan_value, settled = best.value, best.settled
    y: np.ndarray | None = None
    if whole is not None:
        best = whole
        plan_value, settled, y = best.value, best.settled, best.y
    # Half the time kept for a completion, the rest left to it should one be needed.
    reserve_deadline = started + time_limit_s * (1.0 - completion_share / 2)
    if whole is not None and st.relaxed_recourse:
        # The loop's recourse relaxed the binaries: solve them whole, block by block.
        y = recourse.exact(best.x, best.y, RECOURSE_MIP_GAP, reserve_deadline)
        if y is None:
            log.append("the buyback binaries were not solved in time: completed instead")
        else:
            phi = recourse.block_values(y)
            plan_value, _, settled = value_side.evaluate(best.x, recourse.values(best.x, phi))
            log.append(
                f"buyback binaries solved whole by block ({recourse.fractional_blocks} of "
                f"{recourse.n_blocks} fractional, {recourse.held_blocks} of {recourse.held_tried} "
                f"held at their hours, {recourse.mip_blocks} as MIPs, {recourse.block_lps} LPs of "
                f"branch and bound, {recourse.unproven_blocks} not proven in time): {plan_value:.6f}"
            )
    plan: np.ndarray | None = None
    if y is not None:
        plan = np.zeros(len(st.col_lower))
        plan[st.master_cols] = settled
        plan[st.recourse_cols] = y
        derived = _derived_values(st, plan, options, started + time_limit_s)
        if derived is None:
            log.append("the plan's buyback columns could not be given values: completed instead")
            plan = None
        else:
            plan[st.derived_cols] = derived
        if plan is not None and not _set_aside(st, plan, options):
            log.append("the best plan breaks a left-out row (participation): completed instead")
            plan = None
    wide = plan is not None and not _within(plan_value, bound, mip_rel_gap)
    if wide and integer and st.relaxed_recourse and not integer_master:
        bound = _integer_bound(
            master,
            plan_value,
            bound,
            min(reserve_deadline, time.perf_counter() + BOUND_MIP_TIME_SHARE * time_limit_s),
            log,
        )
    return Decomposition(
        first_stage=first_stage,
        upper_bound=float(bound),
        iterations=iterations,
        cuts=master.cuts,
        relaxed_recourse=st.relaxed_recourse,
        converged=converged,
        seconds=time.perf_counter() - started,
        handoff_s=handoff_s,
        given_values=given_values,
        log=log,
        plan_value=plan_value if plan is not None else None,
        direct=direct if plan is not None else None,
        columns=plan,
    )


def _floor_values(st: _Structure, first: np.ndarray, y: np.ndarray) -> np.ndarray:
    return st.floor_master @ first + st.floor_recourse @ y + st.floor_constant


def _floor_cuts(
    st: _Structure, recourse: _Recourse, first: np.ndarray, y: np.ndarray
) -> tuple[list[tuple[np.ndarray, float]], bool]:
    """At first stage `first`, with y the recourse best for the objective: the cuts of the floors
    y breaks (`_Recourse.floor_cut`), and whether some recourse meets each of them (else the
    first stage is no plan's). The point keeps y and its value: where a floor binds in the
    recourse (the cloud's best serving or buyback is not the party's), the plan breaks it and
    the caller's completion finds the best recourse that meets it, as for any set-aside row;
    tried and not kept (session 29): plans moved between recourses to meet the floors, and
    Lagrangian cuts joining values and floors, which with CVaR did not reach the optimum on
    random small cases."""
    cuts: list[tuple[np.ndarray, float]] = []
    now = _floor_values(st, first, y)
    for f in np.flatnonzero(now < st.floor_lower):
        row, rhs, y_f = recourse.floor_cut(first, int(f))
        cuts.append((row, rhs))
        if _floor_values(st, first, y_f)[f] < st.floor_lower[f]:
            return cuts, False
    return cuts, True


def _set_aside(st: _Structure, columns: np.ndarray, options: dict) -> bool:
    """Give the set-aside columns (party values, their CVaR level and shortfalls) values that
    keep every left-out row with the rest of the plan fixed; False where none do (the plan
    breaks a participation requirement)."""
    if st.aside.shape[0] == 0:
        return True
    columns[st.aside_cols] = 0.0
    activity = st.aside @ columns
    h = _highs(options)
    _pass(
        h,
        np.zeros(len(st.aside_cols)),
        st.col_lower[st.aside_cols],
        st.col_upper[st.aside_cols],
        st.aside[:, st.aside_cols].tocsr(),
        st.aside_lower - activity,
        st.aside_upper - activity,
    )
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return False
    columns[st.aside_cols] = h.getSolution().col_value
    return True


ROUNDED_ROW_TOLERANCE = 1e-6
"""How far rounding a plan's integers may move a master row past its bound, relative to the
size of the row's terms (at least absolute): the verifier's relative tolerance. Relative to the
row's activity it would be nothing on a row of differences (site GPUs - 72 x racks = 0)."""

INTEGER_MOVE_TOLERANCE = 1e-6
"""How far a plan's integer column may be from whole and still be rounded and written: a MIP
master's point misses by HiGHS's integrality tolerance; a point further off (an LP phase that
ran out of time) is not an integer plan."""


def _whole(
    best: _Point, st: _Structure, master: _Master, evaluate, recourse: _Recourse, log: list[str]
) -> _Point | None:
    """The best point with its integer columns whole, evaluated again if rounding moved them
    (the deadline lifted for that one evaluation, which is what the plan needs); None where
    they are further than `INTEGER_MOVE_TOLERANCE` from whole or, rounded, break a master row
    by more than the move itself explains, or by more than `ROUNDED_ROW_TOLERANCE` of the
    row's terms (then no plan is written: the caller completes it or falls back). A row may
    move by what its coefficients times the move give, up to that tolerance: a column HiGHS
    held fixed at a whole value but kept basic comes back off by its solve's error (3.2e-9 on
    racks at (10,3,20,6,50)), and the continuous columns of its equality rows (the site's GPUs)
    with it; rounded alone, such a point broke `site_gpus_installed_def` by 1.8e-7 GPUs and its
    plan was thrown away."""
    is_int = st.integer[st.master_cols] > 0
    rounded = np.where(is_int, np.round(best.x), best.x)
    if np.array_equal(rounded, best.x):
        return best
    move = np.abs(rounded - best.x)
    moved = float(np.max(move))
    magnitude = abs(st.master)
    explained = magnitude @ move
    slack = np.minimum(explained, ROUNDED_ROW_TOLERANCE * np.maximum(1.0, magnitude @ np.abs(rounded)))
    if moved > INTEGER_MOVE_TOLERANCE or not master.feasible(rounded, slack=slack):
        log.append(f"the best plan is not whole (an integer off by {moved:.1e}): no plan written")
        return None
    recourse.deadline = INF
    point = evaluate(rounded)
    log.append(f"integer columns rounded by up to {moved:.1e}: {point.value:.6f}")
    return point


REPRESENTATIVES = 2
"""Scenarios the start's extensive form holds: the first of each of this many runs of
scenarios (in their order), every other scenario's value tied to its run's. Measured against
four (the scenario clusters' count, which it was), cloud's view, solve_model with the
decomposition, one machine, idle: at (10,3,20,6,50), MILP, 120 s, the start's LP took 2.7-3.3 s
against 5.7-7.4 s and started the loop at 18,631.0 against 18,773.4; the LP phase took 18 rounds
against 17, and the runs 18.4 and 21.6 s against 21.3-25.2 s (four runs), plans US$ 18,712.8 M
against 18,713.3 M (0.81% and 0.80% from the bound; bench/README.md, session 28). At
(20,4,32,8,100), MILP, 600 s (one run each): the start 42.9 s against 116.0 s (46,138.3
against 46,718.6), then 20 LP rounds against 15 (LP bound 47,787.9 against 47,828.9), and the
plan US$ 47,021.5 M against 46,934.0 M, 1.58% against 1.84% below the bound the master's MIP then
proved (47,766.4 against 47,795.7; the gap relative to the plan, as `SolveOutcome.mip_gap`
reports it). One representative (session 16) left the large LP 3.82% from its bound against
0.63%."""

REPRESENTATIVES_TIME_SHARE = 1 / 2
"""Share of the loop's time left that the representatives' start may take. Its interior point
takes about as long whatever the scenario count; with four representatives (before
`REPRESENTATIVES`), at (20,4,32,8,100) 71.5 s on
the machine of the bench's earlier figures, about 120 s on the 2026-12-05 machine, 1.5 to 1.6
times slower. A start cut short left the loop at x = 0, whose rounds barely move the bound: at
(20,4,32,8,100) with a 400 s limit, a third of the loop (102 s) cut it and the run ended without
a plan; a quarter did so at 600 s (session 11). Cut short, its last iterate is now the start where
it keeps the master's rows (`REPRESENTATIVES_CUT_SHORT`): at (20,4,32,8,100) under a 220 s
limit, cut at 102 s, it started the loop at 46,720.8 against 46,736.1 from the optimum. Where it
breaks one, its racks, blocks and quotas are kept and the master LP completes the rest
(`_decompose`)."""


REPRESENTATIVES_IPM_TOLERANCE = 1e-3
"""IPX's optimality tolerance for the representatives' LP, solved without crossover: the start
need only be near the optimum, the loop takes it from there. At (10,3,20,6,50) (cloud, MILP)
it took 64 interior-point iterations instead of 88 and gave a start 0.03% lower (18,773.1
against 18,777.9), after which the LP phase took the same 15 rounds. HiGHS then calls the point
"unknown", not "optimal" (its own check asks for 1e-7), as it would a stalled interior point:
the log says "HiGHS says unknown: its last iterate" either way, and the iterate is checked
(`REPRESENTATIVES_CUT_SHORT`) and completed where it breaks a master row."""

REPRESENTATIVES_CROSSOVER = "off"
"""HiGHS's `run_crossover` for the representatives' LP: its interior point is the start; the
loop takes only its first stage, and a point off the master rows is completed (`_decompose`)."""

REPRESENTATIVES_CUT_SHORT = (
    highspy.HighsModelStatus.kTimeLimit,
    highspy.HighsModelStatus.kIterationLimit,
    highspy.HighsModelStatus.kUnknown,
)
"""HiGHS statuses of a representatives' LP stopped before its optimum (out of time, or at
`REPRESENTATIVES_IPM_TOLERANCE`), whose last iterate may still be a start
(`REPRESENTATIVES_TIME_SHARE`)."""


def _representatives(n_scenarios: int) -> tuple[np.ndarray, np.ndarray]:
    """The start's representative scenarios (the first of each of `REPRESENTATIVES` runs of
    scenarios, in their order) and each scenario's representative."""
    run = (np.arange(n_scenarios) * REPRESENTATIVES) // max(1, n_scenarios)
    reps = np.unique(run, return_index=True)[1]
    return reps, reps[run]


def _representatives_plan(
    st: _Structure, master: _Master, options: dict, deadline: float
) -> tuple[np.ndarray | None, str]:
    """A first stage from the extensive form over `REPRESENTATIVES` scenarios, every other
    scenario's value held to its representative's: a start near the optimum for the
    Benders loop, whose first rounds from x = 0 barely move its bound; with HiGHS's status in
    words. None if HiGHS gave no point."""
    reps, rep_of = _representatives(st.n_scenarios)
    n_master = len(st.master_cols)
    cols = np.flatnonzero(np.isin(st.recourse_scenario, reps))
    sub_rows = np.flatnonzero(np.isin(st.sub_row_scenario, reps))
    value = st.value_A[reps]
    g = scipy.sparse.csr_array(
        (-st.sub_cost[cols], (np.searchsorted(reps, st.recourse_scenario[cols]), np.arange(len(cols)))),
        shape=(len(reps), len(cols)),
    )
    others = np.flatnonzero(rep_of != np.arange(st.n_scenarios))
    V = st.value_cols_in_master
    tie = scipy.sparse.csr_array(
        (
            np.concatenate([np.ones(len(others)), -np.ones(len(others))]),
            (np.tile(np.arange(len(others)), 2), np.concatenate([V[others], V[rep_of[others]]])),
        ),
        shape=(len(others), n_master),
    )
    A = scipy.sparse.bmat(
        [
            [st.master, None],
            [value, g],
            [st.sub_T[sub_rows], st.sub_W[sub_rows][:, cols]],
            [tie, None],
        ],
        format="csr",
    )
    # Presolve off: stopped early, HiGHS hands back the presolved LP's iterate unmapped (a column
    # of the original is not where it was), marked invalid; without presolve it is the LP's own.
    h = _highs(
        {
            **options,
            "solver": "ipm",
            "presolve": "off",
            "run_crossover": REPRESENTATIVES_CROSSOVER,
            "ipm_optimality_tolerance": REPRESENTATIVES_IPM_TOLERANCE,
        }
    )
    h.setOptionValue("time_limit", max(0.0, (deadline - time.perf_counter()) * REPRESENTATIVES_TIME_SHARE))
    _pass(
        h,
        np.concatenate([st.cost, np.zeros(len(cols))]),
        np.concatenate([st.col_lower[st.master_cols], st.col_lower[st.recourse_cols[cols]]]),
        np.concatenate([st.col_upper[st.master_cols], st.col_upper[st.recourse_cols[cols]]]),
        A,
        np.concatenate(
            [st.master_lower, np.full(len(reps), -INF), st.sub_lower[sub_rows], np.full(len(others), -INF)]
        ),
        np.concatenate([st.master_upper, st.value_rhs[reps], st.sub_upper[sub_rows], np.zeros(len(others))]),
    )
    h.run()
    status = h.getModelStatus()
    words = h.modelStatusToString(status).lower()
    solution = h.getSolution()
    x = np.asarray(solution.col_value)
    if status == highspy.HighsModelStatus.kOptimal:
        return x[:n_master], words
    first = x[:n_master]
    lower, upper = st.col_lower[st.master_cols], st.col_upper[st.master_cols]
    if (
        status in REPRESENTATIVES_CUT_SHORT
        and h.getInfo().ipm_iteration_count > 0  # stopped before its first: zeros, not an iterate
        and solution.value_valid
        and len(x) == A.shape[1]
        and np.all(np.isfinite(first))
        and np.all(
            (first >= lower - MASTER_FEASIBILITY_TOLERANCE) & (first <= upper + MASTER_FEASIBILITY_TOLERANCE)
        )
    ):
        # Its last iterate: a start where it keeps the master's rows too, or can be completed
        # so (the caller's part).
        return np.clip(first, lower, upper), words
    return None, words


def _decision_columns(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, st: _Structure) -> np.ndarray:
    """The master positions of the racks, blocks and quotas (`FIRST_STAGE_FAMILIES`): the
    decisions a start names, the master's other columns following from them."""
    out = [np.zeros(0, np.int64)]
    for name in FIRST_STAGE_FAMILIES:
        start, variables = _family_columns(m, direct, name)
        if start >= 0:
            out.append(st.master_of[start : start + len(variables)])
    positions = np.concatenate(out)
    return positions[positions >= 0]


def _given_columns(
    direct: highs_direct.DirectModel, st: _Structure, start: list[tuple[pyo.Var, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """A start's master columns (its racks, blocks and quotas; any recourse values are left to
    the loop) as positions among the master's and values in HiGHS's units, inside its bounds."""
    columns = direct.numbers([var for var, _ in start])
    values = direct.to_highs(columns, np.array([value for _, value in start], dtype=np.float64))
    found = st.master_of[columns] >= 0
    columns = columns[found]
    return st.master_of[columns], np.clip(values[found], st.col_lower[columns], st.col_upper[columns])


def _given_plan(
    master: _Master, columns: np.ndarray, values: np.ndarray, deadline: float
) -> tuple[np.ndarray | None, str]:
    """The master point with the given columns fixed and the others (the sites' GPUs, the
    scenario values, the CVaR columns) completed by the master LP over the cuts so far, in the
    representatives' share of the time, and HiGHS's status in words; no point where none keeps
    this model's master rows (a neighbouring sweep point's racks over this point's power, say:
    "infeasible") or time ran out. The master's bounds are restored either way."""
    h, st = master.h, master.st
    index = columns.astype(np.int32)
    lower = st.col_lower[st.master_cols][columns]
    upper = st.col_upper[st.master_cols][columns]
    h.changeColsBounds(len(index), index, values, values)
    try:
        share = max(0.0, deadline - time.perf_counter()) * REPRESENTATIVES_TIME_SHARE
        h.setOptionValue("time_limit", _time_limit(h, share, mip=False))
        _run_master(h, "lp")
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            return None, f"HiGHS says {h.modelStatusToString(status).lower()}"
        return np.asarray(h.getSolution().col_value)[: master.n_master].copy(), "optimal"
    finally:
        h.changeColsBounds(len(index), index, lower, upper)


def _benders(
    master: _Master,
    evaluate,
    learn,
    deadline: float,
    gap: float,
    log: list[str],
    *,
    stabilise: bool = False,
    incumbent: _Point | None = None,
    integer_cols: np.ndarray | None = None,
) -> tuple[_Point | None, float, int, bool]:
    """Re-solve the master and cut until its bound is within `gap` (relative) of the best point
    evaluated; returns that point, the bound, the rounds and whether the gap closed. LP: with
    in-out stabilisation, cuts first at a point between the master's and the best so far (any
    such point is a plan, so it may become the best), and the cuts split by scenario cluster
    near the bound or where the summed ones hold at an open gap (`_Master.refine`). MIP: the
    integer master's dual bound."""
    phase = "mip" if integer_cols is not None else "lp"
    best, bound, rounds = incumbent, INF, 0
    h = master.h
    while rounds < MAX_ITERATIONS:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            log.append(f"time limit reached in the {phase} phase")
            return best, bound, rounds, False
        if integer_cols is not None and best is not None:
            h.setSolution(len(integer_cols), integer_cols, np.round(best.x[integer_cols]))
        h.setOptionValue("time_limit", _time_limit(h, remaining, mip=phase == "mip"))
        run_started = time.perf_counter()
        master.solve(phase)
        master_s = time.perf_counter() - run_started
        rounds += 1
        info, status = h.getInfo(), h.getModelStatus()
        out_of_time = status == highspy.HighsModelStatus.kTimeLimit
        has_point = status == highspy.HighsModelStatus.kOptimal or (
            out_of_time and phase == "mip" and info.primal_solution_status == 2
        )
        if not has_point:
            if out_of_time:
                log.append(f"time limit reached in the {phase} phase's master")
                return best, bound, rounds, False
            if status == highspy.HighsModelStatus.kInfeasible and master.floor_cuts:
                # A warm solve's word alone is no proof: solved again from scratch first (and,
                # where that finds a point, the round is run again from it).
                h.clearSolver()
                master.solve(phase)
                status = h.getModelStatus()
                if status == highspy.HighsModelStatus.kOptimal:
                    continue
                if status == highspy.HighsModelStatus.kInfeasible:
                    unmet = FloorsUnmet(f"the master with {master.floor_cuts} floor cuts is infeasible")
                    unmet.iterations = rounds
                    raise unmet
            raise NotDecomposable(f"the master has no solution ({h.modelStatusToString(status)})")
        x = np.asarray(h.getSolution().col_value)
        master.last_x = x[: master.n_master].copy()
        bound = min(bound, info.mip_dual_bound if phase == "mip" else info.objective_function_value)
        purged = master.purge() if phase == "lp" else 0
        try:
            added = 0
            evaluated: list[_Point] = []  # this round's points, cut per cluster at a split
            # (Not about a point no recourse meets the floors at: a plan of none.)
            if stabilise and best is not None and math.isfinite(best.value):
                z = evaluate(IN_OUT_WEIGHT * x[: master.n_master] + (1 - IN_OUT_WEIGHT) * best.x)
                evaluated.append(z)
                best = z if z.value > best.value else best
                added = learn(z, x)
            if added == 0 and not _closed(best, bound, gap):
                point = evaluate(x)
                evaluated.append(point)
                best = point if best is None or point.value > best.value else best
                added = learn(point, x)
                if added == 0 and phase == "lp" and not _closed(best, bound, gap):
                    # The summed cuts held at x; per cluster, some may not.
                    added = master.refine(True, [best, *evaluated])
                    if added:
                        log.append(
                            f"{phase}: no summed cut broken, cuts per scenario cluster from here "
                            f"({added} taken at this round's points and the best plan)"
                        )
        except RecourseOutOfTime:
            log.append(f"time limit reached in the {phase} phase's recourse")
            return best, bound, rounds, False
        assert best is not None
        log.append(
            f"{phase} {rounds}: bound {bound:.6f}, best {best.value:.6f} in {master_s:.2f} s "
            f"({info.simplex_iteration_count} simplex iterations), {added} cuts added, {purged} purged"
        )
        if _closed(best, bound, gap):
            return best, bound, rounds, True
        refined = master.refine(phase == "lp" and _closed(best, bound, FINE_CUTS_GAP), [best, *evaluated])
        if refined:
            # The round's summed cuts are gone, replaced by these.
            log.append(
                f"{phase}: within {FINE_CUTS_GAP:g}, cuts per scenario cluster from here "
                f"({refined} taken at this round's points and the best plan)"
            )
        if added == 0:
            log.append(f"{phase}: no cut is broken at the master's point; the gap stays open")
            return best, bound, rounds, False
        if out_of_time:
            log.append(f"time limit reached in the {phase} phase's master")
            return best, bound, rounds, False
    return best, bound, rounds, False


BOUND_MIP_TIME_SHARE = 0.1
"""Share of the time limit the master's MIP gets when it is solved for its bound only
(`_integer_bound`), never past the time kept for a completion. Measured at (10,3,20,6,50),
cloud, 120 s (one run each, another beside): 6 s gave a bound 1.02% above the plan, 12 s
0.87%, 18 s 0.85%."""
MIP_BOUND_STATUSES = (
    highspy.HighsModelStatus.kOptimal,
    highspy.HighsModelStatus.kTimeLimit,
    highspy.HighsModelStatus.kIterationLimit,
    highspy.HighsModelStatus.kSolutionLimit,
    highspy.HighsModelStatus.kInterrupt,
)
"""Statuses whose MIP dual bound is HiGHS's proven one (a failed run reports 0)."""


def _integer_bound(
    master: _Master, plan_value: float, bound: float, deadline: float, log: list[str]
) -> float:
    """The master solved as a MIP (racks and blocks whole) over the cuts it has, for its dual
    bound: with the buyback binaries relaxed in the loop, the plan is rounded from the LP
    master's and its binaries solved by block, and its gap to the LP bound is what the racks'
    and the binaries' integrality cost together. The MIP's bound is still an upper bound of the
    true problem (the cuts bound the relaxed recourse, which bounds the true one) and takes the
    racks' share out of the gap: at (10,3,20,6,50), cloud's view, the LP bound is 1.21% above
    the plan and the MIP's, when its time was up, 0.86% (bench, 2026-12-05). The tighter bound
    is returned; one that HiGHS did not prove, or that the plan (a feasible point) would beat,
    is refused. No MIP start: a start of the integer columns only has HiGHS solve an LP for the
    rest first, and a bound needs none. The master is an LP again afterwards."""
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        log.append("no time left for the master MIP's bound: the LP bound stands")
        return bound
    h = master.h
    columns, kinds = master.integer_columns()
    if len(columns) == 0:
        return bound
    h.changeColsIntegrality(len(columns), columns, kinds)
    h.setOptionValue("solver", "choose")
    try:
        h.setOptionValue("time_limit", _time_limit(h, remaining, mip=True))
        started = time.perf_counter()
        run = h.run()
        status, info = h.getModelStatus(), h.getInfo()
        mip_bound = float(info.mip_dual_bound)
        proven = (
            run != highspy.HighsStatus.kError
            and info.valid
            and status in MIP_BOUND_STATUSES
            and math.isfinite(mip_bound)
        )
        log.append(
            f"master MIP for its bound: {mip_bound:.6f} ({h.modelStatusToString(status)}, "
            f"{time.perf_counter() - started:.1f} s)"
        )
    finally:
        h.changeColsIntegrality(len(columns), columns, np.zeros(len(columns), np.uint8))
        h.setOptionValue("solver", "simplex")
    if not proven:
        log.append("the master MIP proved no bound: the LP bound stands")
        return bound
    if mip_bound < plan_value - MASTER_FEASIBILITY_TOLERANCE * max(1.0, abs(plan_value)):
        log.append("the master MIP's bound is below the plan's value: refused, the LP bound stands")
        return bound
    return min(bound, max(mip_bound, plan_value))


def _time_limit(h: highspy.Highs, seconds: float, *, mip: bool) -> float:
    """HiGHS's `time_limit` for a run of `seconds` more on instance h: an LP's simplex reads the
    instance's run clock, which runs on across run() calls, but a MIP times itself from its own
    start (HiGHS 1.15 `HighsMipSolver::run`). Set from the run clock, the bound's MIP at
    (20,4,32,8,100) had the master's earlier minutes on top of its budget."""
    return seconds if mip else h.getRunTime() + seconds


def _closed(best: _Point | None, bound: float, gap: float) -> bool:
    return best is not None and _within(best.value, bound, gap)


def _within(value: float, bound: float, gap: float) -> bool:
    """Whether `bound` is within `gap` (relative to the value, at least absolute) of `value`, or
    of `ROUNDOFF_GAP` where `gap` is smaller."""
    return math.isfinite(value) and bound - value <= max(gap, ROUNDOFF_GAP) * max(1.0, abs(value))


@dataclass
class _Series:
    """Master columns of each pool's `racks_built` and each site's `blocks_ordered`, in quarter
    order, for rounding their running sums (`planner.solve.rounding.round_cumulative`), and
    every master column's quarter (-1 where not one of them) for the repair."""

    members: list[tuple[str, np.ndarray]]
    quarter: np.ndarray
    blocks: np.ndarray
    """The master columns of `blocks_ordered`, every site's."""


def _integer_series(m: pyo.ConcreteModel, direct: highs_direct.DirectModel, st: _Structure) -> _Series:
    master_of = st.master_of
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
    blocks = [cols for how, cols in out if how == "ceil"]
    return _Series(out, quarter, np.concatenate(blocks).astype(np.int32) if blocks else np.zeros(0, np.int32))


ROUNDED_START_ROUNDS = 30
"""LP rounds at most with the rounded racks and blocks fixed (cuts added at that point)."""


def _rounded_master(
    master: _Master,
    evaluate,
    learn,
    st: _Structure,
    series: _Series,
    x_lp: np.ndarray,
    deadline: float,
    gap: float,
    log: list[str],
    *,
    blocks_first: bool,
) -> tuple[_Point, int] | None:
    """An integer first stage near the LP's best plan, and its exact value: power blocks'
    running sums rounded up (never less power than the LP) or, with `blocks_first`, made whole
    and the racks fitted to them first (`_blocks_first`); racks' rounded down (never more
    racks), then lowered where a row of integer columns only (power, GPU cap, build and block
    rates) is broken; fixed, and the LP master re-solved with cuts until its bound is within
    `gap` of the best point evaluated (the quotas are still free). None when no such point is
    evaluated in time, or the blocks could not be made whole first. The master's bounds are
    restored. Also returns the master solves it took (not counted where it gives no point)."""
    rounds = 0
    if blocks_first:
        fitted = _blocks_first(master, evaluate, learn, st, series, x_lp, deadline, gap, log)
        if fitted is None:
            return None
        x_lp, rounds = fitted
    value = x_lp.copy()
    for how, cols in series.members:
        value[cols] = round_cumulative(x_lp[cols], how)  # type: ignore[arg-type]
    _repair(st, value, series.quarter)
    fixed = np.flatnonzero(series.quarter >= 0).astype(np.int32)
    lower, upper = st.col_lower[st.master_cols][fixed], st.col_upper[st.master_cols][fixed]
    h = master.h
    h.changeColsBounds(len(fixed), fixed, value[fixed], value[fixed])
    best: _Point | None = None
    fixed_rounds = 0
    try:
        while fixed_rounds < ROUNDED_START_ROUNDS and time.perf_counter() < deadline:
            h.setOptionValue("time_limit", _time_limit(h, deadline - time.perf_counter(), mip=False))
            master.solve("lp")
            fixed_rounds += 1
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                log.append(f"rounded start: master {h.modelStatusToString(h.getModelStatus())}")
                break
            x = np.asarray(h.getSolution().col_value)
            bound = h.getInfo().objective_function_value
            try:
                point = evaluate(x)
            except RecourseOutOfTime:
                log.append("rounded start: the time limit came first")
                break
            best = point if best is None or point.value > best.value else best
            if _closed(best, bound, gap) or learn(point, x) == 0:
                break
        if best is not None:
            log.append(
                f"rounded start: {best.value:.6f} after {fixed_rounds} rounds with racks and blocks fixed"
            )
            return best, rounds + fixed_rounds
        return None
    finally:
        h.changeColsBounds(len(fixed), fixed, lower, upper)


BLOCK_ROUNDS = 2
"""LP rounds at most with the power blocks rounded and fixed, before the racks are rounded
(at (10,3,20,6,50) 1, 2 and 3 gave plans within 0.02% of each other)."""
BLOCK_ROUNDINGS: tuple[Rounding, ...] = ("ceil", "nearest")
"""How each site's running sum of blocks may be rounded, every site the same way first, in the
order tried (`_choose_roundings`)."""
BLOCK_SWITCH_GAIN = 1e-7
"""Least rise of the master's bound for which one site's blocks switch rounding: relative to
the bound, absolute where the bound is under 1."""
BLOCK_SWITCH_RESERVE = 2.0
"""A site is tried the other way only while this many of the slowest master solves so far
are left before the deadline: the blocks chosen still need their re-cut and the racks'
rounds (at (20,4,32,8,100) a master solve with the blocks fixed takes 4-15 s)."""


def _choose_roundings(
    n_sites: int, same: list[bool], bound_of, deadline: float
) -> tuple[float, tuple[Rounding, ...]] | None:
    """Each site's way of rounding its blocks, and the master's bound with them fixed:
    `bound_of(ways)` (None where the master has no optimum). Every site the same way first, the
    way the master values more kept; then, site by site, the other way, kept where it raises
    the bound. Sites whose two roundings agree (`same`) are not tried. Neither way is better
    everywhere: every site to the nearest block was worth 0.1-0.2% more than every site up at
    (10,3,20,6,50), and 7% less at (3,2,8,4,5). Chosen per site, the plans were 0.1-0.25% better
    at (10,3,20,6,10) and (10,3,20,6,50) (bench/README.md, session 10). None where no way
    gives an optimum in time."""
    chosen: tuple[float, tuple[Rounding, ...]] | None = None
    slowest = 0.0

    def timed(ways: tuple[Rounding, ...]) -> float | None:
        nonlocal slowest
        started = time.perf_counter()
        bound = bound_of(ways)
        slowest = max(slowest, time.perf_counter() - started)
        return bound

    for way in BLOCK_ROUNDINGS:
        if time.perf_counter() >= deadline:
            break
        ways = (way,) * n_sites
        bound = timed(ways)
        if bound is not None and (chosen is None or bound > chosen[0]):
            chosen = (bound, ways)
    if chosen is None:
        return None
    for site in range(n_sites):
        if same[site]:
            continue
        for way in BLOCK_ROUNDINGS:
            if way == chosen[1][site] or time.perf_counter() + BLOCK_SWITCH_RESERVE * slowest >= deadline:
                continue
            ways = (*chosen[1][:site], way, *chosen[1][site + 1 :])
            bound = timed(ways)
            if bound is not None and bound > chosen[0] + BLOCK_SWITCH_GAIN * max(1.0, abs(chosen[0])):
                chosen = (bound, ways)
    return chosen


def _blocks_first(
    master: _Master,
    evaluate,
    learn,
    st: _Structure,
    series: _Series,
    x_lp: np.ndarray,
    deadline: float,
    gap: float,
    log: list[str],
) -> tuple[np.ndarray, int] | None:
    """The LP master's point with every site's power blocks whole, for the racks to be rounded
    from: each site's running sum of blocks rounded up or to the nearest block, whichever the
    master values more (`_choose_roundings`, each way fixed and the master re-solved), then
    fixed and the master re-solved with cuts for up to `BLOCK_ROUNDS` rounds, so the racks are
    fitted to the blocks the plan will have. Rounding blocks and racks together kept the LP's
    fraction of a block as a whole one, or its racks without their power. Each rounding is
    first lowered where a row of blocks only (power cap, block rate) breaks (`_repair`). None
    where no rounding gives a master point in time. The master's bounds are restored. Also
    returns the master solves it took (not counted where it gives no point)."""
    cols = series.blocks
    if len(cols) == 0:
        return x_lp, 0
    h = master.h
    # Only the blocks count as integer for the repair: a row with fractional racks in it
    # (power_fits) is left to the master.
    block_quarter = np.full_like(series.quarter, -1)
    block_quarter[cols] = series.quarter[cols]
    sites = [members for kind, members in series.members if kind == "ceil"]
    solves = 0
    lower, upper = st.col_lower[st.master_cols][cols], st.col_upper[st.master_cols][cols]
    optimal = highspy.HighsModelStatus.kOptimal

    def solve() -> bool:
        nonlocal solves
        h.setOptionValue("time_limit", _time_limit(h, deadline - time.perf_counter(), mip=False))
        master.solve("lp")
        solves += 1
        return h.getModelStatus() == optimal

    def rounded(ways: tuple[Rounding, ...]) -> np.ndarray:
        value = x_lp.copy()
        for way, members in zip(ways, sites, strict=True):
            value[members] = round_cumulative(x_lp[members], way)
        _repair(st, value, block_quarter)
        return value

    bounds: dict[bytes, float | None] = {}
    """The master's bound at each set of whole blocks tried (two ways of rounding may agree)."""

    def bound_of(ways: tuple[Rounding, ...]) -> float | None:
        value = rounded(ways)
        key = value[cols].tobytes()
        if key in bounds:
            return bounds[key]
        h.changeColsBounds(len(cols), cols, value[cols], value[cols])
        bounds[key] = h.getInfo().objective_function_value if solve() else None
        if bounds[key] is None and len(set(ways)) == 1:
            log.append(f"power blocks rounded ({ways[0]}): {h.modelStatusToString(h.getModelStatus())}")
        return bounds[key]

    same = [
        len({tuple(round_cumulative(x_lp[members], way)) for way in BLOCK_ROUNDINGS}) == 1
        for members in sites
    ]
    try:
        chosen = _choose_roundings(len(sites), same, bound_of, deadline)
        if chosen is None:
            return None
        ways = chosen[1]
        value = rounded(ways)
        h.changeColsBounds(len(cols), cols, value[cols], value[cols])
        x: np.ndarray | None = None
        rounds = 0
        while rounds < BLOCK_ROUNDS and time.perf_counter() < deadline and solve():
            rounds += 1
            x = np.asarray(h.getSolution().col_value)
            bound = h.getInfo().objective_function_value
            try:
                point = evaluate(x)
            except RecourseOutOfTime:
                break
            if _within(point.value, bound, gap) or learn(point, x) == 0:
                break
        if x is None:
            return None
        # Counted over the sites whose two roundings differ.
        mixed = [way for way, agree in zip(ways, same, strict=True) if not agree] or [ways[0]]
        counts = {way: mixed.count(way) for way in BLOCK_ROUNDINGS if way in mixed}
        how = (
            ways[0]
            if len(counts) == 1
            else ", ".join(f"{way} at {n} site{'s' if n > 1 else ''}" for way, n in counts.items())
        )
        log.append(f"power blocks rounded ({how}) and fixed: master {bound:.6f} after {rounds} rounds")
        out = x[: len(x_lp)].copy()
        out[cols] = value[cols]
        return out, solves
    finally:
        h.changeColsBounds(len(cols), cols, lower, upper)


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
    """Re-solve the master from its last basis. Where dual simplex stalls on the cuts' numerics
    (status Unknown: seen at (10,3,20,6,10) after 19 rounds, dual infeasibility 0.05, and twice
    a run at (10,3,20,6,50) once the racks are fixed, a few primal infeasibilities of 1e-5
    left), go on from the same basis factorised afresh, then by primal simplex from it, and
    only then by interior point with crossover, which gives a fresh basis to go on from. At
    (10,3,20,6,50) the stalled bases took 9-155 dual simplex iterations refactorised (0.03-0.13
    s) against 0.24-0.8 s by interior point, which presolves and solves the LP anew."""
    master.run()
    if phase != "lp":
        return
    for recover in MASTER_RECOVERIES:
        if master.getModelStatus() != highspy.HighsModelStatus.kUnknown:
            return
        recover(master)


def _refactorised(master: highspy.Highs) -> None:
    """Run again from the last basis, its factors rebuilt from scratch."""
    basis = master.getBasis()
    master.clearSolver()
    master.setBasis(basis)
    master.run()


def _by_primal_simplex(master: highspy.Highs) -> None:
    """Run again by primal simplex from the last basis (a stall leaves it nearly primal
    feasible)."""
    asked = master.getOptionValue("simplex_strategy")  # (status, value) in highspy 1.15
    before = asked[1] if isinstance(asked, tuple) else asked
    master.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
    try:
        master.run()
    finally:
        master.setOptionValue("simplex_strategy", before)


def _by_interior_point(master: highspy.Highs) -> None:
    """Solve by interior point with crossover: a new basis, whatever the last one was."""
    master.setOptionValue("solver", "ipm")
    try:
        master.run()
    finally:
        master.setOptionValue("solver", "simplex")


PRIMAL_SIMPLEX = 4
"""HiGHS's `simplex_strategy` for primal simplex."""

MASTER_RECOVERIES = (_refactorised, _by_primal_simplex, _by_interior_point)
"""What `_run_master` tries in turn after a stalled master solve, cheapest first."""


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
