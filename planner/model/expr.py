"""Fast construction helpers: linear expressions from coefficient lists, and array constraints.

Small families are built from plain lists of coefficients and variables (one `LinearExpression`
per row, no operator overloading). The families with a row per served variable (millions at
size) are `ArrayConstraint`s: Pyomo constraint components whose rows live in CSR arrays, so no
expression object exists per row until someone asks for one. Pyomo's writers (and so the appsi
and legacy interfaces) still see ordinary constraint data with spec names; `planner.solve.direct`
takes the arrays in bulk.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.core.base.constraint import IndexedConstraint
from pyomo.core.base.indexed_component import IndexedComponent
from pyomo.core.base.matrix_constraint import MatrixConstraint, _MatrixConstraintData
from pyomo.core.base.set_types import Any as AnySet
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression


def linear(coefs: Sequence[float], variables: Sequence, constant: float = 0.0) -> LinearExpression:
    """constant + Sum coefs x variables, built without operator overloading (unit terms stay bare)."""
    args: list = [constant] if constant else []
    args += [v if c == 1.0 else MonomialTermExpression((c, v)) for c, v in zip(coefs, variables, strict=True)]
    return LinearExpression(args)


class ArrayRow(_MatrixConstraintData):
    """One row of an `ArrayConstraint`, indexed (and so named) by the family's own index tuple."""

    __slots__ = ()

    def index(self):
        return self.parent_component()._keys[self._index]

    @property
    def lower(self):
        value = self.parent_component()._row_lower[self._index]
        return None if value == -np.inf else float(value)

    @property
    def upper(self):
        value = self.parent_component()._row_upper[self._index]
        return None if value == np.inf else float(value)

    def to_bounded_expression(self, evaluate_bounds=False):
        return self.lower, self.body, self.upper

    @property
    def expr(self):
        """Built once per row and kept: persistent interfaces (appsi) detect a changed
        constraint by the identity of its expression, so a fresh one each call reads as an edit
        of every row on every solve."""
        cache = self.parent_component()._expr_cache
        expr = cache.get(self._index)
        if expr is None:
            lower, body, upper = self.to_bounded_expression()
            expr = (
                body == lower if lower is not None and lower == upper else pyo.inequality(lower, body, upper)
            )
            cache[self._index] = expr
        return expr


Segment = Any
"""Variables of an array family: a whole indexed Var component (all its variables, in its index
order) or a list of variables."""


class ArrayConstraint(MatrixConstraint):
    """lower <= A x <= upper with A in CSR arrays over the variables x, one row per key.

    x is given as segments (see `Segment`): naming a whole Var component lets the hand-off map
    it to HiGHS columns in one step instead of one look-up per variable. Pyomo's own
    `MatrixConstraint` (6.10) predates the writers' `values(sort)` calls and
    `to_bounded_expression`; this keeps its row storage, fixes both, and names rows by key.
    Rows are (de)activated with the family, not one by one.
    """

    def __init__(
        self,
        keys: Sequence,
        data: np.ndarray,
        indices: np.ndarray,
        indptr: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        segments: Sequence[Segment],
    ):
        IndexedConstraint.__init__(self, AnySet)
        assert len(indices) == len(data) and len(indptr) == len(lower) + 1 == len(upper) + 1
        self._A_data = data
        self._A_indices = indices
        self._A_indptr = indptr
        self._keys = keys
        self._row_lower = np.asarray(lower, dtype=np.float64)
        self._row_upper = np.asarray(upper, dtype=np.float64)
        self.segments = tuple(segments)
        self._flat: tuple[Any, ...] | None = None
        self._position: dict[Any, int] | None = None
        self._row_data: tuple | None = None
        self._expr_cache: dict[int, Any] = {}

    @property
    def _x(self) -> tuple:
        """All variables in column order; only Pyomo's writers (row bodies) need them flat."""
        if self._flat is None:
            self._flat = tuple(
                v
                for segment in self.segments
                for v in (segment.values() if isinstance(segment, IndexedComponent) else segment)
            )
        return self._flat

    def construct(self, data=None):
        self._constructed = True

    def _rows(self) -> tuple:
        """The row objects, made on first use: the hand-off reads the arrays and never needs
        them; Pyomo's writers and `m.family[key]` do."""
        if self._row_data is None:
            ref = weakref.ref(self)
            self._row_data = tuple(ArrayRow(n, ref) for n in range(len(self._row_lower)))
        return self._row_data

    def activate(self):
        self._active = True

    def deactivate(self):
        self._active = False

    def _positions(self) -> dict:
        if self._position is None:  # built on first lookup by key only: the hand-off never needs it
            self._position = {k: n for n, k in enumerate(self._keys)}
        return self._position

    def __getitem__(self, key):
        return self._rows()[self._positions()[key]]

    def __contains__(self, key):
        return key in self._positions()

    def __len__(self):
        return len(self._row_lower)

    def values(self, sort=None):
        return iter(self._rows())

    def items(self, sort=None):
        return zip(self._keys, self._rows(), strict=True)

    def keys(self, sort=None):
        return iter(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(data, indices into the concatenated segments, indptr) of the rows."""
        return self._A_data, self._A_indices, self._A_indptr

    @property
    def row_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self._row_lower, self._row_upper


def array_constraint(
    keys: Sequence,
    rows: np.ndarray,
    positions: np.ndarray,
    coefs: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    segments: Sequence[Segment],
) -> ArrayConstraint:
    """An `ArrayConstraint` from triplets: row number, position in the concatenated segments,
    coefficient. Rows keep the order of `keys`; triplets may come in any order."""
    n_rows = len(keys)
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return ArrayConstraint(
        keys,
        np.asarray(coefs, dtype=np.float64)[order],
        np.asarray(positions, dtype=np.int32)[order],
        indptr,
        lower,
        upper,
        segments,
    )
