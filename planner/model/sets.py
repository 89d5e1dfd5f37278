"""Sparse index sets: each `*_indices` function lists only the tuples where data makes a
decision possible, never a full cross product (TEMOA's habit).

Index order everywhere: tenant k, site i, rack type r, quarter t, scenario s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.model.data import ModelData


def site_period_indices(d: ModelData) -> list[tuple[str, int]]:
    return [(i, t) for i in d.site_ids for t in d.periods]


def rack_indices(d: ModelData) -> list[tuple[str, str, int]]:
    """(site, rack type, quarter) for rack types allowed at the site."""
    return [(i, r, t) for i in d.site_ids for r in d.rack_ids_at[i] for t in d.periods]


def block_order_indices(d: ModelData) -> list[tuple[str, int]]:
    """(site, quarter) where an ordered block still arrives inside the horizon, at sites where
    at least one block fits under the power cap and the order rate is positive."""
    return [
        (i, t) for i in d.site_ids if d.blocks_bound(i) > 0 for t in d.periods if t + d.lead(i) <= d.n - 1
    ]


def quota_indices(d: ModelData) -> list[tuple[str, str, str, int]]:
    """(tenant, site, rack type, quarter) where the tenant may use the site."""
    return [
        (k, i, r, t) for i in d.site_ids for k in d.tenants_at[i] for r in d.rack_ids_at[i] for t in d.periods
    ]


@dataclass
class ServedIndex:
    """The served index (tenant, site, rack type, quarter, scenario) as tuples, and the same
    as integer codes (`axis_labels`). The codes let the large families be built with numpy."""

    keys: list[tuple[str, str, str, int, str]]
    k: np.ndarray
    i: np.ndarray
    r: np.ndarray
    t: np.ndarray
    s: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def axis_labels(d: ModelData) -> dict[str, list]:
    """What each integer code stands for, per axis: k tenant, i site, r rack type, t quarter,
    s scenario (the code is the position in the list)."""
    return {
        "k": [k.id for k in d.scenario.tenants],
        "i": list(d.site_ids),
        "r": [r.id for r in d.scenario.rack_types],
        "t": list(d.periods),
        "s": list(d.scenario_ids),
    }


def code_table(d: ModelData, keys, axes: tuple[str, ...]) -> np.ndarray:
    """A dense table from the integer codes of `axes` (see `axis_labels`) to each key's position
    in `keys`; -1 where none. Looks up a family's row or column for every served variable at once."""
    codes = {axis: {label: n for n, label in enumerate(labels)} for axis, labels in axis_labels(d).items()}
    table = np.full([len(codes[a]) for a in axes], -1, dtype=np.int64)
    for position, key in enumerate(keys):
        table[tuple(codes[a][v] for a, v in zip(axes, key, strict=True))] = position
    return table


def tenant_may_use(d: ModelData) -> np.ndarray:
    """[site code, tenant code] -> whether the tenant may use the site (`axis_labels` codes)."""
    tenants = axis_labels(d)["k"]
    return np.array([[k in d.tenants_at[i] for k in tenants] for i in d.site_ids], dtype=bool)


def served_index(d: ModelData) -> ServedIndex:
    """(tenant, site, rack type, quarter, scenario) where the tenant may use the site and has
    demand in that quarter and scenario (with no demand nothing can be served); ordered by
    scenario, site, tenant, quarter, rack type. Found with one numpy boolean mask over the
    product (a byte per candidate, about 2 MB at 2M candidates); the index itself stays sparse."""
    labels = axis_labels(d)
    tenants, racks = labels["k"], labels["r"]
    demand = np.array(
        [[[d.demand[k, t, s] for t in d.periods] for k in tenants] for s in d.scenario_ids], dtype=np.float64
    ).reshape(len(d.scenario_ids), len(tenants), d.n)
    may_use = tenant_may_use(d)
    rack_at = np.array([[r in d.rack_ids_at[i] for r in racks] for i in d.site_ids], dtype=bool)
    mask = (
        may_use.reshape(1, len(d.site_ids), len(tenants), 1, 1)
        & (demand > 0).reshape(len(d.scenario_ids), 1, len(tenants), d.n, 1)
        & rack_at.reshape(1, len(d.site_ids), 1, 1, len(racks))
    )
    s, i, k, t, r = np.nonzero(mask)

    def named(axis: str, codes: np.ndarray) -> list:
        return np.array(labels[axis], dtype=object)[codes].tolist()

    keys = list(zip(named("k", k), named("i", i), named("r", r), t.tolist(), named("s", s), strict=True))
    code = np.int32  # 5 codes per served variable: half the memory of numpy's default int64
    return ServedIndex(keys, k.astype(code), i.astype(code), r.astype(code), t.astype(code), s.astype(code))


def site_classes(d: ModelData) -> dict[str, list[str]]:
    """Sites pooled by the tenants that may use them (`d.tenants_at`): class id -> its sites.
    A class is named by its first site in file order. The matching rule reads sites only
    through their tenants, so a class's unsold hours pool (docs/model.md, "Buyback")."""
    first_of: dict[tuple[str, ...], str] = {}
    classes: dict[str, list[str]] = {}
    for i in d.site_ids:
        c = first_of.setdefault(tuple(d.tenants_at[i]), i)
        classes.setdefault(c, []).append(i)
    return classes


def buyback_indices(d: ModelData) -> list[tuple[str, int, str]]:
    """(class, quarter, scenario), the class named by its first site (`site_classes`): the
    buyback is billed per quarter and scenario, and the model splits it by class of sites."""
    return [(c, t, s) for c in site_classes(d) for t in d.periods for s in d.scenario_ids]


def buyback_flow_indices(d: ModelData) -> list[tuple[str, str, int, str]]:
    """(tenant, class, quarter, scenario) where the tenant may use the class and has demand
    (an `unserved_gpu_hours` column): its refused hours placed on the class's unsold ones."""
    classes = site_classes(d)
    return [
        (k, c, t, s)
        for s in d.scenario_ids
        for t in d.periods
        for c, sites in classes.items()
        for k in d.tenants_at[sites[0]]
        if d.demand[k, t, s] > 0
    ]


def buyback_refused_indices(d: ModelData) -> list[tuple[str, int, str]]:
    """(tenant, quarter, scenario) with demand where the tenant may use some site."""
    tenants = [k.id for k in d.scenario.tenants if any(k.id in d.tenants_at[i] for i in d.site_ids)]
    return [(k, t, s) for s in d.scenario_ids for k in tenants for t in d.periods if d.demand[k, t, s] > 0]


def unserved_indices(d: ModelData) -> list[tuple[str, int, str]]:
    """(tenant, quarter, scenario) with positive demand."""
    tenants = [k.id for k in d.scenario.tenants]
    return [(k, t, s) for s in d.scenario_ids for k in tenants for t in d.periods if d.demand[k, t, s] > 0]
