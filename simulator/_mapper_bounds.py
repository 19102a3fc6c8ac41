"""Lower bounds of an array-tile pair's cycles under any stream tile and loop order: the search
(`_mapper._map_slice`) expands only the pairs whose bound can still beat its incumbent.
"""
from __future__ import annotations

import numpy as np

from mixaq.simulator._mapper_candidates import _clip, _times
from mixaq.simulator._mapper_costs import _OPERAND_DIMS, _exposure, _per_order, _round_up, _traffic_cycles

__all__: list[str] = []


def _pair_bound(c: dict, t0, t1, array_stats, traffic: bool = False) -> np.ndarray:
    """A lower bound of the cycles of an array-tile pair under any stream tile that fits and any loop
    order: compute's fill/drain terms grow with the stream tile count, at least ⌈D/t⌉ for the largest
    stream tile t that fits (ws, is; 1 for os, whose output width depends on the stream tile); the
    stream sums to the whole dimension (⌈K/pack⌉ at least when K streams); the first and last
    transfers are at least those of a stream tile of 1. +inf when no stream tile fits. With
    `traffic`, also the DRAM bytes no loop order avoids, per stream tile (`_pair_traffic`), against
    the fills the same stream tile costs."""
    role = c["roles"]
    dims = (c["m"], c["n"], c["k"])
    div = (1.0, 1.0, c["pack"])
    (r_q, r_len, r_folds, r_used, _), (c_q, c_len, c_folds, c_used, _) = array_stats
    sd = role[2]
    stream = c["passes"] * np.ceil(dims[sd] / div[sd])
    exposure = 0.0
    room = lambda cap, unit: np.floor(cap * (1.0 + 1e-9) / unit + 1e-6)  # noqa: E731  (never below the exact one)
    k_pad = c["rows"] * c["pack"] if c["pad"] else 1.0
    n_pad = c["cols"] if c["pad"] else 1.0
    if sd != 2:
        tile = [None, None, None]
        tile[role[0]], tile[role[1]] = t0, t1
        tm, tn, tk = (1.0 if d == sd else tile[d] for d in range(3))
        k_pad_tile, n_pad_tile = _round_up(tk, k_pad, c["whole"]), _round_up(tn, n_pad, c["whole"])
        # Partial sums accumulate across K tiles (ceil(K/tk) > 1), or across K folds inside one when
        # they leave the array (ceil(ceil(tk/pack)/rows) > 1); both as comparisons, exact (whole rows).
        need_acc = tk < c["k"]
        if c["x2_is_psum"]:
            need_acc = need_acc | (tk / c["pack"] > c["rows"])
        c_width = np.where(need_acc, c["psum_bytes"], c["out_bytes"])
        a_unit, b_unit = _times(tm, tk, c["ba"] / 8.0), _times(k_pad_tile, tn, c["bw"] / 8.0)
        c_unit = _times(tm, n_pad_tile, c_width)
        if sd == 0:  # ws: A and C grow with the M tile
            c_fill = room(c["cap_c"], c_unit)
            own_fill = room(c["cap_a"], a_unit)
        else:  # is: B grows with the N tile; C with its padded size
            c_fill = np.floor(room(c["cap_c"], c_unit / n_pad) / n_pad) * n_pad
            own_fill = room(c["cap_b"], b_unit)
        # The output binds where it accumulates, or everywhere when read back.
        fill = np.minimum(own_fill, c_fill if c["readback"] else np.where(need_acc, c_fill, np.inf))
        fits = fill >= 1.0
        t_max = _clip(fill, dims[sd])
        t_q = np.ceil(dims[sd] / t_max)
        exposure = _exposure(c, a_unit, b_unit, c_unit, _times(tm, n_pad_tile, c["out_bytes"]))
    else:  # os: K streams. Below K the outputs accumulate at psum width; a whole K may stream them out.
        tm, tn, k = t0 if role[0] == 0 else t1, t1 if role[1] == 1 else t0, c["k"]
        n_pad_tile = _round_up(tn, n_pad, c["whole"])
        fill = np.minimum(room(c["cap_a"], tm * (c["ba"] / 8.0)),
                          np.floor(room(c["cap_b"], tn * (c["bw"] / 8.0)) / k_pad) * k_pad)
        psum_fits = (tm * n_pad_tile * c["psum_bytes"] <= c["cap_c"] * (1.0 + 1e-9)) | (k <= 1.0)
        whole_fits = (fill >= k) & ((tm * n_pad_tile * c["out_bytes"] <= c["cap_c"] * (1.0 + 1e-9)) | ~c["readback"])
        fits = whole_fits | (psum_fits & (fill >= 1.0))
        t_max = np.where(whole_fits, k, _clip(fill, k))
        t_q = np.ceil(k / t_max)
        # Below K the outputs accumulate at psum width in every stream tile; whole, they may leave narrower.
        c_width = np.where(t_q > 1.0, c["psum_bytes"], np.minimum(c["psum_bytes"], c["out_bytes"]))

    def compute(count):  # never falls as the stream's tile count grows
        if c["feed"] == "systolic":
            return r_folds * c_folds * (stream - 2.0 * count) + count * (c["skew_rows"] * c_folds * r_len
                                                                        + r_folds * c_len)
        if c["feed"] == "buffered":
            rows_used = r_used if c["skew_rows"] == 1 else c["skew_rows"] * r_used  # (1·x is x)
            return r_folds * c_folds * stream + count * (rows_used * c_q + c_used * r_q - 2.0 * r_q * c_q)
        return r_folds * c_folds * stream

    if traffic and not c["per_port"]:
        # A smaller stream tile spills less but costs more fills: both at each interval's right end.
        r, dram = _pair_traffic(c, t0, t1, array_stats, c_width, t_max)  # (R, P) each
        bound = np.maximum(compute(np.ceil(dims[sd] / r)) + exposure, _traffic_cycles(c, dram))
        bound = bound.min(axis=0)
    else:
        bound = compute(t_q) + exposure
    return np.where(fits, bound, np.inf)


