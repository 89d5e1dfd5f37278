"""A Kubernetes API emulator for the operator's lifecycle tests: kmock 0.8 plus what it lacks.

`DsxEmulator` extends `kmock.KubernetesEmulator` (pinned to kmock==0.8: this leans on its
internals; `test_emulator_contract.py` fails loudly when an upgrade changes them) with the API
semantics the operator relies on:

- object metadata: uid, resourceVersion (bumped on every write), generation (bumped when the spec
  changes), creationTimestamp, metadata.namespace from the URL, generateName;
- core namespaces: `/api/v1/namespaces[/name]` parsed as the `namespaces` resource (stock kmock
  reads it as a namespace prefix), namespaced creates answer 404 when the namespace does not
  exist, deleting a namespace deletes what it holds (simplified lifecycle, no Terminating phase);
- label selectors on lists, and list bodies with `kind`;
- the status subresource isolated from the main resource;
- the project's CRDs and the add-on kinds (Kueue, Cluster API, Karpenter) registered;
- optimistic concurrency: a PATCH carrying `metadata.resourceVersion`, or a PUT, is refused with
  409 when the object has moved on;
- PUT (replace), and server-side apply's content type (creates when absent, else merges: no
  field ownership);
- paginated lists (`limit` / `continue`);
- faults on cue: `error_rate` (that share of non-watch requests answered 500 or 503, some with
  Retry-After), and `FaultProxy` in front of it to cut every connection for an outage;
- `writes`: every POST / PUT / PATCH / DELETE served, with the time, for counting writes.

Not emulated (needs a real cluster): schema validation and pruning, server-side apply, strategic
merge, admission, RBAC, quota enforcement, garbage collection by owner references, watch resume.

`EmulatorThread` serves it on 127.0.0.1 from its own thread and event loop, so the synchronous
`kubernetes` client (in tests and in the operator's handler threads) never blocks the server.
`running_operator(url)` runs the real operator (Kopf, in-process) against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import itertools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import apps, dicts, dsl, enums, parsing, rendering

from operators import api

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "operators" / "manifests" / "crds"

ADDON_KINDS = {
    f"{group}/{version}/{plural}": (kind, namespaced)
    for kind, (group, version, plural, namespaced) in api.ADDON_KINDS.items()
}

_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    """Stock kmock reads /api/v1/namespaces/<name> as a namespace prefix; it is a resource."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and (
        len(parts) <= 4 or (len(parts) == 5 and parts[4] in ("status", "finalize"))
    ):
        name = parts[3] if len(parts) >= 4 else None
        sub = parts[4] if len(parts) == 5 else None
        return parsing.ParsedPath("", "v1", "namespaces", None, name, sub)
    return _original_parse_path(path)


parsing.parse_path = _parse_path


def _with_data(request: rendering.Request, data: Any) -> rendering.Request:
    """Rewrite the body in place: kmock's filters track requests by identity, so no copies."""
    object.__setattr__(request, "data", data)
    return request


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _sees(view: dsl.View, request: rendering.Request) -> bool:
    """`request in view`, as kmock 0.8 answers it, without its scan of every request served so far.

    kmock decides whether a reaction applies to a request by iterating the reaction's source view
    over the whole request history until it meets the request by identity: a cost that grows with
    each request, so a test of a minute spent most of its CPU there. A chain of filters and
    priorities over the root holds the request exactly when the root has it and every filter's
    criteria accept it; any other view (a slice, a group, an exclusion: position-dependent) is
    asked the slow way, as before."""
    criteria = []
    node: dsl.View = view
    while type(node) in (dsl.Filter, dsl.Priority):
        if type(node) is dsl.Filter:
            criteria.append(node.criteria)
        node = node._source  # type: ignore[attr-defined]
    if not isinstance(node, apps.RawHandler):
        return request in view
    root_has = any(r is request for r in reversed(node._requests))
    return root_has and all(check(request) for check in reversed(criteria))


@attrs.define(kw_only=True)
class _MatchingInConstantTime(apps.RawHandler):
    """kmock's `RawHandler._handle` (0.8, pinned) with its membership test replaced by `_sees`."""

    async def _handle(self, request: rendering.Request) -> Any:
        priorities: list[tuple[float, ...]] = [payload.priorities for payload in self._payloads]
        max_length = max(len(priority) for priority in priorities) if priorities else 0
        priorities = [tuple(-p for p in priority) for priority in priorities]
        priorities = [priority + (0,) * (max_length - len(priority)) for priority in priorities]
        indexes = sorted(range(len(priorities)), key=lambda index: priorities[index])
        for payload in [self._payloads[index] for index in indexes]:
            if _sees(payload._source, request) and not payload._disabled.is_set():
                try:
                    return await payload(request)
                except rendering.ReactionMismatchError:
                    payload._disabled.set()
                except NotImplementedError:
                    pass
        raise NotImplementedError(
            "Undefined server behaviour: no reaction matching the request is defined. "
            "Consider adding a catch-all fallback reaction: `kmock.fallback << 404`."
        )


@attrs.define(kw_only=True)
class DsxEmulator(kmock.KubernetesEmulator, _MatchingInConstantTime):
    _versions: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    error_rate: float = attrs.field(default=0.0, init=False)
    faults: int = attrs.field(default=0, init=False)
    writes: list[tuple[float, str, str, Any]] = attrs.field(factory=list, init=False)
    lists: list[tuple[str, dict[str, str]]] = attrs.field(factory=list, init=False)
    refusals: dict[tuple[str, str], int] = attrs.field(factory=dict, init=False)
    on_write: Any = attrs.field(default=None, init=False)
    _rng: random.Random = attrs.field(factory=lambda: random.Random(12), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()
        for crd_file in sorted(CRD_DIR.glob("*.yaml")):
            crd = yaml.safe_load(crd_file.read_text())
            spec = crd["spec"]
            for version in spec["versions"]:
                key = f"{spec['group']}/{version['name']}/{spec['names']['plural']}"
                self.resources[key] = kmock.ResourceInfo(
                    kind=spec["names"]["kind"],
                    namespaced=spec["scope"] == "Namespaced",
                    subresources=set(version.get("subresources", {})),
                    verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
                )
        for key, (kind, namespaced) in ADDON_KINDS.items():
            self.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs={"get", "list", "watch", "create", "patch", "delete"}
            )

    # -- helpers -------------------------------------------------------------------------------
    def _info(self, resource: Any) -> Any:
        for known in self.resources:
            if known == resource:
                return self.resources[known]
        return None

    def _has_status(self, resource: Any) -> bool:
        info = self._info(resource)
        return info is not None and "status" in set(info.subresources)

    def _current(self, resource: Any, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def _next_version(self) -> str:
        return str(next(self._versions))

    # -- request rewriting -----------------------------------------------------------------------
    def _prepare_create(self, request: rendering.Request) -> rendering.Request:
        data = copy.deepcopy(request.data or {})
        meta = data.setdefault("metadata", {})
        if request.namespace:
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        namespace = meta.get("namespace")
        if namespace and self._current(kmock.resource("v1/namespaces"), None, namespace) is None:
            raise kmock.KubernetesNotFoundError(
                reason="NotFound", message=f'namespaces "{namespace}" not found', details={"name": namespace}
            )
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_version(),
            generation=1,
            creationTimestamp=_now(),
        )
        if self._has_status(request.resource):
            data.pop("status", None)
        return _with_data(request, data)

    def _prepare_update(self, request: rendering.Request) -> rendering.Request:
        current = self._current(request.resource, request.namespace, request.name or "")
        if current is None:
            return request
        data = copy.deepcopy(request.data)
        isolate = self._has_status(request.resource)
        to_status = request.subresource == "status"
        if isinstance(data, list):  # JSON patch
            if isolate:
                data = [op for op in data if op.get("path", "").startswith("/status") == to_status]
            try:
                new = dicts.patch_dict(current, data)
            except jsonpatch.JsonPatchTestFailed as error:
                # A failed test op (Kopf tests resourceVersion) is 422 Invalid on a real server.
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message=str(error), details={"causes": []}
                ) from None
            extra = [{"op": "replace", "path": "/metadata/resourceVersion", "value": self._next_version()}]
            if new.get("spec") != current.get("spec"):
                extra.append(
                    {
                        "op": "replace",
                        "path": "/metadata/generation",
                        "value": current["metadata"].get("generation", 1) + 1,
                    }
                )
            return _with_data(request, data + extra)
        data = dict(data or {})
        wanted_version = (data.get("metadata") or {}).get("resourceVersion")
        if wanted_version is not None and wanted_version != current["metadata"].get("resourceVersion"):
            raise kmock.KubernetesError(
                status=409,
                reason="Conflict",
                message="the object has been modified; please apply your changes to the latest version",
                details={},
            )
        if isolate:
            data = (
                {"status": data.get("status")}
                if to_status
                else {k: v for k, v in data.items() if k != "status"}
            )
        new = dicts.patch_dict(current, data)
        meta = dict(data.get("metadata") or {})
        meta["resourceVersion"] = self._next_version()
        if new.get("spec") != current.get("spec"):
            meta["generation"] = current["metadata"].get("generation", 1) + 1
        data["metadata"] = meta
        return _with_data(request, data)

    def _fault(self, request: rendering.Request) -> kmock.KubernetesError | None:
        if self.error_rate <= 0 or request.action == enums.action.WATCH or request.resource is None:
            return None
        if self._rng.random() >= self.error_rate:
            return None
        self.faults += 1
        status = self._rng.choice([500, 503, 503])
        return kmock.KubernetesError(status=status, reason="Injected", message="injected fault", details={})

    def _replace_as_patch(self, request: rendering.Request) -> rendering.Request:
        """PUT: a full replacement, conditional on resourceVersion, served as a JSON patch."""
        current = self._current(request.resource, request.namespace, request.name or "")
        if current is None:
            raise kmock.KubernetesNotFoundError(reason="NotFound", message="not found", details={})
        new = copy.deepcopy(request.data or {})
        meta = new.setdefault("metadata", {})
        if meta.get("resourceVersion") != current["metadata"].get("resourceVersion"):
            raise kmock.KubernetesError(
                status=409, reason="Conflict", message="the object has been modified", details={}
            )
        for key in ("uid", "creationTimestamp", "generation", "namespace", "name"):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
        if self._has_status(request.resource) and "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
        ops = jsonpatch.make_patch(current, new).patch
        object.__setattr__(request, "action", enums.action.UPDATE)
        return _with_data(request, ops)

    def _apply_as_create_or_patch(self, request: rendering.Request) -> rendering.Request:
        """Server-side apply, simplified: create when absent, else a merge patch."""
        current = self._current(request.resource, request.namespace, request.name or "")
        if current is None:
            object.__setattr__(request, "action", enums.action.CREATE)
        return request

    async def _handle(self, request: rendering.Request) -> Any:
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        refused = self.refusals.get((method, str(request.url.path)))
        if refused:  # refused before any state change (kmock's reactions change state anyway)
            return await self._render_error(
                kmock.KubernetesError(status=refused, reason="Refused", message="refused on cue", details={})
            )
        if request.action == enums.action.LIST:
            self.lists.append((str(request.url.path), dict(request.params or {})))
        fault = self._fault(request)
        if fault is not None:
            response = await self._render_error(fault)
            if fault.status == 503 and self._rng.random() < 0.5:
                response.headers["Retry-After"] = "0"
            return response
        content_type = {k.lower(): v for k, v in request.headers.items()}.get("content-type", "")
        try:
            if request.resource is not None and method == "PUT" and request.name:
                request = self._replace_as_patch(request)
            elif request.resource is not None and "apply-patch" in content_type and request.name:
                request = self._apply_as_create_or_patch(request)
            if request.resource is not None and request.action == enums.action.CREATE:
                request = self._prepare_create(request)
            elif request.resource is not None and request.action == enums.action.UPDATE:
                request = self._prepare_update(request)
        except kmock.KubernetesError as error:
            return await self._render_error(error)
        try:
            response = await super()._handle(request)
        except kmock.KubernetesError as error:
            return await self._render_error(error)
        if method in ("POST", "PUT", "PATCH", "DELETE") and getattr(response, "status", 500) < 400:
            self.writes.append((time.monotonic(), method, str(request.url.path), request.data))
            if self.on_write is not None:
                self.on_write(method, str(request.url.path))
        if (
            request.action == enums.action.DELETE
            and request.resource == kmock.resource("v1/namespaces")
            and request.name
        ):
            await self._delete_namespace_contents(request.name)
        return response

    async def _delete_namespace_contents(self, namespace: str) -> None:
        async with self._lock:
            for (resource, ns, _name), obj in list(self.objects.items()):
                if ns == namespace and not obj.deleted:
                    raw = obj.raw
                    obj.delete()
                    await self._buses[resource].put({"type": "DELETED", "object": raw})

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        result: dict[str, Any] = await super()._serve_list(request)  # type: ignore[assignment]
        selector = (request.params or {}).get("labelSelector")
        if selector:
            result["items"] = [
                i for i in result["items"] if _matches(i.get("metadata", {}).get("labels", {}), selector)
            ]
        info = self._info(request.resource)
        if info is not None and info.kind:
            result["kind"] = f"{info.kind}List"
        result["metadata"] = {"resourceVersion": str(next(self._versions))}
        params = request.params or {}
        if params.get("limit"):
            start = int(params.get("continue") or 0)
            limit = int(params["limit"])
            items = result["items"]
            result["items"] = items[start : start + limit]
            if start + limit < len(items):
                result["metadata"]["continue"] = str(start + limit)
        return result


class EmulatorThread:
    """Serve a `DsxEmulator` on 127.0.0.1 from a background thread with its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.emulator: DsxEmulator | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock-emulator", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as error:  # surfaced to the test thread
            self._error = error
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with DsxEmulator() as emulator, kmock.Server(emulator) as server:
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the emulator's loop (e.g. to inspect `emulator.objects` safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)


@contextlib.contextmanager
def operator_env(
    url: str,
    interval_s: float = 0.3,
    token: str | None = None,
    ca_file: str | None = None,
    lease_s: float = 3.0,
) -> Iterator[None]:
    """Point the operator at a server with short intervals (read when operators.main imports);
    `lease_s` is the lease's duration (production: 15 s), renewed every 0.5 s."""
    settings = {
        "DSX_OPERATOR_SERVER": url,
        "DSX_OPERATOR_TOKEN": token or "",
        "DSX_OPERATOR_CA_FILE": ca_file or "",
        "DSX_RECONCILE_INTERVAL_S": str(interval_s),
        "DSX_RETRY_DELAY_S": "0.2",
        "DSX_REQUEST_BACKOFF_S": "0.02",
        "DSX_LEASE_DURATION_S": str(lease_s),
        "DSX_LEASE_RENEW_S": "0.5",
    }
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def running_operator(
    url: str,
    interval_s: float = 0.3,
    token: str | None = None,
    ca_file: str | None = None,
    lease_s: float = 3.0,
) -> Iterator[Any]:
    """Run the real operator (Kopf, in-process, in its own thread) against the server at `url`
    (the emulator, or a real API server with the operator's ServiceAccount `token`)."""
    from kopf.testing import KopfRunner

    with operator_env(url, interval_s, token, ca_file, lease_s):
        import operators.main as handlers

        handlers.INTERVAL_S = interval_s  # the module may have been imported by an earlier test
        handlers.RETRY_DELAY_S = 0.2
        handlers.kube.cache_clear()
        handlers.config.cache_clear()
        args = ["run", "-m", "operators.main", "--standalone", "--all-namespaces"]
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        try:
            with KopfRunner(args, timeout=30) as runner:
                yield runner
        finally:
            # `kopf run` puts its stream handler on the root logger at INFO and leaves it there:
            # every later record of the worker (the emulator's aiohttp.access lines) was printed
            # into the suite's output. The runner's own output is in `runner.output`.
            root.handlers[:], root.level = saved_handlers, saved_level


class FaultProxy:
    """A TCP proxy in front of a server: `cut()` drops every connection and refuses new ones
    (an API outage, watches included), `restore()` ends the outage."""

    def __init__(self, target_url: str) -> None:
        self.target_host, self.target_port = target_url.split("//", 1)[1].rsplit(":", 1)
        self.loop = asyncio.new_event_loop()
        self._down = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.target_url_scheme == "https" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    target_url_scheme = "http"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.loop.run_until_complete(asyncio.start_server(self._serve, sock=sock))
        self._ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._down:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, int(self.target_port))
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        def _cut() -> None:
            self._down = True
            for w in list(self._writers):
                w.close()

        self.loop.call_soon_threadsafe(_cut)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(lambda: setattr(self, "_down", False))

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
