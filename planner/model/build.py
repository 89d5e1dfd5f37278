"""Assemble the capacity model from its families, in one readable order."""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC

from planner.model import constraints, objective, variables
from planner.model.data import ModelData, model_data
from planner.model.objective import MONEY_SCALE_USD
from planner.schema.scenario import Scenario

__all__ = ["MONEY_SCALE_USD", "build_model", "data_of"]


def build_model(scenario: Scenario, *, elastic: bool = False) -> pyo.ConcreteModel:
    """The model of docs/model.md. `elastic`: every participation requirement may fall short and
    the total shortfall is minimised instead (to say which cannot be met, and by how much)."""
    # Millions of small Pyomo objects make Python's cyclic GC re-scan the heap over and over;
    # pausing it during construction is the single largest build-time saving at size.
    with PauseGC():
        return _build(scenario, elastic)


def _build(scenario: Scenario, elastic: bool) -> pyo.ConcreteModel:
    d = model_data(scenario)
    d.elastic = elastic
    m = pyo.ConcreteModel(name=scenario.name)
    m._dsx_data = d

    # First stage: build decisions and what they imply.
    variables.define_racks_built(m, d)
    variables.define_blocks_ordered(m, d)
    variables.define_quota_gpus(m, d)
    variables.define_racks_installed(m, d)
    variables.define_gpus_installed(m, d)
    variables.define_available_mw(m, d)
    constraints.define_power_fits(m, d)
    constraints.define_power_cap(m, d)
    constraints.define_gpu_cap(m, d)
    constraints.define_build_rate(m, d)
    constraints.define_block_rate(m, d)
    constraints.define_quota_fits(m, d)
    constraints.define_quota_never_shrinks(m, d)

    # Second stage: serving per scenario.
    variables.define_served_gpu_hours(m, d)
    variables.define_unserved_gpu_hours(m, d)
    constraints.define_serve_within_quota(m, d)
    constraints.define_demand_balance(m, d)
    variables.define_buyback(m, d)
    constraints.define_buyback_rule(m, d)

    # Values, risk, each party's requirements and the objective.
    objective.define_scenario_values(m, d)
    variables.define_cvar(m, d)
    constraints.define_cvar_shortfall(m, d)
    objective.define_party_values(m, d)
    variables.define_party_cvar(m, d)
    constraints.define_participation(m, d)
    objective.define_objective(m, d)
    define_scaling(m, d)
    # The served index's integer codes were for building the array families; at size they are
    # tens of MB that the hand-off would otherwise carry into HiGHS's peak.
    m._dsx_served = None
    return m


def data_of(m: pyo.ConcreteModel) -> ModelData:
    """The precomputed scenario data a model was built from."""
    return m._dsx_data


def define_scaling(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Hand the GPU-hour families to HiGHS in average GPUs over the quarter (divided by h, about
    2,190): rows `demand_balance` and `serve_within_quota` then have unit coefficients and
    right-hand sides of GPUs, not up to 1e8 GPU-hours, which HiGHS flags as badly scaled.
    Pyomo's `scaling_factor` suffix at component level; read by `planner.solve.direct` only (the
    model, its values and every report stay in GPU-hours)."""
    m.scaling_factor = pyo.Suffix(direction=pyo.Suffix.EXPORT)
    per_hour = 1.0 / d.h
    families = [m.served_gpu_hours, m.unserved_gpu_hours, m.serve_within_quota, m.demand_balance]
    # The buyback's columns (GPU-hours); their rows are written divided by h already.
    for name in (
        "buyback_gpu_hours",
        "buyback_matched_gpu_hours",
        "buyback_cut_unsold_gpu_hours",
        "buyback_cut_refused_gpu_hours",
    ):
        if hasattr(m, name):
            families.append(m.component(name))
    for component in families:
        m.scaling_factor.set_value(component, per_hour, expand=False)
