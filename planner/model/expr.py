"""Fast construction helpers: linear expressions from coefficient lists, and templated rules.

Large families are built from plain lists of coefficients and variables (one `LinearExpression`
per row, no operator overloading), and uniform two-term families as Pyomo template constraints,
which Pyomo stores once and the standard-form compiler expands row by row without walking an
expression tree per row. Both are measurable wins at size (see the report in the closing note).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pyomo.core.base.constraint as pyomo_constraint
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression


def linear(coefs: Sequence[float], variables: Sequence, constant: float = 0.0) -> LinearExpression:
    """constant + Sum coefs x variables, built without operator overloading (unit terms stay bare)."""
    args: list = [constant] if constant else []
    args += [v if c == 1.0 else MonomialTermExpression((c, v)) for c, v in zip(coefs, variables, strict=True)]
    return LinearExpression(args)


@contextmanager
def templated_constraints() -> Iterator[None]:
    """Build the constraints created inside as Pyomo template constraints (rule called once)."""
    before = pyomo_constraint.TEMPLATIZE_CONSTRAINTS
    pyomo_constraint.TEMPLATIZE_CONSTRAINTS = True
    try:
        yield
    finally:
        pyomo_constraint.TEMPLATIZE_CONSTRAINTS = before
