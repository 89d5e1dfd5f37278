"""The fast path from a Pyomo model to HiGHS: Pyomo's standard-form compiler, arrays, one call.

`LinearStandardFormCompiler` turns the model into a sparse CSC matrix with the column list it
used; column bounds, integrality and row bounds become numpy arrays; `Highs.passModel` takes
them in one bulk call. The solution comes back as one array and is written into the Pyomo
variables by the compiler's column order, so everything downstream reads the Pyomo model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse  # noqa: F401  (imported here so the compiler's first use is not timed as hand-off)
from pyomo.common.gc_manager import PauseGC
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import FileDeterminism

INF = highspy.kHighsInf


@dataclass
class DirectModel:
    """A Pyomo model compiled and passed to HiGHS, with what is needed to map results back."""

    highs: highspy.Highs
    columns: list
    rows: int
    nonzeros: int
    integer_columns: int
    objective_offset: float
    handoff_s: float


def _column_arrays(columns: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounds and integrality of every column, read component by component."""
    n = len(columns)
    lower = np.empty(n)
    upper = np.empty(n)
    integer = np.zeros(n, dtype=np.int32)
    for j, var in enumerate(columns):
        lb, ub = var.bounds
        lower[j] = -INF if lb is None else lb
        upper[j] = INF if ub is None else ub
        if var.is_integer():
            integer[j] = 1
    return lower, upper, integer


def pass_to_highs(m: pyo.ConcreteModel, highs: highspy.Highs | None = None) -> DirectModel:
    """Compile the model's single objective and constraints and pass them to HiGHS in bulk."""
    with PauseGC():
        return _pass_to_highs(m, highs)


def _pass_to_highs(m: pyo.ConcreteModel, highs: highspy.Highs | None) -> DirectModel:
    start = time.perf_counter()
    # Declaration order is already deterministic (index sets are built from ordered lists), so
    # the compiler's extra ordering checks (about a quarter of its time) are skipped.
    info = LinearStandardFormCompiler().write(
        m, mixed_form=True, set_sense=None, file_determinism=FileDeterminism.NONE
    )
    (objective,) = info.objectives
    sense = highspy.ObjSense.kMaximize if objective.sense == pyo.maximize else highspy.ObjSense.kMinimize
    A = info.A.tocsc()
    num_row, num_col = A.shape
    cost = np.asarray(info.c.toarray()[0], dtype=np.float64) if num_col else np.zeros(0)
    lower, upper, integer = _column_arrays(info.columns)
    kinds = np.fromiter((row[1] for row in info.rows), dtype=np.int8, count=num_row)
    rhs = np.asarray(info.rhs, dtype=np.float64)
    # mixed form: +1 means body <= rhs, -1 means body >= rhs, 0 means body == rhs
    row_lower = np.where(kinds >= 0, np.where(kinds == 0, rhs, -INF), rhs)
    row_upper = np.where(kinds <= 0, np.where(kinds == 0, rhs, INF), rhs)
    offset = float(info.c_offset[0]) if len(info.c_offset) else 0.0
    highs = highs or highspy.Highs()
    highs.setOptionValue("output_flag", False)
    status = highs.passModel(
        num_col,
        num_row,
        A.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(sense),
        offset,
        cost,
        lower,
        upper,
        row_lower,
        row_upper,
        A.indptr.astype(np.int32),
        A.indices.astype(np.int32),
        A.data.astype(np.float64),
        integer,
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the compiled model")
    return DirectModel(
        highs=highs,
        columns=info.columns,
        rows=num_row,
        nonzeros=int(A.nnz),
        integer_columns=int(integer.sum()),
        objective_offset=offset,
        handoff_s=time.perf_counter() - start,
    )


def load_solution(direct: DirectModel) -> None:
    """Write HiGHS's column values into the Pyomo variables, by the compiler's column order."""
    values = np.asarray(direct.highs.getSolution().col_value)
    with PauseGC():
        for var, value in zip(direct.columns, values.tolist(), strict=True):
            var.set_value(value, skip_validation=True)


def warm_start_from_relaxation(direct: DirectModel, time_limit_s: float) -> float:
    """Solve the LP relaxation, round integer columns down (rounding down keeps every capacity
    and rate row feasible) and offer it to HiGHS as a start. Returns the LP's run time."""
    highs = direct.highs
    lp = highs.getLp()
    integrality = np.asarray(lp.integrality_)
    if not len(integrality) or not integrality.any():
        return 0.0
    highs.setOptionValue("solve_relaxation", True)
    highs.setOptionValue("time_limit", time_limit_s)
    highs.run()
    elapsed = highs.getRunTime()
    highs.setOptionValue("solve_relaxation", False)
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        highs.clearSolver()
        return elapsed
    values = np.asarray(highs.getSolution().col_value)
    is_int = integrality == 1
    index = np.flatnonzero(is_int).astype(np.int32)
    start = np.floor(values[is_int] + 1e-6)
    highs.clearSolver()
    highs.setSolution(len(index), index, start)
    return elapsed
