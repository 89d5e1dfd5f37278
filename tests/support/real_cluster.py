"""A real Kubernetes API server for the test suite: etcd, kube-apiserver, kube-controller-manager.

`LocalCluster` starts them on free 127.0.0.1 ports in a temporary directory and stops every
process it started, by PID:

- kube-apiserver v1.20.2, built from Debian's `kubernetes` source package by `tools/kube/build.sh`
  (cached under `$DSX_CACHE_DIR/kube/1.20.2/`, default `~/.cache/dsx`), with etcd from Debian's
  `etcd-server`; TLS from a throwaway CA (serving certificate with IP SAN 127.0.0.1),
  ServiceAccount token signing keys, a token file for the admin (`system:masters`),
  `--authorization-mode=RBAC`, and an audit log of every request made by the operator's
  ServiceAccount (`RealCluster.audit_events`), so tests can count the operator's writes;
- kube-controller-manager with all default controllers (garbage collector, namespace, resource
  quota, ServiceAccount and token controllers among them), each with its own credentials.

Then it installs the project's CRDs, the genuine upstream CRDs of the add-on kinds the operator
writes (vendored in `upstream-crds/`, tag and commit in its SOURCES.md; `$DSX_UPSTREAM_CRDS` points at
another release's directory to run the suite against it), stand-ins of the Cluster API kinds the
operator only reads (`standin_crds.yaml`), and the operator's namespace, ServiceAccount and RBAC from
`operators/manifests/deploy/operator.yaml` (not its Deployment: no pod runs here), and checks that
the controllers work (a quota gets its usage, a namespace deletion finishes).
`RealCluster.service_account_kubeconfig` gives the operator a kubeconfig with its own
ServiceAccount token, so its least privilege is tested for real.

There are no nodes and no kubelets: pods are stored and scheduled nowhere, never run. v1.20 knows
no CEL (`x-kubernetes-validations` are dropped). With `DSX_TEST_KUBECONFIG` set, `real_cluster()`
uses that (disposable) cluster instead of starting one; it then has no audit log.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from operators import api

KUBE_VERSION = "1.20.2"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "kube" / "build.sh"
CRD_DIR = REPO_ROOT / "operators" / "manifests" / "crds"
OPERATOR_MANIFEST = REPO_ROOT / "operators" / "manifests" / "deploy" / "operator.yaml"
STANDIN_CRDS = Path(__file__).resolve().with_name("standin_crds.yaml")
UPSTREAM_CRDS_ENV = "DSX_UPSTREAM_CRDS"
UPSTREAM_CRDS_DIR = Path(__file__).resolve().with_name("upstream-crds")
"""Vendored from the projects' release tags: `<project>/<version>/*.yaml` (SOURCES.md)."""
OPERATOR_NAMESPACE = "dsx-system"
OPERATOR_SERVICE_ACCOUNT = "dsx-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
PORT_TAKEN_CHECK_S = 0.5
"""How long a process must outlive its port's first answer: etcd binds within a fraction of a
second of its start and exits at once when the port is taken, so ours is unlikely to use another
worker's etcd unnoticed (a heuristic: a very slow start could still pass). A kube-apiserver binds
seconds after its start; one answering in place of ours fails /readyz, asked with this cluster's
own CA and token, and our own dying is seen there at once: loud, not shared."""
START_TIMEOUT_S = float(os.environ.get("DSX_TEST_CLUSTER_START_TIMEOUT_S", "180"))


# --- a small REST client (admin or any kubeconfig), independent of the operator's own --------


@dataclass(frozen=True)
class Resource:
    api_version: str
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"


