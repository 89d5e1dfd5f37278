"""The operator's only Kubernetes I/O: a small typed-by-kind layer over the official client.

Every call goes through `kubernetes.client.ApiClient`, with plain dicts in and out, so the
decisions stay pure data. Inside every call:
- transient failures (connection errors, 408, 429, 5xx) are retried with exponential backoff and
  full jitter, honouring the server's Retry-After; conflicts (409) are not: the caller re-reads;
- lists are paginated (`limit` + `continue`, restarted when the continue token expires);
- `sync` writes a child only when it is out of line (`decisions.drift`): server-side apply with
  the operator's field manager and `force`, or a full replace for kinds the operator owns whole.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from operators.api import ADDON_KINDS, API_VERSION, CRD_API_VERSION, FIELD_MANAGER
from operators.decisions import drift

log = logging.getLogger("dsx.operator.kube")


@dataclass(frozen=True)
class Kind:
    prefix: str
    plural: str
    namespaced: bool


KINDS: dict[str, Kind] = {
    "Namespace": Kind("/api/v1", "namespaces", False),
    "Node": Kind("/api/v1", "nodes", False),
    "Pod": Kind("/api/v1", "pods", True),
    "PersistentVolumeClaim": Kind("/api/v1", "persistentvolumeclaims", True),
    "ResourceQuota": Kind("/api/v1", "resourcequotas", True),
    "LimitRange": Kind("/api/v1", "limitranges", True),
    "Deployment": Kind("/apis/apps/v1", "deployments", True),
    "StatefulSet": Kind("/apis/apps/v1", "statefulsets", True),
    "DaemonSet": Kind("/apis/apps/v1", "daemonsets", True),
    "ReplicaSet": Kind("/apis/apps/v1", "replicasets", True),
    "Job": Kind("/apis/batch/v1", "jobs", True),
    "CronJob": Kind("/apis/batch/v1", "cronjobs", True),
    "Lease": Kind("/apis/coordination.k8s.io/v1", "leases", True),
    "RoleBinding": Kind("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "NetworkPolicy": Kind("/apis/networking.k8s.io/v1", "networkpolicies", True),
    **{
        kind: Kind(f"/apis/{group}/{version}", plural, namespaced)
        for kind, (group, version, plural, namespaced) in ADDON_KINDS.items()
    },
    "CustomResourceDefinition": Kind(f"/apis/{CRD_API_VERSION}", "customresourcedefinitions", False),
    "ValidatingWebhookConfiguration": Kind(
        "/apis/admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", False
    ),
    "GpuNodePool": Kind(f"/apis/{API_VERSION}", "gpunodepools", False),
    "Tenant": Kind(f"/apis/{API_VERSION}", "tenants", False),
}


class NotOwned(Exception):
    """`sync` found an object of the child's kind and name that the caller may not write; nothing
    was written. Not an ApiError: retrying does not help, the status says it."""

    def __init__(self, child: dict[str, Any], reason: str):
        meta = child["metadata"]
        self.kind, self.reason = child["kind"], reason
        self.name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        super().__init__(f"{self.kind} {self.name} {reason}")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, retry_after_s: float | None = None):
        self.status, self.reason, self.retry_after_s = status, reason, retry_after_s
        super().__init__(f"HTTP {status} {reason}: {message}")

    @property
    def transient(self) -> bool:
        """Worth the same request again: the server or the network failed, not the request."""
        return self.status in (0, 408, 429) or self.status >= 500

    @property
    def retriable(self) -> bool:
        """Worth another pass (re-read and recompute): transient, or a conflict."""
        return self.transient or self.status == 409


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base·2ⁿ)), or
    the server's Retry-After (capped) when it gives one."""

    attempts: int = 6
    base_s: float = 0.2
    cap_s: float = 10.0
    retry_after_cap_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.retry_after_cap_s)
        return self.rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        return cls(
            attempts=int(os.environ.get("DSX_REQUEST_ATTEMPTS", "6")),
            base_s=float(os.environ.get("DSX_REQUEST_BACKOFF_S", "0.2")),
            cap_s=float(os.environ.get("DSX_REQUEST_BACKOFF_CAP_S", "10")),
        )


