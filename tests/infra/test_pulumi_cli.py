"""With the real `pulumi` CLI: `pulumi preview` of a site stack plans the objects the plan implies.

Runs in a scratch copy of the project with a local file backend, so it never touches the repo's
stacks or a Pulumi Cloud account. The cluster is `DSX_TEST_KUBECONFIG` when set, otherwise an
unreachable one: pulumi-kubernetes then previews from the inputs alone (with a warning).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.stacks import write_stacks
from planner.files import write_plan
from tests.conftest import REPO_ROOT
from tests.infra.plan_factory import make_plan

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(
        shutil.which("pulumi") is None,
        reason="pulumi CLI not installed (cannot be downloaded on this machine)",
    ),
]

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def _pulumi(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pulumi", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_pulumi_preview_of_a_site_stack_plans_its_pools_and_tenants(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "infra", project / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    spec["runtime"]["options"]["virtualenv"] = str(REPO_ROOT / ".venv")
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    write_plan(
        make_plan(("batam", "sydney", "narvik"), ("2027Q3", "2027Q4")), project / "plans" / "plan.json"
    )
    write_stacks(project / "plans" / "plan.json", project / "stacks", period="2027Q4")

    kubeconfig = os.environ.get("DSX_TEST_KUBECONFIG")
    kubeconfig_text = Path(kubeconfig).read_text() if kubeconfig else UNREACHABLE_KUBECONFIG
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "dsx-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # planner and operators from this checkout, not the shared virtualenv's install
        "PYTHONPATH": str(REPO_ROOT),
    }
    (tmp_path / "state").mkdir()
    for args in (
        ("stack", "init", "batam"),
        ("config", "set", "--secret", "dsx:kubeconfig", kubeconfig_text, "--stack", "batam"),
    ):
        done = _pulumi(project, env, *args)
        assert done.returncode == 0, done.stderr
    preview = _pulumi(project, env, "preview", "--stack", "batam", "--non-interactive", "--json")
    assert preview.returncode == 0, preview.stderr + preview.stdout
    steps = json.loads(preview.stdout)["steps"]
    created = [s["urn"].rsplit("::", 2)[-2].rsplit("$", 1)[-1] for s in steps if s["op"] == "create"]
    assert created.count("kubernetes:dsx.ai/v1alpha1:GpuNodePool") == 2
    assert created.count("kubernetes:dsx.ai/v1alpha1:Tenant") == 2
    assert "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition" in created
