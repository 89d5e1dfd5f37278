"""`dsx plan solve` end to end: summary on the terminal, a re-readable plan, nothing on failure."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from dsx import cli
from planner import pipeline
from planner.errors import NoPlanError
from planner.files import read_plan
from tests.conftest import EXAMPLE_SCENARIO
from tests.planner.small_scenarios import BASE

cli._register_commands()
runner = CliRunner()


def run(*args: str):
    return runner.invoke(cli.app, ["plan", "solve", *args])


def test_solving_the_bundled_example_prints_the_summary_and_writes_a_verified_plan(tmp_path):
    out = tmp_path / "plans" / "plan.json"
    # EVPI and VSS would take S + 2 = 5 more solves of the example; tests/planner/test_value_of_information.py covers them.
    result = run(str(EXAMPLE_SCENARIO), "-o", str(out), "--no-value-of-information")
    assert result.exit_code == 0, result.output
    for expected in ("Per site and quarter", "batam", "Per scenario", "CVaR", "HiGHS", "written to"):
        assert expected in result.output
    plan = read_plan(out)
    assert plan.verification.passed
    assert plan.solver.status == "Optimal"
    assert plan.solver.mip_gap is not None and plan.solver.mip_gap <= 0.01 + 1e-9
    assert plan.solver.integer_columns > 0
    assert {s.id for s in plan.sites} == {"batam", "sydney", "narvik"}
    assert (plan.solver.method, plan.solver.method_note) == ("extensive", None)
    assert "via direct, extensive:" in result.output


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
    # One scenario: perfect foresight and the mean-demand plan are the plan itself.
    assert summary["value_of_information_computed"] is True
    assert summary["risk"]["evpi_usd"] == pytest.approx(0.0, abs=1e-3)
    assert summary["risk"]["vss_usd"] == pytest.approx(0.0, abs=1e-3)
    assert read_plan(out).risk.evpi_usd == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize(
    ("interface", "method", "note"),
    [
        ("direct", "decomposition", "Benders: "),
        # The decomposition runs on the direct interface only: the plan says it was not used, and why.
        ("appsi", "extensive", "decomposition needs the direct interface, not appsi"),
    ],
)
def test_the_plan_records_how_it_was_found(tmp_path, interface, method, note):
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "plan.json"
    result = run(
        str(source),
        "-o",
        str(out),
        "--interface",
        interface,
        "--set",
        "solver.method=decomposition",
        "--no-value-of-information",
    )
    assert result.exit_code == 0, result.output
    solver = read_plan(out).solver
    assert solver.method == method
    assert solver.method_note is not None and note in solver.method_note
    assert f"via {interface}, {method}:" in result.output
    assert note in " ".join(result.output.split())


def test_a_plan_of_the_previous_schema_still_reads_and_shows_with_no_method(tmp_path):
    out = tmp_path / "plan.json"
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(BASE))
    assert run(str(source), "-o", str(out), "--no-value-of-information").exit_code == 0
    data = json.loads(out.read_text())
    data["schema_version"] = "1.1"  # written before 1.2 added how the plan was found
    del data["solver"]["method"], data["solver"]["method_note"]
    out.write_text(json.dumps(data))
    assert read_plan(out).solver.method is None
    shown = runner.invoke(cli.app, ["plan", "show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "via direct: Optimal" in shown.output


def test_opting_out_of_value_of_information_leaves_null_and_says_how_to_get_them(tmp_path):
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "plan.json"
    result = run(str(source), "-o", str(out), "--no-value-of-information")
    assert result.exit_code == 0, result.output
    plan = read_plan(out)
    assert plan.risk.evpi_usd is None and plan.risk.vss_usd is None
    assert plan.risk.value_of_information_note == "EVPI and VSS not computed: skipped on request"
    assert "EVPI and VSS skipped (--no-value-of-information)" in result.stderr
    assert f"dsx plan value-of-information {source}" in result.stderr
    assert "value of information" in result.stdout and "skipped on request" in result.stdout
    result = run(str(source), "-o", str(out), "--no-value-of-information", "--json")
    summary = json.loads(result.stdout)
    assert summary["value_of_information_computed"] is False
    assert summary["risk"]["evpi_usd"] is None and summary["risk"]["vss_usd"] is None


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


def test_a_figure_without_a_solution_still_writes_the_plan_and_warns(tmp_path, monkeypatch):
    def no_solution(*_args, **_kwargs):
        raise NoPlanError(
            "scenario 'tiny (only only)': no solution for a stochastic figure (HiGHS: Time limit reached)"
        )

    monkeypatch.setattr(pipeline, "with_value_of_information", no_solution)
    source = tmp_path / "tiny.yaml"
    source.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "plan.json"
    result = run(str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "Time limit reached" in result.stderr and "Fix:" in result.stderr
    plan = read_plan(out)
    assert plan.verification.passed and plan.risk.evpi_usd is None
    assert "Time limit reached" in plan.risk.value_of_information_note


def test_json_output_holds_no_infinity_which_json_readers_refuse(capsys):
    # A plan worth nothing against its bound has an infinite gap; sweep and batch printed it.
    from dsx.commands.json_out import echo_json

    echo_json({"mip_gap": float("inf"), "rows": [{"gap": float("nan")}, 1.5]})
    assert json.loads(capsys.readouterr().out) == {"mip_gap": None, "rows": [{"gap": None}, 1.5]}


def test_a_gap_highs_did_not_give_is_shown_as_unknown_not_as_zero():
    # Sweep and batch tables printed a missing gap as 0.00%, as if the plan were proven optimal.
    from dsx.commands.notices import gap_text

    assert [gap_text(g) for g in (None, float("inf"), 0.0049)] == ["-", "inf", "0.49%"]


def test_a_batch_warns_of_a_plan_whose_gap_cannot_be_measured(monkeypatch, tmp_path):
    # Its table showed such a plan's gap as 0.00%, with no word of it.
    import planner.insight.batch as batch_module
    from tests.dsx.harness import dsx
    from tests.infra.plan_factory import unmeasured_gap_plan

    unbounded = unmeasured_gap_plan()
    monkeypatch.setattr(
        batch_module,
        "run_batch",
        lambda loaded, **_k: [batch_module.BatchResult(n, unbounded) for n, _ in loaded],
    )
    outcome = dsx("plan", "batch", EXAMPLE_SCENARIO, "-o", tmp_path / "out", "--workers", "1")
    assert outcome.code == 0
    assert "dsx-2026: HiGHS stopped" in outcome.stderr and "no bound on this plan" in outcome.stderr
    assert "0.00%" not in outcome.stdout


def test_a_sweep_warns_of_a_point_whose_gap_cannot_be_measured(capsys, tmp_path):
    from dsx.commands.plan_insight import finish_sweep
    from planner.files import load_scenario
    from planner.insight.sweep import PointResult
    from tests.infra.plan_factory import make_plan, unmeasured_gap_plan

    plan, worthless = make_plan(), unmeasured_gap_plan(best_bound_usd=2e9)
    results = [PointResult({"a": 1}, "a=1", plan), PointResult({"a": 2}, "a=2", worthless)]
    example = load_scenario(EXAMPLE_SCENARIO)
    pdlp = example.model_copy(update={"solver": example.solver.model_copy(update={"lp_algorithm": "pdlp"})})
    finish_sweep(results, [example, pdlp], tmp_path, value_of_information=False)
    err = capsys.readouterr().err
    assert "a=1" not in err
    assert "a=2: HiGHS stopped" in err and "against a bound of US$ 2,000.000 M" in err
    assert "solver.lp_algorithm to auto" in err
