"""Consistent plans built by hand from decisions, for verifier tests (no solver, no model code).

`make_plan(scenario, racks_built=..., blocks_ordered=..., quotas=..., served=...)` fills in every
reported figure from docs/model.md with plain loops (buyback by the matching rule; `per_site=True`
gives a 1.4 plan billed by the per-site rule). It is deliberately written differently from
`planner.verify` (dicts and loops, CVaR by the Rockafellar–Uryasev formula evaluated at the
scenario values rather than by sorting), and the tests pin its numbers to hand arithmetic, so the
two cannot share a mistake unnoticed. Decisions are keyed by ids and quarter labels:

  racks_built[(site, rack_type, quarter)] = racks         (missing: 0)
  blocks_ordered[(site, quarter)] = blocks                (missing: 0)
  quotas[(tenant, site, rack_type, quarter)] = GPUs       (missing: 0)
  served[(scenario, tenant, site, rack_type, quarter)] = GPU-hours
  unserved: h x demand − served unless given
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import combinations

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
)
from planner.schema.scenario import Scenario

RackKey = tuple[str, str, str]
BlockKey = tuple[str, str]
QuotaKey = tuple[str, str, str, str]
ServedKey = tuple[str, str, str, str, str]
UnservedKey = tuple[str, str, str]


def cvar_rockafellar_uryasev(
    values: dict[str, float], probabilities: dict[str, float], alpha: float
) -> float:
    """max_η η − Σ p_s max(0, η − V_s) / (1 − α); the maximum is attained at one of the V_s."""
    return max(
        eta - sum(p * max(0.0, eta - values[s]) for s, p in probabilities.items()) / (1.0 - alpha)
        for eta in values.values()
    )


def make_plan(
    scenario: Scenario,
    *,
    racks_built: dict[RackKey, int] | None = None,
    blocks_ordered: dict[BlockKey, int] | None = None,
    quotas: dict[QuotaKey, float] | None = None,
    served: dict[ServedKey, float] | None = None,
    unserved: dict[UnservedKey, float] | None = None,
    per_site: bool = False,
) -> Plan:
    """The plan of these decisions with every figure filled in; buyback by the matching rule (a
    1.5 plan), or with `per_site` by the per-site rule plans before 1.5 bill (a 1.4 plan)."""
    built_in = racks_built or {}
    blocks_in = blocks_ordered or {}
    quotas_in = quotas or {}
    served_in = {key: x for key, x in (served or {}).items() if x != 0}
    labels = scenario.periods.labels()
    h = scenario.periods.hours_per_period
    d = scenario.periods.discount_factors()
    terms = scenario.terms
    probabilities = {c.id: c.probability for c in scenario.scenarios}

    installed: dict[RackKey, int] = {}
    for site in scenario.sites:
        for rack in scenario.site_rack_types(site):
            for t, label in enumerate(labels):
                recent = labels[max(0, t - rack.lifetime_periods + 1) : t + 1]
                installed[site.id, rack.id, label] = site.existing_racks.get(rack.id, 0) + sum(
                    built_in.get((site.id, rack.id, q), 0) for q in recent
                )
    available: dict[BlockKey, float] = {}
    load: dict[BlockKey, float] = {}
    for site in scenario.sites:
        for t, label in enumerate(labels):
            arrived = sum(
                blocks_in.get((site.id, q), 0) for q in labels[: max(0, t - site.power_lead_time_periods + 1)]
            )
            available[site.id, label] = site.existing_mw + site.power_block_mw * arrived
            load[site.id, label] = sum(
                installed[site.id, r.id, label] * r.kw_per_rack / 1000.0 * site.pue
                for r in scenario.site_rack_types(site)
            )

    if unserved is None:
        unserved = {}
        for tenant in scenario.tenants:
            for case in scenario.scenarios:
                for t, label in enumerate(labels):
                    got = sum(
                        x
                        for (s, k, _i, _r, q), x in served_in.items()
                        if (s, k, q) == (case.id, tenant.id, label)
                    )
                    rest = h * tenant.demand_gpus[case.id][t] - got
                    if rest != 0:
                        unserved[case.id, tenant.id, label] = rest

    # Money, term by term (docs/model.md).
    t_of = {label: t for t, label in enumerate(labels)}
    pool_served: dict[tuple[str, str, str, str], float] = defaultdict(float)  # (s, i, r, q)
    rev: dict[tuple[str, str, str], float] = defaultdict(float)  # (s, i, q)
    credit: dict[tuple[str, str], float] = defaultdict(float)  # (s, q)
    energy: dict[tuple[str, str], float] = defaultdict(float)
    for (s, k, i, r, q), x in served_in.items():
        tenant, site, rack = scenario.tenant(k), scenario.site(i), scenario.rack_type(r)
        pool_served[s, i, r, q] += x
        rev[s, i, q] += tenant.price_usd_per_gpu_hour * x
        credit[s, q] += (
            tenant.token_credit_share * (1 - tenant.repayment_share(s)) * tenant.price_usd_per_gpu_hour * x
        )
        energy[s, q] += (
            site.power_price_usd_per_mwh * site.pue * rack.kw_per_rack / 1000 / rack.gpus_per_rack * x
        )

    def unsold_at(s: str, i: str, q: str) -> float:
        return sum(
            h * rack.gpus_per_rack * installed[i, rack.id, q] - pool_served[s, i, rack.id, q]
            for rack in scenario.site_rack_types(scenario.site(i))
        )

    def refused_of(s: str, q: str, sites: list[str]) -> float:
        """Unserved demand of the tenants that may use any of `sites`."""
        return sum(
            x
            for (case, k, period), x in unserved.items()
            if (case, period) == (s, q)
            and any(scenario.tenant_may_use(scenario.tenant(k), scenario.site(i)) for i in sites)
        )

    site_ids = [site.id for site in scenario.sites]

    def buyback_gpu_hours(s: str, i: str, q: str) -> float:
        if per_site:
            # Only capacity no tenant wanted: unsold, less the unserved demand of every tenant that
            # may use the site, floored at zero.
            return terms.buyback_share * max(0.0, unsold_at(s, i, q) - refused_of(s, q, [i]))
        # The matching rule by its min-cut form, brute force over every set of sites (a third
        # method beside the planner's class cuts and the verifier's augmenting paths): the most
        # unsold hours of a set less the refused hours of every tenant that may use any of it.
        # A site's part pro rata to its unsold hours.
        total = max(
            sum(unsold_at(s, j, q) for j in chosen) - refused_of(s, q, list(chosen))
            for n in range(len(site_ids) + 1)
            for chosen in combinations(site_ids, n)
        )
        pooled = sum(unsold_at(s, j, q) for j in site_ids)
        mine = unsold_at(s, i, q)
        return terms.buyback_share * total * mine / pooled if mine > 0 else 0.0

    fixed: dict[str, float] = defaultdict(float)
    margin: dict[str, float] = defaultdict(float)
    for site in scenario.sites:
        for q in labels:
            fixed[q] += (
                site.power_capex_usd_per_mw
                * (available[site.id, q] - site.existing_mw)
                / (site.power_asset_lifetime_periods)
            )
            for rack in scenario.site_rack_types(site):
                n = installed[site.id, rack.id, q]
                new = n - site.existing_racks.get(rack.id, 0)
                fixed[q] += rack.capex_usd / rack.lifetime_periods * new
                fixed[q] += rack.opex_usd_per_rack_period * n
                # The margin is spread over the rack's quarters like its capex.
                margin[q] += terms.guarantor_hardware_margin * rack.capex_usd / rack.lifetime_periods * new

    outcomes = []
    values: dict[str, float] = {}
    party_values: dict[str, dict[str, float]] = {"cloud": {}, "guarantor": {}, "syndicate": {}}
    for case in scenario.scenarios:
        s = case.id
        cloud = guarantor = rev_total = bb_total = rs_total = cl_total = 0.0
        for q in labels:
            rev_q = sum(rev[s, site.id, q] for site in scenario.sites)
            bb_q = terms.buyback_price_usd_per_gpu_hour * sum(
                buyback_gpu_hours(s, site.id, q) for site in scenario.sites
            )
            rs_q = terms.revenue_share * rev_q
            cloud += d[t_of[q]] * (rev_q - rs_q + bb_q - energy[s, q] - fixed[q])
            guarantor += d[t_of[q]] * (margin[q] + rs_q - bb_q - credit[s, q])
            rev_total, bb_total, rs_total, cl_total = (
                rev_total + rev_q,
                bb_total + bb_q,
                rs_total + rs_q,
                cl_total + credit[s, q],
            )
        value = {"cloud": cloud, "guarantor": guarantor, "syndicate": cloud + guarantor}[
            scenario.objective.perspective
        ]
        values[s] = value
        party_values["cloud"][s], party_values["guarantor"][s] = cloud, guarantor
        party_values["syndicate"][s] = cloud + guarantor
        outcomes.append(
            ScenarioOutcome(
                scenario=s,
                probability=case.probability,
                cloud_value_usd=cloud,
                guarantor_value_usd=guarantor,
                syndicate_value_usd=cloud + guarantor,
                objective_value_usd=value,
                rental_revenue_usd=rev_total,
                buyback_usd=bb_total,
                revenue_share_usd=rs_total,
                credit_loss_usd=cl_total,
                served_gpu_hours=sum(x for key, x in served_in.items() if key[0] == s),
                unserved_gpu_hours=sum(x for key, x in unserved.items() if key[0] == s),
            )
        )
    expected = sum(probabilities[s] * v for s, v in values.items())
    alpha = scenario.objective.cvar_alpha
    cvar = cvar_rockafellar_uryasev(values, probabilities, alpha) if alpha is not None else None
    w = scenario.objective.cvar_weight
    objective = (1 - w) * expected + (w * cvar if cvar is not None else 0.0)

    participation = scenario.participation
    needs = {"cloud": participation.cloud, "guarantor": participation.guarantor}
    parties = [
        PartyFigures(
            party=party,
            expected_value_usd=sum(probabilities[s] * v for s, v in by_case.items()),
            cvar_alpha=participation.cvar_alpha,
            cvar_usd=cvar_rockafellar_uryasev(by_case, probabilities, participation.cvar_alpha),
            worst_case_value_usd=min(by_case.values()),
            min_expected_value_usd=needs[party].min_expected_value_usd if party in needs else None,
            min_cvar_usd=needs[party].min_cvar_usd if party in needs else None,
        )
        for party, by_case in party_values.items()
    ]

    site_periods = []
    for site in scenario.sites:
        rack_types = scenario.site_rack_types(site)
        for q in labels:
            gpus = sum(rack.gpus_per_rack * installed[site.id, rack.id, q] for rack in rack_types)
            exp_served = sum(
                p * pool_served[s, site.id, rack.id, q]
                for s, p in probabilities.items()
                for rack in rack_types
            )
            exp_bb = sum(p * buyback_gpu_hours(s, site.id, q) for s, p in probabilities.items())
            site_periods.append(
                SitePeriodSummary(
                    site=site.id,
                    period=q,
                    racks_by_type={rack.id: installed[site.id, rack.id, q] for rack in rack_types},
                    gpus_installed=gpus,
                    available_mw=available[site.id, q],
                    it_load_mw=load[site.id, q],
                    expected_utilisation=exp_served / (h * gpus) if gpus else 0.0,
                    expected_buyback_gpu_hours=exp_bb,
                    expected_buyback_usd=terms.buyback_price_usd_per_gpu_hour * exp_bb,
                    expected_revenue_share_usd=sum(
                        p * terms.revenue_share * rev[s, site.id, q] for s, p in probabilities.items()
                    ),
                    buyback_exposure_usd=terms.buyback_share
                    * terms.buyback_price_usd_per_gpu_hour
                    * h
                    * gpus,
                )
            )

    return Plan(
        schema_version="1.4" if per_site else "1.5",
        scenario_name=scenario.name,
        scenario_hash=scenario.content_hash(),
        created_at=datetime.now(UTC),
        perspective=scenario.objective.perspective,
        cvar_weight=w,
        hours_per_period=h,
        periods=labels,
        discount_factors=d,
        **plan_catalogue(scenario),
        scenario_probabilities=probabilities,
        racks=[
            RackDecision(
                site=i,
                rack_type=r,
                period=q,
                racks_built=built_in.get((i, r, q), 0),
                racks_installed=n,
                gpus_installed=n * scenario.rack_type(r).gpus_per_rack,
                nodes_installed=n * scenario.rack_type(r).nodes_per_rack,
            )
            for (i, r, q), n in installed.items()
        ],
        power=[
            PowerDecision(
                site=i,
                period=q,
                blocks_ordered=blocks_in.get((i, q), 0),
                available_mw=mw,
                it_load_mw=load[i, q],
            )
            for (i, q), mw in available.items()
        ],
        quotas=[
            QuotaDecision(tenant=k, site=i, rack_type=r, period=q, quota_gpus=x)
            for (k, i, r, q), x in quotas_in.items()
        ],
        served=[
            ServedRecord(scenario=s, tenant=k, site=i, rack_type=r, period=q, served_gpu_hours=x)
            for (s, k, i, r, q), x in served_in.items()
        ],
        unserved=[
            UnservedRecord(scenario=s, tenant=k, period=q, unserved_gpu_hours=x)
            for (s, k, q), x in unserved.items()
        ],
        site_periods=site_periods,
        outcomes=outcomes,
        risk=RiskFigures(
            expected_value_usd=expected,
            cvar_alpha=alpha,
            cvar_usd=cvar,
            worst_case_value_usd=min(values.values()),
            best_case_value_usd=max(values.values()),
        ),
        parties=parties,
        solver=SolverReport(
            interface="hand",
            status="Optimal",
            mip_gap=0.0,
            objective_usd=objective,
            best_bound_usd=objective,
            rows=0,
            columns=0,
            nonzeros=0,
            integer_columns=0,
            build_s=0.0,
            handoff_s=0.0,
            solve_s=0.0,
            highs_version="none",
        ),
        verification=Verification(passed=False, checks_run=0, objective_recomputed_usd=0.0),
    )
