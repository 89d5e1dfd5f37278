"""The upstream rules dsx relies on, written in the project's words and checked offline.

Every object dsx emits for Kueue, Cluster API and Karpenter must be accepted by the upstream
CRD schema, its CEL rules and webhooks, and then be acted on by the upstream controller. The
test suite's API server (v1.20) checks the structural part with the genuine upstream CRDs
(vendored in tests/support/upstream-crds/); what it cannot run — CEL rules, webhooks, and what the
controllers do with an accepted object — is encoded here, each rule citing the upstream file and
version it was read from:

- Kueue v0.19.2 (apis/kueue/v1beta2, pkg/scheduler/flavorassigner, pkg/podset, pkg/util/tas)
- Cluster API v1.14.0 (api/core/v1beta2, util/labels/helpers.go)
- Karpenter v1.14.1 (pkg/apis/v1)

`problems(obj)` lists what upstream would refuse or silently ignore; `admitted_pod`,
`node_of_machine_deployment` / `node_of_node_pool`, `schedulable`, `topology_nodes` and
`uncovered_resources` simulate the controllers: what a pod looks like once Kueue admits it on a
flavor, what the Node the pool's controller makes carries, whether that pod can land there, and
which Nodes Kueue's topology-aware scheduling counts.

Pure: no I/O. Not an upstream copy: the rules are restated, not vendored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from operators.api import (
    CAPI_DEFAULT_ADDITIONAL_SYNC_LABELS,
    CAPI_SYNCED_LABEL_DOMAINS,
    HOSTNAME_LABEL,
    KARPENTER_GROUP,
    KARPENTER_INSTANCE_TYPE_LABEL,
)
from operators.decisions.quantity import parse_quantity

Obj = dict[str, Any]

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CAPI_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
KARPENTER_DURATION = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")
KARPENTER_BUDGET_NODES = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


# -- Kueue v0.19.2 -------------------------------------------------------------------------------
def _cluster_queue(cq: Obj) -> list[str]:
    out: list[str] = []
    spec = cq.get("spec") or {}
    if "cohort" in spec:
        # apis/kueue/v1beta2/clusterqueue_types.go: the field is cohortName (v1beta1's cohort).
        out.append("spec.cohort is v1beta1; v1beta2 names it spec.cohortName")
    groups = spec.get("resourceGroups") or []
    if len(groups) > 16:  # clusterqueue_types.go: resourceGroups MaxItems=16
        out.append("spec.resourceGroups: at most 16")
    seen_flavors: set[str] = set()
    seen_resources: set[str] = set()
    for g, group in enumerate(groups):
        covered = list(group.get("coveredResources") or [])
        if not 1 <= len(covered) <= 64:
            out.append(f"resourceGroups[{g}].coveredResources: 1 to 64 resources")
        if seen_resources & set(covered):
            # pkg/webhooks/clusterqueue_webhook.go: a resource is covered by one group only.
            out.append(f"resourceGroups[{g}]: {sorted(seen_resources & set(covered))} covered twice")
        seen_resources |= set(covered)
        flavors = group.get("flavors") or []
        if not 1 <= len(flavors) <= 64:
            out.append(f"resourceGroups[{g}].flavors: 1 to 64 flavors")
        for f, flavor in enumerate(flavors):
            where = f"resourceGroups[{g}].flavors[{f}]"
            if flavor.get("name") in seen_flavors:
                out.append(f"{where}: flavor {flavor.get('name')} in two resource groups")
            seen_flavors.add(flavor.get("name"))
            names = [r.get("name") for r in flavor.get("resources") or []]
            # CEL: "flavors must have the same number of resources as the coveredResources";
            # webhook: the same names in the same order.
            if names != covered:
                out.append(f"{where}.resources {names} must list {covered} in that order")
            for r in flavor.get("resources") or []:
                nominal = parse_quantity(r.get("nominalQuota", 0))
                if nominal is None or nominal < 0:
                    out.append(f"{where}: nominalQuota of {r.get('name')} is not a quantity ≥ 0")
                    continue
                lending = r.get("lendingLimit")
                if lending is not None and (parse_quantity(lending) or 0) > nominal:
                    # webhook: lendingLimit must be less than or equal to nominalQuota.
                    out.append(f"{where}: lendingLimit of {r.get('name')} above its nominalQuota")
                if r.get("borrowingLimit") is not None and not spec.get("cohortName"):
                    # CEL: "borrowingLimit must be nil when cohort is empty".
                    out.append(f"{where}: borrowingLimit without a cohortName")
    preemption = spec.get("preemption") or {}
    _enum(out, preemption, "reclaimWithinCohort", ("Never", "LowerPriority", "Any"), "spec.preemption")
    _enum(
        out,
        preemption,
        "withinClusterQueue",
        ("Never", "LowerPriority", "LowerOrNewerEqualPriority"),
        "spec.preemption",
    )
    _enum(out, spec, "queueingStrategy", ("StrictFIFO", "BestEffortFIFO"), "spec")
    weight = (spec.get("fairSharing") or {}).get("weight")
    if weight is not None and (parse_quantity(weight) is None or parse_quantity(weight) < 0):  # type: ignore[operator]
        out.append("spec.fairSharing.weight must be a quantity ≥ 0")
    return out


def _resource_flavor(flavor: Obj) -> list[str]:
    out: list[str] = []
    spec = flavor.get("spec") or {}
    if len(spec.get("nodeLabels") or {}) > 8:  # resourceflavor_types.go: MaxProperties=8
        out.append("spec.nodeLabels: at most 8")
    tolerations = spec.get("tolerations") or []
    if len(tolerations) > 8:  # MaxItems=8
        out.append("spec.tolerations: at most 8")
    for t in tolerations:  # resourceflavor_types.go CEL rules on tolerations
        operator = t.get("operator", "Equal")
        if not t.get("key") and operator != "Exists":
            out.append(f"toleration {t}: operator must be Exists when key is empty")
        if operator not in ("Equal", "Exists"):
            out.append(f"toleration {t}: operator must be Equal or Exists")
        if operator == "Exists" and t.get("value"):
            out.append(f"toleration {t}: value must be empty when operator is Exists")
        if t.get("effect") and t["effect"] not in TAINT_EFFECTS:
            out.append(f"toleration {t}: effect must be one of {TAINT_EFFECTS}")
        if "tolerationSeconds" in t and t.get("effect") != "NoExecute":
            out.append(f"toleration {t}: tolerationSeconds needs effect NoExecute")
    if spec.get("topologyName") and not spec.get("nodeLabels"):
        out.append("spec.topologyName needs at least one nodeLabel (CEL)")
    return out


def _topology(topology: Obj) -> list[str]:
    levels = [lv.get("nodeLabel") for lv in (topology.get("spec") or {}).get("levels") or []]
    out: list[str] = []
    if not 1 <= len(levels) <= 16:  # topology_types.go: levels MinItems=1, MaxItems=16
        out.append("spec.levels: 1 to 16 levels")
    for level in levels:  # TopologyLevel.nodeLabel: MinLength=1, MaxLength=316, a label key pattern
        if not isinstance(level, str) or not 1 <= len(level) <= 316 or not LABEL_KEY.match(level):
            out.append(f"spec.levels: nodeLabel {level!r} is not a label key")
    if len(set(levels)) != len(levels):  # CEL: "must be unique"
        out.append("spec.levels must be unique")
    if HOSTNAME_LABEL in levels and levels[-1] != HOSTNAME_LABEL:
        # CEL: "the kubernetes.io/hostname label can only be used at the lowest level of topology".
        out.append(f"{HOSTNAME_LABEL} may only be the lowest level")
    return out


def topology_nodes(nodes: list[Obj], flavor: Obj, topology: Obj) -> list[str]:
    """The Nodes Kueue's topology-aware scheduling places a flavor's pods on: ready and
    schedulable (pkg/cache/scheduler/tas_nodes_cache.go), carrying the flavor's nodeLabels and a
    label for every level of its Topology (pkg/util/tas NodeMatchesFlavor). A node lacking any
    level's label is not in the flavor's topology at all, so its capacity admits nothing."""
    wanted = (flavor.get("spec") or {}).get("nodeLabels") or {}
    levels = [lv["nodeLabel"] for lv in (topology.get("spec") or {}).get("levels") or []]
    out = []
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )
        if (
            ready
            and not (node.get("spec") or {}).get("unschedulable")
            and all(labels.get(k) == v for k, v in wanted.items())
            and all(level in labels for level in levels)
        ):
            out.append(node["metadata"]["name"])
    return out


def _local_queue(queue: Obj) -> list[str]:
    return [] if (queue.get("spec") or {}).get("clusterQueue") else ["spec.clusterQueue is required"]


def admitted_pod(pod_spec: Obj, flavor: Obj) -> Obj:
    """The pod spec as Kueue starts it once admitted on `flavor`: the flavor's nodeLabels merged
    into nodeSelector and its tolerations appended (pkg/podset/podset.go, Merge of the
    flavor's PodSetInfo into the pod template when the workload is admitted)."""
    spec = flavor.get("spec") or {}
    out = dict(pod_spec)
    out["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **(spec.get("nodeLabels") or {})}
    out["tolerations"] = [*(pod_spec.get("tolerations") or []), *(spec.get("tolerations") or [])]
    return out


def pod_requests(pod_spec: Obj) -> dict[str, Any]:
    """What Kueue counts for one pod: the sum of its containers' requests (limits stand in for a
    missing request, as the API server defaults them), and one `pods`."""
    total: dict[str, Any] = {"pods": 1}
    for c in pod_spec.get("containers") or []:
        res = c.get("resources") or {}
        requests = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, value in requests.items():
            q = parse_quantity(value) or 0
            total[name] = total.get(name, 0) + q
    return {k: v for k, v in total.items() if v}


def uncovered_resources(requests: dict[str, Any], cluster_queue: Obj) -> list[str]:
    """Requested resources no resource group of the ClusterQueue covers: Kueue fails such a
    workload's admission ("resource X unavailable in ClusterQueue",
    pkg/scheduler/flavorassigner/flavorassigner.go). `pods` counts only when covered."""
    covered = {
        r
        for g in (cluster_queue.get("spec") or {}).get("resourceGroups") or []
        for r in g.get("coveredResources") or []
    }
    return sorted(name for name in requests if name not in covered and name != "pods")


def fits_nominal(requests: dict[str, Any], cluster_queue: Obj, flavor: str, pods: int = 1) -> list[str]:
    """Resources whose request × pods exceeds the flavor's nominal quota in the ClusterQueue."""
    out = []
    for group in (cluster_queue.get("spec") or {}).get("resourceGroups") or []:
        for f in group.get("flavors") or []:
            if f.get("name") != flavor:
                continue
            for r in f.get("resources") or []:
                want = requests.get(r["name"], 0) * pods
                if want > (parse_quantity(r["nominalQuota"]) or 0):
                    out.append(r["name"])
    return out


# -- Cluster API v1.14.0 -------------------------------------------------------------------------
def _ref_problems(ref: Any, where: str) -> list[str]:
    """api/core/v1beta2/common_types.go ContractVersionedObjectReference: apiGroup, kind, name."""
    if not isinstance(ref, dict):
        return [f"{where} is required"]
    out = []
    if "apiVersion" in ref:
        out.append(f"{where}.apiVersion is v1beta1; v1beta2 references name an apiGroup")
    if not DNS_SUBDOMAIN.match(str(ref.get("apiGroup", ""))):
        out.append(f"{where}.apiGroup must be a DNS subdomain")
    if not CAPI_KIND.match(str(ref.get("kind", ""))) or len(str(ref.get("kind", ""))) > 63:
        out.append(f"{where}.kind is not a kind")
    if not DNS_SUBDOMAIN.match(str(ref.get("name", ""))):
        out.append(f"{where}.name must be a DNS subdomain")
    return out


def _machine_deployment(md: Obj) -> list[str]:
    spec = md.get("spec") or {}
    template = spec.get("template") or {}
    tspec = template.get("spec") or {}
    out = _ref_problems(tspec.get("infrastructureRef"), "spec.template.spec.infrastructureRef")
    bootstrap = tspec.get("bootstrap") or {}
    if "configRef" in bootstrap or "dataSecretName" not in bootstrap:
        out += _ref_problems(bootstrap.get("configRef"), "spec.template.spec.bootstrap.configRef")
    if spec.get("clusterName") != tspec.get("clusterName"):
        # internal/webhooks/machinedeployment.go: template clusterName must match.
        out.append("spec.template.spec.clusterName must equal spec.clusterName")
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector.items() <= labels.items():
        # webhook: "must match spec.template.metadata.labels".
        out.append("spec.selector does not match spec.template.metadata.labels")
    taints = tspec.get("taints") or []
    if len(taints) > 64:  # machine_types.go: taints MaxItems=64
        out.append("spec.template.spec.taints: at most 64")
    keys = [(t.get("key"), t.get("effect")) for t in taints]
    if len(set(keys)) != len(keys):  # listType=map, listMapKey=key,effect
        out.append("spec.template.spec.taints: a (key, effect) twice")
    for t in taints:
        if t.get("effect") not in TAINT_EFFECTS or t.get("propagation") not in ("Always", "OnInitialization"):
            out.append(f"taint {t}: effect in {TAINT_EFFECTS}, propagation Always or OnInitialization")
    return out


def capi_node_labels(
    machine_labels: dict[str, str], additional_sync: list[str] | None = None
) -> dict[str, str]:
    """The Machine labels Cluster API copies to the Node (util/labels/helpers.go
    GetManagedLabels): node-role.kubernetes.io/*, node-restriction.kubernetes.io and
    node.cluster.x-k8s.io (and their subdomains), and keys matched by one of the controller's
    --additional-sync-machine-labels regexes (Go MatchString: unanchored search)."""
    patterns = [
        re.compile(p)
        for p in (additional_sync if additional_sync is not None else CAPI_DEFAULT_ADDITIONAL_SYNC_LABELS)
    ]
    role, *domains = CAPI_SYNCED_LABEL_DOMAINS
    out = {}
    for key, value in machine_labels.items():
        head = key.split("/")[0]
        if (
            head == role
            or any(head == d or head.endswith("." + d) for d in domains)
            or any(p.search(key) for p in patterns)
        ):
            out[key] = value
    return out


def node_of_machine_deployment(md: Obj, name: str, additional_sync: list[str] | None = None) -> Obj:
    """The Node a Machine of `md` becomes: synced labels, and the taints Cluster API propagates
    (MachineTaintPropagation, api/core/v1beta2/machine_types.go MachineSpec.taints)."""
    template = md["spec"]["template"]
    labels = capi_node_labels((template.get("metadata") or {}).get("labels") or {}, additional_sync)
    taints = [
        {k: t[k] for k in ("key", "value", "effect") if k in t} for t in template["spec"].get("taints") or []
    ]
    return {
        "metadata": {"name": name, "labels": {**labels, HOSTNAME_LABEL: name}},
        "spec": {"taints": taints},
    }


# -- Karpenter v1.14.1 ---------------------------------------------------------------------------
def _restricted_label(key: str) -> bool:
    """pkg/apis/v1/labels.go: the karpenter.sh domain is reserved (RestrictedLabelDomains),
    except its well-known labels (karpenter.sh/nodepool, karpenter.sh/capacity-type)."""
    head = key.split("/")[0] if "/" in key else ""
    well_known = (f"{KARPENTER_GROUP}/nodepool", f"{KARPENTER_GROUP}/capacity-type")
    return (head == KARPENTER_GROUP or head.endswith("." + KARPENTER_GROUP)) and key not in well_known


def _node_pool(nodepool: Obj) -> list[str]:
    spec = nodepool.get("spec") or {}
    out: list[str] = []
    template = spec.get("template") or {}
    tspec = template.get("spec") or {}
    ref = tspec.get("nodeClassRef") or {}
    for key in ("group", "kind", "name"):  # nodeclaim.go NodeClassReference: "may not be empty"
        if not ref.get(key):
            out.append(f"spec.template.spec.nodeClassRef.{key} may not be empty")
    if "/" in str(ref.get("group", "")):
        out.append("spec.template.spec.nodeClassRef.group is a group, not a group/version")
    requirements = tspec.get("requirements")
    if requirements is None:
        out.append("spec.template.spec.requirements is required")
    for r in requirements or []:
        if r.get("operator") == "In" and not r.get("values"):
            out.append(f"requirement {r.get('key')}: operator In needs values (CEL)")
        if _restricted_label(str(r.get("key", ""))):
            out.append(f"requirement {r.get('key')}: the karpenter.sh domain is restricted")
    for key in (template.get("metadata") or {}).get("labels") or {}:
        if _restricted_label(key):
            out.append(f"label {key}: the karpenter.sh domain is restricted")
    if tspec.get("expireAfter") is not None and not KARPENTER_DURATION.match(str(tspec["expireAfter"])):
        out.append("spec.template.spec.expireAfter must be a duration or Never")
    disruption = spec.get("disruption") or {}
    if disruption.get("consolidateAfter") is not None and not KARPENTER_DURATION.match(
        str(disruption["consolidateAfter"])
    ):
        out.append("spec.disruption.consolidateAfter must be a duration or Never")
    _enum(
        out,
        disruption,
        "consolidationPolicy",
        ("WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"),
        "spec.disruption",
    )
    for b in disruption.get("budgets") or []:
        if not KARPENTER_BUDGET_NODES.match(str(b.get("nodes", ""))):
            out.append(f"budget {b}: nodes must be a count or a percentage")
        if any(reason not in ("Underutilized", "Empty", "Drifted") for reason in b.get("reasons") or []):
            out.append(f"budget {b}: reasons are Underutilized, Empty, Drifted")
        if ("schedule" in b) != ("duration" in b):
            out.append(f"budget {b}: 'schedule' must be set with 'duration' (CEL)")
    return out


def node_of_node_pool(nodepool: Obj, name: str, instance_type: str) -> Obj:
    """The Node Karpenter launches for `nodepool` on `instance_type`: the template's labels,
    single-valued In requirements as labels, the instance type label, the template's taints."""
    tspec = nodepool["spec"]["template"]["spec"]
    labels = dict((nodepool["spec"]["template"].get("metadata") or {}).get("labels") or {})
    for r in tspec.get("requirements") or []:
        if r.get("operator") == "In" and len(r.get("values") or []) == 1:
            labels[r["key"]] = r["values"][0]
    labels[KARPENTER_INSTANCE_TYPE_LABEL] = instance_type
    labels[f"{KARPENTER_GROUP}/nodepool"] = nodepool["metadata"]["name"]
    labels[HOSTNAME_LABEL] = name
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": list(tspec.get("taints") or [])}}


def instance_type_allowed(nodepool: Obj, instance_type: str) -> bool:
    """Whether Karpenter may launch `instance_type` for the pool (its instance-type requirement)."""
    for r in nodepool["spec"]["template"]["spec"].get("requirements") or []:
        if r.get("key") == KARPENTER_INSTANCE_TYPE_LABEL:
            values = r.get("values") or []
            return instance_type in values if r.get("operator") == "In" else instance_type not in values
    return True


# -- Scheduling (kube-scheduler's NodeSelector and TaintToleration filters) ---------------------
def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", "")


def schedulable(pod_spec: Obj, node: Obj) -> list[str]:
    """Why the pod cannot land on the node (empty: it can): nodeSelector labels missing or
    different, NoSchedule/NoExecute taints not tolerated."""
    labels = node["metadata"].get("labels") or {}
    out = [
        f"node lacks {k}={v}" for k, v in (pod_spec.get("nodeSelector") or {}).items() if labels.get(k) != v
    ]
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            _tolerates(t, taint) for t in pod_spec.get("tolerations") or []
        ):
            out.append(
                f"taint {taint.get('key')}={taint.get('value', '')}:{taint.get('effect')} not tolerated"
            )
    return out


# -- Dispatch ------------------------------------------------------------------------------------
def _enum(out: list[str], obj: Obj, key: str, allowed: tuple[str, ...], where: str) -> None:
    if key in obj and obj[key] not in allowed:
        out.append(f"{where}.{key} '{obj[key]}' is not one of {', '.join(allowed)}")


CHECKS: dict[str, Callable[[Obj], list[str]]] = {
    "ClusterQueue": _cluster_queue,
    "ResourceFlavor": _resource_flavor,
    "Topology": _topology,
    "LocalQueue": _local_queue,
    "MachineDeployment": _machine_deployment,
    "NodePool": _node_pool,
}


def problems(obj: Obj) -> list[str]:
    """What the upstream project would refuse or ignore in `obj` (empty: nothing); objects of
    other kinds have no upstream rules here."""
    check = CHECKS.get(obj.get("kind", ""))
    name = (obj.get("metadata") or {}).get("name")
    return [f"{obj['kind']} {name}: {p}" for p in check(obj)] if check else []
