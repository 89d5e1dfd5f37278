"""dsx objects the real-API-server tests create, built once for every test that needs them."""

from __future__ import annotations

from typing import Any


def make_pool(name: str, gpus: int = 16, site: str = "batam") -> dict[str, Any]:
    """A Cluster API pool of `gpus` GPUs: gpus/4 nodes of 4 GPUs in one rack, made from the
    templates the stand-in CRDs serve (`Metal3MachineTemplate` and `KubeadmConfigTemplate` `gpu`)."""
    assert gpus % 4 == 0
    return {
        "apiVersion": "dsx.ai/v1alpha1",
        "kind": "GpuNodePool",
        "metadata": {"name": name},
        "spec": {
            "site": site,
            "rackType": "test-rack",
            "gpuProduct": "NVIDIA-TEST",
            "racks": 1,
            "nodesPerRack": gpus // 4,
            "gpusPerNode": 4,
            "backend": "cluster-api",
            "clusterApi": {
                "clusterName": site,
                "infrastructureRef": {
                    "apiGroup": "infrastructure.cluster.x-k8s.io",
                    "kind": "Metal3MachineTemplate",
                    "name": "gpu",
                },
                "bootstrapConfigRef": {
                    "apiGroup": "bootstrap.cluster.x-k8s.io",
                    "kind": "KubeadmConfigTemplate",
                    "name": "gpu",
                },
            },
        },
    }
