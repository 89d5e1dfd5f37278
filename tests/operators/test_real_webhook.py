"""The pod-placement webhook on the real API server: the server calls the operator over TLS and
refuses a tenant's pod aimed at another tenant's pool.

One `kopf run -m operators.main` (its own ServiceAccount, the shipped ClusterRole) serving the
webhook on a free port, and the shipped ValidatingWebhookConfiguration with its service reference
replaced by `https://127.0.0.1:<port>/pods` (this server has no Service routing) and no caBundle:
the operator adds its own CA, so every refusal below went through the server's TLS check of the
operator's certificate. The server has no scheduler and no kubelet: admission is what is tested.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from operators.api import GPU_RESOURCE, POOL_LABEL
from operators.bundle import operator_bundle
from tests.support.dsx_objects import make_pool
from tests.support.operator_process import OperatorProcess, _free_port
from tests.support.real_cluster import ApiStatus, Client, RealCluster, wait_until

pytestmark = pytest.mark.real_cluster

SETTLE_S = 45.0
CONFIGURATION = "dsx-operator-pod-placement"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def make_tenant(name: str, pool: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "dsx.ai/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"site": "batam", "namespaces": [namespace], "gpuQuota": [{"pool": pool, "gpus": 8}]},
    }


def webhook_configuration(port: int) -> dict[str, Any]:
    shipped = next(d for d in operator_bundle() if d["kind"] == "ValidatingWebhookConfiguration")
    config = copy.deepcopy(shipped)
    for hook in config["webhooks"]:
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}/pods"}
    return config


class Setup:
    def __init__(self, admin: Client, operator: OperatorProcess):
        self.admin, self.operator = admin, operator
        self.pool_a, self.pool_b = unique("pool-a"), unique("pool-b")
        self.tenant_a, self.tenant_b = unique("tn-a"), unique("tn-b")
        self.ns_a, self.ns_b = f"{self.tenant_a}-ns", f"{self.tenant_b}-ns"
        self.plain = unique("plain")


@pytest.fixture(scope="module")
def setup(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    admin = real_cluster.admin
    directory = tmp_path_factory.mktemp("webhook-operator")
    kubeconfig = real_cluster.service_account_kubeconfig(directory / "operator.kubeconfig")
    port = _free_port()
    operator = OperatorProcess(kubeconfig, directory / "operator.log", interval_s=1.0)
    operator.env.update(
        DSX_WEBHOOK_PORT=str(port), DSX_WEBHOOK_EXTRA_SANS="127.0.0.1", HOSTNAME="webhook-test-replica"
    )
    admin.create_or_replace(webhook_configuration(port))
    s = Setup(admin, operator)
    try:
        operator.start()
        for pool in (s.pool_a, s.pool_b):
            admin.create(make_pool(pool))
        admin.create(make_tenant(s.tenant_a, s.pool_a, s.ns_a))
        admin.create(make_tenant(s.tenant_b, s.pool_b, s.ns_b))
        admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": s.plain}})
        for ns in (s.ns_a, s.ns_b):
            wait_until(
                lambda ns=ns: admin.get("ResourceQuota", "dsx-quota", ns), SETTLE_S, f"quota in {ns}", 0.1
            )
            wait_until(
                lambda ns=ns: admin.get("ServiceAccount", "default", ns), SETTLE_S, f"account in {ns}", 0.1
            )
        wait_until(lambda: admin.get("ServiceAccount", "default", s.plain), SETTLE_S, "plain account", 0.1)
        yield s
    finally:
        # The configuration first: without its operator it would refuse every later tenant pod.
        admin.delete("ValidatingWebhookConfiguration", CONFIGURATION)
        for name in (s.tenant_a, s.tenant_b):
            admin.delete("Tenant", name)
        if operator.running:
            wait_until(
                lambda: all(admin.get("Tenant", n) is None for n in (s.tenant_a, s.tenant_b)),
                SETTLE_S,
                "tenants gone",
            )
        operator.stop()
        for pool in (s.pool_a, s.pool_b):
            admin.delete("GpuNodePool", pool)
        admin.delete("Namespace", s.plain)


def pod(namespace: str, gpus: int = 0, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "registry.example/idle:1"}
    if gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: str(gpus)}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": unique("p"), "namespace": namespace},
        "spec": {"automountServiceAccountToken": False, "containers": [container], **spec},
    }


TOLERATE = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]


def refused(admin: Client, obj: dict[str, Any]) -> str:
    with pytest.raises(ApiStatus) as info:
        admin.create(obj)
    assert info.value.status == 403, info.value
    message = str(info.value)
    assert "admission webhook" in message and "dsx: pod placement refused" in message, message
    assert admin.get("Pod", obj["metadata"]["name"], obj["metadata"]["namespace"]) is None
    return message


def test_the_operator_put_its_ca_into_the_configuration(setup: Setup) -> None:
    config = setup.admin.get("ValidatingWebhookConfiguration", CONFIGURATION)
    assert config is not None
    for hook in config["webhooks"]:
        certs = x509.load_pem_x509_certificates(base64.b64decode(hook["clientConfig"]["caBundle"]))
        names = [c.subject.rfc4514_string() for c in certs]
        assert names == ["CN=dsx-operator webhook CA webhook-test-replica"], names


def test_another_tenants_pool_by_selector_is_refused(setup: Setup) -> None:
    message = refused(
        setup.admin, pod(setup.ns_a, gpus=1, nodeSelector={POOL_LABEL: setup.pool_b}, tolerations=TOLERATE)
    )
    assert f"spec.nodeSelector[{POOL_LABEL}] names pool '{setup.pool_b}'" in message
    assert f"tenant '{setup.tenant_a}' holds pools {setup.pool_a}" in message


def test_another_tenants_pool_by_affinity_is_refused(setup: Setup) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [setup.pool_b]}]}
                ]
            }
        }
    }
    message = refused(setup.admin, pod(setup.ns_a, affinity=affinity, tolerations=TOLERATE))
    assert "nodeSelectorTerms[0].matchExpressions[0]" in message and setup.pool_b in message
    not_in = copy.deepcopy(affinity)
    expression = not_in["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]
    expression["matchExpressions"][0]["operator"] = "NotIn"
    assert "'NotIn'" in refused(setup.admin, pod(setup.ns_a, affinity=not_in))


def test_a_toleration_alone_and_a_wildcard_toleration_are_refused(setup: Setup) -> None:
    assert "spec.tolerations[0] tolerates the GPU pools' taint" in refused(
        setup.admin, pod(setup.ns_a, tolerations=TOLERATE)
    )
    assert "tolerates every taint" in refused(
        setup.admin, pod(setup.ns_a, tolerations=[{"operator": "Exists"}])
    )


def test_node_name_is_refused(setup: Setup) -> None:
    message = refused(setup.admin, pod(setup.ns_a, nodeName="gpu-node-of-pool-b"))
    assert "spec.nodeName 'gpu-node-of-pool-b' is set" in message


def test_an_unpinned_gpu_pod_is_refused(setup: Setup) -> None:
    assert f"requests {GPU_RESOURCE} on a pod not pinned" in refused(setup.admin, pod(setup.ns_a, gpus=1))


def test_a_pod_pinned_to_its_own_pool_is_admitted_and_a_cpu_pod_too(setup: Setup) -> None:
    admin = setup.admin
    own = pod(setup.ns_a, gpus=1, nodeSelector={POOL_LABEL: setup.pool_a}, tolerations=TOLERATE)
    assert admin.create(own)["spec"]["nodeSelector"] == {POOL_LABEL: setup.pool_a}
    assert admin.create(pod(setup.ns_a))
    # and the other tenant on its own pool, the first tenant's refused there
    assert admin.create(pod(setup.ns_b, nodeSelector={POOL_LABEL: setup.pool_b}, tolerations=TOLERATE))
    refused(admin, pod(setup.ns_b, nodeSelector={POOL_LABEL: setup.pool_a}, tolerations=TOLERATE))


def test_a_namespace_the_operator_did_not_give_a_tenant_is_left_alone(setup: Setup) -> None:
    hostile = pod(setup.plain, gpus=1, nodeSelector={POOL_LABEL: setup.pool_b}, tolerations=TOLERATE)
    assert setup.admin.create(hostile)
    assert setup.admin.create(pod(setup.plain, nodeName="any-node", tolerations=[{"operator": "Exists"}]))


def test_an_update_adding_a_gpu_toleration_to_an_unpinned_pod_is_refused(setup: Setup) -> None:
    """Tolerations may be added to a pod after its creation: the UPDATE is judged too."""
    created = setup.admin.create(pod(setup.ns_a))
    name = created["metadata"]["name"]
    defaults = created["spec"].get("tolerations") or []  # the server's not-ready/unreachable ones
    with pytest.raises(ApiStatus) as info:
        setup.admin.patch("Pod", name, {"spec": {"tolerations": [*defaults, *TOLERATE]}}, setup.ns_a)
    assert info.value.status == 403, info.value
    assert f"spec.tolerations[{len(defaults)}] tolerates the GPU pools' taint" in str(info.value)
    stored = (setup.admin.get("Pod", name, setup.ns_a) or {})["spec"].get("tolerations") or []
    assert stored == defaults
    setup.admin.patch("Pod", name, {"metadata": {"labels": {"edited": "yes"}}}, setup.ns_a)  # not placement


def test_a_namespace_released_by_its_deleted_tenant_holds_no_pool(setup: Setup) -> None:
    """Retain keeps the namespace (labelled released, the tenant label gone): its owners are no
    one's tenant any more, so nothing of theirs goes onto a GPU pool, their old pool included."""
    admin = setup.admin
    name = unique("tn-r")
    namespace = f"{name}-ns"
    admin.create(make_tenant(name, setup.pool_a, namespace))
    wait_until(lambda: admin.get("ResourceQuota", "dsx-quota", namespace), SETTLE_S, "quota", 0.1)
    wait_until(lambda: admin.get("ServiceAccount", "default", namespace), SETTLE_S, "account", 0.1)
    assert admin.create(pod(namespace, nodeSelector={POOL_LABEL: setup.pool_a}, tolerations=TOLERATE))
    admin.delete("Tenant", name)
    wait_until(lambda: admin.get("Tenant", name) is None, SETTLE_S, "tenant gone", 0.1)
    labels = (admin.get("Namespace", namespace) or {})["metadata"].get("labels") or {}
    assert "dsx.ai/released-by-policy" in labels and "dsx.ai/tenant" not in labels
    try:
        message = refused(
            admin, pod(namespace, nodeSelector={POOL_LABEL: setup.pool_a}, tolerations=TOLERATE)
        )
        assert f"namespace '{namespace}' (held by no Tenant) holds no pool" in message
        assert admin.create(pod(namespace))  # its CPU pods still run
    finally:
        admin.delete("Namespace", namespace)


