"""Manifests are checked against the shipped CRDs' schemas before anything is registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.crd_fit import crd_problems
from infra.desired_state import BackendSettings, desired_state
from planner.files import write_plan
from planner.schema.plan import Plan
from tests.dsx.harness import assert_one_clear_error, dsx
from tests.infra.plan_factory import make_plan
from tests.infra.test_program_mocks import EXAMPLE_PERIODS, EXAMPLE_SITES, run_stack


def _one_node_racks(plan: Plan) -> Plan:
    """gb300-nvl72 as one node of 72 GPUs: a plan the planner makes, a GpuNodePool (at most 16
    GPUs per node) cannot hold."""
    data = plan.model_dump(mode="json")
    for rack in data["rack_types"]:
        if rack["id"] == "gb300-nvl72":
            rack.update(nodes_per_rack=1, gpus_per_node=72)
    for record in data["racks"]:
        if record["rack_type"] == "gb300-nvl72":
            record["nodes_installed"] = record["racks_installed"]
    return Plan.model_validate(data)


@pytest.mark.parametrize("backend", ["cluster-api", "karpenter"])
@pytest.mark.parametrize("style", ["tenant", "tenant-site"])
def test_what_a_plan_asks_for_fits_the_crds_at_every_site(backend: str, style: str) -> None:
    plan = make_plan()
    for site in plan.sites:
        state = desired_state(
            plan, site.id, plan.periods[-1], backend=BackendSettings(backend=backend), namespace_style=style
        )
        assert crd_problems(state.manifests()) == []


def test_a_pool_of_more_gpus_per_node_than_the_crd_allows_stops_pulumi_before_any_resource(
    tmp_path: Path,
) -> None:
    path = tmp_path / "plan.json"
    write_plan(_one_node_racks(make_plan(EXAMPLE_SITES, EXAMPLE_PERIODS)), path)
    run = run_stack("batam", path)
    assert run.resources == [], [r.name for r in run.resources]
    assert run.error is not None
    text = run.error.render()
    assert "the cluster would refuse what this plan asks for" in text
    assert (
        "GpuNodePool batam-gb300-nvl72: spec.gpusPerNode: 72 is more than the 16 the CRD allows "
        "(set by the rack type's gpus_per_rack / nodes_per_rack)"
    ) in text


def test_render_refuses_a_display_name_the_tenant_crd_refuses_and_prints_nothing(tmp_path: Path) -> None:
    plan = make_plan()
    long_name = "x" * 239
    tenants = [
        t.model_copy(update={"display_name": long_name}) if t.id == "inference-cloud" else t
        for t in plan.tenants
    ]
    path = tmp_path / "plan.json"
    write_plan(plan.model_copy(update={"tenants": tenants}), path)
    outcome = dsx("render", path, "--site", "batam", "--period", plan.periods[-1])
    assert_one_clear_error(
        outcome,
        names=(str(path), "Tenant inference-cloud: spec.displayName: 239 characters, at most 200", "Fix:"),
    )
    assert outcome.stdout == ""


def test_stacks_write_refuses_a_plan_the_crds_refuse_and_writes_no_stack(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(_one_node_racks(make_plan()), path)
    stacks = tmp_path / "stacks"
    outcome = dsx("stacks", "write", path, "--dir", stacks, "--period", "2026Q4")
    assert_one_clear_error(
        outcome, names=(str(path), "spec.gpusPerNode: 72 is more than the 16 the CRD allows")
    )
    assert not stacks.exists()
