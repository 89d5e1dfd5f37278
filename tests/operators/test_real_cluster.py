"""Against a real cluster: what no emulator proves (schema pruning, RBAC, garbage collection).

Runs only when DSX_TEST_KUBECONFIG names a kubeconfig for a disposable cluster with the CRDs
and the operator installed (`kubectl apply -f operators/manifests/crds -f operators/manifests/deploy`).
"""

from __future__ import annotations

import os
import uuid

import pytest

pytestmark = [
    pytest.mark.real_cluster,
    pytest.mark.skipif(
        not os.environ.get("DSX_TEST_KUBECONFIG"),
        reason="no real cluster configured (set DSX_TEST_KUBECONFIG to a disposable cluster's kubeconfig)",
    ),
]


def test_server_prunes_unknown_fields_and_rejects_invalid_tenants() -> None:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from operators.kube import ApiError, Kube

    configuration = k8s.Configuration()
    k8s_config.load_kube_config(
        config_file=os.environ["DSX_TEST_KUBECONFIG"], client_configuration=configuration
    )
    kube = Kube(k8s.ApiClient(configuration))
    name = f"t-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ApiError) as info:
        kube.create(
            {
                "apiVersion": "dsx.ai/v1alpha1",
                "kind": "Tenant",
                "metadata": {"name": name},
                "spec": {"site": "x", "namespaces": []},
            }
        )
    assert info.value.status == 422
