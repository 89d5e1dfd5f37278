"""Drift seen by value and by field: canonical quantities, added fields, narrowed selectors."""

from __future__ import annotations

import copy

from operators.decisions.drift import replacement, write_needed
from operators.decisions.overcommit import Grant
from operators.decisions.quantity import same_quantity
from operators.decisions.tenant import desired_children
from tests.operators.conftest import example


def _child(kind: str) -> dict:
    tenant = example("tenant")
    tenant["metadata"]["uid"] = "uid-1"
    return next(c for c in desired_children(tenant, Grant({"batam-gb300-nvl72": 4096})) if c["kind"] == kind)


def _as_stored(obj: dict) -> dict:
    live = copy.deepcopy(obj)
    live["metadata"].update(resourceVersion="7", uid="u", creationTimestamp="2026-12-01T00:00:00Z")
    live["metadata"]["labels"]["someone-else"] = "x"  # others may add labels
    return live


def test_quantities_compare_by_value() -> None:
    assert same_quantity("20000", "20k")
    assert same_quantity("2594816Gi", "2534Ti")
    assert same_quantity("0.5", "500m")
    assert not same_quantity("20000", "20Ki")


def test_a_quota_the_server_stored_canonically_is_in_line() -> None:
    quota = _child("ResourceQuota")
    live = _as_stored(quota)
    live["spec"]["hard"] = {
        "requests.nvidia.com/gpu": "4096",
        "requests.cpu": "20k",
        "requests.memory": "200Ti",
        "pods": "20k",
    }
    assert quota["spec"]["hard"]["requests.cpu"] == "20000"
    assert write_needed(quota, live) is None


def test_a_quota_given_scopes_is_drift_and_the_replacement_removes_them() -> None:
    quota = _child("ResourceQuota")
    live = _as_stored(quota)
    live["spec"]["scopes"] = ["BestEffort"]
    assert write_needed(quota, live) == "replace"
    fixed = replacement(quota, live)
    assert "scopes" not in fixed["spec"]
    assert fixed["metadata"]["resourceVersion"] == "7"  # conditional on what was read
    assert fixed["metadata"]["labels"]["someone-else"] == "x"


def test_a_narrowed_network_policy_selector_is_drift() -> None:
    policy = _child("NetworkPolicy")
    live = _as_stored(policy)
    live["spec"]["podSelector"] = {"matchLabels": {"app": "one"}}
    assert write_needed(policy, live) == "replace"
    assert replacement(policy, live)["spec"]["podSelector"] == {}


def test_an_extra_owner_subject_is_drift() -> None:
    binding = _child("RoleBinding")
    live = _as_stored(binding)
    live["subjects"].append({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"})
    assert write_needed(binding, live) == "replace"


def test_an_add_on_object_with_controller_defaults_is_in_line() -> None:
    queue = _child("ClusterQueue")
    live = _as_stored(queue)
    live["spec"]["stopPolicy"] = "None"  # Kueue's default, not set by dsx
    assert write_needed(queue, live) is None
    live["spec"]["cohortName"] = "elsewhere"
    assert write_needed(queue, live) == "apply"


def test_a_missing_object_is_created() -> None:
    assert write_needed(_child("LimitRange"), None) == "create"
