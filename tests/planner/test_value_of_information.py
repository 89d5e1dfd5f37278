"""EVPI and VSS: hand-checked on the boom/bust case, never negative on random small cases, and
carried by the plans the pipeline (and so `dsx plan solve`) writes."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dsx import cli
from planner import pipeline
from planner.errors import NoPlanError
from planner.files import read_plan
from planner.pipeline import solve_scenario
from planner.value_of_information import compute, stochastic_figures
from tests.planner.insight.helpers import solved, three_quarters
from tests.planner.small_scenarios import NO_REQUIREMENTS, uncertain

cli._register_commands()
runner = CliRunner()


def test_evpi_on_the_boom_bust_case_is_the_foresight_profit():
    # Without cover no rack pays (RP = 0); with foresight the boom earns 438,000 - 300,000.
    figures = compute(uncertain(buyback_price=0.0))
    assert figures.rp_usd == pytest.approx(0.0, abs=1e-3)
    assert figures.evpi_usd == pytest.approx(0.5 * 138_000.0, rel=1e-6)
    # EV demand is 5 GPUs: half a rack is not worth buying either, so VSS = 0.
    assert figures.vss_usd == pytest.approx(0.0, abs=1e-3)


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
