"""The fast path from a Pyomo model to HiGHS: arrays, one call.

Columns are the model's variables in declaration order. The large families are
`ArrayConstraint`s whose CSR arrays are taken as they are (renumbered to columns with numpy);
every other constraint and the objective go through Pyomo's `LinearStandardFormCompiler`.
Column bounds, integrality and row bounds become numpy arrays; `Highs.passModel` takes them in
one bulk call. The model's `scaling_factor` suffix (component level) scales columns and array
families on the way in. The solution comes back as one array, is scaled back and written into
the Pyomo variables, so everything downstream reads the Pyomo model in its own units.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse
from pyomo.common.gc_manager import PauseGC
from pyomo.core.base.indexed_component import IndexedComponent
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import FileDeterminism

from planner.model.expr import ArrayConstraint

INF = highspy.kHighsInf


@dataclass
class LpArrays:
    """The compiled LP as arrays, in HiGHS's units: cost x + offset over lower <= x <= upper
    and row_lower <= A x <= row_upper, integrality per column (1: integer)."""

    A: scipy.sparse.csr_array
    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    integrality: np.ndarray
    offset: float


@dataclass
class DirectModel:
    """A Pyomo model compiled for HiGHS (and passed to it, but by `compile_to_arrays`), with
    what is needed to map results back."""

    highs: highspy.Highs
    columns: list
    rows: int
    nonzeros: int
    integer_columns: int
    objective_offset: float
    handoff_s: float
    maximize: bool = True
    integer_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    """HiGHS columns that are integer, with their bounds as passed (rounding fixes and restores them)."""
    integer_lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    integer_upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    column_scale: np.ndarray | None = None
    """HiGHS's column j is the model's variable j times column_scale[j] (None: all 1)."""
    lookup: _Columns | None = None
    compiled_rows: list = field(default_factory=list)
    """The compiled (non-array) rows' Pyomo constraints, in row order (they come first)."""
    array_rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each array family's rows, by its name: (first, end)."""
    arrays: LpArrays | None = None
    """The LP as arrays, where it was compiled for them (`compile_to_arrays`) and not passed."""

    def rows_of(self, names: set[str]) -> np.ndarray:
        """Which rows belong to the named constraint components (a mask over HiGHS rows)."""
        mask = np.zeros(self.rows, bool)
        for n, con in enumerate(self.compiled_rows):
            if con.parent_component().local_name in names:
                mask[n] = True
        for name, (first, end) in self.array_rows.items():
            if name in names:
                mask[first:end] = True
        return mask

    def numbers(self, variables: Sequence) -> np.ndarray:
        """HiGHS column numbers of single Pyomo variables (each must be a column)."""
        assert self.lookup is not None
        return self.lookup.numbers(variables)

    def to_highs(self, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Model values of the given columns in HiGHS's (scaled) units, e.g. for a MIP start."""
        return values if self.column_scale is None else values * self.column_scale[index]


def _reads_its_dictionary(comp: IndexedComponent) -> bool:
    """Whether a Var component's columns are read straight from its dictionary, in insertion
    order (`_component_variables`, `component_keys`): any component but a reference. Pyomo's
    public `values()` calls a getter per variable, about 0.45 us each."""
    return not comp.is_reference() and len(comp._data) == len(comp)


def component_keys(comp: IndexedComponent) -> list:
    """A Var component's indices in the order of its columns (`_component_variables`): an
    insertion order may differ from the index set's."""
    return list(comp._data.keys()) if _reads_its_dictionary(comp) else list(comp.keys())


def _component_variables(comp: IndexedComponent) -> list:
    """A Var component's variables in column order (`_reads_its_dictionary`)."""
    return list(comp._data.values()) if _reads_its_dictionary(comp) else list(comp.values())


@dataclass
class _Columns:
    """HiGHS columns: the model's variables in declaration order, with where each Var
    component starts, so a whole component maps to a range of columns and a single variable
    to its component's start plus its position there."""

    variables: list
    start_of: dict[int, int]
    position_in: dict[int, dict[int, int]]
    extra: dict[int, int]

    @classmethod
    def of(cls, m: pyo.ConcreteModel) -> _Columns:
        variables: list = []
        start_of = {}
        for comp in m.component_objects(pyo.Var, active=True):
            start_of[id(comp)] = len(variables)
            variables.extend(_component_variables(comp))
        return cls(variables, start_of, {}, {})

    def numbers(self, variables: Sequence) -> np.ndarray:
        """Column numbers of single variables. Positions are indexed per component, only for
        the components these variables belong to (the small ones, in practice); a variable in
        no Var component of the model gets a new column."""
        out = np.empty(len(variables), dtype=np.int64)
        for n, var in enumerate(variables):
            comp = var.parent_component()
            start = self.start_of.get(id(comp))
            if start is None:
                j = self.extra.get(id(var))
                if j is None:
                    j = self.extra[id(var)] = len(self.variables)
                    self.variables.append(var)
                out[n] = j
                continue
            positions = self.position_in.get(id(comp))
            if positions is None:
                members = self.variables[start : start + len(comp)]
                positions = self.position_in[id(comp)] = {id(v): p for p, v in enumerate(members)}
            out[n] = start + positions[id(var)]
        return out

    def of_segments(self, segments: Sequence) -> np.ndarray:
        parts = []
        for segment in segments:
            if isinstance(segment, IndexedComponent):
                start = self.start_of[id(segment)]
                parts.append(np.arange(start, start + len(segment), dtype=np.int64))
            else:
                parts.append(self.numbers(segment))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


_PLAIN = frozenset({int, float, type(None)})


def _stored_bounds(values: list, missing: float) -> tuple[np.ndarray, np.ndarray]:
    """Stored bounds as floats (None -> `missing`), and a mask of those that are not plain
    numbers (Params, expressions) for the caller to resolve one by one."""
    if set(map(type, values)) <= _PLAIN:
        distinct = set(values)
        if len(distinct) == 1:
            (only,) = distinct
            return np.full(len(values), missing if only is None else float(only)), np.zeros(len(values), bool)
        return (
            np.fromiter((missing if v is None else v for v in values), dtype=np.float64, count=len(values)),
            np.zeros(len(values), bool),
        )
    odd = np.fromiter((type(v) not in _PLAIN for v in values), dtype=bool, count=len(values))
    plain = np.fromiter(
        (missing if v is None or type(v) not in _PLAIN else v for v in values),
        dtype=np.float64,
        count=len(values),
    )
    return plain, odd


def _column_arrays(columns: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounds and integrality of every column.

    `VarData.bounds` costs about 1.4 us a call (seconds at millions of columns), so the stored
    bounds and domains are read in bulk and each distinct domain is asked once. Fixed variables,
    and bounds that are not plain numbers, go one by one through the public API.
    """
    lb, odd_lb = _stored_bounds(list(map(operator.attrgetter("_lb"), columns)), -INF)
    ub, odd_ub = _stored_bounds(list(map(operator.attrgetter("_ub"), columns)), INF)
    domains = list(map(operator.attrgetter("_domain"), columns))
    distinct = list({id(d): d for d in domains}.values())
    code = {id(d): n for n, d in enumerate(distinct)}
    table = np.zeros((max(1, len(distinct)), 3))
    for n, domain in enumerate(distinct):
        d_lb, d_ub, step = domain.get_interval()
        table[n] = (-INF if d_lb is None else d_lb, INF if d_ub is None else d_ub, step == 1)
    if len(code) == 1:
        dom = np.broadcast_to(table[0], (len(columns), 3))
    else:
        dom = table[np.fromiter((code[id(d)] for d in domains), dtype=np.int64, count=len(columns))]
    lower = np.maximum(lb, dom[:, 0])
    upper = np.minimum(ub, dom[:, 1])
    fixed = np.fromiter(map(operator.attrgetter("_fixed"), columns), dtype=bool, count=len(columns))
    for j in np.flatnonzero(odd_lb | odd_ub | fixed):
        var = columns[j]
        if var.fixed:
            lower[j] = upper[j] = var.value
        else:
            b_lb, b_ub = var.bounds
            lower[j] = -INF if b_lb is None else b_lb
            upper[j] = INF if b_ub is None else b_ub
    return lower, upper, dom[:, 2].astype(np.int32)


def pass_to_highs(m: pyo.ConcreteModel, highs: highspy.Highs | None = None) -> DirectModel:
    """Compile the model's single objective and constraints and pass them to HiGHS in bulk."""
    with PauseGC():
        return _compile(m, highs, pass_model=True)


def compile_to_arrays(m: pyo.ConcreteModel) -> DirectModel:
    """The same compilation, kept as arrays (`DirectModel.arrays`) and not passed: for a caller
    that splits the matrix itself (the decomposition). Its HiGHS instance holds no model."""
    with PauseGC():
        return _compile(m, None, pass_model=False)


def _scale_of(m: pyo.ConcreteModel, component) -> float:
    """The component-level entry of the model's `scaling_factor` suffix (Pyomo's convention:
    scaled = factor x original), or 1. Per-variable or per-row entries are not read."""
    suffix = m.component("scaling_factor")
    if not isinstance(suffix, pyo.Suffix):
        return 1.0
    factor = suffix.get(component)
    return 1.0 if factor is None else float(factor)


def _column_scale(m: pyo.ConcreteModel, columns: _Columns) -> np.ndarray | None:
    scale = np.ones(len(columns.variables))
    for comp in m.component_objects(pyo.Var, active=True):
        factor = _scale_of(m, comp)
        if factor != 1.0:
            start = columns.start_of[id(comp)]
            scale[start : start + len(comp)] = factor
    return None if (scale == 1.0).all() else scale


@dataclass
class _Rows:
    """A block of rows in CSR form, columns numbered as HiGHS columns."""

    indptr: np.ndarray
    indices: np.ndarray
    coefs: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def _expression_rows(
    m: pyo.ConcreteModel, arrays: list[ArrayConstraint], columns: _Columns
) -> tuple[_Rows, Any, np.ndarray]:
    """Every other active constraint and the objective, through Pyomo's standard-form compiler
    (array families deactivated meanwhile), its columns mapped onto ours by identity."""
    # The scaling suffix is applied after compiling; the compiler would warn that it ignores it.
    suffix = m.component("scaling_factor")
    scaling = [suffix] if isinstance(suffix, pyo.Suffix) and suffix.active else []
    for con in arrays + scaling:
        con.deactivate()
    try:
        # Declaration order is already deterministic (index sets are built from ordered lists),
        # so the compiler's extra ordering checks (about a quarter of its time) are skipped.
        info = LinearStandardFormCompiler().write(
            m, mixed_form=True, set_sense=None, file_determinism=FileDeterminism.NONE
        )
    finally:
        for con in arrays + scaling:
            con.activate()
    mapped = columns.numbers(info.columns)
    A = info.A.tocsr()
    num_row = A.shape[0]
    kinds = np.fromiter((row[1] for row in info.rows), dtype=np.int8, count=num_row)
    rhs = np.asarray(info.rhs, dtype=np.float64)
    # mixed form: +1 means body <= rhs, -1 means body >= rhs, 0 means body == rhs
    lower = np.where(kinds >= 0, np.where(kinds == 0, rhs, -INF), rhs)
    upper = np.where(kinds <= 0, np.where(kinds == 0, rhs, INF), rhs)
    rows = _Rows(A.indptr, mapped[A.indices].astype(np.int32), A.data.astype(np.float64), lower, upper)
    return rows, info, mapped


def _all_rows(
    compiled: _Rows,
    arrays: list[ArrayConstraint],
    columns: _Columns,
    row_scale: list[float],
    column_scale: np.ndarray | None,
) -> _Rows:
    """The compiled rows, then each array family's rows (its CSR arrays with variable positions
    renumbered to HiGHS columns), written straight into one CSR block sized in advance, so the
    peak holds one family's column map beside the result, not a copy of every family.
    A family's rows are multiplied by its `row_scale`, every coefficient divided by its
    column's scale."""
    blocks = [(compiled.indptr, compiled.lower)] + [(con.csr()[2], con.row_bounds[0]) for con in arrays]
    n_rows = sum(len(lower) for _, lower in blocks)
    nnz = sum(int(indptr[-1]) for indptr, _ in blocks)
    if nnz >= 2**31:
        raise ValueError(f"{nnz:,} non-zeros: more than HiGHS's 32-bit matrix indices hold")
    out = _Rows(
        np.zeros(n_rows + 1, dtype=np.int32),
        np.empty(nnz, dtype=np.int32),
        np.empty(nnz, dtype=np.float64),
        np.empty(n_rows),
        np.empty(n_rows),
    )
    row = at = 0

    def put(indptr: np.ndarray, indices: np.ndarray, coefs: np.ndarray, lower, upper, rho: float) -> None:
        nonlocal row, at
        rows, size = len(lower), int(indptr[-1])
        out.indptr[row + 1 : row + rows + 1] = indptr[1:] + at
        out.indices[at : at + size] = indices
        out.coefs[at : at + size] = coefs
        if rho != 1.0:
            out.coefs[at : at + size] *= rho
        if column_scale is not None:
            out.coefs[at : at + size] /= column_scale[indices]
        out.lower[row : row + rows] = lower * rho
        out.upper[row : row + rows] = upper * rho
        row, at = row + rows, at + size

    put(compiled.indptr, compiled.indices, compiled.coefs, compiled.lower, compiled.upper, 1.0)
    for con, rho in zip(arrays, row_scale, strict=True):
        data, positions, indptr = con.csr()
        column_of_position = columns.of_segments(con.segments).astype(np.int32)
        put(indptr, column_of_position[positions], data, *con.row_bounds, rho)
    return out


def _compile(m: pyo.ConcreteModel, highs: highspy.Highs | None, *, pass_model: bool) -> DirectModel:
    start = time.perf_counter()
    columns = _Columns.of(m)
    arrays = [c for c in m.component_objects(pyo.Constraint, active=True) if isinstance(c, ArrayConstraint)]
    compiled, info, mapped = _expression_rows(m, arrays, columns)
    column_scale = _column_scale(m, columns)
    A = _all_rows(compiled, arrays, columns, [_scale_of(m, con) for con in arrays], column_scale)
    num_row, num_col, nnz = len(A.lower), len(columns.variables), int(A.indptr[-1])
    (objective,) = info.objectives
    sense = highspy.ObjSense.kMaximize if objective.sense == pyo.maximize else highspy.ObjSense.kMinimize
    cost = np.zeros(num_col)
    if len(mapped):
        np.add.at(cost, mapped, np.asarray(info.c.toarray()[0], dtype=np.float64))
    lower, upper, integer = _column_arrays(columns.variables)
    if column_scale is not None:
        if (integer[column_scale != 1.0] != 0).any():
            raise ValueError("an integer variable cannot be scaled (its values would stop being whole)")
        cost /= column_scale
        lower *= column_scale
        upper *= column_scale
    row_lower, row_upper = A.lower, A.upper
    offset = float(info.c_offset[0]) if len(info.c_offset) else 0.0
    highs = highs or highspy.Highs()
    highs.setOptionValue("output_flag", False)
    matrix = scipy.sparse.csr_array((A.coefs, A.indices, A.indptr), shape=(num_row, num_col))
    del A
    kept = None
    if pass_model:
        # HiGHS keeps its matrix column-wise and converts a row-wise one inside passModel,
        # holding both copies at once; converting here lets our row-wise arrays go first
        # (about 95 MB less peak at 7.9M non-zeros).
        csc = matrix.tocsc()
        del matrix
        _pass(highs, csc, sense, offset, cost, lower, upper, row_lower, row_upper, integer)
    else:
        kept = LpArrays(matrix, cost, lower, upper, row_lower, row_upper, integer, offset)
    integer_index = np.flatnonzero(integer).astype(np.int32)
    return DirectModel(
        highs=highs,
        columns=columns.variables,
        rows=num_row,
        nonzeros=nnz,
        integer_columns=len(integer_index),
        objective_offset=offset,
        handoff_s=time.perf_counter() - start,
        maximize=objective.sense == pyo.maximize,
        integer_index=integer_index,
        integer_lower=lower[integer_index].copy(),
        integer_upper=upper[integer_index].copy(),
        column_scale=column_scale,
        lookup=columns,
        compiled_rows=[row[0] for row in info.rows],
        array_rows=_array_rows(len(info.rows), arrays),
        arrays=kept,
    )


def _pass(
    highs: highspy.Highs,
    csc: scipy.sparse.csc_array,
    sense,
    offset: float,
    cost,
    lower,
    upper,
    row_lower,
    row_upper,
    integer,
) -> None:
    (num_row, num_col), nnz = csc.shape, csc.nnz
    status = highs.passModel(
        num_col,
        num_row,
        nnz,
        int(highspy.MatrixFormat.kColwise),
        int(sense),
        offset,
        cost,
        lower,
        upper,
        row_lower,
        row_upper,
        csc.indptr.astype(np.int32, copy=False),
        csc.indices.astype(np.int32, copy=False),
        csc.data,
        integer,
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the compiled model")


def _array_rows(first: int, arrays: list[ArrayConstraint]) -> dict[str, tuple[int, int]]:
    out = {}
    for con in arrays:
        out[con.local_name] = (first, first + len(con.row_bounds[0]))
        first += len(con.row_bounds[0])
    return out


def load_solution(direct: DirectModel, values: np.ndarray | None = None) -> None:
    """Write HiGHS's column values (or `values`, in HiGHS's units), back in model units, into
    the Pyomo variables."""
    values = np.asarray(direct.highs.getSolution().col_value if values is None else values)
    if direct.column_scale is not None:
        values = values / direct.column_scale
    with PauseGC():
        for var, value in zip(direct.columns, values.tolist(), strict=True):
            var.set_value(value, skip_validation=True)
