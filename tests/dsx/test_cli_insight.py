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


# A sweep's or batch's directory holds one run's results ---------------------------------------


def _sweep(base, out, *sets: str):
    from tests.dsx.harness import dsx

    args = [arg for given in sets for arg in ("--set", given)]
    return dsx("plan", "sweep", base, *args, "-o", out, "--workers", "1", "--no-value-of-information")


def test_a_sweep_run_again_removes_what_its_last_run_wrote_and_this_one_did_not(files):
    # A point with no plan this time kept the last run's plan, and the last run's sweep.png
    # stayed where this run drew none: both contradicted the new sweep.csv.
    out = files["root"] / "sweep-again"
    gap = "sites[alpha].gpu_cap=10,100"
    first = _sweep(files["base"], out, gap)
    assert first.code == 0, first.text
    assert {p.name for p in out.iterdir()} >= {"alpha-gpu_cap=10.json", "sweep.png", ".dsx-sweep"}
    (out / "notes.txt").write_text("mine")  # no sweep wrote these: left as they are
    (out / "mine.json").write_text("{}")
    data = stylised_data()
    data["sites"][0]["existing_racks"] = {"rack10": 5}  # gpu_cap 10 has no plan now
    partial = files["root"] / "partial-again.yaml"
    partial.write_text(yaml.safe_dump(data))
    second = _sweep(partial, out, gap)
    assert second.code == 4, second.text
    assert not (out / "alpha-gpu_cap=10.json").exists() and (out / "alpha-gpu_cap=100.json").exists()
    third = _sweep(files["base"], out, gap, "terms.buyback_share=0.5", "terms.revenue_share=0")
    assert third.code == 0, third.text  # three axes: no heat-map; the last plan and heat-map go
    assert "removed 2 files the last sweep wrote there and this one did not" in " ".join(third.stdout.split())
    assert sorted(p.name for p in out.iterdir()) == [
        ".dsx-sweep",
        "alpha-gpu_cap=100_buyback_share=0.5_revenue_share=0.json",
        "alpha-gpu_cap=10_buyback_share=0.5_revenue_share=0.json",
        "mine.json",
        "notes.txt",
        "sweep.csv",
    ]


def test_a_file_a_sweep_wrote_and_someone_changed_since_is_kept(files):
    out = files["root"] / "sweep-edited"
    assert _sweep(files["base"], out, "terms.revenue_share=0,0.1").code == 0
    edited = out / "revenue_share=0.1.json"
    edited.write_text(edited.read_text() + " ")
    outcome = _sweep(files["base"], out, "terms.revenue_share=0")
    assert outcome.code == 0, outcome.text
    assert edited.exists() and (out / "revenue_share=0.json").exists()


def test_a_batch_run_again_removes_the_plans_its_last_run_wrote_and_this_one_did_not(files, tmp_path):
    from tests.dsx.harness import dsx

    other = tmp_path / "other.yaml"
    other.write_text(files["base"].read_text())
    out = tmp_path / "batch"
    first = dsx("plan", "batch", files["base"], other, "-o", out, "--workers", "1")
    assert first.code == 0, first.text
    second = dsx("plan", "batch", files["base"], "-o", out, "--workers", "1", "--json")
    assert second.code == 0, second.text
    assert json.loads(second.stdout)["removed"] == [str(out / "other.json")]
    assert sorted(p.name for p in out.iterdir()) == [".dsx-batch", "stylised.json"]


def test_an_index_that_is_not_one_dsx_wrote_is_refused_before_any_solve(files, tmp_path):
    from tests.dsx.harness import assert_one_clear_error, tree

    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".dsx-sweep").write_text('{"files": {"a.json": "x"}}')
    before = tree(tmp_path)
    outcome = _sweep(files["base"], out, "terms.revenue_share=0")
    assert_one_clear_error(outcome, names=(f"{out / '.dsx-sweep'} is not the index dsx plan sweep writes",))
    assert tree(tmp_path) == before


def test_a_sweep_stopped_midway_records_what_it_wrote_and_removes_nothing(tmp_path):
    from dsx.commands.results_dir import SWEEP_INDEX, claim

    out = tmp_path / "sweep"
    first = claim(out, ["a.json", "sweep.csv"], SWEEP_INDEX, [])
    first.write("a.json", "1")
    first.write("sweep.csv", "x")
    assert first.finish() == []
    second = claim(out, ["b.json", "sweep.csv"], SWEEP_INDEX, [])
    second.write("b.json", "2")
    second.stopped()  # e.g. Ctrl-C before sweep.csv
    assert sorted(p.name for p in out.iterdir()) == [".dsx-sweep", "a.json", "b.json", "sweep.csv"]
    third = claim(out, ["c.json", "sweep.csv"], SWEEP_INDEX, [])
    third.write("c.json", "3")
    third.write("sweep.csv", "y")
    assert sorted(p.name for p in third.finish()) == ["a.json", "b.json"]


def test_sweep_columns_tell_two_fields_of_one_name_apart(files):
    # sites[batam].pue and sites[narvik].pue were both headed "pue".
    from dsx.commands.plan_insight import column_names

    assert column_names(["sites[batam].pue", "sites[narvik].pue", "terms.buyback_share"]) == [
        "sites[batam].pue",
        "sites[narvik].pue",
        "buyback_share",
    ]
    assert column_names(["a.b.c", "x.b.c", "y.c"]) == ["a.b.c", "x.b.c", "y.c"]


def test_the_batch_table_shows_file_names_as_they_are_not_as_markup(files, tmp_path):
    from tests.dsx.harness import dsx

    named = tmp_path / "[bold]y.yaml"
    named.write_text(files["base"].read_text())
    outcome = dsx("plan", "batch", named, "-o", tmp_path / "out", "--workers", "1")
    assert outcome.code == 0, outcome.text
    assert "│ [bold]y " in outcome.stdout
