"""Each bad input the issue lists: one message naming the file, the field and the fix; exit 2 (3
when there is no plan); no traceback; nothing written or changed."""

from __future__ import annotations

import copy
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import highspy
import pytest
import yaml

from dsx.commands import plan_solve
from planner.errors import ScenarioError
from planner.files import load_scenario, write_plan
from planner.pipeline import refuse_relaxation, solve_scenario
from tests.conftest import EXAMPLE_SCENARIO
from tests.dsx.harness import assert_one_clear_error, dsx, tree
from tests.infra.plan_factory import make_plan, unmeasured_gap_plan
from tests.planner.small_scenarios import BASE

EXAMPLE = yaml.safe_load(EXAMPLE_SCENARIO.read_text())


def scenario_file(tmp_path: Path, mutate: Callable[[dict[str, Any]], None], name: str = "case.yaml") -> Path:
    data = copy.deepcopy(EXAMPLE)
    mutate(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def must_not_solve(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("solved although the input was already known to be bad")

    monkeypatch.setattr(plan_solve, "solve_scenario", refuse)


def solve_rejects(
    tmp_path: Path, source: Path, *names: str, code: int = 2, extra: tuple[str, ...] = ()
) -> None:
    before = tree(tmp_path)
    outcome = dsx("plan", "solve", source, "-o", tmp_path / "out" / "plan.json", *extra)
    assert_one_clear_error(outcome, code=code, names=(str(source), *names))
    assert tree(tmp_path) == before


def _site(data: dict, site_id: str) -> dict:
    return next(s for s in data["sites"] if s["id"] == site_id)


# Numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "mutate"),
    [
        ("sites[batam].power_cap_mw", lambda d: _site(d, "batam").update(power_cap_mw=float("inf"))),
        ("rack_types[gb300-nvl72].capex_usd", lambda d: d["rack_types"][0].update(capex_usd=float("inf"))),
        ("rack_types[gb300-nvl72].capex_usd", lambda d: d["rack_types"][0].update(capex_usd=1e300)),
        (
            "sites[batam].power_capex_usd_per_mw",
            lambda d: _site(d, "batam").update(power_capex_usd_per_mw=1e300),
        ),
        (
            "sites[batam].power_capex_usd_per_mw",
            lambda d: _site(d, "batam").update(power_capex_usd_per_mw=float("inf")),
        ),
        ("demand_gpus.base[0]", lambda d: d["tenants"][0]["demand_gpus"]["base"].__setitem__(0, 1e300)),
        (
            "demand_gpus.base[0]",
            lambda d: d["tenants"][0]["demand_gpus"]["base"].__setitem__(0, float("nan")),
        ),
        ("price_usd_per_gpu_hour", lambda d: d["tenants"][0].update(price_usd_per_gpu_hour=float("inf"))),
    ],
    ids=[
        "inf-power-cap",
        "inf-capex",
        "1e300-capex",
        "1e300-power-capex",
        "inf-power-capex",
        "1e300-demand",
        "nan-demand",
        "inf-price",
    ],
)
def test_an_unusable_number_is_refused_before_solving(tmp_path, must_not_solve, field, mutate):
    solve_rejects(tmp_path, scenario_file(tmp_path, mutate), field)


def test_a_finite_number_message_says_yaml_inf_is_not_allowed(tmp_path, must_not_solve):
    source = scenario_file(tmp_path, lambda d: _site(d, "batam").update(power_cap_mw=float("inf")))
    outcome = dsx("plan", "solve", source, "-o", tmp_path / "p.json")
    assert ".inf and .nan are not allowed" in outcome.stderr


def test_an_lp_relaxation_is_refused_before_solving_since_a_plan_holds_whole_racks(tmp_path, must_not_solve):
    # Solved, its fractional racks read as whole broke 51 rows of the bundled example and the
    # verifier refused the plan after the solve.
    source = scenario_file(tmp_path, lambda d: d["solver"].update(relax_integrality=True))
    solve_rejects(tmp_path, source, "solver.relax_integrality", "best_bound_usd")


@pytest.mark.parametrize(
    ("command", "relaxed_in"),
    [
        (("plan", "sweep", "--set", "solver.relax_integrality=false,true", "--workers", "1"), "set"),
        (("plan", "batch", EXAMPLE_SCENARIO, "--workers", "1"), "file"),
        (("plan", "value-of-information", "--workers", "1"), "file"),
    ],
)
def test_sweeps_batches_and_value_of_information_refuse_the_relaxation_before_any_solve(
    tmp_path, command, relaxed_in
):
    # Each point or file would fail alone, exit 3 and name no file, and the others' plans be
    # written; VoI printed the LP's value as "the plan".
    if relaxed_in == "file":
        source = scenario_file(tmp_path, lambda d: d["solver"].update(relax_integrality=True))
    else:
        source = EXAMPLE_SCENARIO
    verb, sub, *options = command
    out = ("-o", tmp_path / "out") if sub != "value-of-information" else ()
    before = tree(tmp_path)
    outcome = dsx(verb, sub, source, *options, *out)
    named = ("point relax_integrality=True",) if relaxed_in == "set" else (str(source),)
    assert_one_clear_error(outcome, code=2, names=("solver.relax_integrality", *named))
    assert tree(tmp_path) == before


@pytest.mark.parametrize("set_in", ["base", "overrides"])
@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("relax_integrality", True, "solver.relax_integrality"),
        ("extra", {"mip_rel_gapp": 0.02}, "solver.extra.mip_rel_gapp"),
    ],
    ids=["relaxation", "highs-option"],
)
def test_a_sweeps_refusal_names_the_file_that_sets_what_it_refuses(tmp_path, set_in, field, value, named):
    # With --overrides, the refusal named the overrides file (and a bad option a point) even
    # where the base file set it.
    base = scenario_file(tmp_path, lambda d: d["solver"].update({field: value}) if set_in == "base" else None)
    overrides = tmp_path / "cases.yaml"
    change = {f"solver.{field}": value} if set_in == "overrides" else {"terms.buyback_share": 0.5}
    overrides.write_text(yaml.safe_dump({"a-case": change}))
    sets, other = (base, overrides) if set_in == "base" else (overrides, base)
    before = tree(tmp_path)
    outcome = dsx(
        "plan", "sweep", base, "--overrides", overrides, "--case", "a-case",
        "--set", "terms.revenue_share=0,0.1", "--workers", "1", "-o", tmp_path / "out",
    )  # fmt: skip
    assert_one_clear_error(outcome, code=2, names=(f"{sets}: ", named))
    assert str(other) not in outcome.stderr and "point" not in outcome.stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "command",
    [
        ("plan", "sweep", "--set", "terms.revenue_share=0.1,0.2", "--workers", "1"),
        ("plan", "batch", "--workers", "1"),
        ("plan", "value-of-information", "--workers", "1"),
    ],
    ids=["sweep", "batch", "value-of-information"],
)
def test_options_highs_refuses_stop_sweeps_batches_and_value_of_information_before_any_solve(
    tmp_path, command
):
    # Each solve failed alone (exit 3, no file named) and a sweep wrote its sweep.csv.
    source = scenario_file(tmp_path, lambda d: d["solver"].update(extra={"mip_rel_gapp": 0.02}))
    verb, sub, *options = command
    out = ("-o", tmp_path / "out") if sub != "value-of-information" else ()
    before = tree(tmp_path)
    outcome = dsx(verb, sub, source, *options, *out)
    assert_one_clear_error(outcome, code=2, names=("solver.extra.mip_rel_gapp", str(source)))
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "also",
    [("--set", "solver.extra.mip_rel_gap=0.01,0.02"), ("--case", "other-option")],
    ids=["a-point-sets-another-option", "the-case-sets-another-option"],
)
def test_a_bad_highs_option_is_blamed_on_the_file_that_set_it_not_on_one_that_set_another(tmp_path, also):
    # Whole option sets were compared, so a point or case setting any other option was blamed.
    base = scenario_file(tmp_path, lambda d: d["solver"].update(extra={"mip_rel_gapp": 0.02}))
    overrides = tmp_path / "cases.yaml"
    overrides.write_text(yaml.safe_dump({"other-option": {"solver.extra.presolve": "on"}}))
    given = (
        ("--overrides", overrides, *also, "--set", "terms.revenue_share=0,0.1")
        if also[0] == "--case"
        else also
    )
    before = tree(tmp_path)
    outcome = dsx("plan", "sweep", base, *given, "--workers", "1", "-o", tmp_path / "out")
    assert_one_clear_error(outcome, code=2, names=(f"{base}: solver.extra.mip_rel_gapp",))
    assert "point" not in outcome.stderr and str(overrides) not in outcome.stderr
    assert tree(tmp_path) == before


