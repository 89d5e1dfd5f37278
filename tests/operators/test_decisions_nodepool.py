"""What a GpuNodePool implies, computed without any server."""

from __future__ import annotations

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


def test_karpenter_backend_limits_gpus_to_the_plan_and_taints_nodes() -> None:
    pool = example("gpunodepool")
    pool["spec"]["backend"] = "karpenter"
    pool["spec"]["karpenter"] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}
    }
    nodepool = karpenter_node_pool(pool)
    assert nodepool["spec"]["limits"] == {"nvidia.com/gpu": "36000"}  # 500 x 18 x 4
    assert nodepool["spec"]["template"]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert [c["kind"] for c in desired_children(pool)] == ["NodePool", "ResourceFlavor"]


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
