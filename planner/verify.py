"""Independent verification of a plan against its scenario (docs/model.md).

This module shares no code with the optimisation model: it reads only the scenario and the plan's
own decisions, recomputes every derived quantity and money figure by plain arithmetic, checks
every constraint, and compares the plan's reported figures with the recomputed ones. A plan that
fails is never written as a success.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from planner.plan import Plan, Verification
from planner.scenario import Scenario

REL_TOL = 1e-6
ABS_TOL_QUANTITY = 1e-3  # GPU-hours, GPUs, MW
ABS_TOL_USD = 1.0
MAX_MESSAGES = 50


def _close(a: float, b: float, abs_tol: float) -> bool:
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), abs_tol)


def _over(lhs: float, rhs: float, abs_tol: float = ABS_TOL_QUANTITY) -> bool:
    """True when lhs <= rhs is violated beyond tolerance."""
    return lhs - rhs > max(REL_TOL * max(abs(lhs), abs(rhs)), abs_tol)


@dataclass
class _Report:
    checks_run: int = 0
    violations: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        self.checks_run += 1
        if not ok:
            self.violations.append(message)


@dataclass
class _Recomputed:
    """Quantities derived from the plan's decisions, keyed by ids and period index."""

    racks_built: dict[tuple[str, str, int], float]
    racks_installed: dict[tuple[str, str, int], float]
    available_mw: dict[tuple[str, int], float]
    served: dict[tuple[str, str, str, int, str], float]
    unserved: dict[tuple[str, int, str], float]
    quota: dict[tuple[str, str, str, int], float]


def _site_racks(scenario: Scenario) -> dict[str, list[str]]:
    return {
        s.id: [r.id for r in scenario.rack_types if s.rack_types is None or r.id in s.rack_types]
        for s in scenario.sites
    }


def _may_use(scenario: Scenario, tenant_id: str, site_id: str) -> bool:
    allowed = scenario.tenant(tenant_id).allowed_jurisdictions
    return allowed is None or scenario.site(site_id).jurisdiction in allowed


def check_identity(scenario: Scenario, plan: Plan, report: _Report) -> None:
    """The plan must be of this scenario: same hash, horizon, ids and probabilities."""
    report.check(
        plan.scenario_hash == scenario.content_hash(),
        f"scenario_hash: plan was solved from {plan.scenario_hash[:19]}…, "
        f"this scenario is {scenario.content_hash()[:19]}…",
    )
    report.check(plan.periods == scenario.periods.labels(), "periods: plan's quarters differ from the scenario's")
    report.check(
        _close(plan.hours_per_period, scenario.periods.hours_per_period, 1e-9),
        f"hours_per_period: {plan.hours_per_period} != {scenario.periods.hours_per_period}",
    )
    factors = scenario.periods.discount_factors()
    report.check(
        len(plan.discount_factors) == len(factors)
        and all(_close(a, b, 1e-12) for a, b in zip(plan.discount_factors, factors, strict=True)),
        "discount_factors: plan's discount factors differ from the scenario's rate",
    )
    report.check({s.id for s in plan.sites} == {s.id for s in scenario.sites}, "sites: ids differ")
    report.check(
        {r.id for r in plan.rack_types} == {r.id for r in scenario.rack_types}, "rack_types: ids differ"
    )
    report.check({t.id for t in plan.tenants} == {t.id for t in scenario.tenants}, "tenants: ids differ")
    probabilities = {c.id: c.probability for c in scenario.scenarios}
    report.check(
        plan.scenario_probabilities.keys() == probabilities.keys()
        and all(_close(plan.scenario_probabilities[k], v, 1e-12) for k, v in probabilities.items()),
        "scenario_probabilities: differ from the scenario file",
    )
    report.check(
        plan.perspective == scenario.objective.perspective
        and _close(plan.cvar_weight, scenario.objective.cvar_weight, 1e-12),
        "objective: plan's perspective or cvar_weight differs from the scenario's",
    )


