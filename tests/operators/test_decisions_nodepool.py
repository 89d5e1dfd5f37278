"""What a GpuNodePool implies, computed without any server."""

from __future__ import annotations

from typing import Any

import pytest

from operators.decisions.nodepool import (
    InvalidSpec,
    desired_children,
    karpenter_node_pool,
    machine_deployment,
    node_labels,
    pool_size,
    pool_status,
    resource_flavor,
    topology,
    unsynced_labels,
)
from tests.operators.conftest import example


def test_machine_deployment_replicas_are_racks_times_nodes_per_rack() -> None:
    pool = example("gpunodepool")  # 500 racks x 18 nodes
    md = machine_deployment(pool)
    assert md["kind"] == "MachineDeployment"
    assert md["spec"]["replicas"] == 9000
    assert md["spec"]["clusterName"] == "batam"
    assert md["spec"]["template"]["spec"]["bootstrap"]["configRef"]["kind"] == "KubeadmConfigTemplate"
    assert md["metadata"]["ownerReferences"][0]["kind"] == "GpuNodePool"
    assert md["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "dsx-operator"


def _karpenter(pool: dict) -> dict:
    pool["spec"]["backend"] = "karpenter"
    pool["spec"]["karpenter"] = {
        "nodeClassRef": {"group": "metal.example.com", "kind": "MetalNodeClass", "name": "gb300"},
        "instanceTypes": ["gb300-nvl72-node"],
    }
    return pool


def test_karpenter_backend_limits_gpus_to_the_plan_and_taints_nodes() -> None:
    nodepool = karpenter_node_pool(_karpenter(example("gpunodepool")))
    assert nodepool["spec"]["limits"] == {"nvidia.com/gpu": "36000"}  # 500 x 18 x 4
    assert nodepool["spec"]["template"]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    kinds = [c["kind"] for c in desired_children(_karpenter(example("gpunodepool")))]
    assert kinds == ["NodePool", "Topology", "ResourceFlavor"]


def test_karpenter_launches_only_the_sites_gpu_instance_types_with_its_node_class() -> None:
    spec = karpenter_node_pool(_karpenter(example("gpunodepool")))["spec"]["template"]["spec"]
    assert spec["requirements"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["gb300-nvl72-node"]}
    ]
    assert spec["nodeClassRef"] == {"group": "metal.example.com", "kind": "MetalNodeClass", "name": "gb300"}


def test_karpenter_never_drains_a_busy_gpu_node() -> None:
    nodepool = karpenter_node_pool(_karpenter(example("gpunodepool")))
    disruption = nodepool["spec"]["disruption"]
    assert disruption["consolidationPolicy"] == "WhenEmpty"  # never WhenEmptyOrUnderutilized
    assert {"nodes": "0", "reasons": ["Drifted"]} in disruption["budgets"]
    assert nodepool["spec"]["template"]["spec"]["expireAfter"] == "Never"


def test_karpenter_pool_without_instance_types_is_refused() -> None:
    pool = _karpenter(example("gpunodepool"))
    del pool["spec"]["karpenter"]["instanceTypes"]
    with pytest.raises(InvalidSpec, match="instanceTypes"):
        desired_children(pool)


def test_machine_deployment_uses_v1beta2_refs_and_puts_the_pool_taints_on_machines() -> None:
    md = machine_deployment(example("gpunodepool"))
    assert md["apiVersion"] == "cluster.x-k8s.io/v1beta2"
    template = md["spec"]["template"]["spec"]
    assert template["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io",
        "kind": "Metal3MachineTemplate",
        "name": "batam-gb300",
    }
    assert template["bootstrap"]["configRef"]["apiGroup"] == "bootstrap.cluster.x-k8s.io"
    assert template["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule", "propagation": "Always"}
    ]


def test_cluster_api_pool_labels_that_would_not_reach_nodes_are_refused() -> None:
    pool = example("gpunodepool")
    pool["spec"]["labels"] = {"example.com/team": "a"}
    with pytest.raises(InvalidSpec, match=r"example\.com/team would never reach the Nodes"):
        desired_children(pool)
    pool["spec"]["labels"] = {"node.cluster.x-k8s.io/team": "a"}  # a synced domain
    desired_children(pool)
    pool["spec"]["clusterApi"]["additionalSyncMachineLabels"] = []  # controller runs without the flag
    with pytest.raises(InvalidSpec, match=r"dsx\.ai/pool"):
        desired_children(pool)


def test_unsynced_labels_follow_cluster_api_domains_and_the_flag() -> None:
    labels = {"node-role.kubernetes.io/gpu": "", "x.node.cluster.x-k8s.io/a": "", "dsx.ai/pool": "p"}
    assert unsynced_labels(labels, []) == ["dsx.ai/pool"]
    assert unsynced_labels(labels, [r"^dsx\.ai/.*$"]) == []


