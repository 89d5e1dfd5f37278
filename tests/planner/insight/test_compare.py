"""Comparing two known plans: the stylised case with and without the buyback cover; plans whose
figures or horizons differ in definition."""

from __future__ import annotations

import pytest

from planner.files import parse_scenario, read_plan
from planner.insight.compare import BUYBACK, CVAR, EXPECTED_VALUE, compare_plans
from planner.pipeline import solve_scenario
from planner.verify import verify_plan
from tests.planner.insight.helpers import solved, three_quarters
from tests.planner.small_scenarios import uncertain
from tests.planner.test_buyback_matching import OLD_PLAN, as_1_4_with_agreeing_record, solved_one_site_each
from tests.planner.two_sites import two_sites_data


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
    assert "1 more rack (10 GPUs)" in notes and "expected buyback payments grow by US$ 0.110 M" in notes
    # Expected value rises by US$28,500: written with the digits it needs, never as US$ 0.0 M.
    assert "expected value rises by US$ 0.029 M" in notes and "US$ 0.0 M" not in notes


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
    assert "rises by US$ 0.029 M, discounted" in notes and "grow by US$ 0.110 M, undiscounted" in notes


@pytest.fixture(scope="module")
def quarters():
    """Three quarters from 2026Q1 (CVaR at alpha 0.5); the same at alpha 0.9; one quarter later."""
    return (
        solved(three_quarters()),
        solved(three_quarters(lambda d: d["objective"].update(cvar_alpha=0.9))),
        solved(three_quarters(lambda d: d["periods"].update(start_quarter="2026Q2"))),
    )


def test_a_cvar_over_another_tail_is_not_compared_nor_read_as_less_risk(quarters):
    # alpha 0.75 against 0.5 was reported as "CVaR rises by US$ 10.5 M: downside risk is smaller".
    before, other_alpha, _ = quarters
    cmp = compare_plans(before, other_alpha)
    money = {m.figure: m for m in cmp.money}
    assert money[CVAR].delta_usd is None
    assert money[CVAR].not_comparable == ["CVaR level (alpha) 0.5 vs 0.9"]
    assert money[EXPECTED_VALUE].not_comparable == []
    notes = " ".join(cmp.notes)
    assert "CVaR over different tails (alpha 0.5 vs 0.9)" in notes and "downside risk" not in notes
    assert cmp.to_dict()["money"][1]["delta_usd"] is None


def test_quarters_outside_a_plan_s_horizon_are_absent_not_zero(quarters):
    # A plan starting a quarter later was shown as building nothing in 2026Q1, and the racks it
    # holds in its last quarter (which the first plan never reaches) read as more capital committed.
    before, _, later = quarters
    cmp = compare_plans(before, later)
    rows = {(c.site, c.period): c for c in cmp.site_periods}
    first, last = rows["alpha", "2026Q1"], rows["alpha", "2026Q4"]
    assert (first.racks_after, first.gpus_after, first.mw_after) == (None, None, None)
    assert first.racks_before is not None
    assert (last.racks_before, last.gpus_before, last.mw_before) == (None, None, None)
    notes = " ".join(cmp.notes)
    assert "the plans cover different quarters (2026Q1-2026Q3 vs 2026Q2-2026Q4)" in notes
    assert "capital" not in notes and "by 2026Q4" not in notes
    # Sums over different horizons measure different things.
    assert all(m.delta_usd is None and m.not_comparable for m in cmp.money)


def test_a_change_too_small_to_show_gets_no_note(plans):
    # US$400 more buyback (under the US$ 0.001 M a note can show) was noted as "expected buyback payments grow by US$ 0.0 M".
    before = plans[1]
    outcomes = [o.model_copy(update={"buyback_usd": o.buyback_usd + 400.0}) for o in before.outcomes]
    cmp = compare_plans(before, before.model_copy(update={"outcomes": outcomes}))
    money = {m.figure: m for m in cmp.money}
    assert money[BUYBACK].delta_usd == pytest.approx(400.0)
    assert not any("US$ 0.0 M" in note or "buyback" in note for note in cmp.notes), cmp.notes