def make_api_client() -> k8s.ApiClient:
    """In tests DSX_OPERATOR_SERVER names the server; otherwise in-cluster, then kubeconfig."""
    configuration = k8s.Configuration()
    server = os.environ.get("DSX_OPERATOR_SERVER")
    if server:
        configuration.host = server
        ca_file = os.environ.get("DSX_OPERATOR_CA_FILE")
        if ca_file:
            configuration.ssl_ca_cert = ca_file
        else:
            configuration.verify_ssl = False
        token = os.environ.get("DSX_OPERATOR_TOKEN")
        if token:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
    return k8s.ApiClient(configuration)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Kube:
    def __init__(self, api_client: k8s.ApiClient, retry: RetryPolicy | None = None, page_size: int = 250):
        self.api = api_client
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        # resourceVersion of what the operator itself last wrote, per object: watch events that
        # carry it are echoes of its own writes, not drift.
        self.written: dict[tuple[str, str | None, str], str] = {}

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

    def _once(
        self, method: str, path: str, body: Any, query: dict[str, str] | None, content_type: str | None
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
            raise ApiError(
                error.status or 0, error.reason or "", str(error.body or error), _retry_after(error.headers)
            ) from None
        except Exception as error:  # connection refused, timeouts
            raise ApiError(0, type(error).__name__, str(error)) from None
        response.read()
        text = response.data.decode() if response.data else ""
        if response.status >= 400:
            try:
                message = json.loads(text).get("message", text)
            except (ValueError, AttributeError):
                message = text
            raise ApiError(response.status, response.reason or "", message, _retry_after(response.headers))
        return json.loads(text) if text else None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Any:
        """One API call, retried while the failure is transient (see RetryPolicy)."""
        for attempt in range(self.retry.attempts):
            try:
                return self._once(method, path, body, query, content_type)
            except ApiError as error:
                if not error.transient or attempt == self.retry.attempts - 1:
                    raise
                wait = self.retry.delay(attempt, error.retry_after_s)
                log.debug("%s %s failed (%s); retry %d in %.2f s", method, path, error, attempt + 1, wait)
                self.retry.sleep(wait)
        raise AssertionError("unreachable")

    def _remember(self, obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("kind") in KINDS:
            meta = obj.get("metadata", {})
            if meta.get("resourceVersion"):
                self.written[(obj["kind"], meta.get("namespace"), meta.get("name", ""))] = meta[
                    "resourceVersion"
                ]
        return obj

    def is_echo(self, kind: str, body: dict[str, Any]) -> bool:
        """Whether a watched object is exactly what the operator itself last wrote."""
        meta = body.get("metadata", {})
        key = (kind, meta.get("namespace"), meta.get("name", ""))
        return bool(meta.get("resourceVersion")) and self.written.get(key) == meta.get("resourceVersion")

    # -- reads ----------------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.request("GET", self._path(kind, name, namespace))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def get_at(self, api_version: str, plural: str, name: str, namespace: str) -> dict[str, Any] | None:
        """One namespaced object of a kind known only at run time (a Cluster API provider's
        template, resolved from its CRD); None when absent."""
        path = f"/apis/{quote(api_version)}/namespaces/{quote(namespace)}/{quote(plural)}/{quote(name)}"
        try:
            return self.request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every object (or the first `limit`), page by page; an expired continue token restarts."""
        selector = ",".join(f"{k}={v}" for k, v in labels.items()) if labels else None
        for _restart in range(3):
            items: list[dict[str, Any]] = []
            token = ""
            try:
                while True:
                    query = {"limit": str(min(limit or self.page_size, self.page_size))}
                    if selector:
                        query["labelSelector"] = selector
                    if token:
                        query["continue"] = token
                    page = self.request("GET", self._path(kind, namespace=namespace), query=query) or {}
                    items += page.get("items") or []
                    token = (page.get("metadata") or {}).get("continue") or ""
                    if not token or (limit is not None and len(items) >= limit):
                        break
            except ApiError as error:
                if error.status == 410 and token:
                    continue  # the continue token expired: list again from the start
                raise
            if labels:  # do not trust the server to filter; decisions depend on it
                items = [
                    i
                    for i in items
                    if all((i.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in labels.items())
                ]
            return items[:limit] if limit is not None else items
        raise ApiError(410, "Gone", f"list of {kind} kept expiring")

    def serves(self, kind: str) -> bool:
        """Whether the cluster serves this kind at all (add-ons such as Kueue may be absent)."""
        try:
            self.request("GET", self._path(kind), query={"limit": "1"})
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    # -- writes ---------------------------------------------------------------------------------
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self._remember(
            self.request("POST", self._path(obj["kind"], namespace=meta.get("namespace")), body=obj)
        )

    def patch(
        self,
        kind: str,
        name: str,
        patch: dict[str, Any],
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """JSON merge patch; a `metadata.resourceVersion` in it makes it conditional (409 if stale)."""
        return self._remember(
            self.request(
                "PATCH",
                self._path(kind, name, namespace, subresource),
                body=patch,
                content_type="application/merge-patch+json",
            )
        )

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its resourceVersion makes it conditional (409 if stale)."""
        meta = obj["metadata"]
        return self._remember(
            self.request("PUT", self._path(obj["kind"], meta["name"], meta.get("namespace")), body=obj)
        )

    def server_side_apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self._remember(
            self.request(
                "PATCH",
                self._path(obj["kind"], meta["name"], meta.get("namespace")),
                body=obj,
                query={"fieldManager": FIELD_MANAGER, "force": "true"},
                content_type="application/apply-patch+yaml",
            )
        )

    def delete(self, kind: str, name: str, namespace: str | None = None, uid: str | None = None) -> bool:
        """Delete; with `uid`, only that very object (409 if the name now holds another)."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}} if uid else None
        try:
            self.request("DELETE", self._path(kind, name, namespace), body=body)
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def sync(
        self,
        wanted: dict[str, Any],
        not_owned: Callable[[dict[str, Any]], str] | None = None,
        given_live: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]] | None = None,
    ) -> str:
        """Bring one child in line; write nothing when it already is. Returns what was done.
        `not_owned(existing)` says why an existing object of that name is not the caller's to
        write ('' when it is); then nothing is written and `NotOwned` is raised. `given_live(wanted,
        existing)` is what to write given what is there (read at each attempt, and the write
        conditional on that reading, so a change in between is never overwritten)."""
        meta = wanted["metadata"]
        for _attempt in range(3):
            current = self.get(wanted["kind"], meta["name"], meta.get("namespace"))
            if current is not None and not_owned is not None and (reason := not_owned(current)):
                raise NotOwned(wanted, reason)
            desired = wanted if given_live is None else given_live(wanted, current)
            how = drift.write_needed(desired, current)
            try:
                if how is None:
                    return "unchanged"
                if how == "replace" and current is not None:
                    try:
                        self.replace(drift.replacement(desired, current))
                        return "replaced"
                    except ApiError as error:
                        if error.status != 422:
                            raise
                    # an immutable field differs (ResourceQuota scopes, RoleBinding roleRef):
                    # the object cannot be repaired in place, so it is made again
                    self.delete(desired["kind"], meta["name"], meta.get("namespace"))
                    self.server_side_apply(desired)
                    return "recreated"
                self.server_side_apply(desired)
                return "created" if how == "create" else "applied"
            except ApiError as error:
                if error.status != 409:
                    raise
                # someone wrote in between: read again and decide again
        raise ApiError(409, "Conflict", f"{wanted['kind']} {meta['name']} kept changing under the operator")
