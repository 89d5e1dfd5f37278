"""Turn a solved model into a `Plan`: its decisions and every figure of docs/model.md.

Figures are computed here from the decisions by the spec's formulas (not read from model
expressions), after the decisions are cleaned of solver round-off: integer counts rounded,
tiny negatives dropped, unserved demand recomputed from the balance. So the plan is exactly
self-consistent and the independent verifier recomputes the same numbers.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC

from planner.model.build import data_of
from planner.model.data import ModelData
from planner.schema.catalogue import plan_catalogue
from planner.schema.plan import (
    PartyFigures,
    Plan,
    PowerDecision,
    QuotaDecision,
    RackDecision,
    RiskFigures,
    ScenarioOutcome,
    ServedRecord,
    SitePeriodSummary,
    SolverReport,
    UnservedRecord,
    Verification,
    tail_mean,
)
from planner.schema.scenario import Scenario
from planner.solve.interfaces import SolveOutcome

GPU_HOURS_NOISE = 1e-6
"""Served GPU-hours below this are solver round-off, reported as zero."""


@dataclass
class Decisions:
    """Cleaned decision values, keyed like the model's index sets."""

    racks_built: dict[tuple[str, str, int], int]
    blocks_ordered: dict[tuple[str, int], int]
    quota_gpus: dict[tuple[str, str, str, int], float]
    served: dict[tuple[str, str, str, int, str], float]
    """Only what is served (above `GPU_HOURS_NOISE`), in the family's order: most pools serve
    nothing in most scenarios (26,760 non-zero of 156,000 at (10,3,20,6,50))."""
    unserved: dict[tuple[str, int, str], float] = field(default_factory=dict)


def read_decisions(m: pyo.ConcreteModel) -> Decisions:
    d = data_of(m)

    def count(var) -> int:
        return max(0, round(var.value or 0.0))

    def amount(var) -> float:
        value = var.value or 0.0
        return value if value > GPU_HOURS_NOISE else 0.0

    served = _served(m.served_gpu_hours)
    decisions = Decisions(
        racks_built={idx: count(v) for idx, v in m.racks_built.items()},
        blocks_ordered={idx: count(v) for idx, v in m.blocks_ordered.items()},
        quota_gpus={idx: amount(v) for idx, v in m.quota_gpus.items()},
        served=served,
    )
    by_demand: dict[tuple[str, int, str], float] = defaultdict(float)
    for (k, _i, _r, t, s), value in served.items():
        by_demand[k, t, s] += value
    for k, t, s in m.unserved_gpu_hours:
        decisions.unserved[k, t, s] = max(0.0, d.h * d.demand[k, t, s] - by_demand[k, t, s])
    decisions.quota_gpus = least_quotas(d, decisions.quota_gpus, served)
    return decisions


def _served(family: pyo.Var) -> dict[tuple[str, str, str, int, str], float]:
    """The family's values above `GPU_HOURS_NOISE` (unset counts as 0), by index, read in bulk:
    per variable in Python, with every zero kept, the 156,000 of (10,3,20,6,50) took a tenth of
    a second."""
    keys = list(family.keys())
    # None (a variable no solver set) becomes NaN, which no comparison keeps.
    values = np.array(list(map(operator.attrgetter("value"), family.values())), dtype=np.float64)
    kept = np.flatnonzero(values > GPU_HOURS_NOISE)
    return dict(zip(map(keys.__getitem__, kept.tolist()), values[kept].tolist(), strict=True))


def least_quotas(
    d: ModelData,
    solved: dict[tuple[str, str, str, int], float],
    served: dict[tuple[str, str, str, int, str], float],
) -> dict[tuple[str, str, str, int], float]:
    """The least quota schedule the contract rule allows for what is served: per pool, the GPUs
    served in any scenario, raised to the last quarter's quota less the rule's allowance (none
    within a contract term; at a renewal, the fall in the tenant's peak demand).

    Quotas cost nothing, so the solver's are one of many equal optima (issue 11 saw them halve and
    double quarter to quarter). This one is below the solver's everywhere (by induction over the
    quarters: any schedule meeting the rule and covering what is served is at least this), so
    every row that held still holds, and it is what a tenant would sign: rising use, rising quota."""
    peak: dict[tuple[str, str, str, int], float] = defaultdict(float)
    for (k, i, r, t, _s), x in served.items():
        peak[k, i, r, t] = max(peak[k, i, r, t], x / d.h)
    out: dict[tuple[str, str, str, int], float] = {}
    for k, i, r, t in sorted(solved, key=lambda key: (key[0], key[1], key[2], key[3])):
        level = peak.get((k, i, r, t), 0.0)
        if t > 0:
            level = max(level, out[k, i, r, t - 1] - d.quota_drop_allowance_gpus(k, t))
        out[k, i, r, t] = level
    return {key: out[key] for key in solved}