def test_a_thread_count_in_raw_highs_options_is_bounded_like_solver_threads(tmp_path, must_not_solve):
    # 100,000 threads ran out of memory, and the fix said to solve fewer scenarios.
    source = scenario_file(tmp_path, lambda d: d["solver"].update(extra={"threads": 100_000}))
    solve_rejects(tmp_path, source, "solver.extra.threads", "solver.threads")


def test_an_infinite_time_limit_option_is_refused_as_the_files_field_is(tmp_path, must_not_solve):
    before = tree(tmp_path)
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "-o", tmp_path / "p.json", "--time-limit", "inf")
    assert_one_clear_error(outcome, code=2, names=("--time-limit", "finite"))
    assert tree(tmp_path) == before


def test_a_plan_whose_gap_cannot_be_measured_is_written_with_a_warning_and_a_json_null(tmp_path, monkeypatch):
    # With lp_algorithm pdlp the rounded start ran out a 5 s limit and HiGHS kept the all-zero
    # plan: exit 0 and "gap inf%" alone.
    unbounded = unmeasured_gap_plan()
    monkeypatch.setattr(plan_solve, "solve_scenario", lambda *_a, **_k: unbounded)
    source = scenario_file(tmp_path, lambda d: d["solver"].update(lp_algorithm="pdlp"))
    outcome = dsx("plan", "solve", source, "-o", tmp_path / "p.json", "--no-value-of-information")
    assert outcome.code == 0 and (tmp_path / "p.json").exists()
    assert "no bound on this plan" in outcome.stderr and "solver.lp_algorithm to auto" in outcome.stderr
    # Against a bound, a plan worth nothing has an infinite gap: said so, and null in --json.
    worthless = unmeasured_gap_plan(best_bound_usd=1.05e10)
    monkeypatch.setattr(plan_solve, "solve_scenario", lambda *_a, **_k: worthless)
    outcome = dsx("plan", "solve", source, "-o", tmp_path / "q.json", "--no-value-of-information", "--json")
    assert "worth US$ 0.000 M against a bound of US$ 10,500.000 M" in outcome.stderr
    assert json.loads(outcome.stdout)["solver"]["mip_gap"] is None


