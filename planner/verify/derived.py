"""Quantities derived from the decisions (docs/model.md, "Derived"): racks and GPUs installed,
available MW, facility load, and served GPU-hours summed per pool and per tenant."""

from __future__ import annotations

import numpy as np

from planner.verify.data import ScenarioArrays
from planner.verify.decisions import Served


def racks_installed(data: ScenarioArrays, built: np.ndarray) -> np.ndarray:
    """existing + racks built in the last L_r quarters (existing racks stay for the whole horizon)."""
    n_t = built.shape[2]
    cumulative = np.concatenate([np.zeros((*built.shape[:2], 1)), np.cumsum(built, axis=2)], axis=2)
    t = np.arange(n_t)
    start = np.maximum(0, t[None, :] - data.lifetime.astype(int)[:, None] + 1)  # [R, T]
    window = cumulative[:, :, t + 1] - np.take_along_axis(
        cumulative, np.broadcast_to(start[None, :, :], built.shape), axis=2
    )
    return data.existing_racks[:, :, None] + window


def available_mw(data: ScenarioArrays, blocks: np.ndarray) -> np.ndarray:
    """existing MW + block MW x blocks ordered at least `lead` quarters earlier."""
    n_i, n_t = blocks.shape
    arrived = np.zeros((n_i, n_t))
    for i in range(n_i):
        lead = int(data.lead[i])
        if lead < n_t:
            arrived[i, lead:] = np.cumsum(blocks[i, : n_t - lead])
    return data.existing_mw[:, None] + data.block_mw[:, None] * arrived


def facility_load_mw(data: ScenarioArrays, installed: np.ndarray) -> np.ndarray:
    """Σ_r racks x kW / 1000 x PUE per site and quarter: what power_fits compares with available MW."""
    return np.einsum("irt,r->it", installed, data.kw_per_rack / 1000.0) * data.pue[:, None]


def gpus_installed(data: ScenarioArrays, installed: np.ndarray) -> np.ndarray:
    return installed * data.gpus_per_rack[None, :, None]


def served_per_pool(data: ScenarioArrays, served: Served) -> np.ndarray:
    """Σ_k served[k, i, r, t, s] as an [I, R, T, S] array."""
    n_i, n_r, n_t, _, n_s = data.shape
    flat = ((served.i * n_r + served.r) * n_t + served.t) * n_s + served.s
    return np.bincount(flat, weights=served.gpu_hours, minlength=n_i * n_r * n_t * n_s).reshape(
        n_i, n_r, n_t, n_s
    )


def served_per_tenant(data: ScenarioArrays, served: Served) -> np.ndarray:
    """Σ_{i,r} served[k, i, r, t, s] as a [K, T, S] array."""
    _, _, n_t, n_k, n_s = data.shape
    flat = (served.k * n_t + served.t) * n_s + served.s
    return np.bincount(flat, weights=served.gpu_hours, minlength=n_k * n_t * n_s).reshape(n_k, n_t, n_s)
