"""`dsx plan solve` end to end: summary on the terminal, a re-readable plan, nothing on failure."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from dsx import cli
from planner.io import read_plan
from tests.conftest import EXAMPLE_SCENARIO
from tests.planner.small_scenarios import BASE

cli._register_commands()
runner = CliRunner()


def run(*args: str):
    return runner.invoke(cli.app, ["plan", "solve", *args])


def test_solving_the_bundled_example_prints_the_summary_and_writes_a_verified_plan(tmp_path):
    out = tmp_path / "plans" / "plan.json"
    result = run(str(EXAMPLE_SCENARIO), "-o", str(out))
    assert result.exit_code == 0, result.output
    for expected in ("Per site and quarter", "batam", "Per scenario", "CVaR", "HiGHS", "written to"):
        assert expected in result.output
    plan = read_plan(out)
    assert plan.verification.passed
    assert plan.solver.status == "Optimal"
    assert plan.solver.mip_gap is not None and plan.solver.mip_gap <= 0.01 + 1e-9
    assert plan.solver.integer_columns > 0
    assert {s.id for s in plan.sites} == {"batam", "sydney", "narvik"}


def test_json_summary_is_machine_readable(tmp_path):
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "plan.json"
    result = run(
        str(source), "-o", str(out), "--json", "--interface", "appsi", "--gap", "0", "--time-limit", "10"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["plan_path"] == str(out)
    assert summary["solver"]["interface"] == "appsi"
    assert summary["solver"]["objective_usd"] == pytest.approx(604_500.0)
    assert summary["verification"]["passed"] is True
    assert read_plan(out).solver.objective_usd == pytest.approx(604_500.0)


def test_infeasible_scenario_exits_non_zero_and_writes_nothing(tmp_path):
    data = json.loads(json.dumps(BASE))
    data["sites"][0]["existing_racks"] = {"rack10": 20}
    data["sites"][0]["gpu_cap"] = 100
    source = tmp_path / "bad.yaml"
    source.write_text(yaml.safe_dump(data))
    out = tmp_path / "plan.json"
    result = run(str(source), "-o", str(out))
    assert result.exit_code != 0
    assert "no plan meets every constraint" in str(result.exception)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_invalid_scenario_exits_non_zero_and_writes_nothing(tmp_path):
    out = tmp_path / "plan.json"
    result = run(str(tmp_path / "missing.yaml"), "-o", str(out))
    assert result.exit_code != 0
    assert not out.exists()


def test_console_script_exit_code_and_message_for_infeasible_input(tmp_path, monkeypatch, capsys):
    data = json.loads(json.dumps(BASE))
    data["sites"][0]["existing_racks"] = {"rack10": 20}
    data["sites"][0]["gpu_cap"] = 100
    source = tmp_path / "bad.yaml"
    source.write_text(yaml.safe_dump(data))
    out = tmp_path / "plan.json"
    monkeypatch.setattr("sys.argv", ["dsx", "plan", "solve", str(source), "-o", str(out)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 3
    assert "no plan meets every constraint" in capsys.readouterr().err
    assert not out.exists()
