"""Kopf handlers: thin wiring from events to `operators.reconcile`.

Run with `kopf run -m operators.main --all-namespaces`. Environment:
- DSX_OPERATOR_SERVER: API server URL (tests and local runs; TLS not verified);
- DSX_RECONCILE_INTERVAL_S: how often drift is repaired and status refreshed (default 60).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from operators import reconcile
from operators.decisions.meta import GROUP, VERSION
from operators.kube import ApiError, Kube, make_api_client

INTERVAL_S = float(os.environ.get("DSX_RECONCILE_INTERVAL_S", "60"))
RETRY_DELAY_S = float(os.environ.get("DSX_RETRY_DELAY_S", "5"))
DELETE_RETRIES = 10


@functools.cache
def kube() -> Kube:
    return Kube(make_api_client())


@contextmanager
def api_errors() -> Iterator[None]:
    """409/429/5xx are retried with backoff; other API errors are not retried blindly."""
    try:
        yield
    except ApiError as error:
        if error.retriable:
            raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_S) from error
        raise kopf.PermanentError(str(error)) from error


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.networking.error_backoffs = [RETRY_DELAY_S / 5, RETRY_DELAY_S / 2, RETRY_DELAY_S]
    settings.posting.level = 30  # warnings and errors become Events, not every info line
    # A deleted Tenant waits for its drift timer to stop before the finalizer goes: check often.
    settings.background.cancellation_polling = min(5.0, INTERVAL_S)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    server = os.environ.get("DSX_OPERATOR_SERVER")
    if server:
        return kopf.ConnectionInfo(server=server, insecure=True)
    return kopf.login_via_client(**kwargs)


def _guarded(fn: Callable[[Kube, dict[str, Any]], Any]) -> Callable[..., None]:
    def handler(body: kopf.Body, **_: Any) -> None:
        with api_errors():
            fn(kube(), dict(body))

    return handler


_pool = _guarded(reconcile.reconcile_pool)
_tenant = _guarded(reconcile.reconcile_tenant)

for register in (kopf.on.create, kopf.on.update, kopf.on.resume):
    register(GROUP, VERSION, "gpunodepools", id="reconcile")(_pool)
    register(GROUP, VERSION, "tenants", id="reconcile")(_tenant)
kopf.timer(GROUP, VERSION, "gpunodepools", interval=INTERVAL_S, id="drift")(_pool)
kopf.timer(GROUP, VERSION, "tenants", interval=INTERVAL_S, id="drift")(_tenant)


@kopf.on.delete(GROUP, VERSION, "tenants", retries=DELETE_RETRIES, backoff=RETRY_DELAY_S)
def delete_tenant(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """The only finalizer: namespaces follow the deletion policy; it never blocks forever."""
    with api_errors():
        gone, kept = reconcile.finalize_tenant(kube(), dict(body))
    logger.info(f"deleted namespaces {gone or 'none'}; kept {kept or 'none'}")
