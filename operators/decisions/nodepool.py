"""GpuNodePool → node-pool machinery (Cluster API or Karpenter) + Kueue flavor, and its status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from operators.api import (
    CAPI_DEFAULT_ADDITIONAL_SYNC_LABELS,
    CAPI_SYNCED_LABEL_DOMAINS,
    DEFAULT_CAPI_NAMESPACE,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    HOSTNAME_LABEL,
    INT32_MAX,
    KARPENTER_INSTANCE_TYPE_LABEL,
    KUEUE_MAX_LEVEL_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_NODE_LABELS,
    NVLINK_DOMAINS,
    OVERGRANTED,
    POOL_LABEL,
    RACK_TOPOLOGY_LEVELS,
    RECONCILED,
    SITE_LABEL,
    TOPOLOGY_INCOMPLETE,
    addon_api_version,
)
from operators.decisions.conditions import Condition
from operators.decisions.meta import MAX_SHOWN, Obj, object_meta, shown

DEFAULT_TAINTS = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]
KUEUE_MAX_FLAVOR_NODE_LABELS = 8
"""kueue v0.19 apis/kueue/v1beta2/resourceflavor_types.go: nodeLabels MaxProperties=8."""
KUEUE_MAX_FLAVOR_TOLERATIONS = 8
"""Same file: tolerations MaxItems=8."""
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
HARD_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
"""The effects that keep a pod not tolerating them off a Node. The pod-placement webhook
(`decisions.placement`) admits a pod that is not pinned to a pool as long as it tolerates none of
the GPU pools' taints, so every pool's Nodes must carry at least one of these: with only
PreferNoSchedule such a pod lands there by hostname, GPU product label or `matchFields`."""
DEFAULT_CONSOLIDATE_AFTER = "1h"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CAPI_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_key_ok(key: str) -> bool:
    """A label key: optional DNS-subdomain prefix (≤ 253) and '/', then a name of ≤ 63 characters."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(LABEL_NAME.fullmatch(name))