def test_no_plan_after_a_pdlp_rounded_start_points_at_the_lp_algorithm():
    from planner.pipeline import _no_plan_message
    from planner.solve.interfaces import SolveOutcome

    scenario = load_scenario(EXAMPLE_SCENARIO)
    pdlp = scenario.model_copy(update={"solver": scenario.solver.model_copy(update={"lp_algorithm": "pdlp"})})
    outcome = SolveOutcome.__new__(SolveOutcome)
    outcome.status, outcome.model_status = "Time limit reached", highspy.HighsModelStatus.kTimeLimit
    assert "solver.lp_algorithm to auto" in _no_plan_message(pdlp, outcome).details[0]
    assert "lp_algorithm" not in _no_plan_message(scenario, outcome).details[0]


def test_the_pipeline_refuses_the_relaxation_itself_for_sweeps_and_batches_before_building():
    # Library callers reach solve_scenario without any command's check.
    relaxed = load_scenario(EXAMPLE_SCENARIO)
    relaxed = relaxed.model_copy(
        update={"solver": relaxed.solver.model_copy(update={"relax_integrality": True})}
    )
    for refuse in (refuse_relaxation, solve_scenario):
        with pytest.raises(ScenarioError) as refused:
            refuse(relaxed)
        assert any(d.startswith("Fix: remove solver.relax_integrality") for d in refused.value.details)


# Files and paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"name: dsx\n\xff\xfe\n", "not UTF-8"),
        (EXAMPLE_SCENARIO.read_bytes()[:1500] + b"\n  - {id: [", "not valid YAML at line"),
        (b"", "empty"),
        (b"# only a comment\n", "empty or only comments"),
        (b"- a\n- b\n", "list, not a mapping"),
    ],
    ids=["invalid-utf8", "truncated", "empty", "comments-only", "top-level-list"],
)
def test_an_unreadable_scenario_file_names_the_file_and_a_fix(tmp_path, must_not_solve, content, named):
    source = tmp_path / "case.yaml"
    source.write_bytes(content)
    solve_rejects(tmp_path, source, named)


def test_a_directory_or_a_missing_file_as_scenario_names_it(tmp_path, must_not_solve):
    (tmp_path / "dir").mkdir()
    solve_rejects(tmp_path, tmp_path / "dir", "is a directory")
    solve_rejects(tmp_path, tmp_path / "missing.yaml", "cannot read YAML file: there is no such file")


def test_output_under_a_regular_file_is_refused_before_solving(tmp_path, must_not_solve):
    (tmp_path / "file").write_text("keep me")
    before = tree(tmp_path)
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "-o", tmp_path / "file" / "plan.json")
    assert_one_clear_error(outcome, names=("file/plan.json", "is a file"))
    assert tree(tmp_path) == before and (tmp_path / "file").read_text() == "keep me"


@pytest.mark.parametrize("target", ["scenario", "overrides"])
def test_a_plan_is_never_written_over_the_scenario_or_overrides_it_was_solved_from(
    tmp_path, must_not_solve, target
):
    # `-o` naming the scenario wrote the plan over it, exit 0.
    source = scenario_file(tmp_path, lambda d: None)
    overrides = tmp_path / "cases.yaml"
    overrides.write_text(yaml.safe_dump({"a-case": {"terms.buyback_share": 0.5}}))
    output = source if target == "scenario" else overrides
    kept = {path: path.read_bytes() for path in (source, overrides)}
    outcome = dsx("plan", "solve", source, "--overrides", overrides, "--case", "a-case", "-o", output)
    role = "the scenario file" if target == "scenario" else "the overrides file"
    assert_one_clear_error(outcome, names=(f"-o {output}: that is {role}",))
    assert {path: path.read_bytes() for path in kept} == kept


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_an_output_that_is_another_name_for_the_scenario_is_refused(tmp_path, must_not_solve, link):
    source = scenario_file(tmp_path, lambda d: None)
    other = tmp_path / "other-name.yaml"
    other.symlink_to(source) if link == "symbolic" else os.link(source, other)
    kept = source.read_bytes()
    outcome = dsx("plan", "solve", source, "-o", other)
    assert_one_clear_error(outcome, names=(f"-o {other}: that is the scenario file ({source})",))
    assert source.read_bytes() == kept


