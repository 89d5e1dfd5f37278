"""What a Tenant implies, computed without any server."""

from __future__ import annotations

import pytest

from operators.decisions.nodepool import InvalidSpec
from operators.decisions.overcommit import Grant, split_evenly
from operators.decisions.tenant import (
    DATA_KINDS,
    cluster_queue,
    desired_children,
    isolation_policy,
    limit_range,
    namespaces_to_delete,
    tenant_status,
    validate_tenant,
)
from tests.operators.conftest import example, selects


def _by_kind(children: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in children:
        out.setdefault(c["kind"], []).append(c)
    return out


def test_each_namespace_gets_quota_limits_owners_isolation_and_a_local_queue() -> None:
    tenant = example("tenant")
    tenant["spec"]["namespaces"] = ["ic-a", "ic-b", "ic-c"]
    kinds = _by_kind(desired_children(tenant, Grant({"batam-gb300-nvl72": 100})))
    assert [n["metadata"]["name"] for n in kinds["Namespace"]] == ["ic-a", "ic-b", "ic-c"]
    for ns in kinds["Namespace"]:
        assert ns["metadata"]["labels"]["dsx.ai/tenant"] == "inference-cloud"
        assert ns["metadata"]["labels"]["dsx.ai/site"] == "batam"
        assert "ownerReferences" not in ns["metadata"]  # GC must never take a namespace
    # 100 GPUs over 3 namespaces: 34 + 33 + 33, never more than granted
    assert [q["spec"]["hard"]["requests.nvidia.com/gpu"] for q in kinds["ResourceQuota"]] == [
        "34",
        "33",
        "33",
    ]
    assert kinds["ResourceQuota"][0]["spec"]["hard"]["pods"] == "20000"
    assert len(kinds["LimitRange"]) == len(kinds["NetworkPolicy"]) == len(kinds["LocalQueue"]) == 3
    binding = next(b for b in kinds["RoleBinding"] if b["metadata"]["name"] == "dsx-owners")
    assert binding["roleRef"]["name"] == "dsx-namespace-admin"
    assert {(s["kind"], s["name"]) for s in binding["subjects"]} == {
        ("User", "alice@example.com"),
        ("Group", "inference-cloud-admins"),
    }


def test_network_policy_denies_by_default_and_allows_the_tenants_own_namespaces() -> None:
    tenant = example("tenant")
    policy = _by_kind(desired_children(tenant, Grant({})))["NetworkPolicy"][0]
    assert policy["spec"]["podSelector"] == {}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    allowed = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    assert allowed == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": sorted(tenant["spec"]["namespaces"]),
            }
        ]
    }