def whole_number(value: object) -> bool:
    """An integer, or a float with no fraction (JSON tools may write 144 as 144.0)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def label_value_ok(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(LABEL_VALUE.fullmatch(value))


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


def topology_levels(pool: Obj) -> tuple[str, ...]:
    """Kueue Topology levels, widest first: the site's block label when the pool names one, then
    the NVLink domain (rack, one NVL72) and the node. A job asks for one NVLink domain with the
    pod-set annotation kueue.x-k8s.io/podset-required-topology: nvidia.com/gpu.clique. Where the
    NVLink domain is the node (HGX), there is no rack level: nothing labels one."""
    spec = pool["spec"].get("topology") or {}
    block = spec.get("blockLabel")
    lower = RACK_TOPOLOGY_LEVELS if spec.get("nvlinkDomain", "rack") == "rack" else (HOSTNAME_LABEL,)
    return (block, *lower) if block else lower


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
    if len(name) > MAX_NAME_LENGTH or not DNS_LABEL.fullmatch(name):
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
            raise InvalidSpec(f"spec.labels: {shown(key, MAX_SHOWN)} is not a valid label key")
        if not label_value_ok(value):
            raise InvalidSpec(
                f"spec.labels[{shown(key, MAX_SHOWN)}]: {shown(value, MAX_SHOWN)} is not a valid label value (≤ 63 characters)"
            )
    for key, value in {SITE_LABEL: spec["site"], GPU_PRODUCT_LABEL: spec["gpuProduct"]}.items():
        if not label_value_ok(value):
            raise InvalidSpec(f"{shown(value, MAX_SHOWN)} is not a valid value for the node label {key}")
    if len(node_labels(pool)) > KUEUE_MAX_FLAVOR_NODE_LABELS:
        raise InvalidSpec(
            f"the pool's node labels (spec.labels plus {SITE_LABEL}, {POOL_LABEL}, {GPU_PRODUCT_LABEL}) "
            f"are more than the {KUEUE_MAX_FLAVOR_NODE_LABELS} a Kueue ResourceFlavor holds"
        )
    if len(spec.get("taints") or []) > KUEUE_MAX_FLAVOR_TOLERATIONS:
        raise InvalidSpec(
            f"spec.taints: at most {KUEUE_MAX_FLAVOR_TOLERATIONS} (a ResourceFlavor's tolerations)"
        )
    _validate_topology(spec)
    backend = spec["backend"]
    if backend not in ("cluster-api", "karpenter"):
        raise InvalidSpec(f"spec.backend {shown(backend, MAX_SHOWN)} is not one of cluster-api, karpenter")
    for taint in spec.get("taints") or []:
        if taint.get("effect") not in TAINT_EFFECTS or not label_key_ok(str(taint.get("key", ""))):
            raise InvalidSpec(
                f"spec.taints: {shown(taint, MAX_SHOWN)} needs a label-style key and an effect of {TAINT_EFFECTS}"
            )
    own_taints = spec.get("taints") or []
    if own_taints and not any(t.get("effect") in HARD_TAINT_EFFECTS for t in own_taints):
        raise InvalidSpec(
            "spec.taints: none is NoSchedule or NoExecute, and a pool's own taints replace the default "
            f"{GPU_RESOURCE}=present:NoSchedule, so pods not pinned to the pool could land on its Nodes; "
            f"add one with effect NoSchedule (e.g. {GPU_RESOURCE}=present:NoSchedule) or remove spec.taints"
        )
    if backend == "cluster-api":
        _validate_cluster_api(pool)
    else:
        _validate_karpenter(spec)


def _validate_topology(spec: dict[str, Any]) -> None:
    topology_spec = spec.get("topology") or {}
    if not isinstance(topology_spec, dict):
        raise InvalidSpec("spec.topology must be an object")
    domain = topology_spec.get("nvlinkDomain", "rack")
    if domain not in NVLINK_DOMAINS:
        raise InvalidSpec(
            f"spec.topology.nvlinkDomain {shown(domain, MAX_SHOWN)} is not one of {', '.join(NVLINK_DOMAINS)} "
            "(rack: multi-node NVLink such as GB300 NVL72; node: NVSwitch inside the node, HGX)"
        )
    block = topology_spec.get("blockLabel")
    if block is None:
        return
    if not isinstance(block, str) or len(block) > KUEUE_MAX_LEVEL_LABEL_LENGTH or not label_key_ok(block):
        raise InvalidSpec(f"spec.topology.blockLabel {shown(block, MAX_SHOWN)} is not a node label key")
    if block in RACK_TOPOLOGY_LEVELS:
        raise InvalidSpec(
            f"spec.topology.blockLabel '{block}' is already a level below the block "
            f"({' → '.join(RACK_TOPOLOGY_LEVELS)}); name the label of the network block above the racks"
        )


def _validate_cluster_api(pool: Obj) -> None:
    capi = pool["spec"].get("clusterApi") or {}
    if not capi.get("clusterName"):
        raise InvalidSpec("spec.clusterApi.clusterName is required for backend cluster-api")
    for ref in ("infrastructureRef", "bootstrapConfigRef"):
        value = capi.get(ref) or {}
        if not all(isinstance(value.get(k), str) and value.get(k) for k in ("apiGroup", "kind", "name")):
            raise InvalidSpec(
                f"spec.clusterApi.{ref} needs apiGroup, kind and name (Cluster API v1beta2 references "
                "name a group, not an apiVersion): the site's template that the MachineDeployment uses"
            )
        # cluster-api v1.14 api/core/v1beta2 ContractVersionedObjectReference: kind ≤ 63 and
        # CAPI_KIND, name a DNS subdomain ≤ 253, apiGroup a fully qualified domain name
        if not (
            len(value["kind"]) <= 63
            and CAPI_KIND.fullmatch(value["kind"])
            and len(value["name"]) <= 253
            and DNS_SUBDOMAIN.fullmatch(value["name"])
            and len(value["apiGroup"]) <= 253
            and DNS_SUBDOMAIN.fullmatch(value["apiGroup"])
        ):
            raise InvalidSpec(
                f"spec.clusterApi.{ref} {shown(value['apiGroup'] + '/' + value['kind'], MAX_SHOWN)} "
                f"{shown(value['name'], MAX_SHOWN)} is not a "
                "Cluster API reference (apiGroup a domain name, kind a letter then letters, digits or "
                "'-', name a DNS subdomain)"
            )
    lost = unsynced_labels(node_labels(pool), capi.get("additionalSyncMachineLabels"))
    if lost:
        raise InvalidSpec(
            f"node labels {', '.join(lost)} would never reach the Nodes: Cluster API copies only "
            f"{', '.join(CAPI_SYNCED_LABEL_DOMAINS)} and the spec.clusterApi.additionalSyncMachineLabels "
            "its controller runs with (--additional-sync-machine-labels)"
        )


def _validate_karpenter(spec: dict[str, Any]) -> None:
    karpenter = spec.get("karpenter") or {}
    if not karpenter.get("nodeClassRef"):
        raise InvalidSpec("spec.karpenter.nodeClassRef is required for backend karpenter")
    types = karpenter.get("instanceTypes")
    if not isinstance(types, list) or not types or not all(label_value_ok(t) and t for t in types):
        raise InvalidSpec(
            "spec.karpenter.instanceTypes must list the instance types that carry the pool's GPU "
            "product at this site (otherwise Karpenter launches any instance that fits)"
        )


def unsynced_labels(labels: dict[str, str], additional: list[str] | None) -> list[str]:
    """Machine label keys Cluster API would not copy to the Node. Encodes cluster-api v1.14
    util/labels/helpers.go GetManagedLabels: the part before the first '/' equal to
    node-role.kubernetes.io, or equal to or a subdomain of node-restriction.kubernetes.io or
    node.cluster.x-k8s.io, or the whole key matched (unanchored, Go regexp MatchString) by one of
    the controller's --additional-sync-machine-labels regexes."""
    patterns = [
        re.compile(p) for p in (additional if additional is not None else CAPI_DEFAULT_ADDITIONAL_SYNC_LABELS)
    ]
    role, *domains = CAPI_SYNCED_LABEL_DOMAINS
    lost = []
    for key in sorted(labels):
        head = key.split("/")[0]
        synced = head == role or any(head == d or head.endswith("." + d) for d in domains)
        if not synced and not any(p.search(key) for p in patterns):
            lost.append(key)
    return lost


