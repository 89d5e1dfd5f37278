"""`dsx stacks write` against the project around it: where `dsx:plan` points from, a run that
fails part-way, the stack's own settings, its comments, links and line endings."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from planner.files import write_plan
from tests.conftest import REPO_ROOT
from tests.dsx.harness import assert_one_clear_error, dsx, tree
from tests.infra.plan_factory import make_plan
from tests.infra.pulumi_harness import run_program

SITES = ("batam", "sydney", "narvik")


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "plan.json"
    write_plan(make_plan(SITES), path)
    return path


def _config(path: Path) -> dict[str, object]:
    return yaml.safe_load(path.read_text())["config"]


def _contents(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry's bytes and mode: equal after a failed run means nothing was left changed,
    even where a file was put back (a restored file has a new modification time)."""
    return {
        p.name: (p.read_bytes() if p.is_file() else b"", stat.S_IMODE(p.lstat().st_mode))
        for p in sorted(directory.iterdir())
    }


# dsx:plan is relative to the directory holding Pulumi.yaml -----------------------------------


@pytest.mark.parametrize("stacks", ["deploy/stacks", "stacks"])
def test_dsx_plan_names_the_plan_from_the_directory_holding_pulumi_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stacks: str
) -> None:
    # --dir deploy/stacks wrote `plans/p.json`, which the program read as project/plans/p.json.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    write_plan(make_plan(), project / "deploy" / "plans" / "p.json")
    monkeypatch.chdir(project)
    outcome = dsx("stacks", "write", "deploy/plans/p.json", "--dir", stacks, "--period", "2026Q4")
    assert outcome.code == 0, outcome.text
    config = _config(project / stacks / "Pulumi.batam.yaml")
    assert config["dsx:plan"] == "deploy/plans/p.json"
    assert "note:" not in outcome.stderr
    # The program, run from the project, finds that plan: dsx:plan is used as written.
    run = run_program({k: str(v) for k, v in config.items()} | {"dsx:installOperator": "false"})
    assert run.error is None, run.error
    assert run.outputs["gpus"] == 880


def test_without_pulumi_yaml_the_plan_is_named_from_the_stacks_parent_and_the_user_is_told(
    tmp_path: Path, plan_file: Path
) -> None:
    outcome = dsx("stacks", "write", plan_file, "--dir", tmp_path / "deploy" / "stacks")
    assert outcome.code == 0, outcome.text
    assert _config(tmp_path / "deploy" / "stacks" / "Pulumi.batam.yaml")["dsx:plan"] == str(plan_file)
    assert f"no Pulumi.yaml at or above {tmp_path / 'deploy' / 'stacks'}" in outcome.stderr
    assert "stackConfigDir: stacks" in outcome.stderr


