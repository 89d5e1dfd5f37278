"""A scenario mistake gets one clear message naming the file, the field path and the fix."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import yaml

from planner import files
from planner.errors import ScenarioError
from planner.files import load_scenario, parse_scenario
from tests.conftest import EXAMPLE_SCENARIO


@pytest.fixture(params=[True, False], ids=["libyaml", "pyyaml-only"])
def either_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test run with libyaml behind the reader, and again with PyYAML's own loader alone."""
    if not request.param:
        monkeypatch.setattr(files, "_C_LOADER", None)
    elif files._C_LOADER is None:
        pytest.skip("this PyYAML was built without libyaml")


def _libyaml_reads(text: str) -> bool:
    """Whether libyaml (behind PyYAML's safe constructor) reads the text."""
    try:
        files._checked_load(text, files._C_LOADER)
    except yaml.YAMLError:
        return False
    return True


@pytest.fixture
def base() -> dict:
    return yaml.safe_load(EXAMPLE_SCENARIO.read_text())


def _error_for(data: dict) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "case.yaml")
    return info.value


def test_bundled_example_is_valid() -> None:
    scenario = load_scenario(EXAMPLE_SCENARIO)
    assert {s.id for s in scenario.sites} == {"batam", "sydney", "narvik"}
    assert scenario.site("batam").power_cap_mw == 360
    assert scenario.site("batam").gpu_cap == 170_000
    assert len(scenario.periods.labels()) == scenario.periods.count_quarters


def test_misspelt_field_names_the_path_and_the_unit_convention(base: dict) -> None:
    base["sites"][0]["power_cap"] = base["sites"][0].pop("power_cap_mw")
    error = _error_for(base)
    text = error.render()
    assert text.startswith("case.yaml: invalid scenario")
    assert "sites[batam].power_cap:" in text  # list items named by id, as in --set paths
    assert "power_cap_mw" in text  # the missing field is named too
    assert "Fix:" in text


def test_value_in_wrong_unit_is_rejected_with_its_bound(base: dict) -> None:
    base["terms"]["buyback_share"] = 80  # a percentage where a fraction is expected
    text = _error_for(base).render()
    assert "terms.buyback_share" in text
    assert "got 80" in text


def test_probabilities_must_sum_to_one(base: dict) -> None:
    base["scenarios"][0]["probability"] = 0.5
    text = _error_for(base).render()
    assert "scenarios[*].probability" in text
    assert "sum to 1.25" in text


def test_unknown_rack_type_reference_lists_known_ones(base: dict) -> None:
    base["sites"][1]["rack_types"] = ["gb400-nvl144"]
    text = _error_for(base).render()
    assert "sites[sydney].rack_types" in text
    assert "unknown rack type 'gb400-nvl144'" in text
    assert "b300-hgx" in text and "gb300-nvl72" in text


def test_unknown_scenario_in_demand_is_named(base: dict) -> None:
    base["tenants"][0]["demand_gpus"]["boom"] = base["tenants"][0]["demand_gpus"]["high"]
    text = _error_for(base).render()
    assert "tenants[inference-cloud].demand_gpus.boom: unknown scenario 'boom'" in text


def test_demand_series_must_cover_the_horizon(base: dict) -> None:
    base["tenants"][2]["demand_gpus"]["low"] = [100.0, 200.0]
    text = _error_for(base).render()
    assert "tenants[agent-platform].demand_gpus.low: 2 values for a 20-quarter horizon" in text


def test_negative_capacity_is_rejected(base: dict) -> None:
    base["sites"][2]["power_cap_mw"] = -5
    text = _error_for(base).render()
    assert "sites[narvik].power_cap_mw" in text
    assert "greater than 0" in text


def test_impossible_lead_time_is_explained(base: dict) -> None:
    narvik = base["sites"][2]
    assert narvik["existing_mw"] == 0
    narvik["power_lead_time_periods"] = 20
    text = _error_for(base).render()
    assert "sites[narvik].power_lead_time_periods" in text
    assert "shorten the lead time" in text