def test_cluster_api_refs_need_an_api_group() -> None:
    pool = example("gpunodepool")
    pool["spec"]["clusterApi"]["infrastructureRef"] = {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "Metal3MachineTemplate",
        "name": "x",
    }
    with pytest.raises(InvalidSpec, match="infrastructureRef needs apiGroup"):
        desired_children(pool)


def test_flavor_tolerates_the_pools_taints_and_names_its_nvlink_topology() -> None:
    pool = example("gpunodepool")
    flavor = resource_flavor(pool)
    assert flavor["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    assert "nodeTaints" not in flavor["spec"]
    assert flavor["spec"]["topologyName"] == "batam-gb300-nvl72"
    levels = [lv["nodeLabel"] for lv in topology(pool)["spec"]["levels"]]
    assert levels == ["nvidia.com/gpu.clique", "kubernetes.io/hostname"]


def test_topology_has_a_block_level_only_when_the_pool_names_its_label() -> None:
    pool = example("gpunodepool")
    pool["spec"]["topology"] = {"blockLabel": "network.topology.nvidia.com/spine"}
    levels = [lv["nodeLabel"] for lv in topology(pool)["spec"]["levels"]]
    assert levels == ["network.topology.nvidia.com/spine", "nvidia.com/gpu.clique", "kubernetes.io/hostname"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("kubernetes.io/hostname", "already a level below the block"),
        ("nvidia.com/gpu.clique", "already a level below the block"),
        ("spine switch", "not a node label key"),
        ("a" * 64, "not a node label key"),
    ],
)
def test_block_label_that_is_a_lower_level_or_no_label_key_is_refused(block: str, message: str) -> None:
    pool = example("gpunodepool")
    pool["spec"]["topology"] = {"blockLabel": block}
    with pytest.raises(InvalidSpec, match=message):
        desired_children(pool)


def test_status_says_which_ready_nodes_kueue_ignores_for_lack_of_a_level_label() -> None:
    pool = example("gpunodepool")
    pool["spec"]["racks"] = 1
    pool["spec"]["topology"] = {"blockLabel": "network.topology.nvidia.com/spine"}
    placed = {
        **node_labels(pool),
        "kubernetes.io/hostname": "a",
        "nvidia.com/gpu.clique": "c1",
        "network.topology.nvidia.com/spine": "s1",
    }
    no_block = {k: v for k, v in placed.items() if k != "network.topology.nvidia.com/spine"}
    nodes = [_node("a", placed, True, 4), _node("b", no_block, True, 4), _node("c", no_block, False, 4)]
    _, conditions = pool_status(pool, nodes)
    incomplete = next(c for c in conditions if c.type == "TopologyIncomplete")
    assert incomplete.status and "1 lack network.topology.nvidia.com/spine" in incomplete.message
    _, conditions = pool_status(pool, nodes[:1])
    assert not next(c for c in conditions if c.type == "TopologyIncomplete").status


def test_resource_flavor_is_keyed_on_the_pools_node_labels() -> None:
    pool = example("gpunodepool")
    flavor = resource_flavor(pool)
    assert flavor["spec"]["nodeLabels"] == {
        "dsx.ai/tier": "premium",
        "dsx.ai/site": "batam",
        "dsx.ai/pool": "batam-gb300-nvl72",
        "nvidia.com/gpu.product": "NVIDIA-GB300",
    }


def test_pool_size_from_racks() -> None:
    size = pool_size({"racks": 3, "nodesPerRack": 18, "gpusPerNode": 4})
    assert (size.desired_nodes, size.capacity_gpus) == (54, 216)


def _node(name: str, labels: dict[str, str], ready: bool, gpus: int) -> dict:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "allocatable": {"nvidia.com/gpu": str(gpus)},
        },
    }


