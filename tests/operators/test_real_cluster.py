"""The real API server itself: what no emulator proves (schema validation, pruning, defaulting, RBAC).

The server is the session's `real_cluster` (tests/support/real_cluster.py): kube-apiserver v1.20.2
built from Debian's source package, or the cluster named by DSX_TEST_KUBECONFIG.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.real_cluster import OPERATOR_NAMESPACE, ApiStatus, Client, RealCluster

pytestmark = pytest.mark.real_cluster


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dsx.ai/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"site": "batam", "namespaces": [f"{name}-a"], **spec},
    }


@pytest.fixture(scope="module")
def operator_client(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Client:
    """The API as the operator's ServiceAccount sees it (bound to the shipped ClusterRole)."""
    path = tmp_path_factory.mktemp("sa") / "operator.kubeconfig"
    return Client.from_kubeconfig(real_cluster.service_account_kubeconfig(path))


@pytest.mark.parametrize(
    "spec",
    [
        {"namespaces": []},  # minItems: 1
        {"namespaces": ["Not_A_Label"]},  # pattern
        {"site": ""},  # pattern
        {"gpuQuota": [{"pool": "p", "gpus": -1}]},  # minimum: 0
        {"deletionPolicy": "Shred"},  # enum
        {"cpuQuota": "lots"},  # pattern
        {"cpuQuota": "9" * 5000},  # maxLength: no quantity of thousands of digits
        {"network": {"egressCIDRs": ["10.0.0.0/130"]}},  # pattern: a prefix of at most 128
    ],
    ids=[
        "no-namespaces",
        "bad-namespace",
        "empty-site",
        "negative-gpus",
        "unknown-policy",
        "bad-cpu",
        "huge-cpu",
        "long-prefix",
    ],
)
def test_server_rejects_invalid_tenants(real_cluster: RealCluster, spec: dict[str, Any]) -> None:
    with pytest.raises(ApiStatus) as info:
        real_cluster.admin.create(_tenant(_name("invalid"), **spec))
    assert info.value.status == 422, info.value


def test_server_prunes_unknown_fields_and_applies_defaults(real_cluster: RealCluster) -> None:
    name = _name("pruned")
    created = real_cluster.admin.create(_tenant(name, colour="blue", owners={"users": ["a"], "pets": 2}))
    try:
        assert "colour" not in created["spec"]
        assert created["spec"]["owners"] == {"users": ["a"]}
        assert created["spec"]["deletionPolicy"] == "Retain"  # schema default
    finally:
        real_cluster.admin.delete("Tenant", name)


def test_status_is_a_subresource_the_main_resource_cannot_write(real_cluster: RealCluster) -> None:
    name = _name("status")
    admin = real_cluster.admin
    admin.create(_tenant(name))
    try:
        admin.patch("Tenant", name, {"status": {"namespaces": ["x"]}})
        assert "status" not in admin.get("Tenant", name)
        admin.patch("Tenant", name, {"status": {"namespaces": ["x"]}}, subresource="status")
        assert admin.get("Tenant", name)["status"]["namespaces"] == ["x"]
    finally:
        admin.delete("Tenant", name)


def test_operator_service_account_authenticates_and_holds_its_cluster_role(operator_client: Client) -> None:
    operator_client.list("Tenant")
    operator_client.list("GpuNodePool")
    operator_client.list("Namespace")
    operator_client.list("ResourceQuota", "default")
    operator_client.list("MachineDeployment", OPERATOR_NAMESPACE)
    review = operator_client.request(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"group": "dsx.ai", "resource": "tenants", "verb": "watch"}},
        },
    )
    assert review["status"]["allowed"] is True


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/secrets", None),
        ("GET", "/api/v1/namespaces/kube-system/configmaps", None),
        ("DELETE", "/api/v1/namespaces/default/resourcequotas/anything", None),
        ("DELETE", "/apis/dsx.ai/v1alpha1/tenants/anything", None),
        ("POST", "/apis/dsx.ai/v1alpha1/tenants", _tenant("forged")),
        (
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "dsx-escalate"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}],
            },
        ),
        (
            # RoleBindings are allowed, but only to dsx-namespace-admin (`bind`): no escalation.
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "dsx-escalate", "namespace": "default"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}],
            },
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}},
        ),
    ],
    ids=[
        "read-secrets",
        "read-configmaps",
        "delete-quota",
        "delete-tenant",
        "create-tenant",
        "bind-cluster-admin-cluster-wide",
        "bind-cluster-admin-in-a-namespace",
        "create-pod",
    ],
)
def test_operator_service_account_is_denied_what_its_cluster_role_does_not_grant(
    operator_client: Client, method: str, path: str, body: Any
) -> None:
    with pytest.raises(ApiStatus) as info:
        operator_client.request(method, path, body=body)
    assert info.value.status == 403, info.value
