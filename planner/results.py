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
from scipy.optimize import linprog
from scipy.sparse import csc_array

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


MAX_SITE_CLASSES = 12
"""Most classes of interchangeable sites whose 2^C cuts `matched_refused_gpu_hours` enumerates
(4,096 cuts x the tenants x the quarters and scenarios: 75 ms at (12, ., 6, 20, 50), 12 classes);
beyond, one LP."""


def matched_refused_gpu_hours(
    refused: dict[tuple[str, int, str], float],
    unsold: dict[tuple[str, int, str], float],
    tenants_at: dict[str, list[str]],
    *,
    max_site_classes: int = MAX_SITE_CLASSES,
) -> dict[tuple[int, str], float]:
    """M* per (quarter, scenario) with refused hours: the most refused GPU-hours (`refused`, by
    tenant, quarter, scenario) that can be placed on unsold GPU-hours (`unsold`, by site, quarter,
    scenario) at sites their tenant may use (`tenants_at`: site -> tenants), each hour once.

    A bipartite max-flow, found by its min cut. Sites with the same tenants are interchangeable, so
    their unsold hours pool into one class (a site's tenants follow from its jurisdiction: the
    classes are at most the jurisdictions). A cut keeps a set S of classes on the source side and
    with them every tenant that may use only classes in S, so M* = min over S of Σ_{c in S}
    unsold_c + Σ_{k may use a class outside S} refused_k, evaluated for every S and every quarter
    and scenario (1,024 blocks at a time, `CUT_CHUNK_BLOCKS`): exact (a sum of the capacities themselves) and fast (1 ms on the bundled
    example; 20-35 ms for 10 classes at (10, ., 6, 20, 50) with every tenant refused and every
    site unsold in every quarter and scenario). Why
    not `scipy.sparse.csgraph.maximum_flow`: it takes int32 capacities, and GPU-hours are
    fractional and reach 1e8 at a site, so an integer scale overflows or rounds away more than
    the verifier's US$1. Beyond `max_site_classes` classes, one LP for every block (`_matched_by_lp`)."""
    blocks = sorted({(t, s) for (_k, t, s), hours in refused.items() if hours > 0.0})
    if not blocks:
        return {}
    classes: dict[frozenset[str], int] = {}
    class_of = {i: classes.setdefault(frozenset(ks), len(classes)) for i, ks in tenants_at.items()}
    if len(classes) > max_site_classes:
        return _matched_by_lp(refused, unsold, tenants_at)
    tenants = sorted({k for (k, _t, _s), hours in refused.items() if hours > 0.0})
    column = {block: j for j, block in enumerate(blocks)}
    row = {k: j for j, k in enumerate(tenants)}
    pooled = np.zeros((len(classes), len(blocks)))  # [C, B] unsold hours per class
    for (i, t, s), hours in unsold.items():
        j = column.get((t, s))
        if j is not None and i in class_of:
            pooled[class_of[i], j] += hours
    wanted = np.zeros((len(tenants), len(blocks)))  # [K, B] refused hours
    for (k, t, s), hours in refused.items():
        if hours > 0.0:
            wanted[row[k], column[t, s]] = hours
    uses = np.zeros(len(tenants), dtype=np.int64)  # bitmask of the classes each tenant may use
    for members, c in classes.items():
        for k in members:
            if k in row:
                uses[row[k]] |= 1 << c
    cuts = np.arange(1 << len(classes), dtype=np.int64)  # S as bitmasks
    in_cut = ((cuts[:, None] >> np.arange(len(classes))[None, :]) & 1).astype(np.float64)
    cut_off = ((uses[None, :] & ~cuts[:, None]) != 0).astype(np.float64)  # tenant's hours cut
    least = np.concatenate(
        [  # [2^C, chunk] at a time: at 12 classes and 1,000 scenarios the whole was 1.25 GB
            (
                in_cut @ pooled[:, j : j + CUT_CHUNK_BLOCKS] + cut_off @ wanted[:, j : j + CUT_CHUNK_BLOCKS]
            ).min(axis=0)
            for j in range(0, len(blocks), CUT_CHUNK_BLOCKS)
        ]
    )
    return dict(zip(blocks, least.tolist(), strict=True))


CUT_CHUNK_BLOCKS = 1024
"""(quarter, scenario) blocks whose cuts are evaluated at once: [2^C, 1024] float64 is at most
32 MB at 12 classes."""


