"""The operator's only Kubernetes I/O: a small typed-by-kind layer over the official client.

Every call goes through `kubernetes.client.ApiClient`, with plain dicts in and out, so the
decisions stay pure data and one idempotent `apply` serves create, adopt and drift repair.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubernetes import client as k8s
from kubernetes import config as k8s_config


@dataclass(frozen=True)
class Kind:
    prefix: str
    plural: str
    namespaced: bool


KINDS: dict[str, Kind] = {
    "Namespace": Kind("/api/v1", "namespaces", False),
    "Node": Kind("/api/v1", "nodes", False),
    "Pod": Kind("/api/v1", "pods", True),
    "ResourceQuota": Kind("/api/v1", "resourcequotas", True),
    "LimitRange": Kind("/api/v1", "limitranges", True),
    "RoleBinding": Kind("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "NetworkPolicy": Kind("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "ClusterQueue": Kind("/apis/kueue.x-k8s.io/v1beta1", "clusterqueues", False),
    "LocalQueue": Kind("/apis/kueue.x-k8s.io/v1beta1", "localqueues", True),
    "ResourceFlavor": Kind("/apis/kueue.x-k8s.io/v1beta1", "resourceflavors", False),
    "MachineDeployment": Kind("/apis/cluster.x-k8s.io/v1beta1", "machinedeployments", True),
    "NodePool": Kind("/apis/karpenter.sh/v1", "nodepools", False),
    "GpuNodePool": Kind("/apis/dsx.ai/v1alpha1", "gpunodepools", False),
    "Tenant": Kind("/apis/dsx.ai/v1alpha1", "tenants", False),
}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        self.status, self.reason = status, reason
        super().__init__(f"HTTP {status} {reason}: {message}")

    @property
    def retriable(self) -> bool:
        """Conflicts, throttling and server errors pass; anything else needs a different request."""
        return self.status in (0, 408, 409, 429) or self.status >= 500


def make_api_client() -> k8s.ApiClient:
    """In tests DSX_OPERATOR_SERVER names the server; otherwise in-cluster, then kubeconfig."""
    configuration = k8s.Configuration()
    server = os.environ.get("DSX_OPERATOR_SERVER")
    if server:
        configuration.host = server
        configuration.verify_ssl = False
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
    return k8s.ApiClient(configuration)


def is_subset(desired: Any, current: Any) -> bool:
    """True when every key/value the operator sets is present in the live object."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(is_subset(v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(is_subset(d, c) for d, c in zip(desired, current, strict=True))
        )
    return desired == current or (
        desired is not None and str(desired) == str(current) and isinstance(current, str)
    )


class Kube:
    def __init__(self, api_client: k8s.ApiClient):
        self.api = api_client

    def _path(
        self, kind: str, name: str | None = None, namespace: str | None = None, sub: str | None = None
    ) -> str:
        info = KINDS[kind]
        path = info.prefix
        if info.namespaced and namespace:
            path += f"/namespaces/{quote(namespace)}"
        path += f"/{info.plural}"
        if name:
            path += f"/{quote(name)}"
        if sub:
            path += f"/{sub}"
        return path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        _method, url, headers, body, _post = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=30)
        except k8s.ApiException as error:  # transport problems and Retry-After answers
            raise ApiError(error.status or 0, error.reason or "", str(error.body or error)) from None
        except Exception as error:  # connection refused, timeouts
            raise ApiError(0, type(error).__name__, str(error)) from None
        response.read()
        text = response.data.decode() if response.data else ""
        if response.status >= 400:
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise ApiError(response.status, response.reason or "", message)
        return json.loads(text) if text else None

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.request("GET", self._path(kind, name, namespace))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        result = self.request("GET", self._path(kind, namespace=namespace), query=query) or {}
        items = result.get("items", [])
        if labels:  # do not trust the server to filter; the decision depends on it
            items = [
                i
                for i in items
                if all(i.get("metadata", {}).get("labels", {}).get(k) == v for k, v in labels.items())
            ]
        return items

    def serves(self, kind: str) -> bool:
        """Whether the cluster serves this kind at all (add-ons such as Kueue may be absent)."""
        try:
            self.request("GET", self._path(kind), query={"limit": "1"})
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("POST", self._path(obj["kind"], namespace=meta.get("namespace")), body=obj)

    def patch(
        self,
        kind: str,
        name: str,
        patch: dict[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return self.request(
            "PATCH",
            self._path(kind, name, namespace, subresource),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.request("DELETE", self._path(kind, name, namespace))
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def apply(self, desired: dict[str, Any]) -> str:
        """Create if missing, patch back what drifted, leave alone what matches. Idempotent."""
        meta = desired["metadata"]
        current = self.get(desired["kind"], meta["name"], meta.get("namespace"))
        if current is None:
            self.create(desired)
            return "created"
        wanted = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
        if is_subset(wanted, current):
            return "unchanged"
        self.patch(desired["kind"], meta["name"], wanted, meta.get("namespace"))
        return "patched"