@pytest.mark.parametrize(
    ("command", "name", "role"),
    [
        (("batch",), "case.json", "the scenario file"),
        (("sweep", "--set", "terms.revenue_share=0,0.1"), "revenue_share=0.json", "the base scenario file"),
    ],
    ids=["batch", "sweep"],
)
def test_a_batch_or_sweep_never_writes_a_plan_over_its_scenario_file(tmp_path, command, name, role):
    # A JSON scenario in the output directory, named as one of the plans: its plan replaced it.
    source = tmp_path / name
    source.write_text(json.dumps(EXAMPLE))
    kept, before = source.read_bytes(), tree(tmp_path)
    outcome = dsx("plan", command[0], source, *command[1:], "-o", tmp_path, "--workers", "1")
    assert_one_clear_error(outcome, names=(f"-o {tmp_path}: its {name} would replace {role}",))
    assert source.read_bytes() == kept and tree(tmp_path) == before


def test_an_existing_output_directory_that_cannot_be_written_is_refused_before_solving(tmp_path, monkeypatch):
    # Only its parent was checked: a sweep solved its first point, then failed to write it and
    # stopped. (As root every directory is writable, so the refusal is simulated.)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: not (Path(path) == locked and mode & os.W_OK) and real_access(path, mode),
    )
    for command in (("sweep", "--set", "terms.revenue_share=0.1,0.2"), ("batch",)):
        outcome = dsx("plan", command[0], EXAMPLE_SCENARIO, *command[1:], "-o", locked, "--workers", "1")
        assert_one_clear_error(outcome, names=(f"the directory {locked} is not writable",))
    assert list(locked.iterdir()) == []


def test_output_at_an_existing_directory_is_refused_before_solving(tmp_path, must_not_solve):
    (tmp_path / "plans").mkdir()
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "-o", tmp_path / "plans")
    assert_one_clear_error(outcome, names=("is an existing directory", "plans/plan.json"))


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "plan.json"
    write_plan(make_plan(), path)
    return path