RESOURCES: dict[str, Resource] = {
    "Namespace": Resource("v1", "namespaces", False),
    "ServiceAccount": Resource("v1", "serviceaccounts", True),
    "Secret": Resource("v1", "secrets", True),
    "ConfigMap": Resource("v1", "configmaps", True),
    "Pod": Resource("v1", "pods", True),
    "PersistentVolumeClaim": Resource("v1", "persistentvolumeclaims", True),
    "ResourceQuota": Resource("v1", "resourcequotas", True),
    "LimitRange": Resource("v1", "limitranges", True),
    "Event": Resource("v1", "events", True),
    "Node": Resource("v1", "nodes", False),
    "Role": Resource("rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": Resource("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": Resource("rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": Resource("rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "NetworkPolicy": Resource("networking.k8s.io/v1", "networkpolicies", True),
    "Deployment": Resource("apps/v1", "deployments", True),
    "Service": Resource("v1", "services", True),
    "ValidatingWebhookConfiguration": Resource(
        "admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", False
    ),
    "CustomResourceDefinition": Resource("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    **{
        kind: Resource(f"{group}/{version}", plural, namespaced)
        for kind, (group, version, plural, namespaced) in api.ADDON_KINDS.items()
    },
    # Cluster API objects a pool refers to (stand-ins; the operator only reads them)
    "Cluster": Resource(f"{api.CAPI_GROUP}/{api.CAPI_VERSION}", "clusters", True),
    "Metal3MachineTemplate": Resource(
        f"{api.CAPI_INFRASTRUCTURE_GROUP}/v1beta1", "metal3machinetemplates", True
    ),
    "KubeadmConfigTemplate": Resource(f"{api.CAPI_BOOTSTRAP_GROUP}/v1beta2", "kubeadmconfigtemplates", True),
    "GpuNodePool": Resource("dsx.ai/v1alpha1", "gpunodepools", False),
    "Tenant": Resource("dsx.ai/v1alpha1", "tenants", False),
}


class ApiStatus(Exception):
    """An HTTP error answer from the API server, with its status code and message."""

    def __init__(self, status: int, reason: str, message: str):
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"HTTP {status} {reason}: {message}")


class Client:
    """Plain-dict REST calls through the official client's transport (TLS, tokens, certs)."""

    def __init__(self, configuration: k8s.Configuration):
        self.configuration = configuration
        self.api = k8s.ApiClient(configuration)

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Client:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=str(path), client_configuration=configuration)
        return cls(configuration)

    @staticmethod
    def path(kind: str, name: str | None = None, namespace: str | None = None, sub: str | None = None) -> str:
        info = RESOURCES[kind]
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
        content_type: str = "application/json",
        timeout_s: float = 30,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        _m, url, headers, body, _p = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=timeout_s
            )
        except k8s.ApiException as error:
            raise ApiStatus(error.status or 0, error.reason or "", str(error.body or error)) from None
        except urllib3.exceptions.HTTPError as error:  # connection refused or reset, timeouts
            raise ApiStatus(0, type(error).__name__, str(error)) from None
        response.read()
        text = response.data.decode() if response.data else ""
        if response.status >= 400:
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise ApiStatus(response.status, response.reason or "", message)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.path(kind, name, namespace))
        except ApiStatus as error:
            if error.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        return (self.request("GET", self.path(kind, namespace=namespace), query=query) or {}).get("items", [])

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        return self.request("POST", self.path(obj["kind"], namespace=namespace), body=obj)

    def patch(
        self,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        subresource: str | None = None,
        content_type: str = "application/merge-patch+json",
    ) -> dict[str, Any]:
        return self.request(
            "PATCH", self.path(kind, name, namespace, subresource), body=patch, content_type=content_type
        )

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.request("DELETE", self.path(kind, name, namespace))
            return True
        except ApiStatus as error:
            if error.status == 404:
                return False
            raise

    def create_or_replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """kubectl-apply-like for setup: create, or on 409 put the object over the live one."""
        try:
            return self.create(obj)
        except ApiStatus as error:
            if error.status != 409:
                raise
        meta = obj["metadata"]
        live = self.get(obj["kind"], meta["name"], meta.get("namespace"))
        assert live is not None
        replacement = {**obj, "metadata": {**meta, "resourceVersion": live["metadata"]["resourceVersion"]}}
        return self.request(
            "PUT", self.path(obj["kind"], meta["name"], meta.get("namespace")), body=replacement
        )


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll until `predicate` returns something truthy (API errors count as not yet)."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except (ApiStatus, OSError) as error:
            last = error
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval_s)


