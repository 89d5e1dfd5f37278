"""The pod-placement decision (`operators/decisions/placement.py`), with hostile pods: every way a
pod could name, select or tolerate its way onto a pool its tenant was not granted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from operators.api import GPU_RESOURCE, OWNER_UID_ANNOTATION, POOL_LABEL, TENANT_LABEL
from operators.decisions.overcommit import Grant
from operators.decisions.placement import (
    Grants,
    admission_response,
    gpu_taint_keys,
    grants_for,
    pinned,
    placement_problems,
    review,
)
from operators.decisions.tenant import cluster_queue

ACME = Grants("tenant 'acme'", frozenset({"gb300-a", "gb300-b"}))
TAINTS = frozenset({GPU_RESOURCE, "dsx.ai/dedicated"})
OTHER = "hgx-other"


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "acme-a"},
        "spec": {"containers": [{"name": "main", "image": "x"}], **spec},
    }


def gpu_pod(**spec: Any) -> dict[str, Any]:
    p = pod(**spec)
    p["spec"]["containers"][0]["resources"] = {"limits": {GPU_RESOURCE: "4"}}
    return p


def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(t)} for t in terms]
            }
        }
    }


def expr(operator: str, *values: str, key: str = POOL_LABEL) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return e


GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
PINNED = {"nodeSelector": {POOL_LABEL: "gb300-a"}}
DEFAULT_TOLERATIONS = [
    {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
]


def problems(p: dict[str, Any], grants: Grants = ACME) -> list[str]:
    return placement_problems(p, grants, TAINTS)


# -- admitted -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        {},  # a plain CPU pod, no toleration: it cannot land on a tainted pool node
        PINNED,
        {**PINNED, "tolerations": [GPU_TOLERATION]},
        {**PINNED, "tolerations": [{"operator": "Exists"}]},  # a wildcard, but pinned to its pools
        {"affinity": affinity([expr("In", "gb300-a", "gb300-b")]), "tolerations": [GPU_TOLERATION]},
        {  # every term pins (terms are ORed), one with an extra, harmless expression
            "affinity": affinity(
                [expr("In", "gb300-a")], [expr("In", "gb300-b"), expr("In", "x", key="zone")]
            ),
            "tolerations": [GPU_TOLERATION],
        },
        {"tolerations": DEFAULT_TOLERATIONS},  # what DefaultTolerationSeconds adds to every pod
        {"nodeSelector": {"zone": "a"}},
    ],
    ids=[
        "cpu",
        "pinned",
        "pinned-toleration",
        "pinned-wildcard",
        "affinity-in",
        "every-term",
        "not-ready",
        "other-label",
    ],
)
def test_pods_held_to_their_pools_are_admitted(spec: dict[str, Any]) -> None:
    assert problems(pod(**spec)) == []


def test_a_gpu_pod_pinned_to_a_granted_pool_is_admitted_and_so_is_one_kueue_holds_gated() -> None:
    assert problems(gpu_pod(**PINNED, tolerations=[GPU_TOLERATION])) == []
    gated = gpu_pod(schedulingGates=[{"name": "kueue.x-k8s.io/admission"}])
    assert problems(gated) == []


def test_a_pod_of_a_job_kueue_admitted_carries_the_flavors_pin_and_passes() -> None:
    """What Kueue writes into the pod template from the operator's ResourceFlavor: its node labels
    (the pool label among them) as nodeSelector and its tolerations (kueue podset.Merge)."""
    from operators.decisions.nodepool import node_labels, tolerations

    pool = {
        "metadata": {"name": "gb300-a"},
        "spec": {
            "site": "batam",
            "gpuProduct": "NVIDIA-GB300",
            "taints": [{"key": "dsx.ai/dedicated", "value": "x", "effect": "NoSchedule"}],
        },
    }
    p = gpu_pod(nodeSelector=node_labels(pool), tolerations=tolerations(pool))
    assert problems(p) == []


# -- refused: by selector, affinity, nodeName, toleration, GPU request -----------------------------
def test_a_selector_naming_another_pool_is_refused_naming_the_field_and_pool() -> None:
    found = problems(pod(nodeSelector={POOL_LABEL: OTHER}))
    assert len(found) == 1
    assert f"spec.nodeSelector[{POOL_LABEL}]" in found[0] and OTHER in found[0]
    assert "gb300-a, gb300-b" in found[0]


@pytest.mark.parametrize("value", ["", "GB300-A", "gb300-a ", "gb300-a,hgx-other", "*", "x" * 5000])
def test_a_selector_value_that_is_not_exactly_a_granted_pool_is_refused(value: str) -> None:
    found = problems(pod(nodeSelector={POOL_LABEL: value}, tolerations=[GPU_TOLERATION]))
    assert found and all(len(f) < 1000 for f in found)


@pytest.mark.parametrize(
    "expression",
    [
        expr("In", OTHER),
        expr("In", "gb300-a", OTHER),  # one granted, one not
        expr("In"),  # no values
        expr("NotIn", "gb300-a"),
        expr("Exists"),
        expr("DoesNotExist"),
        expr("Gt", "1"),
        expr("Lt", "1"),
        expr("in", "gb300-a"),  # not an operator the server knows: still not In
    ],
    ids=["in-other", "in-mixed", "in-empty", "notin", "exists", "doesnotexist", "gt", "lt", "lowercase"],
)
def test_required_affinity_on_the_pool_label_other_than_in_granted_pools_is_refused(
    expression: dict[str, Any],
) -> None:
    found = problems(pod(affinity=affinity([expression])))
    assert len(found) == 1, found
    assert "nodeSelectorTerms[0].matchExpressions[0]" in found[0] and POOL_LABEL in found[0]


def test_a_second_term_naming_another_pool_is_refused_even_when_the_first_pins() -> None:
    found = problems(
        pod(affinity=affinity([expr("In", "gb300-a")], [expr("In", OTHER)]), tolerations=[GPU_TOLERATION])
    )
    assert any("nodeSelectorTerms[1]" in f and OTHER in f for f in found)
    assert any("spec.tolerations[0]" in f for f in found)  # not pinned: term 1 selects elsewhere


def test_affinity_contradicting_a_pinned_selector_is_refused() -> None:
    found = problems(pod(**PINNED, affinity=affinity([expr("NotIn", "gb300-b")])))
    assert len(found) == 1 and "NotIn" in found[0]


@pytest.mark.parametrize("spec", [{}, PINNED, {**PINNED, "tolerations": [GPU_TOLERATION]}])
def test_node_name_is_always_refused(spec: dict[str, Any]) -> None:
    found = problems(pod(nodeName="gpu-node-7", **spec))
    assert len(found) == 1 and found[0].startswith("spec.nodeName 'gpu-node-7'")


@pytest.mark.parametrize(
    "toleration",
    [
        GPU_TOLERATION,
        {"key": GPU_RESOURCE, "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": GPU_RESOURCE, "operator": "Equal", "value": "wrong"},  # harmless, still refused
        {"key": GPU_RESOURCE, "effect": "NoExecute"},
        {"key": "dsx.ai/dedicated", "operator": "Exists"},  # a pool's own taint key
        {"operator": "Exists"},  # every taint
        {"key": "", "operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoSchedule"},
        {"key": None, "operator": "Exists"},
    ],
    ids=[
        "gpu-exists",
        "gpu-equal",
        "gpu-wrong-value",
        "gpu-noexecute",
        "pool-taint",
        "wildcard",
        "empty-key",
        "wildcard-effect",
        "null-key",
    ],
)
def test_tolerating_a_gpu_taint_without_being_pinned_is_refused(toleration: dict[str, Any]) -> None:
    for spec in (
        {},  # no selector at all
        {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-GB300"}},  # every pool of that product
        {"nodeSelector": {"kubernetes.io/hostname": "node-of-another-pool"}},
        {"affinity": affinity([expr("In", "node-x", key="kubernetes.io/hostname")])},
        {"affinity": affinity([expr("In", "gb300-a")], [expr("In", "node-x", key="kubernetes.io/hostname")])},
        {
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "preference": {"matchExpressions": [expr("In", "gb300-a")]}}
                    ]
                }
            }
        },
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
                        ]
                    }
                }
            }
        },
        {
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
            }
        },
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [None]}
                }
            }
        },
    ):
        found = problems(pod(tolerations=[{"key": "other", "operator": "Exists"}, toleration], **spec))
        assert any(f.startswith("spec.tolerations[1]") for f in found), (spec, found)
        assert not any(f.startswith("spec.tolerations[0]") for f in found)


@pytest.mark.parametrize(
    "resources",
    [
        {"limits": {GPU_RESOURCE: "1"}},
        {"requests": {GPU_RESOURCE: 8}},
        {"limits": {GPU_RESOURCE: "1k"}},
        {"limits": {GPU_RESOURCE: "not-a-quantity"}},  # unreadable counts as asking
    ],
)
def test_a_gpu_request_not_pinned_is_refused_in_any_container(resources: dict[str, Any]) -> None:
    for field in ("containers", "initContainers"):
        p = pod()
        p["spec"][field] = [
            {"name": "cpu", "image": "x"},
            {"name": "gpu", "image": "x", "resources": resources},
        ]
        found = problems(p)
        assert len(found) == 1 and found[0].startswith(f"spec.{field}[1] ('gpu') requests {GPU_RESOURCE}"), (
            found
        )
    assert problems(pod(resources=resources))[0].startswith("spec.resources")


def test_zero_gpus_is_no_gpu_request() -> None:
    p = pod()
    p["spec"]["containers"][0]["resources"] = {"limits": {GPU_RESOURCE: "0"}}
    assert problems(p) == []


def test_a_gpu_pod_pinned_to_another_pool_gets_every_reason() -> None:
    found = problems(gpu_pod(nodeSelector={POOL_LABEL: OTHER}, tolerations=[GPU_TOLERATION], nodeName="n1"))
    assert [f.split(" ")[0] for f in found] == [
        f"spec.nodeSelector[{POOL_LABEL}]",
        "spec.nodeName",
        "spec.tolerations[0]",
        "spec.containers[0]",
    ]


def test_a_namespace_holding_no_pool_may_place_nothing_on_gpu_pools() -> None:
    nothing = Grants("namespace 'x' (held by no Tenant)", frozenset())
    assert problems(pod(**PINNED), nothing)
    assert problems(pod(affinity=affinity([expr("In", "gb300-a")])), nothing)
    assert problems(pod(tolerations=[GPU_TOLERATION]), nothing)
    assert problems(gpu_pod(), nothing)
    assert problems(pod(), nothing) == []


@pytest.mark.parametrize(
    "spec",
    [
        {"nodeSelector": ["not", "a", "map"]},
        {"tolerations": "everything"},
        {
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "x"}}
            }
        },
        {"containers": [{"resources": {"limits": ["x"]}}]},
    ],
)
def test_a_pod_that_cannot_be_read_is_refused_never_raises(spec: dict[str, Any]) -> None:
    found = problems(pod(**spec))
    assert found, spec


def test_pinned_requires_every_term_to_pin() -> None:
    pools = ACME.pools
    assert pinned({"affinity": affinity([expr("In", "gb300-a")])}, pools)
    assert not pinned({"affinity": affinity([expr("In", "gb300-a")], [expr("In", "x", key="zone")])}, pools)
    assert not pinned(
        {"nodeSelector": {POOL_LABEL: OTHER}, "affinity": affinity([expr("In", "gb300-a")])}, pools
    )


# -- UPDATEs and the AdmissionReview ----------------------------------------------------------------
def request(operation: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"uid": "u-1", "operation": operation, "object": obj, "oldObject": old}


def test_an_update_changing_nothing_placement_related_is_not_judged_again() -> None:
    bound = pod(**PINNED, nodeName="n1")  # bound by the scheduler
    relabelled = copy.deepcopy(bound)
    relabelled["metadata"]["labels"] = {"a": "b"}
    assert review(request("UPDATE", relabelled, bound), ACME, TAINTS) == []


def test_an_update_adding_a_toleration_to_a_bound_pod_is_judged_without_its_node_name() -> None:
    bound = pod(**PINNED, nodeName="n1")
    widened = copy.deepcopy(bound)
    widened["spec"]["tolerations"] = [GPU_TOLERATION]
    assert review(request("UPDATE", widened, bound), ACME, TAINTS) == []  # pinned: fine
    unpinned = pod(nodeName="n1")
    hostile = copy.deepcopy(unpinned)
    hostile["spec"]["tolerations"] = [{"operator": "Exists"}]
    found = review(request("UPDATE", hostile, unpinned), ACME, TAINTS)
    assert len(found) == 1 and found[0].startswith("spec.tolerations[0]")


def test_removing_the_kueue_gate_without_the_pin_is_refused_and_with_it_admitted() -> None:
    gated = gpu_pod(schedulingGates=[{"name": "kueue.x-k8s.io/admission"}])
    assert review(request("CREATE", gated), ACME, TAINTS) == []
    ungated = copy.deepcopy(gated)
    ungated["spec"]["schedulingGates"] = []
    assert review(request("UPDATE", ungated, gated), ACME, TAINTS)
    ungated["spec"]["nodeSelector"] = {POOL_LABEL: "gb300-b"}  # what Kueue's own patch does
    assert review(request("UPDATE", ungated, gated), ACME, TAINTS) == []
    ungated["spec"]["nodeSelector"] = {POOL_LABEL: OTHER}
    assert review(request("UPDATE", ungated, gated), ACME, TAINTS)


def test_other_operations_pass_and_the_answer_carries_the_uid_and_every_reason() -> None:
    assert review(request("DELETE", pod(nodeName="x")), ACME, TAINTS) == []
    assert review({"operation": "CREATE", "object": None}, ACME, TAINTS) == []
    review_obj = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-9"}}
    assert admission_response(review_obj, []) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-9", "allowed": True},
    }
    refused = admission_response(review_obj, ["a", "b"])["response"]
    assert refused["allowed"] is False and refused["status"]["code"] == 403
    assert refused["status"]["message"].endswith("a; b")


# -- whose namespace, which pools, which taints -----------------------------------------------------
def tenant(uid: str = "uid-1", **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Tenant",
        "metadata": {"name": "acme", "uid": uid},
        "spec": {
            "site": "batam",
            "namespaces": ["acme-a"],
            "gpuQuota": [{"pool": "gb300-a", "gpus": 8}, {"pool": "gb300-b", "gpus": 0}],
            **spec,
        },
    }


def namespace(uid: str | None = "uid-1", label: str | None = "acme", name: str = "acme-a") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {TENANT_LABEL: label} if label else {}}
    if uid:
        meta["annotations"] = {OWNER_UID_ANNOTATION: uid}
    return {"metadata": meta}


def test_the_granted_pools_are_the_flavors_of_the_tenants_cluster_queue() -> None:
    grants = grants_for(namespace(), tenant())
    assert grants.pools == {"gb300-a", "gb300-b"} and grants.owner == "tenant 'acme'"
    queue = cluster_queue(tenant(), Grant({"gb300-a": 8, "gb300-b": 0}), ["acme-a"])
    flavors = {f["name"] for g in queue["spec"]["resourceGroups"] for f in g["flavors"]}
    assert flavors == grants.pools


@pytest.mark.parametrize(
    ("ns", "tn"),
    [
        (namespace(uid="someone-else"), tenant()),  # the label is forged, the uid is not its
        (namespace(uid=None), tenant()),  # never handed over (an earlier operator's namespace)
        (namespace(), None),  # the Tenant is gone (deleted around its finalizer)
        (namespace(), tenant(uid="")),
        (namespace(), tenant(namespaces=["acme-b"])),  # dropped from the spec: being released
        (namespace(label=None), tenant()),  # released by policy: no tenant label
        (namespace(label="globex"), tenant()),  # names another tenant than the one read
        (
            namespace(),
            {**tenant(), "metadata": {**tenant()["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}},
        ),
    ],
    ids=[
        "forged-label",
        "no-uid",
        "tenant-gone",
        "tenant-no-uid",
        "dropped",
        "released",
        "other-tenant",
        "deleting",
    ],
)
def test_a_namespace_no_live_tenant_holds_gets_no_pool(ns: dict[str, Any], tn: dict[str, Any] | None) -> None:
    grants = grants_for(ns, tn)
    assert grants.pools == frozenset()
    assert "acme-a" in grants.owner


def test_the_gpu_taint_keys_are_the_default_and_every_pools_own() -> None:
    pools = [
        {"spec": {"taints": [{"key": "dsx.ai/dedicated", "effect": "NoSchedule"}]}},
        {"spec": {}},
        {"spec": {"taints": [{"key": ""}, "junk", {"key": 7}]}},
        {},
    ]
    assert gpu_taint_keys(pools) == {GPU_RESOURCE, "dsx.ai/dedicated"}


# -- a new node before Cluster API (or Karpenter) gave it the pool's label and taints --------------
NEW_NODE = "node.cluster.x-k8s.io/uninitialized"


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": NEW_NODE, "operator": "Exists", "effect": "NoSchedule"},
        {"key": NEW_NODE, "operator": "Exists"},
        {"key": "karpenter.sh/unregistered", "operator": "Exists", "effect": "NoExecute"},
        {
            "key": "karpenter.sh/unregistered",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": ""},
        {"key": "node.kubernetes.io/not-ready", "operator": "Equal", "value": "", "effect": "NoSchedule"},
    ],
    ids=[
        "capi-uninitialized",
        "capi-uninitialized-any-effect",
        "karpenter-unregistered",
        "karpenter-unregistered-seconds",
        "not-ready-noschedule",
        "not-ready-any-effect",
        "unreachable-empty-effect",
        "not-ready-equal",
    ],
)
def test_an_unpinned_pod_tolerating_a_new_nodes_taint_is_refused(toleration: dict[str, Any]) -> None:
    """A new GPU node carries only these until Cluster API's one patch adds the pool's label and
    taints (or Karpenter registers it): an unpinned pod tolerating them could squat it."""
    p = pod(tolerations=[*DEFAULT_TOLERATIONS, toleration])
    found = problems(p)
    assert len(found) == 1, found
    assert "spec.tolerations[2]" in found[0] and toleration["key"] in found[0]
    assert "new node" in found[0]
    # pinned to its own pool, the same toleration is fine (the new node is its pool's or none)
    assert problems(pod(**PINNED, tolerations=[*DEFAULT_TOLERATIONS, toleration])) == []


def test_the_new_node_taints_are_judged_whatever_pools_exist() -> None:
    assert placement_problems(
        pod(tolerations=[{"key": NEW_NODE, "operator": "Exists"}]), ACME, gpu_taint_keys([])
    )
