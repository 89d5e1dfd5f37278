"""Reconciliation: read the cluster, ask the pure decisions, write the difference.

Functions here take a `Kube`, the operator's configuration and the object's body, so they run
the same under Kopf, in tests and from a shell. State lives in the cluster only: every pass
recomputes from what is there. One sub-step per concern, in this order for a Tenant:
claims (which namespaces it may have) → grants (the pools' ledgers) → children → releases →
status. A pass that changes nothing writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from operators.api import (
    ADDON_KINDS,
    ADDONS_MISSING,
    DEFAULT_DELETION_POLICY,
    DELETION_BLOCKED,
    FINALIZER,
    GPU_RESOURCE,
    OWNER_UID_ANNOTATION,
    POOL_KIND,
    READY,
    REASON_INVALID_SPEC,
    RECONCILED,
    RELEASED_LABEL,
    TENANT_KIND,
    TENANT_LABEL,
)
from operators.config import OperatorConfig
from operators.decisions import capi_references
from operators.decisions import ledger as ledgers
from operators.decisions import nodepool as np_decisions
from operators.decisions import tenant as tn_decisions
from operators.decisions.conditions import Condition, render_conditions
from operators.decisions.drift import equal
from operators.decisions.meta import owner_labels
from operators.decisions.nodepool import InvalidSpec
from operators.decisions.overcommit import Grant, shortfall
from operators.decisions.ownership import (
    Claim,
    claim_namespace,
    is_protected,
    not_owned_reason,
    owns,
    owns_child,
    with_children_not_owned,
)
from operators.kube import ApiError, Kube, NotOwned

log = logging.getLogger("dsx.operator")

# Kinds from add-ons (Kueue, Cluster API, Karpenter) that a cluster may not have installed:
# their absence degrades the object's status instead of failing the whole reconcile.
OPTIONAL_KINDS = set(ADDON_KINDS)
NAMESPACED_CHILDREN = ("ResourceQuota", "LimitRange", "RoleBinding", "NetworkPolicy", "LocalQueue")
# Children outside every namespace the owner holds: cluster-scoped, or (a MachineDeployment) in
# whatever namespace the pool names. One of these is written and deleted only when it carries the
# owner's uid (`decisions.ownership.owns_child`). A Tenant's namespaced children are not checked:
# they live in namespaces it owns.
OUTSIDE_CHILDREN = ("ClusterQueue", "ResourceFlavor", "Topology", "NodePool", "MachineDeployment")
# Children deleted and made again when a field the server keeps immutable was changed.
LEDGER_ATTEMPTS = 20

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def serialized(kind: str, name: str) -> Iterator[None]:
    """One pass at a time per object in this process (Kopf runs timers beside event handlers)."""
    with _locks_guard:
        lock = _locks.setdefault((kind, name), threading.Lock())
    with lock:
        yield


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_status(
    kube: Kube, kind: str, body: dict[str, Any], figures: dict[str, Any], conditions: list[Condition]
) -> bool:
    """Patch the status only when it would change; returns whether it wrote."""
    current = body.get("status") or {}
    status = {
        **figures,
        "observedGeneration": body.get("metadata", {}).get("generation"),
        "conditions": render_conditions(conditions, current.get("conditions"), _now()),
    }
    if all(equal(v, current.get(k)) for k, v in status.items()):
        return False
    kube.patch(kind, body["metadata"]["name"], {"status": status}, subresource="status")
    return True


class ChildRefused(ApiError):
    """The server refused a child as written (422: a schema, CEL or webhook rule), named."""

    def __init__(self, child: dict[str, Any], error: ApiError):
        self.kind, self.name = child["kind"], child["metadata"]["name"]
        super().__init__(error.status, "ChildRefused", f"{self.kind} {self.name} refused: {error}")
        self.detail = str(error)


def apply_all(
    kube: Kube, children: list[dict[str, Any]], owner: dict[str, Any] | None = None
) -> tuple[list[str], list[NotOwned]]:
    """Bring every child in line, in order; return the add-on kinds the cluster does not serve
    and the children left alone because an object of that name is not `owner`'s (`OUTSIDE_CHILDREN`
    only). The first child the server refuses (422) raises `ChildRefused`, naming it, and stops
    the pass: a Tenant's children depend on those before them (its namespaces first)."""
    missing: list[str] = []
    not_owned: list[NotOwned] = []
    for child in children:
        if child["kind"] in missing:
            continue
        if child["kind"] == "LocalQueue" and any(
            n.kind == "ClusterQueue" and n.name == child["spec"].get("clusterQueue") for n in not_owned
        ):
            continue  # it would lead the namespace's jobs into someone else's queue
        guard = (
            partial(not_owned_reason, owner=owner) if owner and child["kind"] in OUTSIDE_CHILDREN else None
        )
        try:
            outcome = kube.sync(child, guard, _pod_security_kept if child["kind"] == "Namespace" else None)
        except NotOwned as refusal:
            log.warning("left %s alone: %s", refusal.kind, refusal)
            not_owned.append(refusal)
            continue
        except ApiError as error:
            if error.status == 404 and child["kind"] in OPTIONAL_KINDS and not kube.serves(child["kind"]):
                missing.append(child["kind"])
                continue
            if error.status == 422:
                raise ChildRefused(child, error) from None
            raise
        if outcome != "unchanged":
            meta = child["metadata"]
            log.info("%s %s %s/%s", outcome, child["kind"], meta.get("namespace") or "-", meta["name"])
    return missing, not_owned


