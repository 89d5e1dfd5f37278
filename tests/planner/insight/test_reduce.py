"""Scenario reduction: forward selection keeps the scenarios a hand count picks, the ones left out
give their probability to their nearest kept one, and the result is a scenario the planner reads."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bench.scenarios import synthetic_scenario
from planner.errors import UserError
from planner.files import load_scenario, parse_scenario
from planner.insight.reduce import forward_selection, reduce_scenarios, scenario_values_usd
from planner.model.size import model_size
from tests.conftest import EXAMPLE_SCENARIO
from tests.dsx.harness import assert_one_clear_error, dsx, tree
from tests.planner.small_scenarios import H, tiny


def _four(demands=(0.0, 1.0, 10.0, 11.0), probabilities=(0.25, 0.25, 0.25, 0.25), **tenant):
    """One tenant at US$10 a GPU-hour, one quarter, one scenario per demand."""
    ids = ["a", "b", "c", "d"][: len(demands)]

    def change(data):
        data["tenants"][0]["demand_gpus"] = {s: [g] for s, g in zip(ids, demands, strict=True)}
        data["tenants"][0].update(tenant)
        data["scenarios"] = [{"id": s, "probability": p} for s, p in zip(ids, probabilities, strict=True)]

    return tiny(change)


def test_two_of_four_keep_one_of_each_pair_and_take_its_probability():
    # Values 0, 1, 10, 11 (x h x US$10). Step 1: b and c both cost 0.25 x (1 + 9 + 10) = 5 and
    # a or d 5.5; the first, b, is kept. Step 2: c and d both cost 0.25 x (1 + 1) = 0.5 (a 4.75):
    # c. Then a goes to b and d to c, each 1 away.
    reduced, reduction = reduce_scenarios(_four(), 2)
    assert reduction.kept == ["b", "c"]
    assert reduction.probability == {"b": 0.5, "c": 0.5}
    assert reduction.stands_for == {"b": ["a"], "c": ["d"]}
    assert reduction.distance_usd == pytest.approx(0.5 * H * 10.0)
    # The spread: every scenario's distance to the mean value (5.5).
    assert reduction.spread_usd == pytest.approx(0.25 * (5.5 + 4.5 + 4.5 + 5.5) * H * 10.0)
    assert [c.id for c in reduced.scenarios] == ["b", "c"]
    assert [c.probability for c in reduced.scenarios] == [0.5, 0.5]
    assert reduced.tenants[0].demand_gpus == {"b": [1.0], "c": [10.0]}


def test_a_likely_scenario_is_kept_before_an_unlikely_one():
    # With a at 0.7, keeping one scenario: a costs 0.1 x (1 + 10 + 11) = 2.2, b 0.7 + 0.1 x 19 = 2.6.
    _, reduction = reduce_scenarios(_four(probabilities=(0.7, 0.1, 0.1, 0.1)), 1)
    assert reduction.kept == ["a"] and reduction.probability == {"a": pytest.approx(1.0)}
    assert reduction.distance_usd == pytest.approx(0.1 * (1 + 10 + 11) * H * 10.0)


def test_unrepaid_credits_make_scenarios_of_equal_demand_differ():
    def change(data):
        data["tenants"][0]["demand_gpus"] = {"a": [10.0], "b": [10.0], "c": [10.0]}
        data["tenants"][0]["token_credit_share"] = 0.5
        data["tenants"][0]["credit_repayment_share_by_scenario"] = {"a": 1.0, "b": 1.0, "c": 0.0}
        data["scenarios"] = [{"id": s, "probability": 1 / 3} for s in ("a", "b", "c")]

    scenario = tiny(change)
    values = scenario_values_usd(scenario)
    assert values[:, 0].tolist() == pytest.approx([H * 10 * 10, H * 10 * 10, H * 10 * 10 * 0.5])
    reduced, reduction = reduce_scenarios(scenario, 2)
    # a and b are the same scenario: one of them and c are kept.
    assert reduction.kept == ["a", "c"] and reduction.stands_for == {"a": ["b"], "c": []}
    assert reduced.tenants[0].credit_repayment_share_by_scenario == {"a": 1.0, "c": 0.0}


def test_each_pick_of_forward_selection_is_the_best_given_the_earlier_ones():
    # Forward selection is greedy; its first pick is the best single scenario, and each later
    # pick the best given the earlier ones (checked against every candidate by brute force).
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.normal(size=(12, 3))
        p = rng.dirichlet(np.ones(12))
        d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
        kept = forward_selection(d, p, 4)
        for step in range(4):
            before = kept[:step]

            def cost(u, before=before, p=p, d=d):
                return float(p @ d[:, [*before, u]].min(axis=1))

            best = min((u for u in range(12) if u not in before), key=cost)
            assert cost(kept[step]) == pytest.approx(cost(best))


def test_the_reduced_scenario_is_smaller_and_keeps_its_probabilities_whole():
    scenario = synthetic_scenario(4, 2, 6, 3, 20, seed=2)
    reduced, reduction = reduce_scenarios(scenario, 5)
    assert len(reduced.scenarios) == 5
    assert sum(c.probability for c in reduced.scenarios) == pytest.approx(1.0)
    left_out = {s for others in reduction.stands_for.values() for s in others}
    assert left_out | set(reduction.kept) == {c.id for c in scenario.scenarios}
    assert model_size(reduced).served_columns < model_size(scenario).served_columns
    assert 0 < reduction.distance_usd < reduction.spread_usd


@pytest.mark.parametrize("keep", [0, 3, 4])
def test_keeping_none_or_all_is_refused(keep):
    with pytest.raises(UserError, match="cannot keep"):
        reduce_scenarios(_four(demands=(1.0, 2.0, 3.0), probabilities=(0.2, 0.3, 0.5)), keep)


def test_dsx_plan_reduce_writes_a_scenario_the_planner_reads(tmp_path):
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump(synthetic_scenario(3, 2, 4, 2, 8, seed=3).model_dump(mode="json")))
    out = tmp_path / "out" / "reduced.yaml"
    outcome = dsx("plan", "reduce", source, "--scenarios", "3", "-o", out, "--json")
    assert outcome.code == 0, outcome.text
    summary = yaml.safe_load(outcome.stdout)
    reduced = load_scenario(out)
    assert [c.id for c in reduced.scenarios] == summary["kept"]
    assert {c.id: c.probability for c in reduced.scenarios} == pytest.approx(summary["probability"])
    # Written without its defaults, it reads back as the reduction made it.
    assert reduced == reduce_scenarios(load_scenario(source), 3)[0]
    assert out.read_text().startswith("# 3 of the 8 scenarios of ")


def test_a_reduced_file_reduced_again_names_the_last_reduction_only():
    once, _ = reduce_scenarios(_four(), 3)
    twice, _ = reduce_scenarios(once, 2)
    assert (once.name, twice.name) == ("tiny-r3", "tiny-r2")
    assert twice.description.endswith("(2 of 3 scenarios kept by fast forward selection)")
    assert twice.description.count("kept by fast forward selection") == 1


def test_dsx_plan_reduce_refuses_keeping_every_scenario_and_writes_nothing(tmp_path):
    before = tree(tmp_path)
    outcome = dsx("plan", "reduce", EXAMPLE_SCENARIO, "--scenarios", "3", "-o", tmp_path / "r.yaml")
    assert_one_clear_error(
        outcome, names=(str(EXAMPLE_SCENARIO), "cannot keep 3 of its 3", "between 1 and 2")
    )
    assert tree(tmp_path) == before


def test_probabilities_that_sum_to_one_only_within_rounding_reduce_to_a_valid_scenario():
    # 0.13 + 0.16 + 0.16 + 0.20 + 0.15 + 0.20 is 1.0000000000000002 in floats: one scenario kept
    # must still have a probability of at most 1.
    ids = ["a", "b", "c", "d", "e", "f"]

    def change(data):
        data["tenants"][0]["demand_gpus"] = {s: [float(n)] for n, s in enumerate(ids)}
        data["scenarios"] = [
            {"id": s, "probability": q}
            for s, q in zip(ids, (0.13, 0.16, 0.16, 0.20, 0.15, 0.20), strict=True)
        ]

    for keep in (1, 2, 5):
        reduced, _ = reduce_scenarios(tiny(change), keep)
        assert all(c.probability <= 1.0 for c in reduced.scenarios)
        assert sum(c.probability for c in reduced.scenarios) == pytest.approx(1.0, abs=1e-12)


def test_duplicate_scenarios_are_zero_apart_and_the_first_is_kept():
    scenario = synthetic_scenario(4, 2, 6, 3, 6, seed=4)
    data = scenario.model_dump(mode="json")
    for tenant in data["tenants"]:
        tenant["demand_gpus"]["s005"] = list(tenant["demand_gpus"]["s002"])
    twin = parse_scenario(data, "twin")
    values = scenario_values_usd(twin)
    assert np.array_equal(values[2], values[5])
    _, reduction = reduce_scenarios(twin, 5)
    assert "s005" not in reduction.kept and reduction.stands_for["s002"] == ["s005"]
    assert reduction.distance_usd == 0.0


def test_a_file_of_one_scenario_has_nothing_to_reduce():
    with pytest.raises(UserError, match="nothing to reduce"):
        reduce_scenarios(tiny(), 1)


def test_dsx_plan_reduce_never_writes_over_its_input(tmp_path):
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump(synthetic_scenario(3, 2, 4, 2, 8, seed=3).model_dump(mode="json")))
    before = tree(tmp_path)
    outcome = dsx("plan", "reduce", source, "--scenarios", "3", "-o", tmp_path / "." / "in.yaml")
    assert_one_clear_error(outcome, names=("the scenario file being reduced",))
    assert tree(tmp_path) == before
