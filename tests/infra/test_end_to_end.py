"""End to end: scenario → solve → plan → Pulumi program (mocks) → emulator → operator → cluster state.

The first half (scenario to registered manifests) runs now. The second half applies those
manifests to the kmock emulator (tests/support/emulator.py) and lets the real operator reconcile
them; it skips until the operator and its emulator land.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from planner.io import parse_scenario, write_plan
from planner.plan import Plan
from tests.infra.plan_factory import make_plan
from tests.infra.pulumi_harness import ProgramRun, run_program

SCENARIO: dict[str, Any] = {
    "version": 1,
    "name": "e2e",
    "periods": {"start_quarter": "2027Q1", "count_quarters": 1, "discount_rate_annual": 0.0},
    "sites": [
        {
            "id": site,
            "jurisdiction": "AU",
            "power_cap_mw": 2.0,
            "existing_mw": 2.0,
            "power_block_mw": 1.0,
            "power_lead_time_periods": 0,
            "power_price_usd_per_mwh": 0.0,
            "pue": 1.0,
            "gpu_cap": 1000,
            "max_racks_built_per_period": 100,
            "max_power_blocks_per_period": 1,
            "power_capex_usd_per_mw": 0.0,
        }
        for site in ("alpha", "beta")
    ],
    "rack_types": [
        {
            "id": "rack72",
            "gpu_product": "NVIDIA-GB300",
            "gpus_per_rack": 72,
            "nodes_per_rack": 18,
            "kw_per_rack": 135.0,
            "capex_usd": 100_000.0,
            "lifetime_periods": 1,
        }
    ],
    "tenants": [
        {"id": "acme", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"only": [144.0]}, "owners": ["group:acme-admins"]},
        {"id": "zeta", "price_usd_per_gpu_hour": 9.0, "demand_gpus": {"only": [72.0]}, "owners": ["zoe@example.com"]},
    ],
    "scenarios": [{"id": "only", "probability": 1.0}],
    "terms": {
        "buyback_price_usd_per_gpu_hour": 0.0,
        "buyback_share": 0.0,
        "revenue_share": 0.0,
        "guarantor_hardware_margin": 0.0,
    },
    "objective": {"perspective": "cloud"},
    "solver": {"time_limit_s": 20, "mip_rel_gap": 0.0},
}


def solved_or_factory_plan() -> tuple[Plan, str, str]:
    """The solver's plan for SCENARIO when the planner pipeline is complete, else a factory plan."""
    try:
        from planner.pipeline import solve_scenario

        importlib.import_module("planner.verify")
    except ModuleNotFoundError:
        return make_plan(), "batam", "2026Q4"
    return solve_scenario(parse_scenario(SCENARIO, "e2e")), "alpha", "2027Q1"


def program_manifests(plan: Plan, site: str, period: str, tmp_path: Path) -> tuple[ProgramRun, list[dict[str, Any]]]:
    plan_file = tmp_path / "plan.json"
    write_plan(plan, plan_file)
    run = run_program({"dsx:plan": str(plan_file), "dsx:period": period, "dsx:installOperator": "false"}, stack=site)
    assert run.error is None, run.error
    manifests = [{k: r.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")} for r in run.kubernetes_objects]
    return run, manifests


def test_scenario_to_registered_custom_resources(tmp_path: Path) -> None:
    plan, site, period = solved_or_factory_plan()
    run, manifests = program_manifests(plan, site, period, tmp_path)
    racks = {k: v for k, v in plan.racks_at(site, period).items() if v > 0}
    pools = [m for m in manifests if m["kind"] == "GpuNodePool"]
    assert {m["spec"]["rackType"]: m["spec"]["racks"] for m in pools} == racks
    capacity = {m["metadata"]["name"]: m["spec"]["racks"] * plan.rack_type(m["spec"]["rackType"]).gpus_per_rack for m in pools}
    granted: dict[str, int] = {}
    for tenant in (m for m in manifests if m["kind"] == "Tenant"):
        for q in tenant["spec"]["gpuQuota"]:
            granted[q["pool"]] = granted.get(q["pool"], 0) + q["gpus"]
    assert all(granted[p] <= capacity[p] for p in granted)
    assert run.outputs["gpus"] == sum(capacity.values())


def test_operator_reconciles_the_registered_resources_into_namespaces_quotas_and_machines(tmp_path: Path) -> None:
    emulator = pytest.importorskip("tests.support.emulator", reason="pending: tests/support/emulator.py (operator issue) not written yet")
    pytest.importorskip("operators.bundle", reason="pending: operators/bundle.py (operator issue) not written yet")
    if not hasattr(emulator, "reconcile_manifests"):
        pytest.skip("pending: tests/support/emulator.py has no reconcile_manifests(manifests) helper yet")
    plan, site, period = solved_or_factory_plan()
    _, manifests = program_manifests(plan, site, period, tmp_path)

    # Agreed hook: apply manifests to a fresh emulator, run the real operator in-process until
    # idle, return {(apiVersion, kind, namespace, name): object} of the resulting cluster.
    cluster = emulator.reconcile_manifests(manifests)

    for tenant in (m for m in manifests if m["kind"] == "Tenant"):
        for namespace in tenant["spec"]["namespaces"]:
            assert ("v1", "Namespace", "", namespace) in cluster
            quotas = [o for (av, kind, ns, _), o in cluster.items() if kind == "ResourceQuota" and ns == namespace]
            assert quotas, f"no ResourceQuota in {namespace}"
            hard = {k: str(v) for q in quotas for k, v in q["spec"]["hard"].items()}
            gpus = sum(q["gpus"] for q in tenant["spec"]["gpuQuota"])
            assert any(k.endswith("nvidia.com/gpu") and v == str(gpus) for k, v in hard.items()), hard
    for pool in (m for m in manifests if m["kind"] == "GpuNodePool"):
        machines = [o for (av, kind, _, name), o in cluster.items() if kind == "MachineDeployment" and name == pool["metadata"]["name"]]
        assert machines, f"no MachineDeployment for {pool['metadata']['name']}"
        assert machines[0]["spec"]["replicas"] == pool["spec"]["racks"] * pool["spec"]["nodesPerRack"]
