"""The figures deal teams reconcile (session 26's hand-solved review, probes in /tmp/hunt-econ):
the per-scenario table shows every horizon sum a plan records, credit loss included; a sweep
shows each party's side; every US$ M figure prints with one rule in every table and command;
`diagnose` says what the closest plan reaches as the figures shown add up; `compare` counts in
the right number."""

from __future__ import annotations

import copy
import csv
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsx.commands.plan_solve import outcome_table, parties_table, risk_table, site_period_table
from planner.files import read_plan
from planner.insight.compare import compare_plans
from planner.insight.diagnose import _requirement_conflict
from planner.pipeline import solve_scenario
from planner.schema.plan import Plan
from tests.dsx.harness import dsx
from tests.planner.small_scenarios import BASE, tiny, uncertain

SITE = {
    "id": "alpha",
    "jurisdiction": "AU",
    "power_cap_mw": 1.0,
    "existing_mw": 0.3,
    "existing_racks": {"rack10": 1},
    "power_block_mw": 0.3,
    "power_lead_time_periods": 1,
    "power_price_usd_per_mwh": 80.0,
    "pue": 1.25,
    "gpu_cap": 1000,
    "max_racks_built_per_period": 2,
    "max_power_blocks_per_period": 1,
    "power_capex_usd_per_mw": 400_000.0,
    "power_asset_lifetime_periods": 8,
}

