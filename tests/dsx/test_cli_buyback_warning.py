"""`dsx plan show` of a plan before schema 1.5 warns that its buyback is the per-site rule's.

The hand case of tests/planner/test_buyback_matching.py as session 26's dsx wrote it (schema
1.4): its buyback is US$0 by the per-site rule, US$54,750 by the matching rule this dsx bills (no
discounting; each party's expected value moves by as much). A plan before 1.5 without that record
(every 1.1-1.3 plan, a 1.4 plan written before it) is warned of too, its figures unknown to `show`;
one whose record shows the two rules agree is not. A 1.5 plan bills the matching rule and records
no comparison, so `solve` never warns. No dsx command verifies a plan file: the verifier's note on
a plan before 1.5 reaches Python callers of `verify_plan` (tests/planner/test_buyback_matching.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner.files import read_plan
from planner.verify import verify_plan
from tests.dsx.harness import dsx
from tests.planner.test_buyback_matching import OLD_PLAN, as_1_4_with_agreeing_record, solved_one_site_each
from tests.planner.two_sites import two_sites_data

WARNING = "warning: this plan (schema 1.4) bills buyback by the per-site rule"


def test_show_of_a_1_4_plan_warns_with_the_figures():
    plan = read_plan(OLD_PLAN)
    cloud = next(f for f in plan.parties if f.party == "cloud").expected_value_usd
    guarantor = next(f for f in plan.parties if f.party == "guarantor").expected_value_usd
    shown = dsx("plan", "show", OLD_PLAN)
    assert shown.code == 0, shown.text
    text = " ".join(shown.stderr.split())
    assert text.count(WARNING) == 1, shown.stderr
    for figure in (
        "its expected buyback is US$ 0 (undiscounted; US$ 0 discounted)",
        "By the matching rule this dsx bills, each refused hour placed once on one site's unsold hour, "
        "it is US$ 54,750 (undiscounted; US$ 54,750 discounted)",
        f"the cloud's expected value would be US$ {cloud + 54_750:,.0f} (+54,750)",
        f"the guarantor's US$ {guarantor - 54_750:,.0f} (-54,750)",
        'docs/model.md, "Buyback"). Fix: solve the scenario again',
    ):
        assert figure in text, (figure, shown.stderr)
    as_json = dsx("plan", "show", OLD_PLAN, "--json")
    assert as_json.code == 0 and WARNING in " ".join(as_json.stderr.split())
    assert '"warnings": [' in as_json.stdout and "54,750" in as_json.stdout


def test_a_solved_plan_bills_the_matching_rule_and_neither_command_warns(tmp_path: Path):
    source = tmp_path / "two-sites.yaml"
    source.write_text(yaml.safe_dump(two_sites_data(one_site_each=True)))
    out = tmp_path / "plan.json"
    solved = dsx("plan", "solve", source, "-o", out, "--no-value-of-information")
    assert solved.code == 0, solved.text
    assert read_plan(out).schema_version == "1.5"
    assert "buyback" not in solved.stderr, solved.stderr
    assert "buyback" not in dsx("plan", "show", out).stderr
    assert json.loads(dsx("plan", "show", out, "--json").stdout)["buyback_matching"] is None


def older(tmp_path: Path, version: str, *, record: bool) -> Path:
    """The 1.4 hand case as a plan of `version`, with its record or without (every 1.1-1.3 plan,
    and a 1.4 plan written before the record)."""
    data = json.loads(OLD_PLAN.read_text())
    data["schema_version"] = version
    if not record:
        del data["buyback_matching"]
    path = tmp_path / f"plan-{version}.json"
    path.write_text(json.dumps(data))
    return path


NO_RECORD = (
    "bills buyback by the per-site rule it was solved under, which counts a refused tenant's hours "
    "against every site it may use: its expected buyback is US$ 0 (undiscounted), no more than by the "
    "matching rule this dsx bills, each refused hour placed once on one site's unsold hour, and less "
    "where a refused tenant may use several sites; the plan records no comparison"
)


@pytest.mark.parametrize("version", ["1.1", "1.3", "1.4"])
def test_show_of_a_plan_before_1_5_without_a_record_warns(tmp_path: Path, version: str):
    """It was shown with its per-site buyback and no word of the rule."""
    shown = dsx("plan", "show", older(tmp_path, version, record=False))
    assert shown.code == 0, shown.text
    text = " ".join(shown.stderr.split())
    assert text.count(f"warning: this plan (schema {version}) {NO_RECORD}") == 1, shown.stderr
    assert "Fix: solve the scenario again" in text
    as_json = json.loads(dsx("plan", "show", older(tmp_path, version, record=False), "--json").stdout)
    assert len(as_json["warnings"]) == 1 and NO_RECORD in " ".join(as_json["warnings"][0].split())


def test_show_of_a_1_4_plan_whose_record_shows_the_rules_agree_does_not_warn(tmp_path: Path):
    """Each tenant may use one site: both rules bill US$109,500 per scenario, as the record says
    (the verifier checks it). Without the record `show` cannot tell, and warns."""
    scenario, plan = solved_one_site_each()
    agreeing = as_1_4_with_agreeing_record(plan)
    assert verify_plan(scenario, agreeing).passed
    path = tmp_path / "agreeing.json"
    path.write_text(agreeing.model_dump_json())
    shown = dsx("plan", "show", path)
    assert shown.code == 0 and "buyback" not in shown.stderr, shown.stderr
    assert json.loads(dsx("plan", "show", path, "--json").stdout)["warnings"] == []
    path.write_text(agreeing.model_copy(update={"buyback_matching": None}).model_dump_json())
    text = " ".join(dsx("plan", "show", path).stderr.split())
    assert "warning: this plan (schema 1.4) bills buyback by the per-site rule" in text
    assert "its expected buyback is US$ 109,500 (undiscounted)" in text


def test_show_of_a_plan_before_1_5_without_buyback_terms_does_not_warn(tmp_path: Path):
    """No buyback price: both rules bill nothing, whatever the version."""
    data = two_sites_data()
    data["terms"]["buyback_price_usd_per_gpu_hour"] = 0.0
    source = tmp_path / "no-buyback.yaml"
    source.write_text(yaml.safe_dump(data))
    out = tmp_path / "plan.json"
    assert dsx("plan", "solve", source, "-o", out, "--no-value-of-information").code == 0
    plan = json.loads(out.read_text())
    plan["schema_version"] = "1.3"
    out.write_text(json.dumps(plan))
    shown = dsx("plan", "show", out)
    assert shown.code == 0 and "buyback" not in shown.stderr, shown.stderr