def test_an_empty_dir_option_is_refused_not_taken_for_the_current_directory(
    tmp_path: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--dir ''` wrote every stack file into the current directory.
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", "")
    assert_one_clear_error(outcome, names=("--dir ''", "--dir stacks"))
    assert tree(tmp_path) == before


# all stacks or none ---------------------------------------------------------------------------


@pytest.fixture
def written(tmp_path: Path, plan_file: Path) -> Path:
    """Three stack files at 2026Q3."""
    stacks = tmp_path / "stacks"
    assert dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q3").code == 0
    return stacks


@pytest.fixture
def immutable(written: Path) -> Iterator[Path]:
    """narvik's stack file with the immutable flag set (as root, on a file system that has it)."""
    path = written / "Pulumi.narvik.yaml"
    if (
        shutil.which("chattr") is None
        or subprocess.run(["chattr", "+i", path], capture_output=True).returncode
    ):
        pytest.skip("chattr +i is not available here (needs root and a file system with the flag)")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


def test_a_stack_file_that_cannot_be_written_is_refused_before_any_stack_changes(
    written: Path, plan_file: Path, immutable: Path
) -> None:
    # batam and sydney moved to 2026Q4, narvik stayed, and the error named `.Pulumi.narvik.yaml.….tmp`.
    before = tree(written)
    outcome = dsx("stacks", "write", plan_file, "--dir", written, "--period", "2026Q4")
    assert_one_clear_error(outcome, names=(f"{immutable}: the file is not writable", "chattr -i"))
    assert ".tmp" not in outcome.stderr
    assert tree(written) == before


def _narvik_disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moving a finished Pulumi.narvik.yaml into place fails, as on a full disk."""
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "Pulumi.narvik.yaml":
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_a_move_that_fails_puts_back_the_stacks_already_written(
    written: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _narvik_disk_full(monkeypatch)
    before = _contents(written)
    outcome = dsx("stacks", "write", plan_file, "--dir", written, "--period", "2026Q4")
    assert_one_clear_error(
        outcome, names=(f"{written / 'Pulumi.narvik.yaml'}: cannot be written (No space left on device)",)
    )
    assert "no stack file was changed" in outcome.stderr and ".tmp" not in outcome.stderr
    assert _contents(written) == before  # batam and sydney put back; no temporary file left


def test_a_failed_first_write_leaves_no_new_directory_behind(
    tmp_path: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _narvik_disk_full(monkeypatch)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", tmp_path / "new" / "stacks")
    assert_one_clear_error(outcome, names=("Pulumi.narvik.yaml: cannot be written",))
    assert tree(tmp_path) == before


# the stack's own settings ------------------------------------------------------------------------


def _long_tenant_plan(tmp_path: Path) -> Path:
    """A plan whose 38-character tenant at a 25-character site has a 64-character namespace
    under tenant-site (`<tenant>-<site>`), but a 38-character one under tenant."""
    data = json.loads(make_plan(("batam", "sydney-harbour-east-zone1")).model_dump_json())
    long_id = "t" * 38
    for tenant in data["tenants"]:
        if tenant["id"] == "inference-cloud":
            tenant["id"] = long_id
    for quota in data["quotas"]:
        if quota["tenant"] == "inference-cloud":
            quota["tenant"] = long_id
    path = tmp_path / "plans" / "long.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_a_stack_s_own_namespace_style_decides_which_names_are_too_long(tmp_path: Path) -> None:
    # With dsx:namespaceStyle tenant-site in the file, the plan was written as "updated", though
    # `pulumi up` and `dsx render --namespace-style tenant-site` refuse it.
    plan = _long_tenant_plan(tmp_path)
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    site_file = stacks / "Pulumi.sydney-harbour-east-zone1.yaml"
    site_file.write_text("config:\n  dsx:namespaceStyle: tenant-site\n")
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan, "--dir", stacks, "--period", "2026Q4")
    assert_one_clear_error(
        outcome,
        names=(
            "names longer than 63 characters",
            f"{site_file} sets dsx:namespaceStyle tenant-site",
            "pulumi config set dsx:namespaceStyle tenant --stack sydney-harbour-east-zone1",
        ),
    )
    assert tree(tmp_path) == before
    rendered = dsx(
        "render",
        plan,
        "--site",
        "sydney-harbour-east-zone1",
        "--period",
        "2026Q4",
        "--namespace-style",
        "tenant-site",
    )
    assert rendered.code == 2  # the same plan, refused the same way
    site_file.write_text("config:\n  dsx:namespaceStyle: tenant\n")
    assert dsx("stacks", "write", plan, "--dir", stacks, "--period", "2026Q4").code == 0


def test_an_unknown_namespace_style_in_a_stack_file_is_refused(tmp_path: Path, plan_file: Path) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.sydney.yaml").write_text("config:\n  dsx:namespaceStyle: tenant-sites\n")
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks)
    assert_one_clear_error(
        outcome,
        names=(
            f"dsx:namespaceStyle in {stacks / 'Pulumi.sydney.yaml'} is 'tenant-sites'",
            "pulumi config set dsx:namespaceStyle tenant --stack sydney",
        ),
    )
    assert tree(tmp_path) == before


# input files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["stored there", "linked there"])
def test_a_plan_where_a_stack_file_goes_is_never_overwritten(
    tmp_path: Path, plan_file: Path, how: str
) -> None:
    # A plan stored as stacks/Pulumi.batam.yaml was rewritten as YAML with config: added.
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    if how == "stored there":
        plan = stacks / "Pulumi.batam.yaml"
        shutil.copy(plan_file, plan)
    else:
        plan = plan_file
        (stacks / "Pulumi.batam.yaml").symlink_to(plan_file)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan, "--dir", stacks)
    assert_one_clear_error(outcome, names=("Pulumi.batam.yaml would replace the plan file",))
    assert tree(tmp_path) == before


# comments, links, line endings ---------------------------------------------------------------------


def test_a_comment_after_a_value_dsx_sets_is_kept(tmp_path: Path, plan_file: Path) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text(
        "config:\n"
        "  dsx:period: 2026Q3   # pinned until the audit, do not move\n"
        '  dsx:plan: "old # plan.json"  # the shared plan\n'
        "  dsx:site:  # from the stack name\n"
    )
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert outcome.code == 0, outcome.text
    text = (stacks / "Pulumi.batam.yaml").read_text()
    assert "  dsx:period: 2026Q4   # pinned until the audit, do not move\n" in text
    assert "  dsx:plan: plans/plan.json  # the shared plan\n" in text
    assert "  dsx:site: batam # from the stack name\n" in text
    assert _config(stacks / "Pulumi.batam.yaml")["dsx:period"] == "2026Q4"


def test_a_stack_file_that_is_a_symbolic_link_is_written_through_and_stays_a_link(
    tmp_path: Path, plan_file: Path
) -> None:
    # The link was replaced by a regular file, and the shared file it led to kept the old plan.
    stacks, shared = tmp_path / "stacks", tmp_path / "ops" / "narvik.yaml"
    stacks.mkdir()
    shared.parent.mkdir()
    shared.write_text("config:\n  dsx:context: narvik-prod\n")
    shared.chmod(0o640)
    (stacks / "Pulumi.narvik.yaml").symlink_to(Path("..") / "ops" / "narvik.yaml")
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert outcome.code == 0, outcome.text
    assert (stacks / "Pulumi.narvik.yaml").is_symlink()
    assert _config(shared) == {
        "dsx:context": "narvik-prod",
        "dsx:plan": "plans/plan.json",
        "dsx:site": "narvik",
        "dsx:period": "2026Q4",
        "dsx:nodePoolBackend": "cluster-api",
    }
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    assert sorted(p.name for p in shared.parent.iterdir()) == ["narvik.yaml"]


@pytest.mark.parametrize(
    ("links", "named"),
    [
        ({"Pulumi.narvik.yaml": "missing.yaml"}, "a symbolic link to missing.yaml, which does not exist"),
        (
            {"Pulumi.narvik.yaml": "Pulumi.narvik.yaml"},
            "a symbolic link to Pulumi.narvik.yaml, which does not lead",
        ),
        ({"Pulumi.narvik.yaml": "Pulumi.batam.yaml"}, "Pulumi.batam.yaml and"),
    ],
    ids=["dangling", "loop", "two-sites-one-file"],
)
def test_a_link_that_leads_to_no_stack_file_of_its_own_is_refused(
    tmp_path: Path, plan_file: Path, links: dict[str, str], named: str
) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text("config:\n  dsx:site: batam\n")
    for name, to in links.items():
        (stacks / name).symlink_to(to)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert_one_clear_error(outcome, names=(named,))
    assert tree(tmp_path) == before


def test_windows_line_endings_are_kept(tmp_path: Path, plan_file: Path) -> None:
    # Every CR LF became LF.
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    path = stacks / "Pulumi.sydney.yaml"
    path.write_bytes(b"# ops owns this file\r\nconfig:\r\n  dsx:period: 2026Q3\r\n  app:x: 1\r\n")
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert outcome.code == 0, outcome.text
    data = path.read_bytes()
    assert data.startswith(b"# ops owns this file\r\nconfig:\r\n  dsx:period: 2026Q4\r\n  app:x: 1\r\n")
    assert data.count(b"\n") == data.count(b"\r\n") == 7
    again = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert f"unchanged: {path}" in again.stdout
