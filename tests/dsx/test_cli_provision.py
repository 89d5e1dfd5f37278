"""`dsx render` prints what the program registers; `dsx stacks write` keeps hand-set keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from dsx.commands import provision
from infra.desired_state import desired_state
from planner.errors import UserError
from planner.files import write_plan
from tests.infra.plan_factory import make_plan

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app, plan_app = typer.Typer(), typer.Typer()
    app.add_typer(plan_app, name="plan")
    provision.register(app, plan_app)
    return app


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "factory.json"
    write_plan(make_plan(), path)
    return path


def test_render_prints_the_desired_state_as_multi_document_yaml(app: typer.Typer, plan_file: Path) -> None:
    result = runner.invoke(
        app, ["render", str(plan_file), "--site", "batam", "--period", "2026Q4", "--no-operator"]
    )
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert docs == desired_state(make_plan(), "batam", "2026Q4").manifests()
    assert [d["kind"] for d in docs] == ["GpuNodePool", "GpuNodePool", "Tenant", "Tenant"]
    assert result.stdout.startswith("---\n")


def test_render_json_is_a_kubectl_list(app: typer.Typer, plan_file: Path) -> None:
    args = [
        "render",
        str(plan_file),
        "--site",
        "sydney",
        "--period",
        "2026Q4",
        "--format",
        "json",
        "--no-operator",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["apiVersion"], data["kind"]) == ("v1", "List")
    assert data["items"] == desired_state(make_plan(), "sydney", "2026Q4").manifests()


def test_render_to_a_directory_writes_one_numbered_file_per_object(
    app: typer.Typer, plan_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [
        "render",
        str(plan_file),
        "--site",
        "batam",
        "--period",
        "2026Q4",
        "--no-operator",
        "-o",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir() if p.name != ".dsx-render")
    assert (out / ".dsx-render").is_file()  # what the next render here may replace
    assert names == [
        "000-gpunodepool-batam-b300-hgx.yaml",
        "001-gpunodepool-batam-gb300-nvl72.yaml",
        "002-tenant-inference-cloud.yaml",
        "003-tenant-model-builder.yaml",
    ]
    assert [yaml.safe_load((out / n).read_text()) for n in names] == desired_state(
        make_plan(), "batam", "2026Q4"
    ).manifests()


def test_render_with_the_operator_puts_its_bundle_first(app: typer.Typer, plan_file: Path) -> None:
    result = runner.invoke(app, ["render", str(plan_file), "--site", "batam", "--period", "2026Q4"])
    assert result.exit_code == 0, result.output
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds[0] == "CustomResourceDefinition" and "Deployment" in kinds
    assert kinds[-4:] == ["GpuNodePool", "GpuNodePool", "Tenant", "Tenant"]


def _render_pools_args(plan_file: Path) -> list[str]:
    """`dsx render` of the example plan's Batam pools and tenants, without the operator."""
    return ["render", str(plan_file), "--site", "batam", "--period", "2026Q4", "--no-operator"]


def _pool_specs(stdout: str) -> dict[str, dict]:
    """The rendered GpuNodePools' specs by name."""
    return {
        d["metadata"]["name"]: d["spec"] for d in yaml.safe_load_all(stdout) if d["kind"] == "GpuNodePool"
    }


