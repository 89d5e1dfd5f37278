"""Kopf handlers: thin wiring from events to `operators.reconcile`.

Run with `kopf run -m operators.main --all-namespaces --standalone`. Environment:
- DSX_OPERATOR_SERVER: API server URL (tests and local runs), with DSX_OPERATOR_TOKEN as its
  bearer token and DSX_OPERATOR_CA_FILE as its CA if set (TLS is not verified without one);
- DSX_RECONCILE_INTERVAL_S: how often drift is checked and status refreshed (default 60);
- DSX_RETRY_DELAY_S: first delay before a failed pass is tried again (default 5, doubling);
- DSX_LEADER_ELECTION: "false" to run without the Lease (tests of a single replica);
- DSX_WEBHOOK_PORT: serve the pod-placement admission webhook on this port (`operators/webhook.py`;
  every replica, the standby too, from its start);
- the rest in `operators/config.py` (protected namespaces, allowed system subjects) and
  `operators/kube.py` (per-request retries).
"""

from __future__ import annotations

import functools
import os
import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from operators import config as operator_config
from operators import reconcile, webhook
from operators.api import (
    ADDON_KINDS,
    FINALIZER,
    GROUP,
    POOL_KIND,
    POOL_PLURAL,
    TENANT_KIND,
    TENANT_PLURAL,
    VERSION,
)
from operators.decisions.meta import MANAGED_BY, owner_label_key
from operators.kube import ApiError, Kube, RetryPolicy, make_api_client
from operators.leader import LeaderElector, StandbyHealth

INTERVAL_S = float(os.environ.get("DSX_RECONCILE_INTERVAL_S", "60"))
RETRY_DELAY_S = float(os.environ.get("DSX_RETRY_DELAY_S", "5"))
MAX_RETRY_DELAY_S = 300.0


class Backoffs:
    """Kopf's API retries, never exhausted: exponential with jitter up to a minute, forever.
    (A finite list makes Kopf give up on the watch, and the process exit, after an outage.)"""

    def __iter__(self) -> Iterator[float]:
        delay = 1.0
        while True:
            yield random.uniform(delay / 2, delay)
            delay = min(delay * 2, 60.0)


@functools.cache
def kube() -> Kube:
    return Kube(make_api_client(), RetryPolicy.from_environment())


@functools.cache
def webhook_kube() -> Kube:
    """The webhook's own client: a few quick retries, inside the API server's 10 s timeout."""
    return Kube(make_api_client(), RetryPolicy(attempts=3, base_s=0.1, cap_s=1.0))


@functools.cache
def config() -> operator_config.OperatorConfig:
    return operator_config.from_environment()


_leader: LeaderElector | None = None


def leading() -> bool:
    return _leader is None or _leader.is_leader()


def _retry_delay(retry: int) -> float:
    """Exponential backoff with jitter for a failed pass: the next try after this many seconds."""
    ceiling = min(MAX_RETRY_DELAY_S, RETRY_DELAY_S * 2 ** min(retry, 10))
    return random.uniform(ceiling / 2, ceiling)


@contextmanager
def api_errors(retry: int) -> Iterator[None]:
    """API failures left after the per-request retries: try the pass again later (never a
    permanent failure: the cause is the cluster, not the spec, which gets a condition instead)."""
    try:
        yield
    except ApiError as error:
        delay = error.retry_after_s if error.retry_after_s else _retry_delay(retry)
        raise kopf.TemporaryError(str(error), delay=delay) from error


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    global _leader
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.networking.error_backoffs = Backoffs()
    settings.networking.enforce_retry_after = True
    settings.posting.level = 30  # warnings and errors become Events, not every info line
    # A deleted Tenant waits for its drift timer to stop before the finalizer goes: check often.
    settings.background.cancellation_polling = min(5.0, INTERVAL_S)
    settings.watching.server_timeout = 300
    if os.environ.get("DSX_WORKERS"):  # threads for the synchronous handlers (Kopf: CPUs + 4)
        settings.execution.max_workers = int(os.environ["DSX_WORKERS"])
    # Before the lease: a standby must answer the API server's admission calls too.
    webhook.start(webhook_kube, config())
    if os.environ.get("DSX_LEADER_ELECTION", "true").lower() != "false":
        _leader = LeaderElector(
            kube(),
            config().operator_namespace,
            duration_s=float(os.environ.get("DSX_LEASE_DURATION_S", "15")),
            renew_s=float(os.environ.get("DSX_LEASE_RENEW_S", "5")),
            on_lost=lambda: os.kill(os.getpid(), signal.SIGTERM),
        )
        logger.info(f"waiting for the lease {config().operator_namespace}/dsx-operator")
        port = os.environ.get("DSX_STANDBY_HEALTH_PORT")
        if port:
            with StandbyHealth(int(port)):
                _leader.wait_until_leader()
        else:
            _leader.wait_until_leader()
        _leader.start_renewing()