def capacity_gpus(pool: Obj | None) -> int | None:
    """The pool's GPUs, or None when it is missing, being deleted or invalid (nothing is granted)."""
    if pool is None or pool.get("metadata", {}).get("deletionTimestamp"):
        return None
    try:
        validate_pool(pool)
    except InvalidSpec:
        return None
    return pool_size(pool["spec"]).capacity_gpus


def taints(pool: Obj) -> list[dict[str, str]]:
    return [dict(t) for t in pool["spec"].get("taints") or DEFAULT_TAINTS]


def _ref(ref: dict[str, str]) -> dict[str, str]:
    return {"apiGroup": ref["apiGroup"], "kind": ref["kind"], "name": ref["name"]}


def machine_deployment(pool: Obj) -> Obj:
    """Cluster API MachineDeployment: replicas = racks × nodes per rack; the Machines carry the
    pool's labels (synced to Nodes, see `unsynced_labels`) and taints (propagated to Nodes by
    Cluster API's MachineTaintPropagation)."""
    spec = pool["spec"]
    capi = spec["clusterApi"]
    name = pool["metadata"]["name"]
    template_spec: dict[str, Any] = {
        "clusterName": capi["clusterName"],
        "bootstrap": {"configRef": _ref(capi["bootstrapConfigRef"])},
        "infrastructureRef": _ref(capi["infrastructureRef"]),
        "taints": [{**t, "propagation": "Always"} for t in taints(pool)],
    }
    if capi.get("kubernetesVersion"):
        template_spec["version"] = capi["kubernetesVersion"]
    return {
        "apiVersion": addon_api_version("MachineDeployment"),
        "kind": "MachineDeployment",
        "metadata": object_meta(name, pool, namespace=capi.get("namespace", DEFAULT_CAPI_NAMESPACE)),
        "spec": {
            "clusterName": capi["clusterName"],
            "replicas": pool_size(spec).desired_nodes,
            "selector": {"matchLabels": {POOL_LABEL: name}},
            "template": {"metadata": {"labels": node_labels(pool)}, "spec": template_spec},
        },
    }


def karpenter_node_pool(pool: Obj) -> Obj:
    """Karpenter NodePool: the site's GPU instance types only, GPU limit from the plan, the pool's
    labels and taints, and disruption that never drains a busy GPU node: only empty nodes are
    consolidated, nodes never expire, and drift never replaces a node on its own."""
    spec = pool["spec"]
    karpenter = spec["karpenter"]
    size = pool_size(spec)
    return {
        "apiVersion": addon_api_version("NodePool"),
        "kind": "NodePool",
        "metadata": object_meta(pool["metadata"]["name"], pool),
        "spec": {
            "limits": {GPU_RESOURCE: str(size.capacity_gpus)},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": karpenter.get("consolidateAfter") or DEFAULT_CONSOLIDATE_AFTER,
                "budgets": [{"nodes": "0", "reasons": ["Drifted"]}, {"nodes": "10%"}],
            },
            "template": {
                "metadata": {"labels": node_labels(pool)},
                "spec": {
                    "nodeClassRef": {k: karpenter["nodeClassRef"][k] for k in ("group", "kind", "name")},
                    "taints": taints(pool),
                    "expireAfter": "Never",
                    "requirements": [
                        {
                            "key": KARPENTER_INSTANCE_TYPE_LABEL,
                            "operator": "In",
                            "values": list(karpenter["instanceTypes"]),
                        },
                    ],
                },
            },
        },
    }


