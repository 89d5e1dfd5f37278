"""The deployment bundle: image and namespace set, and RBAC covering exactly what is touched."""

from __future__ import annotations

from operators.bundle import operator_bundle
from operators.kube import KINDS


def _rules() -> list[dict]:
    role = next(
        d for d in operator_bundle() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "dsx-operator"
    )
    return role["rules"]


def _leader_rules() -> list[dict]:
    role = next(d for d in operator_bundle() if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "dsx-system"
    return role["rules"]


def test_bundle_sets_image_and_namespace_everywhere() -> None:
    docs = operator_bundle(image="registry.example/dsx-operator:1.2", namespace="ops")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "ops"
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example/dsx-operator:1.2"
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][:3] == [
        "run",
        "-m",
        "operators.main",
    ]
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == "ops"
    assert [d["kind"] for d in docs[:2]] == ["CustomResourceDefinition", "CustomResourceDefinition"]


def test_cluster_role_grants_every_kind_the_operator_calls_and_nothing_cluster_wide() -> None:
    granted = {
        (group, resource)
        for rule in _rules() + _leader_rules()
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for kind, info in KINDS.items():
        group = "" if info.prefix == "/api/v1" else info.prefix.split("/")[2]
        assert (group, info.plural) in granted, f"{kind} is touched but not granted"
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in _rules())


def test_operator_only_lists_what_holds_tenant_data_and_never_reads_secrets_or_config_maps() -> None:
    data = {"pods", "nodes", "persistentvolumeclaims", "deployments", "statefulsets", "jobs"}
    for rule in _rules():
        if data & set(rule["resources"]):
            assert rule["verbs"] == ["list"]
        assert not {"secrets", "configmaps"} & set(rule["resources"])


def test_leases_are_granted_only_in_the_operators_namespace() -> None:
    assert all("leases" not in rule["resources"] for rule in _rules())
    assert _leader_rules() == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}
    ]


def test_the_cluster_api_objects_a_pool_refers_to_are_only_ever_read_one_by_one() -> None:
    referenced = {
        ("cluster.x-k8s.io", "clusters"),
        ("infrastructure.cluster.x-k8s.io", "metal3machinetemplates"),
        ("bootstrap.cluster.x-k8s.io", "kubeadmconfigtemplates"),
    }
    for rule in _rules():
        touched = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
        if touched & referenced:
            assert rule["verbs"] == ["get"], rule
    granted = {(g, r) for rule in _rules() for g in rule["apiGroups"] for r in rule["resources"]}
    assert referenced <= granted


def _webhook_docs(namespace: str = "dsx-system") -> tuple[dict, dict, dict]:
    docs = operator_bundle(namespace=namespace)
    config = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
    service = next(d for d in docs if d["kind"] == "Service")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return config, service, deployment


def test_the_webhook_fails_closed_for_tenant_namespaces_and_never_covers_a_protected_one() -> None:
    from operators.api import PROTECTED_NAMESPACES
    from operators.decisions.tenant import DEFAULT_INGRESS_NAMESPACES

    config, _, _ = _webhook_docs(namespace="ops")
    selectors = {}
    for hook in config["webhooks"]:
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["rules"] == [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        expressions = hook["namespaceSelector"]["matchExpressions"]
        scope = [e for e in expressions if e["operator"] == "Exists"]
        (not_in,) = [e for e in expressions if e["operator"] == "NotIn"]
        assert not_in["key"] == "kubernetes.io/metadata.name"
        assert PROTECTED_NAMESPACES | set(DEFAULT_INGRESS_NAMESPACES) | {"ops"} <= set(not_in["values"])
        selectors[hook["name"]] = [e["key"] for e in scope]
        assert hook["clientConfig"]["service"]["namespace"] == "ops"
        assert "caBundle" not in hook["clientConfig"]  # the operator's replicas write it
    assert selectors == {
        "pods.tenants.dsx.ai": ["dsx.ai/tenant"],
        "pods.released.dsx.ai": ["dsx.ai/released-by-policy"],
    }


def test_the_webhook_service_reaches_the_port_every_replica_serves() -> None:
    config, service, deployment = _webhook_docs()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["DSX_WEBHOOK_PORT"]) == ports["webhook"]
    assert container["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "webhook"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    for hook in config["webhooks"]:
        ref = hook["clientConfig"]["service"]
        assert (ref["name"], ref["port"]) == (service["metadata"]["name"], port["port"])
    # the certificate's files live in memory: the root filesystem is read-only
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] and "/tmp" in mounts


def test_the_operator_may_only_read_and_update_its_own_webhook_configuration() -> None:
    config, _, _ = _webhook_docs()
    rules = [r for r in _rules() if "validatingwebhookconfigurations" in r["resources"]]
    assert rules == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [config["metadata"]["name"]],
            "verbs": ["get", "update"],
        }
    ]
    assert all("mutatingwebhookconfigurations" not in r["resources"] for r in _rules())


def test_the_webhook_prunes_ca_of_gone_pods_by_the_label_the_deployment_puts_on_them() -> None:
    from operators.webhook import DEFAULT_CONFIGURATION, DEFAULT_SERVICE, POD_LABELS

    config, service, deployment = _webhook_docs()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert POD_LABELS.items() <= labels.items()
    assert (config["metadata"]["name"], service["metadata"]["name"]) == (
        DEFAULT_CONFIGURATION,
        DEFAULT_SERVICE,
    )


def test_a_drain_or_a_node_loss_leaves_a_replica_to_answer_the_webhook() -> None:
    """The webhook fails closed: a PodDisruptionBudget keeps an eviction from taking both replicas
    and a preferred anti-affinity spreads them over nodes where the cluster has two."""
    docs = operator_bundle(namespace="ops")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (budget,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["namespace"] == "ops"
    assert budget["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }
    assert deployment["spec"]["replicas"] >= 2
    template = deployment["spec"]["template"]
    (term,) = template["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        term["podAffinityTerm"]["labelSelector"]["matchLabels"].items()
        <= template["metadata"]["labels"].items()
    )
    # preferred only: a one-node cluster still runs both
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution"
        not in template["spec"]["affinity"]["podAntiAffinity"]
    )


def test_both_webhooks_leave_out_the_same_namespaces() -> None:
    config, _, _ = _webhook_docs(namespace="ops")
    lists = [
        next(e["values"] for e in hook["namespaceSelector"]["matchExpressions"] if e["operator"] == "NotIn")
        for hook in config["webhooks"]
    ]
    assert len(lists) == 2 and lists[0] == lists[1] and lists[0] is not lists[1]