def apply_each(
    kube: Kube, children: list[dict[str, Any]], owner: dict[str, Any] | None = None
) -> tuple[list[str], list[ChildRefused], list[NotOwned]]:
    """Like `apply_all`, for children independent of each other (a pool's): one the server refuses
    does not keep the others from being written; every refusal is returned, to be named."""
    missing: list[str] = []
    refused: list[ChildRefused] = []
    not_owned: list[NotOwned] = []
    for child in children:
        if child["kind"] in missing:
            continue
        try:
            more_missing, more_not_owned = apply_all(kube, [child], owner)
        except ChildRefused as error:
            refused.append(error)
            continue
        missing += more_missing
        not_owned += more_not_owned
    return missing, refused, not_owned


def _not_owned_named(not_owned: list[NotOwned]) -> list[tuple[str, str, str]]:
    return [(n.kind, n.name, n.reason) for n in not_owned]


def _missing_condition(missing: list[str]) -> list[Condition]:
    if not missing:
        return []
    return [
        Condition(ADDONS_MISSING, True, "KindNotServed", f"the cluster does not serve: {', '.join(missing)}")
    ]


# -- GpuNodePool ---------------------------------------------------------------------------------
def reconcile_pool(kube: Kube, config: OperatorConfig, pool: dict[str, Any]) -> None:
    name = pool["metadata"]["name"]
    with serialized(POOL_KIND, name):
        live = kube.get(POOL_KIND, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        try:
            children = np_decisions.desired_children(live)
        except InvalidSpec as error:
            write_status(
                kube, POOL_KIND, live, {}, [Condition(READY, False, REASON_INVALID_SPEC, str(error))]
            )
            return
        # a refusal is said in the status and retried by the drift timer; the other children,
        # which do not depend on it (a MachineDeployment refused by Cluster API's webhook, say),
        # are still written, so the pool's Kueue flavor does not wait on its machinery
        missing, refused, not_owned = apply_each(kube, children, live)
        for refusal in refused:
            log.warning("%s", refusal)
        _remove_stale_backend(kube, live)
        live = _prune_ledger(kube, live) or live
        nodes = kube.list("Node", labels={np_decisions.POOL_LABEL: name})
        ledger = ledgers.read_ledger(live)
        over = ledgers.overgranted(ledger, np_decisions.capacity_gpus(live))
        figures, conditions = np_decisions.pool_status(live, nodes, over)
        findings = check_capi_references(kube, live)
        if findings:
            conditions.append(capi_references.references_condition(findings))
        if refused:
            conditions = np_decisions.with_refused_children(
                conditions, [(r.kind, r.name, r.detail) for r in refused]
            )
        conditions = with_children_not_owned(conditions, RECONCILED, _not_owned_named(not_owned))
        write_status(kube, POOL_KIND, live, figures, conditions + _missing_condition(missing))


def check_capi_references(kube: Kube, pool: dict[str, Any]) -> list[capi_references.Finding]:
    """Look up, read-only, the Cluster and templates a cluster-api pool's MachineDeployment names
    (`decisions.capi_references`). Never raises: what cannot be read is a finding, so a missing
    permission or an API hiccup is said in the status, and the next pass (the drift timer, not a
    retry loop) looks again."""
    return [_look_up(kube, ref) for ref in capi_references.references(pool)]


def _look_up(kube: Kube, ref: capi_references.Reference) -> capi_references.Finding:
    try:
        crd = kube.get("CustomResourceDefinition", ref.crd_name)
        if crd is None:
            return capi_references.Finding(ref, "kind-not-served")
        version = capi_references.api_version(ref, crd)
        if version is None:
            return capi_references.Finding(ref, "no-contract-label")
        plural = crd["spec"]["names"]["plural"]
        found = kube.get_at(f"{ref.group}/{version}", plural, ref.name, ref.namespace)
        return capi_references.Finding(ref, "found" if found is not None else "not-found")
    except ApiError as error:
        outcome: capi_references.Outcome = "forbidden" if error.status == 403 else "unchecked"
        return capi_references.Finding(ref, outcome, str(error)[:300])
    except (KeyError, TypeError) as error:  # a CRD without spec.names.plural: not one to read
        return capi_references.Finding(ref, "unchecked", f"malformed CRD {ref.crd_name}: {error}")


def _remove_stale_backend(kube: Kube, pool: dict[str, Any]) -> None:
    name = pool["metadata"]["name"]
    stale = np_decisions.stale_backend_kind(pool)
    capi = pool["spec"].get("clusterApi") or {}
    namespace = (
        capi.get("namespace", np_decisions.DEFAULT_CAPI_NAMESPACE) if stale == "MachineDeployment" else None
    )
    try:
        old = kube.get(stale, name, namespace)
    except ApiError as error:
        if error.status == 404:
            return
        raise
    if old is not None and owns_child(old, pool):  # never someone else's of that name
        kube.delete(stale, name, namespace, uid=old["metadata"]["uid"])
        log.info("deleted %s %s after a backend change", stale, name)


def _prune_ledger(kube: Kube, pool: dict[str, Any]) -> dict[str, Any] | None:
    """Drop ledger entries of Tenants that no longer exist; conditional on the pool's version."""
    ledger = ledgers.read_ledger(pool)
    if not ledger.entries:
        return None
    live_uids = {t["metadata"].get("uid", "") for t in kube.list(TENANT_KIND)}
    pruned = ledgers.prune(ledger, live_uids)
    if pruned == ledger:
        return None
    try:
        return kube.patch(
            POOL_KIND,
            pool["metadata"]["name"],
            {
                "metadata": {"resourceVersion": pool["metadata"]["resourceVersion"]},
                "status": {"ledger": ledgers.ledger_status(pruned)},
            },
            subresource="status",
        )
    except ApiError as error:
        if error.status == 409:
            return None  # someone else wrote it; the next pass prunes
        raise


# -- grants: the pools' ledgers -------------------------------------------------------------------
def _commit_grant(
    kube: Kube,
    pool_name: str,
    pool: dict[str, Any] | None,
    tenant: dict[str, Any],
    requested: int,
    floor: int,
) -> tuple[int, int | None]:
    """Record the tenant's grant on one pool, never below `floor` (what its quotas still hold).
    Conditional on the pool's resourceVersion; on conflict, read again and decide again.
    Returns (granted, capacity)."""
    name, uid = tenant["metadata"]["name"], tenant["metadata"].get("uid", "")
    for _attempt in range(LEDGER_ATTEMPTS):
        if pool is None:
            pool = kube.get(POOL_KIND, pool_name)
        if pool is None:
            return 0, None
        ledger = ledgers.read_ledger(pool)
        capacity = np_decisions.capacity_gpus(pool)
        granted = max(ledgers.decide(ledger, capacity, name, uid, requested), floor)
        entry = ledger.entry(name, uid)
        unchanged = (entry is not None and (entry.requested, entry.granted) == (requested, granted)) or (
            entry is None and requested == 0 and granted == 0
        )
        if unchanged:
            return granted, capacity
        new = ledgers.record(ledger, name, uid, requested, granted)
        try:
            kube.patch(
                POOL_KIND,
                pool_name,
                {
                    "metadata": {"resourceVersion": pool["metadata"]["resourceVersion"]},
                    "status": {"ledger": ledgers.ledger_status(new)},
                },
                subresource="status",
            )
            return granted, capacity
        except ApiError as error:
            if error.status == 404:
                return 0, None
            if error.status != 409:
                raise
            pool = None  # stale: read again, after a jittered pause so racing tenants spread out
            time.sleep(random.uniform(0, min(1.0, 0.01 * 2**_attempt)))
    raise ApiError(409, "Conflict", f"the ledger of pool {pool_name} kept changing; will retry")


def _quota_children(tenant: dict[str, Any], grant: Grant, held: list[str]) -> list[dict[str, Any]]:
    out = [tn_decisions.cluster_queue(tenant, grant, held)]
    for namespace, gpus in tn_decisions.namespace_gpus(grant, held).items():
        out.append(tn_decisions.resource_quota(tenant, namespace, gpus))
    return out


def settle_grants(kube: Kube, tenant: dict[str, Any], held: list[str], wanted: dict[str, int]) -> Grant:
    """The tenant's grant on every pool it asks for (or held before), written in the safe order:
    quotas lowered before the ledger, the ledger raised before the quotas (`decisions.ledger`)."""
    name, uid = tenant["metadata"]["name"], tenant["metadata"].get("uid", "")
    before = {q.get("pool") for q in (tenant.get("status") or {}).get("quota") or []} - set(wanted)
    requested = {**dict.fromkeys(before, 0), **wanted}
    pools = {p: kube.get(POOL_KIND, p) for p in sorted(requested)}
    held_gpus, target = {}, {}
    for p, pool in pools.items():
        ledger = ledgers.read_ledger(pool) if pool else ledgers.Ledger()
        entry = ledger.entry(name, uid)
        held_gpus[p] = entry.granted if entry else 0
        target[p] = ledgers.decide(
            ledger, np_decisions.capacity_gpus(pool) if pool else None, name, uid, requested[p]
        )
    low = {p: min(held_gpus[p], target[p]) for p in pools}
    if any(low[p] < held_gpus[p] for p in pools):
        apply_all(kube, _quota_children(tenant, Grant({p: low[p] for p in wanted}), held), tenant)
    grant = Grant()
    for p, pool in pools.items():
        granted, capacity = _commit_grant(kube, p, pool, tenant, requested[p], low[p])
        if p in wanted:
            grant.granted_by_pool[p] = granted
            missing = shortfall(p, capacity, granted, wanted[p])
            if missing:
                grant.shortfalls.append(missing)
    return grant


# -- Tenant ---------------------------------------------------------------------------------------
def claim_namespaces(kube: Kube, config: OperatorConfig, tenant: dict[str, Any]) -> list[Claim]:
    """Create the namespaces nobody has; keep the tenant's own; refuse everything else."""
    uid = tenant["metadata"].get("uid", "")
    claims = []
    for namespace in tenant["spec"]["namespaces"]:
        claim = claim_namespace(uid, namespace, kube.get("Namespace", namespace), config.protected)
        if claim.verdict == "create":
            try:
                kube.create(tn_decisions.namespace_object(tenant, namespace, config.pod_security))
                log.info("created namespace %s for tenant %s", namespace, tenant["metadata"]["name"])
                claim = Claim(namespace, "owned")
            except ApiError as error:
                if error.status != 409:
                    raise
                # created by someone else in between: judge what is there now
                claim = claim_namespace(uid, namespace, kube.get("Namespace", namespace), config.protected)
                if claim.verdict == "create":
                    claim = Claim(namespace, "refused", "is being created by someone else")
        claims.append(claim)
    return claims


def reconcile_tenant(kube: Kube, config: OperatorConfig, tenant: dict[str, Any]) -> None:
    name = tenant["metadata"]["name"]
    with serialized(TENANT_KIND, name):
        # Timers may hold a body from before a deletion began: read the live object first.
        live = kube.get(TENANT_KIND, name)
        if live is None or live.get("metadata", {}).get("deletionTimestamp"):
            return  # being deleted: the deletion handler owns it now; never re-create its namespaces
        if FINALIZER not in (live["metadata"].get("finalizers") or []):
            # Kopf starts the drift timer before its finalizer is on: a namespace made then
            # outlived a Tenant deleted before the finalizer landed (seen at 30% injected API
            # errors). Nothing is made until the deletion handler is sure to run.
            log.info("tenant %s: waiting for the finalizer before making anything", name)
            return
        tenant = live
        try:
            tn_decisions.validate_tenant(tenant, config.allowed_system_subjects)
        except InvalidSpec as error:
            write_status(
                kube, TENANT_KIND, tenant, {}, [Condition(READY, False, REASON_INVALID_SPEC, str(error))]
            )
            return
        # Namespaces it lets go first: their GPU quota is 0 before the grant is spread over the
        # rest, so the quotas never sum past the grant.
        wanted = set(tenant["spec"]["namespaces"])
        uid = tenant["metadata"].get("uid", "")
        owned = [
            ns["metadata"]["name"]
            for ns in kube.list("Namespace", labels={TENANT_LABEL: name})
            if owns(ns, uid)
        ]
        going = [ns for ns in owned if ns not in wanted or is_protected(ns, config.protected)]
        if going:
            let_go(kube, config, tenant, going)
        claims = claim_namespaces(kube, config, tenant)
        held = [c.namespace for c in claims if c.verdict == "owned"]
        grant = settle_grants(kube, tenant, held, tn_decisions.requested_gpus(tenant))
        children = tn_decisions.desired_children(
            tenant,
            grant,
            held,
            config.operator_namespace,
            config.ingress_namespaces,
            config.pod_security,
            config.allowed_system_subjects,
        )
        missing, not_owned = apply_all(kube, children, tenant)
        figures, conditions = tn_decisions.tenant_status(tenant, grant, claims)
        conditions = with_children_not_owned(conditions, READY, _not_owned_named(not_owned))
        write_status(kube, TENANT_KIND, tenant, figures, conditions + _missing_condition(missing))


def _pod_security_kept(wanted: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """A tenant Namespace as wanted, keeping a Pod Security level a site admin set stricter than
    the operator's (`tn_decisions.stricter_pod_security`), written only over the namespace as read
    (its resourceVersion a precondition: an admin's change in between is read again, not undone)."""
    if live is None:
        return wanted
    kept = tn_decisions.stricter_pod_security(wanted, live["metadata"].get("labels") or {})
    version = live["metadata"].get("resourceVersion")
    return {**kept, "metadata": {**kept["metadata"], "resourceVersion": version}} if version else kept


def data_kinds(kube: Kube, namespace: str) -> list[str]:
    """The data-holding kinds present in a namespace; a kind that cannot be checked counts."""
    found = []
    for kind in tn_decisions.DATA_KINDS:
        try:
            items = kube.list(kind, namespace=namespace)
        except ApiError as error:
            if error.status == 404:
                continue  # the cluster does not serve this kind
            found.append(f"{kind} (unknown: {error.status})")
            continue
        if any(tn_decisions.counts_as_data(kind, i) for i in items):
            found.append(kind)
    return found


def _children_in(kube: Kube, namespace: str, tenant_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The tenant's children in one of its namespaces, by kind (none of a kind Kueue does not serve)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for kind in NAMESPACED_CHILDREN:
        try:
            out += [
                (kind, obj)
                for obj in kube.list(kind, namespace=namespace, labels=owner_labels(TENANT_KIND, tenant_name))
            ]
        except ApiError as error:
            if error.status == 404 and kind == "LocalQueue":
                continue
            raise
    return out


def let_go(
    kube: Kube, config: OperatorConfig, tenant: dict[str, Any], namespaces: list[str]
) -> tuple[list[str], list[str]]:
    """Let the tenant's own namespaces go: by its deletion policy (`release_namespaces`), but a
    protected one (given by an earlier version before its name was protected) only ever withdrawn,
    never deleted (`withdraw_namespaces`). Returns the namespaces deleted and those kept."""
    protected = [ns for ns in namespaces if is_protected(ns, config.protected)]
    gone, kept = release_namespaces(kube, tenant, [ns for ns in namespaces if ns not in protected])
    if protected:
        withdraw_namespaces(kube, tenant, protected)
    return gone, kept + protected


def release_namespaces(
    kube: Kube, tenant: dict[str, Any], namespaces: list[str]
) -> tuple[list[str], list[str]]:
    """Let namespaces go by the deletion policy (on deletion, or when dropped from the spec).
    Only namespaces the tenant owns are passed here. Their GPU quota goes to 0 first (the GPUs
    return to the pool); kept ones are detached (no owner references, no tenant label) so that
    neither garbage collection nor a later pass touches them again."""
    name = tenant["metadata"]["name"]
    policy = tenant["spec"].get("deletionPolicy", DEFAULT_DELETION_POLICY)
    if policy == "DeleteWhenEmpty":
        data = {ns: data_kinds(kube, ns) for ns in namespaces}
    else:
        data = {ns: [] for ns in namespaces}
    gone, kept = tn_decisions.namespaces_to_delete(policy, data)
    for ns in namespaces:
        quota = kube.get("ResourceQuota", tn_decisions.QUOTA_NAME, ns)
        if (
            quota is not None
            and ((quota.get("spec") or {}).get("hard") or {}).get(f"requests.{GPU_RESOURCE}") != "0"
        ):
            kube.patch(
                "ResourceQuota",
                tn_decisions.QUOTA_NAME,
                {"spec": {"hard": {f"requests.{GPU_RESOURCE}": "0"}}},
                ns,
            )
    for ns in gone:
        kube.delete("Namespace", ns)
        log.info("deleted namespace %s (policy %s)", ns, policy)
    for ns in kept:
        for kind, obj in _children_in(kube, ns, name):
            if obj["metadata"].get("ownerReferences"):
                kube.patch(kind, obj["metadata"]["name"], {"metadata": {"ownerReferences": None}}, ns)
        kube.patch("Namespace", ns, {"metadata": {"labels": {RELEASED_LABEL: policy, TENANT_LABEL: None}}})
        why = f"holds {', '.join(data[ns])}" if data[ns] else f"policy {policy}"
        log.info("kept namespace %s (%s)", ns, why)
    return gone, kept


WITHDRAW_LISTINGS = 3
"""Times `withdraw_namespaces` lists a namespace's children and deletes what it finds before it
reports them as still appearing (a pass of an earlier version still writing), per pass."""


def withdraw_namespaces(kube: Kube, tenant: dict[str, Any], namespaces: list[str]) -> None:
    """Namespaces the tenant owns that no tenant may hold (protected since an earlier version gave
    them: an add-on's, an ingress one). Never deleted, whatever the policy: the tenant's objects
    there go instead, the owners' binding first; they are listed again until none is left (a child
    made after a listing would otherwise stay in a namespace no longer marked the tenant's); the
    operator's own binding goes last (its rights there go with it); then the namespace stops
    being the tenant's (label and uid annotation removed)."""
    name = tenant["metadata"]["name"]
    own = tn_decisions.OPERATOR_BINDING_NAME

    def children(*, mine: bool) -> list[tuple[str, dict[str, Any]]]:
        return [
            (kind, obj)
            for kind, obj in _children_in(kube, ns, name)
            if owns_child(obj, tenant) and (obj["metadata"]["name"] == own) == mine
        ]

    def delete(found: list[tuple[str, dict[str, Any]]]) -> list[str]:
        failed = []
        owners_first = sorted(found, key=lambda item: item[1]["metadata"]["name"] != tn_decisions.OWNERS_NAME)
        for kind, obj in owners_first:
            try:
                kube.delete(kind, obj["metadata"]["name"], ns, uid=obj["metadata"]["uid"])
            except ApiError as error:  # e.g. 403 where its own binding there is gone: next pass
                failed.append(f"{kind} {obj['metadata']['name']} ({error.status})")
        return failed

    for ns in namespaces:
        failed: list[str] = []
        left = children(mine=False)
        for _ in range(WITHDRAW_LISTINGS):
            if not left:
                break
            failed = delete(left)
            if failed:
                break
            left = children(mine=False)
        if left and not failed:
            failed = [f"{kind} {obj['metadata']['name']} (still appearing)" for kind, obj in left]
        if not failed:
            failed = delete(children(mine=True))
        if failed:
            log.warning(
                "tenant %s: could not withdraw from protected namespace %s: %s", name, ns, ", ".join(failed)
            )
            continue  # still marked the tenant's, so the next pass tries again
        kube.patch(
            "Namespace",
            ns,
            {"metadata": {"labels": {TENANT_LABEL: None}, "annotations": {OWNER_UID_ANNOTATION: None}}},
        )
        log.info("withdrew tenant %s from protected namespace %s (its objects there deleted)", name, ns)


def finalize_tenant(
    kube: Kube, config: OperatorConfig, tenant: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """On deletion: namespaces per policy, GPUs back to the pools, the cluster-scoped queue if it
    is the Tenant's (never someone else's of that name). Any failure raises: the finalizer stays,
    and the caller reports why (DeletionBlocked)."""
    name = tenant["metadata"]["name"]
    uid = tenant["metadata"].get("uid", "")
    with serialized(TENANT_KIND, name):
        candidates = {
            ns["metadata"]["name"]: ns for ns in kube.list("Namespace", labels={TENANT_LABEL: name})
        }
        for ns in (tenant.get("spec") or {}).get("namespaces") or []:
            if ns not in candidates and (found := kube.get("Namespace", ns)) is not None:
                candidates[ns] = found  # an absent namespace is nobody's: nothing to release
        result = let_go(kube, config, tenant, sorted(ns for ns, obj in candidates.items() if owns(obj, uid)))
        pools = {q.get("pool") for q in (tenant.get("status") or {}).get("quota") or []}
        # a malformed spec: the pools it reached are in its status
        with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
            pools |= set(tn_decisions.requested_gpus(tenant))
        for pool in sorted(p for p in pools if isinstance(p, str)):
            _commit_grant(kube, pool, None, tenant, 0, 0)
        queue = kube.get("ClusterQueue", name)  # None also where Kueue is not served
        if queue is not None and owns_child(queue, tenant):
            kube.delete("ClusterQueue", name, uid=queue["metadata"]["uid"])
        elif queue is not None:
            log.info("left ClusterQueue %s alone: it %s", name, not_owned_reason(queue, tenant))
        return result


def report_blocked_deletion(kube: Kube, tenant: dict[str, Any], error: Exception) -> None:
    """Say on the Tenant why its deletion does not finish (best effort: the API may be down)."""
    try:
        live = kube.get(TENANT_KIND, tenant["metadata"]["name"]) or tenant
        conditions = [
            c for c in (live.get("status") or {}).get("conditions") or [] if c.get("type") != DELETION_BLOCKED
        ]
        blocked = render_conditions(
            [Condition(DELETION_BLOCKED, True, "CleanupFailed", str(error)[:500])], None, _now()
        )
        kube.patch(
            TENANT_KIND,
            live["metadata"]["name"],
            {"status": {"conditions": conditions + blocked}},
            subresource="status",
        )
    except ApiError:
        log.warning("could not report the blocked deletion of %s: %s", tenant["metadata"]["name"], error)
