"""The fast hand-off passes HiGHS exactly the LP Pyomo's own compiler would, bounds included."""

from __future__ import annotations

from collections import Counter

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest
import scipy.sparse
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from bench.scenarios import synthetic_scenario
from planner.model.build import build_model
from planner.model.expr import array_constraint
from planner.solve import direct as highs_direct
from planner.solve.interfaces import INTERFACES, solve_model
from tests.planner.small_scenarios import tiny

INF = highspy.kHighsInf


def _rows_from_highs(direct: highs_direct.DirectModel) -> Counter:
    """Each row as (bounds, sorted (variable name, coefficient) terms), as a multiset."""
    lp = direct.highs.getLp()
    matrix = lp.a_matrix_
    start, index, value = np.asarray(matrix.start_), np.asarray(matrix.index_), np.asarray(matrix.value_)
    terms: list[list] = [[] for _ in range(lp.num_row_)]
    names = [v.name for v in direct.columns]
    if matrix.format_ == highspy.MatrixFormat.kColwise:
        for j in range(lp.num_col_):
            for p in range(start[j], start[j + 1]):
                terms[index[p]].append((names[j], round(float(value[p]), 9)))
    else:
        for i in range(lp.num_row_):
            terms[i] = [(names[index[p]], round(float(value[p]), 9)) for p in range(start[i], start[i + 1])]
    bounds = zip(np.asarray(lp.row_lower_), np.asarray(lp.row_upper_), strict=True)
    return Counter(
        ((round(lo, 6), round(hi, 6)), tuple(sorted(t))) for (lo, hi), t in zip(bounds, terms, strict=True)
    )


def _rows_from_pyomo(m: pyo.ConcreteModel) -> Counter:
    info = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    A = info.A.tocsr()
    out: Counter = Counter()
    for i, (_con, kind) in enumerate(info.rows):
        rhs = float(info.rhs[i])
        lo = rhs if kind <= 0 else -INF
        hi = rhs if kind >= 0 else INF
        cols = A.indices[A.indptr[i] : A.indptr[i + 1]]
        vals = A.data[A.indptr[i] : A.indptr[i + 1]]
        terms = tuple(
            sorted((info.columns[j].name, round(float(v), 9)) for j, v in zip(cols, vals, strict=True))
        )
        out[(round(lo, 6), round(hi, 6)), terms] += 1
    return out


def test_hand_off_matches_pyomos_own_compiler_row_for_row():
    m = build_model(synthetic_scenario(2, 2, 4, 3, 3, seed=1))
    m.del_component("scaling_factor")  # Pyomo's compiler does not scale; compare like with like
    direct = highs_direct.pass_to_highs(m)
    assert _rows_from_highs(direct) == _rows_from_pyomo(m)
    assert direct.rows == sum(_rows_from_pyomo(m).values())


def test_arrays_kept_for_the_decomposition_are_the_lp_passed_to_highs():
    m = build_model(synthetic_scenario(2, 2, 4, 3, 3, seed=1))
    kept = highs_direct.compile_to_arrays(m)
    assert kept.arrays is not None and kept.highs.getLp().num_col_ == 0
    passed_model = highs_direct.pass_to_highs(m)
    lp = passed_model.highs.getLp()
    passed = scipy.sparse.csc_array(
        (np.asarray(lp.a_matrix_.value_), np.asarray(lp.a_matrix_.index_), np.asarray(lp.a_matrix_.start_)),
        shape=(lp.num_row_, lp.num_col_),
    )
    arrays = kept.arrays
    assert arrays.A.nnz == passed.nnz
    assert (passed != arrays.A).nnz == 0
    for mine, theirs in (
        (arrays.cost, lp.col_cost_),
        (arrays.lower, lp.col_lower_),
        (arrays.upper, lp.col_upper_),
        (arrays.row_lower, lp.row_lower_),
        (arrays.row_upper, lp.row_upper_),
        (arrays.integrality, [int(kind) for kind in lp.integrality_]),
    ):
        np.testing.assert_array_equal(mine, np.asarray(theirs))
    assert arrays.offset == lp.offset_
    assert kept.array_rows == passed_model.array_rows