def tolerations(pool: Obj) -> list[dict[str, str]]:
    """Tolerations for exactly the pool's taints."""
    return [
        {"key": t["key"], "operator": "Equal", "value": t.get("value", ""), "effect": t["effect"]}
        if t.get("value")
        else {"key": t["key"], "operator": "Exists", "effect": t["effect"]}
        for t in taints(pool)
    ]


def resource_flavor(pool: Obj) -> Obj:
    """Kueue ResourceFlavor keyed on the pool's node labels. `tolerations` are what Kueue adds to
    the pods it admits on this flavor, so they can land on the pool's tainted Nodes; `nodeTaints`
    stays empty (it would make Kueue admit only pods that already tolerate the taint)."""
    return {
        "apiVersion": addon_api_version("ResourceFlavor"),
        "kind": "ResourceFlavor",
        "metadata": object_meta(pool["metadata"]["name"], pool),
        "spec": {
            "nodeLabels": node_labels(pool),
            "tolerations": tolerations(pool),
            "topologyName": pool["metadata"]["name"],
        },
    }


def topology(pool: Obj) -> Obj:
    """Kueue Topology for topology-aware scheduling: [block →] NVLink domain (rack) → node."""
    return {
        "apiVersion": addon_api_version("Topology"),
        "kind": "Topology",
        "metadata": object_meta(pool["metadata"]["name"], pool),
        "spec": {"levels": [{"nodeLabel": label} for label in topology_levels(pool)]},
    }


def desired_children(pool: Obj) -> list[Obj]:
    validate_pool(pool)
    backend = pool["spec"]["backend"]
    machinery = machine_deployment(pool) if backend == "cluster-api" else karpenter_node_pool(pool)
    return [machinery, topology(pool), resource_flavor(pool)]


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
    levels = topology_levels(pool)
    unplaced = {
        level: sum(1 for n in ready if level not in (n.get("metadata", {}).get("labels") or {}))
        for level in levels
    }
    lacking = {level: count for level, count in unplaced.items() if count}
    conditions = [
        Condition(RECONCILED, True, "ChildrenApplied", f"{pool['spec']['backend']} objects match the spec"),
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
        Condition(
            TOPOLOGY_INCOMPLETE,
            bool(lacking),
            "NodesLackTopologyLabels" if lacking else "AllLevelsLabelled",
            "Kueue's topology-aware scheduling ignores ready nodes without a level's label: "
            + ", ".join(f"{count} lack {level}" for level, count in lacking.items())
            if lacking
            else f"every ready node carries {', '.join(levels)}",
        ),
    ]
    return figures, conditions


KUEUE_IMMUTABLE_KINDS = ("Topology", "ResourceFlavor")
"""kueue v0.19 apis/kueue/v1beta2: a Topology's levels (`self == oldSelf`) and a ResourceFlavor's
spec once topologyName is set (`!has(oldSelf.topologyName) || self == oldSelf`) never change; both
carry Kueue's resource-in-use finalizer while referred to, so the operator does not delete them."""


def with_refused_children(
    conditions: list[Condition], refused: list[tuple[str, str, str]]
) -> list[Condition]:
    """The pool's conditions with Reconciled=False naming every child the server refused
    (kind, name, the server's message) and, for Kueue's immutable kinds, what an administrator
    does about it."""
    parts = [f"the server refused {kind} {name}: {detail}" for kind, name, detail in refused]
    immutable = sorted({name for kind, name, _ in refused if kind in KUEUE_IMMUTABLE_KINDS})
    for name in immutable:
        parts.append(
            "Kueue keeps a Topology's levels and a topology ResourceFlavor's spec immutable, so a "
            "changed block label, pool label or taint needs them re-created: drain the pool's queues, "
            f"then `kubectl delete topology,resourceflavor {name}` and the operator re-creates both"
        )
    message = "; ".join(parts)
    if len(message) > 1000:
        message = message[:999] + "…"
    failed = Condition(RECONCILED, False, "ChildRefused", message)
    return [failed if c.type == RECONCILED else c for c in conditions]