def test_status_counts_only_ready_nodes_that_carry_all_pool_labels() -> None:
    pool = example("gpunodepool")
    pool["spec"]["racks"] = 1  # 18 nodes wanted
    labels = node_labels(pool)
    nodes = [
        _node("a", labels, True, 4),
        _node("b", labels, True, 4),
        _node("c", labels, False, 4),  # not ready
        _node("d", {**labels, "nvidia.com/gpu.product": "NVIDIA-B300"}, True, 8),  # another product
    ]
    figures, conditions = pool_status(pool, nodes)
    assert figures == {"desiredNodes": 18, "readyNodes": 2, "allocatableGpus": 8, "capacityGpus": 72}
    ready = next(c for c in conditions if c.type == "Ready")
    assert not ready.status and ready.reason == "NodesProvisioning"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "karpenter"}, "spec.karpenter.nodeClassRef is required"),
        ({"clusterApi": {}}, "spec.clusterApi.clusterName is required"),
        ({"racks": -1}, "spec.racks must be ≥ 0"),
    ],
)
def test_invalid_pool_spec_is_refused_with_the_field_named(change: dict, message: str) -> None:
    pool = example("gpunodepool")
    pool["spec"].update(change)
    with pytest.raises(InvalidSpec, match=message):
        desired_children(pool)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"racks": 10**7, "nodesPerRack": 1000}, "at most 2147483647"),
        ({"labels": {"bad key!": "v"}}, "not a valid label key"),
        ({"labels": {"tier": "x" * 64}}, "not a valid label value"),
        ({"labels": {f"k{i}": "v" for i in range(40)}}, "at most 32"),
        ({"racks": "many"}, "must be an integer"),
    ],
)
def test_pool_spec_beyond_what_downstream_objects_hold_is_refused(change: dict, message: str) -> None:
    pool = example("gpunodepool")
    pool["spec"].update(change)
    with pytest.raises(InvalidSpec, match=message):
        desired_children(pool)


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "Metal3 Machine/Template"), ("name", "Batam_GB300"), ("apiGroup", "infrastructure/../x")],
)
def test_a_cluster_api_reference_that_could_name_no_object_is_refused(field: str, value: str) -> None:
    pool = example("gpunodepool")
    pool["spec"]["clusterApi"]["infrastructureRef"][field] = value
    with pytest.raises(InvalidSpec, match="is not a Cluster API reference"):
        desired_children(pool)


@pytest.mark.parametrize(
    "change",
    [
        lambda spec: spec["clusterApi"]["infrastructureRef"].update(
            apiGroup="x\n\x1b[2Jevil", kind="K" * 3000
        ),
        lambda spec: spec["clusterApi"]["bootstrapConfigRef"].update(name="a\nReady: True" + "b" * 3000),
        lambda spec: spec.update(taints=[{"key": "k" * 5000 + "\n", "effect": "NoSchedule"}]),
        lambda spec: spec.update(labels={"tier\x1b[2J": "x"}),
        lambda spec: spec.update(backend="cluster-api\nReady"),
    ],
)
def test_a_hostile_pool_value_is_quoted_escaped_and_cut_short_in_the_refusal(change: Any) -> None:
    """The refusal goes to the pool's status and events: a raw newline or terminal escape would
    forge a line there, and a value of megabytes would be copied whole (review, session 26)."""
    pool = example("gpunodepool")
    change(pool["spec"])
    with pytest.raises(InvalidSpec) as refused:
        desired_children(pool)
    message = str(refused.value)
    assert "\n" not in message and "\x1b" not in message
    assert len(message) < 600


def test_a_pool_whose_nvlink_domain_is_the_node_has_no_rack_level() -> None:
    pool = example("gpunodepool")
    pool["spec"]["topology"] = {"nvlinkDomain": "node"}
    assert [lv["nodeLabel"] for lv in topology(pool)["spec"]["levels"]] == ["kubernetes.io/hostname"]
    pool["spec"]["topology"]["blockLabel"] = "network.topology.nvidia.com/spine"
    levels = [lv["nodeLabel"] for lv in topology(pool)["spec"]["levels"]]
    assert levels == ["network.topology.nvidia.com/spine", "kubernetes.io/hostname"]


def test_an_nvlink_domain_other_than_rack_or_node_is_refused() -> None:
    pool = example("gpunodepool")
    pool["spec"]["topology"] = {"nvlinkDomain": "tray"}
    with pytest.raises(InvalidSpec, match="nvlinkDomain 'tray' is not one of rack, node"):
        desired_children(pool)


@pytest.mark.parametrize(
    "taints",
    [
        [{"key": "dsx.ai/dedicated", "value": "x", "effect": "PreferNoSchedule"}],
        [
            {"key": "dsx.ai/dedicated", "value": "x", "effect": "PreferNoSchedule"},
            {"key": "dsx.ai/soft", "value": "y", "effect": "PreferNoSchedule"},
        ],
    ],
)
def test_a_pool_whose_taints_only_prefer_to_repel_is_refused(taints: list[dict]) -> None:
    """Its own taints replace the default GPU taint, so with none of them hard any pod the
    webhook admits unpinned (a hostname selector, a GPU product label) could land on its Nodes."""
    pool = example("gpunodepool")
    pool["spec"]["taints"] = taints
    with pytest.raises(InvalidSpec, match=r"spec\.taints.*NoSchedule or NoExecute.*nvidia\.com/gpu"):
        desired_children(pool)


def test_a_pool_with_one_hard_taint_among_soft_ones_is_valid() -> None:
    pool = example("gpunodepool")
    pool["spec"]["taints"] = [
        {"key": "dsx.ai/dedicated", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "dsx.ai/dedicated", "value": "x", "effect": "NoExecute"},
    ]
    desired_children(pool)