def test_without_the_operator_a_tenant_pod_is_refused_not_admitted_unchecked(setup: Setup) -> None:
    """failurePolicy Fail: with no webhook answering, even a well-placed pod waits (last test:
    the operator is started again afterwards)."""
    setup.operator.stop()
    try:
        good = pod(setup.ns_a, nodeSelector={POOL_LABEL: setup.pool_a}, tolerations=TOLERATE)
        with pytest.raises(ApiStatus) as info:
            setup.admin.create(good)
        assert "failed calling webhook" in str(info.value), info.value
        assert setup.admin.create(pod(setup.plain))  # other namespaces never depend on it
    finally:
        setup.operator.start()


def test_the_operator_was_never_denied_and_never_crashed_serving_the_webhook(
    setup: Setup, real_cluster: RealCluster
) -> None:
    """Its CA written, tenants and pools read for every review: the shipped role sufficed (the
    next test is denied on purpose, as the same ServiceAccount)."""
    if real_cluster.audit_log is not None:
        denied = [
            f"{e['verb']} {e.get('objectRef')}"
            for e in real_cluster.audit_events(since=setup.operator.first_started_at or 0.0)
            if e.get("responseStatus", {}).get("code") == 403
        ]
        assert denied == []
    assert setup.operator.running
    assert "Traceback" not in setup.operator.output()


