"""What `dsx plan solve` and `show` print about small plans: figures legible at any size, the
basis of every money column, the racks' power named as facility power, and a notice where a
party sits at its participation floor.

The scenarios are the tiny base case (tests/planner/small_scenarios.py) changed as each says.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsx.commands.plan_solve import outcome_table, parties_table, risk_table, site_period_table
from planner.files import read_plan
from planner.schema.plan import Plan, WalkAway
from tests.dsx.harness import Outcome, assert_one_clear_error, dsx, tree
from tests.planner.small_scenarios import BASE


def _scenario(tmp_path: Path, name: str, change: dict[str, Any]) -> Path:
    data = copy.deepcopy(BASE)
    for path, value in change.items():
        *parents, leaf = path.split(".")
        at = data
        for key in parents:
            at = at[0] if key == "0" else at.setdefault(key, {})
        at[leaf] = value
    data["name"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _solve(tmp_path: Path, scenario: Path, *flags: str) -> tuple[Outcome, Path]:
    out = tmp_path / f"{scenario.stem}.json"
    outcome = dsx("plan", "solve", scenario, "-o", out, "--no-value-of-information", *flags)
    assert outcome.code == 0, outcome.text
    return outcome, out


SMALL_SITE = {
    # 0.25 MW energised and no room for more, PUE 1.25: two 100 kW racks need 0.2 MW of IT power,
    # 0.25 MW at the facility. They rent 20 of the 55 GPUs wanted: US$ 438,000 of revenue
    # (20 x 2190 x 10) against US$ 200,000 of capex, 35 x 2190 = 76,650 GPU-hours unserved.
    "sites.0.existing_mw": 0.25,
    "sites.0.power_cap_mw": 0.25,
    "sites.0.pue": 1.25,
    "terms.guarantor_hardware_margin": 0.1,  # US$ 20,000: the guarantor is not at its floor
}


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcome, Plan]:
    tmp_path = tmp_path_factory.mktemp("small-site")
    outcome, out = _solve(tmp_path, _scenario(tmp_path, "small-site", SMALL_SITE))
    return outcome, read_plan(out)


def _site_row(text: str) -> list[str]:
    (row,) = [line for line in text.splitlines() if line.startswith("│ alpha")]
    return [cell.strip() for cell in row.strip("│").split("│")]


def test_a_sub_megawatt_site_prints_its_power_legibly_and_never_over_committed(small_site):
    # It printed 0 MW available against 0.2 MW of load: over-committed to the eye, 0.25/0.25 in truth.
    outcome, plan = small_site
    (row,) = plan.site_periods
    assert (row.available_mw, row.it_load_mw) == pytest.approx((0.25, 0.25))
    cells = _site_row(outcome.stdout)
    available, need = cells[3], cells[4]
    assert (available, need) == ("0.25", "0.25")


def test_money_and_hours_under_a_million_are_not_printed_as_zero(small_site):
    # US$ M and M GPU-h with one decimal printed the cloud's US$ 238,000 as 0.2 and the
    # 76,650 unserved GPU-hours as 0.1, and smaller figures as 0.0.
    outcome, plan = small_site
    (o,) = plan.outcomes
    assert o.cloud_value_usd == pytest.approx(238_000.0)
    assert o.unserved_gpu_hours == pytest.approx(76_650.0)
    row = next(line for line in outcome.stdout.splitlines() if line.startswith("│ only"))
    assert "0.238" in row and "0.438" in row and "0.077" in row


def test_a_share_is_never_rounded_to_none_or_to_all():
    # Utilisation printed 0.4% as 0% and 99.6% as 100%.
    from dsx.commands.numbers import share

    assert [share(u) for u in (0.0, 0.004, 0.5, 0.996, 1.0)] == ["0%", "<1%", "50%", ">99%", "100%"]


def _headers(table) -> list[str]:
    return [str(column.header) for column in table.columns]


def test_every_money_column_names_its_basis(small_site):
    # "Per scenario (values discounted ...)" stood over undiscounted revenue, buyback and revenue share.
    _, plan = small_site
    outcome = _headers(outcome_table(plan))
    assert outcome[2:] == [
        "cloud\ndiscounted",
        "guarantor\ndiscounted",
        "syndicate\ndiscounted",
        "revenue\nundiscounted",
        "buyback\nundiscounted",
        "rev share\nundiscounted",
        "credit loss\nundiscounted",
        "served\nM GPU-h",
        "unserved\nM GPU-h",
    ]
    assert "discounted" not in str(outcome_table(plan).title)
    assert _headers(site_period_table(plan))[-2:] == ["buyback\nundiscounted", "rev share\nundiscounted"]
    assert all(h.endswith("\ndiscounted") for h in _headers(parties_table(plan))[1:])
    figures = [str(cell) for cell in risk_table(plan).columns[0].cells if "US$" in str(cell)]
    assert figures and all("US$ M, discounted" in figure for figure in figures)


def test_the_racks_power_is_named_facility_power_not_it(small_site):
    # "MW IT" showed racks x kW x PUE: 0.25 MW here, where the racks draw 0.2 MW of IT power.
    _, plan = small_site
    headers = _headers(site_period_table(plan))
    assert "facility MW\navailable" in headers and "facility MW\nracks need" in headers
    assert not any("IT" in h for h in headers)


AT_THE_CLOUDS_FLOOR = {
    # The guarantor's view, margin 0.5 on US$ 328,500 racks; 30 GPUs wanted at US$ 20 earn
    # 30 x 2190 x 20 = US$ 1,314,000 = 4 racks' capex. The guarantor builds 4 racks (one idle in
    # part) and leaves the cloud exactly 0, its default floor; a 5th would take the cloud below
    # it. The cloud's own plan builds 3 and makes US$ 328,500.
    "rack_types.0.capex_usd": 328_500.0,
    "tenants.0.price_usd_per_gpu_hour": 20.0,
    "tenants.0.demand_gpus": {"only": [30.0]},
    "terms.guarantor_hardware_margin": 0.5,
    "objective.perspective": "guarantor",
}


def test_a_plan_that_holds_the_cloud_at_its_floor_says_so(tmp_path):
    outcome, out = _solve(tmp_path, _scenario(tmp_path, "floor", AT_THE_CLOUDS_FLOOR))
    plan = read_plan(out)
    cloud = next(f for f in plan.parties if f.party == "cloud")
    assert cloud.expected_value_usd == pytest.approx(0.0, abs=1e-3)
    assert plan.racks[0].racks_installed == 4
    notice = " ".join(outcome.stderr.split())
    assert "notice: the cloud sits at its participation floor" in notice
    assert "expected value US$ 0 against participation.cloud.min_expected_value_usd = US$ 0" in notice
    assert "set participation.cloud.min_expected_value_usd in the scenario" in notice
    assert "guarantor sits" not in notice
    shown = dsx("plan", "show", out)
    assert "notice: the cloud sits at its participation floor" in " ".join(shown.stderr.split())


def test_walk_away_floors_show_each_partys_walk_away_value_and_surplus(tmp_path):
    # The same deal with walk-away floors. With no revenue share, buyback or credits the deal is
    # the cloud's plan alone: 3 racks, the cloud US$ 328,500 and the guarantor its margin on them,
    # 3 x 0.5 x 328,500 = US$ 492,750, each its walk-away value. The guarantor's plan can then give
    # the cloud no less: the same 3 racks, and neither party gains over walking away.
    change = {**AT_THE_CLOUDS_FLOOR, "participation.floors": "walk_away"}
    outcome, out = _solve(tmp_path, _scenario(tmp_path, "walk-away", change))
    plan = read_plan(out)
    assert plan.racks[0].racks_installed == 3
    figures = {f.party: f for f in plan.parties}
    assert figures["cloud"].walk_away_value_usd == pytest.approx(328_500.0, abs=1.0)
    assert figures["guarantor"].walk_away_value_usd == pytest.approx(492_750.0, abs=1.0)
    assert figures["cloud"].expected_value_usd == pytest.approx(328_500.0, abs=1.0)
    table = parties_table(plan)
    headers = _headers(table)
    assert "walk-away (no" in headers[-2] and "over walk-away" in headers[-1]
    rows = {cells[0]: cells for cells in zip(*(column._cells for column in table.columns), strict=True)}
    assert rows["cloud"][-2] == "0.329" and rows["cloud"][-1] == "0.000"
    assert rows["guarantor (objective)"][-2] == "0.493"
    # The syndicate's value is the two parties' summed, with the deal and without: its walk-away
    # value is 328,500 + 492,750 = 821,250, and the deal gains nothing over walking away.
    assert rows["syndicate"][-2] == "0.821" and rows["syndicate"][-1] == "0.000"
    notice = " ".join(outcome.stderr.split())
    assert (
        "notice: the cloud sits at its walk-away value: expected value US$ 328,500 against US$ 328,500"
        in notice
    )
    assert "participation floor" not in notice
    shown = " ".join(dsx("plan", "show", out).stdout.split())
    assert "over walk-away" in shown


CREDIT_DEAL = {
    # tests/planner/test_walk_away.py's case: acme (30 GPUs, cash) and nova (20 GPUs, all paid with
    # the guarantor's credits, `repayment` of them repaid), revenue share and margin 10%. The cloud
    # alone makes US$ 357,000 and leaves the guarantor US$ 30,000; at repayment 0.3 no plan gives
    # both that, the guarantor short by US$ 34,767 in the closest.
    "tenants": [
        {"id": "acme", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"only": [30.0]}},
        {
            "id": "nova",
            "price_usd_per_gpu_hour": 10.0,
            "demand_gpus": {"only": [20.0]},
            "token_credit_share": 1.0,
            "credit_repayment_share": 0.3,
        },
    ],
    "terms.revenue_share": 0.1,
    "terms.guarantor_hardware_margin": 0.1,
    "objective.perspective": "guarantor",
    "participation.floors": "walk_away",
}


def test_a_deal_that_cannot_beat_walking_away_is_one_clear_error(tmp_path):
    source = _scenario(tmp_path, "no-deal-wins", CREDIT_DEAL)
    before = tree(tmp_path)
    solved = dsx("plan", "solve", source, "-o", tmp_path / "plan.json", "--no-value-of-information")
    assert_one_clear_error(
        solved,
        code=3,
        names=(
            "the deal cannot beat walking away",
            "participation.guarantor.min_expected_value_usd: the closest plan falls short of it by US$34,767",
            "walk-away value, US$357,000",
        ),
    )
    assert tree(tmp_path) == before


def test_a_bad_floors_option_is_one_clear_error(tmp_path):
    source = _scenario(tmp_path, "bad-floors", {"participation.floors": "walk-away"})
    solved = dsx("plan", "solve", source, "-o", tmp_path / "plan.json")
    assert_one_clear_error(
        solved, code=2, names=(str(source), "participation.floors", "'given' or 'walk_away'", "walk-away")
    )


def test_a_given_floor_above_the_walk_away_value_is_named_as_such(tmp_path):
    # The cloud's view with the guarantor's given floor 31,000 over its walk-away 30,000 (and
    # repayment 0.5): the guarantor is held at 31,000 (tests/planner/test_walk_away.py).
    change = {
        **CREDIT_DEAL,
        "objective.perspective": "cloud",
        "participation.guarantor": {"min_expected_value_usd": 31_000.0},
    }
    change["tenants"] = copy.deepcopy(CREDIT_DEAL["tenants"])
    change["tenants"][1]["credit_repayment_share"] = 0.5
    outcome, out = _solve(tmp_path, _scenario(tmp_path, "given-above", change), "--json")
    notice = " ".join(outcome.stderr.split())
    assert (
        "the guarantor sits at its participation floor: expected value US$ 31,000 against "
        "participation.guarantor.min_expected_value_usd = US$ 31,000, above its walk-away value of US$ 30,000"
    ) in notice
    summary = json.loads(outcome.stdout)
    assert summary["walk_away"]["cloud_value_usd"] == pytest.approx(357_000.0, abs=1.0)
    assert summary["walk_away"]["racks_built"] == 3
    assert read_plan(out).walk_away == WalkAway.model_validate(summary["walk_away"])


def test_given_floors_show_no_walk_away_columns(tmp_path):
    _, out = _solve(tmp_path, _scenario(tmp_path, "floor", AT_THE_CLOUDS_FLOOR))
    assert not any("walk-away" in h for h in _headers(parties_table(read_plan(out))))


@pytest.mark.parametrize(
    ("change", "cloud_usd", "racks"),  # cloud_usd: the least and most the cloud can make
    [
        # Its own plan: 3 racks and US$ 328,500 (the guarantor US$ 492,750, well above its floor).
        ({"objective.perspective": "cloud"}, (328_500.0, 328_500.0), 3),
        # A floor far below: the guarantor builds to the GPU cap, 100 racks, and the cloud loses
        # at least 100 x 328,500 - 1,314,000 = US$ 31,536,000 (more if the guarantor, indifferent
        # to sales, leaves demand unserved), far above US$ -1,000,000,000.
        ({"participation": {"cloud": {"min_expected_value_usd": -1e9}}}, (-32_850_000.0, -31_536_000.0), 100),
    ],
    ids=["the-cloud-s-own-plan", "a-floor-far-below"],
)
def test_no_notice_where_no_party_sits_at_its_floor(tmp_path, change, cloud_usd, racks):
    scenario = _scenario(tmp_path, "off-floor", {**AT_THE_CLOUDS_FLOOR, **change})
    outcome, out = _solve(tmp_path, scenario, "--json")
    plan = read_plan(out)
    cloud = next(f for f in plan.parties if f.party == "cloud").expected_value_usd
    assert cloud_usd[0] - 1.0 <= cloud <= cloud_usd[1] + 1.0
    assert plan.racks[0].racks_installed == racks
    assert "notice:" not in outcome.stderr
    assert json.loads(outcome.stdout)["notices"] == []


THROTTLED_FOR_THE_GUARANTOR = {
    # tests.planner.insight.test_refusals.credit_tenant with the guarantor's default floor: one
    # rack, 10 GPUs wanted at US$ 10 in both scenarios, all of it in credits the guarantor never
    # sees repaid in 'bad'. The cloud's plan serves 'good' in full and 2,433.3 of the 21,900 hours
    # of 'bad', keeping the guarantor at 0; its quota of 10 GPUs had room for the other 19,466.7,
    # which the operator would admit: 0.5 x 19,466.7 = 9,733 expected GPU-hours.
    "tenants.0.demand_gpus": {"good": [10.0], "bad": [10.0]},
    "tenants.0.token_credit_share": 1.0,
    "tenants.0.credit_repayment_share": 1.0,
    "tenants.0.credit_repayment_share_by_scenario": {"bad": 0.0},
    "scenarios": [{"id": "good", "probability": 0.5}, {"id": "bad", "probability": 0.5}],
    "terms.revenue_share": 0.1,
}


def test_a_plan_refusing_demand_its_quota_had_room_for_says_so(tmp_path):
    outcome, out = _solve(tmp_path, _scenario(tmp_path, "throttled", THROTTLED_FOR_THE_GUARANTOR), "--json")
    notices = json.loads(outcome.stdout)["notices"]
    refusal = next(n for n in notices if "quotas had room for" in n)
    assert "9,733 expected GPU-hours (acme 2026Q1 in bad)" in refusal
    assert "the site will serve them" in refusal
    shown = dsx("plan", "show", out)
    assert "notice: the plan refuses demand its own quotas had room for" in " ".join(shown.stderr.split())
    # Without the guarantor's floor the cloud serves every hour: no notice.
    free = {**THROTTLED_FOR_THE_GUARANTOR, "participation": {"guarantor": {"min_expected_value_usd": None}}}
    outcome, _ = _solve(tmp_path, _scenario(tmp_path, "served", free), "--json")
    assert not any("quotas had room for" in n for n in json.loads(outcome.stdout)["notices"])
