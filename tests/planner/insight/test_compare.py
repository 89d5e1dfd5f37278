"""Comparing two known plans: the stylised case with and without the buyback cover."""

from __future__ import annotations

import pytest

from planner.insight.compare import compare_plans
from planner.pipeline import solve_scenario
from tests.planner.small_scenarios import uncertain


@pytest.fixture(scope="module")
def plans():
    # Price 0: no rack pays (expected -81,000); price 10 at full cover: one rack, expected +28,500.
    return solve_scenario(uncertain(buyback_price=0.0)), solve_scenario(uncertain(buyback_price=10.0))


def test_build_change_is_reported_per_site_and_quarter(plans):
    cmp = compare_plans(*plans)
    (change,) = cmp.site_periods
    assert (change.site, change.period) == ("alpha", "2026Q1")
    assert (change.racks_before, change.racks_after) == (0, 1)
    assert (change.gpus_before, change.gpus_after) == (0, 10)


def test_quota_and_money_deltas_are_hand_checkable(plans):
    cmp = compare_plans(*plans)
    (quota,) = cmp.quotas
    assert (
        quota.tenant == "acme"
        and quota.quota_gpus_before == 0
        and quota.quota_gpus_after == pytest.approx(10)
    )
    money = {m.figure: m for m in cmp.money}
    assert money["expected value, discounted"].before_usd == pytest.approx(0.0, abs=1e-3)
    assert money["expected value, discounted"].delta_usd == pytest.approx(28_500.0, rel=1e-6)
    # bust: 21,900 unsold GPU-hours x US$10, with probability 0.5
    assert money["expected buyback, undiscounted"].delta_usd == pytest.approx(109_500.0, rel=1e-6)


def test_notes_say_why_it_matters(plans):
    notes = " ".join(compare_plans(*plans).notes)
    assert "1 more racks" in notes and "expected value rises" in notes and "buyback" in notes


def test_identical_plans_have_no_changes(plans):
    cmp = compare_plans(plans[1], plans[1])
    assert not cmp.site_periods and not cmp.quotas
    assert all(m.delta_usd in (None, 0.0) for m in cmp.money)
    assert "no build, power or quota decision differs" in cmp.notes


def test_every_money_figure_names_its_basis(plans):
    # "expected buyback" (undiscounted) was compared beside "expected value" (discounted), unlabelled.
    figures = [m.figure for m in compare_plans(*plans).money]
    assert all(f.endswith((", discounted", ", undiscounted")) for f in figures)
    assert [f for f in figures if f.endswith(", undiscounted")] == [
        "expected buyback, undiscounted",
        "expected revenue share, undiscounted",
        "expected credit loss, undiscounted",
    ]
    notes = " ".join(compare_plans(*plans).notes)
    assert "rises by US$ 0.029 M, discounted" in notes and "grow by US$ 0.11 M, undiscounted" in notes