def test_the_operator_may_write_no_other_webhook_configuration(
    setup: Setup, real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Its role names its one configuration: it can neither create a webhook configuration nor
    edit someone else's. It can rewrite its own, though: see the next test."""
    path = tmp_path_factory.mktemp("sa-webhook") / "operator.kubeconfig"
    operator_client = Client.from_kubeconfig(real_cluster.service_account_kubeconfig(path))
    foreign = webhook_configuration(1)
    foreign["metadata"] = {"name": unique("foreign")}
    for hook in foreign["webhooks"]:
        hook["namespaceSelector"] = {"matchLabels": {"nothing": "selected"}}
    with pytest.raises(ApiStatus) as info:
        operator_client.create(foreign)
    assert info.value.status == 403
    stored = setup.admin.create(foreign)
    try:
        with pytest.raises(ApiStatus) as info:
            operator_client.request(
                "PUT", Client.path("ValidatingWebhookConfiguration", stored["metadata"]["name"]), body=stored
            )
        assert info.value.status == 403
    finally:
        setup.admin.delete("ValidatingWebhookConfiguration", stored["metadata"]["name"])


def test_the_operator_can_rewrite_its_own_configuration_into_another_webhook(
    setup: Setup, real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The residual risk docs/operator.md states (as Kueue's manager has on its own): `update` on
    its configuration, which it needs to write its CA, lets a compromised operator make it a
    webhook on any kind, here Secrets (selecting no namespace, so nothing is called meanwhile)."""
    path = tmp_path_factory.mktemp("sa-webhook-own") / "operator.kubeconfig"
    operator_client = Client.from_kubeconfig(real_cluster.service_account_kubeconfig(path))
    original = setup.admin.get("ValidatingWebhookConfiguration", CONFIGURATION)
    assert original is not None
    rewritten = copy.deepcopy(original)
    for hook in rewritten["webhooks"]:
        hook["rules"][0]["resources"] = ["pods", "secrets"]
        hook["namespaceSelector"] = {"matchLabels": {"nothing": "selected"}}
    try:
        stored = operator_client.request(
            "PUT", Client.path("ValidatingWebhookConfiguration", CONFIGURATION), body=rewritten
        )
        assert all("secrets" in hook["rules"][0]["resources"] for hook in stored["webhooks"])
    finally:
        current = setup.admin.get("ValidatingWebhookConfiguration", CONFIGURATION)
        assert current is not None
        restored = copy.deepcopy(original)
        restored["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        for mine, now in zip(restored["webhooks"], current["webhooks"], strict=True):
            mine["clientConfig"]["caBundle"] = now["clientConfig"].get("caBundle", "")
        setup.admin.request(
            "PUT", Client.path("ValidatingWebhookConfiguration", CONFIGURATION), body=restored
        )
