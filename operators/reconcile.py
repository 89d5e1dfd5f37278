"""Reconciliation: read the cluster, ask the pure decisions, write the difference.

Functions here take a `Kube` and the object's body, so they run the same under Kopf, in tests
and from a shell. State lives in the cluster only: every pass recomputes from what is there.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from operators.decisions import nodepool as np_decisions
from operators.decisions import tenant as tn_decisions
from operators.decisions.conditions import Condition, render_conditions
from operators.decisions.meta import TENANT_LABEL, owner_labels
from operators.decisions.nodepool import InvalidSpec
from operators.decisions.overcommit import Grant, TenantRequest, grant_quotas
from operators.kube import ApiError, Kube

log = logging.getLogger("dsx.operator")

# Kinds from add-ons (Kueue, Cluster API, Karpenter) that a cluster may not have installed:
# their absence degrades the object's status instead of failing the whole reconcile.
OPTIONAL_KINDS = {"ClusterQueue", "LocalQueue", "ResourceFlavor", "MachineDeployment", "NodePool"}
NAMESPACED_CHILDREN = ("ResourceQuota", "LimitRange", "RoleBinding", "NetworkPolicy", "LocalQueue")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_status(
    kube: Kube, kind: str, body: dict[str, Any], figures: dict[str, Any], conditions: list[Condition]
) -> None:
    old = (body.get("status") or {}).get("conditions")
    status = {
        **figures,
        "observedGeneration": body.get("metadata", {}).get("generation"),
        "conditions": render_conditions(conditions, old, _now()),
    }
    kube.patch(kind, body["metadata"]["name"], {"status": status}, subresource="status")


def apply_all(kube: Kube, children: list[dict[str, Any]]) -> list[str]:
    """Apply every child; return the add-on kinds the cluster does not serve."""
    missing: list[str] = []
    for child in children:
        if child["kind"] in missing:
            continue
        try:
            outcome = kube.apply(child)
        except ApiError as error:
            if error.status == 404 and child["kind"] in OPTIONAL_KINDS and not kube.serves(child["kind"]):
                missing.append(child["kind"])
                continue
            raise
        if outcome != "unchanged":
            meta = child["metadata"]
            log.info("%s %s %s/%s", outcome, child["kind"], meta.get("namespace") or "-", meta["name"])
    return missing


def _missing_condition(missing: list[str]) -> list[Condition]:
    if not missing:
        return []
    return [
        Condition("AddonsMissing", True, "KindNotServed", f"the cluster does not serve: {', '.join(missing)}")
    ]


def reconcile_pool(kube: Kube, pool: dict[str, Any]) -> None:
    try:
        children = np_decisions.desired_children(pool)
    except InvalidSpec as error:
        write_status(kube, "GpuNodePool", pool, {}, [Condition("Ready", False, "InvalidSpec", str(error))])
        return
    missing = apply_all(kube, children)
    name = pool["metadata"]["name"]
    stale = np_decisions.stale_backend_kind(pool)
    namespace = (pool["spec"].get("clusterApi") or {}).get("namespace", np_decisions.DEFAULT_CAPI_NAMESPACE)
    try:
        old = kube.get(stale, name, namespace if stale == "MachineDeployment" else None)
        if (
            old is not None
            and old["metadata"].get("labels", {}).items() >= owner_labels("GpuNodePool", name).items()
        ):
            kube.delete(stale, name, namespace if stale == "MachineDeployment" else None)
            log.info("deleted %s %s after a backend change", stale, name)
    except ApiError as error:
        if error.status != 404:
            raise
    nodes = kube.list("Node", labels={np_decisions.POOL_LABEL: name})
    figures, conditions = np_decisions.pool_status(pool, nodes)
    write_status(kube, "GpuNodePool", pool, figures, conditions + _missing_condition(missing))


def current_grants(kube: Kube) -> tuple[dict[str, Grant], dict[str, int]]:
    """Grants for every live tenant, from every pool's planned GPUs."""
    pool_gpus = {}
    for pool in kube.list("GpuNodePool"):
        try:
            np_decisions.validate_pool(pool)
        except InvalidSpec:
            continue
        pool_gpus[pool["metadata"]["name"]] = np_decisions.pool_size(pool["spec"]).capacity_gpus
    requests = []
    for tenant in kube.list("Tenant"):
        meta = tenant.get("metadata", {})
        if meta.get("deletionTimestamp"):
            continue
        try:
            tn_decisions.validate_tenant(tenant)
        except InvalidSpec:
            continue
        requests.append(
            TenantRequest(
                meta["name"], meta.get("creationTimestamp", ""), tn_decisions.requested_gpus(tenant)
            )
        )
    return grant_quotas(pool_gpus, requests), pool_gpus


