"""`dsx stacks write` and `dsx render`: the platform engineer's edge onto `infra/`.

`render` prints exactly the manifests the Pulumi program registers (from the same pure
`desired_state`), so a cluster without Pulumi can be provisioned with `kubectl apply`.
"""

from __future__ import annotations

import json
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from dsx.commands.render_dir import SAFE_FILE_NAME, write_render
from infra.checks import (
    Origin,
    PlanMismatchError,
    check_operator,
    parse_instance_types,
    plan_tenant_namespaces,
)
from infra.desired_state import BackendSettings, DesiredState, desired_state
from infra.operator_bundle import DEFAULT_OPERATOR_NAMESPACE, operator_manifests
from infra.stacks import no_project_note, stacks_dir_option, write_stacks
from planner.files import NAME_MAX_BYTES, check_output_path, read_plan


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"


class Phase(StrEnum):
    """What to print: `kubectl apply` needs a CRD Established before its objects can be mapped,
    so a first install applies `crds`, waits, then `objects` (docs/provisioning.md)."""

    all = "all"
    crds = "crds"
    objects = "objects"


def select_phase(manifests: list[dict[str, Any]], phase: Phase) -> list[dict[str, Any]]:
    if phase is Phase.crds:
        return [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    if phase is Phase.objects:
        return [m for m in manifests if m["kind"] != "CustomResourceDefinition"]
    return manifests


def render_yaml(manifests: list[dict[str, Any]]) -> str:
    """Multi-document YAML, one object per document, in apply order."""
    return yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True)