def recompute_first_stage(scenario: Scenario, plan: Plan, report: _Report) -> _Recomputed:
    """Check first-stage records and derive installed racks and energised MW from them."""
    n = scenario.periods.count_quarters
    index = {label: t for t, label in enumerate(scenario.periods.labels())}
    site_racks = _site_racks(scenario)
    tenants = {t.id for t in scenario.tenants}
    scenarios = {c.id for c in scenario.scenarios}

    built: dict[tuple[str, str, int], float] = defaultdict(float)
    for rec in plan.racks:
        ok = rec.site in site_racks and rec.rack_type in site_racks[rec.site] and rec.period in index
        report.check(ok, f"racks {rec.site}/{rec.rack_type} {rec.period}: unknown or disallowed site, rack type or quarter")
        if not ok:
            continue
        report.check(
            rec.racks_built >= 0 and float(rec.racks_built).is_integer(),
            f"integrality {rec.site}/{rec.rack_type} {rec.period}: racks_built = {rec.racks_built} "
            "must be a whole number ≥ 0",
        )
        built[(rec.site, rec.rack_type, index[rec.period])] += rec.racks_built

    installed: dict[tuple[str, str, int], float] = {}
    for site in scenario.sites:
        for rack_id in site_racks[site.id]:
            life = scenario.rack_type(rack_id).lifetime_periods
            existing = site.existing_racks.get(rack_id, 0)
            for t in range(n):
                window = sum(built.get((site.id, rack_id, tau), 0.0) for tau in range(max(0, t - life + 1), t + 1))
                installed[(site.id, rack_id, t)] = existing + window

    ordered: dict[tuple[str, int], float] = defaultdict(float)
    for rec in plan.power:
        site_ok = rec.site in site_racks and rec.period in index
        report.check(site_ok, f"power {rec.site} {rec.period}: unknown site or quarter")
        if not site_ok:
            continue
        t = index[rec.period]
        site = scenario.site(rec.site)
        report.check(
            rec.blocks_ordered >= 0 and float(rec.blocks_ordered).is_integer(),
            f"integrality {rec.site} {rec.period}: blocks_ordered = {rec.blocks_ordered} must be a whole number ≥ 0",
        )
        report.check(
            rec.blocks_ordered == 0 or t + site.power_lead_time_periods <= n - 1,
            f"block_timing {rec.site} {rec.period}: {rec.blocks_ordered} block(s) ordered that cannot arrive "
            f"within the horizon (lead time {site.power_lead_time_periods} quarters)",
        )
        ordered[(rec.site, t)] += rec.blocks_ordered

    available: dict[tuple[str, int], float] = {}
    for site in scenario.sites:
        for t in range(n):
            arrived = sum(ordered.get((site.id, tau), 0.0) for tau in range(0, t - site.power_lead_time_periods + 1))
            available[(site.id, t)] = site.existing_mw + site.power_block_mw * arrived

    quota: dict[tuple[str, str, str, int], float] = defaultdict(float)
    for rec in plan.quotas:
        ok = (
            rec.tenant in tenants
            and rec.site in site_racks
            and rec.rack_type in site_racks[rec.site]
            and rec.period in index
        )
        report.check(ok, f"quota {rec.tenant}@{rec.site}/{rec.rack_type} {rec.period}: unknown reference")
        if not ok:
            continue
        report.check(
            rec.quota_gpus >= -ABS_TOL_QUANTITY,
            f"quota {rec.tenant}@{rec.site}/{rec.rack_type} {rec.period}: negative quota {rec.quota_gpus}",
        )
        report.check(
            rec.quota_gpus <= ABS_TOL_QUANTITY or _may_use(scenario, rec.tenant, rec.site),
            f"jurisdiction {rec.tenant}@{rec.site} {rec.period}: quota of {rec.quota_gpus:.1f} GPUs at a site in "
            f"{scenario.site(rec.site).jurisdiction}, outside the tenant's allowed jurisdictions",
        )
        quota[(rec.tenant, rec.site, rec.rack_type, index[rec.period])] += rec.quota_gpus

    served: dict[tuple[str, str, str, int, str], float] = defaultdict(float)
    for rec in plan.served:
        ok = (
            rec.scenario in scenarios
            and rec.tenant in tenants
            and rec.site in site_racks
            and rec.rack_type in site_racks[rec.site]
            and rec.period in index
        )
        report.check(ok, f"served {rec.tenant}@{rec.site}/{rec.rack_type} {rec.period} [{rec.scenario}]: unknown reference")
        if not ok:
            continue
        report.check(
            rec.served_gpu_hours >= -ABS_TOL_QUANTITY,
            f"served {rec.tenant}@{rec.site} {rec.period} [{rec.scenario}]: negative GPU-hours {rec.served_gpu_hours}",
        )
        report.check(
            rec.served_gpu_hours <= ABS_TOL_QUANTITY or _may_use(scenario, rec.tenant, rec.site),
            f"jurisdiction {rec.tenant}@{rec.site} {rec.period} [{rec.scenario}]: {rec.served_gpu_hours:,.0f} "
            f"GPU-hours served in {scenario.site(rec.site).jurisdiction}, outside the tenant's allowed jurisdictions",
        )
        served[(rec.tenant, rec.site, rec.rack_type, index[rec.period], rec.scenario)] += rec.served_gpu_hours

    unserved: dict[tuple[str, int, str], float] = defaultdict(float)
    for rec in plan.unserved:
        ok = rec.tenant in tenants and rec.period in index and rec.scenario in scenarios
        report.check(ok, f"unserved {rec.tenant} {rec.period} [{rec.scenario}]: unknown reference")
        if not ok:
            continue
        report.check(
            rec.unserved_gpu_hours >= -ABS_TOL_QUANTITY,
            f"unserved {rec.tenant} {rec.period} [{rec.scenario}]: negative GPU-hours {rec.unserved_gpu_hours}",
        )
        unserved[(rec.tenant, index[rec.period], rec.scenario)] += rec.unserved_gpu_hours

    return _Recomputed(built, installed, available, served, unserved, quota)


