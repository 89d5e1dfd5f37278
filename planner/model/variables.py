"""Decision variables and the derived first-stage expressions of docs/model.md.

Integer variables carry bounds derived from the data (build rate, GPU cap, the power that can be
energised by then), which tightens the LP relaxation without cutting off any feasible plan.
Racks are aggregated counts per site, type and quarter, so identical racks create no symmetry.
"""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.core.base.indexed_component import normalize_index

from planner.model import sets
from planner.model.data import ModelData


def _integer_domain(d: ModelData):
    return pyo.NonNegativeReals if d.scenario.solver.relax_integrality else pyo.NonNegativeIntegers


def define_racks_built(m: pyo.ConcreteModel, d: ModelData) -> None:
    index = sets.rack_indices(d)
    bounds = {idx: (0, d.racks_built_bound(*idx)) for idx in index}
    m.racks_built = pyo.Var(index, domain=_integer_domain(d), bounds=lambda _m, i, r, t: bounds[i, r, t])


def define_blocks_ordered(m: pyo.ConcreteModel, d: ModelData) -> None:
    index = sets.block_order_indices(d)
    bound = {i: d.blocks_bound(i) for i in d.site_ids}
    m.blocks_ordered = pyo.Var(index, domain=_integer_domain(d), bounds=lambda _m, i, t: (0, bound[i]))


def define_quota_gpus(m: pyo.ConcreteModel, d: ModelData) -> None:
    # A quota above the tenant's peak demand over its contract term (or the site's GPU cap) can
    # never be used; quotas never shrink within a term, so the bound is the term's peak.
    index = sets.quota_indices(d)
    gpu_cap = {s.id: s.gpu_cap for s in d.scenario.sites}
    m.quota_gpus = pyo.Var(
        index,
        domain=pyo.NonNegativeReals,
        bounds=lambda _m, k, i, r, t: (0, min(gpu_cap[i], d.term_peak_demand(k, t))),
    )


def define_served_gpu_hours(m: pyo.ConcreteModel, d: ModelData) -> None:
    served = sets.served_index(d)
    m.served_gpu_hours = pyo.Var(flat_tuple_set(served.keys), domain=pyo.NonNegativeReals)
    m._dsx_served = served


def served_index(m: pyo.ConcreteModel) -> sets.ServedIndex:
    """The served index with its integer codes, in the variable's order (three families are
    built from it)."""
    return m._dsx_served


def flat_tuple_set(keys: list[tuple]) -> pyo.Set:
    """An ordered Pyomo Set of flat tuples, built without Pyomo's per-member index flattening.

    Pyomo normalises every member of a new set (about 1 us each: seconds for the millions of
    served indices); our tuples hold only strings and ints, so flattening would return them
    unchanged. `normalize_index.flatten` is Pyomo's documented switch for this; it is off only
    while the set is filled. The set reports no fixed `dimen`, which nothing here relies on.
    """
    before = normalize_index.flatten
    normalize_index.flatten = False
    try:
        index = pyo.Set(initialize=keys, dimen=None, ordered=pyo.Set.InsertionOrder)
        index.construct()
    finally:
        normalize_index.flatten = before
    return index


def define_unserved_gpu_hours(m: pyo.ConcreteModel, d: ModelData) -> None:
    m.unserved_gpu_hours = pyo.Var(sets.unserved_indices(d), domain=pyo.NonNegativeReals)