def test_cluster_queue_has_nominal_quota_per_flavor_in_the_site_cohort() -> None:
    tenant = example("tenant")
    tenant["spec"]["kueue"] = {"lendingLimitGpus": 10, "borrowingLimitGpus": 50}
    queue = _by_kind(desired_children(tenant, Grant({"batam-gb300-nvl72": 4096})))["ClusterQueue"][0]
    assert queue["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    assert queue["spec"]["cohortName"] == "batam"
    flavor = queue["spec"]["resourceGroups"][0]["flavors"][0]
    assert flavor["name"] == "batam-gb300-nvl72"
    gpu = next(r for r in flavor["resources"] if r["name"] == "nvidia.com/gpu")
    assert gpu == {
        "name": "nvidia.com/gpu",
        "nominalQuota": "4096",
        "lendingLimit": "10",
        "borrowingLimit": "50",
    }


def test_cluster_queue_covers_every_resource_a_tenant_pod_requests_sized_from_its_quota() -> None:
    tenant = example("tenant")
    tenant["spec"]["gpuQuota"] = [{"pool": "a", "gpus": 300}, {"pool": "b", "gpus": 100}]
    tenant["spec"].update(cpuQuota="6400", memoryQuota="400Gi", podQuota=1600)
    queue = cluster_queue(tenant, Grant({"a": 300, "b": 100}), ["ns"])
    group = queue["spec"]["resourceGroups"][0]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu", "pods"]
    quotas = {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}
    # Each flavor gets the pool's share of the tenant's cpu, memory and pods (3/4 and 1/4).
    assert quotas["a"] == {
        "cpu": "4800000m",
        "memory": str(300 * 2**30),
        "nvidia.com/gpu": "300",
        "pods": "1200",
    }
    assert quotas["b"] == {
        "cpu": "1600000m",
        "memory": str(100 * 2**30),
        "nvidia.com/gpu": "100",
        "pods": "400",
    }
    # Every flavor lists its resources in the order of coveredResources (Kueue requires it).
    assert all([r["name"] for r in f["resources"]] == group["coveredResources"] for f in group["flavors"])


def test_cohort_lends_idle_gpus_weighted_by_planned_quota_and_reclaims_by_preemption() -> None:
    tenant = example("tenant")
    queue = cluster_queue(tenant, Grant({"batam-gb300-nvl72": 4096}), ["ns"])
    gpu = next(
        r
        for r in queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
        if r["name"] == "nvidia.com/gpu"
    )
    assert "lendingLimit" not in gpu and "borrowingLimit" not in gpu  # no limit unless the Tenant sets one
    assert queue["spec"]["fairSharing"] == {"weight": str(sum(q["gpus"] for q in tenant["spec"]["gpuQuota"]))}
    assert queue["spec"]["preemption"]["reclaimWithinCohort"] == "Any"


def test_isolation_admits_ingress_and_monitoring_namespaces_dns_and_configured_egress_only() -> None:
    tenant = example("tenant")
    tenant["spec"]["network"] = {"egressCIDRs": ["10.20.0.0/16"]}
    policy = isolation_policy(tenant, "ns", ["ns", "ns-2"], ("ingress-nginx", "monitoring"))
    own = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ns", "ns-2"]}
        ]
    }
    sources = [p["namespaceSelector"] for p in policy["spec"]["ingress"][0]["from"]]
    assert sources == [
        own,
        {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    ]
    egress = policy["spec"]["egress"]
    assert egress[0] == {"to": [{"namespaceSelector": own}]}
    assert {p["port"] for p in egress[1]["ports"]} == {53}
    assert egress[2] == {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}
    # Nothing selects another tenant: every namespace selector is this tenant's or a named system one.
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["podSelector"] == {}


def test_limit_range_defaults_are_one_gpus_share_of_a_gpu_node() -> None:
    limits = limit_range(example("tenant"), "ns")["spec"]["limits"][0]
    assert limits["default"] == {"cpu": "16", "memory": "128Gi"}
    assert limits["defaultRequest"] == {"cpu": "1", "memory": "4Gi"}


def test_split_evenly_sums_exactly() -> None:
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(0, 2) == [0, 0]


def test_status_reports_requested_and_granted_with_an_overcommitted_condition() -> None:
    tenant = example("tenant")
    figures, conditions = tenant_status(tenant, Grant({"batam-gb300-nvl72": 100}, ["short"]))
    assert figures["quota"] == [{"pool": "batam-gb300-nvl72", "requestedGpus": 4096, "grantedGpus": 100}]
    over = next(c for c in conditions if c.type == "Overcommitted")
    assert over.status and over.message == "short"


@pytest.mark.parametrize(
    ("policy", "gone", "kept"),
    [
        ("Retain", [], ["busy", "empty", "volume"]),
        ("DeleteWhenEmpty", ["empty"], ["busy", "volume"]),
        ("Delete", ["busy", "empty", "volume"], []),
    ],
)
def test_deletion_policy_decides_which_namespaces_go(policy: str, gone: list, kept: list) -> None:
    found = {"busy": ["Pod", "Deployment"], "empty": [], "volume": ["PersistentVolumeClaim"]}
    assert namespaces_to_delete(policy, found) == (gone, kept)


def test_delete_when_empty_counts_volumes_and_every_workload_kind() -> None:
    assert {"Pod", "PersistentVolumeClaim", "Deployment", "StatefulSet", "Job", "CronJob"} <= set(DATA_KINDS)


def test_invalid_namespace_name_is_refused() -> None:
    tenant = example("tenant")
    tenant["spec"]["namespaces"] = ["Bad_Name"]
    with pytest.raises(InvalidSpec, match="not a DNS-1123 label"):
        desired_children(tenant, Grant({}))


def _stored_namespace(name: str, **labels: str) -> dict[str, str]:
    """A namespace's labels as a v1.21+ API server keeps them: kubernetes.io/metadata.name is
    always the namespace's own name, whatever its creator wrote."""
    return {**labels, "kubernetes.io/metadata.name": name}


def test_a_namespace_labelled_as_the_tenants_own_or_as_ingress_is_not_let_in() -> None:
    tenant = example("tenant")  # holds inference-cloud; asks for "taken" too, which is another's
    tenant["spec"]["namespaces"] = ["inference-cloud", "taken"]
    children = desired_children(tenant, Grant({"batam-gb300-nvl72": 4096}), ["inference-cloud"])
    policy = next(c for c in children if c["kind"] == "NetworkPolicy")
    queue = next(c for c in children if c["kind"] == "ClusterQueue")
    sources = [p["namespaceSelector"] for p in policy["spec"]["ingress"][0]["from"]]
    targets = [
        p["namespaceSelector"]
        for rule in policy["spec"]["egress"]
        for p in rule["to"]
        if "namespaceSelector" in p
    ]
    hostile = {
        # anyone allowed to create namespaces gives theirs the tenant's labels ...
        "copycat": _stored_namespace(
            "copycat", **{"dsx.ai/tenant": "inference-cloud", "dsx.ai/site": "batam"}
        ),
        # ... or claims to be the ingress controller (the server overwrites the name label) ...
        "fake-ingress": _stored_namespace("fake-ingress", **{"kubernetes.io/metadata.name": "ingress-nginx"}),
        # ... or is a namespace the tenant listed but another tenant owns
        "taken": _stored_namespace("taken", **{"dsx.ai/tenant": "other"}),
    }
    for name, labels in hostile.items():
        assert not any(selects(s, labels) for s in sources), f"{name} may reach the tenant's pods"
        assert not selects(queue["spec"]["namespaceSelector"], labels), f"{name} may use the tenant's queue"
        dns_only = [s for s in targets if selects(s, labels)]
        assert dns_only == [], f"{name} may be reached from the tenant's pods"
    own = _stored_namespace("inference-cloud", **{"dsx.ai/tenant": "inference-cloud"})
    assert selects(sources[0], own) and selects(queue["spec"]["namespaceSelector"], own)
    assert selects(sources[1], _stored_namespace("ingress-nginx"))


def test_a_tenant_holding_no_namespace_has_a_queue_no_namespace_can_use() -> None:
    queue = cluster_queue(example("tenant"), Grant({"batam-gb300-nvl72": 8}), [])
    selector = queue["spec"]["namespaceSelector"]
    assert not selects(selector, _stored_namespace("anything", **{"dsx.ai/tenant": "inference-cloud"}))
    assert not selects(selector, {"dsx.ai/tenant": "inference-cloud"})  # nor one without the name label


def test_the_operator_writes_the_name_label_on_its_namespaces_for_servers_before_v1_21() -> None:
    tenant = example("tenant")
    namespace = next(c for c in desired_children(tenant, Grant({})) if c["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] == namespace["metadata"]["name"]


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_every_tenant_namespace_runs_its_pods_at_a_pod_security_level(level: str) -> None:
    # With no label a namespace runs pods at the cluster's default, upstream privileged: an owner
    # could start a privileged, host-network pod with the node's root filesystem mounted.
    tenant = example("tenant")
    kinds = _by_kind(desired_children(tenant, Grant({"batam-gb300-nvl72": 8}), pod_security=level))
    for ns in kinds["Namespace"]:
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == level
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    assert (
        _by_kind(desired_children(tenant, Grant({})))["Namespace"][0]["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "baseline"
    )


# -- hostile specs: refused as InvalidSpec naming the field, never an unhandled exception ----------


def _kinds_in(children: list[dict], namespace: str) -> list[str]:
    return [
        f"{c['kind']}/{c['metadata']['name']}"
        for c in children
        if c["metadata"].get("namespace") == namespace
    ]


def test_owners_are_bound_last_so_a_refused_child_never_leaves_them_in_an_unisolated_namespace() -> None:
    # apply_all stops at the first child the server refuses: whatever is refused, owners must not
    # hold dsx-namespace-admin in a namespace without isolation, quota, limits or its queue.
    tenant = example("tenant")
    tenant["spec"]["namespaces"] = ["ic-a", "ic-b"]
    children = desired_children(tenant, Grant({"batam-gb300-nvl72": 8}))
    for namespace in ("ic-a", "ic-b"):
        order = _kinds_in(children, namespace)
        assert order[0] == "RoleBinding/dsx-operator"  # the operator's own rights, to repair the rest
        assert order[-1] == "RoleBinding/dsx-owners"
        assert {
            "NetworkPolicy/dsx-tenant-isolation",
            "ResourceQuota/dsx-quota",
            "LimitRange/dsx-limits",
            "LocalQueue/default",
        } == set(order[1:-1])
    names = [(c["kind"], c["metadata"]["name"]) for c in children]
    for namespace in ("ic-a", "ic-b"):  # each namespace exists before anything is written in it
        first_inside = next(i for i, c in enumerate(children) if c["metadata"].get("namespace") == namespace)
        assert names.index(("Namespace", namespace)) < first_inside


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.0/99", r"egressCIDRs\[1\] '10\.0\.0\.0/99': an IPv4 prefix is at most /32"),
        ("2001:db8::/129", r"egressCIDRs\[1\] '2001:db8::/129' is not a CIDR"),
        ("10.0.0.1/8", r"egressCIDRs\[1\] '10\.0\.0\.1/8' has host bits set: write 10\.0\.0\.0/8"),
        ("2001:db8::1/64", r"egressCIDRs\[1\] .* has host bits set: write 2001:db8::/64"),
        ("010.0.0.0/8", r"egressCIDRs\[1\] .* \(an IPv4 octet has no leading zero\)"),  # octal to libc
        ("::ffff:10.0.0.0/104", r"egressCIDRs\[1\] .* IPv4-mapped IPv6 range"),
        ("10.0.0.0/08", r"egressCIDRs\[1\] '10\.0\.0\.0/08' is not a CIDR"),
        ("fe80::%eth0/64", r"egressCIDRs\[1\] .* is not a CIDR"),
        ("10.0.0.0/255.0.0.0", r"egressCIDRs\[1\] .* is not a CIDR"),
        ("10.0.0.0", r"egressCIDRs\[1\] '10\.0\.0\.0' is not a CIDR"),
        ("9" * 5000 + "/8", r"egressCIDRs\[1\] '9{50}'… \(5002 characters\)"),
        (8, r"egressCIDRs\[1\] must be a string CIDR"),
    ],
)
def test_an_egress_cidr_a_supported_api_server_may_refuse_is_invalid_spec_naming_the_entry(
    cidr: object, message: str
) -> None:
    tenant = example("tenant")
    tenant["spec"]["network"] = {"egressCIDRs": ["10.20.0.0/16", cidr]}
    with pytest.raises(InvalidSpec, match=message):
        validate_tenant(tenant)
    with pytest.raises(InvalidSpec, match=message):  # refused before any child is made
        desired_children(tenant, Grant({}))


def test_a_hostile_value_is_quoted_escaped_in_the_message_not_written_raw() -> None:
    """A newline or a terminal escape in a field would otherwise reach the Tenant's status and
    every `kubectl describe` as it is: a forged second line, or a repainted terminal."""
    tenant = example("tenant")
    tenant["spec"]["site"] = "batam\nReady: tenant admitted\x1b[2J"
    with pytest.raises(InvalidSpec) as refused:
        validate_tenant(tenant)
    message = str(refused.value)
    assert "\n" not in message and "\x1b" not in message
    assert r"'batam\nReady: tenant admitted\x1b[2J' is not a DNS-1123 label" in message


@pytest.mark.parametrize("cidrs", ["10.0.0.0/8", [f"10.{i}.0.0/16" for i in range(33)], {"a": 1}])
def test_egress_cidrs_that_are_not_a_list_of_at_most_32_are_invalid_spec(cidrs: object) -> None:
    tenant = example("tenant")
    tenant["spec"]["network"] = {"egressCIDRs": cidrs}
    with pytest.raises(InvalidSpec, match=r"spec\.network\.egressCIDRs must be a list of at most 32"):
        validate_tenant(tenant)


def test_egress_cidrs_every_supported_api_server_takes_are_accepted_as_written() -> None:
    cidrs = ["10.20.0.0/16", "0.0.0.0/0", "192.168.1.7/32", "2001:db8::/32", "::/0", "2001:DB8:0:0::/64"]
    tenant = example("tenant")
    tenant["spec"]["network"] = {"egressCIDRs": cidrs}
    validate_tenant(tenant)
    policy = next(c for c in desired_children(tenant, Grant({})) if c["kind"] == "NetworkPolicy")
    assert [p["ipBlock"]["cidr"] for p in policy["spec"]["egress"][2]["to"]] == cidrs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # 5 000 digits: Python's int conversion limit (4 300) made parsing raise ValueError
        ({"cpuQuota": "9" * 5000}, r"spec\.cpuQuota '9{32}'… \(5000 characters\) is not a quantity"),
        ({"memoryQuota": "1." + "0" * 5000}, r"spec\.memoryQuota '1\.0{30}'… \(5002 characters\)"),
        (
            {"cpuQuota": "1e999999999"},
            r"spec\.cpuQuota '1e999999999' is not a quantity",
        ),  # a 10⁹-digit number
        ({"cpuQuota": "-5"}, r"spec\.cpuQuota '-5' is not a quantity"),
        ({"memoryQuota": "2Gi "}, r"spec\.memoryQuota '2Gi ' is not a quantity"),
        ({"memoryQuota": "1m"}, r"spec\.memoryQuota '1m' is not a quantity"),  # milli-bytes
        ({"cpuQuota": 20000}, r"spec\.cpuQuota must be a string quantity"),
        ({"cpuQuota": "9223372036854776"}, r"spec\.cpuQuota .* at most 9223372036854775807 millicores"),
        ({"memoryQuota": "8Ei"}, r"spec\.memoryQuota '8Ei' .* at most 9223372036854775807 bytes"),
        ({"podQuota": 10**5000}, r"spec\.podQuota must be an integer from 0 to 2147483647"),
        ({"podQuota": -1}, r"spec\.podQuota must be an integer"),
        ({"podQuota": "100"}, r"spec\.podQuota must be an integer"),
        ({"kueue": {"lendingLimitGpus": "ten"}}, r"spec\.kueue\.lendingLimitGpus must be an integer"),
        ({"kueue": {"borrowingLimitGpus": 2**31}}, r"spec\.kueue\.borrowingLimitGpus must be an integer"),
        ({"site": "Batam Site"}, r"spec\.site 'Batam Site' is not a DNS-1123 label"),
    ],
)
def test_a_hostile_quantity_or_bound_is_invalid_spec_naming_the_field(change: dict, message: str) -> None:
    tenant = example("tenant")
    tenant["spec"].update(change)
    with pytest.raises(InvalidSpec, match=message):
        validate_tenant(tenant)
    with pytest.raises(InvalidSpec, match=message):  # what used to raise ValueError mid-pass
        desired_children(tenant, Grant({"batam-gb300-nvl72": 8}))


