"""Small, hand-checkable plans built directly from `planner.schema.plan`, so infra tests need no solver.

Two rack types, three tenants, two periods; the figures below are the ones tests assert.

Second period (index 1), first site (e.g. batam):
  gb300-nvl72: 10 racks = 720 GPUs, 180 nodes; b300-hgx: 5 racks = 160 GPUs, 20 nodes
  inference-cloud 400.7 → 400 on gb300; model-builder 319.9999999 → 320 on gb300 and 160 on b300;
  sovereign 0.4 → 0 (so no Tenant at this site)
Second period, second site (e.g. sydney): gb300-nvl72 3 racks = 216 GPUs; sovereign 200.5 → 200,
  inference-cloud 16; no b300 racks (so no b300 pool)
First period: site 1 gb300 4 racks (inference-cloud 288); site 2 gb300 2 racks (sovereign 144)
Any further site: gb300 2 racks in both periods, inference-cloud 100.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from planner.schema.plan import (
    PartyFigures,
    Plan,
    PowerDecision,
    QuotaDecision,
    RackDecision,
    RackTypeInfo,
    RiskFigures,
    ScenarioOutcome,
    SiteInfo,
    SitePeriodSummary,
    SolverReport,
    TenantInfo,
    Verification,
)

RACK_TYPES = [
    RackTypeInfo(
        id="gb300-nvl72",
        gpu_product="NVIDIA-GB300",
        gpus_per_rack=72,
        nodes_per_rack=18,
        gpus_per_node=4,
        kw_per_rack=135,
    ),
    RackTypeInfo(
        id="b300-hgx",
        gpu_product="NVIDIA-B300",
        gpus_per_rack=32,
        nodes_per_rack=4,
        gpus_per_node=8,
        kw_per_rack=60,
    ),
]
TENANTS = [
    TenantInfo(
        id="inference-cloud", display_name="Inference platform", owners=["group:inference-cloud-admins"]
    ),
    TenantInfo(
        id="model-builder",
        display_name="Frontier model builder",
        owners=["user:alice@example.com", "group:mb-admins"],
    ),
    TenantInfo(id="sovereign", display_name="Sovereign AI", owners=["bob@example.com"]),
]

# (site index, period index) -> racks by type, quotas by (tenant, rack type)
_FIRST, _SECOND, _OTHER = 0, 1, 2
_RACKS: dict[tuple[int, int], dict[str, int]] = {
    (_FIRST, 0): {"gb300-nvl72": 4, "b300-hgx": 0},
    (_FIRST, 1): {"gb300-nvl72": 10, "b300-hgx": 5},
    (_SECOND, 0): {"gb300-nvl72": 2, "b300-hgx": 0},
    (_SECOND, 1): {"gb300-nvl72": 3, "b300-hgx": 0},
    (_OTHER, 0): {"gb300-nvl72": 2, "b300-hgx": 0},
    (_OTHER, 1): {"gb300-nvl72": 2, "b300-hgx": 0},
}
_QUOTAS: dict[tuple[int, int], dict[tuple[str, str], float]] = {
    (_FIRST, 0): {("inference-cloud", "gb300-nvl72"): 288.0},
    (_FIRST, 1): {
        ("inference-cloud", "gb300-nvl72"): 400.7,
        ("model-builder", "gb300-nvl72"): 319.9999999,
        ("model-builder", "b300-hgx"): 160.0,
        ("sovereign", "gb300-nvl72"): 0.4,
    },
    (_SECOND, 0): {("sovereign", "gb300-nvl72"): 144.0},
    (_SECOND, 1): {("sovereign", "gb300-nvl72"): 200.5, ("inference-cloud", "gb300-nvl72"): 16.0},
    (_OTHER, 0): {("inference-cloud", "gb300-nvl72"): 100.0},
    (_OTHER, 1): {("inference-cloud", "gb300-nvl72"): 100.0},
}
AVAILABLE_MW = 40.0


def make_plan(
    sites: tuple[str, ...] = ("batam", "sydney"),
    periods: tuple[str, str] = ("2026Q3", "2026Q4"),
    *,
    verified: bool = True,
    **overrides: Any,
) -> Plan:
    racks: list[RackDecision] = []
    quotas: list[QuotaDecision] = []
    power: list[PowerDecision] = []
    summaries: list[SitePeriodSummary] = []
    for s_index, site in enumerate(sites):
        key_site = min(s_index, _OTHER)
        for p_index, period in enumerate(periods):
            by_type = _RACKS[(key_site, p_index)]
            it_load = round(
                sum(n * rt.kw_per_rack for rt in RACK_TYPES for t, n in by_type.items() if t == rt.id)
                * 1.15
                / 1000,
                6,
            )
            for rt in RACK_TYPES:
                n = by_type[rt.id]
                racks.append(
                    RackDecision(
                        site=site,
                        rack_type=rt.id,
                        period=period,
                        racks_built=n if p_index == 0 else 0,
                        racks_installed=n,
                        gpus_installed=n * rt.gpus_per_rack,
                        nodes_installed=n * rt.nodes_per_rack,
                    )
                )
            for (tenant, rack_type), gpus in _QUOTAS[(key_site, p_index)].items():
                quotas.append(
                    QuotaDecision(
                        tenant=tenant, site=site, rack_type=rack_type, period=period, quota_gpus=gpus
                    )
                )
            power.append(
                PowerDecision(
                    site=site, period=period, blocks_ordered=0, available_mw=AVAILABLE_MW, it_load_mw=it_load
                )
            )
            summaries.append(
                SitePeriodSummary(
                    site=site,
                    period=period,
                    racks_by_type=dict(by_type),
                    gpus_installed=sum(
                        n * next(r.gpus_per_rack for r in RACK_TYPES if r.id == t) for t, n in by_type.items()
                    ),
                    available_mw=AVAILABLE_MW,
                    it_load_mw=it_load,
                    expected_utilisation=0.8,
                    expected_buyback_gpu_hours=0.0,
                    expected_buyback_usd=0.0,
                    expected_revenue_share_usd=0.0,
                )
            )
    fields: dict[str, Any] = dict(
        scenario_name="factory",
        scenario_hash="0123456789abcdef",
        created_at=datetime(2026, 7, 1, tzinfo=UTC),
        perspective="cloud",
        cvar_weight=0.0,
        hours_per_period=2190.0,
        periods=list(periods),
        discount_factors=[1.0, 0.976],
        sites=[SiteInfo(id=s, jurisdiction="XX", power_cap_mw=100, pue=1.15, gpu_cap=100_000) for s in sites],
        rack_types=RACK_TYPES,
        tenants=TENANTS,
        scenario_probabilities={"base": 1.0},
        racks=racks,
        power=power,
        quotas=quotas,
        served=[],
        unserved=[],
        site_periods=summaries,
        outcomes=[
            ScenarioOutcome(
                scenario="base",
                probability=1.0,
                cloud_value_usd=1.0,
                guarantor_value_usd=0.0,
                syndicate_value_usd=1.0,
                objective_value_usd=1.0,
                rental_revenue_usd=1.0,
                buyback_usd=0.0,
                revenue_share_usd=0.0,
                credit_loss_usd=0.0,
                served_gpu_hours=0.0,
                unserved_gpu_hours=0.0,
            )
        ],
        risk=RiskFigures(expected_value_usd=1.0, worst_case_value_usd=1.0, best_case_value_usd=1.0),
        # Each party's figures as the one outcome gives them (`read_plan` checks them against it).
        parties=[
            PartyFigures(
                party=party,
                expected_value_usd=value,
                cvar_alpha=0.9,
                cvar_usd=value,
                worst_case_value_usd=value,
            )
            for party, value in (("cloud", 1.0), ("guarantor", 0.0), ("syndicate", 1.0))
        ],
        solver=SolverReport(
            interface="factory",
            status="Optimal",
            mip_gap=0.0,
            objective_usd=1.0,
            best_bound_usd=1.0,
            rows=0,
            columns=0,
            nonzeros=0,
            integer_columns=0,
            build_s=0.0,
            handoff_s=0.0,
            solve_s=0.0,
            highs_version="n/a",
        ),
        verification=Verification(
            passed=verified,
            checks_run=1,
            violations=[] if verified else ["power: batam 2026Q4 needs 41 MW > 40 MW"],
            objective_recomputed_usd=1.0,
        ),
    )
    fields.update(overrides)
    return Plan(**fields)


def unmeasured_gap_plan(best_bound_usd: float | None = None) -> Plan:
    """A MIP plan HiGHS stopped without a measurable gap: no bound (the default), or worth
    nothing against `best_bound_usd` (an infinite gap), as lp_algorithm pdlp left one."""
    plan = make_plan()
    worthless = best_bound_usd is not None
    solver = plan.solver.model_copy(
        update={
            "status": "Time limit reached",
            "integer_columns": 12,
            "mip_gap": float("inf") if worthless else None,
            "objective_usd": 0.0 if worthless else plan.solver.objective_usd,
            "best_bound_usd": best_bound_usd,
        }
    )
    return plan.model_copy(update={"solver": solver})