def test_render_and_plot_output_under_a_regular_file_are_refused(tmp_path, plan_file):
    (tmp_path / "file").write_text("keep me")
    before = tree(tmp_path)
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", "-o", tmp_path / "file" / "m")
    assert_one_clear_error(outcome, names=("file/m", "is a file"))
    outcome = dsx("plan", "plot", plan_file, "-o", tmp_path / "file" / "plots")
    assert_one_clear_error(outcome, names=("file/plots", "is a file"))
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["render", "stacks", "compare", "show", "plot"])
def test_a_truncated_plan_names_the_file_and_says_to_re_solve(tmp_path, plan_file, command):
    text = plan_file.read_text()
    plan_file.write_text(text[: len(text) // 2])
    args = {
        "render": ["render", plan_file, "--site", "batam", "--period", "2026Q4"],
        "stacks": ["stacks", "write", plan_file, "--dir", tmp_path / "stacks"],
        "compare": ["plan", "compare", plan_file, plan_file],
        "show": ["plan", "show", plan_file],
        "plot": ["plan", "plot", plan_file, "-o", tmp_path / "plots"],
    }[command]
    before = tree(tmp_path)
    outcome = dsx(*args)
    assert_one_clear_error(outcome, names=(str(plan_file), "not valid JSON", "re-solve"))
    assert tree(tmp_path) == before


def test_a_plan_holding_nan_is_refused(tmp_path, plan_file):
    data = json.loads(plan_file.read_text())
    data["quotas"][0]["quota_gpus"] = float("nan")
    plan_file.write_text(json.dumps(data))
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4")
    assert_one_clear_error(outcome, names=(str(plan_file), "quotas[0].quota_gpus: NaN is not a JSON number"))


# Accepted before, failing later --------------------------------------------------------------


def test_an_id_that_is_not_a_kubernetes_name_is_refused_at_solve(tmp_path, must_not_solve):
    source = scenario_file(tmp_path, lambda d: _site(d, "batam").update(id="Batam_1"))
    solve_rejects(tmp_path, source, "sites[Batam_1].id", "DNS-1123")


def _long_ids(data: dict) -> None:
    long_site, long_rack = "s" * 40, "r" * 40
    old_rack = data["rack_types"][0]["id"]
    data["rack_types"][0]["id"] = long_rack
    for site in data["sites"]:
        if site["id"] == "batam":
            site["id"] = long_site
        site["existing_racks"] = {
            long_rack if k == old_rack else k: v for k, v in site.get("existing_racks", {}).items()
        }
        if site.get("rack_types"):
            site["rack_types"] = [long_rack if r == old_rack else r for r in site["rack_types"]]


def test_ids_whose_combined_kubernetes_name_exceeds_63_characters_are_refused_and_shortened(
    tmp_path, must_not_solve
):
    source = scenario_file(tmp_path, _long_ids)
    outcome = dsx("plan", "solve", source, "-o", tmp_path / "p.json")
    assert_one_clear_error(
        outcome, names=(str(source), "81 characters", "at most 63", "shorten the site or rack type id")
    )
    assert "s" * 40 not in outcome.stderr  # long ids are shortened in the message


def test_a_gpu_product_that_is_not_a_label_value_is_refused(tmp_path, must_not_solve):
    source = scenario_file(tmp_path, lambda d: d["rack_types"][0].update(gpu_product="NVIDIA GB300"))
    solve_rejects(tmp_path, source, "rack_types[gb300-nvl72].gpu_product", "nvidia.com/gpu.product")


@pytest.mark.parametrize(
    ("owner", "named"),
    [
        ("group:", "names no group"),
        ("user:bad name!", "not a usable user name"),
        ("gruop:admins", "did you mean group:?"),
    ],
)
def test_an_owner_that_cannot_be_an_rbac_subject_is_refused(tmp_path, must_not_solve, owner, named):
    source = scenario_file(tmp_path, lambda d: d["tenants"][0].update(owners=[owner]))
    solve_rejects(tmp_path, source, "tenants[inference-cloud].owners[0]", named, "group:NAME")


def test_render_refuses_a_plan_with_a_negative_quota(tmp_path, plan_file):
    data = json.loads(plan_file.read_text())
    quota = next(q for q in data["quotas"] if q["site"] == "batam" and q["period"] == "2026Q4")
    quota["quota_gpus"] = -5.0
    plan_file.write_text(json.dumps(data))
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4")
    assert_one_clear_error(outcome, names=(str(plan_file), "quota_gpus: -5.0 is negative", "re-solve"))
    assert outcome.stdout == ""


# Messages that lacked a fix ------------------------------------------------------------------


def test_an_unknown_highs_option_names_the_file_and_the_field(tmp_path, must_not_solve):
    source = scenario_file(tmp_path, lambda d: d.setdefault("solver", {}).update(extra={"no_such_option": 1}))
    solve_rejects(tmp_path, source, "solver.extra.no_such_option", "HiGHS options reference")


def test_hipo_without_its_extras_package_says_where_it_comes_from(tmp_path, must_not_solve):
    # highspy's PyPI wheel has no HiPO: setOptionValue("solver", "hipo") fails, and the generic
    # "use an option from the reference" would send the planner to a reference that lists it.
    probe = highspy.Highs()
    probe.setOptionValue("output_flag", False)
    if probe.setOptionValue("solver", "hipo") != highspy.HighsStatus.kError:
        pytest.skip("this highspy has HiPO (highspy-extras is installed)")
    source = scenario_file(tmp_path, lambda d: d.setdefault("solver", {}).update(extra={"solver": "hipo"}))
    solve_rejects(tmp_path, source, "solver.extra.solver", "HiPO", "highspy-extras")


def test_unquoted_jurisdiction_no_says_yaml_read_it_as_false(tmp_path, must_not_solve):
    source = tmp_path / "case.yaml"
    source.write_text(EXAMPLE_SCENARIO.read_text().replace('jurisdiction: "NO"', "jurisdiction: NO"))
    solve_rejects(
        tmp_path, source, "sites[narvik].jurisdiction", "got False", 'quote it, e.g. jurisdiction: "NO"'
    )


@pytest.mark.parametrize(
    ("written", "field"),
    [
        ("    gpu_cap: 170000\n", "sites[batam].gpu_cap"),  # an int field
        ("  buyback_share: 0.8\n", "terms.buyback_share"),  # a fraction
    ],
)
def test_a_yes_no_word_where_a_number_belongs_is_refused_not_read_as_one(
    tmp_path, must_not_solve, written, field
):
    # Pydantic reads true as 1: `gpu_cap: on` would have planned one GPU at Batam, exit 0.
    text = EXAMPLE_SCENARIO.read_text()
    assert written in text
    source = tmp_path / "case.yaml"
    source.write_text(text.replace(written, written.split(":")[0] + ": on\n", 1))
    solve_rejects(tmp_path, source, field, "a yes/no value, not a number", "write the number")


def test_a_yes_no_set_on_the_command_line_is_refused_as_a_number(tmp_path, must_not_solve):
    solve_rejects(
        tmp_path,
        EXAMPLE_SCENARIO,
        "solver.time_limit_s",
        "a yes/no value",
        "--set solver.time_limit_s=true",
        extra=("--set", "solver.time_limit_s=true"),
    )


def test_solving_an_infeasible_scenario_names_the_conflict_and_points_to_diagnose(tmp_path):
    data = copy.deepcopy(BASE)
    data["sites"][0]["existing_racks"] = {"rack10": 20}
    data["sites"][0]["gpu_cap"] = 100
    source = tmp_path / "bad.yaml"
    source.write_text(yaml.safe_dump(data))
    before = tree(tmp_path)
    outcome = dsx("plan", "solve", source, "-o", tmp_path / "plan.json")
    assert_one_clear_error(
        outcome,
        code=3,
        names=(str(source), "no plan meets every constraint", "GPU cap", f"dsx plan diagnose {source}"),
    )
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "command",
    [
        ("plan", "solve", "-o", "{out}/plan.json", "--no-value-of-information"),
        ("plan", "diagnose", "--iis-out", "{out}/iis.txt"),
        ("plan", "sweep", "--set", "terms.buyback_share=0.6,0.8", "-o", "{out}", "--workers", "1"),
        ("plan", "batch", "-o", "{out}", "--workers", "1"),
        ("plan", "value-of-information", "--workers", "1"),
    ],
    ids=["solve", "diagnose", "sweep", "batch", "value-of-information"],
)
def test_a_site_that_may_hold_no_rack_type_is_refused_naming_the_field_and_the_fix(tmp_path, command):
    # Every command that builds the model failed with Pyomo's traceback for `gpu_cap[batam,0]`.
    source = scenario_file(tmp_path, lambda d: _site(d, "batam").update(rack_types=[]))
    verb, sub, *options = command
    before = tree(tmp_path)
    outcome = dsx(verb, sub, source, *(o.format(out=tmp_path / "out") for o in options))
    assert_one_clear_error(
        outcome, names=(str(source), "sites[batam].rack_types", "max_racks_built_per_period: 0")
    )
    assert tree(tmp_path) == before


def test_an_empty_rack_types_set_on_the_command_line_is_refused_naming_the_override(tmp_path):
    solve_rejects(
        tmp_path,
        EXAMPLE_SCENARIO,
        "sites[batam].rack_types",
        "--set sites[batam].rack_types=[]",
        extra=("--set", "sites[batam].rack_types=[]", "--no-value-of-information"),
    )


def _needs(tmp_path: Path, least_usd: float) -> Path:
    """The tiny case with the cloud requiring an expected value of at least `least_usd`: whole
    racks reach at most US$604,500 (6 racks for 55 GPUs), the LP relaxation US$654,500."""
    data = copy.deepcopy(BASE)
    data["participation"] = {"cloud": {"min_expected_value_usd": least_usd}}
    source = tmp_path / "needs.yaml"
    source.write_text(yaml.safe_dump(data))
    return source


@pytest.mark.parametrize(
    ("least_usd", "short"),
    [(620_000, "US$15,500"), (1e9, "US$999,395,500")],
    ids=["relaxation-meets-it", "out-of-reach"],
)
def test_diagnose_agrees_with_solve_that_no_whole_rack_plan_meets_a_requirement(tmp_path, least_usd, short):
    # diagnose said "has a plan (LP relaxation: Optimal)", exit 0, where the relaxation met the
    # requirement, and "has no plan (0 conflict(s) above)" with nothing above where it did not.
    source = _needs(tmp_path, least_usd)
    before = tree(tmp_path)
    solved = dsx("plan", "solve", source, "-o", tmp_path / "plan.json", "--no-value-of-information")
    assert_one_clear_error(solved, code=3, names=("participation.cloud.min_expected_value_usd", short))
    diagnosed = dsx("plan", "diagnose", source)
    assert_one_clear_error(
        diagnosed,
        code=3,
        names=(str(source), "no whole-rack plan meets every participation requirement", "at most 604500"),
    )
    assert "participation.cloud.min_expected_value_usd" in diagnosed.stdout and short in diagnosed.stdout
    assert "0 conflict(s)" not in diagnosed.text
    as_json = dsx("plan", "diagnose", source, "--json")
    assert as_json.code == 3
    [conflict] = json.loads(as_json.stdout)["conflicts"]
    assert conflict["limit"] == "participation.cloud.min_expected_value_usd" and conflict["fix"]
    assert tree(tmp_path) == before


# stacks write refuses what render refuses ----------------------------------------------------


def test_stacks_write_refuses_a_plan_that_failed_verification(tmp_path):
    plan = tmp_path / "plan.json"
    write_plan(make_plan(verified=False), plan)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan, "--dir", tmp_path / "stacks")
    assert_one_clear_error(outcome, names=(str(plan), "failed verification"))
    assert tree(tmp_path) == before


