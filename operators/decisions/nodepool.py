"""GpuNodePool → node-pool machinery (Cluster API or Karpenter) + Kueue flavor, and its status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from operators.decisions.conditions import Condition
from operators.decisions.meta import GPU_PRODUCT_LABEL, GPU_RESOURCE, POOL_LABEL, SITE_LABEL, Obj, object_meta

DEFAULT_TAINTS = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]
DEFAULT_CAPI_NAMESPACE = "dsx-system"


class InvalidSpec(ValueError):
    """The object's spec cannot be reconciled; reported as a condition, never retried blindly."""


@dataclass(frozen=True)
class PoolSize:
    desired_nodes: int
    capacity_gpus: int


def pool_size(spec: dict[str, Any]) -> PoolSize:
    nodes = int(spec["racks"]) * int(spec["nodesPerRack"])
    return PoolSize(desired_nodes=nodes, capacity_gpus=nodes * int(spec["gpusPerNode"]))


def node_labels(pool: Obj) -> dict[str, str]:
    """Labels every node of the pool carries; also the selector for its Kueue flavor and status."""
    spec = pool["spec"]
    return {
        **spec.get("labels", {}),
        SITE_LABEL: spec["site"],
        POOL_LABEL: pool["metadata"]["name"],
        GPU_PRODUCT_LABEL: spec["gpuProduct"],
    }


def validate_pool(pool: Obj) -> None:
    spec = pool.get("spec") or {}
    for key in ("site", "rackType", "gpuProduct", "racks", "nodesPerRack", "gpusPerNode", "backend"):
        if key not in spec:
            raise InvalidSpec(f"spec.{key} is required")
    if int(spec["racks"]) < 0 or int(spec["nodesPerRack"]) < 1 or int(spec["gpusPerNode"]) < 1:
        raise InvalidSpec("spec.racks must be ≥ 0 and nodesPerRack, gpusPerNode ≥ 1")
    backend = spec["backend"]
    if backend == "cluster-api" and not (spec.get("clusterApi") or {}).get("clusterName"):
        raise InvalidSpec("spec.clusterApi.clusterName is required for backend cluster-api")
    if backend == "karpenter" and not (spec.get("karpenter") or {}).get("nodeClassRef"):
        raise InvalidSpec("spec.karpenter.nodeClassRef is required for backend karpenter")
    if backend not in ("cluster-api", "karpenter"):
        raise InvalidSpec(f"spec.backend '{backend}' is not one of cluster-api, karpenter")


def machine_deployment(pool: Obj) -> Obj:
    """Cluster API MachineDeployment: replicas = racks × nodes per rack."""
    spec = pool["spec"]
    capi = spec["clusterApi"]
    name = pool["metadata"]["name"]
    labels = node_labels(pool)
    template_spec: dict[str, Any] = {"clusterName": capi["clusterName"]}
    if capi.get("kubernetesVersion"):
        template_spec["version"] = capi["kubernetesVersion"]
    if capi.get("infrastructureRef"):
        template_spec["infrastructureRef"] = dict(capi["infrastructureRef"])
    if capi.get("bootstrapConfigRef"):
        template_spec["bootstrap"] = {"configRef": dict(capi["bootstrapConfigRef"])}
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineDeployment",
        "metadata": object_meta(name, pool, namespace=capi.get("namespace", DEFAULT_CAPI_NAMESPACE)),
        "spec": {
            "clusterName": capi["clusterName"],
            "replicas": pool_size(spec).desired_nodes,
            "selector": {"matchLabels": {POOL_LABEL: name}},
            "template": {
                # Machine labels; node labelling itself comes from the bootstrap config.
                "metadata": {"labels": labels},
                "spec": template_spec,
            },
        },
    }


def karpenter_node_pool(pool: Obj) -> Obj:
    """Karpenter NodePool: GPU limit from the plan, GPU taint, the pool's labels."""
    spec = pool["spec"]
    size = pool_size(spec)
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": object_meta(pool["metadata"]["name"], pool),
        "spec": {
            "limits": {GPU_RESOURCE: str(size.capacity_gpus)},
            "template": {
                "metadata": {"labels": node_labels(pool)},
                "spec": {
                    "nodeClassRef": dict(spec["karpenter"]["nodeClassRef"]),
                    "taints": [dict(t) for t in spec.get("taints") or DEFAULT_TAINTS],
                    "requirements": [
                        {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [spec["gpuProduct"]]},
                    ],
                },
            },
        },
    }


def resource_flavor(pool: Obj) -> Obj:
    """Kueue ResourceFlavor keyed on the pool's node labels, tolerating its taints."""
    spec = pool["spec"]
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "ResourceFlavor",
        "metadata": object_meta(pool["metadata"]["name"], pool),
        "spec": {
            "nodeLabels": node_labels(pool),
            "nodeTaints": [dict(t) for t in spec.get("taints") or DEFAULT_TAINTS],
        },
    }


def desired_children(pool: Obj) -> list[Obj]:
    validate_pool(pool)
    backend = pool["spec"]["backend"]
    machinery = machine_deployment(pool) if backend == "cluster-api" else karpenter_node_pool(pool)
    return [machinery, resource_flavor(pool)]


def stale_backend_kind(pool: Obj) -> str:
    """The node-pool kind of the backend not in use (removed when the backend changes)."""
    return "NodePool" if pool["spec"]["backend"] == "cluster-api" else "MachineDeployment"


def _node_ready(node: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def pool_status(pool: Obj, nodes: list[Obj]) -> tuple[dict[str, Any], list[Condition]]:
    """Status figures from the pool's spec and the Node objects carrying its labels."""
    size = pool_size(pool["spec"])
    labels = node_labels(pool)
    mine = [
        n
        for n in nodes
        if all(n.get("metadata", {}).get("labels", {}).get(k) == v for k, v in labels.items())
    ]
    ready = [n for n in mine if _node_ready(n)]
    gpus = sum(int(n.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, 0) or 0) for n in ready)
    figures = {
        "desiredNodes": size.desired_nodes,
        "readyNodes": len(ready),
        "allocatableGpus": gpus,
        "capacityGpus": size.capacity_gpus,
    }
    complete = len(ready) >= size.desired_nodes
    conditions = [
        Condition("Reconciled", True, "ChildrenApplied", f"{pool['spec']['backend']} objects match the spec"),
        Condition(
            "Ready",
            complete,
            "AllNodesReady" if complete else "NodesProvisioning",
            f"{len(ready)}/{size.desired_nodes} nodes ready, {gpus} GPUs allocatable",
        ),
    ]
    return figures, conditions
