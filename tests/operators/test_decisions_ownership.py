"""Which namespaces a Tenant may have, which children outside them are its own, and which owners
it may name, without any server."""

from __future__ import annotations

import pytest

from operators.api import OWNER_UID_ANNOTATION, PROTECTED_NAMESPACES
from operators.decisions.conditions import Condition
from operators.decisions.meta import object_meta, owner_labels
from operators.decisions.nodepool import InvalidSpec
from operators.decisions.ownership import (
    claim_namespace,
    not_owned_reason,
    owns,
    owns_child,
    subject_problems,
    with_children_not_owned,
)
from operators.decisions.tenant import validate_tenant
from tests.operators.conftest import example

PROTECTED = PROTECTED_NAMESPACES | {"dsx-system"}


def _ns(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


@pytest.mark.parametrize("namespace", ["kube-system", "default", "dsx-system", "kube-public"])
def test_system_and_operator_namespaces_are_refused_even_if_they_carry_the_tenants_uid(
    namespace: str,
) -> None:
    live = _ns(namespace, annotations={OWNER_UID_ANNOTATION: "uid-1"})
    claim = claim_namespace("uid-1", namespace, live, PROTECTED)
    assert claim.verdict == "refused" and "system" in claim.reason


def test_an_absent_namespace_is_created() -> None:
    assert claim_namespace("uid-1", "team-a", None, PROTECTED).verdict == "create"


def test_an_existing_unlabelled_namespace_is_refused() -> None:
    claim = claim_namespace("uid-1", "legacy", _ns("legacy"), PROTECTED)
    assert claim.verdict == "refused" and "not created for this tenant" in claim.reason


def test_a_tenant_label_alone_proves_nothing() -> None:
    forged = _ns("team-a", labels={"dsx.ai/tenant": "acme", "app.kubernetes.io/managed-by": "dsx-operator"})
    assert claim_namespace("uid-1", "team-a", forged, PROTECTED).verdict == "refused"
    assert not owns(forged, "uid-1")


def test_another_tenants_namespace_is_refused_and_named() -> None:
    theirs = _ns("shared", labels={"dsx.ai/tenant": "first"}, annotations={OWNER_UID_ANNOTATION: "uid-first"})
    claim = claim_namespace("uid-second", "shared", theirs, PROTECTED)
    assert claim.verdict == "refused" and "another tenant (first)" in claim.reason


def test_the_tenants_own_namespace_is_kept() -> None:
    mine = _ns("team-a", annotations={OWNER_UID_ANNOTATION: "uid-1"})
    assert claim_namespace("uid-1", "team-a", mine, PROTECTED).verdict == "owned"


@pytest.mark.parametrize(
    ("owners", "problem"),
    [
        ({"groups": ["system:authenticated"]}, "system identity"),
        ({"groups": ["system:masters"]}, "system identity"),
        ({"users": ["system:serviceaccount:kube-system:default"]}, "system identity"),
        ({"users": ["SYSTEM:admin"]}, "system identity"),
        ({"users": [""]}, "non-empty"),
        ({"users": ["mal lory"]}, "whitespace"),
        ({"users": ["x\n"]}, "whitespace"),
        ({"users": ["a" * 300]}, "longer than"),
        ({"users": [7]}, "non-empty string"),
        ({"users": "alice"}, "must be a list"),
    ],
)
def test_malformed_and_system_owner_subjects_are_refused(owners: dict, problem: str) -> None:
    problems = subject_problems(owners)
    assert problems and problem in problems[0]
    tenant = example("tenant")
    tenant["spec"]["owners"] = owners
    with pytest.raises(InvalidSpec):
        validate_tenant(tenant)


def test_a_system_subject_the_configuration_allows_is_accepted() -> None:
    owners = {"users": ["system:serviceaccount:ci:deployer"], "groups": ["team"]}
    assert subject_problems(owners, frozenset({"system:serviceaccount:ci:deployer"})) == []
    assert subject_problems(
        {"groups": ["system:authenticated"]}, frozenset({"system:serviceaccount:ci:deployer"})
    )


def test_ordinary_subjects_are_accepted() -> None:
    assert (
        subject_problems({"users": ["alice@example.com", "oidc:bob"], "groups": ["inference-admins"]}) == []
    )


@pytest.mark.parametrize(
    "change",
    [
        {"gpuQuota": [{"pool": "p", "gpus": "lots"}]},
        {"gpuQuota": [{"pool": "p", "gpus": 2**31}]},
        {"gpuQuota": "all"},
        {"namespaces": "team"},
        {"owners": ["alice"]},
    ],
)
def test_a_malformed_spec_raises_only_invalid_spec(change: dict) -> None:
    tenant = example("tenant")
    tenant["spec"].update(change)
    with pytest.raises(InvalidSpec):
        validate_tenant(tenant)


def test_a_tenant_name_longer_than_a_label_value_is_refused() -> None:
    tenant = example("tenant")
    tenant["metadata"]["name"] = "t" * 64
    with pytest.raises(InvalidSpec, match="at most 63"):
        validate_tenant(tenant)


@pytest.mark.parametrize(
    "namespace",
    ["kube-flannel", "kube-anything", "cert-manager", "gpu-operator", "kueue-system", "karpenter"],
)
def test_add_on_and_kube_namespaces_are_refused_even_before_they_exist(namespace: str) -> None:
    # Claimed before the add-on is installed, its privileged workloads would land in a namespace
    # the tenant's owners administer (or be deleted with the Tenant).
    claim = claim_namespace("uid-1", namespace, None, PROTECTED)
    assert claim.verdict == "refused"


def test_a_system_owner_the_operator_allows_gets_the_children_too() -> None:
    # DSX_ALLOWED_SYSTEM_SUBJECTS passed the first check, but the children were validated again
    # without it: InvalidSpec after the namespace was made, on every pass, with no status.
    from operators.decisions.overcommit import Grant
    from operators.decisions.tenant import desired_children

    tenant = example("tenant")
    tenant["spec"]["owners"] = {"groups": ["system:serviceaccounts:ci"]}
    allowed = frozenset({"system:serviceaccounts:ci"})
    validate_tenant(tenant, allowed)
    children = desired_children(tenant, Grant({"batam-gb300-nvl72": 8}), allowed_system_subjects=allowed)
    owners = next(c for c in children if c["metadata"]["name"] == "dsx-owners")
    assert owners["subjects"][0]["name"] == "system:serviceaccounts:ci"
    with pytest.raises(InvalidSpec, match="system:serviceaccounts:ci"):
        desired_children(tenant, Grant({"batam-gb300-nvl72": 8}))


TENANT = {"apiVersion": "dsx.ai/v1alpha1", "kind": "Tenant", "metadata": {"name": "research", "uid": "uid-1"}}


def _queue(**metadata: object) -> dict:
    return {"kind": "ClusterQueue", "metadata": {"name": "research", **metadata}}


def test_a_child_the_operator_wrote_is_its_owners_by_the_uid_in_its_owner_reference() -> None:
    ours = _queue(**object_meta("research", TENANT))
    assert owns_child(ours, TENANT) and not_owned_reason(ours, TENANT) == ""
    assert not_owned_reason(None, TENANT) == ""  # absent: the owner may create it


def test_dsx_labels_on_someone_elses_object_prove_nothing() -> None:
    forged = _queue(labels=owner_labels("Tenant", "research"))
    assert not owns_child(forged, TENANT)
    assert not_owned_reason(forged, TENANT) == "exists and was not made by the operator for this Tenant"


def test_an_object_of_an_earlier_owner_with_the_same_name_is_not_the_new_owners() -> None:
    earlier = {**TENANT, "metadata": {"name": "research", "uid": "uid-0"}}
    left = _queue(**object_meta("research", earlier))
    assert not owns_child(left, TENANT)
    assert "earlier Tenant research" in not_owned_reason(left, TENANT)


def test_the_owners_uid_under_another_kind_or_an_owner_without_uid_owns_nothing() -> None:
    pool = {"kind": "GpuNodePool", "metadata": {"name": "research", "uid": "uid-1"}}
    assert not owns_child(_queue(**object_meta("research", pool)), TENANT)
    nameless = {"kind": "Tenant", "metadata": {"name": "research"}}
    assert not owns_child(_queue(**object_meta("research", nameless)), nameless)
    assert "belongs to GpuNodePool research" in not_owned_reason(
        _queue(**object_meta("research", pool)), TENANT
    )


def test_children_left_alone_turn_the_condition_false_and_are_named_after_what_it_said() -> None:
    conditions = [Condition("Ready", False, "NamespaceRefused", "refused: kube-system is a system namespace")]
    out = with_children_not_owned(conditions, "Ready", [("ClusterQueue", "research", "exists and is theirs")])
    assert out[0].status is False and out[0].reason == "ChildNotOwned"
    assert out[0].message.startswith(
        "refused: kube-system is a system namespace; not written and never deleted"
    )
    assert "ClusterQueue research exists and is theirs" in out[0].message
    assert with_children_not_owned(conditions, "Ready", []) == conditions