def check_reported_first_stage(scenario: Scenario, plan: Plan, derived: _Recomputed, report: _Report) -> None:
    """The plan's reported installed racks, GPUs, nodes, MW must follow from its decisions."""
    index = {label: t for t, label in enumerate(scenario.periods.labels())}
    for rec in plan.racks:
        key = (rec.site, rec.rack_type, index.get(rec.period, -1))
        if key not in derived.racks_installed:
            continue
        rack = scenario.rack_type(rec.rack_type)
        n_racks = derived.racks_installed[key]
        report.check(
            _close(rec.racks_installed, n_racks, ABS_TOL_QUANTITY)
            and _close(rec.gpus_installed, n_racks * rack.gpus_per_rack, ABS_TOL_QUANTITY)
            and _close(rec.nodes_installed, n_racks * rack.nodes_per_rack, ABS_TOL_QUANTITY),
            f"reported_racks {rec.site}/{rec.rack_type} {rec.period}: plan says {rec.racks_installed} racks "
            f"({rec.gpus_installed} GPUs, {rec.nodes_installed} nodes), decisions give {n_racks:g} racks",
        )
    for rec in plan.power:
        t = index.get(rec.period)
        if t is None or (rec.site, t) not in derived.available_mw:
            continue
        report.check(
            _close(rec.available_mw, derived.available_mw[(rec.site, t)], ABS_TOL_QUANTITY),
            f"reported_power {rec.site} {rec.period}: plan says {rec.available_mw:.3f} MW available, "
            f"blocks give {derived.available_mw[(rec.site, t)]:.3f} MW",
        )
        report.check(
            _close(rec.it_load_mw, _it_load_mw(scenario, derived, rec.site, t), ABS_TOL_QUANTITY),
            f"reported_power {rec.site} {rec.period}: plan says IT load {rec.it_load_mw:.3f} MW, "
            f"racks give {_it_load_mw(scenario, derived, rec.site, t):.3f} MW",
        )


def _it_load_mw(scenario: Scenario, derived: _Recomputed, site_id: str, t: int) -> float:
    site = scenario.site(site_id)
    return sum(
        derived.racks_installed[(site_id, r, t)] * scenario.rack_type(r).kw_per_rack / 1000.0 * site.pue
        for r in _site_racks(scenario)[site_id]
    )