def test_render_names_karpenter_instance_types_per_rack_type_and_the_block_label(
    app: typer.Typer, plan_file: Path
) -> None:
    base = _render_pools_args(plan_file)
    args = [*base, "--backend", "karpenter", "--instance-types", "gb300-nvl72=gb300-tray"]
    args += ["--instance-types", "b300-hgx=b300-8gpu", "--block-label", "network.topology.nvidia.com/spine"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pools = _pool_specs(result.stdout)
    assert pools["batam-gb300-nvl72"]["karpenter"]["instanceTypes"] == ["gb300-tray"]
    assert pools["batam-b300-hgx"]["karpenter"]["instanceTypes"] == ["b300-8gpu"]
    assert pools["batam-b300-hgx"]["topology"] == {"blockLabel": "network.topology.nvidia.com/spine"}
    shared = runner.invoke(app, [*base, "--backend", "karpenter", "--instance-types", "gpu-box"])
    assert isinstance(shared.exception, UserError)
    assert shared.exception.message.startswith("--instance-types names one instance-type list for every pool")


def test_render_refuses_an_instance_type_the_pool_schema_would_reject_naming_the_option(
    app: typer.Typer, plan_file: Path
) -> None:
    base = _render_pools_args(plan_file)
    result = runner.invoke(
        app, [*base, "--backend", "karpenter", "--instance-types", "gb300-nvl72=gb300 tray"]
    )
    assert isinstance(result.exception, UserError)
    assert result.exception.message.startswith(
        "--instance-types: instance type 'gb300 tray' is not a label value"
    )


def test_render_leaves_the_rack_level_out_of_a_single_node_nvlink_rack_types_topology(
    app: typer.Typer, plan_file: Path
) -> None:
    base = _render_pools_args(plan_file)
    result = runner.invoke(
        app, [*base, "--single-node-nvlink", "b300-hgx", "--block-label", "example.com/spine"]
    )
    assert result.exit_code == 0, result.output
    pools = _pool_specs(result.stdout)
    assert pools["batam-b300-hgx"]["topology"] == {"blockLabel": "example.com/spine", "nvlinkDomain": "node"}
    assert pools["batam-gb300-nvl72"]["topology"] == {"blockLabel": "example.com/spine"}


def test_render_for_an_unknown_site_is_a_user_error_naming_the_option(
    app: typer.Typer, plan_file: Path
) -> None:
    result = runner.invoke(
        app, ["render", str(plan_file), "--site", "jakarta", "--period", "2026Q4", "--no-operator"]
    )
    assert isinstance(result.exception, UserError)
    assert result.exception.message.startswith("--site is 'jakarta', which is not a site in ")


def test_stacks_write_creates_one_stack_file_per_site(
    app: typer.Typer, plan_file: Path, tmp_path: Path
) -> None:
    stacks = tmp_path / "stacks"
    result = runner.invoke(
        app, ["stacks", "write", str(plan_file), "--dir", str(stacks), "--period", "2026Q4"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in stacks.iterdir()) == ["Pulumi.batam.yaml", "Pulumi.sydney.yaml"]
    config = yaml.safe_load((stacks / "Pulumi.sydney.yaml").read_text())["config"]
    assert config == {
        "dsx:plan": "plans/factory.json",  # relative to the project root (the parent of --dir)
        "dsx:site": "sydney",
        "dsx:period": "2026Q4",
        "dsx:nodePoolBackend": "cluster-api",
    }
    assert "created:" in result.stdout


HAND_EDITED = """\
# Sydney: sovereign cluster, ops team owns this file.
secretsprovider: passphrase
encryptionsalt: v1:abc:def
config:
  # which kube context
  dsx:context: syd-prod  # prod!
  dsx:period: 2026Q3
  dsx:plan: plans/old.json
  dsx:kubeconfig:
    secure: v1:AAAABBBB
  dsx:cpuPerGpu: "24"
"""


def test_stacks_write_updates_plan_keys_and_keeps_hand_set_keys_and_comments(
    app: typer.Typer, plan_file: Path, tmp_path: Path
) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.sydney.yaml").write_text(HAND_EDITED)
    result = runner.invoke(app, ["stacks", "write", str(plan_file), "--dir", str(stacks)])
    assert result.exit_code == 0, result.output
    text = (stacks / "Pulumi.sydney.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["secretsprovider"] == "passphrase" and data["encryptionsalt"] == "v1:abc:def"
    assert data["config"]["dsx:kubeconfig"] == {"secure": "v1:AAAABBBB"}
    assert data["config"]["dsx:context"] == "syd-prod" and data["config"]["dsx:cpuPerGpu"] == "24"
    assert data["config"]["dsx:plan"] == "plans/factory.json"
    assert data["config"]["dsx:period"] == "2026Q3"  # no --period: the stack's own (valid) choice stays
    assert data["config"]["dsx:site"] == "sydney"
    assert "# Sydney: sovereign cluster, ops team owns this file." in text
    assert "  dsx:context: syd-prod  # prod!" in text
    assert "updated:" in result.stdout and "created:" in result.stdout


def test_stacks_write_twice_changes_nothing(app: typer.Typer, plan_file: Path, tmp_path: Path) -> None:
    stacks = tmp_path / "stacks"
    runner.invoke(app, ["stacks", "write", str(plan_file), "--dir", str(stacks)])
    before = {p.name: p.read_text() for p in stacks.iterdir()}
    result = runner.invoke(app, ["stacks", "write", str(plan_file), "--dir", str(stacks)])
    assert result.stdout.count("unchanged:") == 2
    assert {p.name: p.read_text() for p in stacks.iterdir()} == before


def test_stacks_write_replaces_a_period_outside_the_new_plan(
    app: typer.Typer, plan_file: Path, tmp_path: Path
) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text("config:\n  dsx:period: 2019Q1\n")
    runner.invoke(app, ["stacks", "write", str(plan_file), "--dir", str(stacks)])
    assert yaml.safe_load((stacks / "Pulumi.batam.yaml").read_text())["config"]["dsx:period"] == "2026Q3"


def test_stacks_write_rejects_a_period_outside_the_horizon(
    app: typer.Typer, plan_file: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["stacks", "write", str(plan_file), "--dir", str(tmp_path / "s"), "--period", "2030Q1"]
    )
    assert isinstance(result.exception, UserError)
    assert "outside the plan's horizon (2026Q3..2026Q4)" in result.exception.message
    assert not (tmp_path / "s").exists()


def test_written_stack_runs_the_program_for_its_site(
    app: typer.Typer, plan_file: Path, tmp_path: Path
) -> None:
    from tests.infra.pulumi_harness import run_program

    stacks = tmp_path / "stacks"
    runner.invoke(app, ["stacks", "write", str(plan_file), "--dir", str(stacks), "--period", "2026Q4"])
    config = {
        k: str(v) for k, v in yaml.safe_load((stacks / "Pulumi.batam.yaml").read_text())["config"].items()
    }
    config["dsx:plan"] = str(tmp_path / config["dsx:plan"])
    run = run_program({**config, "dsx:installOperator": "false"}, stack="batam")
    assert run.error is None
    assert run.outputs["gpus"] == 880


def test_render_phases_split_crds_from_the_objects_that_need_them(app: typer.Typer, plan_file: Path) -> None:
    base = ["render", str(plan_file), "--site", "batam", "--period", "2026Q4"]
    whole = list(yaml.safe_load_all(runner.invoke(app, base).stdout))
    crds = list(yaml.safe_load_all(runner.invoke(app, [*base, "--phase", "crds"]).stdout))
    objects = list(yaml.safe_load_all(runner.invoke(app, [*base, "--phase", "objects"]).stdout))
    assert {d["kind"] for d in crds} == {"CustomResourceDefinition"}
    assert "CustomResourceDefinition" not in {d["kind"] for d in objects}
    assert crds + objects == whole


def test_render_of_everything_says_how_to_apply_it_to_a_new_cluster(
    app: typer.Typer, plan_file: Path
) -> None:
    result = runner.invoke(app, ["render", str(plan_file), "--site", "batam", "--period", "2026Q4"])
    assert "--phase crds" in result.stderr and "--phase crds" not in result.stdout


def _git_project(tmp_path: Path) -> Path:
    import subprocess

    root = tmp_path / "project"
    (root / "plans").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("plans/*.json\n")
    return root


def test_stacks_write_says_when_the_plan_is_git_ignored_and_a_clone_would_lack_it(
    app: typer.Typer, tmp_path: Path
) -> None:
    root = _git_project(tmp_path)
    ignored = root / "plans" / "plan.json"
    write_plan(make_plan(), ignored)
    result = runner.invoke(
        app, ["stacks", "write", str(ignored), "--dir", str(root / "stacks"), "--period", "2026Q4"]
    )
    assert result.exit_code == 0, result.output
    assert "git-ignored" in result.stderr and "dsx plan solve" in result.stderr

    tracked = root / "examples" / "plan.json"
    write_plan(make_plan(), tracked)
    result = runner.invoke(
        app, ["stacks", "write", str(tracked), "--dir", str(root / "stacks"), "--period", "2026Q4"]
    )
    assert result.exit_code == 0, result.output
    assert "git-ignored" not in result.stderr