def test_jurisdiction_without_any_site_is_rejected(base: dict) -> None:
    base["tenants"][3]["allowed_jurisdictions"] = ["SG"]
    text = _error_for(base).render()
    assert "no site is in jurisdiction 'SG'" in text


def test_all_problems_are_reported_at_once(base: dict) -> None:
    broken = copy.deepcopy(base)
    broken["scenarios"][0]["probability"] = 0.9
    broken["sites"][1]["rack_types"] = ["nope"]
    error = _error_for(broken)
    assert len(error.details) >= 2


def test_unreadable_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read YAML file: there is no such file"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: not valid YAML"):
        load_scenario(bad)


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 5000 + "]" * 5000,
        "- " * 5000 + "x",
        # A megabyte of brackets: libyaml's recursive composer would crash the process (SIGSEGV)
        # and its parser slows down with the depth (100,000 levels took 38 s).
        "[" * 1_000_000 + "]" * 1_000_000,
        "{a: " * 200_000 + "1" + "}" * 200_000,
    ],
    ids=["flow", "block", "a-megabyte-of-brackets", "mappings"],
)
@pytest.mark.usefixtures("either_loader")
def test_a_file_nested_too_deeply_to_read_is_refused_with_its_name_not_a_traceback(
    nested: str, tmp_path: Path
) -> None:
    # PyYAML composes nested collections recursively; about 500 levels run out of the stack.
    bad = tmp_path / "deep.yaml"
    bad.write_text(f"sites: {nested}\n" if nested[0] in "[{" else f"sites:\n{nested}\n")
    with pytest.raises(ScenarioError, match=r"deep\.yaml: cannot be read: .* nested too deeply"):
        load_scenario(bad)


@pytest.mark.usefixtures("either_loader")
def test_a_file_is_read_up_to_the_nesting_limit_and_refused_one_level_more(tmp_path: Path) -> None:
    deepest = tmp_path / "deepest.yaml"
    deepest.write_text("[" * files.YAML_MAX_DEPTH + "]" * files.YAML_MAX_DEPTH)
    value = files.read_yaml(deepest)
    for _ in range(files.YAML_MAX_DEPTH - 1):
        (value,) = value
    assert value == []
    deepest.write_text("[" * (files.YAML_MAX_DEPTH + 1) + "]" * (files.YAML_MAX_DEPTH + 1))
    with pytest.raises(ScenarioError, match="nested too deeply"):
        files.read_yaml(deepest)


def test_a_file_libyaml_refuses_is_still_refused_when_nested_too_deeply(tmp_path: Path) -> None:
    # libyaml refuses the first line (`_libyaml_reads`), so PyYAML's own loader reads the file:
    # it holds to the same limit.
    text = "owners: [group:,inference]\nsites: " + "[" * 150 + "]" * 150 + "\n"
    if files._C_LOADER is not None:
        assert not _libyaml_reads(text)
    deep = tmp_path / "deep.yaml"
    deep.write_text(text)
    with pytest.raises(ScenarioError, match="nested too deeply"):
        files.read_yaml(deep)