def _gpus(scenario: Scenario, derived: _Recomputed, site_id: str, rack_id: str, t: int) -> float:
    return derived.racks_installed[(site_id, rack_id, t)] * scenario.rack_type(rack_id).gpus_per_rack


def check_first_stage_constraints(scenario: Scenario, derived: _Recomputed, report: _Report) -> None:
    """power_fits, power_cap, gpu_cap, build_rate, block_rate, quota_fits."""
    labels = scenario.periods.labels()
    site_racks = _site_racks(scenario)
    built_per_site: dict[tuple[str, int], float] = defaultdict(float)
    for (site_id, _r, t), count in derived.racks_built.items():
        built_per_site[(site_id, t)] += count
    quota_per_pool: dict[tuple[str, str, int], float] = defaultdict(float)
    for (_k, i, r, t), q in derived.quota.items():
        quota_per_pool[(i, r, t)] += q
    for site in scenario.sites:
        for t, label in enumerate(labels):
            need = _it_load_mw(scenario, derived, site.id, t)
            have = derived.available_mw[(site.id, t)]
            report.check(
                not _over(need, have),
                f"power_fits {site.id} {label}: racks need {need:.1f} MW but {have:.1f} MW is available "
                f"(excess {need - have:.1f} MW)",
            )
            report.check(
                not _over(have, site.power_cap_mw),
                f"power_cap {site.id} {label}: {have:.1f} MW energised exceeds the cap of {site.power_cap_mw:.1f} MW",
            )
            gpus = sum(_gpus(scenario, derived, site.id, r, t) for r in site_racks[site.id])
            report.check(
                not _over(gpus, site.gpu_cap),
                f"gpu_cap {site.id} {label}: {gpus:,.0f} GPUs installed exceed the cap of {site.gpu_cap:,}",
            )
            built = built_per_site[(site.id, t)]
            report.check(
                not _over(built, site.max_racks_built_per_period),
                f"build_rate {site.id} {label}: {built:g} racks built exceed the limit of "
                f"{site.max_racks_built_per_period} per quarter",
            )
            for r in site_racks[site.id]:
                granted = quota_per_pool.get((site.id, r, t), 0.0)
                pool = _gpus(scenario, derived, site.id, r, t)
                report.check(
                    not _over(granted, pool),
                    f"quota_fits {site.id}/{r} {label}: tenant quotas total {granted:,.1f} GPUs but the pool has "
                    f"{pool:,.0f} (overcommit {granted - pool:,.1f})",
                )


def check_block_rate(scenario: Scenario, plan: Plan, report: _Report) -> None:
    for rec in plan.power:
        if rec.site not in {s.id for s in scenario.sites}:
            continue
        limit = scenario.site(rec.site).max_power_blocks_per_period
        report.check(
            not _over(rec.blocks_ordered, limit),
            f"block_rate {rec.site} {rec.period}: {rec.blocks_ordered} blocks ordered exceed the limit of {limit} per quarter",
        )


def check_second_stage_constraints(scenario: Scenario, derived: _Recomputed, report: _Report) -> None:
    """serve_within_capacity, serve_within_quota, demand_balance, per scenario."""
    h = scenario.periods.hours_per_period
    labels = scenario.periods.labels()
    per_pool: dict[tuple[str, str, int, str], float] = defaultdict(float)
    per_tenant: dict[tuple[str, int, str], float] = defaultdict(float)
    for (k, i, r, t, s), gh in derived.served.items():
        per_pool[(i, r, t, s)] += gh
        per_tenant[(k, t, s)] += gh
        q = derived.quota.get((k, i, r, t), 0.0)
        report.check(
            not _over(gh, h * q),
            f"serve_within_quota {k}@{i}/{r} {labels[t]} [{s}]: {gh:,.0f} GPU-hours served but the quota of "
            f"{q:,.1f} GPUs allows {h * q:,.0f}",
        )
    for (i, r, t, s), gh in per_pool.items():
        cap = h * _gpus(scenario, derived, i, r, t)
        report.check(
            not _over(gh, cap),
            f"serve_within_capacity {i}/{r} {labels[t]} [{s}]: {gh:,.0f} GPU-hours served but {cap:,.0f} installed",
        )
    for tenant in scenario.tenants:
        for case in scenario.scenarios:
            for t, label in enumerate(labels):
                demand = h * tenant.demand_gpus[case.id][t]
                got = per_tenant.get((tenant.id, t, case.id), 0.0) + derived.unserved.get((tenant.id, t, case.id), 0.0)
                report.check(
                    _close(got, demand, ABS_TOL_QUANTITY),
                    f"demand_balance {tenant.id} {label} [{case.id}]: served + unserved = {got:,.0f} GPU-hours, "
                    f"demand is {demand:,.0f}",
                )


