"""Synthetic but realistic scenarios by size, for the benchmark and the tests.

`synthetic_scenario(sites, rack_types, quarters, tenants, scenarios, seed)` draws a campus
portfolio around the public DSX figures: sites of 50-400 MW with PUE 1.08-1.3 and GPU caps that
match their power, Blackwell-class rack types, tenants whose demand ramps to roughly 60-90% of
the portfolio's GPU capacity with scenario multipliers around 1, a quarter of tenants on token
credits and some tied to one or two jurisdictions (sovereignty). Same arguments, same scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from planner.files import parse_scenario
from planner.schema.scenario import Scenario

SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "small": (10, 3, 20, 6, 10),
    "medium": (10, 3, 20, 6, 50),
    "large": (20, 4, 32, 8, 100),
    "xl": (20, 4, 40, 8, 1000),
}
"""The benchmark's named sizes: sites, rack types, quarters, tenants, scenarios."""

JURISDICTIONS = ["ID", "AU", "NO", "US", "SG", "JP", "DE", "IN", "BR", "AE", "FR", "CA"]

RACK_TEMPLATES = [
    # id, gpus, nodes, kW, capex US$, opex US$/quarter
    ("gb300-nvl72", 72, 18, 135.0, 3_900_000.0, 15_000.0),
    ("b300-hgx", 32, 4, 60.0, 1_750_000.0, 8_000.0),
    ("gb200-nvl72", 72, 18, 120.0, 3_100_000.0, 14_000.0),
    ("h200-hgx", 32, 4, 45.0, 1_100_000.0, 7_000.0),
]