@pytest.mark.usefixtures("either_loader")
def test_only_the_first_document_counts_to_the_nesting_limit(tmp_path: Path) -> None:
    # The composer never builds a second document: it is refused for being there, as before.
    two = tmp_path / "two.yaml"
    two.write_text("a: 1\n---\n" + "[" * 150 + "]" * 150 + "\n")
    with pytest.raises(
        ScenarioError, match=r"two\.yaml: not valid YAML at line 2, column 1: but found another document"
    ):
        files.read_yaml(two)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2026-13-01", r"this value cannot be read \(month must be in 1\.\.12\)"),
        (
            "9" * 5000,
            r"an integer written in 5,000 characters \(more than 40\) is beyond any count or amount",
        ),
        ("!!int 0b", r"this value cannot be read \(invalid literal"),
        ("!!int ''", r"this value cannot be read \(string index out of range\)"),
        ("!!int", r"this value cannot be read \(string index out of range\)"),
        ("!!bool foo", r"this value cannot be read \('foo'\)"),
        ("!!float abc", r"this value cannot be read \(could not convert"),
        ("!!timestamp foo", r"this value cannot be read \("),
        (
            "0x" + "f" * 5000,
            r"an integer written in 5,002 characters \(more than 40\) is beyond any count or amount",
        ),
        (
            "1" + ":59" * 100_000,
            r"an integer written in 300,001 characters \(more than 40\) is beyond any count or amount",
        ),
        ("0x" + "f" * 20, r"an integer of 80 bits is beyond any count or amount"),
        ("1" + "0" * 30, r"an integer of 100 bits is beyond any count or amount"),
    ],
    ids=[
        "no-such-date",
        "too-many-digits",
        "empty-binary-int",
        "empty-int",
        "bare-int-tag",
        "bool-tag-on-text",
        "float-tag-on-text",
        "timestamp-tag-on-text",
        "hex-past-the-digit-limit",
        "base-60-in-300-KB",
        "hex-of-80-bits",
        "31-digits",
    ],
)
@pytest.mark.usefixtures("either_loader")
def test_a_value_yaml_cannot_make_is_refused_where_it_stands_not_with_a_traceback(
    value: str, problem: str, tmp_path: Path
) -> None:
    # PyYAML's safe constructor raised ValueError, IndexError, KeyError or AttributeError for
    # these; a 401-digit integer passed it and broke the scenario checks' formatting, and a long
    # base-60 one took quadratic time.
    bad = tmp_path / "odd.yaml"
    bad.write_text(f"periods:\n  start_quarter: {value}\n")
    with pytest.raises(ScenarioError, match=rf"odd\.yaml: not valid YAML at line 2, column 18: {problem}"):
        load_scenario(bad)


def _merges_doubling(lines: int) -> str:
    """Each mapping merges the one before twice: the entries double per line."""
    chain = ["m0: &m0 {a: 1, b: 2}"] + [
        f"m{k}: &m{k} {{<<: [*m{k - 1}, *m{k - 1}]}}" for k in range(1, lines)
    ]
    return "\n".join(chain) + "\n"


def _aliases_validated_everywhere() -> str:
    """A 5,000-number demand list named by 100 aliases in a tenant named 100 times: the loaded
    data shares it, but the scenario check would validate it 10,000 times (10.9 s, 2 GB)."""
    numbers = ", ".join(["1"] * 5000)
    demand = ", ".join([f"d0: &D [{numbers}]"] + [f"d{n}: *D" for n in range(1, 100)])
    tenant = f"&t {{id: t, price_usd_per_gpu_hour: 2.0, demand_gpus: {{{demand}}}}}"
    return f"tenants: [{tenant}, " + ", ".join(["*t"] * 99) + "]\n"