def racks_installed(d: ModelData, built: dict[tuple[str, str, int], int]) -> dict[tuple[str, str, int], int]:
    out = {}
    for i in d.site_ids:
        for r in d.rack_ids_at[i]:
            life = d.scenario.rack_type(r).lifetime_periods
            for t in d.periods:
                recent = sum(built.get((i, r, tau), 0) for tau in range(max(0, t - life + 1), t + 1))
                out[i, r, t] = d.existing_racks.get((i, r), 0) + recent
    return out


def available_mw(d: ModelData, blocks: dict[tuple[str, int], int]) -> dict[tuple[str, int], float]:
    out = {}
    for i in d.site_ids:
        site = d.scenario.site(i)
        for t in d.periods:
            arrived = sum(blocks.get((i, tau), 0) for tau in range(0, t - site.power_lead_time_periods + 1))
            out[i, t] = site.existing_mw + site.power_block_mw * arrived
    return out


def cvar(values: list[float], probabilities: list[float], alpha: float) -> float:
    """Mean value over the worst (1 - alpha) probability mass (`planner.schema.plan.tail_mean`)."""
    return tail_mean(values, probabilities, alpha)


def build_plan(scenario: Scenario, m: pyo.ConcreteModel, outcome: SolveOutcome, *, build_s: float) -> Plan:
    """The plan of a solved model; `verification` is a placeholder the pipeline fills in."""
    with PauseGC():
        return _build_plan(m, outcome, build_s=build_s)