def test_stacks_write_refuses_a_plan_that_overcommits_a_pool(tmp_path, plan_file):
    data = json.loads(plan_file.read_text())
    for quota in data["quotas"]:
        quota["quota_gpus"] *= 10
    plan_file.write_text(json.dumps(data))
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.batam.yaml").write_text("config:\n  dsx:site: batam\n")
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", tmp_path / "stacks", "--period", "2026Q4")
    assert_one_clear_error(outcome, names=(str(plan_file), "do not fit the node pools"))
    assert tree(tmp_path) == before


# Outputs: never anything but a regular file replaced; every path checked before any solve -----


def _tiny_file(tmp_path: Path, name: str = "tiny.yaml", mutate: Callable[[dict], None] | None = None) -> Path:
    data = copy.deepcopy(BASE)
    if mutate is not None:
        mutate(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
        return
    try:
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("making a device needs root")


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("device", ("plan", "solve", "{src}", "-o", "{out}", "--no-value-of-information")),
        ("fifo", ("plan", "reduce", "{src}", "--scenarios", "1", "-o", "{out}")),
    ],
    ids=["solve-device", "reduce-fifo"],
)
def test_an_output_that_is_a_device_or_a_fifo_is_refused_not_replaced(tmp_path, kind, command):
    # `-o` naming a device or a FIFO replaced it with a plain file (as root, -o /dev/null would
    # have replaced the system's).
    source = _tiny_file(tmp_path)
    out = tmp_path / "out"
    _special(out, kind)
    before = tree(tmp_path)
    outcome = dsx(*(part.format(src=source, out=out) for part in command))
    what = "a character device" if kind == "device" else "a named pipe (FIFO)"
    assert_one_clear_error(outcome, names=(f"-o {out}: is {what}", "Fix: give the path of a regular file"))
    assert tree(tmp_path) == before
    assert not stat.S_ISREG(out.lstat().st_mode)


