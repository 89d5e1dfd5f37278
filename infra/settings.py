"""A stack's settings, read from Pulumi config (`dsx:*` keys in stacks/Pulumi.<stack>.yaml).

Reading config is the program's only input besides the plan file; missing or malformed keys
become a `StackConfigError` naming the stack file and the `pulumi config set` that fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra.checks import Origin, StackConfigError, parse_instance_types
from infra.desired_state import BackendSettings, TenantSizing
from infra.operator_bundle import DEFAULT_OPERATOR_NAMESPACE

STACK_CONFIG_DIR = "stacks"
"""Must match `stackConfigDir` in Pulumi.yaml (a test keeps them equal)."""


def stack_file(stack: str) -> str:
    return f"{STACK_CONFIG_DIR}/Pulumi.{stack}.yaml"


@dataclass(frozen=True)
class StackSettings:
    stack: str
    plan_path: Path
    site: str
    period: str
    backend: BackendSettings = field(default_factory=BackendSettings)
    sizing: TenantSizing = field(default_factory=TenantSizing)
    namespace_style: str = "tenant"
    install_operator: bool = True
    operator_image: str | None = None
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    context: str | None = None
    kubeconfig: Any = None  # pulumi.Output[str] (secret) or None: ambient kubeconfig
    plan_ref: str = ""  # dsx:plan as written in the stack file, for messages

    @property
    def origin(self) -> Origin:
        return Origin.for_stack(self.stack, stack_file(self.stack), self.plan_ref or str(self.plan_path))


def project_root() -> Path:
    """Where Pulumi.yaml is: from the engine when it says, else found upward from the cwd."""
    root = pulumi.runtime.get_root_directory() if hasattr(pulumi.runtime, "get_root_directory") else None
    if root:
        return Path(root)
    here = Path.cwd().resolve()
    return next((d for d in (here, *here.parents) if (d / "Pulumi.yaml").is_file()), here)


def _require(config: pulumi.Config, key: str, stack: str, example: str) -> str:
    value = config.get(key)
    if not value:
        raise StackConfigError(
            f"{stack_file(stack)}: dsx:{key} is not set",
            details=[
                f"Fix: pulumi config set dsx:{key} {example} --stack {stack}"
                + (" (or run `dsx stacks write PLAN.json`)" if key in ("plan", "period") else "")
            ],
        )
    return value


def _int(config: pulumi.Config, key: str, stack: str, default: int) -> int:
    raw = config.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise StackConfigError(
            f"{stack_file(stack)}: dsx:{key} is {raw!r}, not a whole number >= 0",
            details=[f"Fix: pulumi config set dsx:{key} {default} --stack {stack}"],
        )
    return value


def read_settings(config: pulumi.Config, stack: str, root: Path) -> StackSettings:
    plan = Path(_require(config, "plan", stack, "plans/<plan>.json"))
    defaults = TenantSizing()
    style = config.get("namespaceStyle") or "tenant"
    # A shared cluster (tenant-site) holds one operator, installed by one stack that says so;
    # every other stack would otherwise own (and on destroy remove) the same cluster-wide bundle.
    install = (config.get("installOperator") or ("false" if style == "tenant-site" else "true")).lower()
    return StackSettings(
        stack=stack,
        plan_path=plan if plan.is_absolute() else root / plan,
        site=config.get("site") or stack,
        period=_require(config, "period", stack, "<quarter, e.g. 2027Q4>"),
        backend=BackendSettings(
            backend=config.get("nodePoolBackend") or "cluster-api",  # type: ignore[arg-type]  # checked later
            kubernetes_version=config.get("kubernetesVersion") or BackendSettings.kubernetes_version,
            cluster_name=config.get("clusterName") or None,
            infrastructure_template=config.get("infrastructureTemplate")
            or BackendSettings.infrastructure_template,
            bootstrap_template=config.get("bootstrapTemplate") or BackendSettings.bootstrap_template,
            karpenter_node_class=config.get("karpenterNodeClass") or BackendSettings.karpenter_node_class,
            karpenter_instance_types=parse_instance_types(
                config.get("karpenterInstanceTypes"), Origin.for_stack(stack, stack_file(stack))
            ),
            topology_block_label=config.get("topologyBlockLabel") or None,
            single_node_nvlink_rack_types=tuple(
                t.strip() for t in (config.get("singleNodeNvlinkRackTypes") or "").split(",") if t.strip()
            ),
        ),
        sizing=TenantSizing(
            cpu_per_gpu=_int(config, "cpuPerGpu", stack, defaults.cpu_per_gpu),
            memory_gib_per_gpu=_int(config, "memoryGibPerGpu", stack, defaults.memory_gib_per_gpu),
            pods_per_gpu=_int(config, "podsPerGpu", stack, defaults.pods_per_gpu),
        ),
        namespace_style=style,
        install_operator=install not in ("false", "0", "no"),
        operator_image=config.get("operatorImage") or None,
        operator_namespace=config.get("operatorNamespace") or DEFAULT_OPERATOR_NAMESPACE,
        context=config.get("context") or None,
        kubeconfig=config.get_secret("kubeconfig"),
        plan_ref=str(plan),
    )
