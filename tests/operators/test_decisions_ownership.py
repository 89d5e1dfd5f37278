"""Which namespaces a Tenant may have and which owners it may name, without any server."""

from __future__ import annotations

import pytest

from operators.api import OWNER_UID_ANNOTATION, PROTECTED_NAMESPACES
from operators.decisions.nodepool import InvalidSpec
from operators.decisions.ownership import claim_namespace, owns, subject_problems
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