def _pair_traffic(c: dict, t0, t1, array_stats, c_width, t_max) -> tuple:
    """A lower bound of an array-tile pair's DRAM bytes under any whole stream tile t ≤ `t_max` and
    any loop order, at stream tiles r (R, P) and as bytes (R, P): every t has an r ≥ t whose bytes are
    no more than t's.

    Per loop order, as `_orders` counts it: the operand the stream does not index is re-fetched
    ⌈D/t⌉ times across the stream loop (less as t grows) when its tile, grown as the order grows
    it, does not fit; whether it fits does not depend on t. An operand the stream indexes has a
    tile linear in t: grown by the stream loop to at least D, by its other loop to at least t·q (q
    that dimension's tile count), so it spills only above a threshold of t. Between thresholds
    every order's bytes are least at the interval's right end: r runs over the thresholds and
    `t_max`. Footprints unpadded along the stream; `c_width`: the output width under every such t
    (`_pair_bound`'s)."""
    role = c["roles"]
    sd = role[2]
    dims = (c["m"], c["n"], c["k"])
    q, tile = [None, None, None], [None, None, None]
    q[role[0]], q[role[1]] = array_stats[0][0], array_stats[1][0]
    tile[role[0]], tile[role[1]] = t0, t1
    padded = [dims[0], dims[1], dims[2]]  # B's K and C's N padded where the tiles are known
    padded[role[0]], padded[role[1]] = array_stats[0][4], array_stats[1][4]
    k_pad = c["rows"] * c["pack"] if c["pad"] else 1.0
    n_pad = c["cols"] if c["pad"] else 1.0
    width = {"a": c["ba"] / 8.0, "b": c["bw"] / 8.0, "c": c_width}
    pads = {("b", 2): k_pad, ("c", 1): n_pad}
    extent = lambda name, d: np.ceil(tile[d] / pads.get((name, d), 1.0)) * pads.get((name, d), 1.0)  # noqa: E731
    # Per operand, when it spills with its non-indexing loop innermost (never), in the middle under
    # its first own dim, under its second, and outermost (`_orders`' options 0-3): for a stream tile
    # r above `levels` (-inf: always, +inf: never; for an operand the stream indexes under its other
    # dim, a threshold of r).
    levels = np.empty((3, 4) + np.shape(t0))
    levels[:, 0] = np.inf
    above = []
    for i, (name, own) in enumerate(_OPERAND_DIMS.items()):
        room = {"a": c["cap_a"], "b": c["cap_b"], "c": c["cap_c"]}[name] * (1.0 + 1e-9)  # rounding: never above
        if sd in own:
            other = own[0] if own[1] == sd else own[1]
            per_t = extent(name, other) * width[name]
            threshold = np.floor(room / (per_t * q[other]))
            along_stream = np.where(dims[sd] * per_t > room, -np.inf, np.inf)
            levels[i, 1], levels[i, 2] = (along_stream, threshold) if own[0] == sd else (threshold, along_stream)
            levels[i, 3] = np.where(dims[sd] * per_t * q[other] > room, -np.inf, np.inf)
            above.append(threshold)
        else:
            unit = extent(name, own[0]) * extent(name, own[1]) * width[name]
            for j, grown in enumerate((unit * q[own[0]], unit * q[own[1]], unit * q[own[0]] * q[own[1]])):
                levels[i, j + 1] = np.where(grown > room, -np.inf, np.inf)
    totals = [dims[0] * dims[2] * (c["ba"] / 8.0), padded[2] * dims[1] * (c["bw"] / 8.0)]
    mn_out = dims[0] * padded[1]
    out_total = mn_out * c["out_bytes"]
    if c["readback"]:
        c_once = 2.0 * out_total
        totals.append(c_once)
    else:
        c_once = out_total
        totals.append(mn_out * c["psum_bytes"] * (1.0 if c["write_every_fold"] else 2.0))
    once = totals[0] + totals[1] + c_once
    # Every r at once, (R, P): the per-call overhead, not the elements, costs.
    r = np.stack([_clip(x, t_max) for x in above] + [t_max])
    q[sd] = np.ceil(dims[sd] / r)
    spills = r > _per_order(levels)[:, :, None]  # (3, 6, R, P): per operand and loop order
    dram = once + (totals[0] * (q[1] - 1.0)) * spills[0]
    dram = dram + (totals[1] * (q[0] - 1.0)) * spills[1]
    dram = dram + (totals[2] * (q[2] - 1.0)) * spills[2]
    return r, dram.min(axis=0)
