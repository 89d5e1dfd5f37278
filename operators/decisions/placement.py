"""Where a tenant's pods may run: only on the pools its tenant was granted (the admission webhook's
decision, `operators/webhook.py`).

An owner of a tenant namespace may create pods directly, around Kueue. Every pool's Nodes carry
`dsx.ai/pool=<pool>` and a GPU taint, so a pod naming another pool's label and tolerating the
taint would run on GPUs its tenant does not hold. The namespace's GPU quota caps how many GPUs it
requests, not whose pool they are on. A pod is therefore admitted only if whatever lets it onto
a pool's Nodes names pools its tenant holds:

- `spec.nodeSelector[dsx.ai/pool]` names a granted pool;
- every required node-affinity expression on `dsx.ai/pool` is `In` with granted pools only
  (`NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt` select pools not granted);
- `spec.nodeName` is never set (it skips the scheduler, and with it every rule here);
- a toleration of a GPU pool's taint key, or of every taint (`operator: Exists`, no key), only on
  a pod *pinned* to granted pools (by the selector, or by every required affinity term); so too a
  toleration of the taints a new node carries before Cluster API or Karpenter gave it its pool's
  label and taints (`NEW_NODE_TAINT_KEYS`, and `NODE_CONDITION_TAINT_KEYS` but for NoExecute);
- a pod requesting GPUs only when pinned, except while it is scheduling-gated: Kueue's pod
  integration creates pods gated (`kueue.x-k8s.io/admission`) and pins them in the same patch
  that removes the gate, which is an UPDATE judged again.

Jobs Kueue admits pass as they are: Kueue copies the ResourceFlavor's `nodeLabels` (the pool's,
`dsx.ai/pool` included) into the pod template's nodeSelector and its tolerations into the
template before the pods exist (kueue pkg/podset/podset.go FromAssignment and Merge, called by
the Job integration's RunWithPodSetsInfo), and a ClusterQueue lists only the pools of its Tenant's
`spec.gpuQuota` (`decisions.tenant.cluster_queue`), which are the pools granted here.

The granted pools are the pools of the Tenant's `spec.gpuQuota`, the flavors of its ClusterQueue:
where Kueue itself would place its work, borrowing within the cohort included. A namespace in the
webhook's scope that no live Tenant holds (a released one, a Tenant gone without its finalizer, a
label someone else set) is granted no pool at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from operators.api import GPU_RESOURCE, POOL_LABEL, TENANT_LABEL
from operators.decisions.meta import MAX_SHOWN, Obj, shown
from operators.decisions.nodepool import DEFAULT_TAINTS
from operators.decisions.ownership import owns
from operators.decisions.quantity import parse_quantity

NEW_NODE_TAINT_KEYS = frozenset({"node.cluster.x-k8s.io/uninitialized", "karpenter.sh/unregistered"})
"""Taints a new GPU node carries before it has its pool's label and taints, whatever the effect.
Cluster API: kubeadm's bootstrap adds `node.cluster.x-k8s.io/uninitialized:NoSchedule` to every
joining node (cluster-api v1.14 api/core/v1beta2/common_types.go L293-301 NodeUninitializedTaint;
bootstrap/kubeadm/reconcilers/kubeadmconfig/kubeadmconfig_controller.go L709-710) and the Machine
controller removes it in the same patch that syncs the Machine's labels, the pool's included
(core/reconcilers/machine/machine_controller_noderef.go L335-336), and the pool's taints, which
Cluster API propagates from the Machine. Karpenter: `karpenter.sh/unregistered:NoExecute`
(karpenter v1.14 pkg/apis/v1/taints.go L28, L38-41) stays until registration has synced the
NodeClaim's labels and taints (pkg/controllers/nodeclaim/lifecycle/registration.go L78, L100).
Until then nothing on the node says whose pool it is, so a pod tolerating these must be pinned."""
NODE_CONDITION_TAINT_KEYS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
"""Kubernetes' node-condition taints, which a node still joining carries as NoSchedule (the kubelet
registers with not-ready:NoSchedule; the node lifecycle controller keeps it while not Ready). A
toleration of them with effect NoSchedule, or an empty effect (every effect), is judged like the
keys above; a NoExecute one passes: the DefaultTolerationSeconds admission plugin gives every pod
`not-ready` and `unreachable` NoExecute for 300 s, and a NoExecute toleration never matches the
NoSchedule taint that keeps pods off a node not yet ready."""
AFFINITY_TERMS = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
PLACEMENT_FIELDS = ("nodeSelector", "affinity", "tolerations", "nodeName", "schedulingGates")
"""Pod spec fields that decide where it may run; an UPDATE changing none of them (nor a
container's GPU request) is not judged again."""


@dataclass(frozen=True)
class Grants:
    """Whose namespace it is and the pools its pods may be placed on."""

    owner: str
    """For messages: `tenant 'acme'`, or why no tenant holds the namespace."""
    pools: frozenset[str]


def _shown(value: object) -> str:
    return shown(value, MAX_SHOWN)


def grants_for(namespace: Obj | None, tenant: Obj | None) -> Grants:
    """The pools a namespace's pods may use: those of the Tenant that holds it, proven as the
    operator proves ownership (the namespace's `dsx.ai/tenant-uid` equals the Tenant's uid, and
    the Tenant still lists it and is not being deleted). Anything else holds no pool."""
    meta = (namespace or {}).get("metadata") or {}
    name = meta.get("name", "")
    tenant_name = (meta.get("labels") or {}).get(TENANT_LABEL)
    if not tenant_name:
        return Grants(f"namespace '{name}' (held by no Tenant)", frozenset())
    tenant_meta = (tenant or {}).get("metadata") or {}
    uid = tenant_meta.get("uid") or ""
    spec = (tenant or {}).get("spec") or {}
    if (
        tenant is None
        or tenant_meta.get("name") != tenant_name
        or not owns(namespace, uid)
        or tenant_meta.get("deletionTimestamp")
        or name not in (spec.get("namespaces") or [])
    ):
        return Grants(f"namespace '{name}' (no live Tenant {_shown(tenant_name)} holds it)", frozenset())
    pools = frozenset(
        q["pool"]
        for q in spec.get("gpuQuota") or []
        if isinstance(q, dict) and isinstance(q.get("pool"), str)
    )
    return Grants(f"tenant '{tenant_name}'", pools)


def gpu_taint_keys(pools: list[Obj]) -> frozenset[str]:
    """Every taint key a GPU pool puts on its Nodes: the default GPU taint's and each pool's own
    (`spec.taints`, whatever the pool's validity: its Nodes may carry them already)."""
    keys = {t["key"] for t in DEFAULT_TAINTS}
    for pool in pools:
        for taint in ((pool.get("spec") or {}).get("taints")) or []:
            if isinstance(taint, dict) and isinstance(taint.get("key"), str) and taint["key"]:
                keys.add(taint["key"])
    return frozenset(keys)


def _terms(spec: Obj) -> list[Obj]:
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return list(required.get("nodeSelectorTerms") or [])


def _pins(expression: Obj, pools: frozenset[str]) -> bool:
    values = expression.get("values") or []
    return (
        expression.get("key") == POOL_LABEL
        and expression.get("operator") == "In"
        and bool(values)
        and all(v in pools for v in values)
    )


def pinned(spec: Obj, pools: frozenset[str]) -> bool:
    """Whether the pod can land only on Nodes of `pools`: its nodeSelector names one of them, or
    every required affinity term (terms are ORed) holds an `In` on the pool label with granted
    pools only (a term's expressions are ANDed)."""
    selector = spec.get("nodeSelector") or {}
    if POOL_LABEL in selector:
        return selector[POOL_LABEL] in pools
    terms = _terms(spec)
    return bool(terms) and all(
        any(_pins(e, pools) for e in (term or {}).get("matchExpressions") or []) for term in terms
    )


def _gpu_requests(spec: Obj) -> list[str]:
    """Where the pod asks for GPUs: each container (init containers too) whose requests or limits
    name a non-zero GPU quantity (an unreadable one counts), and pod-level resources."""
    found = []
    for field in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(field) or []):
            resources = (container or {}).get("resources") or {}
            if _asks_gpus(resources):
                found.append(f"spec.{field}[{index}] ({_shown(container.get('name', ''))})")
    if _asks_gpus(spec.get("resources") or {}):
        found.append("spec.resources")
    return found