REPEATS_TOO_MUCH = r"not valid YAML at line 1, column 1: its aliases repeat more than 500,000 values"
NESTS_TOO_DEEPLY = r"cannot be read: its lists or mappings are nested too deeply"
WITHIN_ITSELF = r"not valid YAML at line \d+, column \d+: an alias stands inside the value it names"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (_merges_doubling(40), REPEATS_TOO_MUCH),
        (
            "m0: &m0 [" + ", ".join(["x"] * 5_000) + "]\nbig: {<<: [" + ", ".join(["*m0"] * 2_000) + "]}\n",
            REPEATS_TOO_MUCH,
        ),
        (_aliases_validated_everywhere(), REPEATS_TOO_MUCH),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            REPEATS_TOO_MUCH,
        ),
        ("owners: [&o 'user:" + "x" * 20_000 + "', " + ", ".join(["*o"] * 20_000) + "]\n", REPEATS_TOO_MUCH),
        # Long chains of aliases nest the data past the depth limit, which is checked first.
        (
            "m0: &m0 {a: 1}\n"
            + "".join(f"m{k}: &m{k} {{<<: *m{k - 1}, k{k}: 1}}\n" for k in range(1, 3_000)),
            NESTS_TOO_DEEPLY,
        ),
        (
            "a0: &a0 [x]\n"
            + "".join(f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]\n" for k in range(1, 4_600)),
            NESTS_TOO_DEEPLY,
        ),
        # A value within itself: its depth would depend on the way it is walked.
        ("a: &a [*a]\n", WITHIN_ITSELF),
        (
            "a1: &A1 [&B1 [*A1]]\n"
            + "".join(f"a{k}: &A{k} [*B{k - 1}, &B{k} [*A{k}]]\n" for k in range(2, 600))
            + "y: ["
            + ", ".join(f"*A{k}" for k in range(599, 0, -1))
            + "]\n",
            WITHIN_ITSELF,
        ),
    ],
    ids=[
        "merges-doubling",
        "merging-a-list-2000-times",
        "validated-10000-times",
        "nine-by-nine-laughs",
        "a-20-KB-owner-20000-times",
        "merges-chained-3000",
        "nine-aliases-chained-4600",
        "a-list-within-itself",
        "600-lists-within-themselves",
    ],
)
@pytest.mark.usefixtures("either_loader")
def test_aliases_repeating_without_bound_or_within_themselves_are_refused_before_anything_is_built(
    text: str, refusal: str, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(text)
    with pytest.raises(ScenarioError, match=rf"bomb\.yaml: {refusal}"):
        load_scenario(bomb)


@pytest.mark.usefixtures("either_loader")
def test_aliases_and_merge_keys_as_a_scenario_would_use_them_are_read_as_pyyaml_reads_them(
    tmp_path: Path,
) -> None:
    text = (
        "base: &base {pue: 1.2, jurisdiction: AU}\n"
        "sites:\n  - {<<: *base, id: a}\n  - {<<: [{id: x, pue: 1.0}, *base], id: b, pue: 1.1}\n"
        "demand: &d [1, 2, 3]\nagain: *d\n" + _merges_doubling(15)
    )
    fine = tmp_path / "fine.yaml"
    fine.write_text(text)
    data = files.read_yaml(fine)
    assert data["sites"] == [
        {"pue": 1.2, "jurisdiction": "AU", "id": "a"},
        {"pue": 1.1, "jurisdiction": "AU", "id": "b"},
    ]
    assert data["again"] is data["demand"]
    assert len(data["m14"]) == 2
    plain = yaml.safe_load(text)
    assert data == plain


def test_a_character_yaml_does_not_allow_is_named_with_where_it_is(tmp_path: Path) -> None:
    bad = tmp_path / "nul.yaml"
    bad.write_text("name: a\x00b\n")
    with pytest.raises(
        ScenarioError,
        match=r"nul\.yaml: not valid YAML at character 8: special characters are not allowed \(#x0000\)",
    ):
        files.read_yaml(bad)


@pytest.mark.parametrize(
    "text",
    [
        EXAMPLE_SCENARIO.read_text(),
        "a: 1\nb: [1.5, 2e3, .inf, null, ~, yes, no, on, '007', 007, 0x1F, 1_000, 2026-12-06]\n",
        "a: &x {b: 1}\nc: *x\nd: !!str 5\ne: |\n  two\n  lines\n",
        "",
        "# only a comment\n",
    ],
    ids=["bundled-example", "scalars", "anchors-tags-blocks", "empty", "comment"],
)
def test_libyaml_and_pyyaml_read_a_file_alike(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if files._C_LOADER is None:
        pytest.skip("this PyYAML was built without libyaml")
    path = tmp_path / "case.yaml"
    path.write_text(text)
    fast = files._checked_load(text, files._C_LOADER)
    monkeypatch.setattr(files, "_C_LOADER", None)
    assert files.read_yaml(path) == fast == yaml.safe_load(text)


def test_random_edits_of_the_example_are_read_as_pyyaml_reads_them(tmp_path: Path) -> None:
    # Random insertions, deletions and replacements of YAML's structural characters in the
    # bundled example. Wherever PyYAML's own loader reads the file, the data is its data
    # (libyaml's where libyaml reads it too, else PyYAML's after libyaml refused). libyaml reads
    # a few files PyYAML refuses (the scenario check then names the field); nothing else ever
    # raises. Not in the pieces: YAML's non-specific tag `!` alone, which the two read apart on
    # an empty value (`planner.files._load`).
    if files._C_LOADER is None:
        pytest.skip("this PyYAML was built without libyaml")
    base = EXAMPLE_SCENARIO.read_text()
    pieces = [*"[]{}:,-#&*|>'\"%@` \t\n", "- ", ": ", "? ", "---\n", "!!str ", "&a ", "*a ", "<<: "]
    rng = random.Random(0)
    path = tmp_path / "edited.yaml"
    seen = {"read by both": 0, "read by PyYAML only": 0, "read by libyaml only": 0}
    for _ in range(200):
        text = base
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text))
            cut = rng.choice([0, 1, rng.randint(1, 20)])
            text = text[:at] + rng.choice(pieces) + text[at + cut :]
        path.write_text(text)
        read = _libyaml_reads(text)
        try:
            expected = yaml.safe_load(text)
        except yaml.YAMLError:
            if read:
                seen["read by libyaml only"] += 1
            else:
                with pytest.raises(ScenarioError, match="not valid YAML"):
                    files.read_yaml(path)
            continue
        seen["read by both" if read else "read by PyYAML only"] += 1
        assert files.read_yaml(path) == expected
    assert seen["read by both"] > 50 and seen["read by libyaml only"] > 0, seen


