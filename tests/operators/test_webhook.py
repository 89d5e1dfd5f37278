"""The webhook's I/O (`operators/webhook.py`): certificates, the CA bundle shared by replicas, the
handler's fail-closed lookups, and the TLS server answering an AdmissionReview."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from operators.api import OWNER_UID_ANNOTATION, POOL_LABEL, TENANT_LABEL
from operators.config import OperatorConfig
from operators.kube import ApiError
from operators.webhook import (
    CA_NAME_PREFIX,
    WebhookSettings,
    WebhookThread,
    judge,
    make_certificates,
    merged_bundle,
    publish_ca,
)
from tests.support.operator_process import _free_port

NOW = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)


def _certs(bundle_b64: str) -> list[str]:
    return [
        c.subject.rfc4514_string().removeprefix(f"CN={CA_NAME_PREFIX}")
        for c in x509.load_pem_x509_certificates(base64.b64decode(bundle_b64))
    ]


def test_the_serving_certificate_is_signed_by_the_replicas_ca_for_the_service_names() -> None:
    certs = make_certificates("pod-1", ["svc.dsx-system.svc", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate(certs.ca_pem)
    cert = x509.load_pem_x509_certificate(certs.cert_pem)
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["svc.dsx-system.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_bundle_keeps_live_replicas_and_foreign_cas_and_drops_stale_ones() -> None:
    mine = make_certificates("pod-1", ["h"]).ca_pem
    old_mine = make_certificates("pod-1", ["h"]).ca_pem  # before this container restarted
    other = make_certificates("pod-2", ["h"]).ca_pem
    gone = make_certificates("pod-0", ["h"]).ca_pem
    expired = make_certificates("pod-2b", ["h"], now=NOW - datetime.timedelta(days=4000)).ca_pem
    current = base64.b64encode(old_mine + other + gone + expired).decode()
    assert _certs(merged_bundle(current, mine, "pod-1", {"pod-1", "pod-2", "pod-2b"}, now=NOW)) == [
        "pod-2",
        "pod-1",
    ]
    # out of the cluster (no pod list): only its own earlier CA and expired ones go
    assert _certs(merged_bundle(current, mine, "pod-1", None, now=NOW)) == ["pod-2", "pod-0", "pod-1"]
    # nothing, or garbage, before: just its own
    assert _certs(merged_bundle(None, mine, "pod-1", None)) == ["pod-1"]
    assert _certs(merged_bundle("bm90IGEgY2VydA==", mine, "pod-1", None)) == ["pod-1"]


class FakeKube:
    """What the handler and the CA publisher call: get, list, replace (with 409s on demand)."""

    def __init__(
        self, objects: dict[tuple[str, str], dict[str, Any]], conflicts: int = 0, fail: bool = False
    ):
        self.objects, self.conflicts, self.fail = objects, conflicts, fail
        self.calls: list[str] = []

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.calls.append(f"get {kind} {name}")
        if self.fail:
            raise ApiError(503, "Service Unavailable", "etcd is away")
        obj = self.objects.get((kind, name))
        return json.loads(json.dumps(obj)) if obj else None

    def list(self, kind: str, namespace: str | None = None, labels: Any = None) -> list[dict[str, Any]]:
        self.calls.append(f"list {kind}")
        return [json.loads(json.dumps(o)) for (k, _), o in self.objects.items() if k == kind]

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"replace {obj['kind']}")
        if self.conflicts:
            self.conflicts -= 1
            self.objects[(obj["kind"], obj["metadata"]["name"])]["metadata"]["resourceVersion"] += "1"
            raise ApiError(409, "Conflict", "stale")
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj


def _cluster() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        ("Namespace", "acme-a"): {
            "metadata": {
                "name": "acme-a",
                "labels": {TENANT_LABEL: "acme"},
                "annotations": {OWNER_UID_ANNOTATION: "u1"},
            }
        },
        ("Tenant", "acme"): {
            "metadata": {"name": "acme", "uid": "u1"},
            "spec": {"namespaces": ["acme-a"], "gpuQuota": [{"pool": "pool-a", "gpus": 8}]},
        },
        ("GpuNodePool", "pool-a"): {"metadata": {"name": "pool-a"}, "spec": {}},
        ("ValidatingWebhookConfiguration", "dsx-operator-pod-placement"): {
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "dsx-operator-pod-placement", "resourceVersion": "7"},
            "webhooks": [{"name": "a", "clientConfig": {}}, {"name": "b", "clientConfig": {}}],
        },
    }


def _review(namespace: str, pool: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "r-1",
            "operation": "CREATE",
            "namespace": namespace,
            "object": {"metadata": {"name": "p"}, "spec": {"nodeSelector": {POOL_LABEL: pool}}},
        },
    }


def test_the_handler_refuses_another_pool_and_admits_its_own() -> None:
    kube = FakeKube(_cluster())
    refused = judge(kube, OperatorConfig(), _review("acme-a", "pool-b"))["response"]
    assert refused["allowed"] is False and "names pool 'pool-b'" in refused["status"]["message"]
    assert judge(kube, OperatorConfig(), _review("acme-a", "pool-a"))["response"]["allowed"] is True


def test_an_unreadable_tenant_refuses_the_pod_and_a_protected_namespace_is_never_looked_up() -> None:
    kube = FakeKube(_cluster(), fail=True)
    answer = judge(kube, OperatorConfig(), _review("acme-a", "pool-a"))["response"]
    assert answer["allowed"] is False and "could not be read" in answer["status"]["message"]
    for protected in ("kube-system", "dsx-system", "kube-anything"):
        kube.calls.clear()
        assert judge(kube, OperatorConfig(), _review(protected, "x"))["response"]["allowed"] is True
        assert kube.calls == []


def _settings() -> WebhookSettings:
    return WebhookSettings(
        port=0,
        configuration="dsx-operator-pod-placement",
        service="dsx-operator-webhook",
        namespace="dsx-system",
        identity="pod-1",
        extra_sans=("127.0.0.1",),
    )


def test_the_ca_goes_into_every_webhook_after_a_conflict_and_is_written_once() -> None:
    kube = FakeKube(_cluster(), conflicts=1)
    ca = make_certificates("pod-1", ["h"]).ca_pem
    assert publish_ca(kube, _settings(), ca) is True
    stored = kube.objects[("ValidatingWebhookConfiguration", "dsx-operator-pod-placement")]
    assert [_certs(h["clientConfig"]["caBundle"]) for h in stored["webhooks"]] == [["pod-1"], ["pod-1"]]
    kube.calls.clear()
    assert publish_ca(kube, _settings(), ca) is True
    assert "replace ValidatingWebhookConfiguration" not in kube.calls  # already there: no write
    del kube.objects[("ValidatingWebhookConfiguration", "dsx-operator-pod-placement")]
    assert publish_ca(kube, _settings(), ca) is False


def test_the_server_answers_an_admission_review_over_tls_with_its_own_ca() -> None:
    settings = _settings()
    settings.port = _free_port()
    kube = FakeKube(_cluster())
    thread = WebhookThread(kube, OperatorConfig(), settings)
    thread.start()
    try:
        _ask(thread, settings.port)
    finally:
        thread.stop()
    assert not thread.is_alive()
    with pytest.raises(urllib.error.URLError):  # the port is closed again
        _ask(thread, settings.port)


def _ask(thread: WebhookThread, port: int) -> None:
    assert thread.serving.wait(20)
    context = ssl.create_default_context(cadata=thread.certificates.ca_pem.decode())
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/pods",
        data=json.dumps(_review("acme-a", "pool-b")).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["response"]["uid"] == "r-1" and body["response"]["allowed"] is False
    with pytest.raises(urllib.error.URLError):  # a client trusting another CA does not connect
        other = make_certificates("x", ["h"]).ca_pem.decode()
        urllib.request.urlopen(request, context=ssl.create_default_context(cadata=other), timeout=10)


def test_in_the_cluster_the_ca_of_a_replica_whose_pod_is_gone_is_dropped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    marker = tmp_path / "namespace"
    marker.write_text("dsx-system")
    monkeypatch.setattr("operators.webhook.IN_CLUSTER", marker)
    objects = _cluster()
    before = base64.b64encode(
        make_certificates("pod-0", ["h"]).ca_pem + make_certificates("pod-2", ["h"]).ca_pem
    ).decode()
    for hook in objects[("ValidatingWebhookConfiguration", "dsx-operator-pod-placement")]["webhooks"]:
        hook["clientConfig"]["caBundle"] = before
    objects[("Pod", "pod-2")] = {"metadata": {"name": "pod-2"}}
    objects[("Pod", "pod-1")] = {"metadata": {"name": "pod-1"}}
    kube = FakeKube(objects)
    assert publish_ca(kube, _settings(), make_certificates("pod-1", ["h"]).ca_pem)
    stored = kube.objects[("ValidatingWebhookConfiguration", "dsx-operator-pod-placement")]
    assert [_certs(h["clientConfig"]["caBundle"]) for h in stored["webhooks"]] == [["pod-2", "pod-1"]] * 2


def test_anything_failing_in_the_handler_refuses_the_pod() -> None:
    import asyncio

    class Broken(FakeKube):
        def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
            raise RuntimeError("unexpected")

    thread = WebhookThread(Broken({}), OperatorConfig(), _settings())
    answer = asyncio.run(thread._serve(_review("acme-a", "pool-a")))["response"]
    assert answer["allowed"] is False and "the webhook failed (RuntimeError)" in answer["status"]["message"]


def test_a_long_pod_names_ca_is_known_to_every_replica_and_replaced_on_its_restart() -> None:
    """A pod name longer than a CN holds (64 characters with the prefix): the CA's identity must
    still match the pod name both replicas compare it with."""
    long_pod = "dsx-operator-with-a-site-specific-name-7d9f8b6c5d-x2x9q" + "z" * 40  # 95 characters
    other_pod = "dsx-operator-7d9f8b6c5d-abcde"
    long_ca = make_certificates(long_pod, ["h"]).ca_pem
    other_ca = make_certificates(other_pod, ["h"]).ca_pem
    bundle = merged_bundle(None, long_ca, long_pod, {long_pod})
    bundle = merged_bundle(bundle, other_ca, other_pod, {long_pod, other_pod})
    assert _pems(bundle) == [long_ca, other_ca]
    # the long-named replica's container restarts: its earlier CA goes, the other's stays
    again = make_certificates(long_pod, ["h"]).ca_pem
    assert _pems(merged_bundle(bundle, again, long_pod, {long_pod, other_pod})) == [other_ca, again]
    # two pods alike in their first 64 characters are two identities
    twin = long_pod[:-1] + "y"
    twin_ca = make_certificates(twin, ["h"]).ca_pem
    assert _pems(merged_bundle(bundle, twin_ca, twin, {long_pod, other_pod, twin})) == [
        long_ca,
        other_ca,
        twin_ca,
    ]


def _pems(bundle_b64: str) -> list[bytes]:
    return [
        c.public_bytes(serialization.Encoding.PEM)
        for c in x509.load_pem_x509_certificates(base64.b64decode(bundle_b64))
    ]
