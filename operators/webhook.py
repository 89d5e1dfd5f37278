"""The pod-placement admission webhook: thin I/O around `decisions.placement`.

Every replica serves it, the standby too, from its start: Kopf starts its own admission server
(`@kopf.on.validate`) only after the startup handlers, and a standby stays in them until it leads
(`main.configure`), so a Kopf-served webhook would answer on the leader alone while the Service
sends half the API server's calls to the standby, which `failurePolicy: Fail` turns into refused
pods. So the server here is Kopf's `WebhookServer` (aiohttp, TLS) in a thread of its own, started
before the leader election, and the handler a plain function of the AdmissionReview.

TLS: each replica makes its own CA and serving certificate at start (`cryptography`, EC P-256,
keys in memory and in files under $TMPDIR that only the process reads), for the Service's DNS
names, and adds its CA to the `caBundle` of the shipped ValidatingWebhookConfiguration (a
conditional replace on its resourceVersion; RBAC: get and update of that one object). CAs of
replicas whose pods are gone, and expired ones, are dropped at the same time; the bundle is
checked again every `CA_CHECK_INTERVAL_S` (a re-installed configuration gets the CAs back).

Environment: DSX_WEBHOOK_PORT turns it on (the Deployment: 9443); DSX_WEBHOOK_CONFIGURATION,
DSX_WEBHOOK_SERVICE name the configuration and the Service (defaults below); DSX_WEBHOOK_EXTRA_SANS
adds names or addresses to the certificate (tests call it at 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from operators.api import POOL_KIND, TENANT_KIND, TENANT_LABEL
from operators.config import OperatorConfig
from operators.decisions import placement
from operators.decisions.ownership import is_protected
from operators.kube import ApiError, Kube

log = logging.getLogger("dsx.operator.webhook")

DEFAULT_CONFIGURATION = "dsx-operator-pod-placement"
DEFAULT_SERVICE = "dsx-operator-webhook"
CA_NAME_PREFIX = "dsx-operator webhook CA "
"""A replica's CA is named after its pod (HOSTNAME), so a restarted container replaces its own
CA and the CAs of pods that are gone can be dropped."""
CA_IDENTITY_URI = "urn:dsx.ai:webhook-ca:"
"""A replica's CA names its pod in a SAN URI, untruncated, so every replica compares the whole
pod name with its list of live pods."""
CERT_VALIDITY = datetime.timedelta(days=3650)
"""Made anew at every start and never written anywhere but the process's own files: a replica
lives far shorter. An expired CA is dropped from the bundle by the next replica that writes it."""
CA_CHECK_INTERVAL_S = 60.0
POD_LABELS = {"app.kubernetes.io/name": "dsx-operator"}
IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class Certificates:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_certificates(identity: str, hosts: list[str], now: datetime.datetime | None = None) -> Certificates:
    """A CA named after `identity` and a serving certificate it signs for `hosts` (DNS names or
    IP addresses), both valid `CERT_VALIDITY`."""
    now = now or datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    # a CN holds 64 characters: the name is for people, the identity is the whole one in a URI
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (CA_NAME_PREFIX + identity)[:64])])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(CA_IDENTITY_URI + identity)]),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Certificates(
        ca.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _ca_identity(cert: x509.Certificate) -> str | None:
    """The replica (pod name) that made this CA, whole, from its URI; from its CN for a CA a
    replica made before the URI existed (cut at 64 characters: a long name then matches no pod,
    and the CA goes as a gone replica's would); None for a CA no replica made."""
    try:
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for uri in uris.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(CA_IDENTITY_URI):
                return uri[len(CA_IDENTITY_URI) :]
    except x509.ExtensionNotFound:
        pass
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    value = value.decode() if isinstance(value, bytes) else value
    return value[len(CA_NAME_PREFIX) :] if value.startswith(CA_NAME_PREFIX) else None


def merged_bundle(
    current_b64: str | None,
    mine_pem: bytes,
    identity: str,
    live_identities: set[str] | None,
    now: datetime.datetime | None = None,
) -> str:
    """The caBundle (base64 of concatenated PEM) holding this replica's CA and the other
    replicas' still-valid ones: an earlier CA of the same identity goes (a restarted container),
    and, when `live_identities` (the operator's pods) is known, so does the CA of a pod that is
    gone. CAs not made by a replica (a site's own) are kept."""
    now = now or datetime.datetime.now(datetime.UTC)
    kept: list[bytes] = []
    try:
        current = base64.b64decode(current_b64 or "")
        certs = x509.load_pem_x509_certificates(current) if current.strip() else []
    except ValueError:
        certs = []  # unreadable: replaced by what this replica knows to be right
    for cert in certs:
        who = _ca_identity(cert)
        if cert.not_valid_after_utc <= now:
            continue
        if who is not None and (
            who == identity or (live_identities is not None and who not in live_identities)
        ):
            continue
        kept.append(cert.public_bytes(serialization.Encoding.PEM))
    return base64.b64encode(b"".join([*kept, mine_pem])).decode("ascii")


@dataclass
class WebhookSettings:
    port: int
    configuration: str
    service: str
    namespace: str
    identity: str
    extra_sans: tuple[str, ...]

    @property
    def hosts(self) -> list[str]:
        base = f"{self.service}.{self.namespace}.svc"
        return [base, f"{base}.cluster.local", *self.extra_sans]

    @classmethod
    def from_environment(cls, operator_namespace: str) -> WebhookSettings | None:
        port = os.environ.get("DSX_WEBHOOK_PORT")
        if not port:
            return None
        return cls(
            port=int(port),
            configuration=os.environ.get("DSX_WEBHOOK_CONFIGURATION") or DEFAULT_CONFIGURATION,
            service=os.environ.get("DSX_WEBHOOK_SERVICE") or DEFAULT_SERVICE,
            namespace=operator_namespace,
            identity=os.environ.get("HOSTNAME") or "local",
            extra_sans=tuple(
                s.strip() for s in os.environ.get("DSX_WEBHOOK_EXTRA_SANS", "").split(",") if s.strip()
            ),
        )


# -- the handler -------------------------------------------------------------------------------
def judge(kube: Kube, config: OperatorConfig, review_obj: dict[str, Any]) -> dict[str, Any]:
    """One AdmissionReview in, its answer out. A namespace the operator never gives a tenant is
    left alone; an API error while looking the tenant up refuses the pod (fail closed)."""
    request = review_obj.get("request") or {}
    namespace = request.get("namespace") or ""
    if not namespace or is_protected(namespace, config.protected):
        return placement.admission_response(review_obj, [])
    try:
        grants, taint_keys = _lookup(kube, namespace)
    except ApiError as error:
        log.warning("pod placement in %s not checked, refused: %s", namespace, error)
        return placement.admission_response(
            review_obj, [f"the pod's tenant and pools could not be read ({error}); try again"]
        )
    problems = placement.review(request, grants, taint_keys)
    if problems:
        name = (request.get("object") or {}).get("metadata", {}).get("name") or request.get("name") or ""
        log.info("refused pod %s/%s: %s", namespace, name, "; ".join(problems))
    return placement.admission_response(review_obj, problems)


def _lookup(kube: Kube, namespace: str) -> tuple[placement.Grants, frozenset[str]]:
    ns = kube.get("Namespace", namespace)
    tenant_name = ((ns or {}).get("metadata", {}).get("labels") or {}).get(TENANT_LABEL)
    tenant = kube.get(TENANT_KIND, tenant_name) if tenant_name else None
    taint_keys = placement.gpu_taint_keys(kube.list(POOL_KIND))
    return placement.grants_for(ns or {"metadata": {"name": namespace}}, tenant), taint_keys


# -- the CA bundle -----------------------------------------------------------------------------
def publish_ca(kube: Kube, settings: WebhookSettings, ca_pem: bytes) -> bool:
    """Put this replica's CA into every webhook of the configuration (dropping stale ones);
    True when it is there. Conflicts are read again; a missing configuration is logged."""
    for _attempt in range(5):
        current = kube.get("ValidatingWebhookConfiguration", settings.configuration)
        if current is None:
            log.warning(
                "ValidatingWebhookConfiguration %s not found: tenant pods are not checked by this replica "
                "until it is installed (operators/manifests/deploy/operator.yaml)",
                settings.configuration,
            )
            return False
        # Listed after the read: a replica whose CA is in what was read has its pod listed too.
        live = _live_replicas(kube, settings.namespace)
        changed = False
        for hook in current.get("webhooks") or []:
            client = hook.setdefault("clientConfig", {})
            bundle = merged_bundle(client.get("caBundle"), ca_pem, settings.identity, live)
            if _pems(bundle) != _pems(client.get("caBundle")):
                client["caBundle"] = bundle
                changed = True
        if not changed:
            return True
        try:
            kube.replace(current)
            log.info("CA of %s added to %s", settings.identity, settings.configuration)
            return True
        except ApiError as error:
            if error.status != 409:
                raise
    return False


def _live_replicas(kube: Kube, namespace: str) -> set[str] | None:
    """The operator's pods, by name; None out of the cluster or when they cannot be listed (then
    no other replica's CA is dropped for its pod being gone)."""
    if not IN_CLUSTER.exists():
        return None
    try:
        return {p["metadata"]["name"] for p in kube.list("Pod", namespace=namespace, labels=POD_LABELS)}
    except ApiError as error:
        log.warning("cannot list the operator's pods (%s): stale webhook CAs are kept", error)
        return None


def _pems(bundle_b64: str | None) -> set[bytes]:
    try:
        return {
            c.public_bytes(serialization.Encoding.PEM)
            for c in x509.load_pem_x509_certificates(base64.b64decode(bundle_b64 or ""))
        }
    except ValueError:
        return set()


# -- the server --------------------------------------------------------------------------------
class WebhookThread(threading.Thread):
    """Kopf's TLS webhook server on its own event loop, and the CA bundle kept up to date."""

    def __init__(self, kube: Kube, config: OperatorConfig, settings: WebhookSettings):
        super().__init__(name="dsx-webhook", daemon=True)
        self.kube, self.config, self.settings = kube, config, settings
        self.certificates = make_certificates(settings.identity, settings.hosts)
        self.directory = Path(tempfile.mkdtemp(prefix="dsx-webhook-"))
        self.certfile, self.keyfile = self.directory / "tls.crt", self.directory / "tls.key"
        for path, data in (
            (self.certfile, self.certificates.cert_pem),
            (self.keyfile, self.certificates.key_pem),
        ):
            path.touch(mode=0o600)
            path.write_bytes(data)
        self.serving = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def run(self) -> None:
        try:
            with contextlib.suppress(asyncio.CancelledError):
                asyncio.run(self._main())
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the port and end the thread (the process's exit does as much)."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self.join(timeout_s)

    async def _main(self) -> None:
        import kopf  # the operator's framework; imported here so decisions never need it

        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        try:
            await asyncio.to_thread(publish_ca, self.kube, self.settings, self.certificates.ca_pem)
        except ApiError as error:
            log.warning(
                "webhook CA not published yet (%s); retrying every %.0f s", error, CA_CHECK_INTERVAL_S
            )
        server = kopf.WebhookServer(
            addr="0.0.0.0",
            port=self.settings.port,
            certfile=str(self.certfile),
            pkeyfile=str(self.keyfile),
            cadata=self.certificates.ca_pem,
        )
        keeper = asyncio.create_task(self._keep_ca())
        try:
            async with server as serve:
                async for _client_config in serve(self._serve):
                    self.serving.set()
                    log.info("pod-placement webhook serving on port %d", self.settings.port)
        finally:
            keeper.cancel()

    async def _serve(self, request: Any, **_: Any) -> Any:
        review_obj = dict(request)
        try:
            return await asyncio.to_thread(judge, self.kube, self.config, review_obj)
        except Exception as error:  # whatever went wrong, the pod is refused, and said why
            log.exception("pod placement not checked, refused")
            return placement.admission_response(
                review_obj, [f"the webhook failed ({type(error).__name__}): refused rather than unchecked"]
            )

    async def _keep_ca(self) -> None:
        while True:
            await asyncio.sleep(CA_CHECK_INTERVAL_S)
            try:
                await asyncio.to_thread(publish_ca, self.kube, self.settings, self.certificates.ca_pem)
            except ApiError as error:
                log.warning("webhook CA not checked (%s)", error)


def start(
    make_kube: Callable[[], Kube], config: OperatorConfig, timeout_s: float = 30.0
) -> WebhookThread | None:
    """Start serving if DSX_WEBHOOK_PORT is set (no client is made otherwise); returns once the
    port listens, or stops the operator if it cannot."""
    settings = WebhookSettings.from_environment(config.operator_namespace)
    if settings is None:
        return None
    thread = WebhookThread(make_kube(), config, settings)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not thread.serving.wait(0.1):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit(f"the pod-placement webhook did not start on port {settings.port}")
    return thread
