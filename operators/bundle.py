"""The operator's deployment bundle as data: CRDs, RBAC, Deployment, and the pod-placement webhook's
Service and ValidatingWebhookConfiguration, for Pulumi or kubectl."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path(__file__).parent / "manifests"
DEFAULT_IMAGE = "ghcr.io/dsx/dsx-operator:0.1.0"
DEFAULT_NAMESPACE = "dsx-system"


@cache
def _load(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def crd_manifests() -> list[dict[str, Any]]:
    return [copy.deepcopy(d) for f in sorted((MANIFESTS / "crds").glob("*.yaml")) for d in _load(f)]


def operator_bundle(image: str = DEFAULT_IMAGE, namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """CRDs first, then namespace, identity, RBAC and the Deployment, set to `image`/`namespace`."""
    docs = [copy.deepcopy(d) for d in _load(MANIFESTS / "deploy" / "operator.yaml")]
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            meta["name"] = namespace
        elif "namespace" in meta:
            meta["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = image
        if doc["kind"] == "ValidatingWebhookConfiguration":
            # the operator's Service, and its namespace never under its own webhook
            for hook in doc["webhooks"]:
                hook["clientConfig"]["service"]["namespace"] = namespace
                for expression in hook["namespaceSelector"]["matchExpressions"]:
                    if expression["operator"] == "NotIn":
                        expression["values"] = sorted({*expression["values"], namespace})
    return crd_manifests() + docs
