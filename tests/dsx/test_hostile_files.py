"""Plan files, options and sweeps that once wrote outside their directory, hung, ran out of memory
or crashed: each is refused with one clear error, and nothing is written or changed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.checks import Origin, StackConfigError, check_operator
from planner.errors import UserError
from planner.files import read_plan, write_atomic, write_plan
from planner.insight.plots import MAX_PLOT_SITES
from planner.insight.sweep import MAX_SWEEP_POINTS, check_axes
from tests.conftest import EXAMPLE_SCENARIO
from tests.dsx.harness import assert_one_clear_error, dsx, tree
from tests.infra.plan_factory import make_plan


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "plan.json"
    write_plan(make_plan(), path)
    return path


def _edited(plan_file: Path, edit) -> Path:
    data = json.loads(plan_file.read_text())
    edit(data)
    plan_file.write_text(json.dumps(data))
    return plan_file


def _rename_site(data: dict[str, Any], old: str, new: str) -> None:
    for key in ("sites",):
        for site in data[key]:
            if site["id"] == old:
                site["id"] = new
    for key in ("racks", "power", "quotas", "served", "site_periods"):
        for record in data[key]:
            if record.get("site") == old:
                record["site"] = new


def _render(plan_file: Path, *extra: str | Path):
    """`dsx render` of batam in 2026Q4, with `extra` options."""
    return dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", *extra)


def _rename_tenant(data: dict[str, Any], old: str, new: str) -> None:
    for tenant in data["tenants"]:
        if tenant["id"] == old:
            tenant["id"] = new
    for record in data["quotas"]:
        if record["tenant"] == old:
            record["tenant"] = new


@pytest.mark.parametrize(
    ("site", "shown"),
    [
        ("../../../escaped", "'../../../escaped' is not an id"),
        ("/tmp/abs", "'/tmp/abs' is not an id"),
        ("bat\nam", "'bat\\nam' is not an id"),
        ("bat\x00am", "'bat\\x00am' is not an id"),
    ],
)
@pytest.mark.parametrize("command", ["render", "stacks"])
def test_a_plan_id_that_is_a_path_is_refused_before_any_file_is_written(
    tmp_path, plan_file, site, shown, command
):
    # An edited plan's site id went into file names: `render -o` and `stacks write` wrote outside
    # the directory they were given.
    _edited(plan_file, lambda data: _rename_site(data, "batam", site))
    out = tmp_path / "a" / "b" / "out"
    args = {
        "render": ["render", plan_file, "--site", site, "--period", "2026Q4", "-o", out],
        "stacks": ["stacks", "write", plan_file, "--dir", out],
    }[command]
    before = tree(tmp_path)
    outcome = dsx(*args)
    assert_one_clear_error(outcome, names=(str(plan_file), shown))
    assert tree(tmp_path) == before


def test_a_tenant_id_that_climbs_out_of_the_directory_is_refused(tmp_path, plan_file):
    _edited(plan_file, lambda data: _rename_tenant(data, "inference-cloud", "x/../../../../ten"))
    before = tree(tmp_path)
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", "-o", tmp_path / "out")
    assert_one_clear_error(outcome, names=("'x/../../../../ten' is not an id",))
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--operator-namespace", "x/../../ns", "--operator-namespace is 'x/../../ns', not a namespace name"),
        ("--operator-namespace", "n" * 300, "not a namespace name"),
        ("--operator-namespace", "[/x]", "not a namespace name"),
        ("--operator-image", "a b\nc: d", "--operator-image is 'a b\\nc: d', not an image reference"),
        # Rendered as the operator's own Namespace, `kubectl delete -f` would have deleted these.
        *(
            ("--operator-namespace", ns, f"is '{ns}', a namespace the cluster owns")
            for ns in ("kube-system", "kube-node-lease", "default")
        ),
        # ... and this, the tenant's own at the site.
        (
            "--operator-namespace",
            "inference-cloud",
            "is 'inference-cloud', a tenant's namespace in this plan",
        ),
    ],
)
def test_an_operator_namespace_or_image_that_is_not_a_name_is_refused(
    tmp_path, plan_file, option, value, named
):
    before = tree(tmp_path)
    outcome = _render(plan_file, "-o", tmp_path / "a" / "out", option, value)
    assert_one_clear_error(outcome, names=(named,))
    assert tree(tmp_path) == before


def test_the_operator_settings_a_stack_file_gives_are_checked_as_the_command_line_s():
    origin = Origin.for_stack("batam", "stacks/Pulumi.batam.yaml")
    with pytest.raises(StackConfigError) as caught:
        check_operator(None, "../kube-system", origin)
    assert "dsx:operatorNamespace in stacks/Pulumi.batam.yaml" in caught.value.render()
    assert "pulumi config set dsx:operatorNamespace dsx-system --stack batam" in caught.value.render()
    check_operator("registry.example.com/dsx/operator:1.2.0@sha256:" + "0" * 64, "dsx-system", origin)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"schema_version": "1.1", "x": ' + "9" * 5000 + "}", "an integer of more digits than Python reads"),
        (
            '{"schema_version": "1.1", "hours_per_period": 1e400}',
            "hours_per_period: a number beyond a float's range",
        ),
    ],
)
def test_json_python_reads_but_no_plan_holds_is_refused(tmp_path, text, named):
    path = tmp_path / "plan.json"
    path.write_text(text)
    for args in (["plan", "show", path], ["render", path, "--site", "batam", "--period", "2026Q4"]):
        assert_one_clear_error(dsx(*args), names=(str(path), named))


def test_a_plan_listing_a_quarter_many_times_says_so_once(plan_file):
    # Counted per id with `list.count`, 200,000 periods ran past 20 s before saying anything.
    n = 200_000
    _edited(plan_file, lambda data: data.update(periods=["2026Q3"] * n, discount_factors=[1.0] * n))
    with pytest.raises(UserError) as caught:
        read_plan(plan_file)
    assert caught.value.render().count("periods: '2026Q3' is listed twice") == 1


def _second_racks_record(data: dict[str, Any]) -> None:
    first = next(r for r in data["racks"] if r["racks_installed"] > 0)
    data["racks"].append(
        {**first, "racks_installed": 5000, "gpus_installed": 5000 * 72, "nodes_installed": 5000 * 18}
    )


def _tenfold_gpus_per_rack(data: dict[str, Any]) -> None:
    data["rack_types"][0]["gpus_per_rack"] *= 10
    for q in data["quotas"]:
        q["quota_gpus"] *= 10


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # The pool was sized from the record read last (5,000 racks) while the summary said 10.
        (_second_racks_record, "racks: batam/gb300-nvl72/2026Q3 (site/rack_type/period) is listed twice"),
        # Pools are sized in nodes of 4 GPUs, quotas checked against 720 GPUs a rack: 10x over-committed.
        (
            _tenfold_gpus_per_rack,
            "rack_types[gb300-nvl72]: gpus_per_rack 720 is not nodes_per_rack 18 x gpus_per_node 4",
        ),
    ],
)
def test_a_plan_whose_racks_do_not_add_up_is_refused_not_provisioned(tmp_path, plan_file, edit, named):
    _edited(plan_file, edit)
    before = tree(tmp_path)
    outcome = _render(plan_file, "-o", tmp_path / "out")
    assert_one_clear_error(outcome, names=(str(plan_file), "does not hold together", named))
    assert tree(tmp_path) == before


def test_a_quota_past_any_plan_is_refused_without_printing_hundreds_of_digits(tmp_path, plan_file):
    _edited(plan_file, lambda data: data["quotas"][0].update(quota_gpus=1e308))
    outcome = _render(plan_file)
    assert_one_clear_error(outcome, names=(str(plan_file), "quota_gpus: 1e+308 is more than any plan holds"))
    assert "0" * 30 not in outcome.text


@pytest.mark.parametrize("command", ["show", "solve", "render"])
def test_a_device_given_as_a_file_is_refused_not_read_forever(tmp_path, command):
    # /dev/zero never ends: read whole, it ran out of memory ("Fix: fewer scenarios").
    before = tree(tmp_path)
    outcome = {
        "show": lambda: dsx("plan", "show", "/dev/zero"),
        "solve": lambda: dsx("plan", "solve", "/dev/zero", "-o", tmp_path / "plan.json"),
        "render": lambda: dsx(
            "render", "/dev/zero", "--site", "batam", "--period", "2026Q4", "-o", tmp_path / "out"
        ),
    }[command]()
    assert_one_clear_error(outcome, names=("/dev/zero: is a device, not a",))
    assert tree(tmp_path) == before


def test_replacing_a_private_file_keeps_it_private(tmp_path):
    # A stack file holding a `secure:` value, made 0600, became 0644 at `dsx stacks write`.
    path = tmp_path / "Pulumi.batam.yaml"
    path.write_text("config:\n  dsx:site: batam\n")
    path.chmod(0o600)
    write_atomic(path, "config:\n  dsx:site: sydney\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    new = tmp_path / "new.yaml"
    write_atomic(new, "x: 1\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


def test_a_stack_file_nested_too_deeply_is_refused(tmp_path, plan_file):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text("config: " + "[" * 5000 + "]" * 5000 + "\n")
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert_one_clear_error(outcome, names=("Pulumi.batam.yaml: nested too deeply",))
    assert tree(tmp_path) == before


def test_show_prints_plan_text_that_looks_like_markup_as_it_is(plan_file):
    _edited(plan_file, lambda data: data["solver"].update(status="[/bad]"))
    outcome = dsx("plan", "show", plan_file)
    assert outcome.code == 0, outcome.text
    assert "[/bad]" in outcome.stdout


@pytest.mark.parametrize(
    ("axes", "named"),
    [
        (
            [("terms.buyback_share", [0.6]), ("terms.buyback_share", [0.7])],
            "--set terms.buyback_share is given more than once",
        ),
        ([("terms.buyback_share", [0.6, 0.6])], "the value 0.6 repeats (point buyback_share=0.6)"),
        ([("sites[batam].name", ["a b", "a-b"])], "the value 'a-b' gets the same file name as 'a b'"),
        ([("sites[batam].name", ["a b", "a-b"])], "becomes '-': make the values differ elsewhere"),
        ([(f"terms.x{n}", list(range(22))) for n in range(3)], f"at most {MAX_SWEEP_POINTS:,} are taken"),
    ],
)
def test_a_sweep_that_would_lose_or_overwrite_points_or_never_start_is_refused(axes, named):
    with pytest.raises(UserError) as caught:
        check_axes(axes)
    assert named in caught.value.render()


def test_the_sweep_command_refuses_a_huge_grid_before_composing_a_point(tmp_path):
    values = ",".join(f"0.{n:03d}" for n in range(1, 201))
    before = tree(tmp_path)
    outcome = dsx(
        "plan",
        "sweep",
        EXAMPLE_SCENARIO,
        "--set",
        f"terms.buyback_share={values}",
        "--set",
        f"terms.revenue_share={values}",
        "--workers",
        "1",
        "-o",
        tmp_path / "sweep",
    )
    assert_one_clear_error(outcome, names=("the sweep has 40,000 points (200 x 200)",))
    assert tree(tmp_path) == before


def test_plot_refuses_more_sites_than_a_figure_shows(tmp_path, plan_file):
    plan = make_plan(sites=tuple(f"site-{n}" for n in range(MAX_PLOT_SITES + 1)))
    write_plan(plan, plan_file)
    before = tree(tmp_path)
    outcome = dsx("plan", "plot", plan_file, "-o", tmp_path / "plots")
    assert_one_clear_error(outcome, names=(f"the plan has {MAX_PLOT_SITES + 1} sites",))
    assert tree(tmp_path) == before


def test_plot_refuses_a_scenario_without_the_plan_s_sites(tmp_path, plan_file, monkeypatch):
    # Its hash matched (the plan was edited after solving): a renamed site raised StopIteration.
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(EXAMPLE_SCENARIO.read_text())
    from planner.schema.scenario import Scenario

    monkeypatch.setattr(Scenario, "content_hash", lambda _self: make_plan().scenario_hash)
    _edited(plan_file, lambda data: _rename_site(data, "sydney", "elsewhere"))
    assert "elsewhere" not in {s["id"] for s in yaml.safe_load(scenario.read_text())["sites"]}
    before = tree(tmp_path)
    outcome = dsx("plan", "plot", plan_file, "--scenario", scenario, "-o", tmp_path / "plots")
    assert_one_clear_error(outcome, names=("the scenario has no site or rack type 'elsewhere'",))
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda data: data["racks"][0].update(racks_installed=10**400),
            "racks[0].racks_installed: a 401-digit number",
        ),
        (lambda data: data["racks"][0].update(gpus_installed=10**12), "is more than any plan holds"),
        (
            lambda data: data["scenario_probabilities"].update(
                {k: -1.0 for k in data["scenario_probabilities"]}
            ),
            "scenario_probabilities: each must be within 0 and 1",
        ),
        (
            lambda data: data["tenants"][0].update(owners=["user:alice smith@example.com"]),
            "owners[0]: 'user:alice smith@example.com': 'alice smith@example.com' is not a usable user "
            "name (spaces and symbols such as ! are not)",
        ),
        (
            lambda data: data["rack_types"][0].update(gpu_product="NVIDIA GB300\nx: y"),
            "gpu_product: 'NVIDIA GB300\\nx: y' is not a label value",
        ),
    ],
)
def test_a_plan_value_no_plan_dsx_writes_holds_is_refused_before_rendering(tmp_path, plan_file, edit, named):
    # 10**400 racks were rendered into a GpuNodePool, negative probabilities read as they were, and
    # owners and GPU products the scenario checks refuse went into manifests as they were.
    _edited(plan_file, edit)
    before = tree(tmp_path)
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", "-o", tmp_path / "out")
    assert_one_clear_error(outcome, names=(str(plan_file), named))
    assert tree(tmp_path) == before


def test_an_output_name_too_long_to_write_is_refused_before_solving(tmp_path):
    # A 250-byte plan name failed after the solve, naming the temporary file (.NAME.XXXXXXXX.tmp).
    from planner.files import NAME_MAX_BYTES

    before = tree(tmp_path)
    name = "p" * (NAME_MAX_BYTES - len(".json") + 1) + ".json"
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "-o", tmp_path / name)
    assert_one_clear_error(outcome, names=(f"is {NAME_MAX_BYTES + 1} bytes long",))
    assert tree(tmp_path) == before


def test_an_id_longer_than_a_scenario_accepts_is_refused(tmp_path, plan_file):
    # 50 characters made `Pulumi.bbb...yaml`; 300, an OSError naming neither field nor fix.
    _edited(plan_file, lambda data: _rename_site(data, "batam", "b" * 50))
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", tmp_path / "stacks")
    assert_one_clear_error(outcome, names=(f"'{'b' * 50}' is not an id",))
    assert tree(tmp_path) == before


def test_render_writes_nothing_where_one_file_name_would_leave_the_directory(
    tmp_path, plan_file, monkeypatch
):
    # Ids and the operator's namespace are checked first; this guard stays for any other way in.
    from dsx.commands import provision

    real = provision.manifest_filename
    monkeypatch.setattr(
        provision,
        "manifest_filename",
        lambda index, *rest: "../x.yaml" if index == 5 else real(index, *rest),
    )
    before = tree(tmp_path)
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", "-o", tmp_path / "out")
    assert_one_clear_error(outcome, names=("'../x.yaml', not a file name in",))
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "text",
    [
        "config: {dsx:site: batam}\nextra: " + "[" * 400 + "]" * 400 + "\n",
        "config:\n  dsx:site: batam\n"
        + "a0: &a0 ["
        + ", ".join(["x"] * 10)
        + "]\n"
        + "".join(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]\n" for n in range(1, 11)),
    ],
    ids=["deep-beside-flow-config", "alias-bomb"],
)
def test_a_stack_file_dsx_cannot_safely_rewrite_is_refused(tmp_path, plan_file, text):
    named = "nested too deeply" if "[[" in text else "its aliases repeat more than 500,000 values"
    # 400 levels beside a flow-style config crashed the rewrite; an alias bomb ran past a minute.
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text(text)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert_one_clear_error(outcome, names=("Pulumi.batam.yaml", named))
    assert tree(tmp_path) == before


@pytest.mark.parametrize("image", ["[::1]:5000/dsx/operator:1", "Registry.Example.com/Dsx/op:1.2.0", ""])
def test_real_image_references_and_the_default_are_accepted(plan_file, image):
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4", "--operator-image", image)
    assert outcome.code == 0, outcome.text
    assert (image or "image:") in outcome.stdout


def test_values_pulumi_writes_beside_dsx_s_keys_are_kept_as_they_are(tmp_path, plan_file):
    # `pulumi config set --path app.channelId 1234567890123456789` writes a 19-digit integer, and
    # Go's YAML reads 2026-13-01 as text: the scenario reader's limits refused both here.
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    text = "config:\n  dsx:site: batam\n  app:channelId: 1234567890123456789\n  app:since: 2026-13-01\n"
    (stacks / "Pulumi.batam.yaml").write_text(text)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert outcome.code == 0, outcome.text
    written = (stacks / "Pulumi.batam.yaml").read_text()
    assert "  app:channelId: 1234567890123456789\n  app:since: 2026-13-01\n" in written
    assert "dsx:period: 2026Q4" in written


def test_a_stack_file_whose_edit_does_not_read_back_is_written_anew(tmp_path, plan_file):
    # A flow mapping over several lines with config: at column 0: the line edit did not parse,
    # and re-reading it raised a ParserError.
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.batam.yaml").write_text("{a: 1,\nconfig:\n}\n")
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert outcome.code == 0, outcome.text
    data = yaml.safe_load((stacks / "Pulumi.batam.yaml").read_text())
    assert data["a"] == 1 and data["config"]["dsx:period"] == "2026Q4"


@pytest.mark.parametrize("name", ["@plan.json", "2026-13-01"])
def test_a_plan_named_what_yaml_cannot_read_plainly_is_quoted_in_the_stack(tmp_path, plan_file, name):
    # `@` is reserved in YAML, and PyYAML takes 2026-13-01 for a date it cannot make: both
    # raised a traceback when the stack file was written.
    named = plan_file.with_name(name)
    named.write_text(plan_file.read_text())
    outcome = dsx("stacks", "write", named, "--dir", tmp_path / "stacks")
    assert outcome.code == 0, outcome.text
    data = yaml.safe_load((tmp_path / "stacks" / "Pulumi.batam.yaml").read_text())
    assert data["config"]["dsx:plan"].endswith(name)


def test_the_operator_is_kept_out_of_every_site_s_tenant_namespaces_in_a_shared_cluster(plan_file):
    # With tenant-site, sydney's tenants may share batam's cluster: their namespaces are taken too.
    outcome = _render(
        plan_file, "--namespace-style", "tenant-site", "--operator-namespace", "inference-cloud-sydney"
    )
    assert_one_clear_error(outcome, names=("is 'inference-cloud-sydney', a tenant's namespace in this plan",))


def test_a_tenant_named_like_the_operator_s_namespace_gets_another_suggested(plan_file):
    _edited(plan_file, lambda data: _rename_tenant(data, "inference-cloud", "dsx-system"))
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4")
    assert_one_clear_error(
        outcome, names=("is 'dsx-system', a tenant's namespace", "--operator-namespace dsx-operator")
    )


def test_an_owner_cannot_colour_or_forge_error_lines(plan_file):
    _edited(
        plan_file, lambda data: data["tenants"][0].update(owners=["us\x1b[31mer\nerror: injected line:bob"])
    )
    outcome = dsx("render", plan_file, "--site", "batam", "--period", "2026Q4")
    assert outcome.code == 2 and "Traceback" not in outcome.text
    assert "'us\\x1b[31mer\\nerror:'" in outcome.stderr  # escaped, on the owner's own line
    assert "\x1b" not in outcome.stderr
    assert [line for line in outcome.stderr.splitlines() if line.startswith("error:")] == [
        line for line in outcome.stderr.splitlines()[:1]
    ]


def test_a_stack_file_dsx_would_have_to_write_anew_with_changed_values_is_left_as_it_is(tmp_path, plan_file):
    # dsx:period as a block value defeats the line edit; written anew, the 44-digit number would
    # have become a string and the tag been dropped.
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    text = "config:\n  app:big: " + "9" * 44 + "\n  app:bad: !!int abc\n  dsx:period: >\n    2026Q3\n"
    (stacks / "Pulumi.batam.yaml").write_text(text)
    before = tree(tmp_path)
    outcome = dsx("stacks", "write", plan_file, "--dir", stacks, "--period", "2026Q4")
    assert_one_clear_error(outcome, names=("Pulumi.batam.yaml: holds values dsx would change",))
    assert tree(tmp_path) == before


def _too_large_copy(tmp_path: Path) -> Path:
    data = yaml.safe_load(EXAMPLE_SCENARIO.read_text())
    data.setdefault("solver", {})["max_memory_gb"] = 1e-6
    path = tmp_path / "in" / "too-large.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("plan", "solve", "{path}", "-o", "{out}/plan.json"),
        ("plan", "diagnose", "{path}", "--iis-out", "{out}/conflict.txt"),
        ("plan", "value-of-information", "{path}", "--workers", "1"),
    ],
)
def test_a_model_too_large_for_the_memory_is_refused_before_it_is_built(tmp_path, command):
    path = _too_large_copy(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    before = tree(tmp_path)
    outcome = dsx(*(part.format(path=path, out=out) for part in command))
    assert_one_clear_error(outcome, code=3, names=(str(path), "too large to build", "solver.max_memory_gb"))
    assert tree(tmp_path) == before
