"""The real operator (Kopf, in-process) against the API emulator: the lifecycle users rely on."""

from __future__ import annotations

from typing import Any

import pytest

from operators.kube import Kube
from tests.operators.conftest import example, wait_for
from tests.support.emulator import EmulatorThread, running_operator

NS = "inference-cloud-batam"


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return None


def _gpu_quota(kube: Kube, namespace: str) -> str | None:
    quota = kube.get("ResourceQuota", "dsx-quota", namespace)
    return quota and quota["spec"]["hard"]["requests.nvidia.com/gpu"]


def _tenant_ready(kube: Kube, name: str = "inference-cloud") -> bool:
    c = _condition(kube.get("Tenant", name), "Ready")
    return bool(c and c["status"] == "True")


def test_tenant_and_pool_reconcile_into_namespaces_quotas_and_node_pools(kube: Kube, operator: Any) -> None:
    kube.create(example("gpunodepool"))
    kube.create(example("tenant"))
    wait_for(lambda: _tenant_ready(kube), what="tenant Ready")
    assert _gpu_quota(kube, NS) == "4096"
    namespace = kube.get("Namespace", NS)
    assert namespace["metadata"]["labels"]["dsx.ai/tenant"] == "inference-cloud"
    for kind, name in [
        ("LimitRange", "dsx-limits"),
        ("RoleBinding", "dsx-owners"),
        ("NetworkPolicy", "dsx-tenant-isolation"),
        ("LocalQueue", "default"),
    ]:
        assert kube.get(kind, name, NS) is not None, kind
    assert kube.get("ClusterQueue", "inference-cloud")["spec"]["cohortName"] == "batam"
    md = wait_for(
        lambda: kube.get("MachineDeployment", "batam-gb300-nvl72", "dsx-system"), what="MachineDeployment"
    )
    assert md["spec"]["replicas"] == 9000
    assert kube.get("ResourceFlavor", "batam-gb300-nvl72") is not None
    pool = wait_for(
        lambda: (
            (kube.get("GpuNodePool", "batam-gb300-nvl72").get("status") or {}).get("desiredNodes")
            and kube.get("GpuNodePool", "batam-gb300-nvl72")
        )
    )
    assert pool["status"]["desiredNodes"] == 9000
    assert pool["status"]["capacityGpus"] == 36000
    tenant = kube.get("Tenant", "inference-cloud")
    assert tenant["status"]["quota"] == [
        {"pool": "batam-gb300-nvl72", "requestedGpus": 4096, "grantedGpus": 4096}
    ]


def test_update_resizes_the_node_pool_and_the_quota(kube: Kube, operator: Any) -> None:
    kube.create(example("gpunodepool"))
    kube.create(example("tenant"))
    wait_for(lambda: _gpu_quota(kube, NS) == "4096", what="initial quota")
    kube.patch("GpuNodePool", "batam-gb300-nvl72", {"spec": {"racks": 600}})
    kube.patch(
        "Tenant", "inference-cloud", {"spec": {"gpuQuota": [{"pool": "batam-gb300-nvl72", "gpus": 8000}]}}
    )
    wait_for(
        lambda: kube.get("MachineDeployment", "batam-gb300-nvl72", "dsx-system")["spec"]["replicas"] == 10800,
        what="replicas 600 x 18",
    )
    wait_for(lambda: _gpu_quota(kube, NS) == "8000", what="quota 8000")


def test_hand_edited_quota_and_label_are_put_back(kube: Kube, operator: Any) -> None:
    kube.create(example("gpunodepool"))
    kube.create(example("tenant"))
    wait_for(lambda: _gpu_quota(kube, NS) == "4096", what="quota")
    kube.patch(
        "ResourceQuota", "dsx-quota", {"spec": {"hard": {"requests.nvidia.com/gpu": "99999"}}}, namespace=NS
    )
    kube.patch("Namespace", NS, {"metadata": {"labels": {"dsx.ai/tenant": "someone-else"}}})
    wait_for(lambda: _gpu_quota(kube, NS) == "4096", what="quota repaired")
    wait_for(
        lambda: kube.get("Namespace", NS)["metadata"]["labels"]["dsx.ai/tenant"] == "inference-cloud",
        what="label repaired",
    )