def test_a_plan_before_1_5_and_one_after_bill_buyback_by_different_rules(plans):
    """The stylised plans relabelled: a 1.4 plan's buyback is the per-site rule's (docs/model.md,
    "Buyback"), so against a 1.5 plan its buyback, and the values that hold it, are not compared;
    the syndicate's values hold no buyback and still are."""
    before, after = plans
    # The plan with buyback in its terms relabelled (the other's bill none by either rule).
    old = after.model_copy(update={"schema_version": "1.4"})
    cmp = compare_plans(before, old)
    money = {m.figure: m for m in cmp.money}
    rule = "buyback rule matching (schema 1.5) vs per-site (schema 1.4)"
    for figure in (BUYBACK, EXPECTED_VALUE, CVAR, "expected guarantor value, discounted"):
        assert money[figure].not_comparable == [rule] and money[figure].delta_usd is None, figure
    assert money["expected revenue share, undiscounted"].delta_usd is not None
    (note,) = [n for n in cmp.notes if n.startswith(f"the plans bill buyback by different rules ({rule})")]
    # No record: what the plan's buyback would be by the matching rule is unknown, and no more is said.
    assert "the schema 1.4 plan records no comparison with the matching rule" in note, note
    assert "bills less" not in note
    assert not any("buyback payments grow" in note for note in cmp.notes)
    # Both 1.5, or both syndicate: compared as before.
    assert not compare_plans(before, after).money[0].not_comparable
    as_syndicate = {"perspective": "syndicate"}
    cmp = compare_plans(before.model_copy(update=as_syndicate), old.model_copy(update=as_syndicate))
    money = {m.figure: m for m in cmp.money}
    assert money[EXPECTED_VALUE].delta_usd is not None and money[BUYBACK].delta_usd is None


def test_a_1_4_plan_whose_record_shows_the_rules_agree_is_compared_with_a_1_5_plan():
    """Each tenant may use one site: both rules bill US$109,500 per scenario, as the 1.4 record
    says (the verifier checks it), so the figures mean the same and are compared, both ways; the
    bundled example's cloud view was marked not comparable at 2,162.740 M on both sides."""
    scenario, plan = solved_one_site_each()
    older = as_1_4_with_agreeing_record(plan)
    assert verify_plan(scenario, older).passed
    for before, after in ((older, plan), (plan, older)):
        cmp = compare_plans(before, after)
        assert all(not m.not_comparable for m in cmp.money), cmp.money
        # Every figure but the CVaR, which this plan (no CVaR in its objective) does not report.
        assert {m.figure for m in cmp.money if m.delta_usd == 0.0} == {m.figure for m in cmp.money} - {CVAR}
        assert not any("different rules" in note for note in cmp.notes), cmp.notes
        assert any(
            "the schema 1.4 plan bills buyback by the per-site rule, and its buyback_matching record "
            "shows the matching rule bills the same buyback: its figures are compared" in note
            for note in cmp.notes
        ), cmp.notes


def test_a_1_4_plan_whose_record_differs_is_not_compared_and_the_note_gives_its_figures():
    """The hand case: US$0 by the per-site rule the 1.4 plan bills, US$54,750 by the matching rule."""
    scenario = parse_scenario(two_sites_data(), "two-sites")
    older, newer = read_plan(OLD_PLAN), solve_scenario(scenario, value_of_information=False)
    cmp = compare_plans(older, newer)
    money = {m.figure: m for m in cmp.money}
    assert money[BUYBACK].delta_usd is None and money[BUYBACK].not_comparable
    (note,) = [n for n in cmp.notes if n.startswith("the plans bill buyback by different rules")]
    assert (
        "by the matching rule the schema 1.4 plan's expected buyback would be US$ 0.055 M "
        "(undiscounted), not the US$ 0.000 M it bills" in note
    ), note


def test_a_plan_before_1_5_whose_terms_bill_no_buyback_is_compared_with_a_1_5_plan():
    """No buyback price: both rules bill nothing, so a 1.3 plan with no record is compared (as
    `show` says nothing of it); it was marked not comparable (final review, session 27)."""
    data = two_sites_data()
    data["terms"]["buyback_price_usd_per_gpu_hour"] = 0.0
    plan = solve_scenario(parse_scenario(data, "no-buyback"), value_of_information=False)
    older = plan.model_copy(update={"schema_version": "1.3", "buyback_matching": None})
    for before, after in ((older, plan), (plan, older)):
        cmp = compare_plans(before, after)
        assert all(not m.not_comparable for m in cmp.money), cmp.money
        assert not any("different rules" in note for note in cmp.notes), cmp.notes
        assert any("terms bill no buyback, by either rule" in note for note in cmp.notes), cmp.notes