def test_a_file_only_pyyaml_reads_is_read_by_pyyaml_after_libyaml_refuses_it(tmp_path: Path) -> None:
    # libyaml refuses a flow entry ending in ':' ("found unexpected ':'"); PyYAML reads it as a
    # one-key mapping. (The scenario check then refuses what it means.)
    if files._C_LOADER is None:
        pytest.skip("this PyYAML was built without libyaml")
    text = "owners: [group:,inference]\n"
    assert not _libyaml_reads(text)
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    assert files.read_yaml(path) == {"owners": [{"group": None}, "inference"]}


@pytest.mark.parametrize(
    ("text", "where"),
    [("sites: [unclosed\n", "line 2, column 1"), ("a: 1\n\tb: 2\n", "line 2, column 1")],
    ids=["unclosed-bracket", "tab-indent"],
)
def test_a_file_libyaml_refuses_is_worded_as_pyyaml_words_it(text: str, where: str, tmp_path: Path) -> None:
    if files._C_LOADER is None:
        pytest.skip("this PyYAML was built without libyaml")
    assert not _libyaml_reads(text)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ScenarioError, match=rf"bad\.yaml: not valid YAML at {where}: ") as info:
        load_scenario(bad)
    with pytest.raises(yaml.YAMLError) as pyyaml:
        yaml.safe_load(text)
    assert f"{where}: {pyyaml.value.problem}" in str(info.value)


def test_content_hash_ignores_formatting_but_not_content(base: dict) -> None:
    a = parse_scenario(copy.deepcopy(base), "a")
    b = parse_scenario(copy.deepcopy(base), "b")
    assert a.content_hash() == b.content_hash()
    base["terms"]["revenue_share"] = 0.15
    assert parse_scenario(base, "c").content_hash() != a.content_hash()


def test_quarter_labels_roll_over_the_year() -> None:
    scenario = load_scenario(EXAMPLE_SCENARIO)
    labels = scenario.periods.labels()
    assert labels[:3] == ["2026Q3", "2026Q4", "2027Q1"]
    factors = scenario.periods.discount_factors()
    assert factors[0] == 1.0
    assert factors[4] == pytest.approx(1 / 1.10)


def test_content_hash_ignores_solver_options(base: dict) -> None:
    a = parse_scenario(copy.deepcopy(base), "a")
    base["solver"] = {"time_limit_s": 5, "mip_rel_gap": 0.05}
    assert parse_scenario(base, "b").content_hash() == a.content_hash()