def define_buyback(m: pyo.ConcreteModel, d: ModelData) -> None:
    """The matching rule's columns (docs/model.md, "Buyback"; constraints.define_buyback_rule),
    all GPU-hours >= 0 and indexed by class of sites (`sets.site_classes`, named by its first
    site): buyback_gpu_hours[c,t,s], the covered hours bought back (already times
    buyback_share); buyback_matched_gpu_hours[k,c,t,s], tenant k's refused hours placed on class
    c's unsold ones. Where the cloud's value rewards buyback, the min cut that closes it from
    above: the binary buyback_open[c,t,s] (class c on the cut's unsold side),
    buyback_cut_unsold_gpu_hours[c,t,s] (its unsold hours where open) and
    buyback_cut_refused_gpu_hours[k,t,s] (tenant k's refused hours where a class it may use is
    open)."""
    if not d.has_buyback:
        return
    index = sets.buyback_indices(d)
    m.buyback_gpu_hours = pyo.Var(index, domain=pyo.NonNegativeReals)
    m.buyback_matched_gpu_hours = pyo.Var(sets.buyback_flow_indices(d), domain=pyo.NonNegativeReals)
    # Defined by `site_gpus_installed_def` (constraints.define_buyback_rule). Every scenario's
    # buyback rows read this column, not the expression: that is every rack type's lifetime
    # window of `racks_built` (60 terms at (10,3,20,6,10), repeated in each row). The column
    # makes the LP a third sparser there and each Benders cut read one column per site
    # (bench/README.md, 2026-12-05).
    m.site_gpus_installed = pyo.Var(sets.site_period_indices(d), domain=pyo.NonNegativeReals)
    if d.buyback_needs_binary:
        domain = pyo.NonNegativeReals if d.scenario.solver.relax_integrality else pyo.Binary
        m.buyback_open = pyo.Var(index, domain=domain, bounds=(0, 1))
        m.buyback_cut_unsold_gpu_hours = pyo.Var(index, domain=pyo.NonNegativeReals)
        m.buyback_cut_refused_gpu_hours = pyo.Var(
            sets.buyback_refused_indices(d), domain=pyo.NonNegativeReals
        )


def define_racks_installed(m: pyo.ConcreteModel, d: ModelData) -> None:
    """racks_installed[i,r,t] = existing + racks built in the last L_r quarters (existing stay)."""

    def rule(_m, i, r, t):
        life = d.scenario.rack_type(r).lifetime_periods
        built = [m.racks_built[i, r, tau] for tau in range(max(0, t - life + 1), t + 1)]
        return d.existing_racks.get((i, r), 0) + pyo.quicksum(built)

    m.racks_installed = pyo.Expression(sets.rack_indices(d), rule=rule)


def define_gpus_installed(m: pyo.ConcreteModel, d: ModelData) -> None:
    def rule(_m, i, r, t):
        return d.scenario.rack_type(r).gpus_per_rack * m.racks_installed[i, r, t]

    m.gpus_installed = pyo.Expression(sets.rack_indices(d), rule=rule)


def define_available_mw(m: pyo.ConcreteModel, d: ModelData) -> None:
    """available_mw[i,t] = existing MW + block MW x blocks ordered at least lead quarters ago."""

    def rule(_m, i, t):
        site = d.scenario.site(i)
        ordered = m.blocks_ordered
        arrived = [
            ordered[i, tau] for tau in range(0, t - site.power_lead_time_periods + 1) if (i, tau) in ordered
        ]
        return site.existing_mw + site.power_block_mw * pyo.quicksum(arrived)

    m.available_mw = pyo.Expression(sets.site_period_indices(d), rule=rule)


def define_cvar(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Rockafellar-Uryasev auxiliaries, only when CVaR is weighted into the objective."""
    if d.scenario.objective.cvar_weight <= 0:
        return
    m.cvar_eta = pyo.Var(domain=pyo.Reals)
    m.cvar_shortfall = pyo.Var(d.scenario_ids, domain=pyo.NonNegativeReals)


def define_party_cvar(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Rockafellar-Uryasev auxiliaries per party with a CVaR requirement (participation)."""
    parties = d.parties_with_cvar_requirement
    if not parties:
        return
    m.party_cvar_eta = pyo.Var(parties, domain=pyo.Reals)
    m.party_cvar_shortfall = pyo.Var(
        [(p, s) for p in parties for s in d.scenario_ids], domain=pyo.NonNegativeReals
    )