@dataclass(frozen=True)
class Money:
    """One scenario's undiscounted sums and discounted values (US$)."""

    cloud: float
    guarantor: float
    rev: float
    bb: float
    rs: float
    cl: float
    served: float
    unserved: float


def recompute_money(scenario: Scenario, derived: _Recomputed) -> tuple[dict[str, Money], dict]:
    """Per-scenario values and per-site-quarter expectations, straight from docs/model.md."""
    terms = scenario.terms
    h = scenario.periods.hours_per_period
    d = scenario.periods.discount_factors()
    n = scenario.periods.count_quarters
    site_racks = _site_racks(scenario)
    prob = {c.id: c.probability for c in scenario.scenarios}

    # Scenario-independent per-quarter costs and guarantor margin.
    fixed_cost = [0.0] * n
    margin = [0.0] * n
    for site in scenario.sites:
        for t in range(n):
            fixed_cost[t] += (
                site.power_capex_usd_per_mw
                * (derived.available_mw[(site.id, t)] - site.existing_mw)
                / site.power_asset_lifetime_periods
            )
            for r in site_racks[site.id]:
                rack = scenario.rack_type(r)
                n_racks = derived.racks_installed[(site.id, r, t)]
                new = n_racks - site.existing_racks.get(r, 0)
                fixed_cost[t] += rack.capex_usd / rack.lifetime_periods * new + rack.opex_usd_per_rack_period * n_racks
                margin[t] += (
                    terms.guarantor_hardware_margin * rack.capex_usd * derived.racks_built.get((site.id, r, t), 0.0)
                )

    served_pool: dict[tuple[str, str, int, str], float] = defaultdict(float)
    rev_site: dict[tuple[str, int, str], float] = defaultdict(float)
    rev = defaultdict(float)  # (t, s)
    cl = defaultdict(float)
    energy = defaultdict(float)
    for (k, i, r, t, s), gh in derived.served.items():
        tenant = scenario.tenant(k)
        site = scenario.site(i)
        rack = scenario.rack_type(r)
        money = tenant.price_usd_per_gpu_hour * gh
        rev[(t, s)] += money
        rev_site[(i, t, s)] += money
        cl[(t, s)] += tenant.token_credit_share * (1.0 - tenant.repayment_share(s)) * money
        energy[(t, s)] += site.power_price_usd_per_mwh * site.pue * rack.kw_per_rack / 1000.0 / rack.gpus_per_rack * gh
        served_pool[(i, r, t, s)] += gh

    buyback_gh: dict[tuple[str, str, int, str], float] = {}
    buyback_ts: dict[tuple[int, str], float] = defaultdict(float)
    for site in scenario.sites:
        for r in site_racks[site.id]:
            for t in range(n):
                cap = h * _gpus(scenario, derived, site.id, r, t)
                for s in prob:
                    gh = terms.buyback_share * (cap - served_pool.get((site.id, r, t, s), 0.0))
                    buyback_gh[(site.id, r, t, s)] = gh
                    buyback_ts[(t, s)] += gh

    served_by_s: dict[str, float] = defaultdict(float)
    for (_k, _i, _r, _t, ss), v in derived.served.items():
        served_by_s[ss] += v
    unserved_by_s: dict[str, float] = defaultdict(float)
    for (_k, _t, ss), v in derived.unserved.items():
        unserved_by_s[ss] += v
    outcomes: dict[str, Money] = {}
    for s in prob:
        cloud = guarantor = rev_sum = bb_sum = rs_sum = cl_sum = 0.0
        for t in range(n):
            bb = terms.buyback_price_usd_per_gpu_hour * buyback_ts[(t, s)]
            rs = terms.revenue_share * rev[(t, s)]
            cloud += d[t] * (rev[(t, s)] - rs + bb - energy[(t, s)] - fixed_cost[t])
            guarantor += d[t] * (margin[t] + rs - bb - cl[(t, s)])
            rev_sum += rev[(t, s)]
            bb_sum += bb
            rs_sum += rs
            cl_sum += cl[(t, s)]
        served = served_by_s[s]
        unserved = unserved_by_s[s]
        outcomes[s] = Money(cloud, guarantor, rev_sum, bb_sum, rs_sum, cl_sum, served, unserved)

    site_period: dict[tuple[str, int], dict[str, float]] = {}
    for site in scenario.sites:
        for t in range(n):
            gpus = sum(_gpus(scenario, derived, site.id, r, t) for r in site_racks[site.id])
            exp_served = sum(
                prob[s] * served_pool.get((site.id, r, t, s), 0.0) for r in site_racks[site.id] for s in prob
            )
            exp_bb_gh = sum(prob[s] * buyback_gh[(site.id, r, t, s)] for r in site_racks[site.id] for s in prob)
            exp_rs = sum(prob[s] * terms.revenue_share * rev_site.get((site.id, t, s), 0.0) for s in prob)
            site_period[(site.id, t)] = {
                "gpus": gpus,
                "utilisation": exp_served / (h * gpus) if gpus > 0 else 0.0,
                "buyback_gpu_hours": exp_bb_gh,
                "buyback_usd": terms.buyback_price_usd_per_gpu_hour * exp_bb_gh,
                "revenue_share_usd": exp_rs,
            }
    return outcomes, site_period


