"""`dsx render -o DIR` into a directory that already holds files: an earlier render's are replaced
as a set, anything else `kubectl apply -f DIR` would apply is refused before a byte is written,
the plan is never written over, and a failure part-way puts the directory back as it was.

The factory plan (tests/infra/plan_factory.py, no solver): batam 2026Q4 with the operator is 18
files, the gb300 pool `015-gpunodepool-batam-gb300-nvl72.yaml` with 10 racks and two tenants;
2026Q3 without the operator is 2 files, the same pool as `000-...` with 4 racks and one tenant."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

from dsx.commands import render_dir
from planner.files import write_plan
from tests.dsx.harness import Outcome, assert_one_clear_error, dsx, tree
from tests.infra.plan_factory import make_plan

POOL_Q4 = "015-gpunodepool-batam-gb300-nvl72.yaml"
TENANT_Q4 = "016-tenant-inference-cloud.yaml"
Q3_FILES = ["000-gpunodepool-batam-gb300-nvl72.yaml", "001-tenant-inference-cloud.yaml"]


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "plan.json"
    write_plan(make_plan(), path)
    return path


def _render_q4(plan_file: Path, out: Path, *extra: str) -> Outcome:
    return dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", "-o", out, *extra)


def _render_q3(plan_file: Path, out: Path, *extra: str) -> Outcome:
    return dsx(
        "render", plan_file, "--site", "batam", "--period", "2026Q3", "--no-operator", "-o", out, *extra
    )


def _applied(out: Path) -> list[dict]:
    """What `kubectl apply -f out` applies: every .json, .yaml and .yml file, hidden ones too, in
    name order (cli-runtime's visitor picks files by suffix alone)."""
    docs: list[dict] = []
    for path in sorted(out.iterdir()):
        if path.is_file() and path.suffix in (".json", ".yaml", ".yml"):
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _contents(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


# Fault 1: a re-render left the earlier render's files, and the stale pool, applied last, won.


def test_a_re_render_replaces_the_earlier_render_so_kubectl_applies_only_the_new_manifests(
    tmp_path, plan_file
):
    out = tmp_path / "out"
    assert _render_q4(plan_file, out).code == 0
    (out / "README").write_text("kept: no render wrote it\n")
    (out / "notes").mkdir()
    outcome = _render_q3(plan_file, out)
    assert outcome.code == 0, outcome.text
    assert sorted(p.name for p in out.iterdir()) == [".dsx-render", *Q3_FILES, "README", "notes"]
    applied = _applied(out)
    assert [(d["kind"], d["metadata"]["name"]) for d in applied] == [
        ("GpuNodePool", "batam-gb300-nvl72"),
        ("Tenant", "inference-cloud"),
    ]
    assert applied[0]["spec"]["racks"] == 4
    assert (out / "README").read_text() == "kept: no render wrote it\n"
    assert "removed 18 left by its earlier render (batam 2026Q4)" in outcome.stderr


def test_rendering_the_same_again_into_its_directory_changes_no_file(tmp_path, plan_file):
    out = tmp_path / "out"
    assert _render_q4(plan_file, out, "--json").code == 0
    before = _contents(out)
    outcome = _render_q4(plan_file, out, "--json")
    assert outcome.code == 0, outcome.text
    assert json.loads(outcome.stdout)["removed"] == []
    assert _contents(out) == before


def test_a_re_render_in_json_lists_the_earlier_files_it_removed(tmp_path, plan_file):
    out = tmp_path / "out"
    _render_q3(plan_file, out, "--json")  # --json with -o writes .json files
    outcome = _render_q4(plan_file, out, "--json")
    assert outcome.code == 0, outcome.text
    stale = [str(out / name.replace(".yaml", ".json")) for name in Q3_FILES]
    assert json.loads(outcome.stdout)["removed"] == stale
    assert not any(Path(path).exists() for path in stale)


def _edit_a_rendered_file(out: Path) -> str:
    path = out / POOL_Q4
    path.write_text(path.read_text().replace("racks: 10", "racks: 12"))
    return f"{path}: was edited since dsx render wrote it"


def _add(name: str, text: str = "kind: ConfigMap\n"):
    def add(out: Path) -> str:
        (out / name).write_text(text)
        return f"{out / name}: was not written by dsx render"

    return add


def _link_to_the_plan(out: Path) -> str:
    (out / "plan-link.yaml").symlink_to(out.parent / "plans" / "plan.json")
    return f"{out / 'plan-link.yaml'}: is a symbolic link"


def _an_older_render_without_an_index(out: Path) -> str:
    (out / ".dsx-render").unlink()  # as `dsx render` wrote before it kept one
    return f"{out}/000-customresourcedefinition-gpunodepools.dsx.ai.yaml: was not written by dsx render"


@pytest.mark.parametrize(
    "put",
    [
        _edit_a_rendered_file,
        _add("extra.yaml"),
        _add(".hidden.yml"),  # kubectl applies hidden files too
        _add("Backup.JSON", "{}"),
        _link_to_the_plan,
        _an_older_render_without_an_index,
    ],
    ids=["edited", "foreign-yaml", "hidden-yml", "upper-case-json", "symlink", "no-index"],
)
def test_a_re_render_refuses_what_no_render_wrote_or_was_edited_and_writes_nothing(tmp_path, plan_file, put):
    out = tmp_path / "out"
    assert _render_q4(plan_file, out).code == 0
    named = put(out)
    before, contents = tree(tmp_path), _contents(out)
    outcome = _render_q3(plan_file, out)
    assert_one_clear_error(outcome, names=(f"-o {out}", named, "Fix: move or remove them"))
    assert tree(tmp_path) == before and _contents(out) == contents


# Fault 2: a directory where a manifest goes failed on its .tmp after 13 files were written.


def test_a_directory_where_a_manifest_goes_is_refused_by_its_real_name_before_any_write(tmp_path, plan_file):
    out = tmp_path / "out"
    (out / TENANT_Q4).mkdir(parents=True)
    before = tree(tmp_path)
    outcome = _render_q4(plan_file, out)
    assert_one_clear_error(
        outcome, names=(f"-o {out}", f"{out / TENANT_Q4}: is a directory, where a manifest is to be written")
    )
    assert ".tmp" not in outcome.text
    assert tree(tmp_path) == before


def _fail_on(name_prefix: str, real):
    """`render_dir.write_temp` failing as a full disk would, on the file named `name_prefix...`."""

    def write_temp(directory: Path, name: str, text: str) -> Path:
        if name.startswith(name_prefix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / f".{name}.x1y2.tmp"))
        return real(directory, name, text)

    return write_temp


def test_a_write_failing_part_way_names_the_real_file_and_leaves_no_new_directory(
    tmp_path, plan_file, monkeypatch
):
    monkeypatch.setattr(render_dir, "write_temp", _fail_on("005-", render_dir.write_temp))
    before = tree(tmp_path)
    outcome = _render_q4(plan_file, tmp_path / "a" / "out")
    assert_one_clear_error(outcome, names=(f"{tmp_path / 'a' / 'out'}/005-clusterrole-", "No space left"))
    assert ".tmp" not in outcome.text
    assert tree(tmp_path) == before  # not even the directories it made


def test_a_write_failing_part_way_leaves_the_earlier_render_as_it_was(tmp_path, plan_file, monkeypatch):
    out = tmp_path / "out"
    _render_q4(plan_file, out)
    before = tree(out)
    monkeypatch.setattr(render_dir, "write_temp", _fail_on("001-", render_dir.write_temp))
    outcome = _render_q3(plan_file, out)
    assert_one_clear_error(outcome, names=(str(out / Q3_FILES[1]), f"{out} is as it was"))
    assert tree(out) == before


def test_a_failure_after_the_earlier_files_were_moved_aside_puts_them_back(tmp_path, plan_file, monkeypatch):
    out = tmp_path / "out"
    _render_q4(plan_file, out)
    before, contents = tree(out), _contents(out)
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(Q3_FILES[1]):  # the second new file, after the first was moved in
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return real(src, dst)

    monkeypatch.setattr(render_dir.os, "replace", replace)
    outcome = _render_q3(plan_file, out)
    monkeypatch.undo()
    assert_one_clear_error(outcome, names=(str(out / Q3_FILES[1]), "Input/output error"))
    assert tree(out) == before and _contents(out) == contents


# Fault 3: the plan, at a name render writes, was replaced by a manifest.


def test_render_never_writes_over_its_plan_in_the_output_directory(tmp_path, plan_file):
    out = tmp_path / "out"
    out.mkdir()
    plan = out / "015-gpunodepool-batam-gb300-nvl72.json"
    plan.write_bytes(plan_file.read_bytes())
    before = tree(tmp_path)
    outcome = dsx("render", plan, "--site", "batam", "--period", "2026Q4", "--format", "json", "-o", out)
    assert_one_clear_error(outcome, names=(f"-o {out}", "would replace the plan file", str(plan)))
    assert tree(tmp_path) == before


def test_an_index_claiming_the_plan_does_not_get_it_removed(tmp_path, plan_file):
    out = tmp_path / "out"
    _render_q4(plan_file, out, "--format", "json")
    plan = out / "099-plan.json"  # a name a render could have written, listed with its digest
    plan.write_bytes(plan_file.read_bytes())
    index = json.loads((out / ".dsx-render").read_text())
    index["files"][plan.name] = "sha256:" + hashlib.sha256(plan.read_bytes()).hexdigest()
    (out / ".dsx-render").write_text(json.dumps(index))
    before = tree(tmp_path)
    outcome = _render_q3(plan, out, "--format", "json")
    assert_one_clear_error(outcome, names=("099-plan.json would replace the plan file",))
    assert tree(tmp_path) == before


# The index is only trusted for what it can vouch for.


@pytest.mark.parametrize(
    "index",
    [
        "not json",
        json.dumps({"files": {}}),  # no kind: not one dsx wrote
        json.dumps({"kind": "dsx-render-index", "files": ["000-x.yaml"]}),
        "[" * 100_000,
    ],
    ids=["text", "no-kind", "files-a-list", "deep"],
)
def test_an_index_dsx_did_not_write_is_refused_and_nothing_is_touched(tmp_path, plan_file, index):
    out = tmp_path / "out"
    _render_q4(plan_file, out)
    (out / ".dsx-render").write_text(index)
    before = tree(tmp_path)
    outcome = _render_q3(plan_file, out)
    assert_one_clear_error(outcome, names=(f"{out / '.dsx-render'} is not the index dsx render writes",))
    assert tree(tmp_path) == before


def test_an_index_naming_other_files_never_gets_them_removed(tmp_path, plan_file):
    out = tmp_path / "out"
    _render_q3(plan_file, out)
    readme, outside = out / "README", tmp_path / "outside.yaml"
    readme.write_text("mine\n")
    outside.write_text("kind: Secret\n")
    index = json.loads((out / ".dsx-render").read_text())
    for name, path in [("README", readme), ("../outside.yaml", outside)]:
        index["files"][name] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    (out / ".dsx-render").write_text(json.dumps(index))
    outcome = _render_q4(plan_file, out)
    assert outcome.code == 0, outcome.text
    assert readme.read_text() == "mine\n" and outside.read_text() == "kind: Secret\n"
