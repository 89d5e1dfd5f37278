"""MIP starts: values offered to HiGHS before it begins, and which interfaces take them.

A start is a mapping from a Pyomo variable component's name to its values by index
(`MipStart`). It comes from a solved plan (`start_from_plan`: a neighbouring sweep point's, or the
plan whose value of information is computed) or from a test; `planner.solve.interfaces` hands it
to HiGHS (`start_values` puts every value inside its variable's bounds first), and
`planner.solve.rounding` weighs its integer values against the rounded LP relaxation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import pyomo.environ as pyo

from planner.schema.plan import Plan

TAKES_MIP_START: frozenset[str] = frozenset({"direct", "appsi"})
"""The interfaces that pass a MIP start to HiGHS (legacy: Pyomo declares no warm start)."""

MipStart = Mapping[str, Mapping[Any, float]]
"""A MIP start: Pyomo Var component name -> index (tuple) -> value. A component it names gets a
value for every variable (absent indices: 0); components it does not name are left to HiGHS."""

START_COMPONENTS = ("racks_built", "blocks_ordered", "quota_gpus", "served_gpu_hours", "unserved_gpu_hours")
"""The variable components `start_from_plan` fills: every decision a plan records."""


def start_from_plan(plan: Plan) -> MipStart:
    """Every decision a plan records, keyed as the Pyomo model names them, to offer HiGHS as a
    start for a neighbouring point. Served and unserved records are listed only where positive,
    so an index absent here means 0. What a plan does not record (the scenario values, the CVaR
    auxiliaries) is left for HiGHS to complete."""
    t_of = {p: t for t, p in enumerate(plan.periods)}
    return {
        "racks_built": {(r.site, r.rack_type, t_of[r.period]): float(r.racks_built) for r in plan.racks},
        "blocks_ordered": {(p.site, t_of[p.period]): float(p.blocks_ordered) for p in plan.power},
        "quota_gpus": {(q.tenant, q.site, q.rack_type, t_of[q.period]): q.quota_gpus for q in plan.quotas},
        "served_gpu_hours": {
            (r.tenant, r.site, r.rack_type, t_of[r.period], r.scenario): r.served_gpu_hours
            for r in plan.served
        },
        "unserved_gpu_hours": {
            (r.tenant, t_of[r.period], r.scenario): r.unserved_gpu_hours for r in plan.unserved
        },
    }


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
