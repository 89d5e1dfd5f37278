"""The pool and tenants the operator scale benchmarks create (emulator and real server alike)."""

from __future__ import annotations

from typing import Any

POOL = "bench-pool"
GPUS_PER_RACK = 4
GPUS_PER_TENANT = 8


def pool(racks: int) -> dict[str, Any]:
    """One Cluster API pool of `racks` single-node racks, GPUS_PER_RACK GPUs each."""
    return {
        "apiVersion": "dsx.ai/v1alpha1",
        "kind": "GpuNodePool",
        "metadata": {"name": POOL},
        "spec": {
            "site": "bench",
            "rackType": "r",
            "gpuProduct": "NVIDIA-GB300",
            "racks": racks,
            "nodesPerRack": 1,
            "gpusPerNode": GPUS_PER_RACK,
            "backend": "cluster-api",
            "clusterApi": {
                "clusterName": "bench",
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


def tenant(i: int) -> dict[str, Any]:
    """Tenant number i: one namespace, GPUS_PER_TENANT GPUs asked of the pool."""
    return {
        "apiVersion": "dsx.ai/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": f"t{i:04d}"},
        "spec": {
            "site": "bench",
            "owners": {"users": [f"u{i}@example.com"]},
            "namespaces": [f"t{i:04d}-ns"],
            "gpuQuota": [{"pool": POOL, "gpus": GPUS_PER_TENANT}],
            "cpuQuota": "20000",
            "memoryQuota": "200Ti",
        },
    }
