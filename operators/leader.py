"""Leader election on a coordination.k8s.io Lease, so a second replica is safe.

A replica works only while it holds the Lease. A standby waits in Kopf's startup (so it
watches and writes nothing at all). The holder renews every `renew_s` (sooner after a failed
renewal); the Lease is written with its resourceVersion as a precondition, so two replicas can
never both take it.
If renewals fail (an API outage), the holder stops acting once its lease may have expired but
does not exit; it renews when the API returns. It exits only when it sees another replica
holding the Lease, so that it restarts as a standby.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from operators.kube import ApiError, Kube

log = logging.getLogger("dsx.operator.leader")
LEASE_NAME = "dsx-operator"
RETRIES_PER_RENEWAL = 5
"""After a failed renewal the next comes after `renew_s` / this (`LeaderElector.renew_wait_s`)."""


def _micro(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(value, fmt).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None


def may_take(lease: dict[str, Any], me: str, now: datetime.datetime) -> bool:
    """Pure: whether `me` may write itself as holder (it holds it, or the holder's time ran out)."""
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if not holder or holder == me:
        return True
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or 0)
    return renewed is None or now > renewed + datetime.timedelta(seconds=duration)


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str | None = None,
        duration_s: float = 15.0,
        renew_s: float = 5.0,
        on_lost: Callable[[], None] | None = None,
    ):
        self.kube, self.namespace = kube, namespace
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.duration_s, self.renew_s = duration_s, renew_s
        self.on_lost = on_lost
        self._valid_until = 0.0
        self._was_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    def try_once(self) -> bool:
        """One attempt to take or renew the Lease; True when this replica holds it now."""
        started = time.monotonic()
        now = datetime.datetime.now(datetime.UTC)
        lease = self.kube.get("Lease", LEASE_NAME, self.namespace)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration_s),
            "renewTime": _micro(now),
        }
        try:
            if lease is None:
                spec["acquireTime"] = _micro(now)
                self.kube.create(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
                        "spec": {**spec, "leaseTransitions": 0},
                    }
                )
            elif may_take(lease, self.identity, now):
                old = lease.get("spec") or {}
                if old.get("holderIdentity") != self.identity:
                    spec["acquireTime"] = _micro(now)
                    spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + 1
                self.kube.patch(
                    "Lease",
                    LEASE_NAME,
                    {"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]}, "spec": spec},
                    self.namespace,
                )
            else:
                if self._was_leader:
                    log.error(
                        "another replica (%s) holds the lease",
                        (lease.get("spec") or {}).get("holderIdentity"),
                    )
                    self._valid_until = 0.0
                    if self.on_lost:
                        self.on_lost()
                return False
        except ApiError as error:
            if error.status == 409:
                return False  # another replica wrote first
            raise
        # act only for the lease duration minus a margin, counted from before the request
        self._valid_until = started + self.duration_s * 0.8
        if not self._was_leader:
            log.info("leading as %s", self.identity)
        self._was_leader = True
        return True

    def _renewed(self) -> bool:
        """`try_once`, an API error logged and counted as not renewed."""
        try:
            return self.try_once()
        except ApiError as error:
            log.warning("lease %s/%s: %s", self.namespace, LEASE_NAME, error)
            return False

    def _attempt(self) -> bool:
        return self._renewed() or self.is_leader()

    def wait_until_leader(self, stopped: Callable[[], bool] = lambda: False) -> bool:
        while not stopped():
            if self._attempt():
                return True
            time.sleep(self.renew_s)
        return False

    def renew_wait_s(self, renewed: bool) -> float:
        """Seconds to the next renewal: `renew_s`, or a fifth of it after a failed one. At every
        `renew_s`, two failed renewals in a row (an API answering 5xx) cost the lease; at 30%
        injected errors the test operator lost it for seconds at a time and its deletions were
        refused meanwhile. Retried sooner, as client-go retries within its renew deadline, a
        transient error rarely costs it."""
        return self.renew_s if renewed else self.renew_s / RETRIES_PER_RENEWAL

    def start_renewing(self) -> None:
        def run() -> None:
            wait = self.renew_s
            while not self._stop.wait(wait):
                wait = self.renew_wait_s(self._renewed())

        self._thread = threading.Thread(target=run, name="dsx-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


class StandbyHealth:
    """Answers /healthz while a standby waits for the lease (Kopf's own liveness endpoint starts
    only once startup is over), so the kubelet does not restart a healthy standby."""

    def __init__(self, port: int):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"standby")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="standby-health", daemon=True)

    def __enter__(self) -> StandbyHealth:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
