"""EVPI and VSS: hand-checked on the boom/bust case and on builds the EV plan gets right or short
(whatever quotas it picks), never negative on random small cases, and carried by the plans the
pipeline (and so `dsx plan solve`) writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dsx import cli
from planner import pipeline, value_of_information
from planner.errors import NoPlanError
from planner.files import parse_scenario, read_plan
from planner.pipeline import solve_scenario
from planner.schema.scenario import Scenario
from planner.value_of_information import compute, stochastic_figures
from tests.planner.insight.helpers import solved, three_quarters
from tests.planner.small_scenarios import NO_REQUIREMENTS, H, tiny, uncertain
from tests.planner.test_walk_away import two_acme_scenarios

CASES = Path(__file__).parent / "walk_away_cases"

cli._register_commands()
runner = CliRunner()


def test_evpi_on_the_boom_bust_case_is_the_foresight_profit():
    # Without cover no rack pays (RP = 0); with foresight the boom earns 438,000 - 300,000.
    figures = compute(uncertain(buyback_price=0.0))
    assert figures.rp_usd == pytest.approx(0.0, abs=1e-3)
    assert figures.evpi_usd == pytest.approx(0.5 * 138_000.0, rel=1e-6)
    # EV demand is 5 GPUs: half a rack is not worth buying either, so VSS = 0.
    assert figures.vss_usd == pytest.approx(0.0, abs=1e-3)


def _both_build_to_the_cap(data):
    """Two quarters, no discounting; racks of 10 GPUs at US$100,000 over 2 quarters (50,000 per
    installed quarter), at most 4 (gpu_cap 40). Every idle GPU-hour is bought back at US$5, so an
    idle rack earns 5 x 2190 x 10 = 109,500 > 50,000 a quarter: the EV and every scenario's plan
    build all 4 racks in the first quarter. Demand low [10, 14], high [30, 34], p = 0.5 each:
    the mean is [20, 24]."""
    data["periods"]["count_quarters"] = 2
    data["sites"][0]["gpu_cap"] = 40
    data["rack_types"][0]["lifetime_periods"] = 2
    data["tenants"][0]["demand_gpus"] = {"low": [10.0, 14.0], "high": [30.0, 34.0]}
    data["scenarios"] = [{"id": "low", "probability": 0.5}, {"id": "high", "probability": 0.5}]
    data["terms"].update(buyback_price_usd_per_gpu_hour=5.0, buyback_share=1.0)
    data["participation"] = NO_REQUIREMENTS


@pytest.mark.parametrize("ev_quota_gpus", [None, (20.0, 24.0), (24.0, 24.0)])
def test_vss_is_zero_when_the_ev_plan_builds_the_same_whatever_quota_tie_it_picks(ev_quota_gpus, monkeypatch):
    # In the EV problem a first-quarter quota anywhere in [20, 24] is optimal (quotas cost nothing;
    # the second quarter's is 24, the term's mean peak, and never shrinks). Fixing that tie capped
    # the high scenario's serving: VSS came out 0.5 x 21,900 x 20 = 219,000 at (20, 24) and
    # 0.5 x 21,900 x 16 = 175,200 at (24, 24), though both plans build the same 4 racks.
    # RP = EEV = 21,900 x 44 (mean served GPU-quarters) + 10,950 x 36 (mean idle) - 400,000 = 957,800.
    if ev_quota_gpus is not None:
        solve = value_of_information._solve

        def tied(scenario, m=None, **kwargs):
            value, model = solve(scenario, m, **kwargs)
            if [case.id for case in scenario.scenarios] == [value_of_information.EV_SCENARIO_ID]:
                for (_k, _i, _r, t), quota in model.quota_gpus.items():
                    quota.set_value(ev_quota_gpus[t])
            return value, model

        monkeypatch.setattr(value_of_information, "_solve", tied)
    figures = compute(tiny(_both_build_to_the_cap))
    assert figures.rp_usd == pytest.approx(957_800.0, rel=1e-6)
    assert figures.eev_usd == pytest.approx(figures.rp_usd, rel=1e-6)
    assert figures.vss_usd == pytest.approx(0.0, abs=1e-6 * figures.rp_usd)


def test_vss_is_what_building_for_the_scenarios_earns_with_quotas_chosen_afresh():
    # One quarter; racks of 10 GPUs at US$80,000; demand 0 or 30 GPUs (p = 0.5), mean 15; a fully
    # rented rack earns 10 x 2190 x 10 = 219,000. EV: a second rack serving 5 GPUs earns 109,500 >
    # 80,000, a third nothing: 2 racks. RP: each of 3 racks earns 0.5 x 219,000 = 109,500 > 80,000:
    # RP = 0.5 x 30 x 21,900 - 240,000 = 88,500. EEV, 2 racks and quotas chosen for the real
    # scenarios (20 GPUs): 0.5 x 20 x 21,900 - 160,000 = 59,000, so VSS = 29,500. With the EV
    # quota of 15 GPUs (the mean) kept, EEV was 4,250 and VSS 84,250.
    def change(data):
        data["rack_types"][0]["capex_usd"] = 80_000.0
        data["tenants"][0]["demand_gpus"] = {"low": [0.0], "high": [30.0]}
        data["scenarios"] = [{"id": "low", "probability": 0.5}, {"id": "high", "probability": 0.5}]
        data["participation"] = NO_REQUIREMENTS

    figures = compute(tiny(change))
    assert figures.rp_usd == pytest.approx(0.5 * 30 * H * 10 - 240_000.0, rel=1e-6)
    assert figures.eev_usd == pytest.approx(59_000.0, rel=1e-6)
    assert figures.vss_usd == pytest.approx(29_500.0, rel=1e-6)


def test_stochastic_figures_uses_the_plans_objective():
    scenario = three_quarters()
    evpi, vss = stochastic_figures(scenario, solved(scenario))
    assert evpi >= 0.0 and vss >= 0.0


@settings(max_examples=8, deadline=None)
@given(
    low=st.lists(st.integers(0, 60), min_size=3, max_size=3),
    extra=st.lists(st.integers(0, 60), min_size=3, max_size=3),
    p_low=st.sampled_from([0.2, 0.5, 0.8]),
    price=st.sampled_from([6.0, 10.0, 14.0]),
    share=st.sampled_from([0.0, 0.5, 1.0]),
    cvar_weight=st.sampled_from([0.0, 0.5]),
)
def test_evpi_and_vss_are_never_negative(low, extra, p_low, price, share, cvar_weight):
    def change(data):
        data["tenants"][0]["price_usd_per_gpu_hour"] = price
        data["tenants"][0]["demand_gpus"] = {
            "low": [float(x) for x in low],
            "high": [float(x + y) for x, y in zip(low, extra, strict=True)],
        }
        data["scenarios"] = [{"id": "low", "probability": p_low}, {"id": "high", "probability": 1 - p_low}]
        data["terms"].update(buyback_price_usd_per_gpu_hour=2.0, buyback_share=share)
        data["objective"]["cvar_weight"] = cvar_weight
        data["participation"] = NO_REQUIREMENTS

    figures = compute(three_quarters(change))
    assert figures.ws_usd >= figures.rp_usd - 1e-6
    assert figures.rp_usd >= figures.eev_usd - 1e-6
    assert figures.evpi_usd >= 0.0 and figures.vss_usd >= 0.0


def test_a_plan_solved_with_value_of_information_carries_evpi_and_vss():
    scenario = three_quarters()
    plan = solve_scenario(scenario, value_of_information=True)
    assert plan.verification.passed
    assert plan.risk.evpi_usd is not None and plan.risk.evpi_usd >= 0.0
    assert plan.risk.vss_usd is not None and plan.risk.vss_usd >= 0.0
    assert plan.risk.value_of_information_note is None
    figures = compute(scenario)
    assert plan.risk.evpi_usd == pytest.approx(figures.evpi_usd, rel=1e-6, abs=1e-3)
    assert plan.risk.vss_usd == pytest.approx(figures.vss_usd, rel=1e-6, abs=1e-3)


def test_the_boom_bust_plan_file_holds_the_hand_known_evpi(tmp_path):
    # Through `dsx plan solve` as a user runs it: the file written carries EVPI = 69,000, VSS = 0.
    source = tmp_path / "boom-bust.yaml"
    source.write_text(yaml.safe_dump(uncertain(buyback_price=0.0).model_dump(mode="json")))
    out = tmp_path / "plan.json"
    result = runner.invoke(cli.app, ["plan", "solve", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    plan = read_plan(out)
    assert plan.risk.evpi_usd == pytest.approx(0.5 * 138_000.0, rel=1e-6)
    assert plan.risk.vss_usd == pytest.approx(0.0, abs=1e-3)
    assert (
        "EVPI: perfect foresight is worth" in result.stdout
        and "VSS: planning with scenarios" in result.stdout
    )


def test_a_failed_figure_leaves_the_verified_plan_with_the_reason(monkeypatch):
    def no_solution(*_args, **_kwargs):
        raise NoPlanError(
            "scenario 'x (high only)': no solution for a stochastic figure (HiGHS: Time limit reached)"
        )

    monkeypatch.setattr(pipeline, "with_value_of_information", no_solution)
    plan = pipeline.solve_scenario(three_quarters(), value_of_information=True)
    assert plan.verification.passed
    assert plan.risk.evpi_usd is None and plan.risk.vss_usd is None
    assert "Time limit reached" in plan.risk.value_of_information_note


def test_without_value_of_information_the_plan_says_why_its_figures_are_empty():
    plan = solve_scenario(three_quarters())
    assert plan.risk.evpi_usd is None and plan.risk.vss_usd is None
    assert plan.risk.value_of_information_note == "EVPI and VSS not computed: skipped on request"


def _decomposed(scenario):
    return scenario.model_copy(
        update={"solver": scenario.solver.model_copy(update={"method": "decomposition"})}
    )


@pytest.mark.parametrize("case", ["boom-bust", "three-quarters"])
def test_decomposed_wait_and_see_and_ev_solves_start_from_the_plan_to_the_same_figures(case, monkeypatch):
    # The WS and EV solves get the plan as their start, which used to send a decomposed solve to
    # the extensive form; each now starts its Benders loop from it, to the extensive form's
    # figures (boom/bust: EVPI = 69,000 by hand, VSS = 0).
    from planner.solve import decomposition

    base = uncertain(buyback_price=0.0) if case == "boom-bust" else three_quarters()
    scenario = _decomposed(base)
    plan = solve_scenario(scenario)
    starts = []
    decompose = decomposition.decompose

    def kept(*args, **kwargs):
        starts.append(kwargs.get("start"))
        return decompose(*args, **kwargs)

    monkeypatch.setattr(decomposition, "decompose", kept)
    evpi, vss = stochastic_figures(scenario, plan)
    assert sum(start is not None for start in starts) == len(scenario.scenarios) + 1  # WS and EV
    extensive = compute(base, rp_usd=solved(base).solver.objective_usd)
    assert evpi == pytest.approx(extensive.evpi_usd, rel=1e-6, abs=1e-3)
    assert vss == pytest.approx(extensive.vss_usd, rel=1e-6, abs=1e-3)
    if case == "boom-bust":
        assert evpi == pytest.approx(0.5 * 138_000.0, rel=1e-6)


def test_a_failed_wait_and_see_solve_costs_evpi_only_and_both_failing_raises(monkeypatch):
    # Boom/bust (VSS = 0 by hand): the boom's wait-and-see solve stopped by the clock leaves EVPI
    # out with the reason, and VSS still reported; the EV solve failing too leaves nothing.
    solve = value_of_information._solved
    stopped = {"boom"}

    def clock(scenario, m=None, **kwargs):
        if [case.id for case in scenario.scenarios] in [[tag] for tag in stopped]:
            raise NoPlanError(f"scenario '{scenario.name}': no solution (HiGHS: Time limit reached)")
        return solve(scenario, m, **kwargs)

    monkeypatch.setattr(value_of_information, "_solved", clock)
    base = uncertain(buyback_price=0.0)
    assert {c.id for c in base.scenarios} >= {"boom"}
    figures = compute(base)
    assert figures.evpi_usd is None and figures.ws_usd is None
    assert figures.evpi_note is not None and "Time limit reached" in figures.evpi_note
    assert figures.vss_usd == pytest.approx(0.0, abs=1e-3) and figures.vss_note is None
    assert figures.note() == f"EVPI not computed: {figures.evpi_note}"
    stopped.add(value_of_information.EV_SCENARIO_ID)
    with pytest.raises(NoPlanError) as caught:
        compute(base)
    assert "VSS not computed either" in "\n".join(caught.value.details)


def _credit_deal_with_given_floor() -> Scenario:
    """The walk-away hand case (one certain scenario, guarantor's view: acme 30 GPUs cash, nova 20
    on credits half repaid) with the cloud's walk-away value, US$ 357,000, given as its floor. The
    floor binds: the guarantor's best plan otherwise holds the cloud at 0."""
    data = yaml.safe_load((CASES / "credit_wa.yaml").read_text())
    data["participation"] = {"floors": "given", "cloud": {"min_expected_value_usd": 357_000.0}}
    return parse_scenario(data, "credit_wa with a given floor")