def _matched_by_lp(
    refused: dict[tuple[str, int, str], float],
    unsold: dict[tuple[str, int, str], float],
    tenants_at: dict[str, list[str]],
) -> dict[tuple[int, str], float]:
    """`matched_refused_gpu_hours` as one LP (max Σ flow; each tenant's within its refused hours,
    each site's within its unsold hours) for every quarter and scenario at once, by HiGHS's dual
    simplex through scipy: a vertex is sums of the capacities (scaled to a largest of 1), and the
    blocks are independent, so the sum's optimum is each block's. 1.3-2 s on that worst case
    (scipy's per-call overhead rules out one LP per block: 15 ms each)."""
    sites_of: dict[str, list[str]] = defaultdict(list)
    for i, tenants in tenants_at.items():
        for k in tenants:
            sites_of[k].append(i)
    row_of: dict[tuple[str, str, int, str], int] = {}
    bound: list[float] = []
    arc_rows: list[tuple[int, int]] = []
    arc_block: list[tuple[int, str]] = []
    out: dict[tuple[int, str], float] = defaultdict(float)

    def row(side: str, who: str, t: int, s: str, cap: float) -> int:
        key = (side, who, t, s)
        if key not in row_of:
            row_of[key] = len(bound)
            bound.append(cap)
        return row_of[key]

    for (k, t, s), hours in refused.items():
        if hours <= 0.0:
            continue
        out[t, s] += 0.0
        for i in sites_of.get(k, []):
            room = unsold.get((i, t, s), 0.0)
            if room > 0.0:
                arc_rows.append((row("k", k, t, s, hours), row("i", i, t, s, room)))
                arc_block.append((t, s))
    if not arc_rows:
        return dict(out)
    scale = max(bound)
    n = len(arc_rows)
    rows = np.array(arc_rows, dtype=np.int64).ravel()
    columns = np.repeat(np.arange(n), 2)
    a = csc_array((np.ones(2 * n), (rows, columns)), shape=(len(bound), n))
    result = linprog(-np.ones(n), A_ub=a, b_ub=np.array(bound) / scale, bounds=(0.0, None), method="highs-ds")
    if result.status != 0:  # pragma: no cover - a max-flow LP is feasible (0) and bounded
        raise RuntimeError(f"the buyback matching LP ended with status {result.status}: {result.message}")
    for block, x in zip(arc_block, (np.clip(result.x, 0.0, None) * scale).tolist(), strict=True):
        out[block] += x
    # Round-off never places more than is refused, or more than is unsold, in a block.
    most: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (side, _who, t, s), j in row_of.items():
        most[t, s][side == "i"] += bound[j]
    return {block: min(x, *most[block]) if block in most else x for block, x in out.items()}


def buyback_gpu_hours(unsold_gpu_hours: list[float], matched_gpu_hours: float, share: float) -> float:
    """One quarter-scenario's buyback GPU-hours by the matching rule (docs/model.md, "Buyback"):
    the covered `share` of the unsold hours (per site) that no refused hour was placed on,
    `matched_gpu_hours` being M* (`matched_refused_gpu_hours`). A max flow never exceeds the
    unsold hours; the floor at 0 only drops round-off."""
    return share * max(0.0, sum(unsold_gpu_hours) - matched_gpu_hours)


def attribute_pro_rata(
    total: dict[tuple[int, str], float], unsold: dict[tuple[str, int, str], float]
) -> dict[tuple[str, int, str], float]:
    """Each site's part of its quarter-scenario's buyback (`total`, by (t, s)): pro rata to its
    unsold hours (`unsold`, by (i, t, s)), 0 where nothing is unsold.

    A convention for the tables only (what is billed, and what the objective reads, is the total):
    the matching rule prices a quarter-scenario's unsold hours together, and which site's hours
    had no buyer is not unique where a refused tenant could use several. Pro rata is
    deterministic, does not depend on how the max flow was found, and sums to the total."""
    pooled: dict[tuple[int, str], float] = defaultdict(float)
    for (_i, t, s), hours in unsold.items():
        pooled[t, s] += hours
    return {
        (i, t, s): total.get((t, s), 0.0) * hours / pooled[t, s] if hours > 0.0 else 0.0
        for (i, t, s), hours in unsold.items()
    }


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

    # Buyback (docs/model.md, "Buyback"), the matching rule: per quarter and scenario, the covered
    # share of the unsold hours no refused tenant could take, each refused hour placed once.
    capacity_at: dict[tuple[str, int], float] = defaultdict(float)  # (i, t)
    for (i, r, t), n in installed.items():
        capacity_at[i, t] += h * rack[r].gpus_per_rack * n
    unsold: dict[tuple[str, int, str], float] = {}  # (i, t, s)
    for i in d.site_ids:
        for t in d.periods:
            for s in d.scenario_ids:
                sold = sum(served_pool.get((i, r, t, s), 0.0) for r in d.rack_ids_at[i])
                unsold[i, t, s] = max(0.0, capacity_at[i, t] - sold)
    # No buyback terms (a no-deal plan's): nothing to match, every figure 0.
    has_buyback = terms.buyback_share > 0.0
    matched = matched_refused_gpu_hours(dec.unserved, unsold, d.tenants_at) if has_buyback else {}
    buyback_total = {
        (t, s): buyback_gpu_hours(
            [unsold[i, t, s] for i in d.site_ids], matched.get((t, s), 0.0), terms.buyback_share
        )
        for t in d.periods
        for s in d.scenario_ids
    }
    buyback_hours = attribute_pro_rata(buyback_total, unsold)  # (i, t, s): the tables' share

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
            bb = terms.buyback_price_usd_per_gpu_hour * buyback_total[t, s]
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