def test_quantities_up_to_what_kueue_counts_in_int64_are_accepted_and_written() -> None:
    tenant = example("tenant")
    tenant["spec"].update(cpuQuota="9223372036854775", memoryQuota="7Ei", podQuota=2**31 - 1)
    children = desired_children(tenant, Grant({"batam-gb300-nvl72": 8}))
    quota = next(c for c in children if c["kind"] == "ResourceQuota")["spec"]["hard"]
    assert (quota["requests.cpu"], quota["requests.memory"]) == ("9223372036854775", "7Ei")
    queue = next(c for c in children if c["kind"] == "ClusterQueue")
    nominal = {
        r["name"]: r["nominalQuota"] for r in queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    }
    assert int(nominal["cpu"].removesuffix("m")) <= 2**63 - 1 and int(nominal["memory"]) <= 2**63 - 1


@pytest.mark.parametrize(
    ("live", "kept"),
    [
        ({}, ("baseline", "latest")),
        ({"pod-security.kubernetes.io/enforce": "privileged"}, ("baseline", "latest")),
        ({"pod-security.kubernetes.io/enforce": "restricted"}, ("restricted", "latest")),
        (
            {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.30",
            },
            ("restricted", "v1.30"),
        ),
        (
            {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/enforce-version": "v1.31",
            },
            ("baseline", "v1.31"),
        ),
    ],
)
def test_the_operator_only_ever_raises_a_namespaces_pod_security(live: dict, kept: tuple) -> None:
    from operators.decisions.tenant import namespace_object, stricter_pod_security

    wanted = stricter_pod_security(namespace_object(example("tenant"), "ic-a"), live)["metadata"]["labels"]
    assert (
        wanted["pod-security.kubernetes.io/enforce"],
        wanted["pod-security.kubernetes.io/enforce-version"],
    ) == kept


def test_a_warn_level_someone_set_is_left_alone() -> None:
    from operators.decisions.tenant import namespace_object, stricter_pod_security

    wanted = stricter_pod_security(
        namespace_object(example("tenant"), "ic-a"), {"pod-security.kubernetes.io/warn": "baseline"}
    )["metadata"]["labels"]
    assert "pod-security.kubernetes.io/warn" not in wanted  # not asked for, so not put back


@pytest.mark.parametrize(
    ("field", "value"),
    [("site", "batam\n"), ("cpuQuota", "100\n"), ("memoryQuota", "100Gi\n"), ("namespaces", ["ok\n"])],
)
def test_a_trailing_newline_is_no_name_or_quantity(field: str, value: object) -> None:
    # Python's `$` matches before a final newline: these passed, and the server's 422 at namespace
    # creation escaped as an ApiError with no status.
    tenant = example("tenant")
    tenant["spec"][field] = value
    with pytest.raises(InvalidSpec):
        validate_tenant(tenant)