def _rack_types(count: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for j in range(count):
        rid, gpus, nodes, kw, capex, opex = RACK_TEMPLATES[j % len(RACK_TEMPLATES)]
        if j >= len(RACK_TEMPLATES):
            rid = f"{rid}-v{j // len(RACK_TEMPLATES) + 1}"
            capex *= float(rng.uniform(0.85, 1.15))
            kw *= float(rng.uniform(0.9, 1.1))
        out.append(
            {
                "id": rid,
                "gpu_product": "NVIDIA-" + rid.split("-")[0].upper(),
                "gpus_per_rack": gpus,
                "nodes_per_rack": nodes,
                "kw_per_rack": round(kw, 1),
                "capex_usd": round(capex, -3),
                "lifetime_periods": 20,
                "opex_usd_per_rack_period": opex,
            }
        )
    return out


def _sites(count: int, quarters: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        block = float(rng.choice([10.0, 20.0, 40.0]))
        cap = block * int(rng.integers(4, 11))
        pue = round(float(rng.uniform(1.08, 1.3)), 2)
        existing = block * int(rng.integers(1, 3))
        gpus_by_power = cap * 1000.0 / (130.0 * pue) * 72.0
        out.append(
            {
                "id": f"site-{i:02d}",
                "jurisdiction": JURISDICTIONS[i % len(JURISDICTIONS)],
                "power_cap_mw": cap,
                "existing_mw": min(existing, cap),
                "power_block_mw": block,
                "power_lead_time_periods": int(rng.integers(1, min(4, max(1, quarters - 1)) + 1)),
                "power_price_usd_per_mwh": round(float(rng.uniform(40.0, 130.0)), 1),
                "pue": pue,
                "gpu_cap": int(gpus_by_power * rng.uniform(0.85, 1.1)),
                "max_racks_built_per_period": int(rng.integers(60, 300)),
                "max_power_blocks_per_period": int(rng.integers(1, 4)),
                "power_capex_usd_per_mw": round(float(rng.uniform(7e6, 11e6)), -4),
                "power_asset_lifetime_periods": 60,
            }
        )
    return out


def synthetic_scenario(
    sites: int, rack_types: int, quarters: int, tenants: int, scenarios: int, seed: int = 0
) -> Scenario:
    """A validated scenario of the given size (the benchmark's five numbers)."""
    rng = np.random.default_rng(seed)
    site_data = _sites(sites, quarters, rng)
    capacity_gpus = sum(s["gpu_cap"] for s in site_data)
    scenario_ids = [f"s{j:03d}" for j in range(scenarios)]
    weights = rng.dirichlet(np.full(scenarios, 4.0)) if scenarios > 1 else np.ones(1)
    probabilities = [round(float(w), 9) for w in weights]
    probabilities[-1] = round(1.0 - sum(probabilities[:-1]), 9)
    multipliers = np.clip(rng.lognormal(0.0, 0.3, scenarios), 0.4, 2.0)
    used_jurisdictions = sorted({s["jurisdiction"] for s in site_data})

    share = rng.dirichlet(np.full(tenants, 3.0))
    ramp = np.linspace(0.25, 1.0, quarters)
    tenant_data = []
    for k in range(tenants):
        peak = capacity_gpus * float(rng.uniform(0.6, 0.9)) * float(share[k])
        noise = rng.normal(1.0, 0.05, (scenarios, quarters)).clip(0.7, 1.3)
        demand = np.maximum(1.0, peak * ramp[None, :] * multipliers[:, None] * noise)
        tenant: dict[str, Any] = {
            "id": f"tenant-{k:02d}",
            "price_usd_per_gpu_hour": round(float(rng.uniform(2.2, 3.8)), 2),
            "demand_gpus": {
                sid: [round(float(x), 1) for x in demand[j]] for j, sid in enumerate(scenario_ids)
            },
        }
        if k % 4 == 3:
            tenant["token_credit_share"] = round(float(rng.uniform(0.3, 0.6)), 2)
            tenant["credit_repayment_share"] = round(float(rng.uniform(0.6, 0.9)), 2)
            tenant["credit_repayment_share_by_scenario"] = {
                sid: round(float(min(1.0, 0.5 * multipliers[j] + 0.2)), 3)
                for j, sid in enumerate(scenario_ids)
            }
        if k % 5 == 4 and len(used_jurisdictions) > 1:
            picked = rng.choice(used_jurisdictions, size=min(2, len(used_jurisdictions)), replace=False)
            tenant["allowed_jurisdictions"] = sorted(str(j) for j in picked)
        tenant_data.append(tenant)

    name = f"synthetic-{sites}-{rack_types}-{quarters}-{tenants}-{scenarios}-{seed}"
    data = {
        "version": 1,
        "name": name,
        "description": "Synthetic scenario generated by bench.scenarios",
        "periods": {"start_quarter": "2026Q3", "count_quarters": quarters, "discount_rate_annual": 0.1},
        "sites": site_data,
        "rack_types": _rack_types(rack_types, rng),
        "tenants": tenant_data,
        "scenarios": [
            {"id": sid, "probability": p} for sid, p in zip(scenario_ids, probabilities, strict=True)
        ],
        "terms": {
            "buyback_price_usd_per_gpu_hour": round(float(rng.uniform(1.0, 1.5)), 2),
            "buyback_share": round(float(rng.uniform(0.6, 0.9)), 2),
            "revenue_share": round(float(rng.uniform(0.08, 0.12)), 3),
            "guarantor_hardware_margin": round(float(rng.uniform(0.5, 0.6)), 3),
        },
        "objective": {"perspective": "cloud", "cvar_alpha": 0.9, "cvar_weight": 0.2},
        "solver": {"time_limit_s": 120.0, "mip_rel_gap": 0.01},
    }
    return parse_scenario(data, name)


def write_scenario(
    size: tuple[int, int, int, int, int],
    mode: str,
    time_limit: float,
    threads: int | None,
    *,
    out_dir: Path,
    mip_rel_gap: float,
    extra: dict[str, float | int | str | bool] | None = None,
    perspective: str | None = None,
) -> Path:
    """The synthetic scenario of this size (seed 0) as YAML under `out_dir`/scenarios, for the
    benchmark's runs to load (LP mode: integrality relaxed; `extra`: raw HiGHS options,
    `solver.extra`; `perspective`: `objective.perspective` instead of the synthetic cloud's)."""
    import yaml

    scenario = synthetic_scenario(*size, seed=0)
    data = scenario.model_dump(mode="json", exclude_none=True)
    data["solver"] = {
        **data.get("solver", {}),
        "time_limit_s": float(time_limit),
        "mip_rel_gap": mip_rel_gap,
        "relax_integrality": mode == "lp",
    }
    if threads is not None:
        data["solver"]["threads"] = threads
    raw = {k: v for k, v in (extra or {}).items() if k != "lp_algorithm"}
    if raw:
        data["solver"]["extra"] = raw
    if extra and "lp_algorithm" in extra:
        data["solver"]["lp_algorithm"] = extra["lp_algorithm"]
    tag = "".join(f"-{k}={v}" for k, v in sorted((extra or {}).items()))
    if threads is not None:
        tag += f"-threads={threads}"
    if perspective is not None:
        data["objective"]["perspective"] = perspective
        tag += f"-{perspective}"
    path = out_dir / "scenarios" / f"{'-'.join(map(str, size))}-{mode}-{int(time_limit)}s{tag}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None))
    return path