@pytest.mark.usefixtures("either_loader")
def test_aliases_that_nest_data_too_deeply_are_refused_though_the_text_is_shallow(tmp_path: Path) -> None:
    # Two levels as text, 1,201 as data: a deep copy of it (an override) ran out of the stack.
    chain = tmp_path / "chain.yaml"
    chain.write_text("a0: &a0 [x]\n" + "".join(f"a{k}: &a{k} [*a{k - 1}]\n" for k in range(1, 1_200)))
    with pytest.raises(ScenarioError, match=r"chain\.yaml: cannot be read: .* nested too deeply"):
        files.read_yaml(chain)
    chain.write_text(
        "a0: &a0 [x]\n" + "".join(f"a{k}: &a{k} [*a{k - 1}]\n" for k in range(1, files.YAML_MAX_DEPTH - 1))
    )
    assert files.read_yaml(chain)["a1"] == [["x"]]


def test_the_repeated_count_runs_only_where_the_first_document_has_an_alias() -> None:
    loader = files._C_LOADER or files._PyLoader
    assert files._first_document("a: [1, {b: 2}]\n", loader) is False
    assert files._first_document("a: &x [1]\nb: *x\n", loader) is True
    assert files._first_document("a: 1\n---\nb: &x [1]\nc: *x\n", loader) is False


def test_the_hardware_margin_is_described_as_the_model_counts_it() -> None:
    # It said "earned when racks are bought"; the model spreads it over each rack's installed
    # quarters inside the horizon, like the capex it is a share of (docs/model.md, Conventions).
    from planner.schema.scenario import Terms

    description = Terms.model_fields["guarantor_hardware_margin"].description or ""
    assert "installed quarters inside the horizon" in description
    assert "bought" not in description


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("terms:\n  buyback_share: 0.8\n  buyback_share: 0.2\n", 3, "'buyback_share'"),
        ("a: 1\nb: {x: 1, x: 2}\n", 2, "'x'"),
        ("a: 1\n1: x\n0x1: y\n", 3, "1"),  # one key, written two ways
        ("a: &A {k: 1}\nb:\n  <<: *A\n  j: 2\n  j: 3\n", 5, "'j'"),  # beside a merge key
    ],
    ids=["block", "flow", "one-number-two-ways", "beside-a-merge"],
)
@pytest.mark.usefixtures("either_loader")
def test_a_key_given_twice_in_one_mapping_is_refused_naming_the_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    # YAML's loaders keep the last without a word: a second buyback_share silently won.
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(
        ScenarioError, match=rf"dup\.yaml: line {line}: the key {key} is given twice"
    ) as refused:
        files.read_yaml(path)
    assert "Fix: keep one of lines" in refused.value.render()


@pytest.mark.usefixtures("either_loader")
def test_a_key_written_beside_merge_keys_replaces_the_merged_one_as_yaml_means(tmp_path: Path) -> None:
    # A merged mapping is expanded in place, sometimes before it is itself constructed; it must
    # not then seem to repeat its own keys.
    path = tmp_path / "merge.yaml"
    path.write_text(
        "z: &Z {k: 0, j: 2}\na: {inner: &A {<<: *Z, k: 1}}\nb: {<<: *A, k: 3}\nc: [{<<: [*A, *Z], j: 5}]\n"
    )
    assert files.read_yaml(path) == {
        "z": {"k": 0, "j": 2},
        "a": {"inner": {"k": 1, "j": 2}},
        "b": {"k": 3, "j": 2},
        "c": [{"k": 1, "j": 5}],
    }


def test_a_cross_field_problem_names_list_items_by_id(base: dict) -> None:
    # "sites[0].existing_racks" where the schema's own errors, and --set, say sites[batam].
    base["sites"][0]["existing_racks"] = {"gb300-nvl72": 100_000}
    text = _error_for(base).render()
    assert "sites[batam].existing_racks: existing racks draw" in text
