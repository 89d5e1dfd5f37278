"""Reconciliation against a stand-in `Kube` that refuses what Kueue refuses: the refusal becomes
the pool's status, not a crash loop with the reason only in the operator's log."""

from __future__ import annotations

from typing import Any

from operators.config import OperatorConfig
from operators.kube import ApiError
from operators.reconcile import reconcile_pool
from tests.operators.conftest import example

IMMUTABLE = 'Topology.kueue.x-k8s.io "batam-gb300-nvl72" is invalid: spec.levels: field is immutable'


class KueueRefusingKube:
    """Holds one pool; refuses any write of its Topology as Kueue's CEL rule `self == oldSelf`
    does once the levels differ; records the status patches."""

    def __init__(self, pool: dict[str, Any], refuses: dict[str, str] | None = None) -> None:
        self.pool, self.synced, self.status_patches = pool, [], []
        self.refuses = {"Topology": IMMUTABLE} if refuses is None else refuses

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.pool if kind == "GpuNodePool" else None

    def sync(self, child: dict[str, Any]) -> str:
        if child["kind"] in self.refuses:
            raise ApiError(422, "Invalid", self.refuses[child["kind"]])
        self.synced.append(child["kind"])
        return "applied"

    def serves(self, kind: str) -> bool:
        return True

    def list(self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> list:
        return []

    def patch(
        self,
        kind: str,
        name: str,
        patch: dict[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self.status_patches.append(patch)
        return self.pool


def test_a_topology_kueue_refuses_to_change_is_named_in_the_pool_status_with_the_way_out() -> None:
    pool = example("gpunodepool")
    pool["metadata"].update(uid="u1", resourceVersion="1", generation=2)
    pool["spec"]["topology"] = {"blockLabel": "network.topology.nvidia.com/spine"}
    kube = KueueRefusingKube(pool)
    reconcile_pool(kube, OperatorConfig(), pool)  # type: ignore[arg-type]
    assert kube.synced == ["MachineDeployment", "ResourceFlavor"]  # the others are still applied
    conditions = {c["type"]: c for c in kube.status_patches[-1]["status"]["conditions"]}
    reconciled = conditions["Reconciled"]
    assert reconciled["status"] == "False" and reconciled["reason"] == "ChildRefused"
    assert (
        "Topology batam-gb300-nvl72" in reconciled["message"]
        and "field is immutable" in reconciled["message"]
    )
    assert "kubectl delete topology,resourceflavor batam-gb300-nvl72" in reconciled["message"]
    assert kube.status_patches[-1]["status"]["desiredNodes"] == 9000  # the rest of the status still reported


TAINTS_REFUSED = (
    'MachineDeployment.cluster.x-k8s.io "batam-gb300-nvl72" is invalid: spec.template.spec.taints: '
    "Forbidden: taints are not allowed to be set when the feature gate MachineTaintPropagation is disabled"
)


def test_a_machine_deployment_cluster_api_refuses_does_not_keep_the_kueue_objects_from_being_written() -> (
    None
):
    pool = example("gpunodepool")
    pool["metadata"].update(uid="u1", resourceVersion="1", generation=1)
    kube = KueueRefusingKube(pool, {"MachineDeployment": TAINTS_REFUSED, "Topology": IMMUTABLE})
    reconcile_pool(kube, OperatorConfig(), pool)  # type: ignore[arg-type]
    assert kube.synced == ["ResourceFlavor"]
    message = {c["type"]: c for c in kube.status_patches[-1]["status"]["conditions"]}["Reconciled"]["message"]
    assert "MachineDeployment batam-gb300-nvl72" in message and "MachineTaintPropagation" in message
    assert "Topology batam-gb300-nvl72" in message and "kubectl delete topology,resourceflavor" in message
