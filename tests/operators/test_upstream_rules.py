"""The operator's Kueue, Cluster API and Karpenter objects against the upstream rules a v1.20
server cannot run (operators/upstream_rules.py), and a GPU job followed from Kueue's admission to
the pool's Nodes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from operators import upstream_rules as up
from operators.decisions import nodepool, tenant
from operators.decisions.overcommit import Grant
from tests.operators.conftest import example


def _karpenter(pool: dict[str, Any]) -> dict[str, Any]:
    pool["spec"]["backend"] = "karpenter"
    pool["spec"].pop("clusterApi")
    pool["spec"]["karpenter"] = {
        "nodeClassRef": {"group": "metal.example.com", "kind": "MetalNodeClass", "name": "gb300"},
        "instanceTypes": ["gb300-nvl72-node"],
    }
    return pool


def _children() -> list[dict[str, Any]]:
    pool = example("gpunodepool")
    t = example("tenant")
    grant = Grant({pool["metadata"]["name"]: 4096})
    return [
        *nodepool.desired_children(pool),
        *nodepool.desired_children(_karpenter(example("gpunodepool"))),
        *tenant.desired_children(t, grant),
    ]


def gpu_job_pod(gpus: int = 4) -> dict[str, Any]:
    """A training pod as a tenant writes it: GPUs requested, cpu and memory left to the LimitRange."""
    return {
        "containers": [
            {"name": "trainer", "image": "trainer", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}},
            {"name": "sidecar", "image": "sidecar"},
        ]
    }


def with_limit_range_defaults(pod: dict[str, Any], limit_range: dict[str, Any]) -> dict[str, Any]:
    """What the LimitRanger admission plugin makes of the pod: defaults for unset requests/limits."""
    limits = limit_range["spec"]["limits"][0]
    out = copy.deepcopy(pod)
    for c in out["containers"]:
        res = c.setdefault("resources", {})
        res["limits"] = {**limits["default"], **res.get("limits", {})}
        res["requests"] = {**limits["defaultRequest"], **res.get("requests", {})}
    return out


def test_every_object_the_operator_writes_keeps_the_upstream_rules() -> None:
    found = [p for obj in _children() for p in up.problems(obj)]
    assert found == []


@pytest.mark.parametrize(
    ("kind", "mutate", "message"),
    [
        ("ClusterQueue", lambda o: o["spec"].update(cohort="batam"), "cohortName"),
        (
            "ClusterQueue",
            lambda o: o["spec"]["resourceGroups"][0]["flavors"][0]["resources"].pop(0),
            "in that order",
        ),
        (
            "ClusterQueue",
            lambda o: o["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2].update(
                lendingLimit="99999"
            ),
            "lendingLimit",
        ),
        ("ResourceFlavor", lambda o: o["spec"]["tolerations"].append({"operator": "Equal"}), "Exists"),
        ("Topology", lambda o: o["spec"]["levels"].reverse(), "lowest level"),
        ("Topology", lambda o: o["spec"]["levels"].insert(0, {"nodeLabel": "bad key!"}), "not a label key"),
        (
            "MachineDeployment",
            lambda o: o["spec"]["template"]["spec"].update(
                infrastructureRef={
                    "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                    "kind": "M",
                    "name": "m",
                }
            ),
            "apiGroup",
        ),
        ("MachineDeployment", lambda o: o["spec"]["selector"]["matchLabels"].update(x="y"), "selector"),
        ("NodePool", lambda o: o["spec"]["disruption"]["budgets"].append({"nodes": "lots"}), "count"),
        (
            "NodePool",
            lambda o: o["spec"]["template"]["metadata"]["labels"].update({"karpenter.sh/custom": "x"}),
            "restricted",
        ),
    ],
)
def test_what_upstream_refuses_is_named(kind: str, mutate: Any, message: str) -> None:
    obj = copy.deepcopy(next(o for o in _children() if o["kind"] == kind))
    mutate(obj)
    assert any(message in p for p in up.problems(obj)), up.problems(obj)


@pytest.mark.parametrize("backend", ["cluster-api", "karpenter"])
def test_a_gpu_job_admitted_by_kueue_lands_on_the_pools_nodes(backend: str) -> None:
    pool = example("gpunodepool") if backend == "cluster-api" else _karpenter(example("gpunodepool"))
    machinery, topology, flavor = nodepool.desired_children(pool)
    if backend == "cluster-api":
        node = up.node_of_machine_deployment(machinery, "gpu-0")
    else:
        assert up.instance_type_allowed(machinery, "gb300-nvl72-node")
        assert not up.instance_type_allowed(machinery, "m7i.48xlarge")
        node = up.node_of_node_pool(machinery, "gpu-0", "gb300-nvl72-node")
    pod = gpu_job_pod()
    assert up.schedulable(pod, node)  # not as written: the GPU taint keeps it off
    admitted = up.admitted_pod(pod, flavor)
    assert up.schedulable(admitted, node) == []
    # and the pool's status counts that node as its own
    node["status"] = {
        "conditions": [{"type": "Ready", "status": "True"}],
        "allocatable": {"nvidia.com/gpu": "4"},
    }
    figures, _ = nodepool.pool_status(pool, [node])
    assert figures["readyNodes"] == 1
    # and Kueue's topology-aware scheduling counts it once GPU feature discovery has named its
    # NVLink domain (the only label of the Topology that neither dsx nor the kubelet sets)
    assert up.topology_nodes([node], flavor, topology) == []
    node["metadata"]["labels"]["nvidia.com/gpu.clique"] = "fabric-1.rack-7"
    assert up.topology_nodes([node], flavor, topology) == ["gpu-0"]


def _ready_gpu_node(pool: dict[str, Any], **extra: str) -> dict[str, Any]:
    """A pool node as the site runs it: the pool's labels, hostname, GFD's NVLink domain."""
    labels = {
        **nodepool.node_labels(pool),
        "kubernetes.io/hostname": "gpu-0",
        "nvidia.com/gpu.clique": "fabric-1.rack-7",
        **extra,
    }
    return {
        "metadata": {"name": "gpu-0", "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_a_topology_level_no_node_carries_hides_every_node_from_kueue() -> None:
    pool = example("gpunodepool")
    _, topology, flavor = nodepool.desired_children(pool)
    node = _ready_gpu_node(pool)
    assert up.topology_nodes([node], flavor, topology) == ["gpu-0"]  # rack → node: visible
    # a block level the fabric does not set (what dsx wrote before: dsx.ai/block, set by nobody)
    blocked = copy.deepcopy(topology)
    blocked["spec"]["levels"].insert(0, {"nodeLabel": "dsx.ai/block"})
    assert up.problems(blocked) == []  # Kueue accepts it ...
    assert up.topology_nodes([node], flavor, blocked) == []  # ... and then sees no node at all


def test_a_block_label_the_site_names_is_the_top_level_and_its_nodes_count() -> None:
    pool = example("gpunodepool")
    pool["spec"]["topology"] = {"blockLabel": "network.topology.nvidia.com/spine"}
    _, topology, flavor = nodepool.desired_children(pool)
    assert topology["spec"]["levels"][0] == {"nodeLabel": "network.topology.nvidia.com/spine"}
    assert up.problems(topology) == []
    assert up.topology_nodes([_ready_gpu_node(pool)], flavor, topology) == []
    node = _ready_gpu_node(pool, **{"network.topology.nvidia.com/spine": "spine-3"})
    assert up.topology_nodes([node], flavor, topology) == ["gpu-0"]


def test_without_the_sync_flag_cluster_api_nodes_miss_the_flavors_labels() -> None:
    machinery, _, flavor = nodepool.desired_children(example("gpunodepool"))
    node = up.node_of_machine_deployment(machinery, "gpu-0", additional_sync=[])
    reasons = up.schedulable(up.admitted_pod(gpu_job_pod(), flavor), node)
    assert any("dsx.ai/pool" in r for r in reasons)


def test_every_resource_a_tenant_pod_requests_is_covered_and_fits_its_queue() -> None:
    t = example("tenant")
    children = tenant.desired_children(t, Grant({"batam-gb300-nvl72": 4096}))
    queue = next(c for c in children if c["kind"] == "ClusterQueue")
    limits = next(c for c in children if c["kind"] == "LimitRange")
    pod = with_limit_range_defaults(gpu_job_pod(), limits)
    requests = up.pod_requests(pod)
    assert set(requests) == {"cpu", "memory", "nvidia.com/gpu", "pods"}
    assert up.uncovered_resources(requests, queue) == []
    # a job of 1024 such pods (all 4096 GPUs) fits the queue's nominal quota on every resource
    assert up.fits_nominal(requests, queue, "batam-gb300-nvl72", pods=1024) == []
    assert up.fits_nominal(requests, queue, "batam-gb300-nvl72", pods=1025) == ["nvidia.com/gpu"]


def test_a_queue_covering_only_gpus_would_fail_admission_on_cpu_and_memory() -> None:
    t = example("tenant")
    children = tenant.desired_children(t, Grant({"batam-gb300-nvl72": 4096}))
    limits = next(c for c in children if c["kind"] == "LimitRange")
    old_style = {"spec": {"resourceGroups": [{"coveredResources": ["nvidia.com/gpu"], "flavors": []}]}}
    requests = up.pod_requests(with_limit_range_defaults(gpu_job_pod(), limits))
    assert up.uncovered_resources(requests, old_style) == ["cpu", "memory"]


def test_hgx_nodes_which_gpu_feature_discovery_gives_no_clique_count_only_in_a_node_domain_pool() -> None:
    pool = example("gpunodepool")
    hgx = _ready_gpu_node(pool)
    del hgx["metadata"]["labels"]["nvidia.com/gpu.clique"]  # no fabric-attached GPU, no clique label
    _, topology, flavor = nodepool.desired_children(pool)
    assert up.topology_nodes([hgx], flavor, topology) == []  # the rack level hides it
    pool["spec"]["topology"] = {"nvlinkDomain": "node"}
    _, topology, flavor = nodepool.desired_children(pool)
    assert up.problems(topology) == []
    assert up.topology_nodes([hgx], flavor, topology) == ["gpu-0"]