@kopf.on.cleanup()
def stop_leading(**_: Any) -> None:
    if _leader is not None:
        _leader.stop()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    server = os.environ.get("DSX_OPERATOR_SERVER")
    if server:
        token = os.environ.get("DSX_OPERATOR_TOKEN") or None
        ca_file = os.environ.get("DSX_OPERATOR_CA_FILE") or None
        return kopf.ConnectionInfo(
            server=server,
            insecure=ca_file is None,
            ca_path=ca_file,
            token=token,
            scheme="Bearer" if token else None,
        )
    return kopf.login_via_client(**kwargs)


def _guarded(
    fn: Callable[[Kube, operator_config.OperatorConfig, dict[str, Any]], Any],
) -> Callable[..., None]:
    def handler(body: kopf.Body, retry: int = 0, **_: Any) -> None:
        if not leading():
            return  # lease uncertain (API outage): act again once it is renewed
        with api_errors(retry):
            fn(kube(), config(), dict(body))

    return handler


_pool = _guarded(reconcile.reconcile_pool)
_tenant = _guarded(reconcile.reconcile_tenant)

for register in (kopf.on.create, kopf.on.update, kopf.on.resume):
    register(GROUP, VERSION, POOL_PLURAL, id="reconcile")(_pool)
    register(GROUP, VERSION, TENANT_PLURAL, id="reconcile")(_tenant)
kopf.timer(GROUP, VERSION, POOL_PLURAL, interval=INTERVAL_S, id="drift")(_pool)
kopf.timer(GROUP, VERSION, TENANT_PLURAL, interval=INTERVAL_S, id="drift")(_tenant)


# -- children watched: drift repaired within seconds, not an interval -----------------------------
def _child_event(owner_kind: str, kind: str) -> Callable[..., None]:
    label = owner_label_key(owner_kind)

    def on_child(body: kopf.Body, type: str | None, **_: Any) -> None:
        if type is None or not leading():
            return  # the initial listing: the resume handlers cover it
        owner = (body.get("metadata", {}).get("labels") or {}).get(label)
        if not owner or kube().is_echo(kind, dict(body)):
            return  # an echo of the operator's own write
        try:
            fn = reconcile.reconcile_tenant if owner_kind == TENANT_KIND else reconcile.reconcile_pool
            fn(kube(), config(), {"metadata": {"name": owner}})
        except ApiError:
            pass  # the owner's timer repairs it

    return on_child


_TENANT_CHILDREN = {
    "ResourceQuota": ("", "v1", "resourcequotas"),
    "LimitRange": ("", "v1", "limitranges"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
    "Namespace": ("", "v1", "namespaces"),
}
_POOL_CHILDREN = {kind: ADDON_KINDS[kind][:3] for kind in ("MachineDeployment", "NodePool")}
for _kind, (_group, _version, _plural) in _TENANT_CHILDREN.items():
    kopf.on.event(_group, _version, _plural, labels=MANAGED_BY, id=f"watch-{_plural}")(
        _child_event(TENANT_KIND, _kind)
    )
if os.environ.get("DSX_WATCH_POOL_CHILDREN", "true").lower() != "false":
    for _kind, (_group, _version, _plural) in _POOL_CHILDREN.items():
        kopf.on.event(_group, _version, _plural, labels=MANAGED_BY, id=f"watch-{_plural}")(
            _child_event(POOL_KIND, _kind)
        )


@kopf.on.delete(GROUP, VERSION, TENANT_PLURAL, retries=None)
def delete_tenant(body: kopf.Body, logger: kopf.Logger, retry: int, **_: Any) -> None:
    """The only finalizer. It stays until the policy is applied and the GPUs are returned; while
    something fails, the Tenant says why (DeletionBlocked) and the pass is tried again."""
    if not leading():
        raise kopf.TemporaryError("not holding the lease", delay=_retry_delay(retry))
    try:
        gone, kept = reconcile.finalize_tenant(kube(), config(), dict(body))
    except ApiError as error:
        reconcile.report_blocked_deletion(kube(), dict(body), error)
        raise kopf.TemporaryError(f"deletion blocked: {error}", delay=_retry_delay(retry)) from error
    logger.info(f"deleted namespaces {gone or 'none'}; kept {kept or 'none'}")