def _asks_gpus(resources: Obj) -> bool:
    for part in ("requests", "limits"):
        value = (resources.get(part) or {}).get(GPU_RESOURCE)
        if value is None:
            continue
        quantity = parse_quantity(value) if isinstance(value, str | int | float) else None
        if quantity is None or quantity != 0:
            return True
    return False


def placement_problems(
    pod: Obj, grants: Grants, taint_keys: frozenset[str], node_name_checked: bool = True
) -> list[str]:
    """Every reason the pod may not be placed as it asks, each naming the field and the pool; none
    when it may. `node_name_checked` is False on an UPDATE that keeps the nodeName the scheduler
    (or the pod's creation) set. Never raises: a pod it cannot read is refused."""
    try:
        return _problems(pod.get("spec") or {}, grants, taint_keys, node_name_checked)
    except (AttributeError, TypeError, KeyError, ValueError) as error:
        return [f"the pod's spec could not be read ({type(error).__name__}): refused rather than unchecked"]


SHAPES = {
    "nodeSelector": dict,
    "affinity": dict,
    "tolerations": list,
    "containers": list,
    "initContainers": list,
}
"""What the API server's own validation guarantees, checked again: a decision must not depend on
what reached it having been validated."""


def _problems(spec: Obj, grants: Grants, taint_keys: frozenset[str], node_name_checked: bool) -> list[str]:
    for field, shape in SHAPES.items():
        if spec.get(field) is not None and not isinstance(spec[field], shape):
            return [
                f"spec.{field} is not a {'map' if shape is dict else 'list'}: refused rather than unchecked"
            ]
    pools = grants.pools
    granted = f"{grants.owner} holds " + (f"pools {', '.join(sorted(pools))}" if pools else "no pool")
    fix = (
        f"pin it with nodeSelector {POOL_LABEL}: <one of {', '.join(sorted(pools))}>"
        if pools
        else "a namespace holding no pool runs nothing on GPU pools"
    )
    problems = []
    selector = spec.get("nodeSelector") or {}
    if POOL_LABEL in selector and selector[POOL_LABEL] not in pools:
        problems.append(
            f"spec.nodeSelector[{POOL_LABEL}] names pool {_shown(selector[POOL_LABEL])}, not granted: {granted}"
        )
    for t, term in enumerate(_terms(spec)):
        for e, expression in enumerate((term or {}).get("matchExpressions") or []):
            if expression.get("key") != POOL_LABEL or _pins(expression, pools):
                continue
            where = f"{AFFINITY_TERMS}[{t}].matchExpressions[{e}]"
            operator = expression.get("operator")
            if operator == "In":
                others = [v for v in expression.get("values") or [] if v not in pools] or ["(none)"]
                named = ", ".join(_shown(v) for v in others[:8])
                problems.append(f"{where} names pool {named} on {POOL_LABEL}, not granted: {granted}")
            else:
                problems.append(
                    f"{where} is {POOL_LABEL} {_shown(operator)}, which selects pools not granted; "
                    f"only `In` with granted pools is allowed: {granted}"
                )
    if node_name_checked and spec.get("nodeName"):
        problems.append(
            f"spec.nodeName {_shown(spec['nodeName'])} is set: it skips the scheduler, taints and "
            f"node selection with it; leave it unset ({fix})"
        )
    is_pinned = pinned(spec, pools)
    if not is_pinned:
        for index, toleration in enumerate(spec.get("tolerations") or []):
            key = (toleration or {}).get("key") or ""
            if not key:
                problems.append(
                    f"spec.tolerations[{index}] tolerates every taint (no key), the GPU pools' too, "
                    f"on a pod not pinned to its pools: {granted}; {fix}"
                )
            elif key in taint_keys:
                problems.append(
                    f"spec.tolerations[{index}] tolerates the GPU pools' taint {_shown(key)} on a pod not "
                    f"pinned to its pools: {granted}; {fix}"
                )
            elif key in NEW_NODE_TAINT_KEYS or (
                key in NODE_CONDITION_TAINT_KEYS
                and toleration.get("effect") not in ("NoExecute", "PreferNoSchedule")
            ):
                problems.append(
                    f"spec.tolerations[{index}] tolerates {_shown(key)}, the taint a new node carries before "
                    f"it has its pool's label and taints, on a pod not pinned to its pools: {granted}; {fix}"
                )
        if not spec.get("schedulingGates"):
            for where in _gpu_requests(spec):
                problems.append(
                    f"{where} requests {GPU_RESOURCE} on a pod not pinned to its pools: {granted}; submit "
                    f"it through Kueue (its LocalQueue 'default') or {fix}"
                )
    return problems


