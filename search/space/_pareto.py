"""Non-dominated filtering for objectives that are all maximized."""
from __future__ import annotations

import numpy as np

__all__ = ["pareto_mask", "front_order", "first_of_duplicates"]


def pareto_mask(values: np.ndarray, feasible: np.ndarray | None = None) -> np.ndarray:
    """(P,) bool: points of `values` (P, M), all maximized, that no other point dominates.

    A point is dominated when another is >= in every objective and > in at least one. Duplicates
    of a front point are all kept. Rows with NaN never enter the front, and when `feasible` is
    given only feasible points compete (Deb's rule: the front is that of the feasible set).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be (points, objectives), got shape {v.shape}")
    ok = ~np.isnan(v).any(axis=1)
    if feasible is not None:
        ok &= np.asarray(feasible, dtype=bool)
    mask = np.zeros(len(v), dtype=bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return mask
    c = v[idx]  # (K, M)
    keep = _front_2d(c) if c.shape[1] == 2 else _front_nd(c)
    mask[idx[keep]] = True
    return mask


def _front_2d(c: np.ndarray) -> np.ndarray:
    """O(K log K) sweep for two objectives: sort by x descending; a point survives iff it has the
    largest y among points with its x and beats every y seen at strictly larger x."""
    order = np.lexsort((-c[:, 1], -c[:, 0]))  # x descending, then y descending
    x, y = c[order, 0], c[order, 1]
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])  # first index of each equal-x group
    group = np.cumsum(np.r_[True, x[1:] != x[:-1]]) - 1
    group_best = y[starts]  # sorted y descending within a group: the first is the max
    # Best y over all groups with strictly larger x (-inf for the first group).
    before = np.r_[-np.inf, np.maximum.accumulate(group_best)[:-1]]
    keep_sorted = (y == group_best[group]) & (y > before[group])
    keep = np.empty(len(c), dtype=bool)
    keep[order] = keep_sorted
    return keep


def _front_nd(c: np.ndarray) -> np.ndarray:
    # Blocks of 512 rows keep the (B, K, M) comparison bounded in memory for large studies.
    dominated = np.zeros(len(c), dtype=bool)
    for start in range(0, len(c), 512):
        block = c[start:start + 512]  # (B, M)
        ge = (c[None, :, :] >= block[:, None, :]).all(axis=2)  # (B, K): other >= me everywhere
        gt = (c[None, :, :] > block[:, None, :]).any(axis=2)  # (B, K): other > me somewhere
        dominated[start:start + 512] = (ge & gt).any(axis=1)
    return ~dominated


def front_order(values: np.ndarray, mask: np.ndarray, along: int = 1) -> np.ndarray:
    """Indices of the front points sorted by objective `along` (for drawing the front as a line)."""
    idx = np.flatnonzero(mask)
    return idx[np.argsort(np.asarray(values)[idx, along], kind="stable")]


def first_of_duplicates(mask: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """`mask` with only the first (lowest index) of equal `keys` kept: a configuration met twice
    (a cache hit) is one front point, not two."""
    out = np.asarray(mask, dtype=bool).copy()
    seen: set = set()
    for i in np.flatnonzero(out):
        if keys[i] in seen:
            out[i] = False
        seen.add(keys[i])
    return out
