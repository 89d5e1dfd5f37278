"""GpuNodePool → node-pool machinery (Cluster API or Karpenter) + Kueue flavor, and its status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from operators.api import (
    DEFAULT_CAPI_NAMESPACE,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    INT32_MAX,
    MAX_NAME_LENGTH,
    MAX_NODE_LABELS,
    OVERGRANTED,
    POOL_LABEL,
    SITE_LABEL,
)
from operators.decisions.conditions import Condition
from operators.decisions.meta import Obj, object_meta

DEFAULT_TAINTS = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_key_ok(key: str) -> bool:
    """A label key: optional DNS-subdomain prefix (≤ 253) and '/', then a name of ≤ 63 characters."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(LABEL_NAME.match(name))


def whole_number(value: object) -> bool:
    """An integer, or a float with no fraction (JSON tools may write 144 as 144.0)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def label_value_ok(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(LABEL_VALUE.match(value))


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
    """Refuse what downstream objects cannot hold; never raises anything but InvalidSpec."""
    try:
        _validate(pool)
    except InvalidSpec:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise InvalidSpec(f"spec is malformed: {error}") from None


def _validate(pool: Obj) -> None:
    name = (pool.get("metadata") or {}).get("name") or ""
    if len(name) > MAX_NAME_LENGTH or not DNS_LABEL.match(name):
        raise InvalidSpec(
            f"metadata.name '{name}' must be a DNS-1123 label of at most {MAX_NAME_LENGTH} characters"
        )
    spec = pool.get("spec") or {}
    for key in ("site", "rackType", "gpuProduct", "racks", "nodesPerRack", "gpusPerNode", "backend"):
        if key not in spec:
            raise InvalidSpec(f"spec.{key} is required")
    for key in ("racks", "nodesPerRack", "gpusPerNode"):
        if not whole_number(spec[key]):
            raise InvalidSpec(f"spec.{key} must be an integer")
    if int(spec["racks"]) < 0 or int(spec["nodesPerRack"]) < 1 or int(spec["gpusPerNode"]) < 1:
        raise InvalidSpec("spec.racks must be ≥ 0 and nodesPerRack, gpusPerNode ≥ 1")
    nodes = int(spec["racks"]) * int(spec["nodesPerRack"])
    if nodes > INT32_MAX:
        raise InvalidSpec(f"spec.racks × spec.nodesPerRack = {nodes} replicas; at most {INT32_MAX} (int32)")
    if nodes * int(spec["gpusPerNode"]) > INT32_MAX:
        raise InvalidSpec(f"the pool would hold {nodes * int(spec['gpusPerNode'])} GPUs; at most {INT32_MAX}")
    labels = spec.get("labels") or {}
    if len(labels) > MAX_NODE_LABELS:
        raise InvalidSpec(f"spec.labels has {len(labels)} labels; at most {MAX_NODE_LABELS}")
    for key, value in labels.items():
        if not label_key_ok(key):
            raise InvalidSpec(f"spec.labels: '{key}' is not a valid label key")
        if not label_value_ok(value):
            raise InvalidSpec(f"spec.labels['{key}']: '{value}' is not a valid label value (≤ 63 characters)")
    for key, value in {SITE_LABEL: spec["site"], GPU_PRODUCT_LABEL: spec["gpuProduct"]}.items():
        if not label_value_ok(value):
            raise InvalidSpec(f"'{value}' is not a valid value for the node label {key}")
    backend = spec["backend"]
    if backend == "cluster-api" and not (spec.get("clusterApi") or {}).get("clusterName"):
        raise InvalidSpec("spec.clusterApi.clusterName is required for backend cluster-api")
    if backend == "karpenter" and not (spec.get("karpenter") or {}).get("nodeClassRef"):
        raise InvalidSpec("spec.karpenter.nodeClassRef is required for backend karpenter")
    if backend not in ("cluster-api", "karpenter"):
        raise InvalidSpec(f"spec.backend '{backend}' is not one of cluster-api, karpenter")


def capacity_gpus(pool: Obj | None) -> int | None:
    """The pool's GPUs, or None when it is missing, being deleted or invalid (nothing is granted)."""
    if pool is None or pool.get("metadata", {}).get("deletionTimestamp"):
        return None
    try:
        validate_pool(pool)
    except InvalidSpec:
        return None
    return pool_size(pool["spec"]).capacity_gpus


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


def pool_status(
    pool: Obj, nodes: list[Obj], overgranted_gpus: int = 0
) -> tuple[dict[str, Any], list[Condition]]:
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
        Condition(
            OVERGRANTED,
            overgranted_gpus > 0,
            "GrantsAboveCapacity" if overgranted_gpus else "GrantsWithinCapacity",
            f"{overgranted_gpus} GPUs granted beyond the pool's {size.capacity_gpus}; the latest "
            "arrivals give them back first"
            if overgranted_gpus
            else "granted GPUs are within the pool's capacity",
        ),
    ]
    return figures, conditions