def _placement(pod: Obj | None) -> dict[str, Any]:
    spec = (pod or {}).get("spec") or {}
    placement: dict[str, Any] = {f: spec.get(f) for f in PLACEMENT_FIELDS}
    placement["gpus"] = _gpu_requests(spec)
    placement["containers"] = [
        ((c or {}).get("resources") or {})
        for f in ("initContainers", "containers")
        for c in spec.get(f) or []
    ]
    return placement


def review(request: Obj, grants: Grants, taint_keys: frozenset[str]) -> list[str]:
    """The refusals for one AdmissionReview `request` on a Pod: a CREATE is judged whole; an
    UPDATE only if it changes where the pod may run (its nodeSelector, affinity, tolerations,
    nodeName, scheduling gates or container resources), and then without the nodeName it already
    had (a bound pod's labels can still be updated). Anything else passes."""
    operation = request.get("operation")
    pod = request.get("object")
    if operation not in ("CREATE", "UPDATE") or not isinstance(pod, dict):
        return []
    old = request.get("oldObject") if operation == "UPDATE" else None
    if isinstance(old, dict):
        if _placement(old) == _placement(pod):
            return []
        same_node = ((old.get("spec") or {}).get("nodeName") or None) == (
            (pod.get("spec") or {}).get("nodeName") or None
        )
        return placement_problems(pod, grants, taint_keys, node_name_checked=not same_node)
    return placement_problems(pod, grants, taint_keys)


def admission_response(review_obj: Obj, problems: list[str]) -> Obj:
    """The AdmissionReview answer: allowed, or refused (403) with every problem in the message."""
    request = review_obj.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": not problems}
    if problems:
        message = "dsx: pod placement refused: " + "; ".join(problems)
        response["status"] = {"code": 403, "reason": "Forbidden", "message": message[:4000]}
    return {
        "apiVersion": review_obj.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }
