"""Run the real Pulumi program under Pulumi's mock runtime and record what it registers.

Pulumi keeps its settings, root stack and config in context variables and drives its RPCs on
an asyncio loop. Each run therefore gets a fresh `contextvars.Context` and a fresh event loop,
so no state leaks between tests (the same isolation the Pulumi SDK's own tests rely on).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_root_resource

from infra import program


@dataclass(frozen=True)
class Registered:
    """One RegisterResource call as the engine would receive it."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    protect: bool
    parent: str
    dependencies: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.inputs.get("kind", "")


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        return (f"{args.name}-id" if args.custom else None), dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                )
            )
        return response


@dataclass
class ProgramRun:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    error: BaseException | None = None

    def of_kind(self, kind: str) -> list[Registered]:
        return [r for r in self.resources if r.custom and r.kind == kind]

    @property
    def kubernetes_objects(self) -> list[Registered]:
        return [r for r in self.resources if r.custom and r.type.startswith("kubernetes:")]

    def manifest(self, kind: str, name: str) -> dict[str, Any]:
        return next(r.inputs for r in self.of_kind(kind) if r.inputs["metadata"]["name"] == name)


def _resolve(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        return _resolve(pulumi.runtime.sync_await._sync_await(value.future()))
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def run_program(
    config: dict[str, str],
    *,
    stack: str = "batam",
    entry: Callable[[], Any] = program.run,
    preview: bool = False,
) -> ProgramRun:
    """Run `entry` as stack `stack` with `dsx:*` config; never raises, the error is in `.error`."""
    result = ProgramRun()

    def in_fresh_context() -> None:
        mocks = _Mocks()
        monitor = _RecordingMonitor(mocks)
        pulumi.runtime.settings.reset_options(project="dsx", stack=stack, preview=preview)
        pulumi.runtime.set_mocks(mocks, project="dsx", stack=stack, preview=preview, monitor=monitor)
        pulumi.runtime.set_all_config({(k if ":" in k else f"dsx:{k}"): v for k, v in config.items()}, [])

        @pulumi.runtime.test
        def go() -> None:
            result.state = entry()

        try:
            go()
        except BaseException as error:
            result.error = error
        result.resources = list(monitor.registered)
        root = get_root_resource()
        if result.error is None and root is not None:
            result.outputs = _resolve(dict(getattr(root, "outputs", {})))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        contextvars.Context().run(in_fresh_context)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(None)
        # Finalise the run's leftover futures and coroutines now, not during some later
        # compile(): CPython 3.11 then reports "AST constructor recursion depth mismatch".
        gc.collect()
    return result
