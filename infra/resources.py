"""One Kubernetes manifest dict → one Pulumi resource of the matching pulumi-kubernetes class.

Built-in kinds use their typed classes (so the provider knows their schema and await logic);
custom kinds use `apiextensions.CustomResource`. The manifest dicts are the ones `dsx render`
prints, so Pulumi and kubectl users apply the same objects.
"""

from __future__ import annotations

import importlib
from typing import Any

import pulumi
from pulumi_kubernetes._tables import CAMEL_TO_SNAKE_CASE_TABLE
from pulumi_kubernetes.apiextensions import CustomResource

_NOT_INPUTS = {"apiVersion", "kind", "status"}


def resource_name(manifest: dict[str, Any]) -> str:
    """Logical name: `namespace/name` or `name`, unique per type like in pulumi-kubernetes' ConfigGroup."""
    meta = manifest["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def _typed_class(api_version: str, kind: str) -> type[pulumi.CustomResource] | None:
    group, _, version = api_version.rpartition("/")
    if group and not (group.endswith(".k8s.io") or "." not in group):
        return None
    package = group.split(".")[0] if group else "core"
    try:
        module = importlib.import_module(f"pulumi_kubernetes.{package}.{version}")
    except ModuleNotFoundError:
        return None
    cls = getattr(module, kind, None)
    return cls if isinstance(cls, type) and issubclass(cls, pulumi.CustomResource) else None


def register_manifest(manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    name = resource_name(manifest)
    fields = {k: v for k, v in manifest.items() if k not in _NOT_INPUTS}
    cls = _typed_class(api_version, kind)
    if cls is not None:
        kwargs = {CAMEL_TO_SNAKE_CASE_TABLE.get(k, k): v for k, v in fields.items()}
        return cls(name, opts=opts, **kwargs)
    extra = set(fields) - {"metadata", "spec"}
    if extra:
        raise ValueError(f"{kind} {name}: custom resources carry metadata and spec only, not {sorted(extra)}")
    return CustomResource(
        name,
        api_version=api_version,
        kind=kind,
        metadata=fields["metadata"],
        spec=fields.get("spec"),
        opts=opts,
    )