def render_json(manifests: list[dict[str, Any]]) -> str:
    """A `v1/List`, which `kubectl apply -f` accepts as one file."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}, indent=2) + "\n"


def manifest_filename(index: int, manifest: dict[str, Any], suffix: str, width: int = 3) -> str:
    """Numbered so `kubectl apply -f DIR` (filename order) applies CRDs before their objects;
    `width` digits, as many as the last number needs (1000 would sort before 101)."""
    return f"{index:0{width}d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.{suffix}"


def build_state(
    plan_path: Path,
    site: str,
    period: str,
    backend: BackendSettings,
    namespace_style: str,
    operator: bool,
    operator_image: str | None,
    operator_namespace: str,
) -> DesiredState:
    operator_image = operator_image or None  # "" is the bundle's image, as before
    origin = Origin.for_cli(str(plan_path))
    plan = read_plan(plan_path)
    if operator:
        taken = plan_tenant_namespaces(plan, namespace_style)
        check_operator(operator_image, operator_namespace, origin, taken)
    return desired_state(
        plan,
        site,
        period,
        backend=backend,
        namespace_style=namespace_style,  # type: ignore[arg-type]
        operator=operator_manifests(operator_image, operator_namespace) if operator else None,
        origin=origin,
    )


def render(
    plan: Annotated[Path, typer.Argument(help="Plan file (JSON) from `dsx plan solve`.")],
    site: Annotated[str, typer.Option("--site", help="Site id in the plan.")],
    period: Annotated[str, typer.Option("--period", help="Quarter to provision, e.g. 2027Q4.")],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="yaml (multi-document) or json (a v1 List).")
    ] = OutputFormat.yaml,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out-dir",
            help="Write one file per object here instead of printing. A re-render replaces the files "
            "an earlier render wrote there (listed in its .dsx-render); any other .yaml, .yml or .json "
            "file in it is refused, as `kubectl apply -f DIR` would apply it too.",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="Node-pool backend: cluster-api or karpenter.")
    ] = "cluster-api",
    namespace_style: Annotated[
        str, typer.Option("--namespace-style", help="tenant or tenant-site.")
    ] = "tenant",
    instance_types: Annotated[
        list[str] | None,
        typer.Option(
            "--instance-types",
            help="Karpenter: RACK_TYPE=TYPE[,TYPE] (repeat per rack type); a rack type not named gets "
            "its own id. One bare TYPE[,TYPE] list applies to every pool (refused at a site with several "
            "rack types).",
        ),
    ] = None,
    block_label: Annotated[
        str | None,
        typer.Option(
            "--block-label",
            help="Node label the site's fabric sets to each node's network block: the top level of "
            "the pools' Kueue Topology (default: none, rack → node).",
        ),
    ] = None,
    single_node_nvlink: Annotated[
        list[str] | None,
        typer.Option(
            "--single-node-nvlink",
            help="A rack type whose NVLink domain is one node (HGX; repeat per rack type): its pool's "
            "Kueue Topology has no rack (nvidia.com/gpu.clique) level.",
        ),
    ] = None,
    operator: Annotated[
        bool,
        typer.Option("--operator/--no-operator", help="Include the operator's CRDs, RBAC and Deployment."),
    ] = True,
    operator_image: Annotated[
        str | None, typer.Option("--operator-image", help="Operator image (default: the bundle's).")
    ] = None,
    operator_namespace: Annotated[str, typer.Option("--operator-namespace")] = DEFAULT_OPERATOR_NAMESPACE,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="JSON: the manifests as a v1 List (same as --format json), or with -o the files written.",
        ),
    ] = False,
    phase: Annotated[
        Phase,
        typer.Option(
            "--phase",
            help="crds: only the CustomResourceDefinitions; objects: everything else; all (default): both, "
            "which a cluster without the CRDs cannot take in one `kubectl apply`.",
        ),
    ] = Phase.all,
) -> None:
    """Print the manifests a site's stack would apply, for `kubectl apply -f -` users.

    On a cluster without dsx's CRDs: `--phase crds | kubectl apply -f -`, `kubectl wait --for
    condition=Established crd/tenants.dsx.ai crd/gpunodepools.dsx.ai`, then `--phase objects`."""
    if out_dir is not None:
        check_output_path(out_dir, directory=True)
    if as_json:
        output_format = OutputFormat.json
    settings = BackendSettings(
        backend=backend,  # type: ignore[arg-type]  # checked in desired_state
        karpenter_instance_types=parse_instance_types(
            ";".join(instance_types or []), Origin.for_cli(str(plan))
        ),
        topology_block_label=block_label or None,
        single_node_nvlink_rack_types=tuple(single_node_nvlink or ()),
    )
    state = build_state(
        plan, site, period, settings, namespace_style, operator, operator_image, operator_namespace
    )
    manifests = select_phase(state.manifests(), phase)
    if phase is Phase.all and operator and out_dir is None:
        typer.echo(
            "note: CRDs and the objects that use them are in one batch; on a cluster without them, "
            "apply --phase crds first, wait until Established, then --phase objects",
            err=True,
        )
    if out_dir is None:
        typer.echo(
            render_yaml(manifests) if output_format is OutputFormat.yaml else render_json(manifests), nl=False
        )
        return
    suffix = output_format.value
    # Every file named and rendered, and the directory checked, before the first is written.
    width = max(3, len(str(len(manifests) - 1)))
    names = [manifest_filename(index, m, suffix, width) for index, m in enumerate(manifests)]
    for name in names:
        if not SAFE_FILE_NAME.fullmatch(name) or len(name) > NAME_MAX_BYTES:
            raise PlanMismatchError(
                f"{plan}: an object would be written as {name[:80]!r}, not a file name in {out_dir}",
                details=["Fix: re-solve the scenario and render the plan it writes"],
            )
    texts = [
        render_yaml([m]) if output_format is OutputFormat.yaml else json.dumps(m, indent=2) + "\n"
        for m in manifests
    ]
    rendered = write_render(
        out_dir,
        list(zip(names, texts, strict=True)),
        {"plan": str(plan), "site": site, "period": period},
        [("the plan file", plan)],
    )
    written = [str(out_dir / name) for name in names]
    if as_json:
        removed = [str(path) for path in rendered.removed]
        typer.echo(
            json.dumps({"site": site, "period": period, "written": written, "removed": removed}, indent=1)
        )
        return
    replaced = ""
    if rendered.removed:
        earlier = f" ({rendered.earlier})" if rendered.earlier else ""
        replaced = f"; removed {len(rendered.removed)} left by its earlier render{earlier}"
    typer.echo(f"wrote {len(manifests)} manifests for {site} {period} to {out_dir}{replaced}", err=True)


def stacks_write(
    plan: Annotated[Path, typer.Argument(help="Plan file (JSON) from `dsx plan solve`.")],
    stacks_dir: Annotated[
        str,  # not Path: Path("") is ".", and an empty --dir must be told from --dir .
        typer.Option("--dir", help="Stack config directory (Pulumi.yaml's stackConfigDir)."),
    ] = "stacks",
    period: Annotated[
        str | None,
        typer.Option(
            "--period", help="Quarter to provision (default: keep the stack's, else the plan's first)."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend", help="cluster-api or karpenter (default: keep the stack's, else cluster-api)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each stack file and its state as JSON.")
    ] = False,
) -> None:
    """Write or update stacks/Pulumi.<site>.yaml for every site in the plan; hand-set keys are kept.

    A plan that failed verification or over-commits a pool is refused, as `dsx render` refuses it.
    `dsx:plan` is written relative to the directory of the Pulumi.yaml at or above --dir, which is
    what the program resolves it against."""
    directory = stacks_dir_option(stacks_dir)
    files = write_stacks(plan, directory, period=period, backend=backend)
    note = no_project_note(directory)
    if note:
        typer.echo(note, err=True)
    states = [(f, "created" if f.created else ("updated" if f.changed else "unchanged")) for f in files]
    ignored = git_ignored(plan)
    if ignored:
        typer.echo(ignored_plan_note(plan), err=True)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"site": f.site, "path": str(f.path), "state": state, "planGitIgnored": ignored}
                    for f, state in states
                ],
                indent=1,
            )
        )
        return
    for f, state in states:
        typer.echo(f"{state}: {f.path}")


def git_ignored(path: Path) -> bool:
    """Whether git would leave `path` out of a commit (so a fresh clone lacks it). False outside
    a git work tree or without git."""
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-q", path.name],
            cwd=path.resolve().parent,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def ignored_plan_note(plan: Path) -> str:
    return (
        f"note: {plan} is git-ignored, so a fresh clone has no plan and `pulumi up` fails there; "
        f"commit it elsewhere and re-run `dsx stacks write` on that path, or have every checkout "
        f"run `dsx plan solve <scenario> -o {plan}` first"
    )


def register(app: typer.Typer, plan_app: typer.Typer) -> None:
    stacks_app = typer.Typer(help="Per-site Pulumi stack files.", no_args_is_help=True)
    stacks_app.command("write")(stacks_write)
    app.add_typer(stacks_app, name="stacks")
    app.command("render")(render)
