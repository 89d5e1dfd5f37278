"""The operator as it is deployed: `kopf run -m operators.main` in its own process, via kubeconfig."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from operators.kube import Kube
from tests.operators.conftest import example, wait_for
from tests.support.emulator import EmulatorThread

KOPF = Path(sys.executable).with_name("kopf")


def test_kopf_run_subprocess_reconciles_a_tenant_through_a_kubeconfig(
    emulator: EmulatorThread, kube: Kube, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emu", "cluster": {"server": emulator.url}}],
                "users": [{"name": "u", "user": {"token": "test"}}],
                "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u"}}],
                "current-context": "emu",
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSX_")}
    env.update(
        KUBECONFIG=str(kubeconfig),
        DSX_RECONCILE_INTERVAL_S="0.5",
        DSX_RETRY_DELAY_S="0.2",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    log = tmp_path / "operator.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(KOPF), "run", "-m", "operators.main", "--standalone", "--all-namespaces"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            kube.create(example("gpunodepool"))
            kube.create(example("tenant"))
            quota = wait_for(
                lambda: kube.get("ResourceQuota", "dsx-quota", "inference-cloud-batam"),
                timeout_s=30,
                what=f"quota from the subprocess operator (log: {log})",
            )
            assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4096"
        finally:
            process.terminate()
            process.wait(timeout=30)
    crashes = [line for line in log.read_text().splitlines() if line.startswith("Traceback")]
    assert crashes == [], log.read_text()[-3000:]
