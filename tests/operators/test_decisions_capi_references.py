"""What a Cluster API pool's MachineDeployment refers to, how its version is found, and what the
pool says while one is missing. Pure: CRDs and findings are written out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from operators.decisions.capi_references import (
    Finding,
    Reference,
    api_version,
    plural,
    references,
    references_condition,
)
from tests.operators.conftest import example


def _crd(labels: dict[str, str], served: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "x", "labels": labels},
        "spec": {"versions": [{"name": v, "served": True} for v in served]},
    }


TEMPLATE = Reference(
    "spec.clusterApi.infrastructureRef",
    "infrastructure.cluster.x-k8s.io",
    "Metal3MachineTemplate",
    "batam-gb300",
    "dsx-system",
)


def test_a_cluster_api_pool_refers_to_its_cluster_and_both_templates_in_its_namespace() -> None:
    pool = example("gpunodepool")
    pool["spec"]["clusterApi"]["namespace"] = "capi-batam"
    assert [(r.kind, r.name, r.namespace, r.crd_name) for r in references(pool)] == [
        ("Cluster", "batam", "capi-batam", "clusters.cluster.x-k8s.io"),
        (
            "Metal3MachineTemplate",
            "batam-gb300",
            "capi-batam",
            "metal3machinetemplates.infrastructure.cluster.x-k8s.io",
        ),
        (
            "KubeadmConfigTemplate",
            "batam-gpu",
            "capi-batam",
            "kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io",
        ),
    ]
    pool["spec"]["backend"] = "karpenter"
    assert references(pool) == []


@pytest.mark.parametrize(
    ("kind", "resource"),
    [("Cluster", "clusters"), ("ClusterClass", "clusterclasses"), ("IPAddressPolicy", "ipaddresspolicies")],
)
def test_the_crd_is_named_by_the_kinds_plural_as_cluster_api_names_it(kind: str, resource: str) -> None:
    assert plural(kind) == resource


def test_the_version_is_the_latest_under_the_newest_contract_label_the_crd_serves() -> None:
    both = {"cluster.x-k8s.io/v1beta1": "v1alpha4_v1beta1", "cluster.x-k8s.io/v1beta2": "v1beta1_v1beta2"}
    assert api_version(TEMPLATE, _crd(both, ["v1beta1", "v1beta2"])) == "v1beta2"
    # a provider still on the v1beta1 contract, which Cluster API v1.14 still accepts
    old = {"cluster.x-k8s.io/v1beta1": "v1beta1_v1alpha3"}
    assert api_version(TEMPLATE, _crd(old, ["v1alpha3", "v1beta1"])) == "v1beta1"
    # GA sorts above beta, whatever the digits say
    assert api_version(TEMPLATE, _crd({"cluster.x-k8s.io/v1beta2": "v2beta9_v1"}, ["v1", "v2beta9"])) == "v1"


def test_a_crd_without_a_contract_label_or_serving_the_labelled_version_cannot_be_referenced() -> None:
    assert api_version(TEMPLATE, _crd({}, ["v1beta1"])) is None
    assert api_version(TEMPLATE, _crd({"cluster.x-k8s.io/v1beta2": "v1beta2"}, ["v1beta1"])) is None
    # Cluster API's own Cluster is read at its own version
    cluster = Reference("spec.clusterApi.clusterName", "cluster.x-k8s.io", "Cluster", "batam", "dsx-system")
    assert api_version(cluster, _crd({}, ["v1beta1", "v1beta2"])) == "v1beta2"


def test_the_pool_names_each_missing_object_and_how_to_fix_it() -> None:
    pool = example("gpunodepool")
    cluster, infra, boot = references(pool)
    condition = references_condition(
        [Finding(cluster, "not-found"), Finding(infra, "found"), Finding(boot, "kind-not-served")]
    )
    assert condition.type == "ClusterApiReferencesMissing" and condition.status
    assert condition.reason == "ReferenceNotFound"
    assert "Cluster dsx-system/batam (spec.clusterApi.clusterName) does not exist" in condition.message
    assert "create the site's Cluster there, or set spec.clusterApi.clusterName" in condition.message
    assert "Metal3MachineTemplate" not in condition.message  # it exists
    assert "no CRD kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io" in condition.message


@pytest.mark.parametrize(
    ("outcome", "reason", "says"),
    [
        (
            "forbidden",
            "Forbidden",
            "add a rule with verb get on that resource to the ClusterRole dsx-operator",
        ),
        (
            "no-contract-label",
            "NoContractLabel",
            "has no cluster.x-k8s.io/v1beta2 or cluster.x-k8s.io/v1beta1 label",
        ),
        ("unchecked", "CheckFailed", "could not be checked: HTTP 503"),
    ],
)
def test_what_could_not_be_read_is_said_with_its_way_out(outcome: Any, reason: str, says: str) -> None:
    condition = references_condition([Finding(TEMPLATE, outcome, "HTTP 503 Service Unavailable: etcd")])
    assert condition.status and condition.reason == reason
    assert says in condition.message and "Metal3MachineTemplate dsx-system/batam-gb300" in condition.message


def test_the_condition_is_false_once_every_referenced_object_exists() -> None:
    condition = references_condition([Finding(r, "found") for r in references(example("gpunodepool"))])
    assert not condition.status and condition.reason == "AllFound"
