"""`dsx plan solve` and `show` warn where the plan's buyback falls short of the matching rule.

The hand case of tests/planner/test_buyback_matching.py: the plan's buyback is US$0, matched
once US$54,750 (no discounting; each party's expected value moves by as much). The plan is
still written and verified: the warning is a known limitation, not an error.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from planner.files import read_plan
from tests.dsx.harness import dsx
from tests.planner.test_buyback_matching import two_sites_data

WARNING = "warning: the plan's expected buyback"


def solved(tmp_path: Path, *, one_site_each: bool = False) -> tuple[Path, str]:
    source = tmp_path / "two-sites.yaml"
    source.write_text(yaml.safe_dump(two_sites_data(one_site_each=one_site_each)))
    out = tmp_path / "plan.json"
    outcome = dsx("plan", "solve", source, "-o", out, "--no-value-of-information")
    assert outcome.code == 0, outcome.text
    return out, outcome.stderr


def test_solve_and_show_warn_with_the_figures(tmp_path):
    out, stderr = solved(tmp_path)
    plan = read_plan(out)
    assert plan.verification.passed
    cloud = next(f for f in plan.parties if f.party == "cloud").expected_value_usd
    guarantor = next(f for f in plan.parties if f.party == "guarantor").expected_value_usd
    text = " ".join(stderr.split())
    assert text.count(WARNING) == 1, stderr
    for figure in (
        "the plan's expected buyback is US$ 0 (undiscounted; US$ 0 discounted)",
        "matched once to one site's unsold hour it is US$ 54,750 (undiscounted; US$ 54,750 discounted)",
        f"the cloud's expected value would be US$ {cloud + 54_750:,.0f} (+54,750)",
        f"the guarantor's US$ {guarantor - 54_750:,.0f} (-54,750)",
        'docs/model.md, "Buyback"',
    ):
        assert figure in text, (figure, stderr)
    shown = dsx("plan", "show", out)
    assert shown.code == 0, shown.text
    assert " ".join(shown.stderr.split()).count(WARNING) == 1, shown.stderr
    as_json = dsx("plan", "show", out, "--json")
    assert as_json.code == 0 and WARNING in " ".join(as_json.stderr.split())
    assert '"warnings": [' in as_json.stdout and "54,750" in as_json.stdout


def test_no_warning_where_the_rules_agree(tmp_path):
    out, stderr = solved(tmp_path, one_site_each=True)
    assert "buyback" not in stderr, stderr
    assert "buyback" not in dsx("plan", "show", out).stderr