def test_an_output_that_is_a_link_to_a_regular_file_replaces_that_file_and_keeps_the_link(tmp_path):
    (tmp_path / "real.yaml").write_text("old\n")
    link = tmp_path / "latest.yaml"
    link.symlink_to("real.yaml")
    outcome = dsx("plan", "reduce", EXAMPLE_SCENARIO, "--scenarios", "1", "-o", link)
    assert outcome.code == 0, outcome.text
    assert link.is_symlink() and "scenarios of" in (tmp_path / "real.yaml").read_text()


@pytest.mark.parametrize(
    ("command", "in_the_way"),
    [
        (("sweep", "--set", "terms.buyback_share=0,0.5,1"), "buyback_share=0.5.json"),
        (("sweep", "--set", "terms.buyback_share=0,0.5,1"), "sweep.csv"),
        (("sweep", "--set", "terms.buyback_share=0,0.5"), "sweep.png"),
        (("batch",), "tiny.json"),
    ],
    ids=["sweep-point", "sweep-csv", "sweep-heatmap", "batch-plan"],
)
@pytest.mark.parametrize("kind", ["directory", "fifo", "link"])
def test_every_file_a_sweep_or_batch_writes_is_checked_before_any_solve(tmp_path, command, in_the_way, kind):
    # A directory named as the second point's plan (or sweep.csv) stopped the sweep after its
    # first solve, naming a temporary file (".buyback_share=0.5.json.x1y2.tmp: Is a directory"),
    # and the points after it were never solved.
    source = _tiny_file(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    blocker = out / in_the_way
    if kind == "directory":
        blocker.mkdir()
    elif kind == "fifo":
        os.mkfifo(blocker)
    else:
        (tmp_path / "elsewhere.json").write_text("{}")
        blocker.symlink_to(tmp_path / "elsewhere.json")
    before = tree(tmp_path)
    outcome = dsx("plan", command[0], source, *command[1:], "-o", out, "--workers", "1")
    what = {"directory": "a directory", "fifo": "a named pipe (FIFO)", "link": "a symbolic link"}[kind]
    assert_one_clear_error(
        outcome, names=(f"{blocker}: is {what}, where dsx plan {command[0]} writes a file",)
    )
    assert ".tmp" not in outcome.stderr and tree(tmp_path) == before


def test_a_batch_plan_name_too_long_to_write_is_refused_before_any_solve(tmp_path):
    # The first file's plan was written, then the second's failed: "File name too long".
    from planner.files import NAME_MAX_BYTES

    first = _tiny_file(tmp_path)
    long = _tiny_file(tmp_path, "x" * (NAME_MAX_BYTES - len(".json") + 1) + ".yaml")
    before = tree(tmp_path)
    outcome = dsx("plan", "batch", first, long, "-o", tmp_path / "out", "--workers", "1")
    assert_one_clear_error(outcome, names=(f"would take {NAME_MAX_BYTES + 1} bytes", "shorter name"))
    assert tree(tmp_path) == before


def test_a_plan_that_cannot_be_written_fails_its_point_alone_naming_the_plan_not_a_temporary_file(
    tmp_path, monkeypatch
):
    # A full disk at one point's plan stopped the sweep there, naming `.NAME.XXXXXXXX.tmp`.
    import errno

    from planner import files

    real = files.temporary_beside

    def full_at_half(target: Path, *args, **kwargs):
        if target.name == "buyback_share=0.5.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(target, *args, **kwargs)

    monkeypatch.setattr(files, "temporary_beside", full_at_half)
    source = _tiny_file(tmp_path)
    out = tmp_path / "out"
    outcome = dsx(
        "plan", "sweep", source, "--set", "terms.buyback_share=0,0.5,1", "-o", out, "--workers", "1",
        "--no-value-of-information",
    )  # fmt: skip
    assert outcome.code == 4, outcome.text
    assert f"{out / 'buyback_share=0.5.json'}: cannot be written (No space left on device)" in outcome.stderr
    assert ".tmp" not in outcome.text
    assert sorted(p.name for p in out.glob("*.json")) == ["buyback_share=0.json", "buyback_share=1.json"]
    assert not list(out.glob(".*.tmp"))


# YAML keys -----------------------------------------------------------------------------------


def test_a_key_given_twice_in_a_scenario_file_is_refused_naming_the_line_and_the_key(
    tmp_path, must_not_solve
):
    # The last one won: `buyback_share: 0.8` then `buyback_share: 0.2` solved with 0.2, exit 0.
    text = EXAMPLE_SCENARIO.read_text()
    assert "  buyback_share: 0.8\n" in text
    source = tmp_path / "case.yaml"
    source.write_text(text.replace("  buyback_share: 0.8\n", "  buyback_share: 0.8\n  buyback_share: 0.2\n"))
    line = source.read_text().splitlines().index("  buyback_share: 0.2") + 1
    solve_rejects(
        tmp_path,
        source,
        f"line {line}: the key 'buyback_share' is given twice",
        f"lines {line - 1} and {line}",
    )


def test_a_case_given_twice_in_an_overrides_file_is_refused(tmp_path, must_not_solve):
    overrides = tmp_path / "cases.yaml"
    overrides.write_text("low:\n  terms.buyback_share: 0.6\nlow:\n  terms.buyback_share: 0.9\n")
    before = tree(tmp_path)
    outcome = dsx(
        "plan",
        "solve",
        EXAMPLE_SCENARIO,
        "--overrides",
        overrides,
        "--case",
        "low",
        "-o",
        tmp_path / "p.json",
    )
    assert_one_clear_error(outcome, names=(f"{overrides}: line 3: the key 'low' is given twice",))
    assert tree(tmp_path) == before


def test_a_key_given_twice_in_a_set_value_is_refused(tmp_path, must_not_solve):
    given = "sites[batam].existing_racks={gb300-nvl72: 1, gb300-nvl72: 2}"
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "--set", given, "-o", tmp_path / "p.json")
    assert_one_clear_error(outcome, names=(f"--set '{given}'", "gives the key 'gb300-nvl72' twice"))
    assert tree(tmp_path) == {}


