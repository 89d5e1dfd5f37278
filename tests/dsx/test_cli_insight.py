"""The insight commands end to end on small files: outputs, --json, and exit codes."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from dsx import cli
from planner.errors import UserError
from planner.files import read_plan
from tests.planner.insight.helpers import stylised_data, three_quarters

cli._register_commands()
runner = CliRunner()


def run(*args: str):
    return runner.invoke(cli.app, ["plan", *args])


def exit_code_of_main(monkeypatch, *args: str) -> int:
    """The exit code of the `dsx` console script itself (it runs click without standalone mode,
    so only what `cli.main` does counts, not what CliRunner reports)."""
    monkeypatch.setattr("sys.argv", ["dsx", "plan", *args])
    with pytest.raises(SystemExit) as caught:
        cli.main()
        raise SystemExit(0)
    return caught.value.code


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("insight")
    base = root / "stylised.yaml"
    base.write_text(yaml.safe_dump(stylised_data()))
    overrides = root / "cases.yaml"
    overrides.write_text(yaml.safe_dump({"no-cover": {"terms.buyback_share": 0.0}, "bad": {"terms.nope": 1}}))
    infeasible = root / "infeasible.yaml"
    data = three_quarters().model_dump(mode="json")
    data["sites"][0].update(gpu_cap=150, existing_racks={"rack10": 20})
    infeasible.write_text(yaml.safe_dump(data))
    return {"root": root, "base": base, "overrides": overrides, "infeasible": infeasible}


def test_sweep_writes_a_plan_per_point_csv_and_heatmap(files):
    """On a local Dask cluster of two worker processes: two seeds, then two neighbours."""
    out = files["root"] / "sweep"
    result = run(
        "sweep",
        str(files["base"]),
        "--set",
        "terms.buyback_share=0.5,1.0",
        "--set",
        "terms.revenue_share=0,0.1",
        "-o",
        str(out),
        "--workers",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["points"]) == 4 and len(summary["plans"]) == 4
    assert (out / "sweep.csv").read_text().count("\n") == 5
    assert (out / "sweep.png").stat().st_size > 1000
    plan = read_plan(out / "buyback_share=1.0_revenue_share=0.json")
    assert plan.verification.passed and sum(r.racks_built for r in plan.racks) == 1
    assert plan.risk.evpi_usd >= 0.0 and plan.risk.vss_usd >= 0.0
    assert summary["engine"] == {"where": "a local Dask cluster of 2 worker processes", "slots": 2}
    reused = summary["reused"]
    assert reused["points_offered_a_neighbours_plan"] == 2
    assert not list(out.glob(".*.tmp"))  # plans written whole, by the client
    # What HiGHS started from is what the plans record: here the rounded relaxation beat every
    # neighbour's plan, so no point says it started from a neighbour.
    starts = [read_plan(out / f"{p}.json").solver.start for p in summary["plans"]]
    assert reused["points_started_from_a_neighbours_plan"] == starts.count("given")
    assert reused["points_started_from_their_rounded_relaxation"] == starts.count("rounded")
    files["plans"] = [
        out / "buyback_share=0.5_revenue_share=0.json",
        out / "buyback_share=1.0_revenue_share=0.json",
    ]


def test_sweep_terminal_table_and_named_case(files):
    out = files["root"] / "sweep-case"
    result = run(
        "sweep",
        str(files["base"]),
        "--overrides",
        str(files["overrides"]),
        "--case",
        "no-cover",
        "--set",
        "terms.revenue_share=0,0.1",
        "-o",
        str(out),
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "revenue_share" in result.output and "Optimal" in result.output
    assert "ran on this process" in result.output
    assert all(json.loads(p.read_text())["scenario_name"] for p in out.glob("*.json"))


def test_sweep_with_a_bad_override_is_a_user_error(files):
    result = run(
        "sweep",
        str(files["base"]),
        "--overrides",
        str(files["overrides"]),
        "--case",
        "bad",
        "--set",
        "terms.revenue_share=0",
        "-o",
        str(files["root"] / "x"),
    )
    assert isinstance(result.exception, UserError) and result.exception.exit_code == 2
    assert "override" in result.exception.render() and "terms.nope" in result.exception.render()


def test_compare_and_plot_on_sweep_plans(files):
    if "plans" not in files:
        pytest.skip("needs the sweep test's plans")
    a, b = files["plans"]
    result = run("compare", str(a), str(b))
    assert result.exit_code == 0, result.output
    assert "Build-out changes" in result.output and "0 -> 1" in result.output
    result = run("compare", str(a), str(b), "--json")
    (cmp,) = json.loads(result.stdout)
    assert cmp["site_periods"][0]["racks_after"] == 1
    result = run("plot", str(b), "-o", str(files["root"] / "plots"), "--json")
    assert result.exit_code == 0, result.output
    assert [p.rsplit("/", 1)[-1] for p in json.loads(result.stdout)["figures"]] == [
        "buildout.png",
        "demand.png",
        "value.png",
    ]


def test_diagnose_exits_3_and_writes_the_iis(files, monkeypatch, capsys):
    iis = files["root"] / "iis.txt"
    assert exit_code_of_main(monkeypatch, "diagnose", str(files["infeasible"]), "--iis-out", str(iis)) == 3
    out = capsys.readouterr().out
    assert "alpha 2026Q1 gpu_cap" in out and "gpu_cap[alpha,0]" in out and "sites[alpha].gpu_cap" in out
    assert "gpu_cap[alpha,0]" in iis.read_text()
    assert exit_code_of_main(monkeypatch, "diagnose", str(files["infeasible"]), "--json") == 3
    assert json.loads(capsys.readouterr().out)["conflicts"][0]["site"] == "alpha"
    assert exit_code_of_main(monkeypatch, "diagnose", str(files["base"]), "--json") == 0
    assert json.loads(capsys.readouterr().out)["feasible"]


def test_partial_sweep_exits_4_and_writes_the_plans_it_has(files, monkeypatch, capsys):
    data = stylised_data()
    data["sites"][0]["existing_racks"] = {"rack10": 5}
    base = files["root"] / "partial.yaml"
    base.write_text(yaml.safe_dump(data))
    out = files["root"] / "partial"
    code = exit_code_of_main(
        monkeypatch,
        "sweep",
        str(base),
        "--set",
        "sites[alpha].gpu_cap=10,100,1000",
        "-o",
        str(out),
        "--workers",
        "2",
        "--json",
    )
    assert code == 4
    summary = json.loads(capsys.readouterr().out)
    assert sorted(summary["plans"]) == ["alpha-gpu_cap=100", "alpha-gpu_cap=1000"]
    assert summary["engine"]["slots"] == 2
    assert (out / "alpha-gpu_cap=100.json").exists() and not (out / "alpha-gpu_cap=10.json").exists()
    assert "no plan" in (out / "sweep.csv").read_text().splitlines()[1]


def test_a_bad_override_exits_2(files, monkeypatch):
    args = ["sweep", str(files["base"]), "--overrides", str(files["overrides"]), "--case", "bad"]
    assert exit_code_of_main(monkeypatch, *args, "--set", "terms.revenue_share=0") == 2


def test_value_of_information_json(files):
    result = run("value-of-information", str(files["base"]), "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["evpi_usd"] >= 0 and figures["vss_usd"] >= 0


def test_a_cold_sweep_starts_no_point_from_a_neighbour(files):
    out = files["root"] / "sweep-cold"
    args = ["sweep", str(files["base"]), "--set", "terms.revenue_share=0,0.1", "-o", str(out), "--cold"]
    result = run(*args, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "every point solved cold (--cold)" in result.stdout
    rows = (out / "sweep.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert all(row.split(",")[header.index("start_from")] == "" for row in rows[1:])


def test_a_sweep_without_value_of_information_leaves_null_and_says_so(files):
    out = files["root"] / "sweep-no-voi"
    args = ["sweep", str(files["base"]), "--set", "terms.revenue_share=0,0.1", "-o", str(out)]
    result = run(*args, "--no-value-of-information", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "EVPI and VSS skipped (--no-value-of-information)" in result.stderr
    rows = (out / "sweep.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert all(row.split(",")[header.index("evpi_discounted_usd")] == "" for row in rows[1:])
    plan = read_plan(out / "revenue_share=0.1.json")
    assert plan.risk.evpi_usd is None and "skipped on request" in plan.risk.value_of_information_note


def test_the_sweep_table_names_each_money_column_s_basis(tmp_path):
    # Its buyback and revenue share (undiscounted sums) stood unlabelled beside discounted values.
    from dsx.commands.plan_insight import SweepInputs, sweep_table
    from planner.insight.sweep import PointResult, plan_summary, table_rows
    from tests.infra.plan_factory import make_plan

    plan = make_plan()
    result = PointResult({"terms.revenue_share": 0.1}, "revenue_share=0.1", plan, summary=plan_summary(plan))
    inputs = SweepInputs(
        tmp_path / "base.yaml", {"sites": [{"id": "batam"}]}, {}, [("terms.revenue_share", [0.1])], "x"
    )
    headers = [str(c.header) for c in sweep_table(inputs, [result], table_rows([result]), None).columns]
    assert [h for h in headers if h.endswith("discounted")] == [
        "objective\ndiscounted",
        "expected\ndiscounted",
        "CVaR\ndiscounted",
        "buyback\nundiscounted",
        "rev share\nundiscounted",
        "EVPI\ndiscounted",
        "VSS\ndiscounted",
    ]


def test_compare_prints_a_sub_megawatt_power_change_legibly(tmp_path):
    # Its MW column had no decimals: 0.25 MW -> 0.5 MW printed as "0 -> 0".
    import copy

    from tests.planner.small_scenarios import BASE

    plans = []
    for mw in (0.25, 0.5):
        data = copy.deepcopy(BASE)
        data["sites"][0].update(existing_mw=mw, power_cap_mw=0.5, pue=1.25)  # 0.125 MW a rack
        source = tmp_path / f"mw-{mw}.yaml"
        source.write_text(yaml.safe_dump(data))
        plans.append(tmp_path / f"mw-{mw}.json")
        solved = runner.invoke(
            cli.app, ["plan", "solve", str(source), "-o", str(plans[-1]), "--no-value-of-information"]
        )
        assert solved.exit_code == 0, solved.output
    result = run("compare", *map(str, plans))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "alpha" in line and "->" in line)
    assert "2 -> 4" in row and "0.25 -> 0.50" in row