def test_with_one_certain_scenario_a_binding_given_floor_leaves_evpi_and_vss_zero():
    # Wait-and-see used to drop the cloud's floor: "EVPI" came out US$ 1,033,646 (what dropping
    # the floor is worth: the guarantor sells 97 idle racks at its margin) and VSS "not computed"
    # (the EV problem dropped it too, so its build was another deal's). One certain scenario has
    # nothing to forecast.
    figures = compute(_credit_deal_with_given_floor())
    assert figures.rp_usd > 30_000.0  # above the guarantor's walk-away value: the deal is signed
    assert figures.ws_usd == pytest.approx(figures.rp_usd, rel=1e-6)
    assert figures.evpi_usd == pytest.approx(0.0, abs=1e-6 * figures.rp_usd)
    assert figures.vss_usd == pytest.approx(0.0, abs=1e-6 * figures.rp_usd)


def test_wait_and_see_is_solved_joined_only_where_the_scenarios_alone_break_a_floor(monkeypatch):
    joined = []
    foresight = value_of_information._foresight_task

    def counted(deal):
        joined.append(deal.name)
        return foresight(deal)

    monkeypatch.setattr(value_of_information, "_foresight_task", counted)
    compute(_credit_deal_with_given_floor())
    assert len(joined) == 1
    # Boom/bust with the default floors (each party's expected value >= 0): the scenarios' own
    # plans meet them, so they are the joined optimum and nothing more is solved.
    figures = compute(uncertain(buyback_price=0.0, participation={}))
    assert len(joined) == 1
    assert figures.evpi_usd is not None