def test_a_key_given_twice_in_a_stack_file_is_refused_naming_the_line(tmp_path, plan_file):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text("config:\n  dsx:site: batam\n  dsx:site: sydney\n")
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks)
    assert_one_clear_error(
        outcome, names=("Pulumi.batam.yaml", "line 3", "the key 'dsx:site' is given twice")
    )
    assert tree(tmp_path) == before


def test_an_unquoted_number_as_a_scenario_id_says_to_quote_it(tmp_path, must_not_solve):
    source = tmp_path / "case.yaml"
    source.write_text(
        yaml.safe_dump(
            BASE | {"tenants": [BASE["tenants"][0] | {"demand_gpus": {1: [55.0]}}]}, sort_keys=False
        )
    )
    solve_rejects(tmp_path, source, "tenants[acme].demand_gpus.1 (the key)", 'quote it, e.g. "1": ...')


def test_a_null_path_in_an_overrides_file_is_refused_naming_it_null(tmp_path, must_not_solve):
    # It became the path "None": "None: Extra inputs are not permitted".
    overrides = tmp_path / "cases.yaml"
    overrides.write_text("a: {null: 1}\n")
    outcome = dsx(
        "plan", "solve", EXAMPLE_SCENARIO, "--overrides", overrides, "--case", "a", "-o", tmp_path / "p.json"
    )
    assert_one_clear_error(outcome, names=(f"{overrides}: override 'a': the path null is not a field path",))


def test_a_set_that_makes_a_site_inconsistent_names_the_site_by_id(tmp_path, must_not_solve):
    # "sites[0].existing_racks" where the other lines said sites[batam].
    solve_rejects(
        tmp_path,
        EXAMPLE_SCENARIO,
        "sites[batam].existing_racks: existing racks draw",
        extra=("--set", "sites[batam].existing_racks={gb300-nvl72: 100000}"),
    )


# Sweeps blame the value where it was set -----------------------------------------------------


@pytest.mark.parametrize("with_case", [False, True], ids=["base", "with-a-case"])
def test_a_sweeps_bad_set_value_is_blamed_on_the_set_not_on_an_override(tmp_path, with_case):
    # "Fix: change the values of override 'buyback_share=1.5' in base.yaml" (or in the overrides
    # file): no such override exists anywhere.
    source = _tiny_file(tmp_path)
    overrides = tmp_path / "cases.yaml"
    overrides.write_text(yaml.safe_dump({"a-case": {"terms.revenue_share": 0.1}}))
    case = ("--overrides", overrides, "--case", "a-case") if with_case else ()
    before = tree(tmp_path)
    outcome = dsx(
        "plan", "sweep", source, *case, "--set", "terms.buyback_share=0.5,1.5", "-o", tmp_path / "out",
        "--workers", "1",
    )  # fmt: skip
    assert_one_clear_error(
        outcome,
        names=(
            f"{source} (",
            "terms.buyback_share",
            "Fix: change or leave out the value 1.5 of --set terms.buyback_share",
        ),
    )
    assert "override 'buyback_share=1.5'" not in outcome.stderr and f"in {overrides}" not in outcome.stderr
    assert tree(tmp_path) == before


def test_a_sweeps_case_that_is_bad_alone_is_blamed_on_the_case_in_its_file(tmp_path):
    source = _tiny_file(tmp_path)
    overrides = tmp_path / "cases.yaml"
    overrides.write_text(yaml.safe_dump({"a-case": {"terms.revenue_share": 2}}))
    outcome = dsx(
        "plan", "sweep", source, "--overrides", overrides, "--case", "a-case",
        "--set", "terms.buyback_share=0.5,0.6", "-o", tmp_path / "out", "--workers", "1",
    )  # fmt: skip
    assert_one_clear_error(outcome, names=(f"Fix: change the values of override 'a-case' in {overrides}",))
    assert "--set" not in outcome.stderr