CREDIT_DEAL: dict[str, Any] = {
    # The review's b-syndicate.yaml. nova rents 10 GPUs in Q2 and Q3 at US$12, half paid in credits
    # the guarantor advances; in lo it repays 20% of them: credit loss 0.5 x 0.8 x 12 x 2 x 21,900
    # = US$210,240 (undiscounted), none in hi. The table showed revenue, buyback and revenue share
    # but not this, so the guarantor's 0.160 (hi) against -0.036 (lo) could not be read from it.
    "version": 1,
    "name": "credit-deal",
    "periods": {"start_quarter": "2026Q1", "count_quarters": 3, "discount_rate_annual": 0.2},
    "sites": [SITE],
    "rack_types": [
        {
            "id": "rack10",
            "gpu_product": "NVIDIA-TEST",
            "gpus_per_rack": 10,
            "nodes_per_rack": 1,
            "kw_per_rack": 200.0,
            "capex_usd": 120_000.0,
            "lifetime_periods": 2,
            "opex_usd_per_rack_period": 4000.0,
        }
    ],
    "tenants": [
        {
            "id": "acme",
            "price_usd_per_gpu_hour": 8.0,
            "demand_gpus": {"hi": [10.0, 20.0, 30.0], "lo": [10.0, 10.0, 10.0]},
        },
        {
            "id": "nova",
            "price_usd_per_gpu_hour": 12.0,
            "demand_gpus": {"hi": [0.0, 10.0, 10.0], "lo": [0.0, 10.0, 10.0]},
            "token_credit_share": 0.5,
            "credit_repayment_share": 1.0,
            "credit_repayment_share_by_scenario": {"lo": 0.2},
        },
    ],
    "scenarios": [{"id": "hi", "probability": 0.5}, {"id": "lo", "probability": 0.5}],
    "terms": {
        "buyback_price_usd_per_gpu_hour": 1.5,
        "buyback_share": 0.6,
        "revenue_share": 0.15,
        "guarantor_hardware_margin": 0.1,
    },
    "objective": {"perspective": "syndicate"},
    "solver": {"time_limit_s": 20, "mip_rel_gap": 0.0},
}


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _rows(text: str) -> dict[str, list[str]]:
    """A rendered table's body rows by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def _rendered(table) -> str:
    from rich.console import Console

    console = Console(width=220)
    with console.capture() as captured:
        console.print(table)
    return captured.get()


@pytest.fixture(scope="module")
def credit_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Plan]:
    tmp_path = tmp_path_factory.mktemp("credit")
    out = tmp_path / "plan.json"
    outcome = dsx("plan", "solve", _write(tmp_path, CREDIT_DEAL), "-o", out, "--no-value-of-information")
    assert outcome.code == 0, outcome.text
    return outcome.stdout, read_plan(out)


def test_the_per_scenario_table_shows_credit_loss_and_served_hours(credit_plan):
    _, plan = credit_plan
    lo = next(o for o in plan.outcomes if o.scenario == "lo")
    assert lo.credit_loss_usd == pytest.approx(210_240.0)
    table = outcome_table(plan)
    headers = [str(c.header) for c in table.columns]
    assert headers[6:] == [
        "buyback\nundiscounted",
        "rev share\nundiscounted",
        "credit loss\nundiscounted",
        "served\nM GPU-h",
        "unserved\nM GPU-h",
    ]
    rows = _rows(_rendered(table))
    # hi: acme 10+20+20 racks' worth served, nova 10+10: 109,500 GPU-hours; 65,700 refused.
    assert rows["hi"][2:] == ["0.478", "0.160", "0.638", "1.051", "0.000", "0.158", "0.000", "0.110", "0.066"]
    assert rows["lo"][2:] == [
        "0.478",
        "-0.036",
        "0.442",
        "1.051",
        "0.000",
        "0.158",
        "0.210",
        "0.110",
        "0.000",
    ]


def test_the_per_scenario_table_says_what_each_value_holds_beyond_its_columns(credit_plan):
    # The guarantor's 0.160 is its margin plus revenue share, each quarter discounted: neither the
    # margin nor a discounted sum is in a plan, and the table now says so rather than leave the
    # columns to look as if they should add up.
    _, plan = credit_plan
    caption = " ".join(_rendered(outcome_table(plan)).split())
    assert "guarantor = hardware margin + rev share - buyback - credit loss" in caption
    assert "cloud = revenue - rev share + buyback - energy - capex - opex" in caption
    assert "A plan records no energy, capex, opex or margin" in caption


E_CASE = {
    # The review's e.yaml: three existing racks, 10 GPUs rented at US$10 in either scenario: the
    # cloud makes 21,900 x 10 x 0.9 - 3 x 5,000 opex - energy 3,285 + buyback 10,950... = US$171,315.
    "periods.count_quarters": 1,
    "sites.0.existing_racks": {"rack10": 3},
    "sites.0.power_price_usd_per_mwh": 100.0,
    "sites.0.pue": 1.5,
    "rack_types.0.lifetime_periods": 4,
    "rack_types.0.opex_usd_per_rack_period": 5000.0,
    "tenants.0.demand_gpus": {"hi": [10.0], "lo": [10.0]},
    "scenarios": [{"id": "hi", "probability": 0.6}, {"id": "lo", "probability": 0.4}],
    "terms": {
        "buyback_price_usd_per_gpu_hour": 1.0,
        "buyback_share": 0.5,
        "revenue_share": 0.1,
        "guarantor_hardware_margin": 0.2,
    },
}


def _base_with(change: dict[str, Any], name: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for path, value in change.items():
        *parents, leaf = path.split(".")
        at: Any = data
        for key in parents:
            at = at[int(key)] if key.isdigit() else at[key]
        at[leaf] = value
    data["name"] = name
    return data


def test_every_table_prints_a_us_m_figure_alike(tmp_path):
    # The parties table printed the cloud's US$171,315 as 0.17, the per-scenario and risk tables
    # as 0.171: each table chose its decimals from its own figures.
    out = tmp_path / "e.json"
    outcome = dsx(
        "plan", "solve", _write(tmp_path, _base_with(E_CASE, "e")), "-o", out, "--no-value-of-information"
    )
    assert outcome.code == 0, outcome.text
    plan = read_plan(out)
    cloud = next(f for f in plan.parties if f.party == "cloud")
    assert round(cloud.expected_value_usd / 1e6, 3) == 0.171
    parties = _rows(_rendered(parties_table(plan)))
    assert parties["cloud (objective)"][1:4] == ["0.171", "0.171 (alpha 0.9)", "0.171"]
    assert parties["guarantor"][1] == "0.000"
    outcomes = _rows(_rendered(outcome_table(plan)))
    assert outcomes["hi"][2] == outcomes["lo"][2] == "0.171"
    risk = _rendered(risk_table(plan))
    assert re.search(r"expected value \(US\$ M, discounted\)\s+│\s+0\.171 │", risk)
    # Every US$ M cell of every table: three decimals, whatever else the table holds.
    money = [
        cell
        for table in (site_period_table(plan), outcome_table(plan), parties_table(plan))
        for column in table.columns
        if "discounted" in str(column.header)
        for cell in column.cells
        if cell != "-"
    ]
    assert money and all(re.fullmatch(r"-?[\d,]*\.\d{3}( \(alpha 0\.9\))?", cell) for cell in money), money


def test_a_large_figure_keeps_three_decimals_too():
    from dsx.commands.numbers import musd

    # One rule at every size: US$ 12,071,512,345 is 12,071.512 in any table, not 12,071.5 in one.
    assert [musd(v) for v in (12_071_512_345.0, 28_000.0, 0.0, -36_159.04, None)] == [
        "12,071.512",
        "0.028",
        "0.000",
        "-0.036",
        "-",
    ]


def test_the_value_of_information_table_prints_us_m_as_every_other_table(tmp_path):
    # One certain scenario: EVPI and VSS are 0; the table printed "0.00" where others print 0.000.
    data = _base_with({}, "one-scenario")
    outcome = dsx("plan", "value-of-information", _write(tmp_path, data), "--workers", "1")
    assert outcome.code == 0, outcome.text
    rows = _rows(outcome.stdout)
    evpi = next(cells for first, cells in rows.items() if first.startswith("EVPI"))
    vss = next(cells for first, cells in rows.items() if first.startswith("VSS"))
    assert evpi[1] == vss[1] == "0.000"


def test_a_sweep_shows_each_partys_expected_value_and_cvar_per_point(tmp_path):
    # sweep.csv and the table showed the perspective's value only; a deal team sweeps terms to see
    # both sides. The boom/bust case at buyback price 0 and 10 (full cover): at 10 the cloud's one
    # rack earns it 28,500 expected, the guarantor pays the bust's 219,000 buyback (-109,500).
    data = uncertain(buyback_price=10.0).model_dump(mode="json")
    out = tmp_path / "sweep"
    outcome = dsx(
        "plan",
        "sweep",
        _write(tmp_path, {**data, "name": "boom-bust"}),
        "--set",
        "terms.buyback_price_usd_per_gpu_hour=0,10",
        "-o",
        out,
        "--workers",
        "1",
        "--no-value-of-information",
    )
    assert outcome.code == 0, outcome.text
    with (out / "sweep.csv").open() as handle:
        rows = {row["point"]: row for row in csv.DictReader(handle)}
    for label, row in rows.items():
        plan = read_plan(out / f"{label}.json")
        for figures in plan.parties:
            assert float(row[f"{figures.party}_expected_discounted_usd"]) == pytest.approx(
                figures.expected_value_usd
            )
            assert float(row[f"{figures.party}_cvar_discounted_usd"]) == pytest.approx(figures.cvar_usd)
        assert float(row["party_cvar_alpha"]) == plan.parties[0].cvar_alpha
    covered = rows["buyback_price_usd_per_gpu_hour=10"]
    assert float(covered["cloud_expected_discounted_usd"]) == pytest.approx(28_500.0)
    assert float(covered["guarantor_expected_discounted_usd"]) == pytest.approx(-109_500.0)
    assert float(covered["expected_credit_loss_undiscounted_usd"]) == 0.0
    assert "Each party per point (US$ M, discounted; CVaR at alpha 0.9)" in outcome.stdout
    table = _rows(outcome.stdout.split("Each party per point")[1])
    # The cloud: 28,500 expected; CVaR at 0.9 is its bust, -300,000 capex + 219,000 buyback.
    assert table["10"][1:3] == ["0.029", "-0.081"]
    assert table["10"][3] == "-0.110"  # the guarantor: half the time it pays 219,000


def test_diagnose_says_what_the_closest_plan_reaches_as_the_figures_shown_add_up():
    # The review's awa.yaml: HiGHS's shortfall US$39,420.00000000004 of US$319,530 was floored
    # to "reaches US$280,109", where 319,530 - 39,420 = 280,110.
    scenario = tiny(lambda d: d.update(participation={"cloud": {"min_expected_value_usd": 319_530.0}}))
    conflict = _requirement_conflict(
        scenario, "participation.cloud.min_expected_value_usd", 39_420.00000000004, closest=True
    )
    assert "falls short of it by US$39,420.00 (US$319,530.00 required; the closest whole plan reaches " in (
        conflict.explanation
    )
    assert conflict.explanation.endswith("reaches US$280,110.00)")
    assert "lower participation.cloud.min_expected_value_usd to at most 280110 " in conflict.fix


@pytest.mark.parametrize("gap_usd", [15_499.996, 15_500.004, 0.004, 1_234.5678, 39_420.00000000004])
@pytest.mark.parametrize("field", ["min_expected_value_usd", "max_buyback_exposure_usd_total"])
def test_a_requirements_line_adds_up_by_hand_and_never_overstates_the_reach(gap_usd, field):
    # Kept from the floor: "reaches" is never above what the plan reaches (a cap's "exposes" never
    # below), so the fix's value is one the plan meets; shown in cents, required - short = reached.
    party = "cloud" if field.startswith("min") else "guarantor"
    required = 620_000.25
    scenario = tiny(lambda d: d.update(participation={party: {field: required}}))
    conflict = _requirement_conflict(scenario, f"participation.{party}.{field}", gap_usd, closest=True)
    figures = [float(x.replace(",", "")) for x in re.findall(r"US\$([\d,]+\.\d\d)", conflict.explanation)]
    short, shown_required, reached = figures
    assert shown_required == required
    if field.startswith("min"):
        assert round(shown_required - short, 2) == reached
        assert reached <= required - gap_usd + 1e-9
    else:
        assert round(shown_required + short, 2) == reached
        assert reached >= required + gap_usd - 1e-9
    assert abs(short - gap_usd) < 0.01


def test_compare_counts_one_rack_as_one_rack():
    # "by 2026Q1 the second plan holds 1 more racks (10 GPUs)".
    notes = " ".join(
        compare_plans(
            solve_scenario(uncertain(buyback_price=0.0)), solve_scenario(uncertain(buyback_price=10.0))
        ).notes
    )
    assert "holds 1 more rack (10 GPUs): more capital" in notes
    assert "racks" not in notes
    fewer = " ".join(
        compare_plans(
            solve_scenario(uncertain(buyback_price=10.0)), solve_scenario(uncertain(buyback_price=0.0))
        ).notes
    )
    assert "holds 1 fewer rack (10 GPUs)" in fewer


def test_compare_notes_print_us_m_as_the_tables_do():
    # A note said "grow by US$ 0.11 M" beside the table's +0.110.
    notes = " ".join(
        compare_plans(
            solve_scenario(uncertain(buyback_price=0.0)), solve_scenario(uncertain(buyback_price=10.0))
        ).notes
    )
    assert "expected buyback payments grow by US$ 0.110 M" in notes
    assert "expected value rises by US$ 0.029 M" in notes


def test_the_per_scenario_table_prints_each_probability_as_it_is():
    # p = 0.125 printed as 0.12: the values weighted by the printed p no longer sum to the expected value.
    def change(data: dict[str, Any]) -> None:
        data["tenants"][0]["demand_gpus"] = {"a": [10.0], "b": [20.0], "c": [30.0]}
        data["scenarios"] = [
            {"id": "a", "probability": 0.125},
            {"id": "b", "probability": 0.375},
            {"id": "c", "probability": 0.5},
        ]

    rows = _rows(_rendered(outcome_table(solve_scenario(tiny(change)))))
    assert [rows[s][1] for s in "abc"] == ["0.125", "0.375", "0.500"]
    # Two decimals where they show every probability, four at most (1/3).
    from dsx.commands.numbers import probability_decimals

    assert probability_decimals([0.5, 0.25, 0.25]) == 2
    assert probability_decimals([1 / 3, 2 / 3]) == 4
