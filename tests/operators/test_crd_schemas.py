"""CRD schemas checked offline: valid OpenAPI v3, structural, and the examples validate."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from operators.bundle import crd_manifests
from operators.decisions.tenant import (
    EGRESS_CIDR_SHAPE,
    MAX_EGRESS_CIDRS,
    MAX_QUANTITY_LENGTH,
    QUANTITY_SHAPES,
)
from tests.operators.conftest import example


def _schemas() -> dict[str, dict[str, Any]]:
    return {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in crd_manifests()
    }


def _structural(schema: dict[str, Any], path: str = "") -> list[str]:
    """Kubernetes requires a type on every node unless unknown fields are preserved."""
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(path or "/")
    for name, sub in schema.get("properties", {}).items():
        problems += _structural(sub, f"{path}/{name}")
    if isinstance(schema.get("items"), dict):
        problems += _structural(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _structural(schema["additionalProperties"], f"{path}{{}}")
    return problems


def _validate(kind: str, obj: dict[str, Any]) -> list[str]:
    return [e.message for e in OAS30Validator(_schemas()[kind]).iter_errors(obj)]


@pytest.mark.parametrize("kind", ["GpuNodePool", "Tenant"])
def test_crd_schema_is_valid_openapi_v3_and_structural(kind: str) -> None:
    schema = _schemas()[kind]
    OAS30Validator.check_schema(schema)
    assert _structural(schema) == []


def test_crds_are_cluster_scoped_with_a_status_subresource() -> None:
    for crd in crd_manifests():
        assert crd["spec"]["group"] == "dsx.ai"
        assert crd["spec"]["scope"] == "Cluster"
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


@pytest.mark.parametrize(("kind", "name"), [("GpuNodePool", "gpunodepool"), ("Tenant", "tenant")])
def test_bundled_examples_validate(kind: str, name: str) -> None:
    assert _validate(kind, example(name)) == []


def test_bad_objects_fail_schema_validation() -> None:
    pool = example("gpunodepool")
    pool["spec"]["backend"] = "gke"
    pool["spec"]["racks"] = -2
    errors = _validate("GpuNodePool", pool)
    assert any("'gke' is not one of" in e for e in errors)
    assert any("-2 is less than the minimum of 0" in e for e in errors)
    tenant = example("tenant")
    tenant["spec"]["namespaces"] = []
    tenant["spec"]["deletionPolicy"] = "Purge"
    tenant["spec"]["memoryQuota"] = "lots"
    errors = _validate("Tenant", tenant)
    assert len(errors) == 3


def test_infra_desired_state_produces_objects_the_schemas_accept() -> None:
    from infra.desired_state import desired_state
    from tests.infra.plan_factory import make_plan

    plan = make_plan()
    site = plan.sites[0].id
    state = desired_state(plan, site, plan.periods[-1])
    for pool in state.node_pools:
        assert _validate("GpuNodePool", pool) == []
    for tenant in state.tenants:
        assert _validate("Tenant", tenant) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"racks": 10**7}, "a pool of 10⁷ racks would need 1.8·10⁸+ replicas beyond int32 with GPUs"),
        ({"nodesPerRack": 5000}, "nodes per rack bounded"),
        ({"gpusPerNode": 1000}, "GPUs per node bounded"),
        ({"labels": {f"k{i}": "v" for i in range(33)}}, "at most 32 labels"),
        ({"labels": {"tier": "x" * 64}}, "label value longer than 63"),
        ({"labels": {"tier": "has space"}}, "label value with a space"),
        ({"gpuProduct": "NVIDIA GB300"}, "product is a label value"),
    ],
)
def test_pool_schema_bounds_what_downstream_objects_require(change: dict, why: str) -> None:
    pool = example("gpunodepool")
    pool["spec"].update(change)
    assert _validate("GpuNodePool", pool), why


@pytest.mark.parametrize("kind", ["GpuNodePool", "Tenant"])
def test_names_longer_than_a_label_value_fail_schema_validation(kind: str) -> None:
    obj = example("gpunodepool" if kind == "GpuNodePool" else "tenant")
    obj["metadata"]["name"] = "n" * 64
    assert _validate(kind, obj)


def test_schema_bounds_keep_replicas_and_gpus_within_int32() -> None:
    spec = _schemas()["GpuNodePool"]["properties"]["spec"]["properties"]
    replicas = spec["racks"]["maximum"] * spec["nodesPerRack"]["maximum"]
    assert replicas * spec["gpusPerNode"]["maximum"] <= 2**31 - 1


@pytest.mark.parametrize(
    "change",
    [
        {"gpuQuota": [{"pool": "p", "gpus": 2**31}]},
        {"owners": {"users": ["mal lory"]}},
        {"owners": {"groups": [f"g{i}" for i in range(33)]}},
        {"namespaces": [f"ns-{i}" for i in range(65)]},
        {"gpuQuota": [{"pool": "Pool_With_Caps", "gpus": 1}]},
        {"cpuQuota": "9" * 5000},  # beyond Python's 4 300-digit int conversion: the operator refuses it too
        {"memoryQuota": "1" * 33 + "Gi"},
        {"network": {"egressCIDRs": ["10.0.0.0/129"]}},
        {"network": {"egressCIDRs": ["10.0.0.0/08"]}},
        {"network": {"egressCIDRs": ["fe80::%eth0/64"]}},
    ],
)
def test_tenant_schema_bounds_hostile_specs(change: dict) -> None:
    tenant = example("tenant")
    tenant["spec"].update(change)
    assert _validate("Tenant", tenant)


def test_tenant_schema_states_the_quantity_and_cidr_rules_the_operator_checks_again() -> None:
    # one rule in two places (the schema, and validate_tenant for a schema it cannot trust): the same
    spec = _schemas()["Tenant"]["properties"]["spec"]["properties"]
    for field, shape in QUANTITY_SHAPES.items():
        assert spec[field]["pattern"] == shape.pattern
        assert spec[field]["maxLength"] == MAX_QUANTITY_LENGTH
    cidrs = spec["network"]["properties"]["egressCIDRs"]
    assert cidrs["items"]["pattern"] == EGRESS_CIDR_SHAPE.pattern
    assert cidrs["maxItems"] == MAX_EGRESS_CIDRS
