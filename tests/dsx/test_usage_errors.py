"""Command-line usage mistakes end in one message and exit 2, never a traceback; `--json` too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_SCENARIO
from tests.dsx.harness import assert_one_clear_error, dsx, tree


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["plan", "solve", str(EXAMPLE_SCENARIO)], "Missing option '-o'"),
        (["plan", "sovle", str(EXAMPLE_SCENARIO)], "Did you mean 'solve'?"),
        (["plan", "solve", str(EXAMPLE_SCENARIO), "-o", "p.json", "--bogus"], "No such option: --bogus"),
        (["plan", "solve", str(EXAMPLE_SCENARIO), "-o", "p.json", "--gap", "2"], "'--gap'"),
        (["render", "p.json", "--site", "batam", "--period", "2027Q4", "--format", "xml"], "'xml'"),
        (["render", "p.json", "--site", "batam"], "Missing option '--period'"),
        (["stacks", "write"], "Missing argument"),
    ],
    ids=[
        "missing-o",
        "mistyped-command",
        "unknown-option",
        "gap-2",
        "format-xml",
        "render-no-period",
        "no-plan",
    ],
)
def test_a_usage_mistake_is_one_message_naming_the_command_and_exit_2(tmp_path, monkeypatch, args, named):
    monkeypatch.chdir(tmp_path)
    outcome = dsx(*args)
    assert_one_clear_error(outcome, names=(named, "--help"))
    assert tree(tmp_path) == {}


def test_a_usage_mistake_with_json_is_a_json_error_on_stderr(tmp_path):
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "-o", tmp_path / "p.json", "--gap", "2", "--json")
    assert outcome.code == 2 and outcome.stdout == ""
    error = json.loads(outcome.stderr)["error"]
    assert "--gap" in error["message"] and error["exit_code"] == 2
    assert any("Fix:" in d for d in error["details"])


def test_a_user_error_with_json_is_a_json_error(tmp_path):
    outcome = dsx("plan", "show", tmp_path / "missing.json", "--json")
    assert outcome.code == 2
    error = json.loads(outcome.stderr)["error"]
    assert "missing.json: cannot read plan file: there is no such file" in error["message"]


def test_every_command_takes_json():
    for command in (
        ["plan", "solve"],
        ["plan", "show"],
        ["plan", "sweep"],
        ["plan", "compare"],
        ["plan", "plot"],
        ["plan", "value-of-information"],
        ["plan", "diagnose"],
        ["render"],
        ["stacks", "write"],
    ):
        outcome = dsx(*command, "--help")
        assert outcome.code == 0, outcome.text
        assert "--json" in outcome.stdout, command


def test_help_in_a_pipe_shows_every_option_name_in_full():
    result = subprocess.run(
        [sys.executable, "-c", "from dsx.cli import main; main()", "plan", "solve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    for option in ("--value-of-information", "--no-value-of-information", "--time-limit", "--overrides"):
        assert option in result.stdout
    assert "…" not in result.stdout


def test_no_arguments_prints_help_and_exits_2():
    outcome = dsx()
    assert outcome.code == 2 and "Usage" in outcome.text and "Traceback" not in outcome.text


def test_error_text_is_printed_literally_not_as_markup(tmp_path):
    weird = tmp_path / "[/b]" / "[bold]x.yaml"
    outcome = dsx("plan", "solve", weird, "-o", tmp_path / "p.json")
    assert_one_clear_error(
        outcome, names=("[/b]/[bold]x.yaml", "cannot read YAML file: there is no such file")
    )


def test_an_override_path_keeps_its_brackets_in_the_message(tmp_path):
    outcome = dsx(
        "plan", "solve", EXAMPLE_SCENARIO, "-o", tmp_path / "p.json", "--set", "sites[batum].power_cap_mw=300"
    )
    assert_one_clear_error(outcome, names=("sites[batum].power_cap_mw", "did you mean 'batam'?"))
    assert tree(tmp_path) == {}


def test_render_and_stacks_write_answer_in_json(tmp_path):
    from planner.files import write_plan
    from tests.infra.plan_factory import make_plan

    plan = tmp_path / "plan.json"
    write_plan(make_plan(), plan)
    listed = json.loads(dsx("render", plan, "--site", "batam", "--period", "2026Q4", "--json").stdout)
    assert listed["kind"] == "List" and listed["items"]
    outcome = dsx("render", plan, "--site", "batam", "--period", "2026Q4", "-o", tmp_path / "m", "--json")
    written = json.loads(outcome.stdout)["written"]
    assert written and all(Path(p).exists() and p.endswith(".json") for p in written)
    stacks = json.loads(dsx("stacks", "write", plan, "--dir", tmp_path / "stacks", "--json").stdout)
    assert [(s["site"], s["state"]) for s in stacks] == [("batam", "created"), ("sydney", "created")]
