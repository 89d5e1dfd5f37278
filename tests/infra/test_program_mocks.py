"""The real Pulumi program under Pulumi's mock runtime: what each example stack registers.

The example stacks (stacks/Pulumi.<site>.yaml) point at plans/dsx-2026.json; here they point at a
factory plan with the same sites and period, so the expected objects are hand-checkable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from infra.settings import STACK_CONFIG_DIR
from planner.errors import UserError
from planner.files import write_plan
from tests.conftest import REPO_ROOT
from tests.infra.plan_factory import make_plan
from tests.infra.pulumi_harness import ProgramRun, run_program

EXAMPLE_SITES = ("batam", "sydney", "narvik")
EXAMPLE_PERIODS = ("2027Q3", "2027Q4")

# site -> (pools: racks, tenants: GPUs per pool), read off tests/infra/plan_factory.py (period 2)
EXPECTED = {
    "batam": (
        {"batam-gb300-nvl72": 10, "batam-b300-hgx": 5},
        {
            "inference-cloud": {"batam-gb300-nvl72": 400},
            "model-builder": {"batam-gb300-nvl72": 320, "batam-b300-hgx": 160},
        },
    ),
    "sydney": (
        {"sydney-gb300-nvl72": 3},
        {"inference-cloud": {"sydney-gb300-nvl72": 16}, "sovereign": {"sydney-gb300-nvl72": 200}},
    ),
    "narvik": ({"narvik-gb300-nvl72": 2}, {"inference-cloud": {"narvik-gb300-nvl72": 100}}),
}


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    write_plan(make_plan(EXAMPLE_SITES, EXAMPLE_PERIODS), path)
    return path


def stack_config(site: str, **overrides: str) -> dict[str, str]:
    """An example stack's config as the Pulumi engine would pass it."""
    data = yaml.safe_load((REPO_ROOT / STACK_CONFIG_DIR / f"Pulumi.{site}.yaml").read_text())
    return {**{k: str(v) for k, v in data["config"].items()}, **overrides}