def test_second_tenant_over_a_pool_is_marked_overcommitted_and_capped(kube: Kube, operator: Any) -> None:
    pool = example("gpunodepool")
    pool["spec"]["racks"] = 10  # 10 x 18 x 4 = 720 GPUs
    kube.create(pool)
    first = example("tenant")
    first["spec"]["gpuQuota"] = [{"pool": "batam-gb300-nvl72", "gpus": 500}]
    kube.create(first)
    wait_for(lambda: _gpu_quota(kube, NS) == "500", what="first tenant's quota")
    second = example("tenant")
    second["metadata"]["name"] = "model-builder"
    second["spec"]["namespaces"] = ["model-builder-batam"]
    second["spec"]["gpuQuota"] = [{"pool": "batam-gb300-nvl72", "gpus": 400}]
    kube.create(second)
    over = wait_for(
        lambda: _condition(kube.get("Tenant", "model-builder"), "Overcommitted"), what="condition"
    )
    assert over["status"] == "True"
    assert "220 of 400 GPUs granted" in over["message"]
    assert _gpu_quota(kube, "model-builder-batam") == "220"
    assert _gpu_quota(kube, NS) == "500"  # the earlier tenant keeps its grant


def _deleted_tenant(kube: Kube, policy: str, with_pod: bool) -> None:
    kube.create(example("gpunodepool"))
    tenant = example("tenant")
    tenant["spec"]["deletionPolicy"] = policy
    kube.create(tenant)
    wait_for(lambda: _tenant_ready(kube), what="tenant Ready")
    wait_for(
        lambda: "dsx.ai/finalizer" in kube.get("Tenant", "inference-cloud")["metadata"].get("finalizers", []),
        what="finalizer",
    )
    if with_pod:
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "worker", "namespace": NS},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        )
    kube.delete("Tenant", "inference-cloud")
    wait_for(
        lambda: kube.get("Tenant", "inference-cloud") is None,
        what="tenant gone (finalizer released)",
        state=lambda: kube.get("Tenant", "inference-cloud"),
    )


@pytest.mark.parametrize(
    ("policy", "with_pod", "namespace_kept"),
    [
        ("Retain", False, True),
        ("DeleteWhenEmpty", True, True),
        ("DeleteWhenEmpty", False, False),
        ("Delete", True, False),
    ],
)
def test_deleting_a_tenant_follows_its_deletion_policy(
    kube: Kube, operator: Any, policy: str, with_pod: bool, namespace_kept: bool
) -> None:
    _deleted_tenant(kube, policy, with_pod)
    namespace = kube.get("Namespace", NS)
    assert (namespace is not None) is namespace_kept
    if namespace_kept:
        assert namespace["metadata"]["labels"]["dsx.ai/released-by-policy"] == policy
        quota = kube.get("ResourceQuota", "dsx-quota", NS)
        assert quota is not None and "ownerReferences" not in quota["metadata"]
        if with_pod:
            assert kube.get("Pod", "worker", NS) is not None
    assert kube.get("ClusterQueue", "inference-cloud") is None


def test_invalid_tenant_gets_a_condition_not_a_crash_loop(kube: Kube, operator: Any) -> None:
    tenant = example("tenant")
    tenant["spec"]["namespaces"] = ["dup", "dup"]
    kube.create(tenant)
    ready = wait_for(lambda: _condition(kube.get("Tenant", "inference-cloud"), "Ready"), what="condition")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "twice" in ready["message"]
    assert kube.get("Namespace", "dup") is None


def test_restarted_operator_adopts_what_exists_without_duplicates(
    emulator: EmulatorThread, kube: Kube
) -> None:
    kube.create(example("gpunodepool"))
    kube.create(example("tenant"))
    with running_operator(emulator.url):
        wait_for(lambda: _tenant_ready(kube), what="first run")
    before = {
        k: len(kube.list(k)) for k in ("Namespace", "ResourceQuota", "ClusterQueue", "MachineDeployment")
    }
    kube.patch(
        "ResourceQuota", "dsx-quota", {"spec": {"hard": {"requests.nvidia.com/gpu": "1"}}}, namespace=NS
    )
    with running_operator(emulator.url):
        wait_for(lambda: _gpu_quota(kube, NS) == "4096", what="second run repairs")
    after = {
        k: len(kube.list(k)) for k in ("Namespace", "ResourceQuota", "ClusterQueue", "MachineDeployment")
    }
    assert after == before


def test_api_faults_are_retried_until_the_tenant_is_in_line(
    emulator: EmulatorThread, kube: Kube, operator: Any
) -> None:
    assert emulator.emulator is not None
    emulator.emulator["post /api/v1/namespaces"][:1] << 503
    emulator.emulator["post /api/v1/namespaces/inference-cloud-batam/resourcequotas"][:1] << 429
    emulator.emulator["patch /apis/dsx.ai/v1alpha1/tenants/inference-cloud/status"][:1] << 409
    kube.create(example("gpunodepool"))
    kube.create(example("tenant"))
    wait_for(lambda: _tenant_ready(kube), timeout_s=20, what="tenant Ready despite faults")
    assert _gpu_quota(kube, NS) == "4096"
    assert len(kube.list("Namespace", labels={"dsx.ai/tenant": "inference-cloud"})) == 1