def cvar_by_sorting(values: dict[str, float], probabilities: dict[str, float], alpha: float) -> float:
    """Mean value over the worst (1 - alpha) probability mass (lower tail of a value)."""
    tail = 1.0 - alpha
    remaining = tail
    total = 0.0
    for s in sorted(values, key=lambda k: values[k]):
        take = min(probabilities[s], remaining)
        total += take * values[s]
        remaining -= take
        if remaining <= 1e-15:
            break
    return total / tail


def _perspective_value(money: Money, perspective: str) -> float:
    if perspective == "cloud":
        return money.cloud
    if perspective == "guarantor":
        return money.guarantor
    return money.cloud + money.guarantor


def check_figures(
    scenario: Scenario,
    plan: Plan,
    outcomes: dict[str, Money],
    site_period: dict[tuple[str, int], dict[str, float]],
    report: _Report,
) -> float:
    """Compare every reported figure with its recomputation; return the recomputed objective."""
    labels = scenario.periods.labels()
    index = {label: t for t, label in enumerate(labels)}
    prob = {c.id: c.probability for c in scenario.scenarios}
    perspective = scenario.objective.perspective

    def money(name: str, reported: float, recomputed: float) -> None:
        report.check(
            _close(reported, recomputed, ABS_TOL_USD),
            f"{name}: plan reports {reported:,.2f}, recomputed {recomputed:,.2f} (difference {reported - recomputed:,.2f})",
        )

    reported = {o.scenario: o for o in plan.outcomes}
    report.check(reported.keys() == outcomes.keys(), "outcomes: scenarios listed differ from the scenario file")
    for s, m in outcomes.items():
        o = reported.get(s)
        if o is None:
            continue
        money(f"outcome [{s}] cloud_value_usd", o.cloud_value_usd, m.cloud)
        money(f"outcome [{s}] guarantor_value_usd", o.guarantor_value_usd, m.guarantor)
        money(f"outcome [{s}] syndicate_value_usd", o.syndicate_value_usd, m.cloud + m.guarantor)
        money(f"outcome [{s}] objective_value_usd", o.objective_value_usd, _perspective_value(m, perspective))
        money(f"outcome [{s}] rental_revenue_usd", o.rental_revenue_usd, m.rev)
        money(f"outcome [{s}] buyback_usd", o.buyback_usd, m.bb)
        money(f"outcome [{s}] revenue_share_usd", o.revenue_share_usd, m.rs)
        money(f"outcome [{s}] credit_loss_usd", o.credit_loss_usd, m.cl)
        report.check(
            _close(o.served_gpu_hours, m.served, ABS_TOL_QUANTITY)
            and _close(o.unserved_gpu_hours, m.unserved, ABS_TOL_QUANTITY),
            f"outcome [{s}]: served/unserved GPU-hours reported {o.served_gpu_hours:,.0f}/{o.unserved_gpu_hours:,.0f}, "
            f"recomputed {m.served:,.0f}/{m.unserved:,.0f}",
        )
        report.check(_close(o.probability, prob[s], 1e-12), f"outcome [{s}]: probability differs")

    values = {s: _perspective_value(m, perspective) for s, m in outcomes.items()}
    expected = sum(prob[s] * v for s, v in values.items())
    alpha = scenario.objective.cvar_alpha
    cvar = cvar_by_sorting(values, prob, alpha) if alpha is not None else None
    money("risk.expected_value_usd", plan.risk.expected_value_usd, expected)
    money("risk.worst_case_value_usd", plan.risk.worst_case_value_usd, min(values.values()))
    money("risk.best_case_value_usd", plan.risk.best_case_value_usd, max(values.values()))
    if cvar is not None:
        report.check(plan.risk.cvar_usd is not None, "risk.cvar_usd: missing although cvar_alpha is set")
        if plan.risk.cvar_usd is not None:
            money("risk.cvar_usd", plan.risk.cvar_usd, cvar)

    w = scenario.objective.cvar_weight
    objective = (1.0 - w) * expected + (w * cvar if cvar is not None else 0.0)
    money("solver.objective_usd", plan.solver.objective_usd, objective)

    for row in plan.site_periods:
        t = index.get(row.period)
        if t is None or (row.site, t) not in site_period:
            report.check(False, f"site_periods {row.site} {row.period}: unknown site or quarter")
            continue
        want = site_period[(row.site, t)]
        where = f"site_periods {row.site} {row.period}"
        report.check(
            _close(row.gpus_installed, want["gpus"], ABS_TOL_QUANTITY),
            f"{where}: {row.gpus_installed} GPUs reported, {want['gpus']:g} installed",
        )
        report.check(
            _close(row.expected_utilisation, want["utilisation"], 1e-6),
            f"{where}: utilisation {row.expected_utilisation:.6f} reported, {want['utilisation']:.6f} recomputed",
        )
        report.check(
            _close(row.expected_buyback_gpu_hours, want["buyback_gpu_hours"], ABS_TOL_QUANTITY),
            f"{where}: buyback {row.expected_buyback_gpu_hours:,.0f} GPU-hours reported, "
            f"{want['buyback_gpu_hours']:,.0f} recomputed",
        )
        money(f"{where} expected_buyback_usd", row.expected_buyback_usd, want["buyback_usd"])
        money(f"{where} expected_revenue_share_usd", row.expected_revenue_share_usd, want["revenue_share_usd"])
    return objective


def _cap(messages: Iterable[str]) -> list[str]:
    messages = list(messages)
    if len(messages) <= MAX_MESSAGES:
        return messages
    return [*messages[:MAX_MESSAGES], f"and {len(messages) - MAX_MESSAGES} more"]


def verify_plan(scenario: Scenario, plan: Plan) -> Verification:
    """Check `plan` against every constraint of `scenario` and recompute its figures."""
    report = _Report()
    check_identity(scenario, plan, report)
    derived = recompute_first_stage(scenario, plan, report)
    check_reported_first_stage(scenario, plan, derived, report)
    check_first_stage_constraints(scenario, derived, report)
    check_block_rate(scenario, plan, report)
    check_second_stage_constraints(scenario, derived, report)
    outcomes, site_period = recompute_money(scenario, derived)
    objective = check_figures(scenario, plan, outcomes, site_period, report)
    return Verification(
        passed=not report.violations,
        checks_run=report.checks_run,
        violations=_cap(report.violations),
        objective_recomputed_usd=objective,
    )