def run_stack(site: str, plan_file: Path, **overrides: str) -> ProgramRun:
    run = run_program(stack_config(site, **{"dsx:plan": str(plan_file), **overrides}), stack=site)
    return run


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_example_stack_registers_exactly_the_pools_and_tenants_the_plan_implies(
    site: str, plan_file: Path
) -> None:
    run = run_stack(site, plan_file, **{"dsx:installOperator": "false"})
    assert run.error is None
    pools, tenants = EXPECTED[site]
    kube = run.kubernetes_objects
    assert sorted(r.type for r in kube) == sorted(
        ["kubernetes:dsx.ai/v1alpha1:GpuNodePool"] * len(pools)
        + ["kubernetes:dsx.ai/v1alpha1:Tenant"] * len(tenants)
    )
    assert {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["racks"] for r in run.of_kind("GpuNodePool")
    } == pools
    assert {
        r.inputs["metadata"]["name"]: {q["pool"]: q["gpus"] for q in r.inputs["spec"]["gpuQuota"]}
        for r in run.of_kind("Tenant")
    } == tenants


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_example_stack_registers_the_same_objects_dsx_render_prints(site: str, plan_file: Path) -> None:
    run = run_stack(site, plan_file, **{"dsx:installOperator": "false"})
    assert run.error is None
    registered = [
        {k: r.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")} for r in run.kubernetes_objects
    ]
    key = lambda m: (m["kind"], m["metadata"]["name"])  # noqa: E731
    assert sorted(registered, key=key) == sorted(run.state.manifests(), key=key)


def test_pools_carry_labels_and_taints_and_tenants_their_quotas(plan_file: Path) -> None:
    run = run_stack("batam", plan_file, **{"dsx:installOperator": "false"})
    pool = run.manifest("GpuNodePool", "batam-gb300-nvl72")
    assert pool["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert pool["metadata"]["labels"]["dsx.ai/site"] == "batam"
    assert pool["metadata"]["labels"]["dsx.ai/period"] == "2027Q4"
    tenant = run.manifest("Tenant", "model-builder")["spec"]
    assert tenant["namespaces"] == ["model-builder"]
    assert tenant["owners"] == {"users": ["alice@example.com"], "groups": ["mb-admins"]}
    assert (tenant["cpuQuota"], tenant["memoryQuota"], tenant["podQuota"]) == ("7680", "61440Gi", 1920)


def test_tenants_are_protected_and_node_pools_are_not(plan_file: Path) -> None:
    run = run_stack("batam", plan_file, **{"dsx:installOperator": "false"})
    assert run.of_kind("Tenant") and all(r.protect for r in run.of_kind("Tenant"))
    assert not any(r.protect for r in run.of_kind("GpuNodePool"))


def test_tenants_wait_for_the_node_pools_their_quotas_name(plan_file: Path) -> None:
    run = run_stack("batam", plan_file, **{"dsx:installOperator": "false"})
    pools_component = next(r for r in run.resources if r.type == "dsx:infra:SiteNodePools")
    assert run.of_kind("Tenant")
    for tenant in run.of_kind("Tenant"):
        assert any("dsx:infra:SiteNodePools" in dep for dep in tenant.dependencies), tenant.dependencies
    assert pools_component.name == "batam-node-pools"


def test_resources_are_grouped_in_components_and_use_the_site_provider(plan_file: Path) -> None:
    run = run_stack("sydney", plan_file, **{"dsx:installOperator": "false"})
    components = {r.type: r.name for r in run.resources if not r.custom}
    assert components == {
        "dsx:infra:SiteNodePools": "sydney-node-pools",
        "dsx:infra:SiteTenants": "sydney-tenants",
    }
    provider = next(r for r in run.resources if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs.get("context") == "sydney-sovereign"  # hand-set in the example stack
    assert all("dsx:infra:Site" in r.parent for r in run.kubernetes_objects)


def test_stack_outputs_report_site_mw_racks_gpus_and_tenants(plan_file: Path) -> None:
    run = run_stack("batam", plan_file, **{"dsx:installOperator": "false"})
    out = run.outputs
    assert (out["site"], out["period"], out["availableMw"]) == ("batam", "2027Q4", 40.0)
    assert out["racks"] == {"b300-hgx": 5, "gb300-nvl72": 10}
    assert (out["gpus"], out["nodes"], out["unallocatedGpus"]) == (880, 200, 0)
    assert out["tenants"]["model-builder"] == {
        "namespaces": ["model-builder"],
        "gpus": 480,
        "gpuQuota": {"batam-b300-hgx": 160, "batam-gb300-nvl72": 320},
    }
    assert out["plan"] == {"scenario": "factory", "scenarioHash": "0123456789abcdef"}


def test_site_defaults_to_the_stack_name(plan_file: Path) -> None:
    run = run_program(
        {"dsx:plan": str(plan_file), "dsx:period": "2027Q4", "dsx:installOperator": "false"}, stack="narvik"
    )
    assert run.error is None and run.outputs["site"] == "narvik"


def test_operator_bundle_is_installed_first_and_everything_else_waits_for_it(plan_file: Path) -> None:
    import operators.bundle as bundle

    run = run_stack("batam", plan_file)
    assert run.error is None
    operator = [r for r in run.kubernetes_objects if r.parent.endswith("dsx:infra:DsxOperator::dsx-operator")]
    expected = {
        (m["kind"], m["metadata"]["name"]) for m in [*bundle.crd_manifests(), *bundle.operator_bundle()]
    }
    assert {(r.type.rsplit(":", 1)[-1], r.name.rsplit("/", 1)[-1]) for r in operator} == expected
    assert {"CustomResourceDefinition", "Deployment"} <= {r.type.rsplit(":", 1)[-1] for r in operator}
    crd_names = {r.name for r in operator if r.type.endswith("CustomResourceDefinition")}
    assert {"gpunodepools.dsx.ai", "tenants.dsx.ai"} <= crd_names
    for cr in [*run.of_kind("GpuNodePool"), *run.of_kind("Tenant")]:
        assert any("dsx:infra:DsxOperator" in dep for dep in cr.dependencies)


# --- a bad plan or config stops the program before any resource is registered -----------------


def _fails_cleanly(run: ProgramRun) -> str:
    assert isinstance(run.error, UserError), run.error
    assert run.resources == [], [r.name for r in run.resources]
    return run.error.render()


def test_unknown_site_fails_naming_the_stack_file_and_fix(plan_file: Path) -> None:
    text = _fails_cleanly(run_stack("batam", plan_file, **{"dsx:site": "jakarta"}))
    assert text.startswith("dsx:site in stacks/Pulumi.batam.yaml is 'jakarta', which is not a site in ")
    assert "sites in the plan: batam, sydney, narvik" in text
    assert "Fix: pulumi config set dsx:site batam --stack batam" in text


def test_period_outside_the_horizon_fails_cleanly(plan_file: Path) -> None:
    text = _fails_cleanly(run_stack("sydney", plan_file, **{"dsx:period": "2030Q1"}))
    assert "dsx:period in stacks/Pulumi.sydney.yaml is '2030Q1', outside the horizon" in text
    assert "(2027Q3..2027Q4)" in text


def test_plan_that_failed_verification_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "unverified.json"
    write_plan(make_plan(EXAMPLE_SITES, EXAMPLE_PERIODS, verified=False), bad)
    text = _fails_cleanly(run_stack("narvik", bad))
    assert "the plan failed verification" in text and "violation: power:" in text


def test_plan_of_another_schema_version_fails_cleanly(plan_file: Path, tmp_path: Path) -> None:
    data = json.loads(plan_file.read_text())
    data["schema_version"] = "0.9"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    text = _fails_cleanly(run_stack("batam", old))
    assert "plan schema_version is '0.9', this dsx reads '1.1', '1.2', '1.3', '1.4' and '1.5'" in text
    assert "the plan path comes from dsx:plan in stacks/Pulumi.batam.yaml" in text


def test_missing_plan_file_fails_with_the_command_that_writes_it(tmp_path: Path) -> None:
    text = _fails_cleanly(run_stack("batam", tmp_path / "nowhere.json"))
    assert "cannot read plan" in text and "dsx plan solve" in text


def test_missing_period_fails_naming_the_key(plan_file: Path) -> None:
    text = _fails_cleanly(run_program({"dsx:plan": str(plan_file)}, stack="batam"))
    assert text.startswith("stacks/Pulumi.batam.yaml: dsx:period is not set")


def test_unknown_backend_fails_cleanly(plan_file: Path) -> None:
    text = _fails_cleanly(run_stack("batam", plan_file, **{"dsx:nodePoolBackend": "nomad"}))
    assert "dsx:nodePoolBackend in stacks/Pulumi.batam.yaml is 'nomad'" in text


def test_structured_instance_types_reach_each_rack_types_pool(plan_file: Path) -> None:
    run = run_stack(
        "batam",
        plan_file,
        **{
            "dsx:installOperator": "false",
            "dsx:nodePoolBackend": "karpenter",
            "dsx:karpenterInstanceTypes": "gb300-nvl72=gb300-tray; b300-hgx=b300-8gpu,b300-8gpu-v2",
            "dsx:topologyBlockLabel": "network.topology.nvidia.com/spine",
        },
    )
    assert run.error is None, run.error
    specs = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_kind("GpuNodePool")}
    assert {n: s["karpenter"]["instanceTypes"] for n, s in specs.items()} == {
        "batam-gb300-nvl72": ["gb300-tray"],
        "batam-b300-hgx": ["b300-8gpu", "b300-8gpu-v2"],
    }
    assert all(s["topology"] == {"blockLabel": "network.topology.nvidia.com/spine"} for s in specs.values())


def test_single_node_nvlink_rack_types_are_read_from_the_stack(plan_file: Path) -> None:
    run = run_stack(
        "batam",
        plan_file,
        **{"dsx:installOperator": "false", "dsx:singleNodeNvlinkRackTypes": " b300-hgx ,"},
    )
    assert run.error is None, run.error
    specs = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_kind("GpuNodePool")}
    assert specs["batam-b300-hgx"]["topology"] == {"nvlinkDomain": "node"}
    assert "topology" not in specs["batam-gb300-nvl72"]


def test_one_instance_type_list_for_two_rack_types_fails_cleanly(plan_file: Path) -> None:
    text = _fails_cleanly(
        run_stack(
            "batam",
            plan_file,
            **{"dsx:nodePoolBackend": "karpenter", "dsx:karpenterInstanceTypes": "gb300-tray"},
        )
    )
    assert "dsx:karpenterInstanceTypes in stacks/Pulumi.batam.yaml names one instance-type list" in text


def test_instance_types_naming_a_rack_type_twice_fail_cleanly(plan_file: Path) -> None:
    text = _fails_cleanly(
        run_stack(
            "batam",
            plan_file,
            **{
                "dsx:nodePoolBackend": "karpenter",
                "dsx:karpenterInstanceTypes": "gb300-nvl72=a;gb300-nvl72=b",
            },
        )
    )
    assert "dsx:karpenterInstanceTypes in stacks/Pulumi.batam.yaml: 'gb300-nvl72=b' is not" in text


def test_pulumi_reports_the_failure_without_a_traceback(plan_file: Path) -> None:
    import pulumi

    run = run_stack("batam", plan_file, **{"dsx:site": "jakarta"})
    assert isinstance(run.error, pulumi.RunError)  # the Python host prints RunError as a plain message


def test_runs_are_isolated_from_each_other(plan_file: Path) -> None:
    first = run_stack("batam", plan_file, **{"dsx:installOperator": "false"})
    second = run_stack("narvik", plan_file, **{"dsx:installOperator": "false"})
    assert len(first.kubernetes_objects) == 4 and len(second.kubernetes_objects) == 2
    assert second.outputs["site"] == "narvik"


# --- the project file and the example stacks agree with the program ---------------------------


def test_pulumi_yaml_declares_the_program_layout_and_every_config_key() -> None:
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "dsx"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert project["main"] == "infra/" and project["stackConfigDir"] == STACK_CONFIG_DIR
    source = (REPO_ROOT / "infra" / "settings.py").read_text()
    read_keys = {f"dsx:{k}" for k in re.findall(r'config\.get(?:_secret)?\("(\w+)"\)', source)}
    read_keys |= {f"dsx:{k}" for k in re.findall(r'(?:_require|_int)\(config, "(\w+)"', source)}
    assert read_keys == set(project["config"])
    assert all(decl.get("description") for decl in project["config"].values())
    assert project["config"]["dsx:kubeconfig"]["secret"] is True


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_example_stacks_name_their_site_a_plan_and_a_period_but_no_plaintext_kubeconfig(site: str) -> None:
    config = yaml.safe_load((REPO_ROOT / STACK_CONFIG_DIR / f"Pulumi.{site}.yaml").read_text())["config"]
    assert config["dsx:site"] == site and config["dsx:plan"] == "plans/dsx-2026.json"
    assert config["dsx:period"] == "2027Q4"
    assert "dsx:kubeconfig" not in config  # set with `pulumi config set --secret`, encrypted by the CLI


@pytest.mark.parametrize("site", EXAMPLE_SITES)
def test_example_stack_whose_plan_a_clone_lacks_says_how_to_make_it(site: str) -> None:
    from dsx.commands.provision import git_ignored

    text = (REPO_ROOT / STACK_CONFIG_DIR / f"Pulumi.{site}.yaml").read_text()
    plan = REPO_ROOT / yaml.safe_load(text)["config"]["dsx:plan"]
    if git_ignored(plan):
        assert f"dsx plan solve examples/dsx-2026.yaml -o {plan.relative_to(REPO_ROOT)}" in text


def test_running_the_program_outside_pulumi_says_how_to_run_it_without_a_traceback() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "infra"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2  # a user mistake, as every dsx command exits
    assert "Traceback" not in done.stderr
    assert "the Pulumi engine runs it" in done.stderr and "pulumi up --stack SITE" in done.stderr
