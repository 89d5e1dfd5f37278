"""EVPI and VSS: hand-checked on the boom/bust case, and never negative on random small cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.stochastic import compute, stochastic_figures
from tests.insight.helpers import solved, three_quarters
from tests.planner.small_scenarios import uncertain


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

    figures = compute(three_quarters(change))
    assert figures.ws_usd >= figures.rp_usd - 1e-6
    assert figures.rp_usd >= figures.eev_usd - 1e-6
    assert figures.evpi_usd >= 0.0 and figures.vss_usd >= 0.0
