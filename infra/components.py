"""The site's resources, grouped so `pulumi preview` reads as operator → node pools → tenants.

Tenant objects are protected: a Tenant owns its namespaces (and, through them, workloads and
data), so removing one from a plan must never delete it by accident. Unprotecting is an explicit
act (`pulumi state unprotect`), and the Tenant's `deletionPolicy: Retain` keeps namespaces even then.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.resources import register_manifest

Manifest = dict[str, Any]


class DsxOperator(pulumi.ComponentResource):
    """The dsx operator: its CRDs, RBAC and Deployment, CRDs registered first."""

    def __init__(self, name: str, manifests: list[Manifest], opts: pulumi.ResourceOptions | None = None):
        super().__init__("dsx:infra:DsxOperator", name, None, opts)
        crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
        rest = [m for m in manifests if m["kind"] != "CustomResourceDefinition"]
        self.crds = [register_manifest(m, pulumi.ResourceOptions(parent=self)) for m in crds]
        self.resources = [
            register_manifest(m, pulumi.ResourceOptions(parent=self, depends_on=self.crds)) for m in rest
        ]
        self.register_outputs({"crds": [m["metadata"]["name"] for m in crds]})


class SiteNodePools(pulumi.ComponentResource):
    """One GpuNodePool per rack type the plan installs at the site."""

    def __init__(
        self,
        name: str,
        manifests: list[Manifest],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("dsx:infra:SiteNodePools", name, None, opts)
        self.pools = {
            m["metadata"]["name"]: register_manifest(
                m, pulumi.ResourceOptions(parent=self, depends_on=depends_on)
            )
            for m in manifests
        }
        self.register_outputs({"racks": {m["metadata"]["name"]: m["spec"]["racks"] for m in manifests}})


class SiteTenants(pulumi.ComponentResource):
    """One Tenant per tenant with quota at the site; protected against accidental deletion."""

    def __init__(
        self,
        name: str,
        manifests: list[Manifest],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("dsx:infra:SiteTenants", name, None, opts)
        self.tenants = {
            m["metadata"]["name"]: register_manifest(
                m, pulumi.ResourceOptions(parent=self, depends_on=depends_on, protect=True)
            )
            for m in manifests
        }
        self.register_outputs({"tenants": sorted(self.tenants)})
