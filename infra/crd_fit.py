"""Do the manifests fit the CRDs they are applied to? Checked before any resource is registered.

The API server checks every GpuNodePool and Tenant against its CRD's schema
(`operators/manifests/crds/`), so a plan it would refuse (a rack type of 72 GPUs per node where
a pool holds at most 16, a display name past 200 characters) would otherwise fail at `kubectl
apply`, or half-way through `pulumi up` with the pools before it created. The schemas are read
once from the operator's bundle, the same files the cluster is given.
"""

from __future__ import annotations

import functools
from typing import Any

from openapi_schema_validator import OAS30Validator

from infra.checks import Origin, PlanMismatchError
from operators.bundle import crd_manifests

MAX_PROBLEMS_SHOWN = 8
_WHERE_IN_THE_SCENARIO = {
    ("GpuNodePool", "gpusPerNode"): "the rack type's gpus_per_rack / nodes_per_rack",
    ("GpuNodePool", "nodesPerRack"): "the rack type's nodes_per_rack",
    ("GpuNodePool", "racks"): "the racks the plan installs of this rack type at this site",
    ("Tenant", "displayName"): "the tenant's display_name",
    ("Tenant", "owners"): "the tenant's owners",
}


@functools.cache
def _validators() -> dict[str, OAS30Validator]:
    return {
        crd["spec"]["names"]["kind"]: OAS30Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        for crd in crd_manifests()
    }


def _said(error: Any) -> str:
    """The schema's complaint without echoing a long value back."""
    if error.validator == "maxLength":
        return f"{len(error.instance)} characters, at most {error.validator_value}"
    if error.validator == "maxItems":
        return f"{len(error.instance)} entries, at most {error.validator_value}"
    if error.validator == "maximum":
        return f"{error.instance} is more than the {error.validator_value} the CRD allows"
    return error.message if len(error.message) <= 120 else f"{error.message[:119]}…"


def crd_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """Each way a manifest of a dsx CRD breaks its schema, naming the object, the field and,
    where one is known, what in the scenario sets it."""
    validators = _validators()
    problems = []
    for manifest in manifests:
        validator = validators.get(manifest.get("kind", ""))
        if validator is None:  # not a dsx custom resource (the operator's bundle)
            continue
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path))):
            path = ".".join(str(p) for p in error.absolute_path)
            field = next((str(p) for p in list(error.absolute_path)[1:2]), "")
            source = _WHERE_IN_THE_SCENARIO.get((manifest["kind"], field))
            problems.append(
                f"{manifest['kind']} {manifest['metadata']['name']}: {path}: {_said(error)}"
                + (f" (set by {source})" if source else "")
            )
    return problems


def check_against_crds(manifests: list[dict[str, Any]], origin: Origin) -> None:
    """Raise `PlanMismatchError` if the API server would refuse any of the manifests."""
    problems = crd_problems(manifests)
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise PlanMismatchError(
            f"{origin.plan_path}: the cluster would refuse what this plan asks for (the CRDs' bounds)",
            details=[
                *shown,
                *more,
                "Fix: change the scenario so each of these fits, and re-solve",
            ],
        )