# --- what every cluster offers the tests ---------------------------------------------------------


def write_kubeconfig(path: Path, server: str, ca_pem: str, token: str, user: str) -> Path:
    """A kubeconfig file (mode 600) for one server, CA and bearer token."""
    cluster = {"server": server, "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "dsx-test", "cluster": cluster}],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "dsx-test", "context": {"cluster": "dsx-test", "user": user}}],
                "current-context": "dsx-test",
            }
        )
    )
    path.chmod(0o600)
    return path


@dataclass
class RealCluster:
    """A cluster the tests may use: admin client and kubeconfig, audit log when we run it."""

    server: str
    ca_pem: str
    admin_kubeconfig: Path
    workdir: Path
    audit_log: Path | None = None
    outage: Callable[[str, float], None] | None = field(default=None, repr=False)
    """outage("kube-apiserver" or "etcd", seconds): that process killed and restarted (own server only)."""
    admin: Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = Client.from_kubeconfig(self.admin_kubeconfig)

    def kubeconfig(self, path: Path, token: str, user: str) -> Path:
        return write_kubeconfig(path, self.server, self.ca_pem, token, user)

    def service_account_token(
        self, namespace: str = OPERATOR_NAMESPACE, name: str = OPERATOR_SERVICE_ACCOUNT
    ) -> str:
        """The token of a ServiceAccount's token Secret (v1.20's token controller creates it)."""

        def token() -> str | None:
            for secret in self.admin.list("Secret", namespace):
                annotations = secret["metadata"].get("annotations") or {}
                if (
                    secret.get("type") == "kubernetes.io/service-account-token"
                    and annotations.get("kubernetes.io/service-account.name") == name
                    and (secret.get("data") or {}).get("token")
                ):
                    return base64.b64decode(secret["data"]["token"]).decode()
            return None

        return wait_until(token, 60, f"a token Secret for ServiceAccount {namespace}/{name}")

    def service_account_kubeconfig(
        self, path: Path, namespace: str = OPERATOR_NAMESPACE, name: str = OPERATOR_SERVICE_ACCOUNT
    ) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount (the operator's by default)."""
        token = self.service_account_token(namespace, name)
        return self.kubeconfig(path, token, f"system:serviceaccount:{namespace}:{name}")

    def audit_events(self, user: str = OPERATOR_USER, since: float = 0.0) -> list[dict[str, Any]]:
        """Completed requests by `user` received at or after `since` (epoch seconds), in order."""
        if self.audit_log is None:
            raise RuntimeError("this cluster has no audit log (it was not started by the test suite)")
        events = []
        with self.audit_log.open() as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if event.get("stage") != "ResponseComplete" or event.get("user", {}).get("username") != user:
                    continue
                if _epoch(event["requestReceivedTimestamp"]) >= since:
                    events.append(event)
        return events

    def writes(self, user: str = OPERATOR_USER, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.audit_events(user, since) if e.get("verb") in WRITE_VERBS]


def _epoch(timestamp: str) -> float:
    """RFC 3339 with microseconds (audit timestamps) to epoch seconds."""
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


# --- the binaries -----------------------------------------------------------------------------


def kube_binaries() -> Path:
    """The cached kube-apiserver and kube-controller-manager, built on the first call ever."""
    cache = Path(os.environ.get("DSX_CACHE_DIR") or Path.home() / ".cache" / "dsx") / "kube" / KUBE_VERSION
    if all((cache / b).is_file() for b in ("kube-apiserver", "kube-controller-manager")) and shutil.which(
        "etcd"
    ):
        return cache
    if not shutil.which("apt-get"):
        import pytest

        pytest.skip("the real API server is built with apt-get (Debian); this machine has none")
    result = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])


