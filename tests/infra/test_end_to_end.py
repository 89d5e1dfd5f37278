"""End to end: scenario → solve → plan → Pulumi program (mocks) → emulator → operator → cluster state.

The second half applies the registered manifests to the API emulator (tests/support/emulator.py)
and lets the real operator reconcile them into namespaces, quotas and node-pool objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from operators.bundle import operator_bundle
from operators.kube import Kube
from planner.files import parse_scenario, write_plan
from planner.pipeline import solve_scenario
from planner.schema.plan import Plan
from tests.infra.pulumi_harness import ProgramRun, run_program
from tests.operators.conftest import wait_for
from tests.support.emulator import EmulatorThread, running_operator

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
        {
            "id": "acme",
            "price_usd_per_gpu_hour": 10.0,
            "demand_gpus": {"only": [144.0]},
            "owners": ["group:acme-admins"],
        },
        {
            "id": "zeta",
            "price_usd_per_gpu_hour": 9.0,
            "demand_gpus": {"only": [72.0]},
            "owners": ["zoe@example.com"],
        },
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


def solved_plan() -> tuple[Plan, str, str]:
    """The solver's verified plan for SCENARIO."""
    return solve_scenario(parse_scenario(SCENARIO, "e2e")), "alpha", "2027Q1"


def program_manifests(
    plan: Plan, site: str, period: str, tmp_path: Path
) -> tuple[ProgramRun, list[dict[str, Any]]]:
    plan_file = tmp_path / "plan.json"
    write_plan(plan, plan_file)
    run = run_program(
        {"dsx:plan": str(plan_file), "dsx:period": period, "dsx:installOperator": "false"}, stack=site
    )
    assert run.error is None, run.error
    manifests = [
        {k: r.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")} for r in run.kubernetes_objects
    ]
    return run, manifests


def test_scenario_to_registered_custom_resources(tmp_path: Path) -> None:
    plan, site, period = solved_plan()
    run, manifests = program_manifests(plan, site, period, tmp_path)
    racks = {k: v for k, v in plan.racks_at(site, period).items() if v > 0}
    pools = [m for m in manifests if m["kind"] == "GpuNodePool"]
    assert {m["spec"]["rackType"]: m["spec"]["racks"] for m in pools} == racks
    capacity = {
        m["metadata"]["name"]: m["spec"]["racks"] * plan.rack_type(m["spec"]["rackType"]).gpus_per_rack
        for m in pools
    }
    granted: dict[str, int] = {}
    for tenant in (m for m in manifests if m["kind"] == "Tenant"):
        for q in tenant["spec"]["gpuQuota"]:
            granted[q["pool"]] = granted.get(q["pool"], 0) + q["gpus"]
    assert all(granted[p] <= capacity[p] for p in granted)
    assert run.outputs["gpus"] == sum(capacity.values())


def test_operator_reconciles_the_registered_resources_into_namespaces_quotas_and_machines(
    tmp_path: Path,
) -> None:
    plan, site, period = solved_plan()
    _, manifests = program_manifests(plan, site, period, tmp_path)
    with EmulatorThread() as emulator:
        configuration = k8s.Configuration()
        configuration.host = emulator.url
        kube = Kube(k8s.ApiClient(configuration))
        # What the operator bundle installs first: its namespace (home of the MachineDeployments).
        namespace = next(d for d in operator_bundle() if d["kind"] == "Namespace")
        kube.create(namespace)
        for manifest in manifests:
            kube.create(manifest)
        with running_operator(emulator.url):
            for tenant in (m for m in manifests if m["kind"] == "Tenant"):
                gpus = int(
                    sum(q["gpus"] for q in tenant["spec"]["gpuQuota"])
                )  # mocks carry numbers as floats
                for ns in tenant["spec"]["namespaces"]:
                    quota = wait_for(
                        lambda ns=ns: kube.get("ResourceQuota", "dsx-quota", ns), what=f"quota in {ns}"
                    )
                    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == str(gpus)
                    labels = kube.get("Namespace", ns)["metadata"]["labels"]
                    assert labels["dsx.ai/tenant"] == tenant["metadata"]["name"]
                    assert labels["dsx.ai/site"] == site
            for pool in (m for m in manifests if m["kind"] == "GpuNodePool"):
                name = pool["metadata"]["name"]
                machines = wait_for(
                    lambda name=name: kube.get("MachineDeployment", name, namespace["metadata"]["name"]),
                    what=f"MachineDeployment {name}",
                )
                assert machines["spec"]["replicas"] == int(
                    pool["spec"]["racks"] * pool["spec"]["nodesPerRack"]
                )