def test_column_bounds_match_pyomos_public_bounds_for_every_kind_of_variable():
    m = pyo.ConcreteModel()
    m.p = pyo.Param(initialize=4.0, mutable=True)
    m.plain = pyo.Var(range(3), bounds=(1, 5))
    m.domain_only = pyo.Var(range(2), domain=pyo.NonNegativeIntegers)
    m.tighter = pyo.Var(domain=pyo.Binary, bounds=(-3, 0.5))
    m.from_param = pyo.Var(bounds=(0, m.p))
    m.free = pyo.Var()
    m.fixed = pyo.Var(bounds=(0, 10))
    m.fixed.fix(7)
    columns = [v for comp in m.component_objects(pyo.Var) for v in comp.values()]
    lower, upper, integer = highs_direct._column_arrays(columns)
    for j, var in enumerate(columns):
        lb, ub = (var.value, var.value) if var.fixed else var.bounds
        assert lower[j] == (-INF if lb is None else lb), var.name
        assert upper[j] == (INF if ub is None else ub), var.name
        assert bool(integer[j]) == var.is_integer(), var.name


def test_array_family_rows_have_spec_names_and_every_interface_solves_them():
    def model():
        m = pyo.ConcreteModel()
        m.x = pyo.Var(["a", "b"], bounds=(0, 10))
        m.y = pyo.Var(bounds=(0, 3))
        # x[a] - y <= 0 and x[a] + x[b] <= 8, as triplets over the segments [x, [y]]
        m.rows = array_constraint(
            [("a", 1), ("both", 2)],
            rows=np.array([0, 0, 1, 1]),
            positions=np.array([0, 2, 0, 1]),
            coefs=np.array([1.0, -1.0, 1.0, 1.0]),
            lower=np.array([-np.inf, -np.inf]),
            upper=np.array([0.0, 8.0]),
            segments=[m.x, [m.y]],
        )
        m.value = pyo.Objective(expr=2 * m.x["a"] + m.x["b"], sense=pyo.maximize)
        return m

    m = model()
    assert m.rows["both", 2].name == "rows[both,2]"
    assert str(m.rows["a", 1].body) == "x[a] - y"
    # persistent interfaces tell an edited row by its expression's identity
    assert m.rows["a", 1].expr is m.rows["a", 1].expr
    for interface in INTERFACES:
        m = model()
        options = tiny().solver
        outcome = solve_model(m, options, interface)
        # x[a] = y = 3, x[b] = 5: 2 * 3 + 5
        assert outcome.objective_usd == pytest.approx(11.0 * 1e6), interface
        assert pyo.value(m.x["b"]) == pytest.approx(5.0), interface


def test_scaled_hand_off_solves_to_the_same_values_in_model_units():
    scenario = synthetic_scenario(2, 2, 4, 3, 3, seed=1)
    relaxed = scenario.model_copy(
        update={"solver": scenario.solver.model_copy(update={"relax_integrality": True})}
    )
    values = {}
    for scaled in (True, False):
        m = build_model(relaxed)
        if not scaled:
            m.del_component("scaling_factor")
        direct = highs_direct.pass_to_highs(m)
        if scaled:  # GPU-hour columns go to HiGHS as average GPUs: divided by h
            served = np.array(
                [
                    direct.columns[j].parent_component() is m.served_gpu_hours
                    for j in range(len(direct.columns))
                ]
            )
            assert direct.column_scale[served] == pytest.approx(1.0 / relaxed.periods.hours_per_period)
            assert (direct.column_scale[~served & (direct.column_scale != 1.0)] > 0).all()
        else:
            assert direct.column_scale is None
        direct.highs.run()
        assert direct.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        highs_direct.load_solution(direct)
        values[scaled] = (
            direct.highs.getInfo().objective_function_value,
            sum(v.value for v in m.served_gpu_hours.values()),
        )
    assert values[True][0] == pytest.approx(values[False][0], rel=1e-7)
    assert values[True][1] == pytest.approx(values[False][1], rel=1e-6)


def test_component_keys_follow_the_columns_where_variables_were_made_out_of_index_order():
    m = pyo.ConcreteModel()
    m.x = pyo.Var([1, 2, 3], dense=False)
    for i in (3, 1, 2):
        m.x[i].value = 0.0  # made on first access, in this order
    m.c = pyo.Constraint(expr=m.x[1] + m.x[2] + m.x[3] >= 0)
    m.o = pyo.Objective(expr=m.x[1])
    direct = highs_direct.compile_to_arrays(m)
    assert highs_direct.component_keys(m.x) == [var.index() for var in direct.columns]
