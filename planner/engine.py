"""Where the planner's independent solves run: in this process, on a local Dask cluster, or on a
running Dask cluster (docs/decisions/0005-distributed-sweeps.md says why Dask).

- `SerialEngine`: one task at a time, here, in the order submitted (what `--workers 1` asks for).
- `DaskEngine`: tasks on `dask.distributed` workers, results in the order they finish. Local
  (`LocalCluster`, one single-threaded worker process per slot, started and stopped with the
  engine) unless given a scheduler's address (`--cluster ADDRESS` or `DSX_CLUSTER`), where the
  workers must have dsx installed at the same version.

A task is a picklable callable and its arguments; a task that raises (a point with no plan, a
worker lost) comes back as its exception, so one failure never loses the other tasks. Results
reach only the client (the caller): workers write no files.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from planner.errors import UserError

ENV_CLUSTER = "DSX_CLUSTER"
"""Environment variable with a Dask scheduler's address, e.g. tcp://10.0.0.5:8786."""
CONNECT_TIMEOUT_S = 10.0


class Engine:
    """Submit tasks, then take them back one by one as they finish."""

    slots: int = 1
    """How many tasks run at once (a scheduler keeps this many in flight)."""
    where: str = "this process"

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> None:
        raise NotImplementedError

    def next_done(self) -> tuple[Hashable, Any]:
        """(key, result) of a finished task; the result is the exception if the task raised."""
        raise NotImplementedError

    @property
    def pending(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine's workers (a local cluster stops; a remote one stays up)."""


class SerialEngine(Engine):
    """Runs each task in this process when it is taken back, in the order submitted."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Hashable, Callable[..., Any], tuple[Any, ...]]] = deque()

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.append((key, fn, args))

    def next_done(self) -> tuple[Hashable, Any]:
        key, fn, args = self._queue.popleft()
        try:
            return key, fn(*args)
        except Exception as error:  # the caller records it against this task
            return key, error

    @property
    def pending(self) -> int:
        return len(self._queue)


class DaskEngine(Engine):
    """Tasks on a `dask.distributed` client; `cluster` (a LocalCluster) is closed with it."""

    def __init__(self, client: Any, cluster: Any = None, where: str = "") -> None:
        from distributed import as_completed

        self._client = client
        self._cluster = cluster
        self._done = as_completed()
        self._keys: dict[str, Hashable] = {}
        self.slots = max(1, sum(client.nthreads().values()))
        self.where = where

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> None:
        future = self._client.submit(fn, *args, pure=False)
        self._keys[future.key] = key
        self._done.add(future)

    def next_done(self) -> tuple[Hashable, Any]:
        future = next(self._done)
        key = self._keys.pop(future.key)
        try:
            value = future.result()
        except Exception as error:  # the task's own error, or its worker was lost
            value = error
        future.release()
        return key, value

    @property
    def pending(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def cluster_address(cluster: str | None) -> str | None:
    """The scheduler address asked for: the option, else `DSX_CLUSTER`, else None (local)."""
    address = cluster if cluster is not None else os.environ.get(ENV_CLUSTER)
    return (address.strip() or None) if address is not None else None


def local_workers(workers: int | None, tasks: int) -> int:
    """Worker processes for a local run: as asked, else one per CPU, never more than the tasks."""
    if workers is not None and workers < 1:
        raise UserError(
            f"--workers {workers}: needs at least one worker",
            details=["Fix: give --workers 1 (solve here, one at a time) or more"],
        )
    wanted = workers if workers is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, tasks))


MAX_PORT = 65_535


def connect(address: str, *, option: str = "--cluster") -> Engine:
    """A `DaskEngine` on the running scheduler at `address`, or one clear `UserError`."""
    from distributed import Client

    named = option if os.environ.get(ENV_CLUSTER) != address else f"{ENV_CLUSTER}={address}"
    fix = [
        "Fix: check the address and port (a Dask scheduler listens on tcp://HOST:8786 by default); "
        "start one with `dask scheduler` and workers with `dask worker tcp://HOST:8786` on machines "
        f"that have dsx installed; or leave {option} out and unset {ENV_CLUSTER} to run locally",
    ]
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if host and port.isdigit() and not 0 < int(port) <= MAX_PORT:
        raise UserError(f"{named}: port {port} in {address!r} is not a TCP port (1-{MAX_PORT})", details=fix)
    if host and port.isdigit():  # a refused port fails at once, not after Dask's retries
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as error:
            raise UserError(
                f"{named}: no Dask scheduler answers at {address!r} ({error.strerror or error})",
                details=fix,
            ) from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        raise UserError(
            f"{named}: no Dask scheduler answers at {address!r} ({type(error).__name__}: {error})",
            details=fix,
        ) from None
    if not client.nthreads():
        client.close()
        raise UserError(f"{named}: the scheduler at {address!r} has no workers", details=fix)
    return DaskEngine(client, where=f"the Dask cluster at {address}")


NO_CGROUP_LIMIT = 2**60
"""A cgroup memory limit at least this large means none (cgroup v1 writes 2**63 rounded to a page)."""


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None


def _stat_field(path: Path, name: str) -> int:
    """A field of a cgroup's memory.stat (0 where it cannot be read)."""
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            value = value.strip()
            if key == name and value.isascii() and value.isdigit():
                return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def _cgroup_room(
    cgroup_file: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Bytes this process's memory cgroup may still take: its limit less its usage, the file cache
    it could drop (`inactive_file`) not counted as used, as Kubernetes and Docker count it; None
    where no limit is set or none can be read. cgroup v2 (`memory.max`) and v1
    (`memory.limit_in_bytes`); where the cgroup's path is not under the mount (a container
    without its own cgroup namespace), the mount's root is the process's cgroup. A parent's limit
    binds too (a Slurm job's or a systemd slice's, over a child without one): the ancestors are
    read up to the mount (in v1 those with `use_hierarchy`), and the least room of all is this
    one's."""
    try:
        lines = cgroup_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        _id, controllers, path = [*line.split(":", 2), "", ""][:3]
        if controllers == "":
            mount, names = root, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            mount, names = (
                root / "memory",
                ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
            )
        else:
            continue
        if ".." in path.split("/"):
            return None  # a cgroup outside this namespace's view: not one we can read
        where = mount / path.lstrip("/")
        if not where.is_dir():
            where = mount
        # This cgroup and each ancestor up to the mount: their usage counts their other children.
        # A v1 ancestor counts only with `use_hierarchy` (its children charged to it).
        chain = [where] + [
            parent
            for parent in where.parents[: len(where.relative_to(mount).parts)]
            if controllers == "" or _read_number(parent / "memory.use_hierarchy") == 1
        ]
        rooms = [room for room in (_one_cgroup_room(c, names) for c in chain) if room is not None]
        if rooms:
            return min(rooms)
    return None


def _one_cgroup_room(where: Path, names: tuple[str, str, str]) -> int | None:
    """One cgroup's limit less its usage (its droppable file cache not counted); None where it
    has no limit or it cannot be read."""
    limit, usage = _read_number(where / names[0]), _read_number(where / names[1])
    if limit is None or usage is None or limit >= NO_CGROUP_LIMIT:
        return None
    return max(0, limit - max(0, usage - _stat_field(where / "memory.stat", names[2])))


def _dask_worker_room() -> int | None:
    """In a Dask worker with a memory limit (a local cluster's: the machine's memory shared out
    among its workers), what the worker may still take before Dask ends it (`terminate`, 95% of
    the limit by default) less what its process holds; None elsewhere. Only where `distributed`
    is already loaded: a solve outside Dask does not pay for importing it."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except ValueError:  # not in a worker
        return None
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if not limit:
        return None
    terminate = sys.modules["dask"].config.get("distributed.worker.memory.terminate", 0.95) or 1.0
    try:
        with open("/proc/self/statm") as handle:
            held = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the worker's limit alone
        held = 0
    return max(0, int(limit * terminate) - held)


def available_memory_bytes(
    meminfo: Path = Path("/proc/meminfo"),
    cgroup_file: Path = Path("/proc/self/cgroup"),
    cgroup_root: Path = Path("/sys/fs/cgroup"),
) -> int | None:
    """Memory a new model may take here: the kernel's MemAvailable, or less where this process's
    cgroup (a container's limit) or its Dask worker's limit leaves less. None where none can be
    read (not Linux)."""
    available = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        available = None
    try:
        cgroup = _cgroup_room(cgroup_file, cgroup_root)
    except (OSError, ValueError):  # an unreadable or odd cgroup path: no figure, never a crash
        cgroup = None
    rooms = [r for r in (available, cgroup, _dask_worker_room()) if r is not None]
    return min(rooms) if rooms else None


def threads_per_process(workers: int) -> int:
    """Threads each of `workers` local processes may use so that together they use every CPU
    once: a decomposed solve shares its recourse out to that many (`OMP_NUM_THREADS`, which
    Dask would otherwise set to 1 in its workers)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def start_local(workers: int) -> Engine:
    """A local Dask cluster of `workers` worker processes, one task at a time each, each told
    its share of the CPUs (`threads_per_process`)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        env={"OMP_NUM_THREADS": str(threads_per_process(workers))},
    )
    client = Client(cluster)
    return DaskEngine(client, cluster, where=f"a local Dask cluster of {workers} worker processes")


@contextmanager
def open_engine(
    cluster: str | None = None, workers: int | None = None, *, tasks: int = 1, option: str = "--cluster"
) -> Iterator[Engine]:
    """The engine a command asked for: the cluster at `cluster` (or, where `workers` is not
    given, `DSX_CLUSTER`), else a local one of `workers` processes (default one per CPU, at most
    `tasks`); one worker, or one task, runs here without a cluster. `workers` given says local:
    with `DSX_CLUSTER` set, `--workers 1` went to that cluster, and one that did not answer
    stopped the run. Given both, the two options contradict each other."""
    if workers is not None and cluster is not None and cluster.strip():
        raise UserError(
            f"{option} {cluster} and --workers {workers}: --workers sizes a local cluster, {option} "
            "names a running one",
            details=[f"Fix: give one of them ({option} for the running cluster, --workers to run here)"],
        )
    address = cluster_address(cluster) if workers is None else None
    if address is not None:
        engine = connect(address, option=option)
    else:
        n = local_workers(workers, tasks)
        engine = SerialEngine() if n == 1 else start_local(n)
    try:
        yield engine
    finally:
        engine.close()