def test_an_expected_value_problem_that_cannot_meet_the_floors_says_so_and_keeps_evpi():
    # Credits repaid in full in the boom (20 GPUs) and not at all in the bust (10): the mean
    # scenario (15 GPUs at half repayment) loses the guarantor more than the scenarios do on
    # average, so the EV problem, keeping the guarantor's floor, has no plan (review, session 26).
    # VSS is not defined there; the note says why instead of "no solution (HiGHS: Infeasible)".
    def change(data):
        data["tenants"][0].update(
            price_usd_per_gpu_hour=10.0,
            demand_gpus={"boom": [20.0], "bust": [10.0]},
            token_credit_share=1.0,
            credit_repayment_share=1.0,
            credit_repayment_share_by_scenario={"boom": 1.0, "bust": 0.0},
        )
        data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
        data["terms"]["guarantor_hardware_margin"] = 0.5
        data["participation"] = {
            "cloud": {"min_expected_value_usd": 128_500.0},
            "guarantor": {"min_expected_value_usd": -10_000.0},
        }

    figures = compute(tiny(change))
    assert figures.vss_usd is None
    assert figures.vss_note is not None and value_of_information.EV_INFEASIBLE in figures.vss_note
    assert figures.evpi_usd is not None and figures.evpi_note is None


def test_the_joined_wait_and_see_solve_gets_the_time_limit_once_per_scenario(monkeypatch):
    # It is one model of S builds standing for S single-scenario solves, each given the limit,
    # and it has no rounded start: with one limit the bundled example's walk-away EVPI was lost.
    limits = []
    solve = value_of_information.solve_model

    def spy(m, options, *args, **kwargs):
        if args and args[0] == value_of_information.FORESIGHT_INTERFACE:
            limits.append(options.time_limit_s)
        return solve(m, options, *args, **kwargs)

    monkeypatch.setattr(value_of_information, "solve_model", spy)
    deal = two_acme_scenarios()  # walk-away floors, two scenarios: WS is the joined solve
    figures = compute(deal)
    assert limits == [2 * deal.solver.time_limit_s]
    assert figures.evpi_usd == pytest.approx(93_500.0, abs=1.0)