# --- starting and stopping processes -------------------------------------------------------------


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child is killed if the test process dies, even by SIGKILL. SIGKILL, because a
    kube-apiserver told to stop gracefully waits for its watches, and hangs once etcd is gone."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> None:
    """A throwaway CA, a serving certificate for 127.0.0.1 signed by it, SA token signing keys."""
    (directory / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
        "subjectKeyIdentifier=hash\n"
    )
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=directory)
    _openssl("req", "-new", "-key", "ca.key", "-subj", "/CN=dsx-test-ca", "-out", "ca.csr", cwd=directory)
    _openssl(
        "x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-days", "7", "-extfile", "ca.ext",
        "-out", "ca.crt", cwd=directory,
    )  # fmt: skip
    _openssl("genrsa", "-out", "server.key", "2048", cwd=directory)
    _openssl(
        "req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr", cwd=directory
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "7", "-extfile", "server.ext", "-out", "server.crt", cwd=directory,
    )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [OPERATOR_USER]}, {"level": "None"}],
}


def remove_stale_workdirs() -> None:
    """Files of clusters whose test process was killed outright (its children died with it)."""
    for owner in Path(tempfile.gettempdir()).glob("dsx-kube-*/owner.pid"):
        try:
            os.kill(int(owner.read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(owner.parent, ignore_errors=True)
        except (ValueError, OSError):
            continue


class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, as a context manager."""

    def __init__(self, workdir: Path | None = None):
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dsx-kube-"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.cluster: RealCluster | None = None
        self.timings: dict[str, float] = {}
        self._sigterm: Any = None

    # lifecycle

    def __enter__(self) -> RealCluster:
        atexit.register(self.stop)
        self._sigterm = None
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a CI timeout, `timeout`, kill) stops the session like Ctrl-C, so fixtures
            # tear down and this cluster's files go too.
            self._sigterm = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.cluster = self.start()
        except BaseException:
            self.stop()
            raise
        return self.cluster

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)

    def start(self) -> RealCluster:
        started = time.monotonic()
        remove_stale_workdirs()
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        binaries = kube_binaries()
        self.timings["binaries_s"] = time.monotonic() - started
        pki = self.workdir / "pki"
        pki.mkdir(parents=True)
        make_pki(pki)
        admin_token = uuid.uuid4().hex
        (self.workdir / "tokens.csv").write_text(
            f'{admin_token},dsx-test-admin,dsx-test-admin,"system:masters"\n'
        )
        (self.workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        audit_log = self.workdir / "audit.log"

        etcd_port = self._start_etcd()
        api_port = self._start_apiserver(binaries / "kube-apiserver", etcd_port, audit_log)
        ca_pem = (pki / "ca.crt").read_text()
        server = f"https://127.0.0.1:{api_port}"
        admin_kubeconfig = self.workdir / "admin.kubeconfig"
        write_kubeconfig(admin_kubeconfig, server, ca_pem, admin_token, "dsx-test-admin")
        cluster = RealCluster(server, ca_pem, admin_kubeconfig, self.workdir, audit_log, self.outage)

        def ready() -> bool:
            self._alive_or_raise("kube-apiserver")  # died (its port taken late): at once, not at the timeout
            return cluster.admin.request("GET", "/readyz") == "ok"

        wait_until(
            ready,
            START_TIMEOUT_S,
            f"kube-apiserver /readyz (log: {self.workdir / 'kube-apiserver.log'})",
            interval_s=0.25,
        )
        self.timings["apiserver_ready_s"] = time.monotonic() - started
        self._start(
            "kube-controller-manager",
            [
                str(binaries / "kube-controller-manager"),
                f"--kubeconfig={admin_kubeconfig}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials",
                "--controllers=*",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--port=0",
                "--leader-elect=false",
                "--concurrent-namespace-syncs=5",
                "--namespace-sync-period=10s",
            ],
        )
        install(cluster)
        check_controllers(cluster)
        self.timings["ready_s"] = time.monotonic() - started
        return cluster

    def outage(self, name: str, seconds: float) -> None:
        """Process `name` (kube-apiserver or etcd) killed for `seconds`, then started again as before
        (same ports and data). SIGKILL, as a crash: a graceful stop waits for open watches to end.
        Without kube-apiserver, connections are refused; without etcd, requests fail or hang."""
        assert self.cluster is not None
        process = self.processes[name]
        argv = [str(a) for a in process.args]  # type: ignore[union-attr]
        process.kill()
        process.wait(timeout=30)
        time.sleep(seconds)
        self._start(name, argv)
        admin = self.cluster.admin
        wait_until(lambda: admin.request("GET", "/readyz") == "ok", START_TIMEOUT_S, "kube-apiserver back")

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        log.close()
        self.processes[name] = process
        return process

    def _alive_or_raise(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def _start_etcd(self) -> int:
        for _attempt in range(5):
            client_port, peer_port = free_port(), free_port()
            url = f"http://127.0.0.1:{client_port}"
            self._start(
                "etcd",
                [
                    "etcd",
                    "--name=dsx-test",
                    f"--data-dir={self.workdir / 'etcd'}",
                    f"--listen-client-urls={url}",
                    f"--advertise-client-urls={url}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=dsx-test=http://127.0.0.1:{peer_port}",
                    "--log-level=warn",
                    "--logger=zap",
                ],
            )
            if self._wait_for_port("etcd", client_port):
                return client_port
            shutil.rmtree(self.workdir / "etcd", ignore_errors=True)
        raise RuntimeError("etcd did not start on a free port in 5 attempts")

    def _start_apiserver(self, binary: Path, etcd_port: int, audit_log: Path) -> int:
        pki = self.workdir / "pki"
        for _attempt in range(5):
            port = free_port()
            self._start(
                "kube-apiserver",
                [
                    str(binary),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={port}",
                    "--insecure-port=0",
                    f"--cert-dir={pki}",
                    f"--tls-cert-file={pki / 'server.crt'}",
                    f"--tls-private-key-file={pki / 'server.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    f"--token-auth-file={self.workdir / 'tokens.csv'}",
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.96.0.0/24",
                    f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
                    f"--audit-log-path={audit_log}",
                    "--audit-log-format=json",
                    "--profiling=false",
                ],
            )
            if self._wait_for_port("kube-apiserver", port, timeout_s=START_TIMEOUT_S):
                return port
        raise RuntimeError("kube-apiserver did not start on a free port in 5 attempts")

    def _wait_for_port(self, name: str, port: int, timeout_s: float = 60) -> bool:
        """True once `port` accepts connections and the process still runs a moment later; False
        if it died (port taken, retry). The moment: under pytest-xdist another worker's cluster
        may take a port `free_port` handed out here, and answer on it while ours fails to bind
        (`PORT_TAKEN_CHECK_S`)."""
        deadline = time.monotonic() + timeout_s
        answered = False
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                log = (self.workdir / f"{name}.log").read_text(errors="replace")
                if "address already in use" in log:
                    return False
                self._alive_or_raise(name)
            if answered:
                return True
            with socket.socket() as s:
                s.settimeout(0.5)
                answered = s.connect_ex(("127.0.0.1", port)) == 0
            time.sleep(PORT_TAKEN_CHECK_S if answered else 0.1)
        raise TimeoutError(f"{name} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop every process this cluster started (by PID, newest first), then remove its files."""
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
            del self.processes[name]
        if self.workdir.exists() and not os.environ.get("DSX_TEST_KEEP_CLUSTER_DIR"):
            shutil.rmtree(self.workdir, ignore_errors=True)


# --- what the tests need installed, and proof that the controllers work --------------------------


def upstream_crds() -> list[dict[str, Any]]:
    """The genuine upstream CRD of every add-on kind the operator writes, as installed here: from
    $DSX_UPSTREAM_CRDS or the vendored `upstream-crds/`, without cert-manager's annotations and
    with no conversion webhook (none runs here; a v1.20 server also drops their CEL rules, which
    operators/upstream_rules.py encodes). A kind missing is a broken checkout or a wrong
    directory, not a reason to test against less."""
    root = Path(os.environ.get(UPSTREAM_CRDS_ENV) or UPSTREAM_CRDS_DIR)
    wanted = {f"{plural}.{group}" for group, _v, plural, _n in api.ADDON_KINDS.values()}
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
        for doc in yaml.safe_load_all(path.read_text()):
            crd = isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
            if crd and doc["metadata"]["name"] in wanted:
                found[doc["metadata"]["name"]] = doc
    missing = sorted(wanted - set(found))
    if missing:
        raise RuntimeError(
            f"{root}: no upstream CRD for {', '.join(missing)} (see {UPSTREAM_CRDS_DIR}/SOURCES.md)"
        )
    return [
        {
            **crd,
            "metadata": {"name": crd["metadata"]["name"]},
            "spec": {**crd["spec"], "conversion": {"strategy": "None"}},
        }
        for crd in found.values()
    ]


def manifests() -> list[dict[str, Any]]:
    """The project's CRDs, the genuine add-on CRDs, the read-only stand-ins, and the operator's
    namespace, identity and RBAC."""
    docs: list[dict[str, Any]] = [*upstream_crds()]
    for path in [*sorted(CRD_DIR.glob("*.yaml")), STANDIN_CRDS, OPERATOR_MANIFEST]:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    # The operator runs as a process of the test suite, with the Deployment's ServiceAccount. Its
    # pod-placement webhook is installed only by the tests of it (test_real_webhook.py), pointed
    # at their operator: installed here, it would refuse every other test's tenant pods. Its
    # PodDisruptionBudget is policy/v1, which v1.20 does not serve (and guards no pod here).
    skipped = ("Deployment", "ValidatingWebhookConfiguration", "PodDisruptionBudget")
    return [d for d in docs if d["kind"] not in skipped]


def install(cluster: RealCluster) -> None:
    def established(name: str) -> bool:
        crd = cluster.admin.get("CustomResourceDefinition", name) or {}
        conditions = crd.get("status", {}).get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    for doc in manifests():
        wait_until(functools.partial(cluster.admin.create_or_replace, doc), 30, f"{doc['kind']} installed")
    for doc in manifests():
        if doc["kind"] == "CustomResourceDefinition":
            name = doc["metadata"]["name"]
            wait_until(functools.partial(established, name), 60, f"CRD {name} established")
            plural = doc["spec"]["names"]["plural"]
            version = doc["spec"]["versions"][0]["name"]
            path = f"/apis/{doc['spec']['group']}/{version}/{plural}"
            wait_until(functools.partial(cluster.admin.request, "GET", path), 60, f"{path} served")


def check_controllers(cluster: RealCluster, timeout_s: float = START_TIMEOUT_S) -> None:
    """Token, quota and namespace controllers at work (the garbage collector starts with them)."""
    cluster.service_account_token()  # ServiceAccount token controller
    probe = f"dsx-probe-{uuid.uuid4().hex[:6]}"
    admin = cluster.admin
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe}})
    admin.create(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "probe", "namespace": probe},
            "spec": {"hard": {"pods": "1"}},
        }
    )
    wait_until(
        lambda: (admin.get("ResourceQuota", "probe", probe) or {}).get("status", {}).get("used"),
        timeout_s,
        "the resource quota controller to fill in usage",
    )
    admin.delete("Namespace", probe)
    wait_until(lambda: admin.get("Namespace", probe) is None, timeout_s, "the namespace controller")


@contextlib.contextmanager
def real_cluster() -> Iterator[RealCluster]:
    """The cluster for a test session: DSX_TEST_KUBECONFIG's if set, else one started here."""
    external = os.environ.get("DSX_TEST_KUBECONFIG")
    if not external:
        with LocalCluster() as cluster:
            yield cluster
        return
    workdir = Path(tempfile.mkdtemp(prefix="dsx-kube-"))
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=external, client_configuration=configuration)
    ca_pem = Path(configuration.ssl_ca_cert).read_text() if configuration.ssl_ca_cert else ""
    cluster = RealCluster(configuration.host, ca_pem, Path(external), workdir)
    install(cluster)
    try:
        yield cluster
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
