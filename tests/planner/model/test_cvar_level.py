"""After a solve the CVaR level sits at its best value for the plan's scenario values, so the
reported objective is the plan's own (a MIP incumbent may leave it short)."""

from __future__ import annotations

import pytest

from planner.model.build import build_model
from planner.model.objective import best_cvar_level
from tests.planner.small_scenarios import uncertain


def test_a_level_left_short_is_moved_to_the_alpha_quantile_by_hand():
    # Two equally likely values 10 and 30, alpha 0.5: CVaR is the worse half, 10.
    m = build_model(uncertain(buyback_price=8.0, cvar_weight=0.5))
    m.scenario_value["bust"].set_value(10.0)
    m.scenario_value["boom"].set_value(30.0)
    m.cvar_eta.set_value(4.0)  # feasible but low: eta - 2 x 0.5 x 0 = 4
    for s in ("boom", "bust"):
        m.cvar_shortfall[s].set_value(0.0)
    assert best_cvar_level(m) == pytest.approx(0.5 * (10.0 - 4.0))
    assert _cvar(m) == pytest.approx(10.0)  # any level in [10, 30] attains it
    assert best_cvar_level(m) == 0.0  # already best: nothing moves


def _cvar(m) -> float:
    """eta - Sum_s p_s / (1 - alpha) a_s, with a_s checked to be exactly the shortfall."""
    eta = m.cvar_eta.value
    for s in ("boom", "bust"):
        assert m.cvar_shortfall[s].value == pytest.approx(max(0.0, eta - m.scenario_value[s].value))
    return eta - sum(0.5 / 0.5 * m.cvar_shortfall[s].value for s in ("boom", "bust"))


def test_a_loss_scenario_sets_the_cvar():
    m = build_model(uncertain(buyback_price=8.0, cvar_weight=1.0))
    m.scenario_value["bust"].set_value(-5.0)
    m.scenario_value["boom"].set_value(20.0)
    m.cvar_eta.set_value(-100.0)
    m.cvar_shortfall["bust"].set_value(0.0)
    m.cvar_shortfall["boom"].set_value(0.0)
    gain = best_cvar_level(m)
    assert _cvar(m) == pytest.approx(-5.0)  # alpha 0.5: the worse half is the bust
    assert gain == pytest.approx(-5.0 - -100.0)


def test_without_cvar_nothing_changes():
    assert best_cvar_level(build_model(uncertain(buyback_price=8.0))) == 0.0