def reconcile_tenant(kube: Kube, tenant: dict[str, Any]) -> None:
    # Timers may hold a body from before a deletion began: read the live object first.
    live = kube.get("Tenant", tenant["metadata"]["name"])
    if live is None or live.get("metadata", {}).get("deletionTimestamp"):
        return  # being deleted: the deletion handler owns it now; never re-create its namespaces
    tenant = live
    try:
        tn_decisions.validate_tenant(tenant)
    except InvalidSpec as error:
        write_status(kube, "Tenant", tenant, {}, [Condition("Ready", False, "InvalidSpec", str(error))])
        return
    name = tenant["metadata"]["name"]
    grants, pool_gpus = current_grants(kube)
    grant = (
        grants.get(name)
        or grant_quotas(pool_gpus, [TenantRequest(name, "", tn_decisions.requested_gpus(tenant))])[name]
    )
    missing = apply_all(kube, tn_decisions.desired_children(tenant, grant))
    wanted = set(tenant["spec"]["namespaces"])
    dropped = [
        ns["metadata"]["name"]
        for ns in kube.list("Namespace", labels={TENANT_LABEL: name, **owner_labels("Tenant", name)})
        if ns["metadata"]["name"] not in wanted
    ]
    if dropped:
        release_namespaces(kube, tenant, dropped)
    figures, conditions = tn_decisions.tenant_status(tenant, grant)
    write_status(kube, "Tenant", tenant, figures, conditions + _missing_condition(missing))


def _pods(kube: Kube, namespace: str) -> int:
    return len(kube.list("Pod", namespace=namespace))


def release_namespaces(
    kube: Kube, tenant: dict[str, Any], namespaces: list[str]
) -> tuple[list[str], list[str]]:
    """Apply the deletion policy to namespaces the tenant no longer wants (or on its deletion)."""
    policy = tenant["spec"].get("deletionPolicy", "Retain")
    gone, kept = tn_decisions.namespaces_to_delete(policy, {ns: _pods(kube, ns) for ns in namespaces})
    for ns in gone:
        kube.delete("Namespace", ns)
        log.info("deleted namespace %s (policy %s)", ns, policy)
    for ns in kept:
        # Kept namespaces keep their quota and isolation, detached from the tenant so that
        # garbage collection does not remove them with it.
        for kind in NAMESPACED_CHILDREN:
            for obj in kube.list(
                kind, namespace=ns, labels=owner_labels("Tenant", tenant["metadata"]["name"])
            ):
                kube.patch(
                    kind, obj["metadata"]["name"], {"metadata": {"ownerReferences": None}}, namespace=ns
                )
        kube.patch("Namespace", ns, {"metadata": {"labels": {"dsx.ai/released-by-policy": policy}}})
        log.info("kept namespace %s (policy %s, %d pod(s))", ns, policy, _pods(kube, ns))
    return gone, kept


def finalize_tenant(kube: Kube, tenant: dict[str, Any]) -> tuple[list[str], list[str]]:
    """On deletion: namespaces per policy, the tenant's cluster-scoped queue always."""
    name = tenant["metadata"]["name"]
    existing = {ns["metadata"]["name"] for ns in kube.list("Namespace", labels={TENANT_LABEL: name})}
    existing |= {ns for ns in tenant["spec"].get("namespaces", []) if kube.get("Namespace", ns) is not None}
    result = release_namespaces(kube, tenant, sorted(existing))
    try:
        kube.delete("ClusterQueue", name)
    except ApiError as error:
        if error.status != 404:
            raise
    return result
