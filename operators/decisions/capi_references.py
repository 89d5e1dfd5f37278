"""Does the site have what a pool's MachineDeployment refers to? Pure.

On the Cluster API backend the MachineDeployment names a Cluster, an infrastructure machine
template and a bootstrap config template, all in its own namespace, which the site makes and dsx
does not. While one is missing Cluster API makes no Machine and the pool stays at 0 ready nodes
with nothing on the pool saying why. The reconciler looks each one up, read-only, as Cluster API
v1.14 would (internal/contract: GetGKMetadata reads the kind's CRD `<lowercase plural of
kind>.<apiGroup>`, GetLatestContractAndAPIVersionFromContract its contract label for the
version; then the object),
and `references_condition` turns what it found into the pool's `ClusterApiReferencesMissing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from operators.api import (
    CAPI_CONTRACT_LABELS,
    CAPI_GROUP,
    CAPI_REFERENCES_MISSING,
    CAPI_VERSION,
    DEFAULT_CAPI_NAMESPACE,
)
from operators.decisions.conditions import Condition
from operators.decisions.meta import Obj

Outcome = Literal["found", "not-found", "kind-not-served", "no-contract-label", "forbidden", "unchecked"]
_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {"alpha": 0, "beta": 1, None: 2}


@dataclass(frozen=True)
class Reference:
    """One object a pool's MachineDeployment names, and the spec field that names it."""

    field: str
    group: str
    kind: str
    name: str
    namespace: str

    @property
    def crd_name(self) -> str:
        return f"{plural(self.kind)}.{self.group}"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Finding:
    reference: Reference
    outcome: Outcome
    detail: str = ""


def plural(kind: str) -> str:
    """The resource name Cluster API derives from a kind (contract.CalculateCRDName, flect's
    Pluralize of the lower-cased kind) for the kinds providers name: `...Template` → `templates`,
    `Cluster` → `clusters`, `...Class` → `classes`, `...Policy` → `policies`."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


def references(pool: Obj) -> list[Reference]:
    """The Cluster, infrastructure template and bootstrap template of a cluster-api pool (none
    for karpenter). Call on a validated pool."""
    if pool["spec"]["backend"] != "cluster-api":
        return []
    capi = pool["spec"]["clusterApi"]
    namespace = capi.get("namespace", DEFAULT_CAPI_NAMESPACE)
    infra, boot = capi["infrastructureRef"], capi["bootstrapConfigRef"]
    return [
        Reference("spec.clusterApi.clusterName", CAPI_GROUP, "Cluster", capi["clusterName"], namespace),
        Reference(
            "spec.clusterApi.infrastructureRef", infra["apiGroup"], infra["kind"], infra["name"], namespace
        ),
        Reference(
            "spec.clusterApi.bootstrapConfigRef", boot["apiGroup"], boot["kind"], boot["name"], namespace
        ),
    ]


def _version_key(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order (GA over beta over alpha, then major, then minor);
    k8s.io/apimachinery CompareKubeAwareVersionStrings, which Cluster API sorts the label by."""
    match = _KUBE_VERSION.match(version)
    if not match:
        return (-1, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], int(major), int(minor or 0), "")


def api_version(reference: Reference, crd: Obj) -> str | None:
    """The version Cluster API reads the referenced kind at: the latest listed under the newest
    contract label the CRD carries and serves; Cluster API's own kinds default to its version.
    None: the CRD names none, and Cluster API cannot resolve the reference."""
    labels = (crd.get("metadata") or {}).get("labels") or {}
    served = {v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")}
    for label in CAPI_CONTRACT_LABELS:
        listed = [v for v in (labels.get(label) or "").split("_") if v]
        if listed:
            version = max(listed, key=_version_key)
            return version if version in served else None
    if reference.group == CAPI_GROUP and CAPI_VERSION in served:
        return CAPI_VERSION
    return None


def _problem(finding: Finding) -> str:
    ref, field = finding.reference, finding.reference.field
    if finding.outcome == "not-found":
        if ref.kind == "Cluster" and ref.group == CAPI_GROUP:
            fix = f"create the site's Cluster there, or set {field} to the one it has"
        else:
            fix = f"create it (the site's template, not made by dsx), or point {field} at one that exists"
        return f"{ref} ({field}) does not exist: {fix}"
    if finding.outcome == "kind-not-served":
        return (
            f"{ref} ({field}): the cluster serves no {ref.kind} in {ref.group} (no CRD {ref.crd_name}): "
            "install its Cluster API provider, or correct the apiGroup and kind"
        )
    if finding.outcome == "no-contract-label":
        return (
            f"{ref} ({field}): CRD {ref.crd_name} has no {' or '.join(CAPI_CONTRACT_LABELS)} label naming "
            "a served version, so Cluster API cannot resolve the reference: upgrade the provider to "
            "one that implements the Cluster API v1beta2 (or v1beta1) contract"
        )
    if finding.outcome == "forbidden":
        return (
            f"{ref} ({field}) could not be read: the operator may not get {ref.crd_name.split('.', 1)[0]} "
            f"in {ref.group}; add a rule with verb get on that resource to the ClusterRole dsx-operator"
        )
    return f"{ref} ({field}) could not be checked: {finding.detail}"


_REASONS = {
    "not-found": "ReferenceNotFound",
    "kind-not-served": "KindNotServed",
    "no-contract-label": "NoContractLabel",
    "forbidden": "Forbidden",
    "unchecked": "CheckFailed",
}


def references_condition(findings: list[Finding]) -> Condition:
    """True, naming every missing object and the way to fix it, until all exist."""
    problems = [f for f in findings if f.outcome != "found"]
    if not problems:
        named = ", ".join(str(f.reference) for f in findings)
        return Condition(CAPI_REFERENCES_MISSING, False, "AllFound", f"the MachineDeployment's {named} exist")
    message = "; ".join(_problem(f) for f in problems)
    if len(message) > 1000:
        message = message[:999] + "…"
    return Condition(CAPI_REFERENCES_MISSING, True, _REASONS[problems[0].outcome], message)