def _build_plan(m: pyo.ConcreteModel, outcome: SolveOutcome, *, build_s: float) -> Plan:
    d = data_of(m)
    sc = d.scenario
    h, terms = d.h, sc.terms
    labels = sc.periods.labels()
    dec = read_decisions(m)
    installed = racks_installed(d, dec.racks_built)
    mw = available_mw(d, dec.blocks_ordered)
    rack = {r.id: r for r in sc.rack_types}
    site = {s.id: s for s in sc.sites}
    tenant = {k.id: k for k in sc.tenants}

    # Per scenario and quarter money (undiscounted), and per pool served GPU-hours.
    served_pool: dict[tuple[str, str, int, str], float] = defaultdict(float)
    rev: dict[tuple[int, str], float] = defaultdict(float)  # (t, s)
    credit_loss: dict[tuple[int, str], float] = defaultdict(float)
    energy: dict[tuple[int, str], float] = defaultdict(float)
    rev_site: dict[tuple[str, int, str], float] = defaultdict(float)  # (i, t, s)
    served_total: dict[str, float] = defaultdict(float)  # s
    # Per pool and per tenant and scenario, the factors the loop multiplies by (the same
    # products, in the same order, as written out per record).
    energy_rate = {(i, r): d.energy_usd_per_gpu_hour(i, r) for i in d.site_ids for r in d.rack_ids_at[i]}
    unrepaid = {
        (k, s): tenant[k].token_credit_share * (1 - tenant[k].repayment_share(s))
        for k in tenant
        for s in d.scenario_ids
    }
    for (k, i, r, t, s), x in dec.served.items():
        price = tenant[k].price_usd_per_gpu_hour
        served_pool[i, r, t, s] += x
        rev[t, s] += price * x
        rev_site[i, t, s] += price * x
        credit_loss[t, s] += unrepaid[k, s] * price * x
        energy[t, s] += energy_rate[i, r] * x
        served_total[s] += x
    unserved_total: dict[str, float] = defaultdict(float)
    for (_k, _t, s), x in dec.unserved.items():
        unserved_total[s] += x

    # Buyback (docs/model.md, "Buyback"): the covered share of the capacity no tenant wanted,
    # max(0, h x GPUs - served at the site - unserved demand of the tenants that may use it).
    unserved_at: dict[tuple[str, int, str], float] = defaultdict(float)  # (i, t, s)
    for (k, t, s), x in dec.unserved.items():
        for i in d.site_ids:
            if k in d.tenants_at[i]:
                unserved_at[i, t, s] += x
    capacity_at: dict[tuple[str, int], float] = defaultdict(float)  # (i, t)
    for (i, r, t), n in installed.items():
        capacity_at[i, t] += h * rack[r].gpus_per_rack * n
    buyback_hours = defaultdict(float)  # (i, t, s)
    for i in d.site_ids:
        for t in d.periods:
            for s in d.scenario_ids:
                sold = sum(served_pool.get((i, r, t, s), 0.0) for r in d.rack_ids_at[i])
                no_buyer = capacity_at[i, t] - sold - unserved_at[i, t, s]
                buyback_hours[i, t, s] = terms.buyback_share * max(0.0, no_buyer)

    # First-stage money per quarter (scenario-independent): every new rack's capex and the
    # guarantor's margin on it are spread alike over its installed quarters.
    capex: dict[int, float] = defaultdict(float)
    opex: dict[int, float] = defaultdict(float)
    margin: dict[int, float] = defaultdict(float)
    power_capex: dict[int, float] = defaultdict(float)
    for (i, r, t), n in installed.items():
        amortised = rack[r].capex_usd / rack[r].lifetime_periods * (n - d.existing_racks.get((i, r), 0))
        capex[t] += amortised
        margin[t] += terms.guarantor_hardware_margin * amortised
        opex[t] += rack[r].opex_usd_per_rack_period * n
    for (i, t), value in mw.items():
        s_ = site[i]
        power_capex[t] += (
            s_.power_capex_usd_per_mw * (value - s_.existing_mw) / s_.power_asset_lifetime_periods
        )

    outcomes = []
    values = []
    by_party_values: dict[str, list[float]] = defaultdict(list)
    perspective = sc.objective.perspective
    for s in d.scenario_ids:
        cloud = guarantor = 0.0
        rev_s = bb_s = rs_s = cl_s = 0.0
        for t in d.periods:
            bb = terms.buyback_price_usd_per_gpu_hour * sum(buyback_hours[i, t, s] for i in d.site_ids)
            rs = terms.revenue_share * rev[t, s]
            cloud += d.discount[t] * (
                rev[t, s] - rs + bb - energy[t, s] - capex[t] - opex[t] - power_capex[t]
            )
            guarantor += d.discount[t] * (margin[t] + rs - bb - credit_loss[t, s])
            rev_s, bb_s, rs_s, cl_s = rev_s + rev[t, s], bb_s + bb, rs_s + rs, cl_s + credit_loss[t, s]
        by_party = {"cloud": cloud, "guarantor": guarantor, "syndicate": cloud + guarantor}
        values.append(by_party[perspective])
        for party, value in by_party.items():
            by_party_values[party].append(value)
        outcomes.append(
            ScenarioOutcome(
                scenario=s,
                probability=d.probability[s],
                cloud_value_usd=cloud,
                guarantor_value_usd=guarantor,
                syndicate_value_usd=cloud + guarantor,
                objective_value_usd=by_party[perspective],
                rental_revenue_usd=rev_s,
                buyback_usd=bb_s,
                revenue_share_usd=rs_s,
                credit_loss_usd=cl_s,
                served_gpu_hours=served_total[s],
                unserved_gpu_hours=unserved_total[s],
            )
        )
    probabilities = [d.probability[s] for s in d.scenario_ids]
    expected = sum(p * v for p, v in zip(probabilities, values, strict=True))
    alpha = sc.objective.cvar_alpha
    cvar_usd = cvar(values, probabilities, alpha) if alpha is not None else None
    w = sc.objective.cvar_weight
    objective_usd = (1 - w) * expected + w * cvar_usd if w > 0 and cvar_usd is not None else expected

    participation = sc.participation
    needs = {"cloud": participation.cloud, "guarantor": participation.guarantor}
    parties = [
        PartyFigures(
            party=party,
            expected_value_usd=sum(p * v for p, v in zip(probabilities, party_values, strict=True)),
            cvar_alpha=participation.cvar_alpha,
            cvar_usd=cvar(party_values, probabilities, participation.cvar_alpha),
            worst_case_value_usd=min(party_values),
            min_expected_value_usd=needs[party].min_expected_value_usd if party in needs else None,
            min_cvar_usd=needs[party].min_cvar_usd if party in needs else None,
        )
        for party, party_values in by_party_values.items()
    ]
    exposure_per_gpu_usd = terms.buyback_share * terms.buyback_price_usd_per_gpu_hour * h

    site_periods = []
    for i in d.site_ids:
        for t in d.periods:
            racks_by_type = {r: installed[i, r, t] for r in d.rack_ids_at[i]}
            gpus = sum(rack[r].gpus_per_rack * n for r, n in racks_by_type.items())
            served_exp = sum(
                d.probability[s] * served_pool.get((i, r, t, s), 0.0)
                for r in d.rack_ids_at[i]
                for s in d.scenario_ids
            )
            bb_hours = sum(d.probability[s] * buyback_hours[i, t, s] for s in d.scenario_ids)
            site_periods.append(
                SitePeriodSummary(
                    site=i,
                    period=labels[t],
                    racks_by_type=racks_by_type,
                    gpus_installed=gpus,
                    available_mw=mw[i, t],
                    it_load_mw=sum(
                        rack[r].kw_per_rack / 1000.0 * site[i].pue * n for r, n in racks_by_type.items()
                    ),
                    expected_utilisation=served_exp / (h * gpus) if gpus else 0.0,
                    expected_buyback_gpu_hours=bb_hours,
                    expected_buyback_usd=terms.buyback_price_usd_per_gpu_hour * bb_hours,
                    expected_revenue_share_usd=terms.revenue_share
                    * sum(d.probability[s] * rev_site[i, t, s] for s in d.scenario_ids),
                    buyback_exposure_usd=exposure_per_gpu_usd * gpus,
                )
            )

    racks = [
        RackDecision(
            site=i,
            rack_type=r,
            period=labels[t],
            racks_built=dec.racks_built.get((i, r, t), 0),
            racks_installed=n,
            gpus_installed=n * rack[r].gpus_per_rack,
            nodes_installed=n * rack[r].nodes_per_rack,
        )
        for (i, r, t), n in installed.items()
    ]
    power = [
        PowerDecision(
            site=i,
            period=labels[t],
            blocks_ordered=dec.blocks_ordered.get((i, t), 0),
            available_mw=value,
            it_load_mw=sum(
                rack[r].kw_per_rack / 1000.0 * site[i].pue * installed[i, r, t] for r in d.rack_ids_at[i]
            ),
        )
        for (i, t), value in mw.items()
    ]
    quotas = [
        QuotaDecision(tenant=k, site=i, rack_type=r, period=labels[t], quota_gpus=q)
        for (k, i, r, t), q in dec.quota_gpus.items()
    ]
    served = [
        ServedRecord(scenario=s, tenant=k, site=i, rack_type=r, period=labels[t], served_gpu_hours=x)
        for (k, i, r, t, s), x in dec.served.items()
    ]
    unserved = [
        UnservedRecord(scenario=s, tenant=k, period=labels[t], unserved_gpu_hours=x)
        for (k, t, s), x in dec.unserved.items()
        if x
    ]
    solver = SolverReport(
        interface=outcome.interface,
        status=outcome.status,
        mip_gap=outcome.mip_gap,
        objective_usd=outcome.objective_usd if outcome.objective_usd is not None else math.nan,
        best_bound_usd=outcome.best_bound_usd,
        rows=outcome.rows,
        columns=outcome.columns,
        nonzeros=outcome.nonzeros,
        integer_columns=outcome.integer_columns,
        build_s=build_s,
        handoff_s=outcome.handoff_s,
        solve_s=outcome.solve_s,
        start=outcome.start,
        start_s=outcome.start_s,
        start_usd=outcome.start_usd,
        highs_version=outcome.highs_version,
        method=outcome.method,
        method_note=outcome.method_note,
    )
    return Plan(
        scenario_name=sc.name,
        scenario_hash=sc.content_hash(),
        created_at=datetime.now(UTC),
        perspective=perspective,
        cvar_weight=w,
        hours_per_period=h,
        periods=labels,
        discount_factors=list(d.discount),
        **plan_catalogue(sc),
        scenario_probabilities=dict(d.probability),
        racks=racks,
        power=power,
        quotas=quotas,
        served=served,
        unserved=unserved,
        site_periods=site_periods,
        outcomes=outcomes,
        risk=RiskFigures(
            expected_value_usd=expected,
            cvar_alpha=alpha,
            cvar_usd=cvar_usd,
            worst_case_value_usd=min(values),
            best_case_value_usd=max(values),
        ),
        parties=parties,
        solver=solver,
        verification=Verification(
            passed=False,
            checks_run=0,
            violations=["not verified yet"],
            objective_recomputed_usd=objective_usd,
        ),
    )
