"""The operator as it is deployed: `kopf run -m operators.main` in its own process, via kubeconfig.

Against the real API server it runs with the kubeconfig of its own ServiceAccount, so every
request is authorised by the shipped ClusterRole. `start()` returns once Kopf's liveness endpoint
answers; `stop()` ends the process it started, by PID.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.support.real_cluster import die_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]
KOPF = Path(sys.executable).with_name("kopf")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LEASE_S = 6.0
"""The Lease's duration for test operators (production: 15 s, renewed every 5 s). A stopped operator
does not give its Lease back, so the next one started on the session's server (a restart, the next
module's, the next outage test's) waits for it to run out: about 10 s at every start with the
production figures, under 6 s with these. Renewed every sixth of it, so a renewal can fail four
times before its 80 % validity ends."""


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        interval_s: float = 1.0,
        retry_delay_s: float = 0.5,
        lease_s: float = LEASE_S,
    ):
        self.kubeconfig, self.log = kubeconfig, log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DSX_") and k != "KUBECONFIG"}
        self.env.update(
            KUBECONFIG=str(kubeconfig),
            DSX_RECONCILE_INTERVAL_S=str(interval_s),
            DSX_RETRY_DELAY_S=str(retry_delay_s),
            DSX_LEASE_DURATION_S=str(lease_s),
            DSX_LEASE_RENEW_S=str(lease_s / 6),
            # This checkout's operator, not whichever one the shared virtualenv has installed
            # (the `kopf` script's own directory comes first on its path, not the cwd).
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.first_started_at: float | None = None
        """Epoch seconds of the first start: audit events of this operator's life are after it."""

    def start(self, timeout_s: float = 60) -> None:
        assert self.process is None, "already running"
        port = _free_port()
        if self.first_started_at is None:
            self.first_started_at = time.time()
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [
                    str(KOPF),
                    "run",
                    "-m",
                    "operators.main",
                    "--standalone",
                    "--all-namespaces",
                    f"--liveness=http://127.0.0.1:{port}/healthz",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the operator exited with {self.process.returncode}:\n{self.output()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the operator was not live within {timeout_s} s:\n{self.output()[-3000:]}"
                )
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM (Kopf's graceful stop), SIGKILL if it lingers; returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=timeout_s)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> OperatorProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(timeout_s=10)
