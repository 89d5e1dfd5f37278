"""The Pulumi program: stack config + plan file → the site's operator, node pools and tenants.

All decisions are made by `desired_state` before the first resource is registered, so a plan
that does not fit the stack stops `pulumi up` with one message and leaves the cluster untouched.
"""

from __future__ import annotations

from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s

from infra.checks import check_operator, plan_tenant_namespaces
from infra.components import DsxOperator, SiteNodePools, SiteTenants
from infra.desired_state import DesiredState, desired_state
from infra.operator_bundle import operator_manifests
from infra.settings import StackSettings, project_root, read_settings
from planner.errors import PlanFileError, UserError
from planner.files import read_plan


class StackError(UserError, pulumi.RunError):
    """A `UserError` that Pulumi reports as a plain message (RunError: no Python traceback)."""


def prepare(settings: StackSettings) -> DesiredState:
    """Read the plan and decide everything; raises `UserError` naming the stack file and fix."""
    origin = settings.origin
    try:
        plan = read_plan(settings.plan_path)
    except PlanFileError as error:
        raise PlanFileError(
            error.message,
            details=[
                *error.details,
                f"the plan path comes from {origin.where('plan')}",
                f"Fix: write the plan there (dsx plan solve SCENARIO -o {settings.plan_ref}) or "
                f"pulumi config set dsx:plan <plan.json> --stack {settings.stack}",
            ],
        ) from None
    state = desired_state(
        plan,
        settings.site,
        settings.period,
        backend=settings.backend,
        sizing=settings.sizing,
        namespace_style=settings.namespace_style,  # type: ignore[arg-type]  # checked in desired_state
        origin=origin,
    )
    if not settings.install_operator:
        return state
    check_operator(
        settings.operator_image,
        settings.operator_namespace,
        origin,
        plan_tenant_namespaces(plan, settings.namespace_style),
    )
    return replace(state, operator=operator_manifests(settings.operator_image, settings.operator_namespace))


def provision(state: DesiredState, settings: StackSettings) -> dict[str, pulumi.ComponentResource]:
    """Register the desired state; tenants wait for the pools their quotas name."""
    provider = k8s.Provider(
        f"{state.site}-cluster",
        kubeconfig=settings.kubeconfig,
        context=settings.context,
    )
    opts = pulumi.ResourceOptions(providers=[provider])
    components: dict[str, pulumi.ComponentResource] = {}
    after: list[pulumi.Resource] = []
    if state.operator:
        components["operator"] = DsxOperator("dsx-operator", state.operator, opts)
        after = [components["operator"]]
    pools = SiteNodePools(f"{state.site}-node-pools", state.node_pools, after, opts)
    components["node_pools"] = pools
    components["tenants"] = SiteTenants(f"{state.site}-tenants", state.tenants, [*after, pools], opts)
    return components


def run() -> DesiredState:
    """Entry point called by infra/__main__.py (and by tests under Pulumi's mock runtime)."""
    try:
        settings = read_settings(pulumi.Config("dsx"), pulumi.get_stack(), project_root())
        state = prepare(settings)
    except UserError as error:
        raise StackError(error.message, details=error.details) from None
    provision(state, settings)
    for key, value in state.outputs().items():
        pulumi.export(key, value)
    return state
