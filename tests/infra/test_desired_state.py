"""The pure core: plan + site + period → exactly the custom resources the plan implies.

Figures are the hand-checkable ones documented in tests/infra/plan_factory.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.checks import Origin, PlanMismatchError, StackConfigError, parse_instance_types
from infra.desired_state import BackendSettings, TenantSizing, desired_state, split_owners
from infra.naming import whole_gpus
from planner.schema.plan import Plan, QuotaDecision
from tests.infra.plan_factory import make_plan


def _by_name(manifests: list[dict]) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests}


def test_one_node_pool_per_rack_type_with_racks_named_site_rack_type() -> None:
    batam = desired_state(make_plan(), "batam", "2026Q4")
    sydney = desired_state(make_plan(), "sydney", "2026Q4")
    assert sorted(_by_name(batam.node_pools)) == ["batam-b300-hgx", "batam-gb300-nvl72"]
    assert sorted(_by_name(sydney.node_pools)) == ["sydney-gb300-nvl72"]  # no b300 racks, no pool
    pool = _by_name(batam.node_pools)["batam-gb300-nvl72"]
    assert pool["apiVersion"] == "dsx.ai/v1alpha1" and pool["kind"] == "GpuNodePool"
    spec = pool["spec"]
    assert (spec["site"], spec["rackType"], spec["gpuProduct"]) == ("batam", "gb300-nvl72", "NVIDIA-GB300")
    assert (spec["racks"], spec["nodesPerRack"], spec["gpusPerNode"]) == (10, 18, 4)
    assert _by_name(batam.node_pools)["batam-b300-hgx"]["spec"]["gpusPerNode"] == 8


def test_node_pools_are_tainted_and_labelled_so_only_gpu_work_lands_there() -> None:
    pool = _by_name(desired_state(make_plan(), "batam", "2026Q4").node_pools)["batam-gb300-nvl72"]
    assert pool["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert pool["spec"]["labels"] == {"dsx.ai/rack-type": "gb300-nvl72"}
    labels = pool["metadata"]["labels"]
    assert labels["dsx.ai/site"] == "batam" and labels["dsx.ai/pool"] == "batam-gb300-nvl72"
    assert labels["dsx.ai/period"] == "2026Q4"
    assert pool["metadata"]["annotations"]["dsx.ai/plan-hash"] == "0123456789abcdef"


def test_cluster_api_backend_names_the_site_cluster_and_templates() -> None:
    pool = _by_name(desired_state(make_plan(), "batam", "2026Q4").node_pools)["batam-gb300-nvl72"]
    capi = pool["spec"]["clusterApi"]
    assert pool["spec"]["backend"] == "cluster-api" and "karpenter" not in pool["spec"]
    assert capi["clusterName"] == "batam" and capi["kubernetesVersion"] == "v1.33.4"
    assert capi["infrastructureRef"]["name"] == "batam-gb300-nvl72"
    assert capi["bootstrapConfigRef"]["kind"] == "KubeadmConfigTemplate"
    assert (
        capi["infrastructureRef"]["apiGroup"] == "infrastructure.cluster.x-k8s.io"
    )  # v1beta2: no apiVersion


def test_cluster_api_templates_are_site_settings() -> None:
    settings = BackendSettings(
        infrastructure_template="infrastructure.cluster.x-k8s.io/ByoMachineTemplate",
        bootstrap_template="bootstrap.cluster.x-k8s.io/TalosConfigTemplate",
    )
    pool = desired_state(make_plan(), "batam", "2026Q4", backend=settings).node_pools[0]
    capi = pool["spec"]["clusterApi"]
    assert capi["infrastructureRef"]["kind"] == "ByoMachineTemplate"
    assert capi["bootstrapConfigRef"] == {
        "apiGroup": "bootstrap.cluster.x-k8s.io",
        "kind": "TalosConfigTemplate",
        "name": "batam-gpu",
    }


def test_karpenter_backend_carries_a_node_class_instead() -> None:
    state = desired_state(
        make_plan(), "batam", "2026Q4", backend=BackendSettings("karpenter", karpenter_node_class="gpu-big")
    )
    spec = state.node_pools[0]["spec"]
    assert spec["backend"] == "karpenter" and "clusterApi" not in spec
    assert spec["karpenter"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "gpu-big",
    }
    assert spec["karpenter"]["instanceTypes"] == [spec["rackType"]]


def test_karpenter_node_class_is_per_site_bare_metal_included_and_instance_types_per_rack_type() -> None:
    settings = BackendSettings(
        "karpenter",
        karpenter_node_class="metal.example.com/MetalNodeClass/gpu",
        karpenter_instance_types={"gb300-nvl72": ("gb300-tray",), "b300-hgx": ("b300-8gpu", "b300-8gpu-v2")},
    )
    pools = _by_name(desired_state(make_plan(), "batam", "2026Q4", backend=settings).node_pools)
    assert pools["batam-gb300-nvl72"]["spec"]["karpenter"] == {
        "nodeClassRef": {"group": "metal.example.com", "kind": "MetalNodeClass", "name": "gpu"},
        "instanceTypes": ["gb300-tray"],
    }
    assert pools["batam-b300-hgx"]["spec"]["karpenter"]["instanceTypes"] == ["b300-8gpu", "b300-8gpu-v2"]


def test_a_rack_type_without_named_instance_types_gets_its_own_id() -> None:
    settings = BackendSettings("karpenter", karpenter_instance_types={"gb300-nvl72": ("gb300-tray",)})
    pools = _by_name(desired_state(make_plan(), "batam", "2026Q4", backend=settings).node_pools)
    assert pools["batam-b300-hgx"]["spec"]["karpenter"]["instanceTypes"] == ["b300-hgx"]


def test_one_instance_type_list_for_a_site_with_two_rack_types_is_refused() -> None:
    settings = BackendSettings("karpenter", karpenter_instance_types={"*": ("gb300-tray",)})
    origin = Origin.for_stack("batam", "stacks/Pulumi.batam.yaml")
    with pytest.raises(StackConfigError, match="runs 2 rack types") as info:
        desired_state(make_plan(), "batam", "2026Q4", backend=settings, origin=origin)
    assert "dsx:karpenterInstanceTypes in stacks/Pulumi.batam.yaml" in str(info.value)
    assert (
        "Fix: pulumi config set dsx:karpenterInstanceTypes "
        "'b300-hgx=<instance-type>;gb300-nvl72=<instance-type>' --stack batam" in info.value.details
    )
    # a site running one rack type may keep one list
    sydney = desired_state(make_plan(), "sydney", "2026Q4", backend=settings).node_pools
    assert [p["spec"]["karpenter"]["instanceTypes"] for p in sydney] == [["gb300-tray"]]


def test_instance_types_are_written_per_rack_type_or_as_one_bare_list() -> None:
    cli = Origin.for_cli()
    assert parse_instance_types(" gb300-nvl72=a, b ; b300-hgx=c ", cli) == {
        "gb300-nvl72": ("a", "b"),
        "b300-hgx": ("c",),
    }
    assert parse_instance_types("a,b", cli) == {"*": ("a", "b")}
    assert parse_instance_types("", cli) == {}
    for bad in ("gb300-nvl72=", "=a", "a;gb300-nvl72=b", "x=a;x=b"):
        with pytest.raises(StackConfigError, match="--instance-types"):
            parse_instance_types(bad, cli)


@pytest.mark.parametrize("bad", ["gb300-nvl72=gb300 tray", "gb300-nvl72=" + "a" * 64, "-tray", "a,b/c"])
def test_an_instance_type_that_is_no_label_value_is_refused_before_anything_is_rendered(bad: str) -> None:
    stack = Origin.for_stack("batam", "stacks/Pulumi.batam.yaml")
    with pytest.raises(StackConfigError, match="is not a label value") as info:
        parse_instance_types(bad, stack)
    assert str(info.value).startswith("dsx:karpenterInstanceTypes in stacks/Pulumi.batam.yaml: instance type")


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ({"gb300-nvl72": ("gpu-box",), "b300-hgx": ("gpu-box",)}, "more than one rack type"),
        ({"gb300-nv172": ("gb300-tray",)}, "rack types the plan does not have: gb300-nv172"),
    ],
)
def test_instance_types_that_could_cross_pools_or_name_no_rack_type_are_refused(
    types: dict[str, tuple[str, ...]], message: str
) -> None:
    with pytest.raises(StackConfigError, match=message):
        desired_state(
            make_plan(),
            "batam",
            "2026Q4",
            backend=BackendSettings("karpenter", karpenter_instance_types=types),
        )


def test_topology_block_label_reaches_every_pool_only_when_set() -> None:
    plain = desired_state(make_plan(), "batam", "2026Q4").node_pools
    assert all("topology" not in p["spec"] for p in plain)
    settings = BackendSettings(topology_block_label="network.topology.nvidia.com/spine")
    pools = desired_state(make_plan(), "batam", "2026Q4", backend=settings).node_pools
    assert [p["spec"]["topology"] for p in pools] == [{"blockLabel": "network.topology.nvidia.com/spine"}] * 2


@pytest.mark.parametrize("label", ["nvidia.com/gpu.clique", "kubernetes.io/hostname", "spine switch"])
def test_a_block_label_that_is_no_block_is_refused_naming_the_setting(label: str) -> None:
    origin = Origin.for_stack("batam", "stacks/Pulumi.batam.yaml")
    with pytest.raises(StackConfigError, match=r"dsx:topologyBlockLabel in stacks/Pulumi\.batam\.yaml"):
        desired_state(
            make_plan(),
            "batam",
            "2026Q4",
            backend=BackendSettings(topology_block_label=label),
            origin=origin,
        )


def test_quotas_are_rounded_down_to_whole_gpus_and_never_exceed_the_pool() -> None:
    state = desired_state(make_plan(), "batam", "2026Q4")
    tenants = _by_name(state.tenants)
    assert tenants["inference-cloud"]["spec"]["gpuQuota"] == [
        {"pool": "batam-gb300-nvl72", "gpus": 400}
    ]  # 400.7
    assert tenants["model-builder"]["spec"]["gpuQuota"] == [
        {"pool": "batam-b300-hgx", "gpus": 160},
        {"pool": "batam-gb300-nvl72", "gpus": 320},  # 319.9999999 is solver noise, not 319
    ]
    per_pool: dict[str, int] = {}
    for t in state.tenants:
        for q in t["spec"]["gpuQuota"]:
            per_pool[q["pool"]] = per_pool.get(q["pool"], 0) + q["gpus"]
    assert per_pool == {"batam-gb300-nvl72": 720, "batam-b300-hgx": 160}
    assert per_pool["batam-gb300-nvl72"] <= 10 * 72


def test_whole_gpus_rounds_down_except_for_solver_noise() -> None:
    assert [whole_gpus(x) for x in (0.4, 400.7, 319.9999999, 320.0, -1e-9)] == [0, 400, 320, 320, 0]


def test_tenant_without_whole_gpus_at_the_site_gets_no_tenant_object() -> None:
    names = sorted(_by_name(desired_state(make_plan(), "batam", "2026Q4").tenants))
    assert names == ["inference-cloud", "model-builder"]  # sovereign has 0.4 GPU at batam
    assert sorted(_by_name(desired_state(make_plan(), "sydney", "2026Q4").tenants)) == [
        "inference-cloud",
        "sovereign",
    ]


def test_tenant_spec_follows_the_crd_contract() -> None:
    tenant = _by_name(desired_state(make_plan(), "batam", "2026Q4").tenants)["model-builder"]
    assert tenant["apiVersion"] == "dsx.ai/v1alpha1" and tenant["kind"] == "Tenant"
    spec = tenant["spec"]
    assert spec["displayName"] == "Frontier model builder"
    assert spec["site"] == "batam"
    assert spec["owners"] == {"users": ["alice@example.com"], "groups": ["mb-admins"]}
    assert spec["namespaces"] == ["model-builder"]
    assert (spec["cpuQuota"], spec["memoryQuota"], spec["podQuota"]) == ("7680", "61440Gi", 1920)  # 480 GPUs
    assert "kueue" not in spec  # idle GPUs are lent within the site cohort (docs/provisioning.md)
    assert spec["deletionPolicy"] == "Retain"
    assert tenant["metadata"]["labels"]["dsx.ai/tenant"] == "model-builder"


def test_sizing_and_namespace_style_are_settings() -> None:
    state = desired_state(
        make_plan(),
        "sydney",
        "2026Q4",
        sizing=TenantSizing(cpu_per_gpu=2, memory_gib_per_gpu=8, pods_per_gpu=1),
        namespace_style="tenant-site",
    )
    spec = _by_name(state.tenants)["sovereign-sydney"]["spec"]
    assert spec["namespaces"] == ["sovereign-sydney"]
    assert (spec["cpuQuota"], spec["memoryQuota"], spec["podQuota"]) == ("400", "1600Gi", 200)


def test_owners_are_split_into_users_and_groups() -> None:
    assert split_owners(["group:a", "user:b@x.io", "c@x.io", "group:"]) == {
        "users": ["b@x.io", "c@x.io", "group:"],
        "groups": ["a"],
    }


def test_summary_and_outputs_report_mw_racks_gpus_and_tenants() -> None:
    state = desired_state(make_plan(), "batam", "2026Q4")
    out = state.outputs()
    assert out["site"] == "batam" and out["period"] == "2026Q4"
    assert out["availableMw"] == 40.0
    assert out["racks"] == {"b300-hgx": 5, "gb300-nvl72": 10}
    assert (out["gpus"], out["nodes"]) == (880, 200)
    assert out["tenants"]["model-builder"]["gpus"] == 480
    assert out["unallocatedGpus"] == 0
    assert out["nodePools"] == ["batam-b300-hgx", "batam-gb300-nvl72"]


def test_manifests_put_the_operator_first_then_pools_then_tenants() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "tenants.dsx.ai"},
    }
    kinds = [m["kind"] for m in desired_state(make_plan(), "batam", "2026Q4", operator=[crd]).manifests()]
    assert kinds == ["CustomResourceDefinition", "GpuNodePool", "GpuNodePool", "Tenant", "Tenant"]


def test_a_period_with_no_racks_yields_no_pools_and_no_tenants() -> None:
    plan = make_plan()
    empty = plan.model_copy(
        update={"racks": [r.model_copy(update={"racks_installed": 0}) for r in plan.racks], "quotas": []}
    )
    state = desired_state(empty, "batam", "2026Q4")
    assert (state.node_pools, state.tenants, state.summary.gpus) == ([], [], 0)


@pytest.mark.parametrize(
    ("site", "period", "expected"),
    [
        ("jakarta", "2026Q4", "--site is 'jakarta', which is not a site in plan.json"),
        ("batam", "2031Q1", "--period is '2031Q1', outside the horizon of plan.json (2026Q3..2026Q4)"),
    ],
)
def test_unknown_site_or_period_names_the_setting_and_the_choices(
    site: str, period: str, expected: str
) -> None:
    with pytest.raises(PlanMismatchError) as info:
        desired_state(make_plan(), site, period, origin=Origin.for_cli("plan.json"))
    assert info.value.message == expected
    assert any(d.startswith("Fix: pass") for d in info.value.details)


def test_stack_origin_names_the_stack_file_and_the_pulumi_config_fix() -> None:
    origin = Origin.for_stack("batam", "stacks/Pulumi.batam.yaml", "plans/dsx-2026.json")
    with pytest.raises(PlanMismatchError) as info:
        desired_state(make_plan(), "jakarta", "2026Q4", origin=origin)
    assert info.value.message.startswith("dsx:site in stacks/Pulumi.batam.yaml is 'jakarta'")
    assert "Fix: pulumi config set dsx:site batam --stack batam" in info.value.details


def test_a_plan_that_failed_verification_is_not_provisioned() -> None:
    with pytest.raises(PlanMismatchError, match="failed verification") as info:
        desired_state(make_plan(verified=False), "batam", "2026Q4")
    assert "violation: power: batam 2026Q4 needs 41 MW > 40 MW" in info.value.details


def test_quotas_that_overcommit_a_pool_are_refused_not_applied() -> None:
    plan = make_plan()
    extra = QuotaDecision(
        tenant="sovereign", site="batam", rack_type="gb300-nvl72", period="2026Q4", quota_gpus=5
    )
    with pytest.raises(PlanMismatchError) as info:
        desired_state(plan.model_copy(update={"quotas": [*plan.quotas, extra]}), "batam", "2026Q4")
    assert "pool batam-gb300-nvl72: quotas sum to 725 GPUs, the pool has 720" in info.value.details


def test_unknown_backend_is_a_settings_error() -> None:
    with pytest.raises(StackConfigError, match="'nomad', not a node-pool backend"):
        desired_state(make_plan(), "batam", "2026Q4", backend="nomad")  # type: ignore[arg-type]


def test_shared_cluster_style_gives_each_sites_tenants_their_own_cluster_scoped_names() -> None:
    plan = make_plan()
    batam = desired_state(plan, "batam", "2026Q4", namespace_style="tenant-site").tenants
    sydney = desired_state(plan, "sydney", "2026Q4", namespace_style="tenant-site").tenants
    names = [t["metadata"]["name"] for t in batam + sydney]
    assert len(names) == len(set(names))  # one cluster, no Tenant overwrites another
    assert all(t["metadata"]["name"] == t["spec"]["namespaces"][0] for t in batam + sydney)
    assert {t["metadata"]["labels"]["dsx.ai/tenant"] for t in batam} <= {t.id for t in plan.tenants}


class _Config:
    def __init__(self, values: dict[str, str]):
        self.values = values

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def get_secret(self, key: str) -> None:
        return None


def test_shared_cluster_stacks_leave_the_operator_to_the_one_stack_that_says_so(tmp_path: Path) -> None:
    from infra.settings import read_settings

    base = {"plan": "plans/p.json", "period": "2026Q4", "namespaceStyle": "tenant-site"}
    assert not read_settings(_Config(base), "batam", tmp_path).install_operator  # type: ignore[arg-type]
    owner = read_settings(_Config({**base, "installOperator": "true"}), "sydney", tmp_path)  # type: ignore[arg-type]
    assert owner.install_operator
    own_cluster = read_settings(_Config({**base, "namespaceStyle": "tenant"}), "narvik", tmp_path)  # type: ignore[arg-type]
    assert own_cluster.install_operator


def test_a_rack_type_with_a_one_node_nvlink_domain_gets_a_topology_without_the_rack_level() -> None:
    settings = BackendSettings(single_node_nvlink_rack_types=("b300-hgx",))
    pools = _by_name(desired_state(make_plan(), "batam", "2026Q4", backend=settings).node_pools)
    assert pools["batam-b300-hgx"]["spec"]["topology"] == {"nvlinkDomain": "node"}
    assert "topology" not in pools["batam-gb300-nvl72"]["spec"]  # NVL72: the rack is the domain


def test_a_one_node_nvlink_rack_type_the_plan_does_not_have_is_refused() -> None:
    settings = BackendSettings(single_node_nvlink_rack_types=("b300-hxg",))
    stack = Origin.for_stack("batam", "stacks/Pulumi.batam.yaml")
    with pytest.raises(StackConfigError, match="names rack types the plan does not have: b300-hxg") as info:
        desired_state(make_plan(), "batam", "2026Q4", backend=settings, origin=stack)
    assert str(info.value).startswith("dsx:singleNodeNvlinkRackTypes in stacks/Pulumi.batam.yaml")


def _renamed(plan: Plan, **ids: dict[str, str]) -> Plan:
    """The plan with tenant, site or rack type ids renamed (`tenants=`, `sites=`, `rack_types=`
    mappings) wherever they appear."""
    data = plan.model_dump(mode="json")
    for family, field in (("tenants", "tenant"), ("sites", "site"), ("rack_types", "rack_type")):
        new = ids.get(family, {})
        for record in data[family]:
            record["id"] = new.get(record["id"], record["id"])
        for records in data.values():
            for record in records if isinstance(records, list) else []:
                if isinstance(record, dict) and field in record:
                    record[field] = new.get(record[field], record[field])
                if isinstance(record, dict) and isinstance(record.get("racks_by_type"), dict):
                    record["racks_by_type"] = {
                        new.get(k, k) if field == "rack_type" else k: v
                        for k, v in record["racks_by_type"].items()
                    }
    return Plan.model_validate(data)


@pytest.mark.parametrize(
    "tenant",
    ["kube-system", "default", "monitoring", "ingress-nginx", "dsx-system", "cert-manager", "kube-x"],
)
def test_a_tenant_whose_namespace_is_reserved_is_refused_before_anything_is_registered(tenant: str) -> None:
    # The operator refuses kube-system at run time; monitoring it would have created, and every
    # tenant's network policy admits pods from there.
    plan = _renamed(make_plan(), tenants={"inference-cloud": tenant})
    with pytest.raises(PlanMismatchError) as info:
        desired_state(plan, "batam", "2026Q4", origin=Origin.for_cli("plan.json"))
    assert info.value.message == "plan.json: a tenant's namespace at batam would be one no tenant may have"
    assert f"tenant {tenant!r}: namespace {tenant!r}" in info.value.details


def test_shared_cluster_tenant_names_that_two_sites_would_both_get_are_refused_at_either_site() -> None:
    # tenant agent at platform-sydney and tenant agent-platform at sydney are both agent-platform-sydney
    plan = _renamed(
        make_plan(),
        tenants={"inference-cloud": "agent-platform", "sovereign": "agent"},
        sites={"batam": "platform-sydney"},
    )
    for site in ("platform-sydney", "sydney"):
        with pytest.raises(PlanMismatchError, match="these names would be given twice") as info:
            desired_state(plan, site, "2026Q4", namespace_style="tenant-site")
        assert (
            "agent-platform-sydney: tenant 'agent-platform' at 'sydney' and tenant 'agent' at 'platform-sydney'"
            in info.value.details
        )
    # Each site its own cluster: the same names are in different clusters.
    assert desired_state(plan, "sydney", "2026Q4", namespace_style="tenant").tenants


def test_shared_cluster_pool_names_that_two_sites_would_both_get_are_refused() -> None:
    # site a's gb300-nvl72 pool and site a-gb300's nvl72 pool are both a-gb300-nvl72
    plan = _renamed(make_plan(sites=("a-gb300", "a")), rack_types={"b300-hgx": "nvl72"})
    with pytest.raises(PlanMismatchError) as info:
        desired_state(plan, "a", "2026Q4", namespace_style="tenant-site")
    assert (
        "a-gb300-nvl72: rack type 'gb300-nvl72' at 'a' and rack type 'nvl72' at 'a-gb300'"
        in info.value.details
    )


def test_instance_types_with_the_cluster_api_backend_are_refused_not_ignored() -> None:
    backend = BackendSettings(
        backend="cluster-api", karpenter_instance_types={"gb300-nvl72": ("gb300-tray",)}
    )
    with pytest.raises(StackConfigError) as info:
        desired_state(make_plan(), "batam", "2026Q4", backend=backend, origin=Origin.for_cli("plan.json"))
    assert info.value.message == (
        "--instance-types is set, but --backend is cluster-api: instance types are for Karpenter's pools only"
    )


@pytest.mark.parametrize(("period", "fix"), [("2026q4", "2026Q4"), ("2026-4", "2026Q4"), ("Q4", "2026Q4")])
def test_a_period_that_is_no_quarter_says_so_rather_than_outside_the_horizon(period: str, fix: str) -> None:
    with pytest.raises(PlanMismatchError) as info:
        desired_state(make_plan(), "batam", period, origin=Origin.for_cli("plan.json"))
    assert info.value.message == f"--period is {period!r}, not a quarter such as 2027Q4"
    assert info.value.details == [f"Fix: pass --period {fix}"]
